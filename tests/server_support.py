"""Start the real `provenance serve` process on a free loopback port (for process and browser tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.databases import Database

CLI = [sys.executable, "-m", "service.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    base: str
    data: Path
    keys: Path
    process: subprocess.Popen[bytes]
    log: Path
    env: dict[str, str]  # what a command needs to reach this server's database and blob store (its settings)
    uploaded: list[dict[str, Any]] = field(default_factory=list)  # what a test uploaded, for later lookups

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``provenance <args>`` on this server's data, keys and database; raise if it fails."""
        where = ("--data-dir", str(self.data), "--keys-dir", str(self.keys))
        return subprocess.run(
            [*CLI, *args, *where],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
            env={**os.environ, **self.env},
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


# Run argv[2:] with the open-file limit (soft and hard) set to argv[1]: exec, so the pid stays the server's.
LIMIT_FILES = "import os, resource, sys; n = int(sys.argv[1]); resource.setrlimit(resource.RLIMIT_NOFILE, (n, n)); "
LIMIT_FILES += "os.execv(sys.argv[2], sys.argv[2:])"


@contextmanager
def serve(
    database: Database,
    data: Path,
    keys: Path,
    *extra: str,
    env: Mapping[str, str] | None = None,
    open_files: int | None = None,
    command: str = "serve",
) -> Iterator[Server]:
    """Run `provenance serve` on ``database`` (``extra`` arguments appended; ``env`` added to the environment,
    e.g. ``PROVENANCE_*`` settings; ``open_files``: its RLIMIT_NOFILE, soft and hard) until the block ends.
    ``command="serve-badges"``: the badge tier instead, on the same data (it takes no keys)."""
    port = free_port()
    own = database.env(data)
    log = data.parent / f"{command}-{port}.log"
    limit = [sys.executable, "-c", LIMIT_FILES, str(open_files)] if open_files else []
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [
                *limit,
                *CLI,
                command,
                *("--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data)),
                *(("--keys-dir", str(keys)) if command == "serve" else ()),
                *extra,
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={**os.environ, **own, **(env or {})},
        )
    server = Server(f"http://127.0.0.1:{port}", data, keys, proc, log, {**own, **(env or {})})
    try:
        for _ in range(400):
            try:
                if httpx.get(f"{server.base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None:
                raise AssertionError(f"server exited: {log.read_text()}")
            time.sleep(0.05)
        else:
            raise AssertionError("server did not become ready")
        yield server
    finally:
        server.stop()


def create_token(server: Server, role: str) -> str:
    proc = server.command("tokens", "create", "--role", role, "--name", f"{role} test")
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("pv_")
    return lines[0]
