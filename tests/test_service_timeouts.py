"""Slow request bodies are cut off with 408 (no slow-loris uploads)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from provenance.keys import init_dev_keys
from service.app import create_app
from tests.databases import Database
from tests.service_support import service_settings


def test_slow_body_gets_408(database: Database, tmp_path: Path) -> None:
    init_dev_keys(tmp_path / "keys", "Timeout Newsroom")
    settings = service_settings(tmp_path / "var", tmp_path / "keys", database, request_body_timeout=0.2)
    app = create_app(settings)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(2)  # the client stalls mid-upload
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/verify",  # public: the body is read at once (authenticated routes refuse first, unread)
        "raw_path": b"/verify",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"multipart/form-data; boundary=x"), (b"content-length", b"100")],
        "server": ("127.0.0.1", 8000),
        "client": ("127.0.0.1", 5000),
    }

    async def run() -> None:
        await asyncio.wait_for(app(scope, receive, send), timeout=5)

    asyncio.run(run())
    app.api.state.ctx.close()  # the lifespan (which would close it) is not run here
    start = next(m for m in sent if m["type"] == "http.response.start")
    assert start["status"] == 408
