"""Per-process limits on callers: request rates per token or client, and how many refusals get an audit row.

Refused requests are audited within a bound (:class:`RefusalAudit`): flooding the service with bad
tokens cannot grow the audit log faster than one row per allowed refusal plus one summary per minute.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import Counter
from dataclasses import dataclass

from service.cache import LRU
from service.store.db import AuditEvent, utcnow


class RateLimiter:
    """A token bucket per key (a token id, or a client address hash; per process):
    ``per_minute`` requests, bursting up to the same."""

    def __init__(self, per_minute: int) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(per_minute)
        # Bounded: many distinct clients must not grow memory forever (the least recently seen go first).
        self._buckets: LRU[int, tuple[float, float]] = LRU(100_000)
        self._lock = threading.Lock()
        self.clock = time.monotonic

    def allow(self, key: int) -> float:
        """0 if the request may go ahead, else the seconds until it may."""
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.get(key) or (self.capacity, now)
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets.put(key, (tokens, now))
                return (1.0 - tokens) / self.rate if self.rate > 0 else float("inf")
            self._buckets.put(key, (tokens - 1.0, now))
            return 0.0


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
