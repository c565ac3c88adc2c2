"""Recompute stored decisions when the trust configuration or the label policy changes.

A badge must never be stale: each stored decision records the trust fingerprint and the policy
version it was made under. When either differs from the service's (anchors added, removed or
rotated; an upgrade that changes ``POLICY_VERSION``), every such asset and article version is
re-inspected from its stored bytes and its state, labels and verdict are replaced.

The work is cut into batches (:func:`plan`): ranges of item ids, each re-verified in one transaction
by :func:`reverify_batch`, which skips the items already current under the batch's fingerprint. A batch
is therefore idempotent (run twice, or retried after a worker died mid-way, it leaves the same rows)
and a re-verification is resumable (planning again only plans what is not yet current). The batches
run one after the other in this process (:func:`reverify`: at start-up on SQLite, ``provenance
reverify``) or as jobs spread over the workers (:mod:`service.jobs`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from provenance import POLICY_VERSION, Limits, ProvenanceError, Verdict, inspect
from service.context import ServiceContext, get_state, set_state
from service.store.changes import trust_changed
from service.store.db import ArticleVersion, Asset, AuditEvent
from service.store.locks import exclusive

TRUST_KEY = "trust_fingerprint"
POLICY_KEY = "policy_version"

Kind = Literal["asset", "article"]
#: Called after each batch with (items done, items planned).
Progress = Callable[[int, int], None]


class TrustMismatchError(RuntimeError):
    """A batch was planned under a trust configuration this process does not have (it is retried, so a
    process that has it can take it; a rolling upgrade ends the mismatch)."""


@dataclass(frozen=True)
class ReverifyReport:
    checked: int
    changed: int
    fingerprint: str
    previous: str | None


@dataclass(frozen=True)
class Batch:
    """Items to re-verify: the assets (or the articles, every version) whose id is in ``first..last``."""

    kind: Kind
    first: str
    last: str
    size: int  # items planned (those not current when planned; all of them with ``force``)

    def args(self) -> dict[str, Any]:
        return {"kind": self.kind, "first": self.first, "last": self.last, "size": self.size}


@dataclass(frozen=True)
class BatchResult:
    checked: int
    changed: int


def current(row: Asset | ArticleVersion, fingerprint: str) -> bool:
    """Whether ``row``'s decision was made under this trust configuration and this label policy."""
    return row.trust_fingerprint == fingerprint and row.verdict.get("policy_version") == POLICY_VERSION


def _stale(model: type[Asset] | type[ArticleVersion], fingerprint: str) -> ColumnElement[bool]:
    """SQL for ``not current(row, fingerprint)`` (a decision without a policy version is stale too)."""
    policy = model.verdict["policy_version"].as_string()
    return or_(model.trust_fingerprint != fingerprint, policy.is_(None), policy != POLICY_VERSION)


def progress(session: Session, fingerprint: str) -> tuple[int, int]:
    """(items current under ``fingerprint`` and this policy, items stored): assets plus article versions."""
    total = stale = 0
    for model in (Asset, ArticleVersion):
        total += session.scalar(select(func.count()).select_from(model)) or 0
        stale += session.scalar(select(func.count()).select_from(model).where(_stale(model, fingerprint))) or 0
    return total - stale, total


def stale_count(session: Session, fingerprint: str) -> int:
    """How many stored items are not current under ``fingerprint``."""
    done, total = progress(session, fingerprint)
    return total - done


def plan(session: Session, fingerprint: str, *, force: bool = False, size: int = 500) -> list[Batch]:
    """Batches of at most about ``size`` items covering every item not current under ``fingerprint``
    (every item with ``force``), in id order."""
    assets = select(Asset.id, func.count()).group_by(Asset.id).order_by(Asset.id)
    articles = (
        select(ArticleVersion.article_id, func.count())
        .group_by(ArticleVersion.article_id)
        .order_by(ArticleVersion.article_id)
    )
    if not force:
        assets = assets.where(_stale(Asset, fingerprint))
        articles = articles.where(_stale(ArticleVersion, fingerprint))
    return [
        *_chunks("asset", ((i, n) for i, n in session.execute(assets)), size),
        *_chunks("article", ((i, n) for i, n in session.execute(articles)), size),
    ]


