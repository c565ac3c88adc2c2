"""The purge webhook (service/badges/webhooks.py) against a real HTTP receiver on loopback, on both databases.

The receiver checks every signature the way docs/cdn.md tells a receiver to (its own HMAC code, not the
service's), records each request and answers from a script: a status per request, or a stall (no answer
at all) or a drip (one header byte at a time, so no single read ever times out).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.badges import webhooks
from service.badges.webhooks import WebhookError, WebhookLimits, deliver_pending, undelivered
from service.settings import Settings
from service.store.changes import PRUNE_AFTER, on_committed, prune
from service.store.db import ArticleVersion, Asset, Change, ServiceState, make_engine, make_sessionmaker, utcnow
from service.store.locks import exclusive
from service.store.schema import upgrade
from tests.databases import Database

SECRET = "a-webhook-secret-of-some-length"
BASE = "https://provenance.example.org"


DOCS = Path(__file__).parents[1] / "docs" / "cdn.md"


def doc_verifier() -> Callable[[bytes, bytes, str], bool]:
    """The receiver's check as docs/cdn.md gives it (its first Python block), not the service's own code."""
    block = DOCS.read_text().split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(block, namespace)
    verify: Callable[[bytes, bytes, str], bool] = namespace["verify"]
    return verify


signature_ok = doc_verifier()


@dataclass
class Received:
    delivery: str
    body: dict[str, Any]
    signed: bool


@dataclass
class Receiver:
    """A loopback HTTP server; ``script`` says how to answer the next requests (then 200)."""

    script: list[int | str] = field(default_factory=list)
    delay: float = 0.0  # seconds before each answer (widens the window two deliverers could overlap in)
    received: list[Received] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def answer(self) -> int | str:
        with self.lock:
            return self.script.pop(0) if self.script else 200

    def seqs(self) -> list[int]:
        return [change["seq"] for got in self.received for change in got.body["changes"]]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            signed = signature_ok(SECRET.encode(), body, self.headers.get("X-Provenance-Signature", ""))
            with state.lock:
                state.received.append(Received(self.headers["X-Provenance-Delivery"], json.loads(body), signed))
            time.sleep(state.delay)
            how = state.answer()
            if how == "stall":
                state.stop.wait(60)
                return
            if how == "drip":  # a byte every 0.2 s: each read succeeds, the whole answer never ends
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"x" * 300:
                    if state.stop.is_set():
                        return
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.2)
                return
            assert isinstance(how, int)
            self.send_response(how)
            if 300 <= how < 400:
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"no")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/purge?source=provenance"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.stop.set()
    server.shutdown()
    server.server_close()


@dataclass
class Context:
    """What deliver_pending reads of a ServiceContext."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]


@pytest.fixture
def opened(database: Database, tmp_path: Path) -> Iterator[list[Context]]:
    """Contexts opened by :func:`context` (each its own engine, like separate processes), closed at the end."""
    contexts: list[Context] = []
    yield contexts
    for ctx in contexts:
        ctx.engine.dispose()


def context(opened: list[Context], database: Database, data_dir: Path, **settings: Any) -> Context:
    values = {"public_base_url": BASE, "webhook_secret": SECRET, **settings}
    config = Settings(data_dir=data_dir, database_url=database.url(data_dir), **values)
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(config.database)
    upgrade(engine)
    ctx = Context(config, engine, make_sessionmaker(engine))
    opened.append(ctx)
    return ctx


def asset(asset_id: str, upload: str, stamped: str) -> Asset:
    return Asset(
        id=asset_id, upload_sha256=upload, stamped_sha256=stamped, manifest=b"m", media_type="image/jpeg",
        declaration={}, state="trusted", labels=[], verdict={}, upstream={}, signer_chain=[], trust_fingerprint="f",
    )  # fmt: skip


def version(article_id: str, number: int, text: str) -> ArticleVersion:
    return ArticleVersion(
        article_id=article_id, version=number, external_id="cms-1", text_sha256=text, manifest_sha256="m" * 64,
        payload_sha256="p" * 64, state="trusted", labels=[], verdict={}, signer_chain=[], trust_fingerprint="f",
    )  # fmt: skip


