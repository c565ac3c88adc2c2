"""The badge tier: the public badge lookups on their own, under granian, for a site's badge volume.

``provenance serve-badges`` runs this app; a proxy sends ``GET /v1/badges/...`` to it and everything else
to ``provenance serve``. It answers exactly what the full service's badge paths answer (the same
:class:`~service.badges.app.BadgeApp`, the same decisions, the same freshness), from the same database
and change feed, and nothing else: no keys, no blobs, no uploads, no FastAPI. So it scales on its own and
holds nothing worth stealing.

Why a separate process and server: under uvicorn a bare ASGI app reaches a quarter of what nginx serves
statically on the same cores, which no badge handler can beat; granian's Rust HTTP core reaches about
twice that (``bench/bench_service.py``). The API stays under uvicorn, whose connection guard
(:mod:`service.server`) the uploads need. Here granian's own limits do that work: a request head must
arrive within ``header_timeout`` (its header read timeout), and idle connections cost no Python.

Besides the badge paths it answers ``/healthz`` (the process runs) and ``/readyz`` (the database answers
and the badge cache is in step with the change feed, else 503); every other path is a 404.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from service.badges.app import ASGIApp, BadgeApp, BadgeService, Preload, Receive, Scope, Send
from service.context import open_database
from service.ops.logging import access
from service.ops.logging import configure as configure_logging
from service.ops.logging import flush as flush_log
from service.ops.requests import RequestLog
from service.settings import Settings, load_settings
from service.store.changes import Changed, ChangeListener

log = logging.getLogger("provenance.service")

#: Environment variable naming the TOML settings file read by :func:`app` (the same as ``service.asgi``).
CONFIG_ENV: Final = "PROVENANCE_CONFIG"
#: Seconds between reads of the change feed when badges are not cached (as in the full service).
FEED_PERIOD: Final = 1.0

_JSON: Final = [(b"content-type", b"application/json"), (b"x-content-type-options", b"nosniff")]


class _Rest:
    """Everything but the badge paths: the lifespan (the change listener and the preload), ``/healthz``,
    ``/readyz`` and 404s."""

    def __init__(
        self, settings: Settings, engine: Engine, sessions: sessionmaker[Session], badges: BadgeService
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.sessions = sessions
        self.badges = badges
        self._listener: ChangeListener | None = None
        self._preload: Preload | None = None
        self._last_read = float("-inf")

    def _applied(self, changed: Changed, started: float) -> None:
        self.badges.apply(changed, started)
        self._last_read = started

    def start(self) -> None:
        period = self.settings.badge_cache_seconds or FEED_PERIOD
        self._listener = ChangeListener(self.engine, self.sessions, period, self._applied, failed=self.badges.clear)
        self._listener.start()
        self._preload = Preload(self.badges, self.settings.badge_preload)

    def stop(self) -> None:
        if self._preload is not None:
            self._preload.stop()
        if self._listener is not None:
            self._listener.stop()
        self.engine.dispose()
        flush_log()

    def _ready(self) -> tuple[int, dict[str, Any]]:
        period = self.settings.badge_cache_seconds or FEED_PERIOD
        if time.monotonic() - self._last_read > 2 * period + 0.5:
            return 503, {"status": "unavailable", "detail": "the change feed is not being read"}
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception as exc:  # any failure to reach the database: not ready, never a traceback
            return 503, {"status": "unavailable", "detail": f"database: {type(exc).__name__}"}
        return 200, {"status": "ready", "cached_decisions": len(self.badges)}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # no websockets
        path = scope.get("path", "")
        body: dict[str, Any]
        if path == "/healthz":
            status, body = 200, {"status": "ok"}
        elif path == "/readyz":
            status, body = self._ready()
        else:
            status, body = 404, {"type": "/problems/not-found", "title": "Not found", "status": 404}
        encoded = json.dumps(body).encode()
        headers = [*_JSON, (b"content-length", str(len(encoded)).encode())]
        if status == 503:
            headers.append((b"retry-after", b"1"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else encoded})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


def create_badge_app(settings: Settings) -> ASGIApp:
    """The badge tier for ``settings`` (the database is migrated first, as by the full service)."""
    engine, sessions = open_database(settings)
    badges = BadgeService(sessions, settings.badge_cache_seconds, settings.badge_max_age, settings.badge_cache_entries)
    rest = _Rest(settings, engine, sessions, badges)
    return RequestLog(BadgeApp(badges, rest), access if settings.access_log else None)


def app() -> ASGIApp:
    """Factory for granian's workers: settings from the environment (and ``PROVENANCE_CONFIG``)."""
    config = os.environ.get(CONFIG_ENV)
    settings = load_settings(Path(config) if config else None)
    configure_logging(settings.log_level)
    return create_badge_app(settings)
