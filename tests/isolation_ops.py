"""Worker operations for the isolation tests: misbehaviour on demand, without needing the SDK to misbehave.

Run only inside a worker started by ``WorkerPool(handlers="tests.isolation_ops")``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Any

from provenance.errors import ManifestError
from provenance.isolation import Call


def echo(call: Call) -> tuple[Any, list[bytes]]:
    return [os.getpid(), call.context], list(call.blobs)


def allocate(call: Call) -> tuple[Any, list[bytes]]:
    """Touch ``args[0]`` bytes of memory (what a CBOR length lie makes the SDK do)."""
    block = bytearray(call.args[0])
    return len(block), []


def sleep(call: Call) -> tuple[Any, list[bytes]]:
    time.sleep(call.args[0])
    return None, []


def crash(call: Call) -> tuple[Any, list[bytes]]:
    """Die the way native code dies: an abort, or a segmentation fault."""
    os.kill(os.getpid(), signal.SIGSEGV if call.args[0] == "segv" else signal.SIGABRT)
    time.sleep(10)
    return None, []


def refuse(call: Call) -> tuple[Any, list[bytes]]:
    raise ManifestError("malformed C2PA manifest: told to refuse", hint="a hint")


def sign_twice(call: Call) -> tuple[Any, list[bytes]]:
    """Ask the caller to sign twice, sleeping between (signing time must not count against the deadline)."""
    first = call.sign(b"claim one")
    second = call.sign(b"claim two")
    return None, [first, second]


def shrink_arena(call: Call) -> tuple[Any, list[bytes]]:
    """What a worker taken over by a hostile file could try: pull the shared pages from under the caller."""
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if "provenance-arena" in os.readlink(f"/proc/self/fd/{name}"):
                try:
                    os.ftruncate(int(name), 0)
                except PermissionError:
                    return "sealed", []
                return "shrunk", []
    return "no arena", []


def flood(call: Call) -> tuple[Any, list[bytes]]:
    """Answer with far more bytes than the call could justify."""
    return None, [b"x" * call.args[0]]


def bug(call: Call) -> tuple[Any, list[bytes]]:
    return {}["missing"], []


WORKER_OPS = {
    "echo": echo,
    "allocate": allocate,
    "sleep": sleep,
    "crash": crash,
    "refuse": refuse,
    "sign_twice": sign_twice,
    "bug": bug,
    "shrink_arena": shrink_arena,
    "flood": flood,
}
