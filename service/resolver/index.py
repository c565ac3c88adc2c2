"""Nearest-neighbour search over the stored soft bindings (``soft_bindings``, :class:`SoftBindingEntry`).

Multi-index hashing: two 64-bit codes at most ``d`` bits apart agree within ``d // 3`` bits in at least
one of their three chunks (22, 21 and 21 bits: pigeonhole). A query therefore asks each chunk's index
(kind, chunk) for the values within that radius of its own chunk (23 or 22 values at radius 1, 254 or
232 at radius 2), and the database checks the full distance of those rows only (``bit_count`` on
PostgreSQL, ``hamming64`` on SQLite). A probed value is shared by stored count / 2^21 rows, so at 1M
stored items a lookup reads a few dozen rows, not the table: see README, "Soft bindings", for the figures.

Withdrawn items never match: their manifests are not served either.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache
from typing import Final

from sqlalchemy import BigInteger, Integer, and_, any_, cast, func, literal, or_, select
from sqlalchemy.dialects.postgresql import ARRAY, BIT
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import ColumnElement

from provenance.softbinding import MAX_DISTANCE, SoftBinding
from service.store.db import CHUNK_WIDTHS, SoftBindingEntry, Withdrawal, code_chunks, signed64

#: Most matches one query answers with (the API's ``maxResults`` is capped at this).
MAX_RESULTS: Final = 20


@dataclass(frozen=True)
class Match:
    """A stored manifest whose fingerprint is within :data:`MAX_DISTANCE` bits of the query's."""

    manifest_id: str
    item_id: str
    version: int | None
    distance: int

    @property
    def similarity(self) -> int:
        """The API's ``similarityScore``: 100 for the same code, falling linearly to 0 beyond the threshold."""
        return round(100 * (1 - self.distance / (MAX_DISTANCE + 1)))


@cache
def _neighbours(value: int, width: int, radius: int) -> tuple[int, ...]:
    """Every ``width``-bit value within ``radius`` bits of ``value``."""
    out = [value]
    for r in range(1, radius + 1):
        for bits in itertools.combinations(range(width), r):
            flipped = value
            for bit in bits:
                flipped ^= 1 << bit
            out.append(flipped)
    return tuple(out)


def _distance(session: Session, query: int) -> ColumnElement[int]:
    code = SoftBindingEntry.code
    if session.get_bind().dialect.name == "postgresql":
        xor = code.op("#", return_type=BigInteger)(literal(query, BigInteger))
        return func.bit_count(cast(xor, BIT(64)), type_=Integer)
    return func.hamming64(code, literal(query, BigInteger), type_=Integer)


def matches(session: Session, binding: SoftBinding, limit: int = MAX_RESULTS) -> list[Match]:
    """Stored manifests of the same kind within :data:`MAX_DISTANCE` bits, nearest first (then oldest)."""
    radius = MAX_DISTANCE // len(CHUNK_WIDTHS)
    chunks = code_chunks(binding.code)
    columns = (SoftBindingEntry.c0, SoftBindingEntry.c1, SoftBindingEntry.c2)
    # One (kind, chunk) index probe per term: both planners answer an OR of indexable terms by a union.
    # PostgreSQL takes each chunk's values as one array parameter (hundreds of separate ones cost more to
    # send and plan than the lookup itself).
    postgres = session.get_bind().dialect.name == "postgresql"

    def near(column: InstrumentedAttribute[int], chunk: int, width: int) -> ColumnElement[bool]:
        values = _neighbours(chunk, width, radius)
        if postgres:
            return column == any_(literal(list(values), ARRAY(Integer)))
        return column.in_(values)

    probe = or_(
        *(
            and_(SoftBindingEntry.kind == binding.kind, near(column, chunk, width))
            for column, chunk, width in zip(columns, chunks, CHUNK_WIDTHS, strict=True)
        )
    )
    distance = _distance(session, signed64(binding.code)).label("distance")
    withdrawn = select(Withdrawal.item_id).where(Withdrawal.item_id == SoftBindingEntry.item_id).exists()
    query = (
        select(SoftBindingEntry.manifest_id, SoftBindingEntry.item_id, SoftBindingEntry.version, distance)
        .where(probe, distance <= MAX_DISTANCE, ~withdrawn)
        .order_by(distance, SoftBindingEntry.created_at, SoftBindingEntry.manifest_id)
        .limit(max(1, min(limit, MAX_RESULTS)))
    )
    return [Match(m, i, v, int(d)) for m, i, v, d in session.execute(query)]


def entry(session: Session, manifest_id: str) -> SoftBindingEntry | None:
    """The index entry of a manifest id (``None`` when unknown)."""
    return session.get(SoftBindingEntry, manifest_id)
