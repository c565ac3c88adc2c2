"""How a stamp re-verifies its own output (provenance.selfcheck): ``full`` decides the signing chain's trust
on every stamp; ``cached_chain`` decides it on a signer's first stamp and then re-reads the signature and
every hash with trust verification off. Both must reach the same verdict on the same input."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from provenance import Source, StampRequest, State, TrustConfig, VerificationError, _c2pa, selfcheck, stamp
from provenance.articles import parse_payload, stamp_article
from provenance.inspect import verdict_from_report
from provenance.models import Verdict
from provenance.renditions import Format, render
from provenance.selfcheck import CACHED_TRUST, SelfCheck
from tests import assets, images
from tests.assets import Keys

SAMPLES = Path(__file__).resolve().parent.parent / "samples"

FULL_TRUST = "signingCredential.trusted"


@pytest.fixture(scope="module")
def newsroom() -> Keys:
    return Keys.issue("Self-check Newsroom")


@pytest.fixture(autouse=True)
def no_decisions() -> Iterator[None]:
    selfcheck.forget()
    yield
    selfcheck.forget()


def _success(verdict: Verdict) -> set[str]:
    return {c.code for c in verdict.codes.success}


def _shape(verdict: Verdict) -> Any:
    """What a verdict says, without the codes that show how trust was decided."""
    node = verdict.active_manifest
    assert node is not None
    return (
        verdict.state,
        verdict.labels,
        [(r.label, r.counted) for r in verdict.reasons],
        [(i.state, i.relationship, i.title) for i in node.walk()],
        sorted(c.code for c in verdict.codes.failure),
        sorted(c.code for c in verdict.codes.informational),
        {c for c in _success(verdict) if c not in (FULL_TRUST, CACHED_TRUST)},
    )


UPLOADS: dict[str, Callable[[Keys], bytes]] = {
    "unsigned jpeg": lambda _: images.jpeg(seed=41),
    "unsigned png": lambda _: images.png(seed=42),
    "ai upstream, own signer": lambda keys: assets.ai_generated_jpeg(keys, seed=43),
    "camera upstream": assets.camera_capture_jpeg,
    "composite ai upstream": assets.composite_edited_jpeg,
}


@pytest.mark.parametrize("name", UPLOADS)
def test_cached_chain_reaches_the_full_verdict(newsroom: Keys, name: str) -> None:
    upload = UPLOADS[name](newsroom)
    selfcheck.forget()  # making the upload may have stamped with this signer
    request = StampRequest(Source.AI_EDITED, title=name)
    full = stamp(upload, request, newsroom.signer, newsroom.trust, self_check=SelfCheck.FULL)
    first = stamp(upload, request, newsroom.signer, newsroom.trust)  # decides the chain in full
    cached = stamp(upload, request, newsroom.signer, newsroom.trust)
    assert FULL_TRUST in _success(full.verdict)
    assert CACHED_TRUST not in _success(full.verdict)
    assert FULL_TRUST in _success(first.verdict)
    assert CACHED_TRUST not in _success(first.verdict)
    assert CACHED_TRUST in _success(cached.verdict)
    assert FULL_TRUST not in _success(cached.verdict)
    assert full.verdict.state is State.TRUSTED
    assert full.verdict.labels
    assert _shape(cached.verdict) == _shape(full.verdict) == _shape(first.verdict)


def test_full_never_caches(newsroom: Keys) -> None:
    for _ in range(2):
        done = stamp(
            images.jpeg(seed=44),
            StampRequest(Source.CAMERA),
            newsroom.signer,
            newsroom.trust,
            self_check=SelfCheck.FULL,
        )
        assert FULL_TRUST in _success(done.verdict)
    assert selfcheck.known_trusted(newsroom.signer, newsroom.trust, SelfCheck.CACHED_CHAIN, timestamped=False) is None


def test_a_trust_change_decides_again(newsroom: Keys) -> None:
    upload, request = images.jpeg(seed=45), StampRequest(Source.AI_GENERATED)
    stamp(upload, request, newsroom.signer, newsroom.trust)
    assert CACHED_TRUST in _success(stamp(upload, request, newsroom.signer, newsroom.trust).verdict)
    other = Keys.issue("Another Newsroom")
    with pytest.raises(VerificationError, match="not trusted"):
        stamp(upload, request, newsroom.signer, other.trust)  # the cached decision is not for this trust
    widened = TrustConfig(newsroom.trust.anchors_pem + other.trust.anchors_pem)
    done = stamp(upload, request, newsroom.signer, widened)
    assert FULL_TRUST in _success(done.verdict)  # a new trust configuration: decided in full again


def test_revoking_the_signer_is_a_trust_change(newsroom: Keys) -> None:
    upload, request = images.jpeg(seed=46), StampRequest(Source.AI_GENERATED)
    first = stamp(upload, request, newsroom.signer, newsroom.trust)  # the chain's decision is cached
    assert first.verdict.active_manifest is not None
    assert first.verdict.active_manifest.signer is not None
    serial = int(first.verdict.active_manifest.signer.serial or "0")
    revoked = dataclasses.replace(newsroom.trust, revoked_serials=frozenset({serial}))
    with pytest.raises(VerificationError, match="invalid"):
        stamp(upload, request, newsroom.signer, revoked)


def test_a_decision_is_kept_no_longer_than_its_time(newsroom: Keys, monkeypatch: pytest.MonkeyPatch) -> None:
    upload, request = images.jpeg(seed=47), StampRequest(Source.AI_GENERATED)
    monkeypatch.setattr(selfcheck, "CHAIN_DECISION_SECONDS", 0.0)
    stamp(upload, request, newsroom.signer, newsroom.trust)
    assert FULL_TRUST in _success(stamp(upload, request, newsroom.signer, newsroom.trust).verdict)


def test_a_decision_ends_with_the_leaf() -> None:
    keys = assets.expiring_keys(dt.timedelta(minutes=5))
    stamp(images.jpeg(seed=48), StampRequest(Source.AI_GENERATED), keys.signer, keys.trust)
    decision = selfcheck.known_trusted(keys.signer, keys.trust, SelfCheck.CACHED_CHAIN, timestamped=False)
    assert decision is not None
    assert decision.until == keys.leaf_not_after.timestamp()


def test_a_timestamped_stamp_is_decided_in_full(newsroom: Keys) -> None:
    stamp(images.jpeg(seed=49), StampRequest(Source.AI_GENERATED), newsroom.signer, newsroom.trust)
    modes = {
        (mode, timestamped): selfcheck.known_trusted(newsroom.signer, newsroom.trust, mode, timestamped=timestamped)
        for mode in SelfCheck
        for timestamped in (False, True)
    }
    assert [key for key, decision in modes.items() if decision is not None] == [(SelfCheck.CACHED_CHAIN, False)]


def _trust_off_report(data: bytes, keys: Keys) -> dict[str, Any]:
    """The SDK's report on our own stamped bytes, read in this process with trust verification off."""
    kind, _, out = _c2pa._read_here([data], "image/jpeg", keys.trust, 0, verify_trust=False)
    assert kind == "report"
    report: dict[str, Any] = json.loads(out[0])
    return report


