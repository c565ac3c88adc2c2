"""The whole scale-out topology, as a newsroom group would run it: one PostgreSQL, one S3-compatible bucket
(moto's server on loopback), two `provenance serve` processes with data directories of their own (nothing
shared on local disk), two `provenance worker` processes, and a purge webhook receiver.

While uploads run concurrently through both app processes, the operator changes the trust (adds the root
of a camera vendor whose AI claims were uploaded earlier) and runs `provenance reverify`; one worker is
killed with SIGKILL in the middle of a job. Afterwards: every acknowledged upload is in the bucket and
served by both processes; every badge in both processes shows the decision under the new trust; no job
failed, the killed worker's job was retried, and no item was re-verified twice with a visible effect
(the batches' audit events count each stale item once); every change reached the webhook.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from provenance import Source, StampRequest, TrustConfig, stamp
from provenance.keys import FileKeySigner, issue_chain
from service.badges.webhooks import signature

from . import images
from .databases import Database, PostgresCluster
from .objectstore import ObjectServer
from .server_support import CLI, Server, create_token, serve

SECRET = "topology-webhook-secret"
VENDOR_IMAGES = 3
UPLOADS_PER_PROCESS = 12
STALE_COPIES = 240  # rows decided under the old trust, so the re-verification runs long enough to kill a worker
JOB_ENV = {
    "PROVENANCE_JOB_HEARTBEAT_SECONDS": "0.5",
    "PROVENANCE_JOB_STALLED_SECONDS": "3",
    "PROVENANCE_REVERIFY_BATCH_SIZE": "10",
}


def eventually(condition: Callable[[], bool], what: str, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {seconds} s: {what}")
        time.sleep(0.1)


class Receiver:
    """A loopback purge webhook: records each change it is sent, by ``seq``, with whether it was signed."""

    def __init__(self) -> None:
        self.seqs: dict[int, set[str]] = {}  # seq -> the delivery ids that carried it
        self.unsigned = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                stamp_, _, _ = self.headers["X-Provenance-Signature"].partition(",")
                sent = int(stamp_.removeprefix("t="))
                signed = self.headers["X-Provenance-Signature"] == signature(SECRET.encode(), body, sent)
                with receiver.lock:
                    receiver.unsigned += not signed
                    for change in json.loads(body)["changes"]:
                        receiver.seqs.setdefault(change["seq"], set()).add(self.headers["X-Provenance-Delivery"])
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/purge"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def worker(env: dict[str, str], data: Path, keys: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    where = ["--data-dir", str(data), "--keys-dir", str(keys)]
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [*CLI, "worker", *where], stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **env}
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)


def upload(server: Server, token: str, data: bytes, source: str) -> httpx.Response:
    return httpx.post(
        f"{server.base}/v1/assets",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("photo.jpg", data, "image/jpeg")},
        data={"declaration": json.dumps({"source": source})},
        timeout=120,
    )


def labels(server: Server, ref: str) -> list[str]:
    response = httpx.get(f"{server.base}/v1/badges/{ref}.json", timeout=30)
    assert response.status_code == 200, response.text
    return [label["id"] for label in response.json()["labels"]]


def query(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as connection:
        return list(connection.execute(sql, args).fetchall())  # type: ignore[arg-type]


@pytest.mark.slow
def test_two_apps_two_workers_one_database_one_bucket(
    postgres: PostgresCluster, object_server: ObjectServer, tmp_path: Path, keys_dir: Path
) -> None:
    vendor = issue_chain("Camera Vendor")
    vendor_signer = FileKeySigner.from_pem(vendor.key_pem, vendor.chain_pem)
    vendor_root, unrelated_root = tmp_path / "vendor.pem", tmp_path / "unrelated.pem"
    vendor_root.write_bytes(vendor.root_pem)
    unrelated_root.write_bytes(issue_chain("Unrelated CA").root_pem)
    anchors = tmp_path / "anchors.pem"  # the operator's extra trust anchors, the same file for every process
    anchors.write_bytes(unrelated_root.read_bytes())
    vendor_trust = TrustConfig.from_files([vendor_root])
    ai_by_vendor = [
        stamp(images.jpeg(seed=700 + i), StampRequest(Source.AI_GENERATED), vendor_signer, vendor_trust).data
        for i in range(VENDOR_IMAGES)
    ]

    postgres.create_database("topology")
    url = postgres.url("topology")
    bucket = object_server.bucket("topology")
    receiver = Receiver()
    env = {
        **object_server.env(bucket),
        **JOB_ENV,
        "PROVENANCE_DATABASE_URL": url,
        "PROVENANCE_TRUST_ANCHORS": str(anchors),
        "PROVENANCE_WEBHOOK_URL": receiver.url,
        "PROVENANCE_WEBHOOK_SECRET": SECRET,
        "PROVENANCE_SESSION_SECRET": "a session secret shared by every process",
        "PROVENANCE_BADGE_CACHE_SECONDS": "1",
    }
    with ExitStack() as stack:
        stack.callback(receiver.close)
        apps = [
            stack.enter_context(serve(Database("postgresql", postgres), tmp_path / f"app-{i}", keys_dir, env=env))
            for i in range(2)
        ]
        newsroom = create_token(apps[0], "newsroom")

        # Before the trust change: the vendor's AI claims are not trusted, so the newsroom's declaration labels.
        vendor_items = []
        for data in ai_by_vendor:
            answer = upload(apps[0], newsroom, data, "ai_edited")
            assert answer.status_code == 201, answer.text
            vendor_items.append(answer.json())
        for app in apps:  # both caches warm with the old decision
            assert [labels(app, item["id"]) for item in vendor_items] == [["ai_edited"]] * VENDOR_IMAGES
        seed_stale_copies(url, vendor_items[0]["id"], STALE_COPIES)

        workers = [
            stack.enter_context(worker(env, tmp_path / f"worker-{i}", keys_dir, tmp_path / f"worker-{i}.log"))
            for i in range(2)
        ]
        eventually(lambda: len(query(url, "SELECT id FROM procrastinate_workers")) >= 2, "two workers alive")

        # Uploads through both processes, while the trust changes and a worker dies.
        def uploads(app: Server, first_seed: int) -> list[tuple[int, dict[str, Any]]]:
            done = []
            for n in range(UPLOADS_PER_PROCESS):
                answer = upload(app, newsroom, images.jpeg(seed=first_seed + n), "camera")
                assert answer.status_code in (200, 201), answer.text
                done.append((first_seed + n, answer.json()))
            return done

        with ThreadPoolExecutor(2) as pool:
            running = [pool.submit(uploads, app, 1000 * (i + 1)) for i, app in enumerate(apps)]
            anchors.write_bytes(vendor_root.read_bytes())  # the operator adds the vendor's root everywhere
            reverify = subprocess.Popen(
                [*CLI, "reverify", "--data-dir", str(tmp_path / "app-0"), "--keys-dir", str(keys_dir)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, **env},
            )
            eventually(lambda: batches_doing(url) >= 2, "both workers in the middle of a batch")
            workers[0].send_signal(signal.SIGKILL)
            workers[0].wait(timeout=10)
            out, errors = reverify.communicate(timeout=300)
            assert reverify.returncode == 0, errors
            acknowledged = [item for future in running for item in future.result()]

        # Every acknowledged upload is in the bucket, and served by both processes.
        stored = object_server.keys(bucket)
        for seed, item in acknowledged:
            stamped = item["stamped_sha256"]
            assert stored[f"{stamped[:2]}/{stamped[2:]}"] == httpx.get(f"{apps[1].base}{content(item)}").content
            assert hashlib.sha256(httpx.get(f"{apps[0].base}{content(item)}").content).hexdigest() == stamped
            assert item["sha256"] == hashlib.sha256(images.jpeg(seed=seed)).hexdigest()
        assert len(acknowledged) == 2 * UPLOADS_PER_PROCESS

        # Every badge, in both processes, shows the new trust: the vendor's AI claim now labels its images.
        def new_trust_everywhere() -> bool:
            return all(
                [labels(app, item["id"]) for item in vendor_items] == [["ai_generated"]] * VENDOR_IMAGES
                and all(labels(app, item["id"]) == [] for _, item in acknowledged)
                for app in apps
            )

        eventually(new_trust_everywhere, "both processes' badges under the new trust", seconds=10)
        stale = query(url, "SELECT count(*) FROM assets WHERE trust_fingerprint <> (SELECT value FROM"
                           " service_state WHERE key = 'trust_fingerprint')")  # fmt: skip
        assert stale == [(0,)]

        # No job failed or was lost; the killed worker's batch was retried; no item re-verified twice.
        statuses = dict(query(url, "SELECT status::text, count(*) FROM procrastinate_jobs"
                                   " WHERE queue_name = 'provenance' GROUP BY status"))  # fmt: skip
        assert set(statuses) == {"succeeded"}, statuses
        retried = query(url, "SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'reverify_batch'"
                             " AND attempts > 1")  # fmt: skip
        assert retried[0][0] >= 1, "the killed worker's batch was run again"
        batches = query(url, "SELECT detail->>'run', detail->>'items', (detail->>'checked')::int FROM audit_events"
                             " WHERE kind = 'reverify' AND detail->>'step' = 'batch'")  # fmt: skip
        effects: dict[tuple[str, str], int] = {}
        for run, items, checked in batches:  # a batch that checked something did so once
            effects[(run, items)] = effects.get((run, items), 0) + (checked > 0)
        assert max(effects.values()) == 1, effects
        planned = STALE_COPIES + VENDOR_IMAGES  # and uploads committed under the old trust meanwhile, each once
        assert planned <= sum(checked for *_, checked in batches) <= planned + len(acknowledged)
        assert out.startswith("checked ")

        # Every change reached the purge webhook, signed.
        def all_delivered() -> bool:
            return query(url, "SELECT count(*) FROM changes WHERE delivered_at IS NULL") == [(0,)]

        eventually(all_delivered, "every change delivered to the webhook", seconds=90)
        seqs = [seq for (seq,) in query(url, "SELECT seq FROM changes ORDER BY seq")]
        assert set(receiver.seqs) == set(seqs)
        assert receiver.unsigned == 0
        for app in apps:
            assert app.process.poll() is None, app.log.read_text()
        assert workers[1].poll() is None


def content(item: dict[str, Any]) -> str:
    return f"/v1/assets/{item['id']}/content"


def seed_stale_copies(url: str, asset_id: str, copies: int) -> None:
    """``copies`` rows pointing at ``asset_id``'s bytes, decided under a trust no process has."""
    columns = (
        "upload_sha256, stamped_sha256, manifest, media_type, declaration, state, labels, verdict, upstream,"
        " signer_chain, created_at, token_id, source, external_id"
    )
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as connection:
        for n in range(copies):
            connection.execute(
                f"INSERT INTO assets (id, trust_fingerprint, {columns})"
                f" SELECT %s, %s, {columns} FROM assets WHERE id = %s",
                (f"img_{n:024x}", "0" * 64, asset_id),
            )


def batches_doing(url: str) -> int:
    rows = query(url, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing' AND task_name = 'reverify_batch'")
    return int(rows[0][0])
