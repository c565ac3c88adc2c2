"""Blobs in S3-compatible object storage: a real S3-protocol server (moto's, on loopback: tests/objectstore.py)
behind real `provenance serve` processes, on SQLite and on PostgreSQL.

What is checked: an upload lands in the bucket under ``<prefix><aa>/<rest of sha256>`` with its SHA-256
checksum, and is served from there (streamed, or redirected to a presigned URL that serves the same bytes);
withdrawn items are 410, never a redirect; badges and reports work from the bucket; an unreachable server
makes an upload 503 with nothing committed; the collector removes only what is unreferenced *and* older
than the grace period; content responses carry the CDN cache tags; the settings refuse what cannot work.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from provenance.keys import init_dev_keys
from service.settings import load_settings
from service.store.db import Asset
from service.store.gc import collect
from service.store.objects import ObjectStore

from . import images
from .databases import Database
from .objectstore import AWS_ENV, REGION, ObjectServer, own_object_server
from .server_support import CLI, Server, create_token, serve
from .service_support import assert_problem, running, sample, service_settings

PREFIX = "pv/"


def key(digest: str, prefix: str = PREFIX) -> str:
    return f"{prefix}{digest[:2]}/{digest[2:]}"


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    init_dev_keys(directory, "Object Storage Newsroom")
    return directory


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test server's credentials in this process's environment (for in-process services and CLI runs)."""
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)


