"""The badge tier (`provenance serve-badges`, granian) beside `provenance serve`, on one database.

It answers every badge exactly as the service does (bodies and headers), follows the change feed as the
service's own cache does (an upload, a withdrawal and a reinstatement through the API show on it within
``badge_cache_seconds``), starts with the newest images' decisions preloaded, answers nothing but badges and
its probes, and closes connections whose request head does not arrive within ``header_timeout``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from provenance.keys import init_dev_keys

from . import images
from .databases import Database
from .server_support import Server, create_token, serve

CACHE_SECONDS = 0.5
DEADLINE = CACHE_SECONDS + 5.0  # what must happen within badge_cache_seconds, with room for a loaded machine
#: Headers a badge answer carries that must be the same from both processes.
SAME_HEADERS = (
    "content-type",
    "etag",
    "cache-control",
    "content-security-policy",
    "x-content-type-options",
    "access-control-allow-origin",
    "vary",
    "surrogate-key",
    "cache-tag",
    "content-length",
)


@dataclass
class Tiers:
    api: Server
    badges: Server
    newsroom: dict[str, str]
    admin: dict[str, str]
    preloaded: list[str]  # ids uploaded before the badge tier started


@pytest.fixture(scope="module")
def tiers(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tiers]:
    root = tmp_path_factory.mktemp(f"tier-{database}")
    init_dev_keys(root / "keys", "Badge Tier Newsroom")
    env = {"PROVENANCE_BADGE_CACHE_SECONDS": str(CACHE_SECONDS), "PROVENANCE_HEADER_TIMEOUT": "1"}
    with serve(database, root / "var", root / "keys", env=env) as api:
        bearer = {role: {"Authorization": f"Bearer {create_token(api, role)}"} for role in ("newsroom", "admin")}
        early = [_upload(api, bearer["newsroom"], seed, "ai_generated")["id"] for seed in (301, 302)]
        with serve(database, root / "var", root / "keys", env=env, command="serve-badges") as badges:
            yield Tiers(api, badges, bearer["newsroom"], bearer["admin"], early)


def _upload(server: Server, bearer: dict[str, str], seed: int, source: str) -> dict[str, str]:
    answer = httpx.post(
        f"{server.base}/v1/assets",
        files={"file": ("a.jpg", images.jpeg(seed=seed), "image/jpeg")},
        data={"declaration": f'{{"source": "{source}"}}'},
        headers=bearer,
        timeout=60,
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _eventually(what: str, check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {DEADLINE} s"
        time.sleep(0.02)


def _state(server: Server, ref: str) -> str:
    answer = httpx.get(f"{server.base}/v1/badges/{ref}.json", timeout=10)
    return str(answer.json()["state"]) if answer.status_code == 200 else str(answer.status_code)


def test_the_newest_images_are_preloaded(tiers: Tiers) -> None:
    ready = httpx.get(f"{tiers.badges.base}/readyz", timeout=10)
    assert ready.status_code == 200
    assert ready.json()["cached_decisions"] >= len(tiers.preloaded)
    for ref in tiers.preloaded:
        assert _state(tiers.badges, ref) == "trusted"


def test_every_badge_answer_is_the_services_own(tiers: Tiers) -> None:
    camera = _upload(tiers.api, tiers.newsroom, 303, "camera")["id"]
    ai = tiers.preloaded[0]
    _eventually("the new upload reaches the badge tier", lambda: _state(tiers.badges, camera) == "trusted")
    for ref in (ai, camera, f"img_{'0' * 24}", f"sha256-{'0' * 64}"):
        for fmt in ("svg", "json", "html"):
            for query in ("", "?lang=zh-Hans"):
                path = f"/v1/badges/{ref}.{fmt}{query}"
                ours, theirs = (httpx.get(s.base + path, timeout=10) for s in (tiers.badges, tiers.api))
                assert ours.status_code == theirs.status_code, path
                assert ours.content == theirs.content, path
                for header in SAME_HEADERS:
                    assert ours.headers.get(header) == theirs.headers.get(header), (path, header)
    batch = f"/v1/badges?refs={ai},{camera},img_{'0' * 24}&lang=zh-Hans"
    ours, theirs = (httpx.get(s.base + batch, timeout=10) for s in (tiers.badges, tiers.api))
    assert ours.status_code == 200
    assert ours.json() == theirs.json()
    assert ours.headers["surrogate-key"] == theirs.headers["surrogate-key"]
    etag = httpx.get(f"{tiers.badges.base}/v1/badges/{ai}.svg", timeout=10).headers["etag"]
    again = httpx.get(f"{tiers.badges.base}/v1/badges/{ai}.svg", headers={"If-None-Match": etag}, timeout=10)
    assert again.status_code == 304


def test_a_withdrawal_and_a_reinstatement_reach_the_badge_tier(tiers: Tiers) -> None:
    ref = _upload(tiers.api, tiers.newsroom, 304, "ai_generated")["id"]
    _eventually("the upload reaches the badge tier", lambda: _state(tiers.badges, ref) == "trusted")
    withdrawn = httpx.post(
        f"{tiers.api.base}/v1/assets/{ref}/withdraw", json={"reason": "a test"}, headers=tiers.newsroom, timeout=10
    )
    assert withdrawn.status_code == 200, withdrawn.text
    _eventually("the withdrawal reaches the badge tier", lambda: _state(tiers.badges, ref) == "withdrawn")
    assert "<text" not in httpx.get(f"{tiers.badges.base}/v1/badges/{ref}.svg", timeout=10).text
    back = httpx.post(
        f"{tiers.api.base}/v1/assets/{ref}/reinstate", json={"reason": "cleared"}, headers=tiers.admin, timeout=10
    )
    assert back.status_code == 200, back.text
    _eventually("the reinstatement reaches the badge tier", lambda: _state(tiers.badges, ref) == "trusted")


def test_the_badge_tier_answers_nothing_but_badges(tiers: Tiers) -> None:
    base = tiers.badges.base
    for method, path in (("GET", "/v1/assets"), ("GET", "/docs"), ("POST", "/v1/badges/match"), ("GET", "/")):
        answer = httpx.request(method, base + path, headers=tiers.newsroom, timeout=10)
        assert answer.status_code == 404, (method, path)
        assert answer.json()["type"] == "/problems/not-found"
    posted = httpx.post(f"{base}/v1/badges/{tiers.preloaded[0]}.svg", content=b"x", timeout=10)
    assert posted.status_code == 405
    assert posted.headers["allow"] == "GET, HEAD"
    assert httpx.get(f"{base}/healthz", timeout=10).json() == {"status": "ok"}
    head = httpx.head(f"{base}/v1/badges/{tiers.preloaded[0]}.svg", timeout=10)
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) > 0
    assert httpx.get(f"{base}/v1/badges/{tiers.preloaded[0]}.svg?lang=xx", timeout=10).status_code == 400


def _closed_after(sock: socket.socket, limit: float) -> float:
    """Seconds until the server closes ``sock`` (reading nothing), or ``limit`` when it never does."""
    started = time.monotonic()
    sock.settimeout(limit)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return limit
    except OSError:
        pass
    return time.monotonic() - started


def test_a_request_head_must_arrive_within_header_timeout(tiers: Tiers) -> None:
    address = urlsplit(tiers.badges.base)
    where = (address.hostname or "127.0.0.1", address.port or 80)

    def partial_head(sock: socket.socket) -> float:
        sock.sendall(b"GET /v1/badges/x.svg HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        return _closed_after(sock, 5)

    def trickle(sock: socket.socket) -> float:  # never idle, but the deadline is for the whole head
        done = threading.Event()

        def send() -> None:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100:
                if done.wait(0.2):
                    return
                try:
                    sock.send(bytes([byte]))
                except OSError:
                    return

        sender = threading.Thread(target=send)
        sender.start()
        try:
            return _closed_after(sock, 5)
        finally:
            done.set()
            sender.join()

    def idle_after_a_response(sock: socket.socket) -> float:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
        return _closed_after(sock, 5)

    for case in (partial_head, trickle, idle_after_a_response):
        with socket.create_connection(where, timeout=10) as sock:
            elapsed = case(sock)
        assert 0.8 <= elapsed < 3.0, f"{case.__name__}: closed after {elapsed:.2f} s"
    assert httpx.get(f"{tiers.badges.base}/healthz", timeout=2).status_code == 200


def test_the_badge_tier_refuses_bad_settings_with_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "serve-badges", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PROVENANCE_BADGE_CACHE_ENTRIES": "0"},
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "badge_cache_entries" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr
