"""Writing key material: created with its final mode, fsynced, renamed into place (never a half file,
never a private key readable by others, even briefly)."""

from __future__ import annotations

import os
from pathlib import Path


def write_file(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
