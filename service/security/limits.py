"""Limits on callers: request rates per token or client (shared by every process), and how many refusals
get an audit row (per process).

Rates are token buckets kept in the database (``rate_buckets``), so N processes enforce one limit, not N:
each request is one atomic upsert (``INSERT … ON CONFLICT … DO UPDATE … RETURNING``, SQLite ≥ 3.35 and
PostgreSQL) on an engine whose commits do not wait for the disk (a bucket lost in a power cut gives a
caller a few requests more, never breaks the database).

Refused requests are audited within a bound (:class:`RefusalAudit`): flooding the service with bad
tokens cannot grow the audit log faster than one row per allowed refusal plus one summary per minute.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import text
from sqlalchemy.engine import Engine

from service.store.db import AuditEvent, utcnow

#: Seconds between prunings of idle buckets by one process.
PRUNE_SECONDS: Final = 60.0

# Refill the bucket for the time since its last request, then take one token if there is one (SET sees the
# row as it was). Portable: CASE, not LEAST/MIN.
_REFILLED: Final = (
    "CASE WHEN rate_buckets.tokens + (:now - rate_buckets.at) * :rate > :capacity THEN :capacity "
    "ELSE rate_buckets.tokens + (:now - rate_buckets.at) * :rate END"
)
_TAKE: Final = text(
    "INSERT INTO rate_buckets (bucket, tokens, at, allowed) VALUES (:bucket, :capacity - 1, :now, 1) "  # noqa: S608 (a constant is formatted in; values are bound)
    "ON CONFLICT (bucket) DO UPDATE SET "
    f"tokens = CASE WHEN {_REFILLED} >= 1 THEN {_REFILLED} - 1 ELSE {_REFILLED} END, "
    f"allowed = CASE WHEN {_REFILLED} >= 1 THEN 1 ELSE 0 END, at = :now "
    "RETURNING tokens, allowed"
)
# A bucket idle for a full refill is full again: the same as no row.
_PRUNE: Final = text("DELETE FROM rate_buckets WHERE at < :before")


class RateLimiter:
    """A token bucket per key (a token id, or a client address hash), shared by every process:
    ``per_minute`` requests, bursting up to the same. Time is the wall clock (``clock``), which the
    processes of a deployment share."""

    def __init__(self, engine: Engine, name: str, per_minute: int, clock: Callable[[], float] | None = None) -> None:
        self.engine = engine
        self.name = name
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        self.clock = clock or (lambda: time.time())
        self._pruned = -math.inf
        self._lock = threading.Lock()

    def allow(self, key: int | str) -> float:
        """0 if the request may go ahead (one token is taken), else the seconds until it may."""
        if self.capacity < 1:
            return math.inf
        now = self.clock()
        params = {"bucket": f"{self.name}:{key}", "now": now, "rate": self.rate, "capacity": self.capacity}
        with self._lock:
            prune = now - self._pruned >= PRUNE_SECONDS
            if prune:
                self._pruned = now
        with self.engine.begin() as connection:
            if prune:
                connection.execute(_PRUNE, {"before": now - 60.0})
            tokens, allowed = connection.execute(_TAKE, params).one()
        return 0.0 if allowed else (1.0 - tokens) / self.rate


@dataclass(frozen=True)
class SuppressedRefusals:
    """Refusals of one window that were counted but not written one by one."""

    count: int
    by_reason: dict[str, int]
    window_start: dt.datetime
    window_end: dt.datetime
    written: int  # refusals of the same window written as their own rows

    def event(self) -> AuditEvent:
        """The one audit row standing for them."""
        return AuditEvent(
            kind="auth_failures_suppressed",
            subject="refused requests beyond the per-minute audit limit",
            detail={
                "count": self.count,
                "by_reason": self.by_reason,
                "written": self.written,
                "window_start": self.window_start.isoformat(),
                "window_end": self.window_end.isoformat(),
            },
        )


class RefusalAudit:
    """Which refused requests get their own audit row (per process).

    At most ``per_minute`` rows per window of ``window`` seconds (the first refusal opens a window);
    beyond that, refusals are only counted, and the count becomes one summary row
    (:class:`SuppressedRefusals`) when the next refusal finds the window over, or at shutdown
    (:meth:`flush`). So every refusal is either a row or part of a summary's count.
    """

    def __init__(self, per_minute: int, window: float = 60.0) -> None:
        self.limit = per_minute
        self.window = window
        self._lock = threading.Lock()
        self._opened: float | None = None  # monotonic time the current window opened
        self._opened_at = utcnow()
        self._written = 0
        self._suppressed: Counter[str] = Counter()

    def admit(self, reason: str) -> tuple[bool, SuppressedRefusals | None]:
        """Whether this refusal gets its own row, and the summary of a window that just closed (or None)."""
        now = time.monotonic()
        with self._lock:
            closed = None
            if self._opened is None or now - self._opened >= self.window:
                closed = self._close(now)
                self._opened, self._opened_at, self._written = now, utcnow(), 0
            if self._written < self.limit:
                self._written += 1
                return True, closed
            self._suppressed[reason] += 1
            return False, closed

    def flush(self) -> SuppressedRefusals | None:
        """The summary of the current window, if it suppressed anything (at shutdown); the window is closed."""
        with self._lock:
            closed = self._close(time.monotonic())
            self._opened, self._written = None, 0
            return closed

    def _close(self, now: float) -> SuppressedRefusals | None:
        if self._opened is None or not self._suppressed:
            return None
        elapsed = min(now - self._opened, self.window)
        summary = SuppressedRefusals(
            count=sum(self._suppressed.values()),
            by_reason=dict(sorted(self._suppressed.items())),
            window_start=self._opened_at,
            window_end=self._opened_at + dt.timedelta(seconds=elapsed),
            written=self._written,
        )
        self._suppressed.clear()
        return summary
