"""`/docs` works offline: Debian's chromium, every request to another host aborted and recorded.

The page's Swagger UI files come from the service itself (a pinned package, never a CDN), under a
Content-Security-Policy of this origin only; a page that tried to reach another host, or anything the
policy blocked (a CSP violation is a console error), fails here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Route

from provenance.keys import init_dev_keys

from .databases import Database
from .server_support import Server, serve

LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@pytest.fixture(scope="module")
def server(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("docs")
    init_dev_keys(root / "keys", "Docs Newsroom")
    with serve(database, root / "var", root / "keys") as running:
        yield running


class Offline:
    """A page whose requests to any host but this machine are aborted; what it tried, and what it logged."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.foreign: list[str] = []
        self.local: list[str] = []
        self.errors: list[str] = []
        page.route("**/*", self._route)
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def _route(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https", "ws", "wss") and urlsplit(url).hostname not in LOCAL_HOSTS:
            self.foreign.append(url)
            route.abort("internetdisconnected")
        else:
            self.local.append(url)
            route.continue_()

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":  # a CSP violation is reported here too
            self.errors.append(f"{message.text} @ {message.location.get('url', '')}")


def test_swagger_ui_renders_every_operation_offline(browser: Browser, server: Server) -> None:
    page = browser.new_page()
    offline = Offline(page)
    page.goto(f"{server.base}/docs")
    page.wait_for_selector(".opblock-summary-path")
    page.wait_for_load_state("networkidle")
    shown = {
        (
            page.locator(".opblock-summary-method").nth(i).inner_text().strip(),
            page.locator(".opblock-summary-path").nth(i).get_attribute("data-path"),
        )
        for i in range(page.locator(".opblock-summary-path").count())
    }
    document = httpx.get(f"{server.base}/openapi.json", timeout=10).json()
    expected = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    assert shown == expected
    assert {("POST", "/v1/assets"), ("POST", "/v1/articles"), ("GET", "/v1/badges/{ref}.svg")} <= shown
    # The bearer scheme is there: the Authorize button, and a lock on the protected operations.
    assert page.locator("button.authorize").count() == 1
    assert page.locator("#operations-ingest-upload_asset_v1_assets_post .authorization__btn").count() == 1
    assert offline.foreign == []
    assert offline.errors == []
    assert any(url.endswith("/docs/static/swagger-ui-bundle.js") for url in offline.local)
    Path("test-artifacts").mkdir(exist_ok=True)
    page.screenshot(path="test-artifacts/docs-offline.png", full_page=False)


def test_redoc_is_not_served_but_redirects_to_the_offline_docs(server: Server) -> None:
    # ReDoc's bundle always loads its logo from the vendor's CDN, so it is not offered.
    response = httpx.get(f"{server.base}/redoc", timeout=10)
    assert response.status_code == 308
    assert response.headers["location"] == "/docs"


def test_docs_pages_allow_only_this_origin(server: Server) -> None:
    response = httpx.get(f"{server.base}/docs", timeout=10)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    sources = {source for directive in csp.split(";") for source in directive.split()[1:]}
    assert sources == {"'none'", "'self'", "data:"}, csp  # nothing inline, no other origin
    assert "script-src 'self';" in csp
    assert "http" not in response.text  # no URL of another origin in the page itself
    assets = {
        "swagger-ui-bundle.js": "text/javascript",
        "swagger-ui.css": "text/css",
        "swagger-init.js": "text/javascript",
        "favicon.png": "image/png",
    }
    for name, media_type in assets.items():
        response = httpx.get(f"{server.base}/docs/static/{name}", timeout=10)
        assert response.status_code == 200, name
        assert response.headers["content-type"].startswith(media_type)
        assert response.headers["x-content-type-options"] == "nosniff"
    for name in ("../openapi.py", "index.html", "swagger-ui-bundle.js.map"):
        assert httpx.get(f"{server.base}/docs/static/{name}", timeout=10).status_code == 404
