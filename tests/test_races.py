"""Concurrent writers: one process with many request threads, and two server processes on one database
and one blob directory. Each race has one winner; every other request gets the winner's row only when it
asked for exactly that row (a repeat), and a problem otherwise — never a 500, never another request's row.

Requests are released together by a barrier, so they all pass the "is it stored already?" check before
the first one commits (stamping takes milliseconds; the check takes microseconds).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from provenance.articles import parse_payload
from provenance.keys import init_dev_keys
from service.store.db import ArticleVersion, Asset

from . import images
from .databases import Database
from .server_support import Server, create_token, serve
from .service_support import Service, assert_problem, running, sample, service_settings

RACERS = 6


def together(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Run ``calls`` at once (each in its own thread, released by one barrier); their answers in order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def statuses(answers: list[httpx.Response]) -> Counter[int]:
    return Counter(a.status_code for a in answers)


def correction(version: int, headline: str) -> bytes:
    payload = json.loads(sample("ai-weather.json"))
    payload.update(version=version, headline=headline)
    return json.dumps(payload).encode()


def name(digest: str) -> str:
    return digest[:2] + "/" + digest[2:]


def orphans(svc: Service) -> set[str]:
    """Blob files no row points to."""
    with svc.session() as session:
        digests = {*session.scalars(select(Asset.upload_sha256)), *session.scalars(select(Asset.stamped_sha256))}
        for column in (ArticleVersion.text_sha256, ArticleVersion.manifest_sha256, ArticleVersion.payload_sha256):
            digests |= set(session.scalars(select(column)))
    return svc.blob_files() - {name(d) for d in digests}


def inputs(*bodies: bytes, articles: bool = False) -> set[str]:
    """The content-addressed blobs requests with ``bodies`` may leave: their originals (and texts)."""
    found = {name(hashlib.sha256(body).hexdigest()) for body in bodies}
    if articles:
        found |= {name(hashlib.sha256(parse_payload(body).canonical_text()).hexdigest()) for body in bodies}
    return found


@pytest.fixture
def svc(database: Database, tmp_path: Path, keys_dir: Path) -> Iterator[Service]:
    settings = service_settings(tmp_path / "var", keys_dir, database, rate_limit_per_minute=1_000_000)
    with running(settings, raise_server_exceptions=False) as service:
        yield service


# --------------------------------------------------------------------------------------------------
# One process, many request threads
# --------------------------------------------------------------------------------------------------


def test_concurrent_corrections_with_different_text_have_one_winner_and_409s(svc: Service) -> None:
    assert svc.post_article("ai-weather.json").status_code == 201
    bodies = [correction(2, f"Storm warning, correction {n}") for n in range(RACERS)]
    answers = together([lambda body=body: svc.post_article(body) for body in bodies])  # type: ignore[misc]
    assert statuses(answers) == {201: 1, 409: RACERS - 1}, [a.text for a in answers]
    winner = next(n for n, a in enumerate(answers) if a.status_code == 201)
    for answer in answers:
        if answer.status_code == 409:
            assert_problem(answer, 409, "version-conflict")
    stored = svc.client.get(f"/v1/articles/{answers[winner].json()['id']}/v2.txt").text
    assert stored.startswith(f"Storm warning, correction {winner}\n")
    assert svc.rows(ArticleVersion) == 2
    # The losers' stamped manifests are gone; what they share by content (text, payload) is left to gc.
    assert orphans(svc) <= inputs(*bodies, articles=True)


def test_concurrent_identical_corrections_are_one_version_and_repeats(svc: Service) -> None:
    assert svc.post_article("ai-weather.json").status_code == 201
    body = correction(2, "Storm warning, corrected")
    answers = together([lambda: svc.post_article(body)] * RACERS)
    assert statuses(answers) == {201: 1, 200: RACERS - 1}, [a.text for a in answers]
    assert len({a.json()["sha256"] for a in answers}) == 1  # every answer is the one stored version
    assert svc.rows(ArticleVersion) == 2
    assert orphans(svc) == set()


def test_a_stored_version_sent_again_with_other_text_is_409(svc: Service) -> None:
    assert svc.post_article("ai-weather.json").status_code == 201
    changed = correction(1, "A different headline, same version")
    assert_problem(svc.post_article(changed), 409, "version-conflict")
    payload = json.loads(sample("ai-weather.json"))
    payload["source"] = "human"  # same text, another declaration: not a repeat either
    assert_problem(svc.post_article(json.dumps(payload).encode()), 409, "version-conflict")
    payload = json.loads(sample("ai-weather.json"))
    payload["body_html"] = payload["body_html"].replace("<p>", "<p >")  # other bytes, same text and facts
    repeat = svc.post_article(json.dumps(payload).encode())
    assert repeat.status_code == 200, repeat.text
    assert svc.rows(ArticleVersion) == 1


def test_one_idempotency_key_raced_with_different_bodies_has_one_winner_and_422s(svc: Service) -> None:
    headers = {"Idempotency-Key": "cms-job-7"}
    uploads = [images.jpeg(seed=300 + n) for n in range(RACERS)]
    answers = together([lambda data=data: svc.upload(data, headers=headers) for data in uploads])  # type: ignore[misc]
    assert statuses(answers) == {201: 1, 422: RACERS - 1}, [a.text for a in answers]
    for answer in answers:
        if answer.status_code == 422:
            assert "Idempotency-Key" in assert_problem(answer, 422, "input-error")["detail"]
    assert svc.rows(Asset) == 1
    assert orphans(svc) <= inputs(*uploads)  # no loser's stamped file is left; originals are left to gc
    again = svc.upload(uploads[0], headers=headers)  # afterwards the key answers as before
    winner = next(a for a in answers if a.status_code == 201).json()
    if again.status_code == 200:
        assert again.json()["id"] == winner["id"]
    else:
        assert_problem(again, 422, "input-error")


def test_one_idempotency_key_raced_with_the_same_body_is_one_asset(svc: Service) -> None:
    data = images.jpeg(seed=320)
    answers = together([lambda: svc.upload(data, headers={"Idempotency-Key": "cms-job-8"})] * RACERS)
    assert statuses(answers) == {201: 1, 200: RACERS - 1}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert svc.rows(Asset) == 1


def test_concurrent_identical_uploads_leave_one_asset_and_no_orphan_stamped_blob(svc: Service) -> None:
    data = images.jpeg(seed=330)
    answers = together([lambda: svc.upload(data)] * RACERS)
    assert statuses(answers) == {201: 1, 200: RACERS - 1}, [a.text for a in answers]
    assert len({a.json()["stamped_sha256"] for a in answers}) == 1
    assert svc.rows(Asset) == 1
    assert len(svc.blob_files()) == 2  # the original and the one stamped file
    assert orphans(svc) == set()


# --------------------------------------------------------------------------------------------------
# Two server processes on one database and one blob directory
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def pair(database: Database, tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    """Two `provenance serve` processes started at the same moment on one data directory (one blob store)
    and one database: they migrate and re-verify one at a time."""
    keys, data = tmp_path / "keys", tmp_path / "var"
    init_dev_keys(keys, "Pair Newsroom")
    with ExitStack() as stack:
        starting = [serve(database, data, keys), serve(database, data, keys)]
        with ThreadPoolExecutor(2) as pool:
            started = list(pool.map(lambda server: server.__enter__(), starting))
        for server in starting:
            stack.push(server.__exit__)
        yield started[0], started[1]
        for server in started:
            log = server.log.read_text()
            assert "Traceback" not in log, log


def post(server: Server, token: str, path: str, **kwargs: Any) -> Callable[[], httpx.Response]:
    headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
    return lambda: httpx.post(server.base + path, headers=headers, timeout=60, **kwargs)


def upload(data: bytes, **extra: Any) -> dict[str, Any]:
    return {"files": {"file": ("x.jpg", data, "image/jpeg")}, "data": {"declaration": '{"source": "camera"}'}, **extra}


def test_two_processes_race_on_one_database_and_one_blob_store(pair: tuple[Server, Server]) -> None:
    first, second = pair
    token = create_token(first, "newsroom")  # one database: a token made through one works on both
    servers = [first, second] * (RACERS // 2)

    data = images.jpeg(seed=340)
    answers = together([post(s, token, "/v1/assets", **upload(data)) for s in servers])
    assert statuses(answers) == {201: 1, 200: RACERS - 1}, [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1

    keyed = [
        post(s, token, "/v1/assets", **upload(images.jpeg(seed=350 + n), headers={"Idempotency-Key": "k1"}))
        for n, s in enumerate(servers)
    ]
    assert statuses(together(keyed)) == {201: 1, 422: RACERS - 1}

    base = post(first, token, "/v1/articles", content=sample("ai-weather.json"))()
    assert base.status_code == 201, base.text
    fixes = [post(s, token, "/v1/articles", content=correction(2, f"Correction {n}")) for n, s in enumerate(servers)]
    answers = together(fixes)
    assert statuses(answers) == {201: 1, 409: RACERS - 1}, [a.text for a in answers]
    winner = next(n for n, a in enumerate(answers) if a.status_code == 201)
    for server in pair:  # both processes serve the winner's text
        text = httpx.get(f"{server.base}/v1/articles/{base.json()['id']}/v2.txt", timeout=10).text
        assert text.startswith(f"Correction {winner}\n")
