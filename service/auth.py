"""API tokens and roles.

A token is ``pv_`` + 43 url-safe random characters, printed once at creation; the database keeps only
its sha256. Lookups go by that hash (which an attacker cannot steer) and the stored hash is compared
again in constant time. Roles: ``newsroom`` (upload), ``auditor`` (reports, verify), ``admin`` (all).
Refused requests are audited within a bound (:class:`RefusalAudit`): flooding the service with bad
tokens cannot grow the audit log faster than one row per allowed refusal plus one summary per minute.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from provenance import InputError
from provenance.display import visible
from service.cache import LRU
from service.store.db import MAX_AUDIT_SUBJECT, MAX_TOKEN_NAME, AuditEvent, Token, utcnow

ROLES: Final = ("newsroom", "auditor", "admin")
PREFIX: Final = "pv_"


@dataclass(frozen=True)
class Caller:
    """An authenticated token holder."""

    token_id: int
    name: str
    role: str

    def may(self, role: str) -> bool:
        return self.role == role or self.role == "admin"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_name(name: str) -> str:
    """``name`` as a token is stored under: without surrounding spaces, 1 to :data:`MAX_TOKEN_NAME`
    characters (the column's bound), none hidden (controls, format characters, line breaks: a name is
    shown in reports and audit rows, and PostgreSQL cannot store a NUL).

    Raises :class:`InputError` (the CLI's exit 2) otherwise.
    """
    name = name.strip()
    if not name:
        raise InputError("a token needs a name")
    if len(name) > MAX_TOKEN_NAME:
        raise InputError(f"a token name is at most {MAX_TOKEN_NAME} characters (this one has {len(name)})")
    if visible(name) != name or "\t" in name or "\n" in name:
        raise InputError("a token name must be printable text (no control, format or line-break characters)")
    return name


def create_token(session: Session, name: str, role: str) -> str:
    """Create a token and return its secret (the only time it exists in clear).

    Raises :class:`InputError` for an unknown role or a name :func:`token_name` refuses (nothing is added).
    """
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}")
    name = token_name(name)
    secret = PREFIX + secrets.token_urlsafe(32)
    session.add(Token(name=name, role=role, secret_sha256=_digest(secret)))
    session.add(AuditEvent(kind="token_created", subject=name, detail={"role": role}))
    return secret


def revoke_tokens(session: Session, name: str) -> int:
    """Revoke every live token called ``name`` (without surrounding spaces, as names are stored); return how
    many were revoked.

    Any stored name can be revoked, even one an older version accepted that :func:`token_name` now refuses;
    a name with a NUL names no token (and is not sent to the database: PostgreSQL cannot compare it).
    """
    name = name.strip()
    if not name or "\x00" in name:
        return 0
    tokens = session.scalars(select(Token).where(Token.name == name, Token.revoked_at.is_(None))).all()
    for token in tokens:
        token.revoked_at = utcnow()
        session.add(
            AuditEvent(
                kind="token_revoked", token_id=token.id, subject=audit_subject(name), detail={"role": token.role}
            )
        )
    return len(tokens)


def audit_subject(text: str) -> str:
    """``text`` fit for :attr:`AuditEvent.subject` whatever a client put in it: hidden characters named
    (:func:`provenance.display.visible`; PostgreSQL cannot store a NUL) and cut to :data:`MAX_AUDIT_SUBJECT`
    characters, the last one ``…`` when something was cut."""
    shown = visible(text[: MAX_AUDIT_SUBJECT + 1])
    if len(text) > MAX_AUDIT_SUBJECT or len(shown) > MAX_AUDIT_SUBJECT:
        return shown[: MAX_AUDIT_SUBJECT - 1] + "…"
    return shown


def authenticate(session: Session, authorization: str | None) -> Caller | None:
    """The caller behind an ``Authorization: Bearer …`` header, or ``None``."""
    if not authorization:
        return None
    scheme, _, secret = authorization.partition(" ")
    if scheme.lower() != "bearer" or not secret.startswith(PREFIX) or len(secret) > 200:
        return None
    digest = _digest(secret.strip())
    token = session.scalars(select(Token).where(Token.secret_sha256 == digest)).first()
    if token is None or token.revoked_at is not None or not hmac.compare_digest(token.secret_sha256, digest):
        return None
    return Caller(token.id, token.name, token.role)


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
