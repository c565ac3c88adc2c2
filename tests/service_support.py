"""Helpers for the service tests: a running service on a fresh data dir, its tokens, requests, stored rows.

Each service is built by :func:`running` from real settings (a tmp data dir and a keys dir made by
``init_dev_keys``), with a newsroom, an auditor and an admin token, and driven through Starlette's
``TestClient`` used as a context manager so that the lifespan (re-verification, cache clearing) runs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.app import create_app
from service.context import ServiceContext
from service.security.tokens import create_token
from service.settings import Settings, load_settings
from service.store.db import ArticleVersion, Asset, AuditEvent, Token
from tests.databases import Database

SAMPLES = Path(__file__).resolve().parent.parent / "samples" / "articles"
PROBLEM_JSON = "application/problem+json"
TOKEN_NAMES = {"newsroom": "test newsroom desk", "auditor": "test auditor", "admin": "test admin"}
ASSET_ID = r"img_[0-9a-f]{24}"
ARTICLE_ID = r"art_[0-9a-f]{24}"
STRONG_ETAG = r'"[0-9a-f]{32,64}"'


def sample(name: str) -> bytes:
    """The bytes of a sample article payload (``samples/articles/<name>``)."""
    return (SAMPLES / name).read_bytes()


def service_settings(data_dir: Path, keys_dir: Path, database: Database, **overrides: Any) -> Settings:
    """Settings for a test service on ``database`` (its rows for ``data_dir``); badge decisions are not
    cached unless a test asks for it, and every stamp is re-verified in full (``stamp_self_check``)."""
    overrides.setdefault("badge_cache_seconds", 0)
    overrides.setdefault("stamp_self_check", "full")
    url = database.url(data_dir)
    if url is not None:
        overrides.setdefault("database_url", url)
    return load_settings(data_dir=data_dir, keys_dir=keys_dir, **overrides)


def issue_tokens(ctx: ServiceContext) -> dict[str, str]:
    """One token per role, by role."""
    with ctx.session() as session:
        tokens = {role: create_token(session, name, role) for role, name in TOKEN_NAMES.items()}
        session.commit()
    return tokens


@dataclass
class Service:
    """A running service: the ASGI app, a client bound to it, and one token per role."""

    app: Any
    client: TestClient
    tokens: dict[str, str]
    stopped: bool = False  # a test may still read the rows after the service stopped

    @property
    def ctx(self) -> ServiceContext:
        ctx: ServiceContext = self.app.api.state.ctx
        return ctx

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A database session for the test's own reads (closed for good if the service has stopped)."""
        try:
            with self.ctx.session() as session:
                yield session
        finally:
            if self.stopped:
                self.ctx.close()

    def bearer(self, role: str | None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}

    def upload(
        self,
        data: bytes,
        declaration: dict[str, Any] | str | None = None,
        *,
        role: str | None = "newsroom",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """``POST /v1/assets`` with ``data`` and ``declaration`` (a dict is sent as JSON, a str as is)."""
        if declaration is None:
            declaration = {"source": "ai_generated"}
        text = declaration if isinstance(declaration, str) else json.dumps(declaration)
        return self.client.post(
            "/v1/assets",
            files={"file": ("upload.bin", data, "application/octet-stream")},
            data={"declaration": text},
            headers={**self.bearer(role), **(headers or {})},
        )

    def post_article(self, payload: bytes | str, *, role: str | None = "newsroom") -> httpx.Response:
        """``POST /v1/articles`` with a payload (bytes) or a sample's file name (str)."""
        body = sample(payload) if isinstance(payload, str) else payload
        return self.client.post(
            "/v1/articles", content=body, headers={**self.bearer(role), "Content-Type": "application/json"}
        )

    def rows(self, model: type[Any]) -> int:
        with self.session() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

    def events(self, kind: str) -> list[AuditEvent]:
        with self.session() as session:
            return list(session.scalars(select(AuditEvent).where(AuditEvent.kind == kind).order_by(AuditEvent.id)))

    def token_id(self, role: str) -> int:
        with self.session() as session:
            token = session.scalars(select(Token).where(Token.name == TOKEN_NAMES[role])).one()
            return token.id

    def blob_files(self) -> set[str]:
        """Every file under the blob directory, relative to it."""
        root = self.ctx.settings.blob_dir
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}

    def stored(self) -> tuple[int, int, frozenset[str]]:
        """What an upload may store: asset rows, article rows, blob files."""
        return self.rows(Asset), self.rows(ArticleVersion), frozenset(self.blob_files())