def upload(server: Server, token: str, seed: int) -> dict[str, Any]:
    response = httpx.post(
        f"{server.base}/v1/assets",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("render.jpg", images.jpeg(seed=seed), "image/jpeg")},
        data={"declaration": json.dumps({"source": "ai_generated"})},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def post_article(server: Server, token: str, name: str) -> dict[str, Any]:
    response = httpx.post(
        f"{server.base}/v1/articles",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        content=sample(name),
        timeout=60,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_tagged(response: httpx.Response, item_id: str) -> None:
    assert response.headers["surrogate-key"] == f"{item_id} provenance-content"
    assert response.headers["cache-tag"] == f"{item_id},provenance-content"


@pytest.fixture
def bucket(object_server: ObjectServer) -> str:
    return object_server.bucket()


@pytest.fixture
def streaming(
    database: Database, tmp_path: Path, keys: Path, object_server: ObjectServer, bucket: str
) -> Iterator[Server]:
    with serve(database, tmp_path / "var", keys, env=object_server.env(bucket, PREFIX)) as server:
        yield server


def test_an_upload_is_stored_under_its_key_and_streamed_from_the_bucket(
    streaming: Server, object_server: ObjectServer, bucket: str
) -> None:
    newsroom = create_token(streaming, "newsroom")
    asset = upload(streaming, newsroom, seed=1)
    stored = object_server.keys(bucket)
    assert key(asset["sha256"]) in stored  # the original
    assert key(asset["stamped_sha256"]) in stored
    assert hashlib.sha256(stored[key(asset["stamped_sha256"])]).hexdigest() == asset["stamped_sha256"]
    puts = {
        e["url"].split("?")[0].rsplit(f"/{bucket}/", 1)[1]: e["headers"] for e in object_server.requests("PUT", bucket)
    }
    for digest in (asset["sha256"], asset["stamped_sha256"]):  # each PUT named its checksum for the server to check
        checksum = {k.lower(): v for k, v in puts[key(digest)].items()}["x-amz-checksum-sha256"]
        assert base64.b64decode(checksum).hex() == digest
    assert not [p for p in streaming.data.rglob("*") if p.parent.parent.name == "blobs"]  # no blob on the local disk

    content = httpx.get(streaming.base + asset["links"]["content"], timeout=10)
    assert content.status_code == 200
    assert content.content == stored[key(asset["stamped_sha256"])]
    assert content.headers["content-type"] == "image/jpeg"
    assert_tagged(content, asset["id"])
    manifest = httpx.get(streaming.base + asset["links"]["manifest"], timeout=10)
    assert manifest.status_code == 200
    assert_tagged(manifest, asset["id"])

    badge = httpx.get(streaming.base + asset["links"]["badge_json"], timeout=10)
    assert badge.status_code == 200
    assert badge.json()["state"] == "trusted"
    auditor = {"Authorization": f"Bearer {create_token(streaming, 'auditor')}"}
    report = httpx.get(streaming.base + asset["links"]["report"], headers=auditor, timeout=60)
    assert report.status_code == 200, report.text
    assert report.json()["verification"]["state"] == "trusted"  # re-inspected from the bucket's bytes

    article = post_article(streaming, newsroom, "wind-record.json")
    text = httpx.get(streaming.base + article["links"]["text"], timeout=10)
    assert text.status_code == 200
    assert text.content == object_server.keys(bucket)[key(article["sha256"])]
    assert_tagged(text, article["id"])
    sidecar = httpx.get(streaming.base + article["links"]["manifest"], timeout=10)
    assert sidecar.status_code == 200
    assert key(hashlib.sha256(sidecar.content).hexdigest()) in object_server.keys(bucket)
    assert_tagged(sidecar, article["id"])
    assert httpx.get(f"{streaming.base}/readyz", timeout=10).status_code == 200


def test_redirect_mode_answers_307_to_a_presigned_url_and_withdrawn_items_410(
    database: Database, tmp_path: Path, keys: Path, object_server: ObjectServer, bucket: str
) -> None:
    env = object_server.env(bucket, PREFIX, content_delivery="redirect", presigned_url_seconds="120")
    with serve(database, tmp_path / "var", keys, env=env) as server:
        token = create_token(server, "newsroom")
        newsroom = {"Authorization": f"Bearer {token}"}
        asset = upload(server, token, seed=2)
        article = post_article(server, token, "harbour-bridge.json")
        downloads = {
            "content": (asset["id"], asset["links"]["content"], asset["stamped_sha256"]),
            "text": (article["id"], article["links"]["text"], article["sha256"]),
            "sidecar": (article["id"], article["links"]["manifest"], None),
        }
        for what, (item_id, path, digest) in downloads.items():
            answer = httpx.get(server.base + path, timeout=10)
            assert answer.status_code == 307, (what, answer.text)
            location = answer.headers["location"]
            assert location.startswith(f"{object_server.endpoint}/{bucket}/{PREFIX}"), location
            assert "X-Amz-Expires=120" in location
            assert answer.headers["cache-control"] == "public, max-age=60"  # half the URL's life
            assert_tagged(answer, item_id)
            fetched = httpx.get(location, timeout=10)  # from the bucket itself
            assert fetched.status_code == 200
            got = hashlib.sha256(fetched.content).hexdigest()
            assert location.split("?")[0].endswith(key(got))  # the bytes stored under that very key
            assert digest in (None, got)
        manifest = httpx.get(server.base + asset["links"]["manifest"], timeout=10)  # kept in the row: streamed
        assert manifest.status_code == 200
        assert_tagged(manifest, asset["id"])

        for path in (f"/v1/assets/{asset['id']}", f"/v1/articles/{article['id']}"):
            withdrawn = httpx.post(
                f"{server.base}{path}/withdraw", headers=newsroom, json={"reason": "test withdrawal"}, timeout=10
            )
            assert withdrawn.status_code == 200, withdrawn.text
        for what, (_item, path, _digest) in downloads.items():
            gone = httpx.get(server.base + path, timeout=10)
            assert_problem(gone, 410, "withdrawn")
            assert "location" not in gone.headers, what


def test_an_unreachable_store_makes_an_upload_503_and_commits_nothing(
    database: Database, tmp_path: Path, keys: Path
) -> None:
    with own_object_server() as own:
        bucket = own.bucket()
        with serve(database, tmp_path / "var", keys, env=own.env(bucket, PREFIX)) as server:
            newsroom = create_token(server, "newsroom")
            own.stop()
            refused = httpx.post(
                f"{server.base}/v1/assets",
                headers={"Authorization": f"Bearer {newsroom}"},
                files={"file": ("render.jpg", images.jpeg(seed=3), "image/jpeg")},
                data={"declaration": json.dumps({"source": "ai_generated"})},
                timeout=120,
            )
            assert_problem(refused, 503, "storage-unavailable")
            assert refused.headers["retry-after"].isdigit()
            deadline = time.monotonic() + 60  # the probe's answer is reused for a few seconds
            while (ready := httpx.get(f"{server.base}/readyz", timeout=60)).status_code == 200:
                assert time.monotonic() < deadline, "readiness never noticed the store was gone"
                time.sleep(0.5)
            assert_problem(ready, 503, "not-ready")
            listed = httpx.get(f"{server.base}/v1/assets", headers={"Authorization": f"Bearer {newsroom}"}, timeout=10)
            assert listed.status_code == 200
            assert listed.json()["items"] == []  # no row
            assert "Traceback" not in server.log.read_text()


def _put_apart(store: ObjectStore, first: bytes, second: bytes) -> tuple[str, str, float]:
    """PUT ``first``, then ``second`` at least 2 s later by the server's clock; their digests and the
    second's ``LastModified`` (the server keeps whole seconds)."""
    with store.writing() as writer:
        old = writer.put(first)
    old_at = store.last_modified(old)
    assert old_at is not None
    deadline = time.monotonic() + 30
    while True:
        with store.writing() as writer:
            new = writer.put(second)
        new_at = store.last_modified(new)
        assert new_at is not None
        if new_at - old_at >= 2:
            return old, new, new_at
        assert time.monotonic() < deadline, "the server's clock did not move"
        time.sleep(0.5)


def test_gc_removes_only_unreferenced_objects_older_than_the_grace_period(
    database: Database, tmp_path: Path, keys: Path, object_server: ObjectServer, bucket: str, aws: None
) -> None:
    data = tmp_path / "var"
    settings = service_settings(
        data,
        keys,
        database,
        blob_store="s3",
        s3_bucket=bucket,
        s3_prefix=PREFIX,
        s3_endpoint_url=object_server.endpoint,
        s3_region=REGION,
        gc_at_startup=False,
    )
    with running(settings) as svc:
        uploaded = svc.upload(images.jpeg(seed=4))
        assert uploaded.status_code == 201, uploaded.text
        with svc.session() as session:
            row = session.scalars(select(Asset)).one()
            referenced = {key(row.upload_sha256), key(row.stamped_sha256)}
        store = svc.ctx.blobs
        assert isinstance(store, ObjectStore)  # chosen by the settings
        orphan, fresh, fresh_at = _put_apart(store, b"an orphan, long unreferenced", b"an upload in flight")
        # Now is one second after the fresh PUT, and the grace period 1.5 s: the orphan is older, the fresh
        # object (PUT by an upload whose row has not committed yet) is not.
        collector = ObjectStore(
            bucket, PREFIX, endpoint_url=object_server.endpoint, region=REGION, gc_grace=1.5, clock=lambda: fresh_at + 1
        )
        before = set(object_server.keys(bucket))
        assert {key(orphan), key(fresh)} | referenced <= before

        dry = collect(collector, svc.ctx.sessions, wait=0, dry_run=True)
        assert dry.listed == [key(orphan)]
        assert (dry.blobs, dry.recent) == (1, 1)
        assert set(object_server.keys(bucket)) == before  # a dry run removes nothing

        report = collect(collector, svc.ctx.sessions, wait=0)
        assert (report.blobs, report.bytes, report.complete) == (1, len(b"an orphan, long unreferenced"), True)
        assert set(object_server.keys(bucket)) == before - {key(orphan)}
        assert (
            svc.client.get(f"/v1/assets/{row.id}/content").content
            == object_server.keys(bucket)[key(row.stamped_sha256)]
        )

        # The command on the configured settings (grace one hour): nothing here is old enough.
        env = {**AWS_ENV, **object_server.env(bucket, PREFIX), **database.env(data)}
        done = _cli(["gc", "--dry-run", "--data-dir", str(data), "--keys-dir", str(keys)], env)
        assert done.returncode == 0, done.stderr
        assert "would remove 0 files" in done.stdout
        assert set(object_server.keys(bucket)) == before - {key(orphan)}


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``provenance <args>`` in a process of its own with ``env`` added to this one's environment."""
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=120, env={**os.environ, **env}, check=False
    )


