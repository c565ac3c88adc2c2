"""Recompute stored decisions when the trust configuration changes.

A badge must never be stale: each stored decision records the trust fingerprint it was made under.
When the service's fingerprint differs (anchors added, removed or rotated), every asset and article
version is re-inspected from its stored bytes and its state, labels and verdict are replaced. Runs at
start-up automatically and as ``provenance reverify``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from provenance import ProvenanceError, inspect
from service.context import ServiceContext, get_state, set_state
from service.store.db import ArticleVersion, Asset, AuditEvent

TRUST_KEY = "trust_fingerprint"


@dataclass(frozen=True)
class ReverifyReport:
    checked: int
    changed: int
    fingerprint: str
    previous: str | None


def reverify(ctx: ServiceContext, *, force: bool = False) -> ReverifyReport:
    """Re-inspect stored items made under another trust fingerprint (all of them with ``force``)."""
    fingerprint = ctx.trust.fingerprint
    checked = changed = 0
    with ctx.session() as session:
        previous = get_state(session, TRUST_KEY)
        assets = session.scalars(select(Asset)).all()
        for asset in assets:
            if not force and asset.trust_fingerprint == fingerprint:
                continue
            checked += 1
            try:
                verdict = inspect(ctx.blobs.get(asset.stamped_sha256), ctx.trust)
                state, labels, detail = verdict.state.value, list(verdict.labels), verdict.to_dict()
            except (ProvenanceError, FileNotFoundError) as exc:
                state, labels, detail = "invalid", [], {"error": str(exc)}
            if (state, labels) != (asset.state, asset.labels):
                changed += 1
            asset.state, asset.labels, asset.verdict, asset.trust_fingerprint = state, labels, detail, fingerprint
        versions = session.scalars(select(ArticleVersion)).all()
        for version in versions:
            if not force and version.trust_fingerprint == fingerprint:
                continue
            checked += 1
            try:
                verdict = inspect(
                    ctx.blobs.get(version.text_sha256), ctx.trust, sidecar=ctx.blobs.get(version.manifest_sha256)
                )
                state, labels, detail = verdict.state.value, list(verdict.labels), verdict.to_dict()
            except (ProvenanceError, FileNotFoundError) as exc:
                state, labels, detail = "invalid", [], {"error": str(exc)}
            if (state, labels) != (version.state, version.labels):
                changed += 1
            version.state, version.labels, version.verdict = state, labels, detail
            version.trust_fingerprint = fingerprint
        set_state(session, TRUST_KEY, fingerprint)
        if checked or previous != fingerprint:
            session.add(
                AuditEvent(
                    kind="reverify",
                    detail={"from": previous, "to": fingerprint, "checked": checked, "changed": changed},
                )
            )
        session.commit()
    return ReverifyReport(checked, changed, fingerprint, previous)