@contextmanager
def running(settings: Settings, *, raise_server_exceptions: bool = True) -> Iterator[Service]:
    """The service for ``settings``, started (lifespan entered) and stopped around the block."""
    app = create_app(settings)
    tokens = issue_tokens(app.api.state.ctx)
    with TestClient(app, raise_server_exceptions=raise_server_exceptions) as client:
        service = Service(app, client, tokens)
        yield service
    service.stopped = True


def assert_problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    """Assert an RFC 9457 problem answer with ``status`` and type ``/problems/<kind>``; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body["type"] == f"/problems/{kind}", body
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    return body


@dataclass(frozen=True)
class Streamed:
    """The answer to a streamed request (:func:`stream`), and how much of its body the service read."""

    status: int
    headers: dict[str, str]
    body: bytes
    consumed: int  # request body bytes the service pulled

    def json(self) -> Any:
        return json.loads(self.body)


def stream(
    svc: Service, method: str, path: str, chunks: Iterable[bytes], headers: dict[str, str] | None = None
) -> Streamed:
    """Send a request whose body arrives as ``chunks``, the way a chunked upload comes off the wire: one
    ASGI message per chunk, each pulled from ``chunks`` only when the service asks for more.

    ``TestClient`` hands an app the whole body at its first read, so it cannot show how much a service
    reads; this drives the running service's ASGI app directly, in the client's event loop. No
    ``Content-Length`` is sent unless ``headers`` has one (``Transfer-Encoding: chunked`` otherwise).
    """
    pending = iter(chunks)
    consumed = 0
    started: dict[str, Any] = {}
    body: list[bytes] = []
    given = {k.lower(): v for k, v in (headers or {}).items()}
    framing = {} if "content-length" in given else {"transfer-encoding": "chunked"}
    fields = {"host": "testserver", **framing, **given}
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},  # what uvicorn sends
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in fields.items()],
        "server": ("testserver", 80),
        "client": ("testclient", 50000),
        "state": {},
    }

    async def run() -> None:
        finished = anyio.Event()
        exhausted = False

        async def receive() -> dict[str, Any]:
            nonlocal consumed, exhausted
            if exhausted:
                await finished.wait()
                return {"type": "http.disconnect"}
            chunk = next(pending, None)
            if chunk is None:
                exhausted = True
                return {"type": "http.request", "body": b"", "more_body": False}
            consumed += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": True}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                started.update(message)
            elif message["type"] == "http.response.body":
                body.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    finished.set()

        await svc.app(scope, receive, send)

    portal = svc.client.portal
    assert portal is not None, "the client must be entered (use running())"
    portal.call(run)
    answer = {k.decode("latin-1"): v.decode("latin-1") for k, v in started.get("headers", [])}
    return Streamed(started["status"], answer, b"".join(body), consumed)


def multipart(parts: Iterable[tuple[str, str | None, bytes]], boundary: str = "boundary-4f1c") -> tuple[bytes, str]:
    """A multipart/form-data body from ``(name, filename or None for a text field, content)`` parts (a name
    may repeat), and its Content-Type."""
    out = bytearray()
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def chunks_of(data: bytes, size: int = 4096) -> Iterator[bytes]:
    """``data`` in pieces of ``size`` bytes (the last one shorter)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


#: How long an acknowledged event may take to reach a signed checkpoint of the transparency log in the tests
#: (the commit wakes the sequencer, which gathers for log_gather_seconds; the rest is slack for a loaded machine).
LOGGED_WITHIN = 30.0

Get = Callable[[str], httpx.Response]


def checkpoint_size(get: Get) -> int:
    """The size of the log's latest checkpoint (-1 before the first)."""
    answer = get("/log/checkpoint")
    return int(answer.text.split("\n")[1]) if answer.status_code == 200 else -1


def wait_logged(get: Get, size: int) -> str:
    """The checkpoint note once the log holds at least ``size`` entries."""
    deadline = time.monotonic() + LOGGED_WITHIN
    while checkpoint_size(get) < size:
        assert time.monotonic() < deadline, f"the log did not reach {size} entries"
        time.sleep(0.05)
    return get("/log/checkpoint").text
