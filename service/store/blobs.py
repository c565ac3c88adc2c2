"""The blob store: its interface (:class:`Blobs`) and the local store on disk (:class:`LocalBlobStore`).

Every caller reaches blobs through :class:`Blobs` (``ctx.blobs``) and never learns which store it has: the
local fsynced store below (the embedded default) or S3-compatible object storage
(:class:`service.store.objects.ObjectStore`), chosen by the ``blob_store`` setting. Both keep the same
contract: blobs are named by the sha256 of their content; :meth:`Blobs.writing` gives a writer whose
``put`` (or ``stage`` then ``commit``) returns only once the blob is durably stored, so the row that
points at it commits after it; a refused write raises a :class:`~service.store.errors.StorageError`.

Invariants of the local store:

- **Durable.** A blob file, once visible under its name, is complete and on stable storage. Writes go to
  a temporary file (``.incoming-*``) in the blob's fan-out directory, are fsynced, renamed into place,
  and the directory is fsynced; a fan-out directory a write creates is first fsynced into the root, so
  a crash cannot take the directory (and every blob in it) away from under a committed row. Names are
  the sha256 of the content (server-generated; nothing from the request reaches a path).
- **Collectable, never while in use.** Every write happens inside :meth:`LocalBlobStore.writing`, which holds
  the store's shared lock until the row pointing at the blobs has committed (or the request failed); the
  collector (:mod:`service.store.gc`) removes only under the exclusive lock. A blob or temporary file no
  row references while the exclusive lock is held is therefore truly orphaned. A crash may leave an
  orphan (harmless, never referenced, collected later), never a partial blob.
- **Refusals are clear.** A write the file system refuses (full, read-only) raises a
  :class:`~service.store.errors.StorageError` and leaves no temporary file.

The lock is an ``flock`` on a file beside the root (``blobs.lock`` next to ``blobs/``): the blob
directory is shared by the processes of one host (hosts share a bucket instead: see
:mod:`service.store.objects`). Beside, not inside: the store's tree holds only blobs, and a read-only
blob mount can still be locked.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from service.store.errors import (
    FULL_ERRNOS,
    StorageError,
    StorageFullError,
    StorageUnavailableError,
    from_os_error,
)

log = logging.getLogger("provenance.service")

_HEX64 = re.compile(r"[0-9a-f]{64}")
FAN_OUT = re.compile(r"[0-9a-f]{2}")  # the first two hex digits of a digest name its directory
TEMP_PREFIX: Final = ".incoming-"  # an upload's blob before its rename (in the fan-out directory)
PROBE_PREFIX: Final = ".probe-"  # a readiness probe's file (in the root)

#: Seconds a write waits for the shared lock (a collection batch holds the exclusive lock for
#: milliseconds; waiting this long means the collector is stuck, and the upload answers 503).
WRITE_LOCK_WAIT: Final = 30.0
#: Seconds a readiness probe's answer is reused (a storm of probes costs one fsync a second).
PROBE_TTL: Final = 1.0
_PROBE_BYTES: Final = 4096  # one block: an empty file can be created on a full disk, a block cannot


class Probe:
    """A store's readiness probe, run at most once every ``ttl`` seconds (concurrent callers wait for one
    run); a change of the answer is logged, not every run."""

    def __init__(self, what: str, run: Callable[[], StorageError | None], ttl: float) -> None:
        self.what = what
        self.run = run
        self.ttl = ttl
        self._lock = threading.Lock()
        self._last: tuple[float, StorageError | None] = (-math.inf, None)

    def check(self) -> None:
        """Raise the last probe's :class:`StorageError`, probing again first if its answer is too old."""
        with self._lock:
            at, error = self._last
            if time.monotonic() - at >= self.ttl:
                fresh = self.run()
                if (fresh is None) != (error is None):
                    if fresh is None:
                        log.info("the %s is writable again", self.what)
                    else:
                        log.error("the %s is not writable: %s", self.what, fresh.cause)
                error = fresh
                self._last = (time.monotonic(), error)
        if error is not None:
            raise type(error)(error.detail, error.cause)


class StoreBusyError(StorageUnavailableError):
    """The store's lock could not be had in time (uploads in progress, or a collection batch running)."""


class StagedBlob(Protocol):
    """A blob written but not yet stored under its name (:meth:`BlobWriter.stage`)."""

    digest: str

    def commit(self) -> str:
        """Store the blob under its name, durably; return its digest. Raises :class:`StorageError`."""
        ...

    def discard(self) -> None:
        """Forget the blob without storing it (best-effort, never raises)."""
        ...


