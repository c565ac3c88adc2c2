"""Public badge lookups: the hot path, served by a bare ASGI handler in front of FastAPI.

``GET /v1/badges/{ref}.svg|.json|.html`` and ``GET /v1/badges?refs=a,b,c``. No signing and no C2PA
parsing here: the stored decision is read once (or preloaded at start) and kept in memory until the change
feed (:mod:`service.store.changes`) says the item changed, so a known ref never touches the database; and
the rendered bodies with their strong ETags are built once and shared. So a new upload,
a re-verification or a withdrawal committed by any process shows on every badge within
``badge_cache_seconds``. Every response is safe to embed: fixed vocabulary, ``Content-Security-Policy``,
``nosniff``, no cookies; and it names the item it shows in ``Surrogate-Key`` / ``Cache-Tag`` (plus
``provenance-badge`` on every badge), so a CDN can purge it when the purge webhook says so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Final
from urllib.parse import parse_qs

import anyio.to_thread
from sqlalchemy.orm import Session, sessionmaker

from provenance.vocabulary import LANGUAGES, preferred_language
from service.badges import render
from service.badges.decisions import find_decision, newest_asset_decisions
from service.badges.render import BadgeDecision
from service.cache import BADGE_TAG, LRU, cache_tags
from service.store.changes import Changed
from service.store.ids import REF

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("provenance.service")

PREFIX: Final = "/v1/badges"
#: ``POST /v1/badges/match`` (service/resolver/routes.py): the one badge route the API answers, not this app.
MATCH_PATH: Final = "/v1/badges/match"
MAX_BATCH: Final = 100
#: Decisions kept in memory per process unless configured (``badge_cache_entries``); least recently used go first.
MAX_CACHED: Final = 250_000
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


def _tags(items: Iterable[str]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode(), value.encode()) for name, value in cache_tags(items, BADGE_TAG).items()]


def _ref_tags(ref: str, item: str | None) -> list[tuple[bytes, bytes]]:
    """The cache tags of one badge: its item and its ref (a digest ref may answer with another item after
    a later upload of the same bytes), or the ref alone; built per request (a ref's tags are not kept)."""
    names = ref if item is None or item == ref else f"{item} {ref}"
    return [
        (b"surrogate-key", f"{names} {BADGE_TAG}".encode()),
        (b"cache-tag", f"{names.replace(' ', ',')},{BADGE_TAG}".encode()),
    ]


class _Response:
    """A rendered body with its headers and ASGI messages built once; each answer adds its ref's cache tags.

    SVG and HTML bodies depend only on the decision's state, labels and language, so one response serves
    every ref that looks the same; a JSON body names its ref and is kept per ref and language."""

    __slots__ = ("body", "etag", "headers", "status", "with_length")

    def __init__(self, status: int, body: bytes, content_type: bytes, csp: bytes, cache_control: bytes) -> None:
        self.status = status
        self.body = {"type": "http.response.body", "body": body}
        self.etag = b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"'
        self.headers = [
            (b"content-type", content_type),
            (b"etag", self.etag),
            (b"cache-control", cache_control if status == 200 else b"public, max-age=5"),
            (b"content-security-policy", csp),
            (b"x-content-type-options", b"nosniff"),
            (b"access-control-allow-origin", b"*"),
            (b"vary", b"Accept-Language"),
        ]
        self.with_length = [*self.headers, (b"content-length", str(len(body)).encode())]

    def start(self, tags: list[tuple[bytes, bytes]]) -> Message:
        return {"type": "http.response.start", "status": self.status, "headers": self.with_length + tags}

    def not_modified(self, tags: list[tuple[bytes, bytes]]) -> Message:
        """A 304 repeats the validators but carries no body and no Content-Length (RFC 9110 8.6)."""
        return {"type": "http.response.start", "status": 304, "headers": self.headers + tags}


_EMPTY_BODY: Final = {"type": "http.response.body", "body": b""}
_NOT_FOUND: Final = _Response(
    404,
    json.dumps({"type": "/problems/not-found", "title": "Unknown badge", "status": 404}).encode(),
    b"application/problem+json",
    b"default-src 'none'",
    b"",
)
#: What one badge request is answered with: the response, and the ref's cache tags.
Answer = tuple[_Response, list[tuple[bytes, bytes]]]


class _Known:
    """What the cache keeps of one ref: the item it names and its decision (both ``None``: the ref names
    nothing stored). Compact: the decision's repeated strings (states, labels, signers) are shared."""

    __slots__ = ("decision", "item")

    def __init__(self, item: str | None, decision: BadgeDecision | None) -> None:
        self.item = item
        self.decision = decision


_UNKNOWN: Final = _Known(None, None)
#: The cache serves while the listener's last read started at most this many ``badge_cache_seconds``
#: (plus :data:`_STEP_SLACK` seconds) ago: two reads missed, and it is out of step.
_STEP_PERIODS: Final = 2.0
_STEP_SLACK: Final = 0.5
#: Rendered JSON responses kept (per ref and language; SVG and HTML responses are shared, see _Response).
MAX_JSON_RESPONSES: Final = 20_000
#: Images read per query while preloading.
PRELOAD_PAGE: Final = 1000
#: Reads of one preload page a stream of changes may void before the preload gives up.
_PRELOAD_TRIES: Final = 20


class BadgeService:
    """Decisions from the database, kept in memory per ref (bounded, least recently used first).

    Freshness: a cached decision is kept until the change feed names its ref: this process's
    :class:`~service.store.changes.ChangeListener` reads the feed every ``badge_cache_seconds`` (at once on
    a PostgreSQL ``NOTIFY`` or a commit of this process) and :meth:`apply` forgets exactly the refs that
    changed (a trust change, or a listener that fell behind: everything). The cache serves only while the
    listener is in step: if its last read started more than two ``badge_cache_seconds`` ago (it fails, or
    is stuck), the cache is dropped, this is logged, and every request reads the database until the
    listener catches up. A decision read (or a response rendered from one) that a change overtook is not
    kept. ``cache_seconds=0``: nothing is cached.

    Footprint: a decision per ref (:class:`_Known`, a few hundred bytes), not a response per ref, format
    and language: the SVG and HTML bodies are shared by every ref that looks the same, and only JSON
    bodies (which name their ref) are kept per ref, up to :data:`MAX_JSON_RESPONSES`. A known ref is
    answered without touching the database; :meth:`preload` fills the cache with the newest images at
    start, so a site's badges are known before they are asked for.
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
        self.in_step_seconds = _STEP_PERIODS * cache_seconds + _STEP_SLACK
        self._decisions: LRU[str, _Known] = LRU(max_entries)
        self._json: LRU[tuple[str, str], _Response] = LRU(min(max_entries, MAX_JSON_RESPONSES))
        #: Shared SVG / HTML responses by (format, state, labels, language): bounded by the vocabulary.
        self._looks: LRU[tuple[str, str, tuple[str, ...], str], _Response] = LRU(4096)
        self._lock = threading.Lock()
        self._generation = 0  # bumped by every forget: a read that started before it is not kept
        self._synced_at = float("-inf")  # monotonic start of the listener's last read
        self._out_of_step = False
        self._followed = False  # a change listener has handed over its first read

    def __len__(self) -> int:
        """Refs whose decision is cached."""
        return len(self._decisions)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._decisions.clear()
            self._json.clear()

    def forget(self, refs: Iterable[str]) -> None:
        """Drop the decisions and the rendered JSON of ``refs``."""
        with self._lock:
            self._generation += 1
            for ref in refs:
                self._decisions.discard(ref)
                for lang in LANGUAGES:
                    self._json.discard((ref, lang))

    def apply(self, changed: Changed, started: float) -> None:
        """Forget what ``changed`` names; every change committed before ``started`` (monotonic) is now applied."""
        if changed.trust or changed.everything:
            self.clear()
        elif changed.refs:
            self.forget(changed.refs)
        self._synced_at = started
        self._followed = True
        if self._out_of_step:
            self._out_of_step = False
            log.info("badge cache: in step with the change feed again")

    def _in_step(self, now: float) -> bool:
        if now - self._synced_at <= self.in_step_seconds:
            return True
        if self.cache_seconds > 0 and self._followed and not self._out_of_step:
            self._out_of_step = True
            log.warning(
                "badge cache: the change feed was last read %.1f s ago; badges are read from the database",
                now - self._synced_at,
            )
            self.clear()
        return False

    def _keep(self, generation: int, put: Callable[[], None]) -> None:
        with self._lock:
            if generation == self._generation and self.cache_seconds > 0:
                put()

    def _decision(self, ref: str, generation: int) -> _Known:
        if self._in_step(time.monotonic()):
            hit = self._decisions.get(ref)
            if hit is not None:
                return hit
        with self.sessions() as session:
            found = find_decision(session, ref)
        known = _Known(*found) if found is not None else _UNKNOWN
        self._keep(generation, lambda: self._decisions.put(ref, known))
        return known

    def _answer(self, ref: str, known: _Known, fmt: str, lang: str, generation: int) -> Answer:
        decision = known.decision
        if decision is None:
            return _NOT_FOUND, _ref_tags(ref, None)
        tags = _ref_tags(ref, known.item)
        content_type, csp, renderer = _FORMATS[fmt]
        if fmt == "json":
            kept = self._json.get((ref, lang))
            if kept is None:
                rendered = kept = _Response(200, renderer(decision, lang), content_type, csp, self.cache_control)
                self._keep(generation, lambda: self._json.put((ref, lang), rendered))
            return kept, tags
        look = (fmt, decision.state, decision.labels, lang)
        response = self._looks.get(look)
        if response is None:  # the same words for every ref that looks so: kept whatever changes
            response = _Response(200, renderer(decision, lang), content_type, csp, self.cache_control)
            self._looks.put(look, response)
        return response, tags

    def render(self, ref: str, fmt: str, lang: str) -> Answer:
        """The answer for one badge (blocking: may read the database), cached for the next request."""
        generation = self._generation  # before the read: a change applied after it voids what is read
        return self._answer(ref, self._decision(ref, generation), fmt, lang, generation)

    def cached(self, ref: str, fmt: str, lang: str) -> Answer | None:
        """The answer if the ref's decision is in memory (never blocks); ``None``: the caller renders it now."""
        if not self._in_step(time.monotonic()):
            return None
        generation = self._generation
        known = self._decisions.get(ref)
        return self._answer(ref, known, fmt, lang, generation) if known is not None else None

    def batch(self, refs: list[str], lang: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """The batch body, and its cache tags (every item it names)."""
        generation = self._generation
        out: dict[str, object] = {}
        items: list[str] = []
        for ref in refs:
            known = self._decision(ref, generation) if REF.fullmatch(ref) else _UNKNOWN
            out[ref] = render.as_dict(known.decision, lang) if known.decision else None
            if known.item:
                items += [known.item, ref]
        body = json.dumps({"badges": out, "lang": lang}, ensure_ascii=False, separators=(",", ":")).encode()
        return body, _tags(items)

    def preload(self, limit: int, stopping: threading.Event | None = None) -> int:
        """Load the decisions of up to ``limit`` of the newest images (by their ``img_`` ref) into the free
        room of the cache, never displacing a decision in use; returns how many were loaded.

        Each page is kept only if no change was applied while it was read (else it is read again), so what
        is loaded is as current as a lookup's read. Stops early when ``stopping`` is set or the cache is full.
        """
        loaded, position, tries = 0, None, 0
        while loaded < limit and self.cache_seconds > 0 and not (stopping is not None and stopping.is_set()):
            generation = self._generation
            with self.sessions() as session:
                found, after = newest_asset_decisions(session, min(PRELOAD_PAGE, limit - loaded), position)
            with self._lock:
                if generation != self._generation:
                    tries += 1
                    if tries < _PRELOAD_TRIES:
                        continue
                    log.warning("badge preload stopped after %d decisions: changes kept voiding its reads", loaded)
                    return loaded
                for ref, decision in found:
                    if not self._decisions.add_cold(ref, _Known(ref, decision)):
                        return loaded  # full
                    loaded += 1
            tries = 0
            if after is None:
                break
            position = after
        return loaded


class Preload:
    """:meth:`BadgeService.preload` on a thread of its own, started at once; :meth:`stop` ends it (between
    two pages) and waits for it, so no database connection outlives the service."""

    def __init__(self, service: BadgeService, limit: int) -> None:
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(service, limit), name="badge-preload", daemon=True)
        self._thread.start()

    def _run(self, service: BadgeService, limit: int) -> None:
        started = time.monotonic()
        try:
            loaded = service.preload(limit, self._stopping)
        except Exception as exc:  # never fatal: badges are then read on first use
            log.warning("badge preload failed (%s: %s); badges are read on first use", type(exc).__name__, exc)
            return
        if loaded:
            log.info("badge cache: preloaded %d decisions in %.1f s", loaded, time.monotonic() - started)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()


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
        if scope["type"] != "http" or not path.startswith(PREFIX) or path == MATCH_PATH:
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
        answer = self.service.cached(ref, fmt, lang)
        if answer is None:  # only a ref whose decision is not in memory touches the database, off the loop
            answer = await anyio.to_thread.run_sync(self.service.render, ref, fmt, lang)
        response, tags = answer
        if response.status == 200 and if_none_match is not None and _etag_matches(if_none_match, response.etag):
            await send(response.not_modified(tags))
            await send(_EMPTY_BODY)
            status = 304
        else:
            await send(response.start(tags))
            await send(_EMPTY_BODY if head else response.body)
            status = response.status
        if self.on_request is not None:
            self.on_request(status)

    async def _batch(self, send: Send, query: dict[str, list[str]], lang: str, head: bool) -> None:
        refs = [r for r in ",".join(query.get("refs", [])).split(",") if r]
        if not refs or len(refs) > MAX_BATCH:
            await self._send(send, *_problem(400, f"refs must list 1 to {MAX_BATCH} badge references"), head)
            return
        body, tags = await anyio.to_thread.run_sync(self.service.batch, refs, lang)
        headers = [
            (b"content-type", b"application/json"),
            (b"cache-control", self.service.cache_control),
            (b"access-control-allow-origin", b"*"),
            (b"x-content-type-options", b"nosniff"),
            (b"content-security-policy", b"default-src 'none'"),
            (b"vary", b"Accept-Language"),
            *tags,
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
