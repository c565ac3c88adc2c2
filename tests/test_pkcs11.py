"""Signing with a key that never leaves a PKCS#11 token: a real SoftHSM2 token in a temporary directory."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from provenance import KeyMaterialError, SigningError, Source, StampRequest, State, TrustConfig, inspect, stamp
from provenance.keys import Algorithm, Pkcs11Config, init_pkcs11_keys, load_signer

from . import images

MODULE = Path("/usr/lib/softhsm/libsofthsm2.so")
PIN = "1234"


@pytest.fixture(scope="module")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One SoftHSM2 token directory for the module: the PKCS#11 library reads SOFTHSM2_CONF once per process."""
    assert MODULE.exists(), "SoftHSM2 is installed by .ci/run (apt-get install softhsm2)"
    root = tmp_path_factory.mktemp("softhsm")
    (root / "tokens").mkdir()
    conf = root / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    previous = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    util = shutil.which("softhsm2-util")
    assert util is not None
    subprocess.run(
        [util, "--init-token", "--free", "--label", "newsroom", "--pin", PIN, "--so-pin", "5678"],
        check=True,
        capture_output=True,
    )
    yield conf
    if previous is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = previous


@pytest.fixture
def token(softhsm: Path, request: pytest.FixtureRequest) -> Pkcs11Config:
    """The module's token, with a key label of this test's own."""
    return Pkcs11Config(MODULE, "newsroom", f"signer-{request.node.name}", PIN)