def test_a_cached_decision_counts_only_for_its_certificate_and_intact_bytes(newsroom: Keys) -> None:
    done = stamp(images.jpeg(seed=50), StampRequest(Source.AI_GENERATED), newsroom.signer, newsroom.trust)
    signer_info = done.verdict.active_manifest.signer if done.verdict.active_manifest else None
    assert signer_info is not None
    assert signer_info.serial is not None
    serial = int(signer_info.serial)

    def verdict(data: bytes, known: int) -> Verdict:
        return verdict_from_report(
            _trust_off_report(data, newsroom),
            sha256="0" * 64,
            size=len(data),
            media_type="image/jpeg",
            trust=newsroom.trust,
            known_chain=selfcheck.ChainDecision(known, float("inf")),
        )

    assert verdict(done.data, serial).state is State.TRUSTED
    assert verdict(done.data, serial + 1).state is State.UNTRUSTED  # another certificate's decision
    tampered = verdict(assets.tampered_pixels(done.data), serial)
    assert tampered.state is State.INVALID
    assert not tampered.labels


def test_articles_and_renditions_reach_the_full_verdict(newsroom: Keys) -> None:
    payload = parse_payload((SAMPLES / "articles" / "ai-weather.json").read_bytes())
    stamped_articles = [
        stamp_article(payload, newsroom.signer, newsroom.trust, self_check=mode)
        for mode in (SelfCheck.FULL, SelfCheck.CACHED_CHAIN, SelfCheck.CACHED_CHAIN)
    ]
    assert [CACHED_TRUST in _success(a.verdict) for a in stamped_articles] == [False, False, True]
    assert _shape(stamped_articles[0].verdict) == _shape(stamped_articles[1].verdict)
    assert _shape(stamped_articles[1].verdict) == _shape(stamped_articles[2].verdict)
    assert stamped_articles[2].verdict.labels == stamped_articles[0].verdict.labels != ()
    upload = images.jpeg(640, 480, seed=51)
    original = stamp(upload, StampRequest(Source.AI_GENERATED), newsroom.signer, newsroom.trust)
    made = [
        render(original.data, 320, Format.JPEG, newsroom.signer, newsroom.trust, self_check=mode)
        for mode in (SelfCheck.FULL, SelfCheck.CACHED_CHAIN)
    ]
    assert CACHED_TRUST in _success(made[1].verdict)
    assert FULL_TRUST in _success(made[0].verdict)
    assert _shape(made[0].verdict) == _shape(made[1].verdict)
    assert made[1].verdict.labels == ("ai_generated",)
