"""The log as stored: its tiles, entries and checkpoints read through a session (:class:`StoredTiles`), and
the evidence an item's report carries (:func:`evidence`)."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from provenance.tlog import TILE_WIDTH, LogError, TileRef, Tree
from service.store.db import LogCheckpoint, LogEntry, LogTile


class StoredTiles:
    """Hash tiles from the database, with tiles of an append not yet written (``overlay``) read first."""

    def __init__(self, session: Session, overlay: Mapping[tuple[int, int], bytes] | None = None) -> None:
        self.session = session
        self.overlay = dict(overlay or {})

    def tile(self, level: int, index: int, width: int) -> bytes:
        data = self.overlay.get((level, index))
        if data is None:
            row = self.session.get(LogTile, (level, index))
            data = row.data if row is not None else b""
        return data


def latest(session: Session) -> LogCheckpoint | None:
    return session.scalars(select(LogCheckpoint).order_by(LogCheckpoint.size.desc()).limit(1)).first()


def tree(session: Session, size: int | None = None) -> tuple[Tree, LogCheckpoint | None]:
    """The stored tree (of ``size`` entries, else the latest checkpoint's) and the latest checkpoint."""
    checkpoint = latest(session)
    have = checkpoint.size if checkpoint else 0
    if size is not None and not 0 <= size <= have:
        raise LogError(f"the log has {have} entries")
    return Tree(StoredTiles(session), have if size is None else size), checkpoint


def tile_file(session: Session, ref: TileRef, size: int) -> bytes | None:
    """The bytes of a tile or entry bundle of the tree of ``size`` entries, or None when it has no such file
    (a full tile, or a partial one of exactly that width, within the tree)."""
    first = ref.index * TILE_WIDTH
    if ref.level < 0:
        if first + ref.width > size:
            return None
        rows = session.scalars(
            select(LogEntry.entry).where(LogEntry.idx >= first, LogEntry.idx < first + ref.width).order_by(LogEntry.idx)
        ).all()
        if len(rows) != ref.width or any(entry is None for entry in rows):
            return None
        return b"".join(len(entry).to_bytes(2, "big") + entry for entry in rows if entry is not None)
    if (first + ref.width) << (8 * ref.level) > size:
        return None
    row = session.get(LogTile, (ref.level, ref.index))
    if row is None or len(row.data) < ref.width * 32:
        return None
    return row.data[: ref.width * 32]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def entry_proof(session: Session, index: int, size: int | None = None) -> dict[str, Any]:
    """``{index, size, entry, proof}`` of the entry at ``index`` in the tree of ``size`` (default: latest)."""
    stored, _ = tree(session, size)
    if not 0 <= index < stored.size:
        raise LogError(f"the tree of size {stored.size} has no entry {index}")
    entry = session.scalars(select(LogEntry.entry).where(LogEntry.idx == index)).first()
    if entry is None:
        raise LogError(f"entry {index} is missing")
    return {
        "index": index,
        "size": stored.size,
        "entry": _b64(entry),
        "proof": [_b64(h) for h in stored.inclusion_proof(index)],
    }


def consistency(session: Session, old: int, new: int | None = None) -> dict[str, Any]:
    stored, _ = tree(session, new)
    if not 0 <= old <= stored.size:
        raise LogError(f"from is at most {stored.size}")
    return {"from": old, "to": stored.size, "proof": [_b64(h) for h in stored.consistency_proof(old)]}


def evidence(session: Session, item_id: str, version: int | None = None) -> dict[str, Any]:
    """The log's evidence for an item (an article version when ``version`` is given: its own events and the
    article's withdrawals): the latest checkpoint, and for every logged event its entry and inclusion proof
    against that checkpoint; events still waiting for the sequencer are counted as ``pending``."""
    stored, checkpoint = tree(session)
    query = select(LogEntry).where(LogEntry.item_id == item_id)
    if version is not None:
        query = query.where(or_(LogEntry.version == version, LogEntry.version.is_(None)))
    rows = session.scalars(query.order_by(LogEntry.id)).all()
    entries = []
    for row in rows:
        if row.idx is None or row.entry is None or row.idx >= stored.size:
            continue
        entries.append(
            {
                "index": row.idx,
                "event": row.event,
                "entry": _b64(row.entry),
                "proof": [_b64(h) for h in stored.inclusion_proof(row.idx)],
            }
        )
    return {
        "checkpoint": checkpoint.note if checkpoint else None,
        "size": stored.size,
        "entries": entries,
        "pending": len(rows) - len(entries),
    }


def pending_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(LogEntry).where(LogEntry.idx.is_(None))) or 0