def test_stamp_with_a_token_key(token: Pkcs11Config, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    paths = init_pkcs11_keys(keys, token, "HSM Newsroom")
    assert not paths.signer_key.exists()  # no private key on disk
    assert "1234" not in (keys / "pkcs11.json").read_text()  # nor the PIN
    signer = load_signer(keys, PIN)
    trust = TrustConfig.from_files([paths.root_cert])
    result = stamp(images.jpeg(seed=41), StampRequest(Source.AI_GENERATED), signer, trust)
    signer.close()
    assert result.verdict.state is State.TRUSTED
    assert result.verdict.labels == ("ai_generated",)
    assert inspect(result.data, trust).state is State.TRUSTED


def test_wrong_pin_is_a_clear_signing_error(token: Pkcs11Config, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    paths = init_pkcs11_keys(keys, token, "HSM Newsroom")
    signer = load_signer(keys, "0000")
    with pytest.raises(SigningError, match="PIN"):
        stamp(images.jpeg(seed=42), StampRequest(Source.CAMERA), signer, TrustConfig.from_files([paths.root_cert]))


def test_missing_key_is_a_clear_signing_error(token: Pkcs11Config, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    paths = init_pkcs11_keys(keys, token, "HSM Newsroom")
    config = keys / "pkcs11.json"
    config.write_text(config.read_text().replace(token.key_label, "no-such-key"))
    signer = load_signer(keys, PIN)
    with pytest.raises(SigningError, match="no-such-key"):
        stamp(images.jpeg(seed=43), StampRequest(Source.CAMERA), signer, TrustConfig.from_files([paths.root_cert]))


def test_token_configuration_needs_a_pin(token: Pkcs11Config, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    init_pkcs11_keys(keys, token, "HSM Newsroom")
    with pytest.raises(KeyMaterialError) as info:
        load_signer(keys, None)
    assert "PROVENANCE_PKCS11_PIN" in info.value.diagnostics()
    with pytest.raises(KeyMaterialError, match="already"):
        init_pkcs11_keys(keys, token, "HSM Newsroom")


def test_cli_keys_init_and_stamp_with_a_token(
    token: Pkcs11Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from provenance.cli import app

    keys = tmp_path / "keys"
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    runner = CliRunner()
    init = runner.invoke(
        app,
        ["keys", "init", "--keys-dir", str(keys), "--pkcs11", str(MODULE), "--token-label", "newsroom",
         "--key-label", token.key_label, "--pin-file", str(pin_file)],
    )  # fmt: skip
    assert init.exit_code == 0, init.stderr
    (tmp_path / "in.jpg").write_bytes(images.jpeg(seed=44))
    monkeypatch.setenv("PROVENANCE_PKCS11_PIN", PIN)
    result = runner.invoke(
        app, ["stamp", str(tmp_path / "in.jpg"), "-o", str(tmp_path / "out.jpg"), "--source", "ai_generated",
              "--keys-dir", str(keys), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert '"state": "trusted"' in result.stdout
    monkeypatch.setenv("PROVENANCE_PKCS11_PIN", "0000")
    bad = runner.invoke(
        app, ["stamp", str(tmp_path / "in.jpg"), "-o", str(tmp_path / "out2.jpg"), "--source", "camera",
              "--keys-dir", str(keys)],
    )  # fmt: skip
    assert bad.exit_code == 1
    assert "PIN" in bad.stderr
    assert not (tmp_path / "out2.jpg").exists()


@pytest.mark.parametrize("alg", [Algorithm.ES256, Algorithm.ES384, Algorithm.PS256], ids=lambda a: a.value)
def test_each_token_algorithm_signs_a_trusted_manifest(token: Pkcs11Config, tmp_path: Path, alg: Algorithm) -> None:
    keys = tmp_path / "keys"
    config = Pkcs11Config(token.module, token.token_label, f"{token.key_label}-{alg.value}", token.pin)
    paths = init_pkcs11_keys(keys, config, "HSM Newsroom", alg)
    signer = load_signer(keys, PIN)
    assert signer.alg is alg
    trust = TrustConfig.from_files([paths.root_cert])
    result = stamp(images.jpeg(seed=45), StampRequest(Source.CAMERA), signer, trust)
    signer.close()  # type: ignore[union-attr]
    assert result.verdict.state is State.TRUSTED
    assert result.verdict.signer is not None
    assert result.verdict.signer.alg == alg.value


def test_token_rejects_algorithms_it_cannot_generate(token: Pkcs11Config, tmp_path: Path) -> None:
    with pytest.raises(KeyMaterialError, match="not supported"):
        init_pkcs11_keys(tmp_path / "keys", token, "HSM Newsroom", Algorithm.ED25519)


def test_the_log_key_on_a_token_signs_checkpoints_its_verifier_key_opens(token: Pkcs11Config, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from provenance.cli import app
    from provenance.keys.logkey import LOG_KEY_FILE, LOG_PKCS11_CONFIG, load_log_key, read_verifier
    from provenance.keys.pkcs11 import Pkcs11LogKey
    from provenance.notes import Checkpoint, open_checkpoint, sign_checkpoint

    keys = tmp_path / "keys"
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    made = CliRunner().invoke(
        app,
        ["keys", "init-log", "--keys-dir", str(keys), "--origin", "news.example.com/provenance/log", "--pkcs11",
         str(MODULE), "--key-label", token.key_label, "--pin-file", str(pin_file)],
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    assert (keys / LOG_PKCS11_CONFIG).exists()
    assert not (keys / LOG_KEY_FILE).exists()  # the key never leaves the token
    verifier = read_verifier(keys)
    assert verifier.vkey in made.output.replace("\n", "")
    key = load_log_key(keys, PIN)
    note = sign_checkpoint(Checkpoint("news.example.com/provenance/log", 3, bytes(range(32))), key)
    assert open_checkpoint(note, verifier).size == 3
    assert isinstance(key, Pkcs11LogKey)
    key.close()  # logged out: a login lasts for the whole process otherwise
    with pytest.raises(KeyMaterialError, match="no PIN"):
        load_log_key(keys)
    with pytest.raises(KeyMaterialError, match="refused the PIN"):
        load_log_key(keys, "0000")
    again = CliRunner().invoke(
        app,
        ["keys", "init-log", "--keys-dir", str(keys), "--origin", "news.example.com/provenance/log", "--pkcs11",
         str(MODULE), "--key-label", token.key_label, "--pin-file", str(pin_file)],
    )  # fmt: skip
    assert again.exit_code == 2  # a log keeps its key
