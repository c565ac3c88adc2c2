"""The decision a badge shows, read from the stored record (no signing and no C2PA parsing here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy.orm import Session

from provenance.policy import LABEL_ORDER
from service.badges.render import BadgeDecision
from service.store import queries
from service.store.db import ArticleVersion, Asset


def _signer(verdict: dict[str, Any]) -> str | None:
    signer = verdict.get("signer")
    return signer.get("organization") or signer.get("common_name") if isinstance(signer, dict) else None


def _from_asset(ref: str, asset: Asset) -> BadgeDecision:
    return BadgeDecision(
        ref, asset.state, tuple(asset.labels), "image", _signer(asset.verdict), asset.created_at.isoformat()
    )


def _from_version(ref: str, version: ArticleVersion) -> BadgeDecision:
    return BadgeDecision(
        ref, version.state, tuple(version.labels), "article", _signer(version.verdict), version.created_at.isoformat()
    )


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


def find_decision(session: Session, ref: str) -> BadgeDecision | None:
    """The stored decision for ``ref`` (asset id, article id, or sha256 of original/stamped bytes)."""
    if ref.startswith("img_"):
        asset = queries.asset(session, ref)
        return _from_asset(ref, asset) if asset else None
    if ref.startswith("art_"):
        version = queries.latest_version(session, ref)
        return _from_version(ref, version) if version else None
    digest = ref.removeprefix("sha256-")
    sharing = queries.assets_sharing(session, digest)
    if sharing:
        return _from_asset(ref, strongest(sharing))
    version = queries.latest_version_with_text(session, digest)
    return _from_version(ref, version) if version else None
