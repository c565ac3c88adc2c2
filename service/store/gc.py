"""Collect what interrupted and refused uploads leave in the blob store: blobs no row references, and
temporary files of writes that never finished.

Invariant (safe while the service runs, in any number of processes of the host): a file is removed
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
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from sqlalchemy import select, union
from sqlalchemy.orm import Session, sessionmaker

from service.store.blobs import FAN_OUT, PROBE_PREFIX, TEMP_PREFIX, BlobStore, StoreBusyError
from service.store.db import ArticleVersion, Asset
from service.store.errors import StorageUnavailableError

#: Candidates re-checked and removed per hold of the exclusive lock, and digests per ``IN (…)`` query.
BATCH: Final = 500
#: Seconds after which a readiness probe's file is a leftover (probes write without the lock).
PROBE_GRACE: Final = 60.0

#: Every column that points at a blob (each indexed: the queries below are index lookups).
REFERENCES: Final = (
    Asset.upload_sha256,
    Asset.stamped_sha256,
    ArticleVersion.text_sha256,
    ArticleVersion.manifest_sha256,
    ArticleVersion.payload_sha256,
)

_BLOB_NAME = re.compile(r"[0-9a-f]{62}")


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
    kept: int = 0  # candidates found referenced, or changed, on the re-check under the lock
    complete: bool = True  # False: stopped early because the store stayed busy
    listed: list[str] = field(default_factory=list)  # a dry run's paths (relative to the root); a run only counts

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
    blobs: BlobStore,
    sessions: sessionmaker[Session],
    *,
    wait: float,
    dry_run: bool = False,
    batch: int = BATCH,
) -> Collection:
    """Remove every blob no row references and every leftover temporary file (see the module's invariant).

    ``wait``: seconds to wait for the exclusive lock before each batch; when it is not had, the run stops
    and reports ``complete=False``. ``dry_run``: the same checks, nothing removed. Raises
    :class:`StorageUnavailableError` when the store refuses a removal (a read-only file system).
    """
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
    blobs: BlobStore,
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


def _chunks(items: Iterator[_Candidate], size: int) -> Iterator[list[_Candidate]]:
    chunk: list[_Candidate] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _identity(stat: os.stat_result) -> tuple[int, int, int, int]:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
