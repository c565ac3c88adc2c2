"""Content-addressed blob store on local disk.

Invariant: a blob file, once visible under its name, is complete and on stable storage. Writes go to a
temporary file in the same directory, are fsynced, renamed into place, and the directory is fsynced.
Names are the sha256 of the content (server-generated; nothing from the request reaches a path).
A crash may leave an orphan blob (harmless, never referenced) but never a partial one.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

_HEX64 = re.compile(r"[0-9a-f]{64}")


class BlobStore:
    """Blobs under ``root/ab/cdef…`` by sha256."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        if not _HEX64.fullmatch(digest):
            raise ValueError("not a sha256 hex digest")
        return self.root / digest[:2] / digest[2:]

    def put(self, data: bytes, digest: str | None = None) -> str:
        """Store ``data`` durably; return its sha256 (``digest`` if the caller already has it). Idempotent."""
        return self.stage(data, digest).commit()

    def stage(self, data: bytes, digest: str | None = None) -> Staged:
        """Write ``data`` to a temporary file and fsync it, without making it visible yet.

        Lets the slow part of a write (the fsync) overlap other work; :meth:`Staged.commit` then renames
        it into place, :meth:`Staged.discard` removes it (nothing is left behind for a refused upload).
        """
        digest = digest or hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.exists():
            return Staged(digest, target, None)
        target.parent.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".incoming-", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return Staged(digest, target, Path(tmp))

    def get(self, digest: str) -> bytes:
        """The blob's bytes; raises ``FileNotFoundError`` if absent."""
        return self.path(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()


@dataclass
class Staged:
    """A blob written and fsynced under a temporary name (``temp`` is None when it was already stored)."""

    digest: str
    target: Path
    temp: Path | None

    def commit(self) -> str:
        """Make the blob visible under its name, durably (rename, then fsync the directory)."""
        if self.temp is not None:
            try:
                os.replace(self.temp, self.target)
            except BaseException:
                self.discard()
                raise
            self.temp = None
            dir_fd = os.open(self.target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        return self.digest

    def discard(self) -> None:
        if self.temp is not None:
            self.temp.unlink(missing_ok=True)
            self.temp = None
