"""The `provenance` command line: exit codes, JSON contract, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from provenance.cli import app

from . import images
from .conftest import EXTERNAL, TEST_ANCHORS

JSON_KEYS = {
    "sha256",
    "media_type",
    "state",
    "labels",
    "reasons",
    "codes",
    "signer",
    "claim_generator",
    "ingredients",
    "sdk_version",
    "policy_version",
}


def run(cli: CliRunner, *args: str) -> tuple[int, str, str]:
    result = cli.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_keys_init_makes_private_key_0600_and_refuses_overwrite(cli: CliRunner, tmp_path: Path) -> None:
    keys = tmp_path / "k"
    code, _, _ = run(cli, "keys", "init", "--keys-dir", str(keys), "--org", "Daily Planet")
    assert code == 0
    assert stat.S_IMODE((keys / "signer.key").stat().st_mode) == 0o600
    before = (keys / "signer.key").read_bytes()
    code, _, err = run(cli, "keys", "init", "--keys-dir", str(keys))
    assert code == 2
    assert "already exists" in err
    assert "--force" in err
    assert (keys / "signer.key").read_bytes() == before
    code, _, _ = run(cli, "keys", "init", "--keys-dir", str(keys), "--force", "--alg", "ed25519")
    assert code == 0
    assert (keys / "signer.key").read_bytes() != before


def test_stamp_then_inspect_json_contract(cli: CliRunner, keys_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "render.jpg"
    src.write_bytes(images.jpeg())
    out = tmp_path / "stamped.jpg"
    code, stdout, _ = run(
        cli, "stamp", str(src), "-o", str(out), "--source", "ai_generated", "--keys-dir", str(keys_dir), "--json"
    )
    assert code == 0
    stamped = json.loads(stdout)
    assert stamped["verdict"]["state"] == "trusted"
    assert stamped["verdict"]["labels"] == ["ai_generated"]
    assert stamped["upstream"]["state"] == "absent"

    code, stdout, _ = run(cli, "inspect", str(out), "--keys-dir", str(keys_dir), "--json", "--lang", "zh-Hans")
    assert code == 0
    verdict = json.loads(stdout)
    assert verdict.keys() >= JSON_KEYS
    assert verdict["state"] == "trusted"
    assert verdict["labels"] == ["ai_generated"]
    assert verdict["label_text"] == {"ai_generated": "AI 生成的图像"}
    assert verdict["media_type"] == "image/jpeg"
    assert verdict["signer"]["common_name"] == "CLI Newsroom Content Signer (development)"
    assert verdict["reasons"][0]["label"] == "ai_generated"
    assert {"success", "informational", "failure"} == verdict["codes"].keys()
    assert verdict["codes"]["failure"] == []


def test_inspect_summary_is_readable(cli: CliRunner, keys_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "a.png"
    src.write_bytes(images.png())
    out = tmp_path / "b.png"
    assert run(cli, "stamp", str(src), "-o", str(out), "--source", "ai_edited", "--keys-dir", str(keys_dir))[0] == 0
    code, stdout, _ = run(cli, "inspect", str(out), "--keys-dir", str(keys_dir))
    assert code == 0
    assert "state: trusted" in stdout
    assert "AI-edited image (ai_edited)" in stdout
    code, stdout, _ = run(cli, "inspect", str(out), "--keys-dir", str(keys_dir), "--lang", "zh-Hans")
    assert "经 AI 编辑的图像" in stdout


def test_inspect_exits_zero_for_every_verdict(cli: CliRunner, tmp_path: Path) -> None:
    cases = {
        "c2pa-rs/no_manifest.jpg": "absent",
        "c2pa-rs/cloud.jpg": "unavailable",
        "c2pa-rs/XCA.jpg": "invalid",
        "c2pa-rs/C.jpg": "untrusted",
    }
    for file, state in cases.items():
        code, stdout, _ = run(cli, "inspect", str(EXTERNAL / file), "--json", "--keys-dir", str(tmp_path))
        assert code == 0, file
        assert json.loads(stdout)["state"] == state, file
    code, stdout, _ = run(
        cli, "inspect", str(EXTERNAL / "c2pa-rs/C.jpg"), "--json", "--trust-anchors", str(TEST_ANCHORS)
    )
    assert json.loads(stdout)["state"] == "trusted"


BAD_INPUTS = {
    "zero bytes": b"",
    "random bytes": bytes(range(256)) * 7,
    "truncated JPEG": images.jpeg()[:3000],
    "truncated PNG": images.png()[:-40],
    "text with a .jpg name": b"hello, this is not an image\n",
}


@pytest.mark.parametrize("data", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_one_line_exit_2_and_nothing_written(
    cli: CliRunner, keys_dir: Path, tmp_path: Path, data: bytes
) -> None:
    src = tmp_path / "upload.jpg"
    src.write_bytes(data)
    code, stdout, err = run(cli, "inspect", str(src), "--keys-dir", str(keys_dir))
    assert code == 2
    assert stdout == ""
    assert err.startswith("error: ")
    assert err.count("\n") == 1
    out = tmp_path / "out.jpg"
    code, _, err = run(cli, "stamp", str(src), "-o", str(out), "--source", "camera", "--keys-dir", str(keys_dir))
    assert code == 2
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys", "upload.jpg"]


def test_missing_file_and_directory_are_input_errors(cli: CliRunner, tmp_path: Path) -> None:
    assert run(cli, "inspect", str(tmp_path / "nope.jpg"))[0] == 2
    assert run(cli, "inspect", str(tmp_path))[0] == 2


def test_upstream_ai_conflict_exits_3_and_override_is_recorded(cli: CliRunner, keys_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "ai.jpg"
    src.write_bytes(images.jpeg())
    ai = tmp_path / "ai-stamped.jpg"
    assert run(cli, "stamp", str(src), "-o", str(ai), "--source", "ai_generated", "--keys-dir", str(keys_dir))[0] == 0
    out = tmp_path / "camera.jpg"
    code, _, err = run(cli, "stamp", str(ai), "-o", str(out), "--source", "camera", "--keys-dir", str(keys_dir))
    assert code == 3
    assert "ai_generated" in err
    assert "--override-upstream" in err
    assert not out.exists()
    code, stdout, _ = run(
        cli,
        "stamp", str(ai), "-o", str(out), "--source", "camera", "--keys-dir", str(keys_dir),
        "--override-upstream", "staff photographer shot this; vendor label is wrong", "--json",
    )  # fmt: skip
    assert code == 0
    verdict = json.loads(stdout)["verdict"]
    assert "org.newsroom-provenance.upstream-override" in json.dumps(verdict)
    assert verdict["labels"] == ["ai_generated"]  # the trusted upstream AI claim still counts


def test_stamp_refuses_to_overwrite_without_force(cli: CliRunner, keys_dir: Path, tmp_path: Path) -> None:
    src = tmp_path / "a.jpg"
    src.write_bytes(images.jpeg())
    out = tmp_path / "b.jpg"
    out.write_bytes(b"keep me")
    code, _, err = run(cli, "stamp", str(src), "-o", str(out), "--source", "camera", "--keys-dir", str(keys_dir))
    assert code == 2
    assert "already exists" in err
    assert out.read_bytes() == b"keep me"


def test_stamp_without_keys_explains_how_to_make_them(cli: CliRunner, tmp_path: Path) -> None:
    src = tmp_path / "a.jpg"
    src.write_bytes(images.jpeg())
    code, _, err = run(
        cli,
        "stamp",
        str(src),
        "-o",
        str(tmp_path / "b.jpg"),
        "--source",
        "camera",
        "--keys-dir",
        str(tmp_path / "none"),
    )
    assert code == 2
    assert "keys init" in err


def test_the_cli_trusts_its_own_signer_besides_the_anchors_given(
    cli: CliRunner, keys_dir: Path, tmp_path: Path
) -> None:
    # --trust-anchors names upstream anchors (here the C2PA test roots); the signer's own root (and
    # retired roots) in --keys-dir are trusted as well, as in the service.
    src, out = tmp_path / "a.jpg", tmp_path / "b.jpg"
    src.write_bytes(images.jpeg())
    trust = ["--keys-dir", str(keys_dir), "--trust-anchors", str(TEST_ANCHORS)]
    code, _, err = run(cli, "stamp", str(src), "-o", str(out), "--source", "camera", *trust)
    assert code == 0, err
    code, stdout, _ = run(cli, "inspect", str(out), "--json", *trust)
    assert code == 0
    assert json.loads(stdout)["state"] == "trusted"
    code, stdout, _ = run(cli, "inspect", str(EXTERNAL / "c2pa-rs/C.jpg"), "--json", *trust)
    assert json.loads(stdout)["state"] == "trusted"  # an upstream signer under the anchors given


def test_stamp_whose_signer_no_anchor_covers_fails_verification(cli: CliRunner, keys_dir: Path, tmp_path: Path) -> None:
    # Signing works, but the result chains to no configured anchor (the signer's root is gone): refuse,
    # write nothing.
    (keys_dir / "root.pem").unlink()
    src, out = tmp_path / "a.jpg", tmp_path / "b.jpg"
    src.write_bytes(images.jpeg())
    code, _, err = run(
        cli, "stamp", str(src), "-o", str(out), "--source", "camera", "--keys-dir", str(keys_dir),
        "--trust-anchors", str(TEST_ANCHORS),
    )  # fmt: skip
    assert code == 1
    assert "not trusted" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "file",
    [
        "c2pa-rs/nested_moov_1000.mp4",
        "c2pa-rs/tiff_poc.tiff",
        "encypher-c2pa/conformance-suite/structural/truncated_jumbf.jpg",
        "c2pa-rs/prerelease.jpg",
        "c2pa-rs/unsupported_type.txt",
    ],
)
def test_malformed_external_files_in_a_real_process(file: str) -> None:
    # A real interpreter, so nothing (rich, typer) can print a traceback behind our back.
    proc = subprocess.run(
        [sys.executable, "-m", "provenance.cli", "inspect", str(EXTERNAL / file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: ")
    assert proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