class BlobWriter(Protocol):
    """Writes blobs while :meth:`Blobs.writing` is open."""

    def put(self, data: bytes, digest: str | None = None) -> str:
        """Store ``data`` durably; return its sha256 (``digest`` if the caller already has it). Idempotent.
        Raises :class:`StorageError` when the store refuses the write."""
        ...

    def stage(self, data: bytes, digest: str | None = None) -> StagedBlob:
        """Prepare a write of ``data`` whose :meth:`StagedBlob.commit` stores it (the slow part of a local
        write, the fsync, overlaps other work). Raises :class:`StorageError`."""
        ...


class Blobs(Protocol):
    """A content-addressed blob store, whichever it is (the one type callers see as ``ctx.blobs``)."""

    def get(self, digest: str) -> bytes:
        """The blob's bytes; raises ``FileNotFoundError`` if absent, :class:`StorageError` if unreachable."""
        ...

    def exists(self, digest: str) -> bool: ...

    def writing(self) -> AbstractContextManager[BlobWriter]:
        """A writer; keep the block open until the row that points at the written blobs has committed
        (or the request failed): the collector keeps off what an open block wrote."""
        ...

    def discard(self, digest: str) -> None:
        """Remove a blob only the caller made, after its row failed to commit (best-effort, never raises:
        one left behind is an orphan the collector removes)."""
        ...

    def check_writable(self) -> None:
        """Raise :class:`StorageError` unless the store takes a write now (the readiness probe)."""
        ...

    def download_url(self, digest: str, media_type: str, seconds: int) -> str | None:
        """A URL that serves the blob directly for ``seconds`` (object storage: presigned), or None when the
        store has none and the service streams the bytes itself."""
        ...


