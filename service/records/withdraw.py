"""Withdrawing a stored item, and reinstating it.

Invariant (provenance is never erased): a withdrawal hides an item from the public, it deletes nothing.
The stored bytes, the row and its decision stay; auditors still get its report. While an item is withdrawn
its public content, manifest and text answer 410 Gone with a ``/problems/withdrawn`` document that says
when (not who), and its badge shows nothing (its JSON says ``withdrawn``), in every process within
``badge_cache_seconds`` (the badge caches re-read the decision, which carries the withdrawal). Each
decision is committed together with its audit event (``withdraw`` / ``reinstate``: the token, the time,
the reason), so the trail never lacks one. An article is withdrawn as a whole: every version.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy.orm import Session

from service import problems
from service.context import ServiceContext
from service.problems import Problem
from service.records.lookup import asset_row
from service.security.tokens import Caller
from service.store import queries
from service.store.db import ArticleVersion, Asset, AuditEvent, Withdrawal
from service.store.errors import commit
from service.store.ids import ARTICLE_ID

WITHDRAW: Final = "withdraw"
REINSTATE: Final = "reinstate"

CONFLICT: Final[dict[int | str, dict[str, Any]]] = {
    409: {
        "description": "Already withdrawn (`/problems/already-withdrawn`) or not withdrawn (`/problems/not-withdrawn`)",
        "content": problems.responses(404)[404]["content"],
    }
}


def _latest(session: Session, article_id: str) -> ArticleVersion:
    if not ARTICLE_ID.fullmatch(article_id):
        raise Problem(404, "not-found", "Unknown article", "not an article id (art_ and 24 hex digits)")
    row = queries.latest_version(session, article_id)
    if row is None:
        raise Problem(404, "not-found", "Unknown article", f"no article {article_id}")
    return row


def _already(item_id: str, withdrawal: Withdrawal | None) -> Problem:
    when = f" at {withdrawal.withdrawn_at.isoformat()}" if withdrawal else ""
    return Problem(409, "already-withdrawn", "Already withdrawn", f"{item_id} was withdrawn{when}")


def _withdraw(ctx: ServiceContext, kind: str, item_id: str, reason: str, caller: Caller) -> None:
    with ctx.session() as session:
        existing = queries.withdrawal(session, item_id)
        if existing is not None:
            raise _already(item_id, existing)
        session.add(Withdrawal(item_id=item_id, kind=kind, token_id=caller.token_id, reason=reason))
        session.add(
            AuditEvent(
                kind=WITHDRAW, token_id=caller.token_id, subject=item_id, detail={"kind": kind, "reason": reason}
            )
        )
        if commit(session) is not None:  # withdrawn concurrently
            raise _already(item_id, queries.withdrawal(session, item_id))


def _reinstate(ctx: ServiceContext, kind: str, item_id: str, reason: str, caller: Caller) -> None:
    with ctx.session() as session:
        existing = queries.withdrawal(session, item_id)
        if existing is None:
            raise Problem(409, "not-withdrawn", "Not withdrawn", f"{item_id} is not withdrawn")
        detail = {
            "kind": kind,
            "reason": reason,
            # the decision reversed, so the event alone says what was undone
            "withdrawn_at": existing.withdrawn_at.isoformat(),
            "withdrawn_by": existing.token_id,
            "withdrawal_reason": existing.reason,
        }
        session.delete(existing)
        session.add(AuditEvent(kind=REINSTATE, token_id=caller.token_id, subject=item_id, detail=detail))
        if commit(session) is not None:
            raise Problem(409, "not-withdrawn", "Not withdrawn", f"{item_id} is not withdrawn")


def withdraw_asset(ctx: ServiceContext, asset_id: str, reason: str, caller: Caller) -> Asset:
    """Withdraw the asset; raises a 404 problem (unknown) or a 409 ``already-withdrawn``."""
    row = asset_row(ctx, asset_id)
    _withdraw(ctx, "image", row.id, reason, caller)
    return row


def reinstate_asset(ctx: ServiceContext, asset_id: str, reason: str, caller: Caller) -> Asset:
    """Publish a withdrawn asset again; raises a 404 problem (unknown) or a 409 ``not-withdrawn``."""
    row = asset_row(ctx, asset_id)
    _reinstate(ctx, "image", row.id, reason, caller)
    return row


def withdraw_article(ctx: ServiceContext, article_id: str, reason: str, caller: Caller) -> ArticleVersion:
    """Withdraw every version of the article; return its latest version. Raises 404 / 409 problems."""
    with ctx.session() as session:
        row = _latest(session, article_id)
    _withdraw(ctx, "article", article_id, reason, caller)
    return row


def reinstate_article(ctx: ServiceContext, article_id: str, reason: str, caller: Caller) -> ArticleVersion:
    """Publish a withdrawn article again; return its latest version. Raises 404 / 409 problems."""
    with ctx.session() as session:
        row = _latest(session, article_id)
    _reinstate(ctx, "article", article_id, reason, caller)
    return row
