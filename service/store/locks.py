"""Cross-process locks for work that one process at a time must do (schema migration, re-verification,
webhook delivery).

Several server processes may start at once on one database (``--workers``, or two hosts on one
PostgreSQL). On PostgreSQL the lock is a session advisory lock, held by a connection of its own for the
duration of the block; on SQLite, whose processes share one file system, it is an ``flock`` on a file
beside the database file.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine


def _key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(f"newsroom-provenance:{name}".encode()).digest()[:8], "big", signed=True)


@contextmanager
def exclusive(engine: Engine, name: str, *, wait: bool = True) -> Iterator[bool]:
    """Hold the lock ``name`` across every process using this database until the block ends; yield whether
    it is held. ``wait=False``: do not wait for another holder (the block runs without it, told so)."""
    if engine.dialect.name == "postgresql":
        key = {"key": _key(name)}
        with engine.connect() as connection:
            if wait:
                connection.execute(text("SELECT pg_advisory_lock(:key)"), key)
                held = True
            else:
                held = bool(connection.scalar(text("SELECT pg_try_advisory_lock(:key)"), key))
            try:
                yield held
            finally:
                if held:
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), key)
                connection.commit()
        return
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        yield True  # one process owns an in-memory database
        return
    fd = os.open(Path(database).with_name(f"{Path(database).name}.{name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)  # releases the lock