class LocalBlobStore:
    """Blobs under ``root/ab/cdef…`` by sha256, on a local file system shared by the processes of one host."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.lock_path = root.with_name(root.name + ".lock")
        _make_dirs(root)
        # Fan-out directories present now are durable once the root is fsynced after listing them (even
        # those another process created a moment ago); one fsync here saves one per directory later.
        with os.scandir(root) as entries:
            listed = {entry.name for entry in entries if FAN_OUT.fullmatch(entry.name)}
        try:
            _fsync_dir(root)
        except OSError:
            listed = set()  # each is fsynced into the root at its first use instead
        self._durable: set[str] = listed  # names of fan-out directories known to be durable in the root
        self._probe = Probe("blob store", self._probe_once, PROBE_TTL)
        try:  # the lock file, once; a read-only data directory is reported at the first write instead
            os.close(os.open(self.lock_path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
        except OSError as exc:
            log.warning("cannot create the blob store's lock file: %s", exc)

    def path(self, digest: str) -> Path:
        if not _HEX64.fullmatch(digest):
            raise ValueError("not a sha256 hex digest")
        return self.root / digest[:2] / digest[2:]

    def get(self, digest: str) -> bytes:
        """The blob's bytes; raises ``FileNotFoundError`` if absent."""
        return self.path(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()

    def discard(self, digest: str) -> None:
        with contextlib.suppress(OSError):
            self.path(digest).unlink()

    def download_url(self, digest: str, media_type: str, seconds: int) -> None:
        return None  # the service streams local blobs itself

    @contextmanager
    def writing(self, wait: float = WRITE_LOCK_WAIT) -> Iterator[LocalBlobWriter]:
        """A writer, with the store's shared lock held until the block ends.

        Keep the block open until the row that points at the written blobs has committed (or the request
        failed): until then the collector cannot remove them, nor a blob this block found already stored.
        Each call opens its own lock file description (an ``flock`` belongs to one), so threads of one
        process do not share a lock. Raises :class:`StoreBusyError` if the lock is not had within ``wait``
        seconds, :class:`StorageError` if the lock file cannot be opened.
        """
        fd = self._open_lock()
        writer = LocalBlobWriter(self)
        try:
            if not _acquire(fd, fcntl.LOCK_SH, wait):
                raise StoreBusyError(
                    "the blob store is busy; nothing was stored", f"blob store: no shared lock within {wait} s"
                )
            yield writer
        finally:
            writer.active = False
            os.close(fd)  # releases the lock

    @contextmanager
    def exclusive(self, wait: float) -> Iterator[None]:
        """The store's exclusive lock (no write in progress in any process of this host) until the block ends.

        Polls for at most ``wait`` seconds, then raises :class:`StoreBusyError`: a collector gives way to
        uploads rather than make them queue behind it.
        """
        fd = self._open_lock()
        try:
            if not _acquire(fd, fcntl.LOCK_EX, wait):
                raise StoreBusyError("the blob store is busy", f"blob store: no exclusive lock within {wait} s")
            yield
        finally:
            os.close(fd)

    def check_writable(self) -> None:
        """Raise :class:`StorageError` unless a small file can be created, fsynced and removed in the root.

        The answer is reused for :data:`PROBE_TTL` seconds, and concurrent callers wait for one probe.
        """
        self._probe.check()

    def _probe_once(self) -> StorageError | None:
        try:
            fd, name = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=self.root)
            try:
                if os.write(fd, bytes(_PROBE_BYTES)) < _PROBE_BYTES:
                    return StorageFullError("the blob store is full", "blob store: short write of a probe file")
                os.fsync(fd)
            finally:
                os.close(fd)
                os.unlink(name)
        except OSError as exc:
            cause = f"blob store: {exc}"
            if exc.errno in FULL_ERRNOS:
                return StorageFullError("the blob store is full", cause)
            if isinstance(exc, FileNotFoundError):
                return StorageUnavailableError("the blob directory is missing", cause)
            return StorageUnavailableError("the blob store is not writable", cause)
        return None

    def _open_lock(self) -> int:
        with _storage_errors():
            return os.open(self.lock_path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def _fan_out(self, directory: Path) -> None:
        """Make ``directory`` (a fan-out directory) exist, durably in the root, before a blob goes in."""
        try:
            directory.mkdir()
        except FileExistsError:
            if directory.name in self._durable:
                return
            # Made by another thread or process that may not have fsynced the root yet: do it here.
        _fsync_dir(self.root)
        self._durable.add(directory.name)


#: The local store's former name (kept for callers that construct it directly).
BlobStore = LocalBlobStore


class LocalBlobWriter:
    """Writes into a :class:`LocalBlobStore` while its shared lock is held; made by its ``writing()``."""

    def __init__(self, store: LocalBlobStore) -> None:
        self.store = store
        self.active = True

    def put(self, data: bytes, digest: str | None = None) -> str:
        """Store ``data`` durably; return its sha256 (``digest`` if the caller already has it). Idempotent."""
        return self.stage(data, digest).commit()

    def stage(self, data: bytes, digest: str | None = None) -> Staged:
        """Write ``data`` to a temporary file and fsync it, without making it visible yet.

        Lets the slow part of a write (the fsync) overlap other work; :meth:`Staged.commit` then renames
        it into place, :meth:`Staged.discard` removes it (nothing is left behind for a refused upload).
        Raises :class:`StorageError` when the file system refuses the write (no temporary file is left).
        """
        if not self.active:
            raise RuntimeError("blob writer used after its lock was released")
        digest = digest or hashlib.sha256(data).hexdigest()
        target = self.store.path(digest)
        if target.exists():
            return Staged(digest, target, None)
        with _storage_errors():
            self.store._fan_out(target.parent)
            fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=target.parent)
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return Staged(digest, target, Path(tmp))


@dataclass
class Staged:
    """A blob written and fsynced under a temporary name (``temp`` is None when it was already stored)."""

    digest: str
    target: Path
    temp: Path | None

    def commit(self) -> str:
        """Make the blob visible under its name, durably (rename, then fsync the directory)."""
        if self.temp is not None:
            with _storage_errors():
                try:
                    os.replace(self.temp, self.target)
                except BaseException:
                    self.discard()
                    raise
                self.temp = None
                _fsync_dir(self.target.parent)
        return self.digest

    def discard(self) -> None:
        """Remove the temporary file (best-effort: one left on a read-only disk is the collector's)."""
        if self.temp is not None:
            with contextlib.suppress(OSError):
                self.temp.unlink(missing_ok=True)
            self.temp = None


@contextmanager
def _storage_errors() -> Iterator[None]:
    """OS errors that are the file system refusing a write become :class:`StorageError`; others pass."""
    try:
        yield
    except OSError as exc:
        storage = from_os_error(exc)
        if storage is None:
            raise
        raise storage from exc


def _acquire(fd: int, operation: int, wait: float) -> bool:
    """Take the ``flock`` ``operation`` on ``fd``, polling for at most ``wait`` seconds; whether it was had."""
    deadline = time.monotonic() + wait
    pause = 0.001
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            pass
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(pause, left))
        pause = min(pause * 2, 0.02)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs(path: Path) -> None:
    """``mkdir -p path``, each directory made fsynced into its parent."""
    missing = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made by another process: fsync the parent all the same
            directory.mkdir()
        _fsync_dir(directory.parent)
