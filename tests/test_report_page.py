"""The auditor's report page, the sign-in form and the public verification view: in Debian's chromium
(Playwright) against the real server, and their HTML in-process on both databases.

Screenshots go to ``test-artifacts/`` (not committed): report-en.png, report-zh.png, report-invalid.png,
signin.png, verify-item.png.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page

from provenance.keys import init_dev_keys
from provenance.vocabulary import LANGUAGES, source_type_name
from service.pages.words import WORDS
from service.security import sessions

from . import assets, images
from .browser_support import ARTIFACTS
from .databases import Database
from .server_support import Server, create_token, serve
from .service_support import Service, running, service_settings

ROOT = Path(__file__).resolve().parent.parent
CACA = ROOT / "tests/fixtures/external/c2pa-rs/CACA.jpg"  # CA.jpg inside, A.jpg inside that, with thumbnails


@dataclass
class Site:
    server: Server
    auditor: str  # token
    ai: dict[str, object]  # an AI-generated image
    tree: dict[str, object]  # CACA.jpg stamped: an ingredient tree with thumbnails
    doomed: dict[str, object]  # stored bytes tampered after stamping: its live verification is invalid


def _upload(server: Server, token: str, data: bytes, declaration: dict[str, str]) -> dict[str, object]:
    response = httpx.post(
        f"{server.base}/v1/assets",
        headers={"Authorization": f"Bearer {token}"},
        files={"file": ("upload.jpg", data, "image/jpeg")},
        data={"declaration": json.dumps(declaration)},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


@pytest.fixture(scope="module")
def site(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("report-page")
    keys, data = root / "keys", root / "var"
    init_dev_keys(keys, "Report Newsroom")
    with serve(database, data, keys) as server:
        newsroom = create_token(server, "newsroom")
        ai = _upload(server, newsroom, images.jpeg(seed=61), {"source": "ai_generated", "title": "Flooded square"})
        tree = _upload(server, newsroom, CACA.read_bytes(), {"source": "camera", "title": "Harbour at dawn"})
        doomed = _upload(server, newsroom, images.jpeg(seed=62), {"source": "ai_generated", "title": "Doomed"})
        digest = str(doomed["stamped_sha256"])
        blob = data / "blobs" / digest[:2] / digest[2:]
        blob.write_bytes(assets.tampered_pixels(blob.read_bytes()))
        yield Site(server, create_token(server, "auditor"), ai, tree, doomed)


def watch(page: Page) -> list[str]:
    """Console errors (CSP violations included) and uncaught exceptions of ``page``."""
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return errors


def signed_in(browser: Browser, site: Site, target: str) -> tuple[BrowserContext, Page, list[str]]:
    """A fresh browser that opens ``target``, is sent to the sign-in form, signs in and lands on ``target``."""
    context = browser.new_context(locale="en-US", accept_downloads=True)
    page = context.new_page()
    errors = watch(page)
    page.goto(site.server.base + target)
    assert page.url.startswith(f"{site.server.base}/signin?next=")
    page.fill("input[name=token]", site.auditor)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "signin.png"), full_page=True)
    with page.expect_navigation():
        page.click("#signin button[type=submit]")
    assert page.url == site.server.base + target
    return context, page, errors


def report_path(item: dict[str, object]) -> str:
    links = item["links"]
    assert isinstance(links, dict)
    return str(links["report"])


def test_auditor_signs_in_once_and_reads_the_report(browser: Browser, site: Site) -> None:
    context, page, errors = signed_in(browser, site, report_path(site.ai))
    cookie = next(c for c in context.cookies() if c["name"] == sessions.COOKIE)
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert site.auditor not in cookie["value"]
    assert page.evaluate("document.cookie") == ""  # nothing of the session is readable by scripts

    # The summary comes first: the label in plain words, what it means, signer, time, state.
    summary = page.locator("#verdict .summary")
    assert summary.locator(".mark").inner_text() == "AI-generated image"
    assert "created by a generative AI model" in summary.locator(".meaning").inner_text()
    assert "Report Newsroom" in summary.inner_text()
    assert "signed by a signer this service trusts" in summary.locator(".explained").inner_text()
    assert "Created by generative AI (trained algorithmic media)" in summary.inner_text()  # the IPTC name
    # The evidence is collapsed at the end: codes, certificate chain, trust fingerprint, policy version.
    evidence = page.locator("#verdict .evidence details")
    assert evidence.get_attribute("open") is None
    assert not page.locator("text=signingCredential.trusted").is_visible()
    evidence.locator("summary").click()
    assert page.locator("text=signingCredential.trusted").first.is_visible()
    assert "labels/" in evidence.inner_text()
    assert "Certificate chain" in evidence.inner_text()
    order = page.evaluate(
        """() => ['.summary', '.stamping', '.evidence', '.download'].map(
            s => document.querySelector('#verdict ' + s).getBoundingClientRect().top)"""
    )
    assert order == sorted(order)
    page.screenshot(path=str(ARTIFACTS / "report-en.png"), full_page=True)

    # The JSON download is the report itself.
    with page.expect_download() as download:
        page.click(".download a")
    saved = json.loads(Path(download.value.path()).read_text())
    assert saved["id"] == site.ai["id"]
    assert saved["verification"]["labels"] == ["ai_generated"]

    # Signed in once: the next report opens without the form; the page switches language.
    page.goto(site.server.base + report_path(site.tree) + "?lang=zh-Hans")
    assert "/signin" not in page.url
    assert page.locator("#verdict .summary .mark").inner_text() == "内容凭证"
    page.screenshot(path=str(ARTIFACTS / "report-zh.png"), full_page=True)
    assert errors == []
    context.close()


def test_ingredient_tree_is_collapsible_with_thumbnails_and_states(browser: Browser, site: Site) -> None:
    context, page, errors = signed_in(browser, site, report_path(site.tree))
    nodes = page.locator("#verdict .ingredients li.node")
    assert [nodes.nth(i).get_attribute("data-state") for i in range(nodes.count())] == [
        "untrusted",  # CACA.jpg: a C2PA test signer, not under this service's anchors
        "untrusted",  # CA.jpg inside it
        "absent",  # A.jpg: no credentials of its own
    ]
    assert "edited from" in nodes.first.inner_text()
    thumbnails = page.locator("#verdict .ingredients img.thumbnail")
    assert thumbnails.count() >= 2
    assert all(thumbnails.nth(i).evaluate("img => img.naturalWidth > 0") for i in range(thumbnails.count()))
    innermost = nodes.nth(2)
    assert innermost.is_visible()
    nodes.first.locator("> details > summary").click()  # collapse CACA.jpg's ingredients
    assert not innermost.is_visible()
    assert errors == []
    context.close()


def test_invalid_overrides_everything_and_greys_out_the_manifest(browser: Browser, site: Site) -> None:
    context, page, errors = signed_in(browser, site, report_path(site.doomed))
    verdict = page.locator("#verdict")
    assert verdict.get_attribute("data-state") == "invalid"
    summary = verdict.locator(".summary")
    assert summary.locator(".mark").inner_text() == "Content Credentials invalid"
    warning = summary.locator("[role=alert]")
    assert "must not be taken as fact" in warning.inner_text()
    # Everything the manifest states is marked unverified and greyed out; no AI label is shown as a fact.
    for row in summary.locator("tr.unverifiable").all():
        assert "(unverified)" in row.inner_text()
    assert summary.locator("tr.unverifiable").count() >= 2  # signer, title, …
    grey = summary.locator("tr.unverifiable td").first.evaluate("td => getComputedStyle(td).color")
    assert grey == "rgb(156, 163, 175)"
    assert "AI-generated image" not in summary.inner_text()
    # The badge still shows the stored decision until re-verification; the page says they differ.
    assert "differs from this verification" in verdict.inner_text()
    page.screenshot(path=str(ARTIFACTS / "report-invalid.png"), full_page=True)
    assert errors == []
    context.close()


def test_a_signed_link_opens_the_report_in_a_browser_without_signing_in(browser: Browser, site: Site) -> None:
    minted = httpx.post(
        site.server.base + report_path(site.ai) + "-link",
        headers={"Authorization": f"Bearer {site.auditor}"},
        timeout=10,
    )
    assert minted.status_code == 201
    context = browser.new_context()
    page = context.new_page()
    errors = watch(page)
    page.goto(site.server.base + minted.json()["url"])
    assert page.locator("#verdict .summary .mark").inner_text() == "AI-generated image"
    assert "Shared link, valid until" in page.locator("header").inner_text()
    assert context.cookies() == []  # a link makes no session
    page.goto(site.server.base + report_path(site.tree))  # another report: the link does not open it
    assert "/signin" in page.url
    assert errors == []
    context.close()


def test_the_badge_report_url_is_the_items_public_view(browser: Browser, site: Site) -> None:
    badge = httpx.get(f"{site.server.base}/v1/badges/{site.ai['id']}.json", timeout=10).json()
    assert badge["report_url"] == f"/verify/{site.ai['id']}?lang=en"
    page = browser.new_page()
    errors = watch(page)
    page.goto(site.server.base + badge["report_url"])
    verdict = page.locator("#verdict")
    assert verdict.get_attribute("data-state") == "trusted"
    assert verdict.locator(".summary .mark").inner_text() == "AI-generated image"
    assert "Report Newsroom" in verdict.inner_text()
    assert "newsroom test" not in page.content()  # the stamping token's name is for auditors only
    assert page.locator("a[href$='/content']").count() == 1
    page.screenshot(path=str(ARTIFACTS / "verify-item.png"), full_page=True)
    assert errors == []
    page.close()


# --------------------------------------------------------------------------------------------------
# The same pages in-process, on both databases
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def service(database: Database, tmp_path: Path, keys_dir: Path) -> Iterator[Service]:
    with running(service_settings(tmp_path / "var", keys_dir, database)) as svc:
        yield svc


def _html_report(svc: Service, path: str, **params: str) -> str:
    response = svc.client.get(path, params=params, headers={**svc.bearer("auditor"), "Accept": "text/html"})
    assert response.status_code == 200, response.text
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert "<script" not in response.text
    return response.text


def test_report_page_reads_summary_tree_evidence_in_that_order(service: Service) -> None:
    created = service.upload(CACA.read_bytes(), {"source": "camera", "title": "Harbour"}).json()
    html = _html_report(service, created["links"]["report"])
    positions = [html.index(marker) for marker in ('class="summary', 'class="ingredients"', 'class="evidence"')]
    assert positions == sorted(positions)
    assert "Original digital capture" in html  # the declared camera capture, by its IPTC name
    assert re.search(r'<section class="evidence">\s*<details>', html)  # collapsed
    assert 'href="/v1/assets/' in html
    assert "format=json" in html
    assert html.count('class="thumbnail"') >= 2  # from the one read of the stored bytes


def test_report_page_speaks_chinese(service: Service) -> None:
    created = service.upload(images.jpeg(seed=63), {"source": "ai_generated"}).json()
    html = _html_report(service, created["links"]["report"], lang="zh-Hans")
    assert '<html lang="zh-Hans">' in html
    assert "AI 生成的图像" in html
    assert WORDS["zh-Hans"]["report_summary"] in html
    assert "由生成式 AI 创建" in html


def test_json_download_and_plain_json(service: Service) -> None:
    created = service.upload(images.jpeg(seed=64), {"source": "ai_generated"}).json()
    path = created["links"]["report"]
    download = service.client.get(
        path, params={"format": "json"}, headers={**service.bearer("auditor"), "Accept": "text/html"}
    )
    assert download.headers["content-type"] == "application/json"
    assert download.headers["content-disposition"] == f'attachment; filename="{created["id"]}-report.json"'
    plain = service.client.get(path, headers=service.bearer("auditor"))
    assert plain.json() == download.json()
    assert "content-disposition" not in plain.headers
    bad = service.client.get(path, params={"format": "xml"}, headers=service.bearer("auditor"))
    assert bad.status_code == 422


def test_public_view_shows_the_badge_decision_and_nothing_for_auditors_only(service: Service) -> None:
    created = service.upload(images.jpeg(seed=65), {"source": "ai_generated", "title": "Storm"}).json()
    for ref in (created["id"], f"sha256-{created['stamped_sha256']}", f"sha256-{created['sha256']}"):
        badge = service.client.get(f"/v1/badges/{ref}.json", params={"lang": "zh-Hans"}).json()
        assert badge["report_url"] == f"/verify/{ref}?lang=zh-Hans"
        view = service.client.get(badge["report_url"])
        assert view.status_code == 200
        assert view.headers["content-security-policy"].startswith("default-src 'none'")
        assert 'data-state="trusted"' in view.text
        assert "AI 生成的图像" in view.text
        for private in ("test newsroom desk", "Stamping record", "签名记录", "facts--declaration", "stamped_by"):
            assert private not in view.text


@pytest.mark.parametrize(
    "ref", ["img_000000000000000000000000", "img_nothex", "art_000000000000000000000000", "x" * 300]
)
def test_public_view_of_an_unknown_ref_is_404(service: Service, ref: str) -> None:
    response = service.client.get(f"/verify/{ref}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_verify_page_uses_the_same_summary(service: Service) -> None:
    stamped = service.upload(images.jpeg(seed=66), {"source": "ai_generated"}).json()
    content = service.client.get(stamped["links"]["content"]).content
    response = service.client.post("/verify", files={"file": ("a.jpg", content)})
    assert response.status_code == 200
    assert '<section class="summary summary--ai' in response.text
    assert "A trusted signer states that this image was created by a generative AI model." in response.text
    tampered = service.client.post("/verify", files={"file": ("a.jpg", assets.tampered_pixels(content))})
    assert WORDS["en"]["report_invalid_warning"] in tampered.text
    assert 'class="unverifiable"' in tampered.text


def test_sign_in_attempts_are_rate_limited(database: Database, tmp_path: Path, keys_dir: Path) -> None:
    with running(service_settings(tmp_path / "var", keys_dir, database, public_verify_per_minute=1)) as svc:
        assert svc.client.post("/signin", data={"token": "x"}).status_code == 403  # no CSRF cookie
        limited = svc.client.post("/signin", data={"token": svc.tokens["auditor"]})
        assert limited.status_code == 429
        assert "Too many attempts" in limited.text
        assert int(limited.headers["retry-after"]) >= 1


def test_every_page_word_exists_in_every_language() -> None:
    keys = {lang: set(WORDS[lang]) for lang in LANGUAGES}
    assert all(k == keys["en"] for k in keys.values())


SOURCE_TYPES = {
    "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia": (
        "Created by generative AI (trained algorithmic media)",
        "由生成式 AI 创建（训练算法媒体）",
    ),
    "https://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture": ("Original digital capture", "原始数字拍摄"),
    "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia": (
        "Composite with generative AI elements",
        "含生成式 AI 元素的合成作品",
    ),
}


@pytest.mark.parametrize(("uri", "names"), SOURCE_TYPES.items(), ids=[u.rsplit("/", 1)[1] for u in SOURCE_TYPES])
def test_iptc_source_types_have_human_names(uri: str, names: tuple[str, str]) -> None:
    assert (source_type_name(uri, "en"), source_type_name(uri, "zh-Hans")) == names


def test_other_source_types_have_no_invented_name() -> None:
    assert source_type_name("http://c2pa.org/digitalsourcetype/empty") is None
    assert source_type_name("http://cv.iptc.org/newscodes/digitalsourcetype/madeUp") is None
