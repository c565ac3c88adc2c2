"""The sequencer: one at a time across every process, it gives pending events their place in the log and
signs the next checkpoint, in one transaction.

Events are written as :class:`~service.store.db.LogEntry` rows in the transaction of the event itself, so
an acknowledged stamp is never lost to a crash: it is either committed with its pending entry or not at
all. A round (:func:`sequence_once`) holds the cross-process lock ``log-sequencer`` (a PostgreSQL advisory
lock, or an ``flock`` beside the SQLite file), reads the latest checkpoint and up to ``log_batch`` pending
entries in the order they were written, appends their leaf hashes to the stored tiles, and commits the
entries' indexes, the changed tiles and the new signed checkpoint together. A round killed half-way
commits nothing; two rounds cannot both commit a tree of one size (the checkpoint's key is its size), so
the log never forks. ``logged_at`` never goes backwards: it is the later of the clock and the previous
checkpoint's time.

Every app process runs a :class:`Sequencer` thread: a round every ``log_sequence_seconds``, ``log_gather_seconds``
after this process committed an event (the events committed meanwhile join that round: under a stream of
uploads a round, its write lock and its checkpoint serve many, not each), and again at once while a round
was full.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from provenance.notes import Checkpoint, LogKey, sign_checkpoint
from provenance.tlog import LogError, Tree, append, leaf_hash
from provenance.transparency import ENTRY_VERSION, encode_entry, timestamp
from service.log.tree import StoredTiles, latest
from service.store import locks
from service.store.db import LogCheckpoint, LogEntry, LogTile, utcnow

log = logging.getLogger("provenance.service.log")

LOCK: Final = "log-sequencer"


@dataclass(frozen=True)
class Round:
    size: int  # the tree's size after the round
    added: int  # entries sequenced in it
    held: bool  # False: another process holds the sequencer lock; nothing was done


def _entry(row: LogEntry, index: int, logged: dt.datetime) -> bytes:
    record = {
        **(row.record or {}),
        "v": ENTRY_VERSION,
        "index": index,
        "at": timestamp(row.at),
        "logged_at": timestamp(logged),
    }
    try:
        return encode_entry(record)
    except LogError:  # cannot happen within the declaration's bounds; never let one event stop the log
        declared = encode_entry(record.get("declaration") or {})
        record["declaration"] = {"sha256": hashlib.sha256(declared).hexdigest(), "cut": True}
        return encode_entry(record)


def sequence_once(
    engine: Engine,
    sessions: sessionmaker[Session],
    key: LogKey,
    batch: int,
    *,
    clock: Callable[[], dt.datetime] = utcnow,
) -> Round:
    """One sequencing round (see the module's description)."""
    with locks.exclusive(engine, LOCK, wait=False) as held:
        if not held:
            return Round(0, 0, held=False)
        with sessions() as session:
            if engine.dialect.name == "sqlite":  # take the write lock first: the reads below stay current
                session.execute(text("DELETE FROM log_tiles WHERE 1 = 0"))
            previous = latest(session)
            size = previous.size if previous else 0
            pending = session.scalars(
                select(LogEntry).where(LogEntry.idx.is_(None)).order_by(LogEntry.id).limit(batch)
            ).all()
            if not pending and previous is not None:
                return Round(size, 0, held=True)
            logged = clock() if previous is None else max(clock(), previous.created_at)
            leaves = []
            for offset, row in enumerate(pending):
                row.idx, row.logged_at = size + offset, logged
                row.entry, row.record = _entry(row, size + offset, logged), None  # the entry holds it all now
                leaves.append(leaf_hash(row.entry))
            tiles = StoredTiles(session)
            changed = append(tiles, size, leaves)
            for (level, n), data in changed.items():
                stored = session.get(LogTile, (level, n))
                if stored is None:
                    session.add(LogTile(level=level, n=n, data=data))
                else:
                    stored.data = data
            new_size = size + len(pending)
            root = Tree(StoredTiles(session, changed), new_size).root()
            note = sign_checkpoint(Checkpoint(key.name, new_size, root), key)
            session.add(LogCheckpoint(size=new_size, root=root, note=note, created_at=logged))
            session.commit()
            return Round(new_size, len(pending), held=True)


class Sequencer:
    """This process's sequencing thread (see the module's description)."""

    def __init__(
        self,
        engine: Engine,
        sessions: sessionmaker[Session],
        key: LogKey,
        period: float,
        batch: int,
        gather: float = 0.0,
    ) -> None:
        self.engine, self.sessions, self.key = engine, sessions, key
        self.period, self.batch, self.gather = period, batch, gather
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="log-sequencer", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                done = sequence_once(self.engine, self.sessions, self.key, self.batch)
            except Exception as exc:  # e.g. the database away for a moment: the next round retries
                log.warning("log sequencing failed (%s: %s); retrying", type(exc).__name__, exc)
                done = Round(0, 0, held=True)
            if done.added >= self.batch:
                continue  # more are waiting
            if self._wake.wait(self.period) and self.gather > 0:
                self._stop.wait(self.gather)  # woken by a commit: the others of the moment join its round
