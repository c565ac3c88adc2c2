"""Detached (sidecar) manifests: `inspect --sidecar` verifies the exact bytes against the manifest."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from provenance import FileKeySigner, State, TrustConfig, _c2pa, inspect
from provenance.cli import app
from provenance.keys import IssuedChain
from provenance.media import DEFAULT_LIMITS
from provenance.policy import IPTC

from . import images

MANIFEST = {
    "claim_generator_info": [{"name": "sidecar-test", "version": "1"}],
    "assertions": [
        {
            "label": "c2pa.actions.v2",
            "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": IPTC + "trainedAlgorithmicMedia"}]},
        }
    ],
}


@pytest.fixture(scope="module")
def detached(signer: FileKeySigner, trust: TrustConfig) -> tuple[bytes, bytes]:
    data = images.jpeg(seed=5)
    return data, _c2pa.sign(data, "image/jpeg", MANIFEST, signer, trust, limits=DEFAULT_LIMITS, embed=False).manifest


def test_sidecar_verifies_the_untouched_asset(detached: tuple[bytes, bytes], trust: TrustConfig) -> None:
    data, manifest = detached
    assert inspect(data, trust).state is State.ABSENT  # nothing was embedded
    verdict = inspect(data, trust, sidecar=manifest)
    assert verdict.state is State.TRUSTED
    assert verdict.labels == ("ai_generated",)


def test_sidecar_for_other_bytes_is_invalid(detached: tuple[bytes, bytes], trust: TrustConfig) -> None:
    _, manifest = detached
    verdict = inspect(images.jpeg(seed=6), trust, sidecar=manifest)
    assert verdict.state is State.INVALID
    assert verdict.labels == ()
    assert "assertion.dataHash.mismatch" in verdict.codes.failure_codes()


def test_cli_sidecar_option(detached: tuple[bytes, bytes], chain: IssuedChain, tmp_path: Path) -> None:
    data, manifest = detached
    (tmp_path / "photo.jpg").write_bytes(data)
    (tmp_path / "photo.c2pa").write_bytes(manifest)
    (tmp_path / "root.pem").write_bytes(chain.root_pem)
    result = CliRunner().invoke(
        app,
        ["inspect", str(tmp_path / "photo.jpg"), "--sidecar", str(tmp_path / "photo.c2pa"),
         "--trust-anchors", str(tmp_path / "root.pem"), "--json"],
    )  # fmt: skip
    assert result.exit_code == 0
    assert '"state": "trusted"' in result.stdout
