"""The databases the service tests run on: the embedded SQLite default and a real PostgreSQL.

The PostgreSQL server is Debian's ``postgresql`` package (``scripts/install-system-deps`` installs it), run
as a throwaway cluster for one test session: ``initdb`` into a temporary directory, ``postgres`` on a free
loopback port with trust authentication for local connections only, stopped and deleted at the end.
Durability settings are off in this cluster (``fsync=off``): the tests check behaviour, not crash safety
of PostgreSQL itself. initdb and postgres refuse to run as root, so as root they run as the ``postgres``
system user the package creates.

Each service data directory gets its own database (named from the directory), so a test that restarts a
service on the same data directory finds its rows again, as it does with SQLite.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import psycopg

KINDS = ("sqlite", "postgresql")
_creating = threading.Lock()


@dataclass
class PostgresCluster:
    """A running throwaway cluster."""

    bin_dir: Path
    directory: Path
    port: int
    user: str | None  # the OS user the server runs as (None: the current one)

    @classmethod
    def start(cls, port: int) -> PostgresCluster:
        bin_dir = _bin_dir()
        user = "postgres" if os.geteuid() == 0 else None
        directory = Path(tempfile.mkdtemp(prefix="provenance-pg-"))
        if user:
            entry = pwd.getpwnam(user)
            os.chown(directory, entry.pw_uid, entry.pw_gid)
        cluster = cls(bin_dir, directory, port, user)
        data = directory / "data"
        cluster._run(
            "initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"
        )
        options = [
            f"-k {directory}",  # its socket stays in the throwaway directory
            f"-p {port}",
            "-c listen_addresses=127.0.0.1",
            "-c max_connections=200",
            "-c fsync=off",
            "-c synchronous_commit=off",
            "-c full_page_writes=off",
        ]
        cluster._run(
            "pg_ctl", "-D", str(data), "-l", str(directory / "server.log"), "-o", " ".join(options), "-w", "start"
        )
        return cluster

    def _run(self, program: str, *args: str) -> None:
        prefix = ["setpriv", f"--reuid={self.user}", f"--regid={self.user}", "--init-groups"] if self.user else []
        done = subprocess.run([*prefix, str(self.bin_dir / program), *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}")

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        """Create ``name`` unless it exists (tests may start several servers on one database at once)."""
        with (
            _creating,
            psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as conn,
        ):
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{name}" STRATEGY FILE_COPY')


def _bin_dir() -> Path:
    """The newest installed PostgreSQL's programs (Debian keeps them under /usr/lib/postgresql/<major>/bin)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[4]))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL is not installed: run scripts/install-system-deps (Debian's postgresql)")
    return Path(initdb).parent


@dataclass(frozen=True)
class Database:
    """One backend of the service tests."""

    kind: str
    cluster: PostgresCluster | None = None

    def url(self, data_dir: Path) -> str | None:
        """The database URL for a service whose data lives in ``data_dir`` (None: the embedded SQLite there)."""
        if self.cluster is None:
            return None
        name = "t_" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:20]
        self.cluster.create_database(name)
        return self.cluster.url(name)

    def env(self, data_dir: Path) -> dict[str, str]:
        """The environment a service process or command needs to use this database for ``data_dir``."""
        url = self.url(data_dir)
        return {"PROVENANCE_DATABASE_URL": url} if url else {}

    def __str__(self) -> str:
        return self.kind
