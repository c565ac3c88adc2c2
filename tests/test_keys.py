"""Development CA profile and the signer interface (key file and callback)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from provenance import (
    CallbackSigner,
    ConfigurationError,
    FileKeySigner,
    KeyMaterialError,
    SigningError,
    Source,
    StampRequest,
    State,
    TrustConfig,
    VerificationError,
    init_dev_keys,
    stamp,
)
from provenance.keys import Algorithm, IssuedChain, issue_chain
from provenance.trust import chain_summary

from . import images


def test_dev_chain_has_the_profile_the_sdk_demands(chain: IssuedChain) -> None:
    leaf, intermediate = x509.load_pem_x509_certificates(chain.chain_pem)
    root = x509.load_pem_x509_certificate(chain.root_pem)
    assert leaf.version is x509.Version.v3
    ku = leaf.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical
    assert ku.value.digital_signature
    assert not ku.value.key_cert_sign
    eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.EMAIL_PROTECTION]
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    ski = intermediate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    inter_bc = intermediate.extensions.get_extension_for_class(x509.BasicConstraints).value
    assert inter_bc.ca is True
    assert inter_bc.path_length == 0
    assert leaf.issuer == intermediate.subject
    assert intermediate.issuer == root.subject
    assert root.subject not in (leaf.subject, intermediate.subject)


def test_init_dev_keys_modes_and_no_overwrite(tmp_path: Path) -> None:
    paths = init_dev_keys(tmp_path / "k", "Gazette")
    assert stat.S_IMODE(paths.signer_key.stat().st_mode) == 0o600
    assert not list((tmp_path / "k").glob(".*tmp"))
    with pytest.raises(KeyMaterialError, match="already exists"):
        init_dev_keys(tmp_path / "k", "Gazette")
    signer = FileKeySigner.from_files(paths.signer_key, paths.chain)
    assert signer.alg is Algorithm.ES256


@pytest.mark.parametrize("alg", list(Algorithm), ids=[a.value for a in Algorithm])
def test_each_algorithm_signs_a_trusted_manifest(alg: Algorithm) -> None:
    issued = issue_chain("Algo News", alg)
    signer = FileKeySigner.from_pem(issued.key_pem, issued.chain_pem)
    assert signer.alg is alg
    result = stamp(images.jpeg(), StampRequest(Source.CAMERA), signer, TrustConfig(issued.root_pem.decode()))
    assert result.verdict.state is State.TRUSTED
    assert result.verdict.signer is not None
    assert (result.verdict.signer.alg or "").lower() == alg.value


def test_key_must_match_certificate(chain: IssuedChain) -> None:
    other = issue_chain("Other", Algorithm.ES256)
    with pytest.raises(KeyMaterialError, match="does not match"):
        FileKeySigner.from_pem(other.key_pem, chain.chain_pem)


@pytest.mark.parametrize(
    ("key", "certs"),
    [(b"not a key", None), (None, b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")],
    ids=["garbage key", "garbage chain"],
)
def test_garbage_key_material(chain: IssuedChain, key: bytes | None, certs: bytes | None) -> None:
    with pytest.raises(KeyMaterialError):
        FileKeySigner.from_pem(key or chain.key_pem, certs or chain.chain_pem)


def test_callback_signer_is_the_kms_seam(chain: IssuedChain, trust: TrustConfig, signer: FileKeySigner) -> None:
    calls: list[int] = []

    def remote_sign(payload: bytes) -> bytes:  # stands in for a KMS/HSM call
        calls.append(len(payload))
        return signer.sign(payload)

    kms = CallbackSigner.create(remote_sign, Algorithm.ES256, chain.chain_pem)
    result = stamp(images.jpeg(), StampRequest(Source.HUMAN), kms, trust)
    assert result.verdict.state is State.TRUSTED
    assert len(calls) == 1


def test_callback_failure_surfaces_with_its_own_message(chain: IssuedChain, trust: TrustConfig) -> None:
    def broken(payload: bytes) -> bytes:
        raise RuntimeError("HSM slot 3 is locked")

    kms = CallbackSigner.create(broken, Algorithm.ES256, chain.chain_pem)
    with pytest.raises(SigningError, match="HSM slot 3 is locked"):
        stamp(images.jpeg(), StampRequest(Source.HUMAN), kms, trust)


def test_wrong_signature_is_refused(chain: IssuedChain, trust: TrustConfig) -> None:
    # A callback returning a signature from another key: the SDK must not produce a trusted file.
    other = issue_chain("Other", Algorithm.ES256)
    impostor = FileKeySigner.from_pem(other.key_pem, other.chain_pem)
    kms = CallbackSigner.create(impostor.sign, Algorithm.ES256, chain.chain_pem)
    with pytest.raises(VerificationError, match="invalid") as info:
        stamp(images.jpeg(), StampRequest(Source.HUMAN), kms, trust)
    assert "claimSignature.mismatch" in info.value.diagnostics()


def test_keys_status_warns_before_expiry(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from provenance.cli import app

    init_dev_keys(tmp_path / "k", "Status News")
    runner = CliRunner()
    ok = runner.invoke(app, ["keys", "status", "--keys-dir", str(tmp_path / "k"), "--json"])
    assert ok.exit_code == 0
    rows = json.loads(ok.stdout)["certificates"]
    assert [r["file"] for r in rows] == ["signing chain", "signing chain", "trust anchor"]
    assert all(r["status"] == "ok" for r in rows)
    soon = runner.invoke(app, ["keys", "status", "--keys-dir", str(tmp_path / "k"), "--warn-days", "800"])
    assert soon.exit_code == 0
    assert "expires soon" in soon.stdout  # the 2-year development leaf
    missing = runner.invoke(app, ["keys", "status", "--keys-dir", str(tmp_path / "none")])
    assert missing.exit_code == 2


def test_keys_status_fails_on_an_expired_certificate(tmp_path: Path) -> None:
    import datetime as dt

    from typer.testing import CliRunner

    from provenance.cli import app

    now = dt.datetime.now(dt.UTC)
    issued = issue_chain(
        "Old News", Algorithm.ES256, not_before=now - dt.timedelta(days=10), not_after=now - dt.timedelta(days=1)
    )
    keys = tmp_path / "k"
    keys.mkdir()
    (keys / "chain.pem").write_bytes(issued.chain_pem)
    (keys / "root.pem").write_bytes(issued.root_pem)
    result = CliRunner().invoke(app, ["keys", "status", "--keys-dir", str(keys)])
    assert result.exit_code == 1
    assert "EXPIRED" in result.stdout


def test_an_issued_chain_never_shows_its_private_key(chain: IssuedChain) -> None:
    assert b"PRIVATE KEY" in chain.key_pem
    assert "PRIVATE KEY" not in repr(chain)
    assert "PRIVATE KEY" not in str(chain)


def test_chain_summary_names_each_certificate_and_hands_out_copies(chain: IssuedChain) -> None:
    summary = chain_summary(chain.chain_pem)
    certs = x509.load_pem_x509_certificates(chain.chain_pem)
    assert [s["subject"] for s in summary] == [c.subject.rfc4514_string() for c in certs]
    assert [s["serial"] for s in summary] == [format(c.serial_number, "x") for c in certs]
    summary[0]["subject"] = "changed by a caller"  # parsed once per chain: a caller's change stays its own
    assert chain_summary(chain.chain_pem)[0]["subject"] == certs[0].subject.rfc4514_string()
    with pytest.raises(ConfigurationError):
        chain_summary(b"not a certificate")
