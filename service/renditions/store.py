"""The queries of renditions (:class:`~service.store.db.Rendition`): by asset, width and format; the asset a
rendition's digest belongs to (its badge); the digests of an asset's renditions (the change feed's refs)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.store.db import Asset, Rendition


def rendition(session: Session, asset_id: str, width: int, fmt: str) -> Rendition | None:
    """The stored rendition of ``asset_id`` at ``width`` pixels in ``fmt`` (``jpg`` / ``webp``)."""
    return session.get(Rendition, (asset_id, width, fmt))


def asset_of_rendition(session: Session, digest: str) -> Asset | None:
    """The asset whose rendition has the sha256 ``digest`` (a rendition's bytes are unique to one signing)."""
    query = select(Asset).join(Rendition, Rendition.asset_id == Asset.id).where(Rendition.sha256 == digest).limit(1)
    return session.scalars(query).first()


def rendition_digests(session: Session, asset_ids: Collection[str]) -> list[str]:
    """The sha256 of every rendition of the assets ``asset_ids``."""
    if not asset_ids:
        return []
    return list(session.scalars(select(Rendition.sha256).where(Rendition.asset_id.in_(asset_ids))))
