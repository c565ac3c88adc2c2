"""Public badge lookups: the hot path, served by a bare ASGI handler in front of FastAPI.

``GET /v1/badges/{ref}.svg|.json|.html`` and ``GET /v1/badges?refs=a,b,c``. No signing and no C2PA
parsing here: the stored decision is read (at most once per ``badge_cache_seconds`` per ref and
process) and the rendered response, its strong ETag included, is kept in memory. A new upload or a
re-verification is visible within that interval. Every response is safe to embed: fixed vocabulary,
``Content-Security-Policy``, ``nosniff``, no cookies.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final
from urllib.parse import parse_qs

import anyio.to_thread
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from provenance.vocabulary import LANGUAGES
from service.render import badges as render
from service.render.badges import BadgeDecision
from service.store.db import ArticleVersion, Asset

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PREFIX: Final = "/v1/badges"
MAX_BATCH: Final = 100
REF: Final = re.compile(r"(img_[0-9a-f]{24}|art_[0-9a-f]{24}|sha256-[0-9a-f]{64})")
_PATH: Final = re.compile(r"/v1/badges/([^/]+)\.(svg|json|html)")
_FORMATS: Final = {
    "svg": (b"image/svg+xml", b"default-src 'none'", render.svg),
    "json": (b"application/json", b"default-src 'none'", render.as_json),
    "html": (b"text/html; charset=utf-8", render.HTML_CSP.encode(), render.html),
}


def find_decision(session: Session, ref: str) -> BadgeDecision | None:
    """The stored decision for ``ref`` (asset id, article id, or sha256 of original/stamped bytes)."""
    if ref.startswith("img_"):
        asset = session.get(Asset, ref)
        return BadgeDecision(ref, asset.state, tuple(asset.labels), "image") if asset else None
    if ref.startswith("art_"):
        version = session.scalars(
            select(ArticleVersion).where(ArticleVersion.article_id == ref).order_by(ArticleVersion.version.desc())
        ).first()
        return BadgeDecision(ref, version.state, tuple(version.labels), "article") if version else None
    digest = ref.removeprefix("sha256-")
    asset = session.scalars(
        select(Asset)
        .where((Asset.stamped_sha256 == digest) | (Asset.upload_sha256 == digest))
        .order_by(Asset.created_at.desc())
    ).first()
    if asset:
        return BadgeDecision(ref, asset.state, tuple(asset.labels), "image")
    version = session.scalars(
        select(ArticleVersion).where(ArticleVersion.text_sha256 == digest).order_by(ArticleVersion.version.desc())
    ).first()
    return BadgeDecision(ref, version.state, tuple(version.labels), "article") if version else None


def negotiate_language(query_lang: str | None, accept_language: str | None) -> str | None:
    """``?lang=`` if given (``None`` when unsupported), else the first supported Accept-Language, else en."""
    if query_lang is not None:
        return query_lang if query_lang in LANGUAGES else None
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-Hans"
        if tag.startswith("en"):
            return "en"
    return "en"


class _Cached:
    __slots__ = ("body", "etag", "expires", "status", "type_and_csp")

    def __init__(self, status: int, body: bytes, type_and_csp: tuple[bytes, bytes], expires: float) -> None:
        self.status = status
        self.body = body
        self.etag = b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'
        self.type_and_csp = type_and_csp
        self.expires = expires


class BadgeService:
    """Decisions from the database, rendered responses cached in memory."""

    def __init__(self, sessions: sessionmaker[Session], cache_seconds: float, max_age: int) -> None:
        self.sessions = sessions
        self.cache_seconds = cache_seconds
        self.cache_control = f"public, max-age={max_age}".encode()
        self._cache: dict[tuple[str, str, str], _Cached] = {}
        self._decisions: dict[str, tuple[float, BadgeDecision | None]] = {}

    def clear(self) -> None:
        self._cache.clear()
        self._decisions.clear()

    def _decision(self, ref: str, now: float) -> BadgeDecision | None:
        hit = self._decisions.get(ref)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.sessions() as session:
            decision = find_decision(session, ref)
        if len(self._decisions) > 200_000:  # bounded: unknown refs must not grow memory forever
            self._decisions.clear()
        self._decisions[ref] = (now + self.cache_seconds, decision)
        return decision

    def render(self, ref: str, fmt: str, lang: str) -> _Cached:
        """The response for one badge (blocking: may read the database)."""
        now = time.monotonic()
        key = (ref, fmt, lang)
        cached = self._cache.get(key)
        if cached is not None and cached.expires > now:
            return cached
        content_type, csp, renderer = _FORMATS[fmt]
        decision = self._decision(ref, now)
        if decision is None:
            body = json.dumps({"type": "/problems/not-found", "title": "Unknown badge", "status": 404}).encode()
            cached = _Cached(404, body, (b"application/problem+json", b"default-src 'none'"), now + self.cache_seconds)
        else:
            cached = _Cached(200, renderer(decision, lang), (content_type, csp), now + self.cache_seconds)
        if len(self._cache) > 200_000:
            self._cache.clear()
        self._cache[key] = cached
        return cached

    def cached(self, ref: str, fmt: str, lang: str) -> _Cached | None:
        """The response if it is in memory and fresh (never blocks)."""
        cached = self._cache.get((ref, fmt, lang))
        return cached if cached is not None and cached.expires > time.monotonic() else None

    def batch(self, refs: list[str], lang: str) -> bytes:
        now = time.monotonic()
        out: dict[str, object] = {}
        for ref in refs:
            decision = self._decision(ref, now) if REF.fullmatch(ref) else None
            out[ref] = render.as_dict(decision, lang) if decision else None
        return json.dumps({"badges": out, "lang": lang}, ensure_ascii=False, separators=(",", ":")).encode()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, head: bool) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


def _problem(status: int, detail: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    kind, title = ("not-found", "Unknown badge") if status == 404 else ("bad-request", "Bad badge request")
    body = json.dumps({"type": f"/problems/{kind}", "title": title, "status": status, "detail": detail})
    return (
        status,
        [(b"content-type", b"application/problem+json"), (b"x-content-type-options", b"nosniff")],
        body.encode(),
    )


class BadgeApp:
    """ASGI: answers badge paths itself and passes everything else to ``app``."""

    def __init__(self, service: BadgeService, app: ASGIApp, on_request: Callable[[int], None] | None = None) -> None:
        self.service = service
        self.app = app
        self.on_request = on_request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PREFIX) or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        status, headers, body = await self._handle(scope, path)
        if self.on_request is not None:
            self.on_request(status)
        await _respond(send, status, headers, body, scope["method"] == "HEAD")

    async def _handle(self, scope: Scope, path: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        lang = negotiate_language(query["lang"][0] if "lang" in query else None, _header(scope, b"accept-language"))
        if lang is None:
            return _problem(400, f"lang must be one of {', '.join(LANGUAGES)}")
        if path in (PREFIX, PREFIX + "/"):
            refs = [r for r in ",".join(query.get("refs", [])).split(",") if r]
            if not refs or len(refs) > MAX_BATCH:
                return _problem(400, f"refs must list 1 to {MAX_BATCH} badge references")
            body = await anyio.to_thread.run_sync(self.service.batch, refs, lang)
            return (
                200,
                [
                    (b"content-type", b"application/json"),
                    (b"cache-control", self.service.cache_control),
                    (b"access-control-allow-origin", b"*"),
                    (b"x-content-type-options", b"nosniff"),
                    (b"content-security-policy", b"default-src 'none'"),
                    (b"vary", b"Accept-Language"),
                ],
                body,
            )
        match = _PATH.fullmatch(path)
        if match is None or not REF.fullmatch(match.group(1)):
            return _problem(404, "unknown badge path")
        ref, fmt = match.group(1), match.group(2)
        cached = self.service.cached(ref, fmt, lang)
        if cached is None:  # only a miss touches the database, off the event loop
            cached = await anyio.to_thread.run_sync(self.service.render, ref, fmt, lang)
        content_type, csp = cached.type_and_csp
        headers = [
            (b"content-type", content_type),
            (b"etag", cached.etag),
            (b"cache-control", self.service.cache_control if cached.status == 200 else b"public, max-age=5"),
            (b"content-security-policy", csp),
            (b"x-content-type-options", b"nosniff"),
            (b"access-control-allow-origin", b"*"),
            (b"vary", b"Accept-Language"),
        ]
        if cached.status == 200 and _etag_matches(_header(scope, b"if-none-match"), cached.etag):
            return 304, headers, b""
        return cached.status, headers, cached.body


def _etag_matches(header: str | None, etag: bytes) -> bool:
    if not header:
        return False
    tag = etag.decode()
    return any(candidate.strip() in (tag, "*") for candidate in header.split(","))
