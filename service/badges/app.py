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
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final
from urllib.parse import parse_qs

import anyio.to_thread
from sqlalchemy.orm import Session, sessionmaker

from provenance.vocabulary import LANGUAGES, preferred_language
from service.badges import render
from service.badges.decisions import find_decision
from service.badges.render import BadgeDecision
from service.cache import LRU
from service.store.ids import REF

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PREFIX: Final = "/v1/badges"
MAX_BATCH: Final = 100
#: Rendered badges (and decisions) kept in memory per process; the least recently used go first.
MAX_CACHED: Final = 50_000
_PATH: Final = re.compile(r"/v1/badges/([^/]+)\.(svg|json|html)")
_FORMATS: Final = {
    "svg": (b"image/svg+xml", b"default-src 'none'", render.svg),
    "json": (b"application/json", b"default-src 'none'", render.as_json),
    "html": (b"text/html; charset=utf-8", render.HTML_CSP.encode(), render.html),
}


def negotiate_language(query_lang: str | None, accept_language: str | None) -> str | None:
    """``?lang=`` if given (``None`` when unsupported), else the first supported Accept-Language, else en."""
    if query_lang is not None:
        return query_lang if query_lang in LANGUAGES else None
    return preferred_language(accept_language)


class _Cached:
    """A rendered response with its ASGI messages built once (reused for every request)."""

    __slots__ = ("body", "etag", "expires", "not_modified", "refresh_at", "start", "status")

    def __init__(
        self, status: int, body: bytes, content_type: bytes, csp: bytes, cache_control: bytes, expires: float
    ) -> None:
        self.status = status
        self.body = {"type": "http.response.body", "body": body}
        self.etag = b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'
        self.expires = expires
        self.refresh_at = expires
        headers = [
            (b"content-type", content_type),
            (b"etag", self.etag),
            (b"cache-control", cache_control if status == 200 else b"public, max-age=5"),
            (b"content-security-policy", csp),
            (b"x-content-type-options", b"nosniff"),
            (b"access-control-allow-origin", b"*"),
            (b"vary", b"Accept-Language"),
        ]
        self.start = {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
        # A 304 repeats the validators but carries no body and no Content-Length (RFC 9110 8.6).
        self.not_modified = {"type": "http.response.start", "status": 304, "headers": headers}


_EMPTY_BODY: Final = {"type": "http.response.body", "body": b""}


class BadgeService:
    """Decisions from the database, rendered responses cached in memory (bounded, least recently used).

    Freshness: a cached badge is served as it is for the first half of ``badge_cache_seconds``; in the
    second half it is still served while one background refresh per badge re-reads the decision
    (so a busy badge never sends a burst of requests to the database); once ``badge_cache_seconds``
    have passed it is never served: the request re-reads the decision. So a change committed to the
    database shows on every badge within ``badge_cache_seconds``, idle spells included.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        cache_seconds: float,
        max_age: int,
        max_entries: int = MAX_CACHED,
    ) -> None:
        self.sessions = sessions
        self.cache_seconds = cache_seconds
        self.cache_control = f"public, max-age={max_age}".encode()
        self._cache: LRU[tuple[str, str, str], _Cached] = LRU(max_entries)
        self._decisions: LRU[str, tuple[float, BadgeDecision | None]] = LRU(max_entries)
        self._refreshing: set[tuple[str, str, str]] = set()
        self._refresher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="badge-refresh")

    def clear(self) -> None:
        self._cache.clear()
        self._decisions.clear()

    def close(self) -> None:
        """Stop background refreshes (waiting for one under way) before the database is closed."""
        self._refresher.shutdown(wait=True, cancel_futures=True)

    def _decision(self, ref: str, now: float, *, fresh: bool = False) -> BadgeDecision | None:
        hit = None if fresh else self._decisions.get(ref)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self.sessions() as session:
            decision = find_decision(session, ref)
        self._decisions.put(ref, (now + self.cache_seconds, decision))
        return decision

    def render(self, ref: str, fmt: str, lang: str, *, fresh: bool = False) -> _Cached:
        """Render and cache the response for one badge (blocking: may read the database).

        ``fresh`` re-reads the decision even if one is cached (a refresh must see new commits).
        """
        now = time.monotonic()
        content_type, csp, renderer = _FORMATS[fmt]
        decision = self._decision(ref, now, fresh=fresh)
        expires = now + self.cache_seconds
        if decision is None:
            body = json.dumps({"type": "/problems/not-found", "title": "Unknown badge", "status": 404}).encode()
            cached = _Cached(404, body, b"application/problem+json", b"default-src 'none'", b"", expires)
        else:
            cached = _Cached(200, renderer(decision, lang), content_type, csp, self.cache_control, expires)
        cached.refresh_at = now + self.cache_seconds / 2
        self._cache.put((ref, fmt, lang), cached)
        return cached

    def _refresh(self, key: tuple[str, str, str]) -> None:
        try:
            self.render(*key, fresh=True)
        finally:
            self._refreshing.discard(key)

    def cached(self, ref: str, fmt: str, lang: str) -> _Cached | None:
        """The response if it may still be served from memory (never blocks); in the second half of its
        life it also starts one background refresh. ``None``: the caller renders it now."""
        key = (ref, fmt, lang)
        cached = self._cache.get(key)
        if cached is None:
            return None
        now = time.monotonic()
        if now >= cached.expires:
            return None  # too old to serve: the change it may hide is older than badge_cache_seconds
        if now >= cached.refresh_at and cached.status == 200 and key not in self._refreshing:
            self._refreshing.add(key)
            self._refresher.submit(self._refresh, key)
        return cached

    def batch(self, refs: list[str], lang: str) -> bytes:
        now = time.monotonic()
        out: dict[str, object] = {}
        for ref in refs:
            decision = self._decision(ref, now) if REF.fullmatch(ref) else None
            out[ref] = render.as_dict(decision, lang) if decision else None
        return json.dumps({"badges": out, "lang": lang}, ensure_ascii=False, separators=(",", ":")).encode()


_KINDS: Final = {
    400: ("bad-request", "Bad badge request"),
    404: ("not-found", "Unknown badge"),
    405: ("method-not-allowed", "Method not allowed"),
}
_ALLOW: Final = (b"allow", b"GET, HEAD")


def _problem(status: int, detail: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    kind, title = _KINDS[status]
    body = json.dumps({"type": f"/problems/{kind}", "title": title, "status": status, "detail": detail})
    headers = [(b"content-type", b"application/problem+json"), (b"x-content-type-options", b"nosniff")]
    return status, [*headers, _ALLOW] if status == 405 else headers, body.encode()


_LANG_CACHE: LRU[str, tuple[str | None]] = LRU(10_000)  # Accept-Language values seen, and what they chose


def _language(query: dict[str, list[str]], accept_language: str | None) -> str | None:
    if "lang" in query:
        return negotiate_language(query["lang"][0], None)
    key = accept_language or ""
    hit = _LANG_CACHE.get(key)
    if hit is None:
        hit = (negotiate_language(None, accept_language),)
        _LANG_CACHE.put(key, hit)
    return hit[0]


class BadgeApp:
    """ASGI: answers badge paths itself and passes everything else to ``app``."""

    def __init__(self, service: BadgeService, app: ASGIApp, on_request: Callable[[int], None] | None = None) -> None:
        self.service = service
        self.app = app
        self.on_request = on_request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        if scope["method"] not in ("GET", "HEAD"):  # badges are read-only; the body is never read
            await self._send(send, *_problem(405, "badges answer GET and HEAD only"), False)
            return
        accept_language: str | None = None
        if_none_match: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"accept-language":
                accept_language = value.decode("latin-1")
            elif name == b"if-none-match":
                if_none_match = value
        raw_query = scope.get("query_string", b"")
        query = parse_qs(raw_query.decode("latin-1")) if raw_query else {}
        lang = _language(query, accept_language)
        head = scope["method"] == "HEAD"
        if lang is None:
            await self._send(send, *_problem(400, f"lang must be one of {', '.join(LANGUAGES)}"), head)
            return
        if path in (PREFIX, PREFIX + "/"):
            await self._batch(send, query, lang, head)
            return
        match = _PATH.fullmatch(path)
        if match is None or not REF.fullmatch(match.group(1)):
            await self._send(send, *_problem(404, "unknown badge path"), head)
            return
        ref, fmt = match.group(1), match.group(2)
        cached = self.service.cached(ref, fmt, lang)
        if cached is None:  # only a badge never seen before touches the database, off the event loop
            cached = await anyio.to_thread.run_sync(self.service.render, ref, fmt, lang)
        if cached.status == 200 and if_none_match is not None and _etag_matches(if_none_match, cached.etag):
            await send(cached.not_modified)
            await send(_EMPTY_BODY)
            status = 304
        else:
            await send(cached.start)
            await send(_EMPTY_BODY if head else cached.body)
            status = cached.status
        if self.on_request is not None:
            self.on_request(status)

    async def _batch(self, send: Send, query: dict[str, list[str]], lang: str, head: bool) -> None:
        refs = [r for r in ",".join(query.get("refs", [])).split(",") if r]
        if not refs or len(refs) > MAX_BATCH:
            await self._send(send, *_problem(400, f"refs must list 1 to {MAX_BATCH} badge references"), head)
            return
        body = await anyio.to_thread.run_sync(self.service.batch, refs, lang)
        headers = [
            (b"content-type", b"application/json"),
            (b"cache-control", self.service.cache_control),
            (b"access-control-allow-origin", b"*"),
            (b"x-content-type-options", b"nosniff"),
            (b"content-security-policy", b"default-src 'none'"),
            (b"vary", b"Accept-Language"),
        ]
        await self._send(send, 200, headers, body, head)

    async def _send(self, send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, head: bool) -> None:
        headers = [*headers, (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if head else body})
        if self.on_request is not None:
            self.on_request(status)


def _etag_matches(header: bytes, etag: bytes) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 13.1.2): ``W/`` is ignored."""
    return any(candidate.strip().removeprefix(b"W/") in (etag, b"*") for candidate in header.split(b","))
