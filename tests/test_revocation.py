"""The operator's revocation list: manifests signed by a listed certificate count as invalid."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from provenance import ConfigurationError, FileKeySigner, Source, StampRequest, State, TrustConfig, inspect, stamp
from provenance.keys import IssuedChain, init_dev_keys
from provenance.trust import parse_revocation_list
from service.settings import load_settings

from . import images
from .databases import Database
from .service_support import running, service_settings


def leaf_serial(chain: IssuedChain) -> int:
    return x509.load_pem_x509_certificates(chain.chain_pem)[0].serial_number


LISTS = {
    "decimal": ("123456789\n", {123456789}),
    "0x-hex with comments": ("# revoked 2026-11-28\n0x75bcd15  # the old signer\n", {123456789}),
    "colon hex": ("07:5b:cd:15\n\n", {123456789}),
}


@pytest.mark.parametrize(("text", "serials"), LISTS.values(), ids=LISTS.keys())
def test_revocation_list_formats(text: str, serials: set[int]) -> None:
    assert parse_revocation_list(text) == serials


def test_bad_revocation_line_is_named() -> None:
    with pytest.raises(ConfigurationError, match="line 2"):
        parse_revocation_list("123\nnot-a-serial\n")


def test_a_revocation_list_keeps_the_rest_of_the_trust_configuration(
    chain: IssuedChain, trust: TrustConfig, tmp_path: Path
) -> None:
    tsa_root = tmp_path / "tsa-root.pem"
    tsa_root.write_bytes(chain.root_pem)
    listed = tmp_path / "revoked.txt"
    listed.write_text("123\n")
    configured = TrustConfig(trust.anchors_pem, "config text", None).with_tsa_anchors([tsa_root])
    revoking = configured.with_revocations(listed)
    assert revoking.tsa_anchors_pem == configured.tsa_anchors_pem != ""
    assert revoking.trust_config == "config text"
    assert revoking.revoked_serials == {123}


def test_revoked_signer_makes_its_manifests_invalid(
    chain: IssuedChain, signer: FileKeySigner, trust: TrustConfig, tmp_path: Path
) -> None:
    ai = stamp(images.jpeg(seed=51), StampRequest(Source.AI_GENERATED), signer, trust).data
    published = stamp(ai, StampRequest(Source.AI_GENERATED), signer, trust).data
    listed = tmp_path / "revoked.txt"
    listed.write_text(f"{leaf_serial(chain)}\n")
    revoking = trust.with_revocations(listed)
    assert revoking.fingerprint != trust.fingerprint  # a list change re-verifies stored items
    verdict = inspect(published, revoking)
    assert verdict.state is State.INVALID
    assert verdict.labels == ()
    assert "signingCredential.revoked" in verdict.codes.failure_codes()
    assert verdict.active_manifest is not None
    assert verdict.active_manifest.ingredients[0].state is State.INVALID
    assert inspect(published, trust).labels == ("ai_generated",)  # unchanged without the list


def test_service_badges_drop_when_a_signer_is_revoked(database: Database, tmp_path: Path, keys_dir: Path) -> None:
    data_dir = tmp_path / "var"
    with running(service_settings(data_dir, keys_dir, database)) as svc:
        asset = svc.upload(images.jpeg(seed=52), {"source": "ai_generated"}).json()
        assert asset["labels"] == ["ai_generated"]
    serial = x509.load_pem_x509_certificates((keys_dir / "chain.pem").read_bytes())[0].serial_number
    listed = tmp_path / "revoked.txt"
    listed.write_text(f"{serial:#x}\n")
    with running(service_settings(data_dir, keys_dir, database, revoked_serials_file=listed)) as svc:
        badge = svc.client.get(f"/v1/badges/{asset['id']}.json").json()
        assert badge["state"] == "invalid"
        assert badge["labels"] == []
        assert badge["badge"]["text"] == "Content Credentials invalid"


def test_service_settings_read_the_list(tmp_path: Path) -> None:
    init_dev_keys(tmp_path / "keys", "List Newsroom")
    listed = tmp_path / "revoked.txt"
    listed.write_text("42\n")
    settings = load_settings(data_dir=tmp_path / "var", keys_dir=tmp_path / "keys", revoked_serials_file=listed)
    assert settings.trust().revoked_serials == frozenset({42})
