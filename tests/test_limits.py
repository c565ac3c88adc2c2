"""Inspection limits on the ingredient tree: beyond them nothing is dropped silently."""

from __future__ import annotations

import importlib

import pytest

from provenance import FileKeySigner, InputError, Source, StampRequest, TrustConfig, inspect, stamp

from . import images

# The package re-exports the function `inspect`, which hides the module of the same name.
inspect_module = importlib.import_module("provenance.inspect")


def test_too_deep_provenance_is_reported_and_not_restamped(
    monkeypatch: pytest.MonkeyPatch, signer: FileKeySigner, trust: TrustConfig
) -> None:
    ai = stamp(images.jpeg(seed=9), StampRequest(Source.AI_GENERATED), signer, trust).data
    published = stamp(ai, StampRequest(Source.AI_GENERATED), signer, trust).data
    republished = stamp(published, StampRequest(Source.AI_GENERATED), signer, trust).data
    assert inspect(republished, trust).labels == ("ai_generated",)

    monkeypatch.setattr(inspect_module, "MAX_INGREDIENT_DEPTH", 1)
    verdict = inspect(republished, trust)
    assert verdict.active_manifest is not None
    assert any(n.truncated for n in verdict.active_manifest.walk())
    assert any("not evaluated" in r.text for r in verdict.reasons)
    with pytest.raises(InputError, match="too deep"):
        stamp(republished, StampRequest(Source.UNKNOWN), signer, trust)


def test_node_budget_bounds_wide_trees(
    monkeypatch: pytest.MonkeyPatch, signer: FileKeySigner, trust: TrustConfig
) -> None:
    published = stamp(
        stamp(images.jpeg(seed=10), StampRequest(Source.CAMERA), signer, trust).data,
        StampRequest(Source.CAMERA),
        signer,
        trust,
    ).data
    monkeypatch.setattr(inspect_module, "MAX_INGREDIENT_NODES", 0)
    verdict = inspect(published, trust)
    assert verdict.active_manifest is not None
    assert verdict.active_manifest.truncated
    assert verdict.active_manifest.ingredients == ()
