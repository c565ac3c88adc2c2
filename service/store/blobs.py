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
        digest = digest or hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.exists():
            return digest
        directory = target.parent
        directory.mkdir(exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".incoming-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return digest

    def get(self, digest: str) -> bytes:
        """The blob's bytes; raises ``FileNotFoundError`` if absent."""
        return self.path(digest).read_bytes()

    def exists(self, digest: str) -> bool:
        return self.path(digest).exists()
