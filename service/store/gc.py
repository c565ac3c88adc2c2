"""Collect what interrupted and refused uploads leave in the blob store: blobs no row references, and
temporary files of writes that never finished. Both stores are collected here, each by its own rule.

Local store (:class:`~service.store.blobs.LocalBlobStore`). Invariant (safe while the service runs, in any
number of processes of the host): a file is removed
only while this module holds the blob store's exclusive lock, after the database has been asked again,
under that lock, whether any row references it, and only if it is still the very file that was listed
(same device, inode, size and modification time). Every upload holds the shared lock from its first
write until its row has committed (:meth:`~service.store.blobs.BlobStore.writing`), so nothing an
upload may still commit is removed, and nothing that appeared after the listing is.

Uploads are never starved: the exclusive lock is held for one batch at a time (one query and at most
:data:`BATCH` unlinks) and taken with a bounded wait; a store that stays busy makes the run stop early
(``complete`` is False), never wait behind the uploads or make them wait behind it.

Fan-out directories are left in place, even empty: there are at most 256, and removing one could race
with a writer in another process that already counts on its entry being durable.

Object storage (:class:`~service.store.objects.ObjectStore`). No lock spans the hosts that share a bucket,
so time takes its place: an object is removed only when no row references it **and** its last PUT is older
than the store's grace period (``gc_grace_seconds``), which is longer than any upload takes from its first
PUT to its row's commit (settings validation refuses a shorter one). Every write PUTs its object again,
even one already stored, so an object an upload is about to reference is never older than that. Each
candidate's ``LastModified`` is read again (``HeadObject``) just before its batch is removed: a re-upload
of the same bytes since the listing keeps it. What is left is a window of milliseconds between that read
and the ``DeleteObjects``, for a re-upload of exactly the bytes of an orphan older than the grace period.
The listing is ``ListObjectsV2``, page by page; keys the store did not make are never touched.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, TypeVar

from sqlalchemy import select, union
from sqlalchemy.orm import Session, sessionmaker

from service.store.blobs import FAN_OUT, PROBE_PREFIX, TEMP_PREFIX, Blobs, LocalBlobStore, StoreBusyError
from service.store.db import ArticleVersion, Asset, Rendition
from service.store.errors import StorageUnavailableError

if TYPE_CHECKING:
    from service.store.objects import ObjectStore

#: Candidates re-checked and removed per hold of the exclusive lock, and digests per ``IN (…)`` query.
BATCH: Final = 500
#: Seconds after which a readiness probe's file is a leftover (probes write without the lock).
PROBE_GRACE: Final = 60.0
#: Keys per ``DeleteObjects`` request (the S3 API's limit).
DELETE_BATCH: Final = 1000

#: Every column that points at a blob (each indexed: the queries below are index lookups).
REFERENCES: Final = (
    Asset.upload_sha256,
    Asset.stamped_sha256,
    ArticleVersion.text_sha256,
    ArticleVersion.manifest_sha256,
    ArticleVersion.payload_sha256,
    Rendition.sha256,
)

_BLOB_NAME = re.compile(r"[0-9a-f]{62}")
_T = TypeVar("_T")


@dataclass(frozen=True)
class _Candidate:
    path: Path
    digest: str | None  # None: a temporary or probe file
    identity: tuple[int, int, int, int]  # st_dev, st_ino, st_size, st_mtime_ns when listed


@dataclass
class Collection:
    """What a run removed (a dry run: would remove)."""

    blobs: int = 0  # unreferenced blobs
    temp_files: int = 0  # temporary files of unfinished writes (and stale probe files)
    bytes: int = 0
    kept: int = 0  # candidates found referenced, or changed, on the re-check under the lock (or re-read)
    recent: int = 0  # objects PUT within the grace period (object storage): not candidates yet
    complete: bool = True  # False: stopped early because the store stayed busy
    listed: list[str] = field(default_factory=list)  # a dry run's paths or keys; a run only counts

    @property
    def files(self) -> int:
        return self.blobs + self.temp_files

    def summary(self, dry_run: bool = False) -> str:
        """One line: how many files and bytes went (or would go), and what they were."""
        verb = "would remove" if dry_run else "removed"
        return (
            f"{verb} {self.files} files, {self.bytes} bytes "
            f"({self.blobs} unreferenced blobs, {self.temp_files} temporary files)"
        )


def collect(
    blobs: Blobs,
    sessions: sessionmaker[Session],
    *,
    wait: float,
    dry_run: bool = False,
    batch: int = BATCH,
) -> Collection:
    """Remove every blob no row references and every leftover temporary file (see the module's invariant).

    ``wait``: seconds to wait for the local store's exclusive lock before each batch; when it is not had,
    the run stops and reports ``complete=False`` (object storage has no lock: its runs always complete).
    ``dry_run``: the same checks, nothing removed. Raises :class:`StorageUnavailableError` when the store
    refuses a removal (a read-only file system, a bucket policy) or cannot be listed.
    """
    if isinstance(blobs, LocalBlobStore):
        return _collect_local(blobs, sessions, wait=wait, dry_run=dry_run, batch=batch)
    from service.store.objects import ObjectStore  # boto3 only where object storage is configured

    if isinstance(blobs, ObjectStore):
        return _collect_objects(blobs, sessions, dry_run=dry_run, batch=batch)
    raise TypeError(f"no collector for {type(blobs).__name__}")


def _collect_objects(store: ObjectStore, sessions: sessionmaker[Session], *, dry_run: bool, batch: int) -> Collection:
    """The object storage rule: unreferenced and untouched for the grace period (see the module docstring)."""
    report = Collection()
    cutoff = store.clock() - store.gc_grace
    for listed in _chunks(store.listing(), min(batch, DELETE_BATCH)):
        old = [item for item in listed if item.last_modified < cutoff]
        report.recent += len(listed) - len(old)
        if not old:
            continue
        with sessions() as session:
            referenced = _referenced(session, [item.digest for item in old])
        orphans = []
        for item in old:
            if item.digest in referenced:
                continue
            now = store.last_modified(item.digest)  # PUT again since the listing: an upload's, keep it
            if now is None:
                continue  # removed by another collector
            if now >= cutoff:
                report.kept += 1
                continue
            orphans.append(item)
        if not dry_run:
            store.delete([item.key for item in orphans])
        for item in orphans:
            report.blobs += 1
            report.bytes += item.size
            if dry_run:
                report.listed.append(item.key)
    return report


def _collect_local(
    blobs: LocalBlobStore, sessions: sessionmaker[Session], *, wait: float, dry_run: bool, batch: int
) -> Collection:
    """The local rule: unreferenced, re-checked under the store's exclusive lock (the module docstring)."""
    report = Collection()
    pending: list[_Candidate] = []

    def remove_batch() -> bool:
        report.complete = _remove(blobs, sessions, pending[:batch], report, wait=wait, dry_run=dry_run)
        del pending[:batch]
        return report.complete

    for listed in _chunks(_listing(blobs.root), batch):
        # A first look without the lock keeps referenced blobs (nearly all of them) out of the batches.
        with sessions() as session:
            referenced = _referenced(session, [c.digest for c in listed if c.digest])
        pending += [c for c in listed if c.digest not in referenced]
        while len(pending) >= batch:
            if not remove_batch():
                return report
    while pending:  # the last, partial batch
        if not remove_batch():
            return report
    return report


def _remove(
    blobs: LocalBlobStore,
    sessions: sessionmaker[Session],
    candidates: Sequence[_Candidate],
    report: Collection,
    *,
    wait: float,
    dry_run: bool,
) -> bool:
    """Re-check ``candidates`` and remove the orphans, under the exclusive lock; False if it was not had."""
    try:
        with blobs.exclusive(wait):
            with sessions() as session:  # a new transaction: it sees every row committed before the lock
                referenced = _referenced(session, [c.digest for c in candidates if c.digest])
            for candidate in candidates:
                if candidate.digest in referenced:
                    report.kept += 1
                    continue
                try:
                    now = _identity(os.lstat(candidate.path))
                except FileNotFoundError:
                    continue  # renamed into place by its upload, or removed by another collector
                if now != candidate.identity:
                    report.kept += 1  # not the file that was listed
                    continue
                if not dry_run:
                    try:
                        candidate.path.unlink()
                    except FileNotFoundError:
                        continue
                    except OSError as exc:
                        raise StorageUnavailableError("the blob store is not writable", f"blob store: {exc}") from exc
                if candidate.digest:
                    report.blobs += 1
                else:
                    report.temp_files += 1
                report.bytes += candidate.identity[2]
                if dry_run:
                    report.listed.append(str(candidate.path.relative_to(blobs.root)))
    except StoreBusyError:
        return False
    return True


def _referenced(session: Session, digests: Sequence[str]) -> set[str]:
    """Those of ``digests`` that some row points at (one query per :data:`BATCH` digests)."""
    found: set[str] = set()
    for start in range(0, len(digests), BATCH):
        chunk = list(digests[start : start + BATCH])
        query = union(*(select(column).where(column.in_(chunk)) for column in REFERENCES))
        found.update(session.execute(query).scalars())
    return found


def _listing(root: Path) -> Iterator[_Candidate]:
    """Every blob and temporary file of the store, and the readiness probe files left for too long.

    Listed without the lock, so files come and go meanwhile: one gone before it is looked at is skipped.
    """
    with os.scandir(root) as top:
        for entry in top:
            if FAN_OUT.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False):
                yield from _fan_out_listing(Path(entry.path))
            elif entry.name.startswith(PROBE_PREFIX) and entry.is_file(follow_symlinks=False):
                stat = _stat(entry)
                if stat is not None and time.time() - stat.st_mtime > PROBE_GRACE:
                    yield _Candidate(Path(entry.path), None, _identity(stat))


def _fan_out_listing(directory: Path) -> Iterator[_Candidate]:
    with os.scandir(directory) as entries:
        for entry in entries:
            if not entry.is_file(follow_symlinks=False):
                continue  # never touch what the store did not make
            if _BLOB_NAME.fullmatch(entry.name):
                digest: str | None = directory.name + entry.name
            elif entry.name.startswith(TEMP_PREFIX):
                digest = None
            else:
                continue
            stat = _stat(entry)
            if stat is not None:
                yield _Candidate(Path(entry.path), digest, _identity(stat))


def _stat(entry: os.DirEntry[str]) -> os.stat_result | None:
    try:
        return entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None  # renamed into place or removed since the directory was read


def _chunks(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    chunk: list[_T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _identity(stat: os.stat_result) -> tuple[int, int, int, int]:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
