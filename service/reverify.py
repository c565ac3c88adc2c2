"""Recompute stored decisions when the trust configuration changes.

A badge must never be stale: each stored decision records the trust fingerprint it was made under.
When the service's fingerprint differs (anchors added, removed or rotated), every asset and article
version is re-inspected from its stored bytes and its state, labels and verdict are replaced. Runs at
start-up automatically and as ``provenance reverify``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from provenance import ProvenanceError, Verdict, inspect
from service.context import ServiceContext, get_state, set_state
from service.store.db import ArticleVersion, Asset, AuditEvent

TRUST_KEY = "trust_fingerprint"


@dataclass(frozen=True)
class ReverifyReport:
    checked: int
    changed: int
    fingerprint: str
    previous: str | None


def _recheck(row: Asset | ArticleVersion, verify: Callable[[], Verdict], fingerprint: str) -> bool:
    """Replace ``row``'s decision with a fresh verification; return whether state or labels changed."""
    try:
        verdict = verify()
        state, labels, detail = verdict.state.value, list(verdict.labels), verdict.to_dict()
    except (ProvenanceError, FileNotFoundError) as exc:  # unreadable stored bytes count as invalid
        state, labels, detail = "invalid", [], {"error": str(exc)}
    changed = (state, labels) != (row.state, row.labels)
    row.state, row.labels, row.verdict, row.trust_fingerprint = state, labels, detail, fingerprint
    return changed


def reverify(ctx: ServiceContext, *, force: bool = False) -> ReverifyReport:
    """Re-inspect stored items made under another trust fingerprint (all of them with ``force``)."""
    fingerprint = ctx.trust.fingerprint
    checked = changed = 0

    limits = ctx.settings.limits

    def verify_asset(asset: Asset) -> Callable[[], Verdict]:
        return lambda: inspect(ctx.blobs.get(asset.stamped_sha256), ctx.trust, limits=limits)

    def verify_version(version: ArticleVersion) -> Callable[[], Verdict]:
        return lambda: inspect(
            ctx.blobs.get(version.text_sha256), ctx.trust, sidecar=ctx.blobs.get(version.manifest_sha256), limits=limits
        )

    with ctx.session() as session:
        previous = get_state(session, TRUST_KEY)
        work: list[tuple[Asset | ArticleVersion, Callable[[], Verdict]]] = [
            *((a, verify_asset(a)) for a in session.scalars(select(Asset))),
            *((v, verify_version(v)) for v in session.scalars(select(ArticleVersion))),
        ]
        for row, verify in work:
            if force or row.trust_fingerprint != fingerprint:
                checked += 1
                changed += _recheck(row, verify, fingerprint)
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