def test_start_up_refuses_a_bucket_it_cannot_reach(tmp_path: Path, keys: Path, object_server: ObjectServer) -> None:
    env = object_server.env("no-such-bucket-here", PREFIX)
    done = _cli(["gc", "--data-dir", str(tmp_path / "var"), "--keys-dir", str(keys)], env)
    assert done.returncode == 2
    assert "the object store s3://no-such-bucket-here/pv/" in done.stderr
    assert "Traceback" not in done.stderr


SETTINGS_REFUSED = {
    "s3 without a bucket": ({"blob_store": "s3"}, "s3_bucket: required when blob_store is s3"),
    "redirect with local blobs": ({"content_delivery": "redirect"}, "content_delivery: redirect needs blob_store = s3"),
    "a bucket that is a URL": ({"blob_store": "s3", "s3_bucket": "s3://b/x"}, "s3_bucket: want a bucket name"),
    "an endpoint with credentials": (
        {"blob_store": "s3", "s3_bucket": "b", "s3_endpoint_url": "http://key:secret@host"},
        "s3_endpoint_url: want http(s)://host[:port]",
    ),
    "a prefix from the root": ({"s3_prefix": "/blobs/"}, "s3_prefix: no leading '/'"),
    "a grace shorter than an upload": ({"gc_grace_seconds": 60}, "gc_grace_seconds: at least 761 s"),
    "a presigned URL for a week and a day": ({"presigned_url_seconds": 8 * 86400}, "less than or equal to 604800"),
}


@pytest.mark.parametrize("case", SETTINGS_REFUSED)
def test_settings_refuse_an_object_store_that_cannot_work(case: str, tmp_path: Path) -> None:
    overrides, message = SETTINGS_REFUSED[case]
    with pytest.raises(ValidationError) as refused:
        load_settings(data_dir=tmp_path, **overrides)
    assert message in str(refused.value)


def test_the_defaults_keep_local_blobs_and_streaming(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert (settings.blob_store, settings.content_delivery, settings.s3_prefix) == ("local", "stream", "")
    assert (settings.presigned_url_seconds, settings.gc_grace_seconds) == (300, 3600.0)
