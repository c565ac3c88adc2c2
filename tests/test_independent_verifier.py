"""Renditions verify as Trusted in an independent C2PA verifier: ``@contentauth/c2pa-web`` (c2pa-rs compiled to
WASM, from npm, pinned in ``tests/verifier/package.json``) running in headless chromium, offline, with only our
development root as its trust anchor.

The verifier's files and a one-line page are served from a local HTTP server of the test; every request to
anywhere else is refused and recorded (none may happen). ``make test`` installs the verifier
(``npm ci`` in ``tests/verifier``); without it this test fails and says how to install it.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import pytest
from playwright.sync_api import Browser, Route

from provenance.keys import init_dev_keys

from . import images
from .databases import Database
from .server_support import free_port
from .service_support import running, service_settings

VERIFIER = Path(__file__).resolve().parent / "verifier"
MODULES = VERIFIER / "node_modules"
C2PA_WEB = MODULES / "@contentauth" / "c2pa-web"

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>independent verifier</title>
<script type="importmap">
{"imports": {"highgain": "/node_modules/highgain/dist/index.js",
             "ts-deepmerge": "/node_modules/ts-deepmerge/esm/index.js"}}
</script>
<script type="module">
import { createC2pa } from "/node_modules/@contentauth/c2pa-web/dist/index.js";
const anchors = await (await fetch("/anchors.pem")).text();
const c2pa = await createC2pa({
  wasmSrc: "/node_modules/@contentauth/c2pa-web/dist/resources/c2pa_bg.wasm",
  settings: { trust: { trustAnchors: anchors }, verify: { verifyTrust: true } },
});
window.verify = async (path, format) => {
  const blob = await (await fetch(path)).blob();
  const reader = await c2pa.reader.fromBlob(format, blob);
  if (reader === null) return null;
  try { return await reader.manifestStore(); } finally { await reader.free(); }
};
window.ready = true;
</script>
"""


class _Files(http.server.SimpleHTTPRequestHandler):
    """The verifier's files, the page, the anchors and the renditions (by path), nothing else."""

    extensions_map: ClassVar[dict[str, str]] = {
        ".js": "text/javascript",
        ".wasm": "application/wasm",  # WebAssembly.compileStreaming requires it
        ".json": "application/json",
        "": "application/octet-stream",
    }

    def __init__(self, *args: Any, extra: dict[str, tuple[bytes, str]], **kwargs: Any) -> None:
        self.extra = extra
        super().__init__(*args, directory=str(VERIFIER), **kwargs)

    def do_GET(self) -> None:
        found = self.extra.get(self.path)
        if found is None:
            if not self.path.startswith("/node_modules/"):
                self.send_error(404)
                return
            super().do_GET()
            return
        body, media_type = found
        self.send_response(200)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _serve(extra: dict[str, tuple[bytes, str]]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), partial(_Files, extra=extra))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def renditions(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A JPEG and a WebP rendition of a stamped AI-generated JPEG, the original, and the service's root (the
    database plays no part in what the verifier sees: SQLite only)."""
    database = Database("sqlite")
    root = tmp_path_factory.mktemp("independent")
    init_dev_keys(root / "keys", "Independent Check Newsroom")
    with running(service_settings(root / "var", root / "keys", database)) as svc:
        asset = svc.upload(images.jpeg(800, 600, seed=41), {"source": "ai_generated", "title": "Harbour"}).json()
        made = {}
        for ext in ("jpg", "webp"):
            response = svc.client.get(f"/v1/assets/{asset['id']}/renditions/300.{ext}")
            assert response.status_code == 200, response.text
            made[ext] = (response.content, response.headers["content-type"])
        original = svc.client.get(f"/v1/assets/{asset['id']}/content").content
        anchors = (root / "keys" / "root.pem").read_bytes()
    return {"made": made, "original": original, "anchors": anchors}


def _validation(store: dict[str, Any]) -> tuple[str, list[str]]:
    state = store.get("validation_state")
    failures = [
        entry["code"] for entry in (store.get("validation_results", {}).get("activeManifest", {}).get("failure") or [])
    ]
    return str(state), failures


@pytest.mark.parametrize("ext", ["jpg", "webp"])
def test_renditions_verify_trusted_in_c2pa_web(browser: Browser, renditions: dict[str, Any], ext: str) -> None:
    assert (C2PA_WEB / "dist" / "resources" / "c2pa_bg.wasm").is_file(), (
        "the independent verifier is not installed: run `npm ci` in tests/verifier (make test does)"
    )
    data, media_type = renditions["made"][ext]
    extra = {
        "/": (PAGE.encode(), "text/html; charset=utf-8"),
        "/anchors.pem": (renditions["anchors"], "application/x-pem-file"),
        f"/rendition.{ext}": (data, media_type),
    }
    with _serve(extra) as base:
        elsewhere: list[str] = []

        def offline(route: Route) -> None:
            if route.request.url.startswith(base + "/") or route.request.url.startswith(("blob:", "data:")):
                route.continue_()
            else:
                elsewhere.append(route.request.url)
                route.abort()

        context = browser.new_context()
        context.route("**/*", offline)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        try:
            page.goto(base + "/")
            page.wait_for_function("window.ready === true", timeout=60_000)
            store = page.evaluate("([path, format]) => verify(path, format)", [f"/rendition.{ext}", media_type])
        finally:
            context.close()
        assert errors == []
        assert elsewhere == []
    assert store is not None, "c2pa-web found no manifest"
    state, failures = _validation(store)
    assert (state, failures) == ("Trusted", []), json.dumps(store.get("validation_results"))[:2000]

    manifest = store["manifests"][store["active_manifest"]]
    actions = next(a["data"]["actions"] for a in manifest["assertions"] if a["label"] == "c2pa.actions.v2")
    expected = ["c2pa.opened", "c2pa.resized", *(["c2pa.converted"] if ext == "webp" else [])]
    assert [a["action"] for a in actions] == expected
    (parent,) = manifest["ingredients"]
    assert parent["relationship"] == "parentOf"
    assert parent["active_manifest"] in store["manifests"]  # the original's manifest, carried whole
    carried = store["manifests"][parent["active_manifest"]]
    origin = next(a["data"]["actions"] for a in carried["assertions"] if a["label"] == "c2pa.actions.v2")[0]
    assert origin["digitalSourceType"].endswith("/trainedAlgorithmicMedia")
    assert hashlib.sha256(data).hexdigest() != hashlib.sha256(renditions["original"]).hexdigest()
