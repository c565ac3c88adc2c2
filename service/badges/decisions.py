"""The decision a badge shows, read from the stored record (no signing and no C2PA parsing here)."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import Session

from provenance.models import Review
from provenance.policy import LABEL_ORDER
from service.badges.render import WITHDRAWN, BadgeDecision
from service.renditions import store as renditions
from service.store import queries
from service.store.db import ArticleVersion, Asset, Withdrawal


def signer_name(signer: Any) -> str | None:
    """Who signed, as a stored verdict's ``signer`` names it: the certificate's organisation, else its
    common name (``None`` when neither is there)."""
    if not isinstance(signer, dict):
        return None
    return signer.get("organization") or signer.get("common_name") or None


def _from_asset(ref: str, asset: Asset) -> BadgeDecision:
    return BadgeDecision(
        ref,
        asset.state,
        tuple(asset.labels),
        "image",
        signer_name(asset.verdict.get("signer")),
        asset.created_at.isoformat(),
    )


def _from_version(ref: str, version: ArticleVersion) -> BadgeDecision:
    return BadgeDecision(
        ref,
        version.state,
        tuple(version.labels),
        "article",
        signer_name(version.verdict.get("signer")),
        version.created_at.isoformat(),
        review=_review(version.verdict),
    )


def _review(verdict: dict[str, Any]) -> Review | None:
    """The stored verdict's verified review (``verdict["review"]``, present only when there is one)."""
    review = verdict.get("review")
    if not isinstance(review, dict) or not isinstance(review.get("editor"), str):
        return None
    scope = review.get("scope")
    return Review(str(review["editor"]), str(review.get("reviewed_at")), scope if isinstance(scope, str) else None)


_LABEL_RANK: Final = {label: rank for rank, label in enumerate(reversed(LABEL_ORDER))}


def strongest(assets: Sequence[Asset]) -> Asset:
    """Of several assets made from the same bytes, the one a ``sha256-`` badge answers with: a trusted
    one with the highest-ranking AI label (``ai_generated`` over ``ai_edited``), else the newest.

    So a later declaration of the same bytes can never drop a trusted AI label from that badge.
    """

    def rank(asset: Asset) -> int:
        if asset.state != "trusted":
            return -1
        return max((_LABEL_RANK.get(label, -1) for label in asset.labels), default=-1)

    return max(assets, key=rank)  # ties: the first, i.e. the newest


def _withdrawn(decision: BadgeDecision, withdrawal: Withdrawal | None) -> BadgeDecision:
    """``decision``, or the withdrawn state if the item is withdrawn (no label, no signer: nothing shows)."""
    if withdrawal is None:
        return decision
    return BadgeDecision(
        decision.ref, WITHDRAWN, (), decision.kind, stamped_at=decision.stamped_at,
        withdrawn_at=withdrawal.withdrawn_at.isoformat(),
    )  # fmt: skip


def stored_item(session: Session, ref: str) -> Asset | ArticleVersion | None:
    """The stored row a badge ``ref`` answers with: the asset, the article's latest version, or for a
    ``sha256-`` ref the strongest of the assets sharing the bytes (:func:`strongest`), else the asset of the
    rendition with those bytes, else the latest article version with that text."""
    if ref.startswith("img_"):
        return queries.asset(session, ref)
    if ref.startswith("art_"):
        return queries.latest_version(session, ref)
    digest = ref.removeprefix("sha256-")
    sharing = queries.assets_sharing(session, digest)
    if sharing:
        return strongest(sharing)
    rendered = renditions.asset_of_rendition(session, digest)  # a rendition's badge is its asset's
    return rendered if rendered is not None else queries.latest_version_with_text(session, digest)


def decision_of(session: Session, ref: str, row: Asset | ArticleVersion) -> BadgeDecision:
    """The decision the badge ``ref`` shows for its stored row ``row`` (withdrawn, if the item is)."""
    if isinstance(row, Asset):
        return _withdrawn(_from_asset(ref, row), queries.withdrawal(session, row.id))
    return _withdrawn(_from_version(ref, row), queries.withdrawal(session, row.article_id))


