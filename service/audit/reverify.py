"""Recompute stored decisions when the trust configuration or the label policy changes.

A badge must never be stale: each stored decision records the trust fingerprint and the policy
version it was made under. When either differs from the service's (anchors added, removed or
rotated; an upgrade that changes ``POLICY_VERSION``), every such asset and article version is
re-inspected from its stored bytes and its state, labels and verdict are replaced. Runs at start-up
automatically and as ``provenance reverify``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select

from provenance import POLICY_VERSION, ProvenanceError, Verdict, inspect
from service.context import ServiceContext, get_state, set_state
from service.store.db import ArticleVersion, Asset, AuditEvent
from service.store.locks import exclusive

TRUST_KEY = "trust_fingerprint"
POLICY_KEY = "policy_version"


@dataclass(frozen=True)
class ReverifyReport:
    checked: int
    changed: int
    fingerprint: str
    previous: str | None


def current(row: Asset | ArticleVersion, fingerprint: str) -> bool:
    """Whether ``row``'s decision was made under this trust configuration and this label policy."""
    return row.trust_fingerprint == fingerprint and row.verdict.get("policy_version") == POLICY_VERSION


def _recheck(row: Asset | ArticleVersion, verify: Callable[[], Verdict], fingerprint: str) -> bool:
    """Replace ``row``'s decision with a fresh verification; return whether state or labels changed.

    Facts about how the item was signed (an optional timestamp that could not be had) are kept.
    """
    try:
        verdict = verify()
        state, labels, detail = verdict.state.value, list(verdict.labels), verdict.to_dict()
    except (ProvenanceError, FileNotFoundError) as exc:  # unreadable stored bytes count as invalid
        state, labels, detail = "invalid", [], {"error": str(exc), "policy_version": POLICY_VERSION}
    note = row.verdict.get("timestamp_note")
    if note:
        detail["timestamp_note"] = note
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

    # Processes starting together re-verify one at a time; the later ones find the decisions current.
    with exclusive(ctx.engine, "reverify"), ctx.session() as session:
        previous = get_state(session, TRUST_KEY)
        work: list[tuple[Asset | ArticleVersion, Callable[[], Verdict]]] = [
            *((a, verify_asset(a)) for a in session.scalars(select(Asset))),
            *((v, verify_version(v)) for v in session.scalars(select(ArticleVersion))),
        ]
        for row, verify in work:
            if force or not current(row, fingerprint):
                checked += 1
                changed += _recheck(row, verify, fingerprint)
        previous_policy = get_state(session, POLICY_KEY)
        set_state(session, TRUST_KEY, fingerprint)
        set_state(session, POLICY_KEY, POLICY_VERSION)
        if checked or previous != fingerprint or previous_policy != POLICY_VERSION:
            detail = {"from": previous, "to": fingerprint, "checked": checked, "changed": changed}
            session.add(AuditEvent(kind="reverify", detail={**detail, "policy": POLICY_VERSION}))
        session.commit()
    return ReverifyReport(checked, changed, fingerprint, previous)
