"""The site integration in a real browser: Debian's chromium driven by Playwright, against the real server.

Screenshots of /demo and /verify are written to ``test-artifacts/`` (not committed).
"""

from __future__ import annotations

import http.server
import json
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser

from provenance.keys import init_dev_keys

from . import assets, images
from .browser_support import ARTIFACTS, badge_text, watch
from .databases import Database
from .server_support import Server, create_token, serve

ROOT = Path(__file__).resolve().parent.parent
XSS_TITLE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def site(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The service with the samples loaded, plus an image whose title is an XSS attempt."""
    root = tmp_path_factory.mktemp("site")
    keys, data = root / "keys", root / "var"
    init_dev_keys(keys, "Browser Newsroom")
    with serve(database, data, keys, "--samples", str(ROOT / "samples")) as server:
        token = create_token(server, "newsroom")
        response = httpx.post(
            f"{server.base}/v1/assets",
            headers={"Authorization": f"Bearer {token}"},
            files={"file": ("x.jpg", images.jpeg(seed=77), "image/jpeg")},
            data={"declaration": json.dumps({"source": "ai_generated", "title": XSS_TITLE})},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        server.uploaded.append(response.json())
        yield server


def test_demo_page_marks_come_from_verified_decisions(browser: Browser, site: Server) -> None:
    page = browser.new_page(locale="zh-CN")  # the page's language comes from Accept-Language
    seen = watch(page)
    page.goto(f"{site.base}/demo")
    page.wait_for_selector("#lead-caption .provenance-badge")
    assert [t.strip() for t in badge_text(page, "#lead-caption")] == ["AI 生成的图像"]
    assert [t.strip() for t in badge_text(page, "#lead-headline")] == ["由 AI 报道"]
    # Related articles: each item's image and headline carry their own marks.
    council, markets = (
        '[data-external-id="2026/11/27/council-budget"]',
        '[data-external-id="2026/11/28/markets-close-zh"]',
    )
    assert badge_text(page, council) == []  # the human-written article and its camera photo
    assert [t.strip() for t in badge_text(page, f"{markets} .caption")] == ["经 AI 编辑的图像"]
    assert [t.strip() for t in badge_text(page, f"{markets} .headline")] == ["AI 辅助撰写"]
    assert len(seen["batches"]) == 1  # one batch request for the whole page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "demo-zh.png"), full_page=True)

    page.click("#lang-toggle")
    page.wait_for_selector("#lead-caption .provenance-badge")
    assert [t.strip() for t in badge_text(page, "#lead-caption")] == ["AI-generated image"]
    assert [t.strip() for t in badge_text(page, "#lead-headline")] == ["Reported by AI"]
    page.screenshot(path=str(ARTIFACTS / "demo-en.png"), full_page=True)

    badge = page.locator("#lead-caption .provenance-badge")
    badge.focus()
    page.keyboard.press("Enter")
    popover = page.locator("#lead-caption .provenance-popover")
    assert popover.is_visible()
    assert "Browser Newsroom" in popover.text_content()
    assert seen["errors"] == []
    assert seen["dialogs"] == []


def test_markup_in_a_manifest_title_never_renders(browser: Browser, site: Server, tmp_path: Path) -> None:
    xss = next(i for i in site_images(site) if i["declaration"].get("title") == XSS_TITLE)
    page = browser.new_page()
    seen = watch(page)
    page.goto(f"{site.base}/demo?lang=en&image={xss['id']}")
    page.wait_for_selector("#lead-caption .provenance-badge")
    assert page.locator("#lead-caption").inner_text().startswith(XSS_TITLE)  # shown as text
    assert page.locator("img[src='x']").count() == 0
    # The same title inside the manifest, on the verify page.
    (tmp_path / "xss.jpg").write_bytes(httpx.get(f"{site.base}/v1/assets/{xss['id']}/content", timeout=10).content)
    page.goto(f"{site.base}/verify")
    page.set_input_files("input[name=file]", str(tmp_path / "xss.jpg"))
    page.click("button[type=submit]")
    page.wait_for_selector("#verdict")
    assert XSS_TITLE in page.locator("#verdict").inner_text()
    assert page.locator("img[src='x']").count() == 0
    assert seen["dialogs"] == []
    assert seen["errors"] == []


def site_images(site: Server) -> list[dict[str, object]]:
    return list(site.uploaded)


class _Static(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/v1/badges"):  # the service is down: the connection just drops
            self.close_connection = True
            return
        super().do_GET()


def test_page_survives_the_service_being_down(browser: Browser, tmp_path: Path) -> None:
    shutil.copy(ROOT / "service" / "pages" / "static" / "badge.js", tmp_path / "badge.js")
    (tmp_path / "page.html").write_text(
        '<!doctype html><html lang="zh-Hans"><head><meta charset="utf-8"><script src="/badge.js" defer></script>'
        '</head><body><p id="p" data-provenance-ref="img_000000000000000000000000">Caption</p></body></html>'
    )
    handler = lambda *args: _Static(*args, directory=str(tmp_path))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = browser.new_page()
        seen = watch(page)
        page.goto(f"http://127.0.0.1:{server.server_address[1]}/page.html")
        page.wait_for_load_state("networkidle")
        assert page.locator("#p").text_content() == "Caption"
        assert page.locator(".provenance-badge").count() == 0
        assert [e for e in seen["errors"] if "badge.js" in e or "Uncaught" in e] == []
    finally:
        server.shutdown()
        server.server_close()


def test_verify_page_verdicts(browser: Browser, site: Server, tmp_path: Path) -> None:
    token = create_token(site, "newsroom")
    upload = httpx.post(
        f"{site.base}/v1/assets",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("ai.jpg", images.jpeg(seed=78), "image/jpeg")},
        data={"declaration": json.dumps({"source": "ai_generated"})},
        timeout=30,
    ).json()
    stamped = httpx.get(site.base + upload["links"]["content"], timeout=10).content  # links are absolute paths
    (tmp_path / "ai.jpg").write_bytes(stamped)
    (tmp_path / "tampered.jpg").write_bytes(assets.tampered_pixels(stamped))
    (tmp_path / "garbage.jpg").write_bytes(bytes(range(256)) * 20)

    page = browser.new_page()
    seen = watch(page)
    cases = {
        "ai.jpg": ("trusted", "AI-generated image"),
        "tampered.jpg": ("invalid", "Content Credentials invalid"),
    }
    for name, (state, mark) in cases.items():
        page.goto(f"{site.base}/verify")
        page.set_input_files("input[name=file]", str(tmp_path / name))
        page.click("button[type=submit]")
        page.wait_for_selector("#verdict")
        assert page.locator("#verdict").get_attribute("data-state") == state
        assert mark in page.locator("#verdict").text_content()
        if name == "ai.jpg":
            page.screenshot(path=str(ARTIFACTS / "verify.png"), full_page=True)
    page.goto(f"{site.base}/verify")
    page.set_input_files("input[name=file]", str(tmp_path / "garbage.jpg"))
    page.click("button[type=submit]")
    alert = page.locator("[role=alert]")
    alert.wait_for()
    assert "unrecognised" in alert.text_content()
    assert "Traceback" not in page.content()
    assert seen["dialogs"] == []


def test_verify_page_shows_the_ingredient_tree_with_thumbnails(browser: Browser, site: Server) -> None:
    page = browser.new_page()
    seen = watch(page)
    page.goto(f"{site.base}/verify")
    page.set_input_files("input[name=file]", str(ROOT / "tests/fixtures/external/c2pa-rs/CACA.jpg"))
    page.click("button[type=submit]")
    page.wait_for_selector("#verdict")
    tree = page.locator("#verdict li:has(> span.state)")
    assert tree.count() == 2  # CA.jpg, and inside it A.jpg
    assert "untrusted" in tree.first.inner_text()  # a C2PA test signer, not under this service's anchors
    thumbnails = page.locator("#verdict img.thumbnail")
    assert thumbnails.count() == 2
    assert all(thumbnails.nth(i).evaluate("img => img.naturalWidth > 0") for i in range(2))
    assert seen["errors"] == []


def test_verify_page_accepts_a_dropped_file(browser: Browser, site: Server) -> None:
    page = browser.new_page()
    seen = watch(page)
    page.goto(f"{site.base}/verify")
    assert page.locator("[data-drop-hint]").is_visible()  # the enhancement is active
    garbage = list(bytes(range(256)) * 4)
    with page.expect_navigation():
        page.evaluate(
            """bytes => {
                const form = document.querySelector("form[data-dropzone]");
                const data = new DataTransfer();
                data.items.add(new File([new Uint8Array(bytes)], "dropped.jpg", {type: "image/jpeg"}));
                form.dispatchEvent(new DragEvent("drop", {dataTransfer: data, bubbles: true, cancelable: true}));
            }""",
            garbage,
        )
    assert "unrecognised" in page.locator("[role=alert]").inner_text()  # the server verified the dropped file
    # The only console line is the browser noting the 422 status of the error page itself.
    assert [e for e in seen["errors"] if "status of 422" not in e] == []


def test_custom_element(browser: Browser, site: Server) -> None:
    ai_image = next(i for i in site.uploaded if i["labels"] == ["ai_generated"])
    page = browser.new_page()
    seen = watch(page)
    page.goto(f"{site.base}/demo?lang=en")
    page.wait_for_selector("#lead-caption .provenance-badge")
    page.evaluate(
        """ref => {
            const el = document.createElement("provenance-badge");
            el.id = "custom";
            el.setAttribute("ref", ref);
            el.setAttribute("lang", "zh-Hans");
            document.body.appendChild(el);
        }""",
        ai_image["id"],
    )
    page.wait_for_selector("#custom .provenance-badge")
    assert [t.strip() for t in page.locator("#custom .provenance-badge").all_text_contents()] == ["AI 生成的图像"]
    assert len(seen["batches"]) == 2  # the page's batch, then the element's own
    assert seen["errors"] == []


def test_invalid_content_gets_the_neutral_invalid_mark(browser: Browser, site: Server) -> None:
    token = create_token(site, "newsroom")
    asset = httpx.post(
        f"{site.base}/v1/assets",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("doomed.jpg", images.jpeg(seed=79), "image/jpeg")},
        data={"declaration": json.dumps({"source": "ai_generated", "title": "Doomed"})},
        timeout=30,
    ).json()
    # Tamper with the stored stamped file, then have the service re-verify everything.
    digest = asset["stamped_sha256"]
    blob = site.data / "blobs" / digest[:2] / digest[2:]
    blob.write_bytes(assets.tampered_pixels(blob.read_bytes()))
    site.command("reverify", "--force")
    page = browser.new_page()
    for _ in range(40):  # the server's badge cache refreshes within a second
        page.goto(f"{site.base}/demo?lang=en&image={asset['id']}")
        page.wait_for_load_state("networkidle")
        marks = [t.strip() for t in badge_text(page, "#lead-caption")]
        if marks == ["Content Credentials invalid"]:
            break
        time.sleep(0.1)
    assert marks == ["Content Credentials invalid"]
    assert "provenance-badge--invalid" in (page.locator("#lead-caption .provenance-badge").get_attribute("class") or "")