def item_id(row: Asset | ArticleVersion) -> str:
    """The id of the item a stored row belongs to: the asset's, or the article's (every version shares it)."""
    return row.id if isinstance(row, Asset) else row.article_id


_SIGNER: Final = Asset.verdict["signer"]
#: What an image's badge needs of its row, without the manifest and the verdict tree: id, state, labels,
#: the signer's organisation and common name, when it was stamped, and when it was withdrawn (or NULL).
_ASSET_COLUMNS: Final = (
    Asset.id,
    Asset.state,
    Asset.labels,
    _SIGNER["organization"].as_string(),
    _SIGNER["common_name"].as_string(),
    Asset.created_at,
    Withdrawal.withdrawn_at,
)
#: The label tuples seen, each kept once (a cache of many decisions shares a handful of them).
_LABELS: dict[tuple[str, ...], tuple[str, ...]] = {}


def _shared(labels: list[str]) -> tuple[str, ...]:
    key = tuple(sys.intern(label) for label in labels)
    if len(_LABELS) > 1000:  # only the vocabulary's labels are ever stored; this bounds it anyway
        _LABELS.clear()
    return _LABELS.setdefault(key, key)


def _asset_select() -> Select[Any]:
    return select(*_ASSET_COLUMNS).outerjoin(Withdrawal, Withdrawal.item_id == Asset.id)


def _asset_decision(row: Any) -> tuple[str, BadgeDecision]:
    asset_id, state, labels, organization, common_name, created_at, withdrawn_at = row
    signer = organization or common_name or None
    decision = BadgeDecision(
        asset_id,
        sys.intern(state),
        _shared(labels),
        "image",
        sys.intern(signer) if signer else None,
        created_at.isoformat(),
    )
    if withdrawn_at is not None:
        decision = BadgeDecision(
            asset_id, WITHDRAWN, (), "image", stamped_at=decision.stamped_at, withdrawn_at=withdrawn_at.isoformat()
        )
    return asset_id, decision


#: The newest image preloaded last: (created_at, id), the order of ``ix_assets_created_id``.
Position = tuple[dt.datetime, str]


def newest_asset_decisions(
    session: Session, limit: int, before: Position | None = None
) -> tuple[list[tuple[str, BadgeDecision]], Position | None]:
    """Up to ``limit`` images' decisions, newest first (keyed by their ``img_`` ref), from ``before`` on;
    and the position to go on from (``None``: there are no more)."""
    query = _asset_select().order_by(Asset.created_at.desc(), Asset.id.desc()).limit(limit)
    if before is not None:
        query = query.where(tuple_(Asset.created_at, Asset.id) < tuple_(*before))
    rows = session.execute(query).all()
    found = [_asset_decision(row) for row in rows]
    return found, ((rows[-1].created_at, rows[-1].id) if len(rows) == limit else None)


def find_decision(session: Session, ref: str) -> tuple[str, BadgeDecision] | None:
    """The id of the item ``ref`` (asset id, article id, or sha256 of original/stamped bytes) resolves to,
    and its stored decision; ``None`` when it names nothing stored.

    A withdrawn item's decision is the ``withdrawn`` state. A ``sha256-`` ref answers with the strongest of
    the assets sharing the bytes (:func:`strongest`), withdrawn or not: withdrawing that one makes the badge
    show nothing, never a weaker claim of another asset (an AI claim is never lost).
    """
    if ref.startswith("img_"):  # the most looked-up kind: what its badge needs, in one query
        found = session.execute(_asset_select().where(Asset.id == ref)).first()
        return _asset_decision(found) if found is not None else None
    row = stored_item(session, ref)
    return (item_id(row), decision_of(session, ref, row)) if row is not None else None
