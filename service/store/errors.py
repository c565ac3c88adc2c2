"""Storage that refuses a write: a full or read-only disk under the blob store or the database.

Invariant: these errors are raised only for conditions of the storage itself (the errnos and SQLSTATEs
below), never for a bug or a bad request, and only where nothing the request asked for was stored: a
write that failed left no temporary file, and a blob it committed before the failure is referenced by
no row (an orphan that ``provenance gc`` collects). Each carries a ``detail`` safe to show a client and
a ``cause`` for the operator's log (paths and the system's message).
"""

from __future__ import annotations

import errno
import sqlite3
from typing import ClassVar

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

#: errnos of a write refused for lack of space (disk or quota).
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: errnos of a write refused by the file system: mounted read-only, or permissions taken away.
UNAVAILABLE_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})

# SQLite primary result codes (the low byte of the extended code).
_SQLITE_FULL = {sqlite3.SQLITE_FULL}  # "database or disk is full"
_SQLITE_UNAVAILABLE = {sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN}  # read-only / "unable to open"
# PostgreSQL SQLSTATEs.
_PG_FULL = {"53100"}  # disk_full
_PG_UNAVAILABLE = {"25006"}  # read_only_sql_transaction (a read-only database or a hot standby)


class StorageError(Exception):
    """A write refused by the storage itself; nothing the request asked for was stored."""

    status: ClassVar[int] = 503
    kind: ClassVar[str] = "storage-unavailable"
    title: ClassVar[str] = "Storage unavailable"

    def __init__(self, detail: str, cause: str) -> None:
        super().__init__(detail)
        self.detail = detail  # for the client: says what, never where
        self.cause = cause  # for the operator's log


class StorageFullError(StorageError):
    """The blob store's file system or the database is out of space (or over a quota)."""

    status = 507
    kind = "insufficient-storage"
    title = "Insufficient storage"


class StorageUnavailableError(StorageError):
    """The blob store or the database does not accept writes now (read-only, permissions, busy)."""


def from_os_error(exc: OSError, what: str = "blob store") -> StorageError | None:
    """The storage error ``exc`` is, for a write to ``what``; None for any other OS error (re-raise it)."""
    cause = f"{what}: {exc}"
    if exc.errno in FULL_ERRNOS:
        return StorageFullError(f"the {what} is full; nothing was stored", cause)
    if exc.errno in UNAVAILABLE_ERRNOS:
        return StorageUnavailableError(f"the {what} is not writable; nothing was stored", cause)
    return None


def from_database_error(exc: DBAPIError) -> StorageError | None:
    """The storage error a failed database write is (SQLite and PostgreSQL codes); None for any other."""
    orig = exc.orig
    cause = f"database: {type(orig).__name__}: {orig}"
    code = getattr(orig, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    state = getattr(orig, "sqlstate", None)
    if primary in _SQLITE_FULL or state in _PG_FULL:
        return StorageFullError("the database is full; nothing was stored", cause)
    if primary in _SQLITE_UNAVAILABLE or state in _PG_UNAVAILABLE:
        return StorageUnavailableError("the database is not writable; nothing was stored", cause)
    return None


def commit(session: Session) -> IntegrityError | None:
    """Commit ``session``; the integrity error (after a rollback) if a concurrent request's row won the race.

    Raises :class:`StorageError` (after a rollback: nothing stored) when the database refuses the write
    for lack of space or of write access; any other database error is raised unchanged.
    """
    try:
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        return exc
    except DBAPIError as exc:
        session.rollback()
        storage = from_database_error(exc)
        if storage is None:
            raise
        raise storage from exc
    return None