IMG = "img_" + "1" * 24
ART = "art_" + "2" * 24
UP, STAMPED, TEXT1, TEXT2 = "a" * 64, "b" * 64, "c" * 64, "d" * 64


def add_changes(ctx: Context, *changes: tuple[str, str | None, str]) -> list[int]:
    with ctx.sessions.begin() as session:
        rows = [Change(kind=kind, ref=ref, reason=reason) for kind, ref, reason in changes]
        session.add_all(rows)
        session.flush()
        return [row.seq for row in rows]


def run_with_deadline(call: Any, seconds: float = 30.0) -> Any:
    """``call()`` in a thread; fail (not hang) if it has not returned within ``seconds``."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result(timeout=seconds)


# --- the signature --------------------------------------------------------------------------------------

BODY = b'{"delivery":"1-1","changes":[]}'


def signatures(now: int) -> dict[str, tuple[bytes, str, bool]]:
    """Each case's body, header and whether it is accepted, signed at ``now`` (made when the test runs: a
    signature made at collection time is stale by the time a long suite reaches the test)."""
    signed = webhooks.signature(SECRET.encode(), BODY, now)
    return {
        "a fresh signature": (BODY, signed, True),
        "another body": (BODY + b" ", signed, False),
        "another secret": (BODY, webhooks.signature(b"another-secret-of-length", BODY, now), False),
        "ten minutes old": (BODY, webhooks.signature(SECRET.encode(), BODY, now - 600), False),
        "the time changed": (BODY, signed.replace(f"t={now}", f"t={now + 1}"), False),
        "no v1": (BODY, f"t={now}", False),
        "garbage": (BODY, "t=x,v1=", False),
        "empty": (BODY, "", False),
    }


@pytest.mark.parametrize("case", signatures(0))
def test_the_documented_receiver_check_accepts_only_fresh_signatures_of_the_body(case: str) -> None:
    body, header, accepted = signatures(int(time.time()))[case]
    assert signature_ok(SECRET.encode(), body, header) is accepted


# --- delivery ----------------------------------------------------------------------------------------------


def test_delivers_signed_changes_in_order_exactly_once(
    opened: list[Context], database: Database, tmp_path: Path, receiver: Receiver
) -> None:
    ctx = context(opened, database, tmp_path / "d", webhook_url=receiver.url)
    with ctx.sessions.begin() as session:  # the store's own hook adds the image's and the article's changes
        session.add_all([asset(IMG, UP, STAMPED), version(ART, 1, TEXT1), version(ART, 2, TEXT2)])
    add_changes(ctx, ("trust", None, "trust"))
    with ctx.sessions() as session:
        seqs = list(session.scalars(select(Change.seq).order_by(Change.seq)))
    assert len(seqs) == 3

    assert deliver_pending(ctx) == 3
    assert deliver_pending(ctx) == 0  # nothing is sent twice
    assert len(receiver.received) == 1
    got = receiver.received[0]
    assert got.signed
    assert got.delivery == got.body["delivery"] == f"{seqs[0]}-{seqs[-1]}"
    image, article, trust = got.body["changes"]
    assert [image["seq"], article["seq"], trust["seq"]] == seqs
    assert (image["kind"], image["ref"], image["reason"]) == ("image", IMG, "stamped")
    assert (article["kind"], article["ref"], article["reason"]) == ("article", ART, "stamped")
    assert dt.datetime.fromisoformat(image["at"]).tzinfo is not None
    assert image["tags"] == [IMG, f"sha256-{UP}", f"sha256-{STAMPED}"]
    assert {
        f"{BASE}/v1/badges/{IMG}.svg", f"{BASE}/v1/badges/{IMG}.json", f"{BASE}/v1/badges/{IMG}.html",
        f"{BASE}/verify/{IMG}", f"{BASE}/v1/assets/{IMG}", f"{BASE}/v1/assets/{IMG}/content",
        f"{BASE}/v1/assets/{IMG}/manifest.c2pa", f"{BASE}/v1/badges/sha256-{UP}.svg",
        f"{BASE}/v1/badges/sha256-{STAMPED}.json",
    } <= set(image["urls"])  # fmt: skip
    assert article["tags"] == [ART, f"sha256-{TEXT2}", f"sha256-{TEXT1}"]  # newest version first
    assert {f"{BASE}/v1/articles/{ART}/v1.txt", f"{BASE}/v1/articles/{ART}/v2.c2pa"} <= set(article["urls"])
    assert (trust["ref"], trust["tags"], trust["urls"]) == (None, ["provenance-badge"], [])
    assert undelivered(ctx.sessions) == 0


def test_batches_go_in_seq_order_until_none_is_left(
    opened: list[Context], database: Database, tmp_path: Path, receiver: Receiver
) -> None:
    ctx = context(opened, database, tmp_path / "d", webhook_url=receiver.url)
    seqs = add_changes(ctx, *[("image", f"img_{n:024x}", "stamped") for n in range(7)])

    assert deliver_pending(ctx, WebhookLimits(batch=3)) == 7
    assert [got.delivery for got in receiver.received] == [
        f"{seqs[0]}-{seqs[2]}", f"{seqs[3]}-{seqs[5]}", f"{seqs[6]}-{seqs[6]}"
    ]  # fmt: skip
    assert receiver.seqs() == seqs
    assert all(got.signed for got in receiver.received)
    assert receiver.received[0].body["changes"][0]["tags"] == ["img_" + "0" * 24]  # no asset row: the id only


def test_a_failed_delivery_marks_nothing_and_the_retry_sends_the_same_delivery(
    opened: list[Context], database: Database, tmp_path: Path, receiver: Receiver
) -> None:
    ctx = context(opened, database, tmp_path / "d", webhook_url=receiver.url)
    add_changes(ctx, ("image", IMG, "reverified"), ("image", IMG, "withdrawn"))
    receiver.script = [500]

    with pytest.raises(WebhookError, match="answered 500"):
        deliver_pending(ctx)
    assert undelivered(ctx.sessions) == 2
    assert deliver_pending(ctx) == 2
    first, second = receiver.received
    assert first.delivery == second.delivery
    assert first.body["changes"] == second.body["changes"]
    assert first.signed
    assert second.signed
    assert undelivered(ctx.sessions) == 0


@pytest.mark.parametrize("status", [301, 302, 307, 308, 404])
def test_redirects_and_errors_are_failures_never_followed(
    opened: list[Context], database: Database, tmp_path: Path, receiver: Receiver, status: int
) -> None:
    ctx = context(opened, database, tmp_path / "d", webhook_url=receiver.url)
    add_changes(ctx, ("image", IMG, "stamped"))
    receiver.script = [status]

    with pytest.raises(WebhookError, match=f"answered {status}"):
        deliver_pending(ctx)
    assert len(receiver.received) == 1  # the Location was not visited
    assert undelivered(ctx.sessions) == 1


@pytest.mark.parametrize("how", ["stall", "drip"])
def test_a_slow_receiver_is_cut_off_at_the_timeout(
    opened: list[Context], database: Database, tmp_path: Path, receiver: Receiver, how: str
) -> None:
    ctx = context(opened, database, tmp_path / "d", webhook_url=receiver.url, webhook_timeout=1.0)
    add_changes(ctx, ("image", IMG, "stamped"))
    receiver.script = [how]

    def attempt() -> str:
        with pytest.raises(WebhookError) as failure:
            deliver_pending(ctx)
        return str(failure.value)

    assert "did not answer within 1 s" in run_with_deadline(attempt)  # the drip alone would last a minute
    assert undelivered(ctx.sessions) == 1


def test_a_refused_connection_is_a_failure(opened: list[Context], database: Database, tmp_path: Path) -> None:
    ctx = context(opened, database, tmp_path / "d", webhook_url="http://127.0.0.1:9/purge")  # discard: closed
    add_changes(ctx, ("image", IMG, "stamped"))

    with pytest.raises(WebhookError, match=r"127\.0\.0\.1: ConnectionRefusedError"):
        deliver_pending(ctx)
    assert undelivered(ctx.sessions) == 1


def test_two_concurrent_deliverers_never_send_a_change_twice(
    opened: list[Context], database: Database, tmp_path: Path, receiver: Receiver
) -> None:
    data = tmp_path / "d"
    first = context(opened, database, data, webhook_url=receiver.url)
    second = context(opened, database, data, webhook_url=receiver.url)  # another engine: another "process"
    receiver.delay = 0.05
    seqs = add_changes(first, *[("image", f"img_{n:024x}", "stamped") for n in range(20)])
    start = threading.Barrier(2)

    def deliver(ctx: Context) -> int:
        start.wait()
        sent = 0
        deadline = time.monotonic() + 30
        while undelivered(ctx.sessions) and time.monotonic() < deadline:
            sent += deliver_pending(ctx, WebhookLimits(batch=3))
            time.sleep(0.01)
        return sent

    with ThreadPoolExecutor(2) as pool:
        counts = [future.result(timeout=60) for future in [pool.submit(deliver, first), pool.submit(deliver, second)]]
    assert sum(counts) == 20
    assert receiver.seqs() == seqs  # each once, in order


def test_a_deliverer_that_finds_another_at_work_leaves_the_rows_to_it(
    opened: list[Context], database: Database, tmp_path: Path, receiver: Receiver
) -> None:
    data = tmp_path / "d"
    holder = context(opened, database, data, webhook_url=receiver.url)
    other = context(opened, database, data, webhook_url=receiver.url)
    add_changes(holder, ("image", IMG, "stamped"))

    with exclusive(holder.engine, webhooks.DELIVERY_LOCK, wait=False) as held:  # what a deliverer at work holds
        assert held
        assert deliver_pending(other) == 0
        assert receiver.received == []
    assert deliver_pending(other) == 1


def test_without_a_webhook_nothing_is_sent_or_marked(opened: list[Context], database: Database, tmp_path: Path) -> None:
    ctx = context(opened, database, tmp_path / "d", webhook_secret=None)
    add_changes(ctx, ("image", IMG, "stamped"))

    assert deliver_pending(ctx) == 0
    assert undelivered(ctx.sessions) == 1


# --- the commit hook ---------------------------------------------------------------------------------------


def _with_changes(session: Session) -> None:
    session.add_all([Change(kind="image", ref=IMG, reason="stamped"), Change(kind="trust", reason="trust")])
    session.commit()


def _bulk_insert(session: Session) -> None:
    session.execute(insert(Change).values(kind="image", ref=IMG, reason="stamped", at=utcnow()))
    session.commit()


def _without_changes(session: Session) -> None:
    session.add(ServiceState(key="k", value="v"))
    session.commit()


def _rolled_back(session: Session) -> None:
    session.add(Change(kind="image", ref=IMG, reason="stamped"))
    session.flush()
    session.rollback()
    session.add(ServiceState(key="k2", value="v"))
    session.commit()  # a later transaction without changes announces nothing either


def _closed_uncommitted(session: Session) -> None:
    session.add(Change(kind="image", ref=IMG, reason="stamped"))
    session.flush()


def _two_transactions(session: Session) -> None:
    for reason in ("withdrawn", "reinstated"):
        session.add(Change(kind="image", ref=IMG, reason=reason))
        session.commit()


HOOK_CASES = {
    "two changes in one committed transaction: once": (_with_changes, 1),
    "a bulk insert of a change: once": (_bulk_insert, 1),
    "a committed transaction without changes: never": (_without_changes, 0),
    "a rolled back transaction with a flushed change: never": (_rolled_back, 0),
    "a session closed uncommitted: never": (_closed_uncommitted, 0),
    "two committed transactions with changes: twice": (_two_transactions, 2),
}


@pytest.mark.parametrize("case", HOOK_CASES)
def test_on_committed_announces_each_committed_transaction_with_changes(
    opened: list[Context], database: Database, tmp_path: Path, case: str
) -> None:
    ctx = context(opened, database, tmp_path / "d")
    calls: list[int] = []
    on_committed(ctx.sessions, lambda: calls.append(1))
    work, expected = HOOK_CASES[case]

    with ctx.sessions() as session:
        work(session)
    assert len(calls) == expected


def test_a_failing_announcement_does_not_fail_the_commit(
    opened: list[Context], database: Database, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ctx = context(opened, database, tmp_path / "d")

    def broken() -> None:
        raise RuntimeError("job queue unreachable")

    on_committed(ctx.sessions, broken)
    with ctx.sessions() as session:
        _with_changes(session)
    with ctx.sessions() as session:
        assert len(session.scalars(select(Change)).all()) == 2
    assert "announcing committed changes failed" in caplog.text


# --- pruning -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keep_undelivered", "left"), [(True, ["old undelivered", "new", "newest"]), (False, ["new", "newest"])]
)
def test_prune_deletes_old_changes_but_never_the_newest(
    opened: list[Context], database: Database, tmp_path: Path, keep_undelivered: bool, left: list[str]
) -> None:
    ctx = context(opened, database, tmp_path / "d")
    now = utcnow()
    old = now - dt.timedelta(days=8)
    rows = {
        "old delivered": Change(kind="image", ref=IMG, reason="stamped", at=old, delivered_at=old),
        "old undelivered": Change(kind="image", ref=IMG, reason="reverified", at=old),
        "new": Change(kind="image", ref=IMG, reason="withdrawn", at=now, delivered_at=now),
        "newest": Change(kind="trust", reason="trust", at=old, delivered_at=old),  # old, but the last seq
    }
    with ctx.sessions.begin() as session:
        for row in rows.values():
            session.add(row)
            session.flush()  # seqs in this order

    with ctx.sessions.begin() as session:
        assert prune(session, PRUNE_AFTER, keep_undelivered=keep_undelivered) == 4 - len(left)
    with ctx.sessions() as session:
        kept = set(session.scalars(select(Change.seq)))
    assert kept == {rows[name].seq for name in left}


# --- settings ----------------------------------------------------------------------------------------------

BAD_SETTINGS = {
    "not http": ({"webhook_url": "ftp://cms.example/purge", "webhook_secret": SECRET}, "http:// or https://"),
    "no host": ({"webhook_url": "https:///purge", "webhook_secret": SECRET}, "with a host"),
    "bad port": ({"webhook_url": "https://cms.example:99999/", "webhook_secret": SECRET}, "with a host"),
    "credentials": ({"webhook_url": "https://u:p@cms.example/", "webhook_secret": SECRET}, "no credentials"),
    "space": ({"webhook_url": "https://cms.example/a b", "webhook_secret": SECRET}, "control characters"),
    "no secret": ({"webhook_url": "https://cms.example/purge"}, "webhook_secret: required"),
    "short secret": ({"webhook_url": "https://cms.example/purge", "webhook_secret": "short"}, "at least 16"),
    "no timeout": ({"webhook_timeout": 0}, "greater than 0"),
}


@pytest.mark.parametrize("case", BAD_SETTINGS)
def test_bad_webhook_settings_refuse_start_up(case: str) -> None:
    values, message = BAD_SETTINGS[case]
    with pytest.raises(ValidationError, match=message):
        Settings(**values)


def test_webhook_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROVENANCE_WEBHOOK_URL", "https://cms.example/purge")
    monkeypatch.setenv("PROVENANCE_WEBHOOK_SECRET", SECRET)
    settings = Settings()
    assert settings.webhook_url == "https://cms.example/purge"
    assert settings.webhook_timeout == 5.0
    assert SECRET not in repr(settings)
