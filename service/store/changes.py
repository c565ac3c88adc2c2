"""The change feed (:class:`~service.store.db.Change`): what changed, written in the transaction that changes it.

Writers never call this module for items: the session hook of :mod:`service.store.db` adds the rows (and,
on PostgreSQL, the ``NOTIFY``). Readers follow the feed with a :class:`FeedCursor`; every service process
runs one :class:`ChangeListener` thread that hands what it read to its badge cache.

Invariant (no change is missed): a cursor applies every row committed after it started, exactly once, even
though sequence numbers are allocated at insert and may commit out of order (PostgreSQL): a number skipped
by a read is retried for :data:`GAP_SECONDS` before it counts as rolled back. When a read cannot keep up
(more than :data:`MAX_READ` rows, or too many open gaps) the cursor says so (``Changed.everything``) and
skips ahead: its reader must then forget everything, which is always safe.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final, cast

from sqlalchemy import delete, event, func, or_, select
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, sessionmaker

from service.store.db import NOTIFY_CHANNEL, ArticleVersion, Asset, Change, Rendition, utcnow

log = logging.getLogger("provenance.service")

#: Rows one read of the feed takes; more waiting means the reader is behind (it forgets everything).
MAX_READ: Final = 1000
#: Seconds a sequence number skipped by a read (a transaction still open, or rolled back) is looked for again.
GAP_SECONDS: Final = 300.0
#: Open gaps a cursor tracks; beyond, it is behind (a burst of rolled-back inserts).
MAX_GAPS: Final = 1000
#: Seconds between attempts to reopen a lost LISTEN connection (reads go on meanwhile).
RECONNECT_SECONDS: Final = 5.0
#: Longest uninterrupted wait of the listener thread (how soon it notices that it should stop).
_WAIT_SLICE: Final = 0.25


#: Changes older than this are pruned by the collector (:func:`prune`): readers follow the feed within
#: seconds, and a webhook that was down longer than this gets only the last week's changes.
PRUNE_AFTER: Final = dt.timedelta(days=7)
#: ``Session.info`` key: this transaction inserted change rows (see :func:`on_committed`).
_INSERTED: Final = "provenance.changes.inserted"


def trust_changed(session: Session) -> None:
    """Record that the trust configuration changed (every process reloads its trust and forgets its badges)."""
    session.add(Change(kind="trust", ref=None, reason="trust"))


def on_committed(sessions: sessionmaker[Session], on_commit: Callable[[], None]) -> None:
    """Call ``on_commit()`` after each committed transaction of ``sessions`` that inserted changes.

    Once per transaction, never for one rolled back or closed uncommitted (a savepoint rolled back inside a
    committed transaction may still count: a delivery that finds nothing is harmless). It runs in the
    committing thread after the commit, so it must be quick and must not use that session; an exception
    from it is logged, never raised into the code that committed.
    """

    def flushed(session: Session, _context: Any) -> None:
        if not session.info.get(_INSERTED) and any(isinstance(row, Change) for row in session.new):
            session.info[_INSERTED] = True

    def executed(state: ORMExecuteState) -> None:  # a bulk insert(Change) bypasses the flush
        if state.is_insert and getattr(getattr(state.statement, "table", None), "name", None) == Change.__tablename__:
            state.session.info[_INSERTED] = True

    def committed(session: Session) -> None:
        # Read, not popped: every registration's hook sees the flag; ``ended`` clears it afterwards.
        if session.info.get(_INSERTED, False):
            try:
                on_commit()
            except Exception:
                log.warning("change feed: announcing committed changes failed", exc_info=True)

    def ended(session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:  # the outermost one: committed (already announced) or not at all
            session.info.pop(_INSERTED, None)

    event.listen(sessions, "after_flush", flushed)
    event.listen(sessions, "do_orm_execute", executed)
    event.listen(sessions, "after_commit", committed)
    event.listen(sessions, "after_transaction_end", ended)


@dataclass(frozen=True)
class Changed:
    """What one read of the feed found, as a badge cache needs it."""

    #: Badge refs whose decision may have changed: item ids, and ``sha256-`` refs of their bytes or text.
    refs: frozenset[str]
    #: The trust configuration changed (reload it; every badge may change).
    trust: bool = False
    #: The reader fell behind and skipped rows: forget everything.
    everything: bool = False
    #: Rows read (for logs and tests).
    rows: int = 0


def prune(session: Session, older_than: dt.timedelta = PRUNE_AFTER, *, keep_undelivered: bool = True) -> int:
    """Delete changes older than ``older_than`` that were delivered (any, with ``keep_undelivered=False``:
    what to pass when no webhook is configured); return how many. The caller commits.

    The newest row is always kept: SQLite would otherwise hand its ``seq`` out again, and a reader that
    had seen it would miss the next change.
    """
    newest = select(func.max(Change.seq)).scalar_subquery()
    conditions = [Change.at < utcnow() - older_than, Change.seq < newest]
    if keep_undelivered:
        conditions.append(Change.delivered_at.is_not(None))
    result = session.execute(delete(Change).where(*conditions), execution_options={"synchronize_session": False})
    return cast(CursorResult[Any], result).rowcount


def latest_seq(session: Session) -> int:
    """The highest sequence number committed so far (0 for an empty feed)."""
    return session.scalar(select(func.max(Change.seq))) or 0


def badge_refs(session: Session, changes: Iterable[tuple[str, str | None]]) -> set[str]:
    """The badge refs that may answer differently after these ``(kind, ref)`` changes: each item id, and the
    ``sha256-`` refs of an asset's original and stamped bytes and renditions, and of every version of an article's text
    (a new or re-verified asset can change which asset a shared digest answers with)."""
    images = {ref for kind, ref in changes if kind == "image" and ref}
    articles = {ref for kind, ref in changes if kind == "article" and ref}
    refs = images | articles
    if images:
        rows = session.execute(select(Asset.upload_sha256, Asset.stamped_sha256).where(Asset.id.in_(images)))
        for upload, stamped in rows:
            refs.update((f"sha256-{upload}", f"sha256-{stamped}"))
        rendered = select(Rendition.sha256).where(Rendition.asset_id.in_(images))  # a rendition's badge is its asset's
        refs.update(f"sha256-{digest}" for digest in session.scalars(rendered))
    if articles:
        texts = select(ArticleVersion.text_sha256).where(ArticleVersion.article_id.in_(articles)).distinct()
        refs.update(f"sha256-{digest}" for digest in session.scalars(texts))
    return refs


class FeedCursor:
    """A position in the feed: every row at or below :attr:`floor` is settled, and above it the rows already
    applied (:attr:`seen`) and the numbers still missing (``gaps``, with when they were first missed)."""

    def __init__(self, floor: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.floor = floor
        self.top = floor  # the highest sequence number applied
        self.seen: set[int] = set()
        self.gaps: dict[int, float] = {}
        self.clock = clock

    @classmethod
    def at_end(cls, session: Session) -> FeedCursor:
        """A cursor past every row committed so far (a cache that starts empty needs none of them)."""
        return cls(latest_seq(session))

    def read(self, session: Session) -> Changed:
        """The changes committed since the last read (one indexed query, plus one for the digests of the
        items that changed)."""
        now = self.clock()
        wanted = Change.seq > self.top
        if self.gaps:
            wanted = or_(wanted, Change.seq.in_(sorted(self.gaps)))
        query = select(Change.seq, Change.kind, Change.ref).where(wanted).order_by(Change.seq).limit(MAX_READ + 1)
        rows = [row for row in session.execute(query) if row.seq not in self.seen]
        if len(rows) > MAX_READ:
            return self._skip(session, f"more than {MAX_READ} changes in one read")
        for row in rows:
            self.seen.add(row.seq)
            self.gaps.pop(row.seq, None)
        highest = max((row.seq for row in rows), default=self.top)
        for missing in range(self.top + 1, highest):
            if missing not in self.seen:
                self.gaps.setdefault(missing, now)
        self.top = max(self.top, highest)
        if len(self.gaps) > MAX_GAPS:
            return self._skip(session, f"more than {MAX_GAPS} sequence numbers missing")
        for missing, since in list(self.gaps.items()):
            if now - since >= GAP_SECONDS:  # its transaction rolled back (or outlived any sane transaction)
                del self.gaps[missing]
        self._settle()
        trust = any(row.kind == "trust" for row in rows)
        return Changed(frozenset(badge_refs(session, [(row.kind, row.ref) for row in rows])), trust, rows=len(rows))

    def _settle(self) -> None:
        while self.floor < self.top and self.floor + 1 not in self.gaps:  # applied, or given up
            self.floor += 1
            self.seen.discard(self.floor)

    def _skip(self, session: Session, why: str) -> Changed:
        log.warning("change feed: %s; every badge cache entry is dropped", why)
        self.floor = self.top = latest_seq(session)
        self.seen.clear()
        self.gaps.clear()
        return Changed(frozenset(), trust=True, everything=True)


class ChangeListener:
    """One thread per process that follows the feed and hands each read to ``apply``.

    It reads once every ``period`` seconds, and at once when woken: by a ``NOTIFY`` on PostgreSQL (a
    dedicated connection LISTENs; polling goes on when it is lost, and it is reopened), or by :meth:`wake`.
    ``apply(changed, started)`` receives every read, empty ones included; ``started`` (monotonic) is when the
    read began, so every change committed before then has been handed over. A read that fails is logged and
    reported to ``failed`` (the reader drops what it cached); the next read resumes where the last one ended.
    """

    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        period: float,
        apply: Callable[[Changed, float], None],
        failed: Callable[[], None],
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self.period = period
        self.apply = apply
        self.failed = failed
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._listen: Any = None  # the psycopg connection LISTENing (PostgreSQL)
        self._listen_retry = 0.0
        self._failing = False
        self.cursor: FeedCursor | None = None

    def start(self) -> None:
        """Position the cursor at the end of the feed (synchronously: raises if the database is unreachable),
        report that first empty read, then follow the feed in a daemon thread."""
        started = time.monotonic()
        with self.sessions() as session:
            self.cursor = FeedCursor.at_end(session)
        self.apply(Changed(frozenset()), started)
        self._open_listen()
        self._thread = threading.Thread(target=self._run, name="change-listener", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Read now (this process committed a change)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._close_listen()

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            woken = self._wait(last + self.period - time.monotonic())
            if self._stop.is_set():
                return
            now = time.monotonic()
            if woken or now >= last + self.period:
                last = now
                self._read(now)

    def _read(self, started: float) -> None:
        assert self.cursor is not None
        try:
            with self.sessions() as session:
                changed = self.cursor.read(session)
            self.apply(changed, started)
        except Exception as exc:  # any failure: the reader drops its cache, the next read catches up
            if not self._failing:
                log.warning("change feed: read failed (%s: %s); badge caches are bypassed", type(exc).__name__, exc)
            self._failing = True
            self.failed()
            return
        if self._failing:
            log.info("change feed: reads work again")
            self._failing = False

    def _wait(self, seconds: float) -> bool:
        """Wait up to ``seconds``; True when woken by a notification or :meth:`wake`."""
        deadline = time.monotonic() + max(0.0, seconds)
        while not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self._listen is None:
                self._open_listen()
            if self._listen is None:
                if self._wake.wait(min(left, _WAIT_SLICE)):
                    self._wake.clear()
                    return True
                continue
            if self._wake.is_set():
                self._wake.clear()
                return True
            try:
                if any(True for _ in self._listen.notifies(timeout=min(left, _WAIT_SLICE), stop_after=1)):
                    return True
            except Exception as exc:  # the connection is gone: poll until it is back
                log.warning("change feed: LISTEN connection lost (%s); polling every %s s", exc, self.period)
                self._close_listen()
                return True  # read now: a notification may have been lost with it
        return False

    def _open_listen(self) -> None:
        if self.engine.dialect.name != "postgresql" or time.monotonic() < self._listen_retry:
            return
        import psycopg  # PostgreSQL deployments only

        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        try:
            connection = psycopg.connect(url, autocommit=True, keepalives=1, keepalives_idle=30, connect_timeout=5)
            connection.execute(f"LISTEN {NOTIFY_CHANNEL}")
        except psycopg.Error as exc:
            log.warning("change feed: cannot LISTEN (%s); polling every %s s", exc, self.period)
            self._listen_retry = time.monotonic() + RECONNECT_SECONDS
            return
        self._listen = connection

    def _close_listen(self) -> None:
        connection, self._listen = self._listen, None
        self._listen_retry = time.monotonic() + RECONNECT_SECONDS
        if connection is not None:
            try:
                connection.close()
            except Exception:  # already broken
                log.debug("change feed: closing the LISTEN connection failed", exc_info=True)
