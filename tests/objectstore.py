"""A real S3-protocol server for the tests: moto's standalone server (``python -m moto.server``), run as a
subprocess on 127.0.0.1 and a free port, like a MinIO or Ceph gateway next to the service.

A subprocess rather than moto's in-process ``ThreadedMotoServer``: the service talks to it over a real
socket from other processes, and a test can stop it (:meth:`ObjectServer.stop`) to see what an unreachable
store does. One server runs per test session (the ``object_server`` fixture in conftest); each test makes
its own bucket (:meth:`ObjectServer.bucket`), so tests never see each other's objects.

Credentials are fixed test values, given explicitly to every process that talks to the server (never the
environment's own AWS settings: no test reaches a real account, and no shared files are read).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx

from tests.server_support import free_port

REGION = "us-east-1"
_AWS_DIR = Path(tempfile.gettempdir()) / "provenance-tests-no-aws"  # never created: no shared files to read

#: What a process needs to reach the test server as an AWS client (and nothing of the real environment's).
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_CONFIG_FILE": str(_AWS_DIR / "config"),
    "AWS_SHARED_CREDENTIALS_FILE": str(_AWS_DIR / "credentials"),
    "AWS_EC2_METADATA_DISABLED": "true",
}
_numbers = itertools.count(1)


@dataclass
class ObjectServer:
    """A running moto server: its endpoint, and a client for the tests' own looks into its buckets."""

    endpoint: str
    process: subprocess.Popen[bytes]
    log: Path
    recording: Path
    _clients: list[Any] = field(default_factory=list)

    @classmethod
    def start(cls, port: int | None = None) -> ObjectServer:
        """Start the server and wait (bounded) until it answers."""
        port = port or free_port()
        log = Path(tempfile.mkstemp(prefix="moto-", suffix=".log")[1])
        recording = log.with_suffix(".requests")
        # moto's recorder writes every request it receives, headers included, as one JSON line each: what
        # the service sent is read from the server's side (:meth:`requests`), nothing is intercepted.
        recorder = {"MOTO_ENABLE_RECORDING": "true", "MOTO_RECORDER_FILEPATH": str(recording)}
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env={**os.environ, **AWS_ENV, **recorder},
            )
        server = cls(f"http://127.0.0.1:{port}", process, log, recording)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"moto server exited: {log.read_text()}")
            try:
                httpx.get(f"{server.endpoint}/moto-api/", timeout=1)
                return server
            except httpx.TransportError:
                time.sleep(0.05)
        server.stop()
        raise AssertionError("moto server did not answer within 30 s")

    def client(self) -> Any:
        """A boto3 S3 client of the test itself (the same fixed credentials as the service's)."""
        if not self._clients:
            session = boto3.session.Session(
                aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
                aws_session_token=AWS_ENV["AWS_SESSION_TOKEN"],
                region_name=REGION,
            )
            self._clients.append(session.client("s3", endpoint_url=self.endpoint))
        return self._clients[0]

    def bucket(self, stem: str = "test") -> str:
        """A new, empty bucket with a name no other test uses."""
        name = f"{stem}-{os.getpid()}-{next(_numbers)}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> dict[str, bytes]:
        """Every object in ``bucket`` (paginated), by key."""
        found = {}
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for entry in page.get("Contents", ()):
                found[entry["Key"]] = self.client().get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
        return found

    def requests(self, method: str, bucket: str) -> list[dict[str, Any]]:
        """The requests with ``method`` the server received for ``bucket`` (url and headers), oldest first."""
        if not self.recording.exists():
            return []
        entries = [json.loads(line) for line in self.recording.read_text().splitlines() if line]
        path = f"/{bucket}/"
        return [e for e in entries if e["method"] == method and path in e["url"]]

    def env(self, bucket: str, prefix: str = "", **settings: str) -> dict[str, str]:
        """The environment of a service process storing its blobs in ``bucket`` (``settings``: further
        ``PROVENANCE_*`` values by setting name)."""
        own = {
            "PROVENANCE_BLOB_STORE": "s3",
            "PROVENANCE_S3_BUCKET": bucket,
            "PROVENANCE_S3_PREFIX": prefix,
            "PROVENANCE_S3_ENDPOINT_URL": self.endpoint,
            "PROVENANCE_S3_REGION": REGION,
        }
        return {**AWS_ENV, **own, **{f"PROVENANCE_{k.upper()}": v for k, v in settings.items()}}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@contextmanager
def own_object_server() -> Iterator[ObjectServer]:
    """A moto server of its own (for a test that stops it), stopped at the end of the block."""
    server = ObjectServer.start()
    try:
        yield server
    finally:
        server.stop()
