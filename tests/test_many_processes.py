"""Many processes, one truth: two `provenance serve` processes on one data directory and one database.

A change committed through one process (an upload, a withdrawal, a reinstatement) reaches the other's badge
cache through the change feed within ``badge_cache_seconds``; a revoked token is refused by both at once; a
rate limit is one limit over both. The feed's rows are written in the transaction of the change they name.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from provenance.keys import init_dev_keys
from service.store.changes import FeedCursor
from service.store.db import Asset, Change, Withdrawal, make_engine, make_sessionmaker
from service.store.schema import upgrade

from . import images
from .databases import Database
from .server_support import Server, create_token, serve

CACHE_SECONDS = 1.0
RATE = 6  # requests per minute per token
#: How long a test waits for what must happen within badge_cache_seconds (room for a loaded machine).
DEADLINE = CACHE_SECONDS + 4.0


@dataclass
class Pair:
    one: Server
    two: Server
    newsroom: dict[str, str]
    admin: dict[str, str]

    @property
    def both(self) -> tuple[Server, Server]:
        return self.one, self.two


@pytest.fixture(scope="module")
def pair(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    root = tmp_path_factory.mktemp(f"pair-{database}")
    init_dev_keys(root / "keys", "Two Process Newsroom")
    env = {
        "PROVENANCE_BADGE_CACHE_SECONDS": str(CACHE_SECONDS),
        "PROVENANCE_RATE_LIMIT_PER_MINUTE": str(RATE),
        "PROVENANCE_PARSE_WORKERS": "1",
    }
    with (
        serve(database, root / "var", root / "keys", env=env) as one,
        serve(database, root / "var", root / "keys", env=env) as two,
    ):
        bearer = {role: {"Authorization": f"Bearer {create_token(one, role)}"} for role in ("newsroom", "admin")}
        yield Pair(one, two, bearer["newsroom"], bearer["admin"])


def _badge(server: Server, ref: str, fmt: str = "json") -> httpx.Response:
    return httpx.get(f"{server.base}/v1/badges/{ref}.{fmt}", timeout=10)


def _eventually(what: str, condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {DEADLINE} s"
        time.sleep(0.05)


def _upload(pair: Pair, server: Server, seed: int) -> tuple[dict[str, Any], bytes]:
    data = images.jpeg(seed=seed)
    answer = httpx.post(
        f"{server.base}/v1/assets",
        headers=pair.newsroom,
        files={"file": ("a.jpg", data, "image/jpeg")},
        data={"declaration": json.dumps({"source": "ai_generated"})},
        timeout=60,
    )
    assert answer.status_code == 201, answer.text
    return answer.json(), data


@pytest.mark.slow
def test_a_withdrawal_through_one_process_reaches_the_other_badge_cache(pair: Pair) -> None:
    asset, _ = _upload(pair, pair.one, seed=201)
    ref = asset["id"]
    for server in pair.both:  # both caches hold the trusted decision
        _eventually("the new asset's badge", lambda s=server: _badge(s, ref).status_code == 200)
        for _ in range(5):
            assert _badge(server, ref).json()["state"] == "trusted"
    withdraw = f"{pair.one.base}/v1/assets/{ref}/withdraw"
    done = httpx.post(withdraw, json={"reason": "a test"}, headers=pair.newsroom, timeout=10)
    assert done.status_code == 200, done.text
    _eventually("process 2 shows the withdrawal", lambda: _badge(pair.two, ref).json()["state"] == "withdrawn")
    assert "<text" not in _badge(pair.two, ref, "svg").text
    assert _badge(pair.one, ref).json()["state"] == "withdrawn"  # process 1 was woken by its own commit
    back = httpx.post(
        f"{pair.two.base}/v1/assets/{ref}/reinstate", json={"reason": "cleared"}, headers=pair.admin, timeout=10
    )
    assert back.status_code == 200, back.text
    _eventually("process 1 shows the reinstatement", lambda: _badge(pair.one, ref).json()["state"] == "trusted")


@pytest.mark.slow
def test_an_upload_through_one_process_makes_an_unknown_ref_known_in_the_other(pair: Pair) -> None:
    data = images.jpeg(seed=202)
    ref = f"sha256-{hashlib.sha256(data).hexdigest()}"
    for _ in range(3):  # process 2 caches "unknown"
        unknown = _badge(pair.two, ref, "svg")
        assert unknown.status_code == 404
        assert unknown.headers["surrogate-key"] == f"{ref} provenance-badge"  # purged when the ref gets known
        assert unknown.headers["cache-tag"] == f"{ref},provenance-badge"
    asset, uploaded = _upload(pair, pair.one, seed=202)
    assert uploaded == data
    _eventually("process 2 knows the upload", lambda: _badge(pair.two, ref).status_code == 200)
    for fmt in ("svg", "json", "html"):
        known = _badge(pair.two, ref, fmt)
        # the item, and the ref (a later upload of the same bytes may make it answer with another item)
        assert known.headers["surrogate-key"] == f"{asset['id']} {ref} provenance-badge", fmt
        assert known.headers["cache-tag"] == f"{asset['id']},{ref},provenance-badge", fmt
    batch = httpx.get(f"{pair.two.base}/v1/badges", params={"refs": f"{ref},{asset['id']},img_{'0' * 24}"})
    assert batch.status_code == 200
    assert batch.headers["surrogate-key"] == f"{asset['id']} {ref} provenance-badge"  # each named once


@pytest.mark.slow
def test_a_revoked_token_is_refused_by_both_processes_at_once(pair: Pair) -> None:
    name = "revoke me"
    secret = pair.one.command("tokens", "create", "--role", "auditor", "--name", name).stdout.strip()
    headers = {"Authorization": f"Bearer {secret}"}
    for server in pair.both:
        assert httpx.get(f"{server.base}/v1/assets", headers=headers, timeout=10).status_code == 200
    pair.two.command("tokens", "revoke", "--name", name)
    for server in pair.both:  # no waiting: every request reads the token's row
        refused = httpx.get(f"{server.base}/v1/assets", headers=headers, timeout=10)
        assert refused.status_code == 401, server.base


@pytest.mark.slow
def test_a_rate_limit_is_one_limit_over_both_processes(pair: Pair) -> None:
    secret = pair.one.command("tokens", "create", "--role", "auditor", "--name", "limited").stdout.strip()
    headers = {"Authorization": f"Bearer {secret}"}
    servers = [pair.one, pair.two] * RATE
    for server in servers[:RATE]:  # RATE requests, spread over both processes
        assert httpx.get(f"{server.base}/v1/assets", headers=headers, timeout=10).status_code == 200
    for server in pair.both:  # one more is too many, whichever process it reaches
        refused = httpx.get(f"{server.base}/v1/assets", headers=headers, timeout=10)
        assert refused.status_code == 429, server.base
        assert 1 <= int(refused.headers["retry-after"]) <= 120
    other = httpx.get(f"{pair.two.base}/v1/assets", headers=pair.newsroom, timeout=10)
    assert other.status_code == 200  # per token: another token is not limited by this one


# --- the change feed's rows: the session hook, in the change's own transaction -----------------------------


@pytest.fixture
def sessions(database: Database, tmp_path: Path) -> Iterator[Callable[[], Session]]:
    engine = make_engine(database.url(tmp_path) or f"sqlite:///{tmp_path / 'feed.sqlite3'}")
    upgrade(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


def _asset(asset_id: str, digest: str) -> Asset:
    return Asset(
        id=asset_id, upload_sha256=digest, stamped_sha256=digest[::-1], manifest=b"", media_type="image/jpeg",
        declaration={"source": "ai_generated"}, state="trusted", labels=["ai_generated"], verdict={}, upstream={},
        signer_chain=[], trust_fingerprint="f" * 64,
    )  # fmt: skip


def _feed(session: Session) -> list[tuple[str, str | None, str]]:
    return [(c.kind, c.ref, c.reason) for c in session.scalars(select(Change).order_by(Change.seq))]


ASSET = "img_" + "1" * 24
DIGEST = "ab" * 32


def _stamp(s: Session) -> None:
    s.add(_asset(ASSET, DIGEST))


def _reverify(s: Session) -> None:
    row = s.get(Asset, ASSET)
    assert row is not None
    row.state, row.labels = "invalid", []


def _refingerprint(s: Session) -> None:  # nothing a badge shows changes
    row = s.get(Asset, ASSET)
    assert row is not None
    row.trust_fingerprint, row.labels = "0" * 64, ["ai_generated"]


def _withdraw(s: Session) -> None:
    s.add(Withdrawal(item_id=ASSET, kind="image", reason="test"))


def _reinstate(s: Session) -> None:
    row = s.get(Withdrawal, ASSET)
    assert row is not None
    s.delete(row)


#: Each step is committed in turn; what the feed gains with it.
STEPS: list[tuple[str, Callable[[Session], None], list[tuple[str, str | None, str]]]] = [
    ("a new asset is stamped", _stamp, [("image", ASSET, "stamped")]),
    ("an unchanged decision is no change", _refingerprint, []),
    ("a changed decision is reverified", _reverify, [("image", ASSET, "reverified")]),
    ("a withdrawal", _withdraw, [("image", ASSET, "withdrawn")]),
    ("a reinstatement", _reinstate, [("image", ASSET, "reinstated")]),
]


def test_every_change_is_one_feed_row_committed_with_it(sessions: Callable[[], Session]) -> None:
    with sessions() as session:
        cursor = FeedCursor.at_end(session)
    seen: list[tuple[str, str | None, str]] = []
    for name, step, gained in STEPS:
        with sessions() as session:
            step(session)
            session.commit()
            seen += gained
            assert _feed(session) == seen, name
        with sessions() as session:
            changed = cursor.read(session)
        wanted = {ASSET, f"sha256-{DIGEST}", f"sha256-{DIGEST[::-1]}"} if gained else set()
        assert changed.refs == wanted, name  # the item and the digests its badge can be looked up by


def test_a_rolled_back_or_failed_write_announces_nothing(sessions: Callable[[], Session]) -> None:
    with sessions() as session:
        session.add(_asset(ASSET, DIGEST))
        session.flush()  # the change row is written with the asset...
        assert len(_feed(session)) == 1
        session.rollback()  # ...and goes with it
        assert _feed(session) == []
    with sessions() as session:
        _stamp(session)
        session.commit()
    with sessions() as session:
        session.add(_asset(ASSET, DIGEST))  # the same id again: the insert fails at commit
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            session.commit()
        session.rollback()
        assert _feed(session) == [("image", ASSET, "stamped")]


def test_a_cursor_applies_a_change_that_commits_after_a_later_one(
    database: Database, sessions: Callable[[], Session]
) -> None:
    with sessions() as session:
        cursor = FeedCursor.at_end(session)
    slow, fast = sessions(), sessions()
    slow.add(_asset(ASSET, DIGEST))
    slow.flush()  # its sequence number is taken first...
    fast_asset = "img_" + "2" * 24
    if database.kind == "postgresql":  # (SQLite has one writer at a time: its commits are in order)
        fast.add(_asset(fast_asset, "cd" * 32))
        fast.commit()  # ...but the later one commits first
        with sessions() as session:
            assert fast_asset in cursor.read(session).refs
    slow.commit()
    with sessions() as session:
        assert ASSET in cursor.read(session).refs  # the earlier number was still looked for
    slow.close()
    fast.close()