def _chunks(kind: Kind, ids: Iterable[tuple[str, int]], size: int) -> Iterator[Batch]:
    first: str | None = None
    last, count = "", 0
    for item_id, items in ids:
        if first is None:
            first = item_id
        last, count = item_id, count + items
        if count >= size:
            yield Batch(kind, first, last, count)
            first, count = None, 0
    if first is not None:
        yield Batch(kind, first, last, count)


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


def reverify_batch(
    ctx: ServiceContext,
    batch: Batch,
    fingerprint: str,
    *,
    force: bool = False,
    note: Callable[[int, int], AuditEvent] | None = None,
) -> BatchResult:
    """Re-verify, in one transaction, the batch's items not current under ``fingerprint`` (all of them
    with ``force``); ``note(checked, changed)`` gives an audit event committed with them.

    Raises :class:`TrustMismatchError` if this process's trust is not ``fingerprint``: a decision is only
    ever recorded under the fingerprint of the trust that made it.
    """
    if ctx.trust.fingerprint != fingerprint:
        raise TrustMismatchError(
            f"batch planned under trust {fingerprint[:16]}…, this process has {ctx.trust.fingerprint[:16]}…"
        )
    limits = ctx.settings.limits
    checked = changed = 0
    with ctx.session() as session:
        rows: list[Asset | ArticleVersion]
        if batch.kind == "asset":
            query = select(Asset).where(Asset.id.between(batch.first, batch.last)).order_by(Asset.id)
            rows = list(session.scalars(query))
        else:
            versions = select(ArticleVersion).where(ArticleVersion.article_id.between(batch.first, batch.last))
            rows = list(session.scalars(versions.order_by(ArticleVersion.article_id, ArticleVersion.version)))
        for row in rows:
            if not force and current(row, fingerprint):
                continue  # done already (an earlier attempt of this batch, or another run)
            checked += 1
            changed += _recheck(row, _verifier(ctx, row, limits), fingerprint)
        if note is not None:
            session.add(note(checked, changed))
        session.commit()
    return BatchResult(checked, changed)


def _verifier(ctx: ServiceContext, row: Asset | ArticleVersion, limits: Limits) -> Callable[[], Verdict]:
    if isinstance(row, Asset):
        digest = row.stamped_sha256
        return lambda: inspect(ctx.blobs.get(digest), ctx.trust, limits=limits)
    text, manifest = row.text_sha256, row.manifest_sha256
    return lambda: inspect(ctx.blobs.get(text), ctx.trust, sidecar=ctx.blobs.get(manifest), limits=limits)


def record_trust(session: Session, fingerprint: str) -> tuple[str | None, str | None]:
    """Record that decisions are (being) made under ``fingerprint`` and this policy; announce a trust
    change (every process reloads its trust) if another fingerprint was recorded. Returns the previous
    fingerprint and policy version. The caller commits."""
    previous, previous_policy = get_state(session, TRUST_KEY), get_state(session, POLICY_KEY)
    if previous != fingerprint:
        set_state(session, TRUST_KEY, fingerprint)
        if previous is not None:
            trust_changed(session)
    if previous_policy != POLICY_VERSION:
        set_state(session, POLICY_KEY, POLICY_VERSION)
    return previous, previous_policy


def reverify(ctx: ServiceContext, *, force: bool = False, on_progress: Progress | None = None) -> ReverifyReport:
    """Re-inspect, in this process, the stored items made under another trust fingerprint or policy (all
    of them with ``force``), batch after batch; ``on_progress`` is told after each batch."""
    fingerprint = ctx.trust.fingerprint
    checked = changed = 0
    # Processes starting together re-verify one at a time; the later ones find the decisions current.
    with exclusive(ctx.engine, "reverify"):
        with ctx.session() as session:
            batches = plan(session, fingerprint, force=force, size=ctx.settings.reverify_batch_size)
        total, done = sum(b.size for b in batches), 0
        if on_progress is not None:
            on_progress(0, total)
        for batch in batches:
            result = reverify_batch(ctx, batch, fingerprint, force=force)
            checked, changed, done = checked + result.checked, changed + result.changed, done + batch.size
            if on_progress is not None:
                on_progress(done, total)
        with ctx.session() as session:
            previous, previous_policy = record_trust(session, fingerprint)
            if checked or previous != fingerprint or previous_policy != POLICY_VERSION:
                detail = {"from": previous, "to": fingerprint, "checked": checked, "changed": changed}
                session.add(AuditEvent(kind="reverify", detail={**detail, "policy": POLICY_VERSION}))
            session.commit()
    return ReverifyReport(checked, changed, fingerprint, previous)
