"""badge.js on a publisher's page in a real browser: marks on media elements, machine-readable marking, strict CSP.

Debian's chromium driven by Playwright. The service is a real server process; the publisher is a second origin
(a static server in this process) whose pages carry a strict Content-Security-Policy that allows only the
service's script and styles, and whose own stylesheet makes images responsive. Every CSP violation is recorded
by a listener installed before any page script runs.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from provenance.keys import init_dev_keys

from . import assets, images
from .databases import Database
from .server_support import Server, create_token, serve

TRAINED = "https://schema.org/TrainedAlgorithmicMediaDigitalSource"
COMPOSITE = "https://schema.org/CompositeWithTrainedAlgorithmicMediaDigitalSource"
REVIEW = {"editor": "The Harbour Gazette", "reviewed_at": "2026-11-28T09:30:00Z", "scope": "full text"}
ARTICLE = {
    "external_id": "2026/11/28/media-test",
    "version": 1,
    "headline": "Spring tides expected this weekend",
    "byline": "Automated Desk",
    "language": "en",
    "url": "https://news.example.com/tides",
    "body_text": "High water at 06:12 and 18:40 on Saturday.",
    "source": "ai_generated",
    "review": REVIEW,
}
PUBLISHER_CSS = """
body { margin: 16px; font: 16px/1.5 Georgia, serif; }
img, video { max-width: 100%; height: auto; }
figure { margin: 0 0 24px; }
figure img, figure video, picture, picture img { display: block; }
.inline-photo { width: 160px; }
.wide { width: 100%; }
"""
# Collects CSP violations from the first moment of every document (init scripts are not subject to the CSP).
CSP_LISTENER = """
window.__csp = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.__csp.push(e.violatedDirective + " " + e.blockedURI), true);
"""


@dataclass
class Site:
    server: Server
    token: str
    refs: dict[str, str] = field(default_factory=dict)  # case -> ref

    def upload(self, seed: int, source: str) -> dict[str, Any]:
        response = httpx.post(
            f"{self.server.base}/v1/assets",
            headers={"Authorization": f"Bearer {self.token}"},
            files={"file": ("photo.jpg", images.jpeg(seed=seed), "image/jpeg")},
            data={"declaration": json.dumps({"source": source})},
            timeout=30,
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def badge(self, ref: str, lang: str = "en") -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.server.base}/v1/badges/{ref}.json?lang={lang}", timeout=10).json()
        return body


@pytest.fixture(scope="module")
def site(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The service holding one item per case: trusted AI (generated, edited), trusted without a label, a
    reviewed AI article, an invalid (tampered) image and a withdrawn AI image."""
    root = tmp_path_factory.mktemp("media-site")
    keys, data = root / "keys", root / "var"
    init_dev_keys(keys, "Media Newsroom")
    # Browsers revalidate every badge (max-age 0): a page's refresh sees a withdrawal at once.
    with serve(database, data, keys, env={"PROVENANCE_BADGE_MAX_AGE": "0"}) as server:
        site = Site(server, create_token(server, "newsroom"))
        site.refs["ai"] = site.upload(101, "ai_generated")["id"]
        site.refs["edited"] = site.upload(102, "ai_edited")["id"]
        site.refs["camera"] = site.upload(103, "camera")["id"]
        article = httpx.post(
            f"{server.base}/v1/articles",
            headers={"Authorization": f"Bearer {site.token}", "Content-Type": "application/json"},
            content=json.dumps(ARTICLE).encode(),
            timeout=30,
        )
        assert article.status_code == 201, article.text
        site.refs["article"] = article.json()["id"]
        doomed = site.upload(104, "ai_generated")
        site.refs["invalid"] = doomed["id"]
        blob = data / "blobs" / doomed["stamped_sha256"][:2] / doomed["stamped_sha256"][2:]
        blob.write_bytes(assets.tampered_pixels(blob.read_bytes()))
        server.command("reverify", "--force")
        site.refs["withdrawn"] = site.upload(105, "ai_generated")["id"]
        withdrawn = httpx.post(
            f"{server.base}/v1/assets/{site.refs['withdrawn']}/withdraw",
            headers={"Authorization": f"Bearer {site.token}"},
            json={"reason": "published in error"},
            timeout=10,
        )
        assert withdrawn.status_code == 200, withdrawn.text
        site.refs["unknown"] = "img_" + "0" * 24
        # The server's badge cache follows the re-verification within a second.
        for _ in range(50):
            if site.badge(site.refs["invalid"])["state"] == "invalid":
                break
            time.sleep(0.1)
        assert site.badge(site.refs["invalid"])["state"] == "invalid"
        assert site.badge(site.refs["withdrawn"])["state"] == "withdrawn"
        yield site


#: Origins of the services the publisher's pages may load badge.js from (the CSP names each one exactly).
SERVICES: list[str] = []


def publisher_csp() -> str:
    """Strict: no inline script or style anywhere; scripts and styles only from the services (and the page's own
    stylesheet), fetches only to the services."""
    services = " ".join(SERVICES)
    return (
        f"default-src 'none'; script-src {services}; style-src 'self' {services}; img-src 'self'; "
        # 'self': badge.js reads the bytes of an opt-in image (data-provenance-match) to match it
        f"media-src 'self'; connect-src 'self' {services}; base-uri 'none'; form-action 'none'"
    )


class _Publisher(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def end_headers(self) -> None:
        if self.path.endswith(".html"):
            self.send_header("Content-Security-Policy", publisher_csp())
        super().end_headers()


@dataclass
class Publisher:
    base: str
    root: Path
    service: str

    def page(self, name: str, body: str, lang: str = "en", *, script: bool = False) -> str:
        """Write a publisher page; badge.js is loaded by the page itself only with ``script``."""
        tag = f'<script src="{self.service}/v1/badge.js" defer></script>' if script else ""
        (self.root / name).write_text(
            f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<link rel="stylesheet" href="{self.service}/v1/badge.css"><link rel="stylesheet" href="/site.css">'
            f"{tag}</head><body>{body}</body></html>"
        )
        return f"{self.base}/{name}"


@pytest.fixture(scope="module")
def publisher(site: Site, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Publisher]:
    root = tmp_path_factory.mktemp("publisher")
    (root / "site.css").write_text(PUBLISHER_CSS)
    for name, (width, height) in {"photo-400.jpg": (400, 300), "photo-800.jpg": (800, 600)}.items():
        (root / name).write_bytes(images.jpeg(width=width, height=height, seed=7))
    (root / "poster.jpg").write_bytes(images.jpeg(width=320, height=180, seed=8))
    SERVICES[:] = [site.server.base]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *args: _Publisher(*args, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield Publisher(f"http://127.0.0.1:{server.server_address[1]}", root, site.server.base)
    finally:
        server.shutdown()
        server.server_close()
        SERVICES.clear()


def open_page(browser: Browser, url: str, width: int = 1000) -> Page:
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.add_init_script(CSP_LISTENER)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.wait_for_load_state("networkidle")
    page.evaluate("() => Promise.all(Array.from(document.images, (i) => i.decode().catch(() => null)))")
    assert errors == []
    return page


def box(page: Page, selector: str) -> dict[str, float]:
    rect: dict[str, float] = page.eval_on_selector(
        selector, "e => { const r = e.getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height}; }"
    )
    return rect


def load_badges(page: Page, service: str, count: int) -> None:
    """Load badge.js into the page (as a CMS would, from the service) and wait for ``count`` badges."""
    page.add_script_tag(url=f"{service}/v1/badge.js")
    page.wait_for_function(f"() => document.querySelectorAll('[data-provenance-badge]').length >= {count}")
    page.wait_for_load_state("networkidle")


def csp_violations(page: Page) -> list[str]:
    violations: list[str] = page.evaluate("window.__csp")
    return violations


def overlaps_corner(mark: dict[str, float], media: dict[str, float]) -> bool:
    """The mark's top-left lies inside the media, within its top-left quarter."""
    return (
        media["x"] <= mark["x"] <= media["x"] + media["w"] / 2
        and media["y"] <= mark["y"] <= media["y"] + media["h"] / 2
    )


def media_page(ref: str) -> str:
    return (
        "<main>"
        '<p id="para">Before <img id="inline" class="inline-photo" src="/photo-400.jpg" alt="Inline" '
        f'data-provenance-ref="{ref}"> after the photo.</p>'
        f'<figure id="fig-img"><img id="plain" src="/photo-800.jpg" alt="Plain" data-provenance-ref="{ref}">'
        '<figcaption id="cap-img">Caption of the plain image</figcaption></figure>'
        '<figure id="fig-pic"><picture id="pic">'
        '<source type="image/jpeg" srcset="/photo-400.jpg 400w, /photo-800.jpg 800w" '
        'sizes="(max-width: 600px) 100vw, 50vw">'
        '<img id="pic-img" class="wide" src="/photo-400.jpg" srcset="/photo-400.jpg 400w, /photo-800.jpg 800w" '
        f'sizes="(max-width: 600px) 100vw, 50vw" alt="Responsive" data-provenance-ref="{ref}"></picture>'
        '<figcaption id="cap-pic">Caption of the responsive image</figcaption></figure>'
        f'<figure id="fig-picture"><picture id="marked-picture" data-provenance-ref="{ref}">'
        '<img id="picture-img" class="wide" src="/photo-400.jpg" srcset="/photo-400.jpg 400w, /photo-800.jpg 800w" '
        'sizes="50vw" alt="Picture marked"></picture><figcaption id="cap-picture">Picture caption</figcaption></figure>'
        f'<figure id="fig-video"><video id="video" poster="/poster.jpg" width="320" height="180" controls '
        f'data-provenance-ref="{ref}"></video><figcaption id="cap-video">Video caption</figcaption></figure>'
        # Text after the media: a media mark moves none of it (a mark inside text is in the text's flow).
        '<p id="after">Text after the media.</p>'
        f'<figure id="fig-caption"><img id="captioned" src="/photo-400.jpg" alt="Captioned">'
        f'<figcaption id="caption" data-provenance-ref="{ref}">A caption carries the mark</figcaption></figure>'
        f'<p id="text" data-provenance-ref="{ref}">A paragraph carries the mark.</p>'
        "</main>"
    )


MEDIA = ("#inline", "#plain", "#pic-img", "#marked-picture", "#video")
STILL = (*MEDIA, "#captioned", "#cap-img", "#cap-pic", "#cap-picture", "#cap-video", "#after", "#para")
# Where each marked element's mark is found (a media element's mark is inserted just before it or its picture).
MARK_OF = {
    "#inline": "#para > [data-provenance-badge]",
    "#plain": "#fig-img > [data-provenance-badge]",
    "#pic-img": "#fig-pic > [data-provenance-badge]",
    "#marked-picture": "#fig-picture > [data-provenance-badge]",
    "#video": "#fig-video > [data-provenance-badge]",
    "#caption": "#caption > [data-provenance-badge]",
    "#text": "#text > [data-provenance-badge]",
}
WORDS = {"en": "AI-generated image", "zh-Hans": "AI 生成的图像"}


@pytest.mark.parametrize("lang", list(WORDS))
def test_marks_on_media_without_layout_shift(browser: Browser, site: Site, publisher: Publisher, lang: str) -> None:
    page = open_page(browser, publisher.page(f"media-{lang}.html", media_page(site.refs["ai"]), lang))
    before = {selector: box(page, selector) for selector in STILL}
    load_badges(page, publisher.service, len(MARK_OF))
    after = {selector: box(page, selector) for selector in STILL}
    assert after == before  # no media, caption or following text moved or resized

    for marked, mark in MARK_OF.items():
        assert page.locator(mark).count() == 1, marked
        assert page.locator(f"{mark} .provenance-badge").inner_text().strip() == WORDS[lang]
        assert page.locator(mark).get_attribute("lang") == lang
        button = box(page, f"{mark} .provenance-badge")
        assert button["w"] > 0
        assert button["h"] > 0
        if marked in MEDIA:
            assert page.locator(f"{mark} .provenance-badge").is_visible()
            assert overlaps_corner(button, box(page, marked)), (marked, button, box(page, marked))
    # The CMS's structure is untouched: picture > source, img; nothing inside a void element.
    assert page.eval_on_selector("#pic", "p => Array.from(p.children, (c) => c.localName).join()") == "source,img"
    assert page.eval_on_selector("#marked-picture", "p => p.children.length") == 1
    assert page.eval_on_selector("#video", "v => v.children.length") == 0
    assert csp_violations(page) == []


def test_responsive_images_stay_responsive(browser: Browser, site: Site, publisher: Publisher) -> None:
    url = publisher.page("responsive.html", media_page(site.refs["ai"]))
    page = open_page(browser, url, width=1200)
    load_badges(page, publisher.service, len(MARK_OF))
    wide = box(page, "#pic-img")
    assert page.eval_on_selector("#pic-img", "i => i.currentSrc").endswith("/photo-800.jpg")  # 50vw of 1200
    page.set_viewport_size({"width": 500, "height": 900})
    page.wait_for_function("() => document.querySelector('#pic-img').getBoundingClientRect().width < 600")
    narrow = box(page, "#pic-img")
    body_width = page.evaluate("document.body.clientWidth")
    assert narrow["w"] == body_width < wide["w"]  # 100vw below 600 px: the width follows the viewport
    assert narrow["h"] == pytest.approx(narrow["w"] * 3 / 4, abs=1)  # aspect ratio kept
    mark = box(page, f"{MARK_OF['#pic-img']} .provenance-badge")
    assert overlaps_corner(mark, narrow)  # the mark moved with the image
    assert csp_violations(page) == []


def test_badge_js_in_the_page_head_under_strict_csp(browser: Browser, site: Site, publisher: Publisher) -> None:
    page = open_page(browser, publisher.page("head.html", media_page(site.refs["ai"]), "zh-Hans", script=True))
    page.wait_for_function(f"() => document.querySelectorAll('[data-provenance-badge]').length >= {len(MARK_OF)}")
    assert page.locator(".provenance-badge").all_inner_texts() == [WORDS["zh-Hans"]] * len(MARK_OF)
    page.locator(f"{MARK_OF['#plain']} .provenance-badge").click()
    popover = page.locator(f"{MARK_OF['#plain']} .provenance-popover")
    assert popover.is_visible()
    assert "Media Newsroom" in (popover.text_content() or "")
    assert csp_violations(page) == []


MARKED = {
    # case -> (ai-disclosure, schema.org digitalSourceType, itemtype)
    "ai": ("ai-generated", TRAINED, "https://schema.org/ImageObject"),
    "edited": ("ai-assisted", COMPOSITE, "https://schema.org/ImageObject"),
    "article": ("ai-generated", TRAINED, "https://schema.org/Article"),
}


@pytest.mark.parametrize("case", list(MARKED))
def test_machine_readable_marking_comes_from_the_decision(
    browser: Browser, site: Site, publisher: Publisher, case: str
) -> None:
    ref = site.refs[case]
    disclosure, source, itemtype = MARKED[case]
    decision = site.badge(ref)["marking"]
    assert (decision["ai_disclosure"], decision["schema_org_digital_source_type"]) == (disclosure, source)
    # The page's own words say the opposite: only the verified decision counts.
    body = (
        f'<img id="m" src="/photo-400.jpg" alt="A real photo, no AI" ai-disclosure="none" data-provenance-ref="{ref}">'
        f'<h2 id="h" data-provenance-ref="{ref}">Human-written, no AI</h2>'
    )
    page = open_page(browser, publisher.page(f"marking-{case}.html", body))
    load_badges(page, publisher.service, 2)
    for element, mark in (("#m", "body > [data-provenance-badge]"), ("#h", "#h > [data-provenance-badge]")):
        assert page.get_attribute(element, "ai-disclosure") == disclosure
        item = page.locator(mark)
        assert item.get_attribute("itemscope") == ""
        assert item.get_attribute("itemtype") == itemtype
        assert item.locator("link[itemprop=digitalSourceType]").get_attribute("href") == source
    content_url = page.locator("body > [data-provenance-badge] link[itemprop=contentUrl]").get_attribute("href")
    assert content_url == f"{publisher.base}/photo-400.jpg"
    assert page.locator("#h link[itemprop=contentUrl]").count() == 0  # a heading names no media
    page.evaluate("() => ProvenanceBadges.refresh()")  # the same decision, marked once again
    assert page.get_attribute("#m", "ai-disclosure") == disclosure
    assert page.locator("[itemscope]").count() == 2
    assert csp_violations(page) == []


def test_withdrawing_takes_the_marking_away(browser: Browser, site: Site, publisher: Publisher) -> None:
    ref = site.upload(107, "ai_generated")["id"]
    body = f'<img id="m" src="/photo-400.jpg" alt="x" ai-disclosure="none" data-provenance-ref="{ref}">'
    page = open_page(browser, publisher.page("withdraw.html", body))
    load_badges(page, publisher.service, 1)
    assert page.get_attribute("#m", "ai-disclosure") == "ai-generated"
    response = httpx.post(
        f"{site.server.base}/v1/assets/{ref}/withdraw",
        headers={"Authorization": f"Bearer {site.token}"},
        json={"reason": "published in error"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    for _ in range(50):  # the server's badge cache follows within a second
        page.evaluate("() => ProvenanceBadges.refresh()")
        if page.locator("[data-provenance-badge]").count() == 0:
            break
        time.sleep(0.1)
    assert page.locator("[data-provenance-badge], [itemscope]").count() == 0
    assert page.get_attribute("#m", "ai-disclosure") == "none"  # the page's own value is back
    assert csp_violations(page) == []


@pytest.mark.parametrize("case", ["camera", "invalid", "withdrawn", "unknown"])
def test_nothing_is_marked_without_a_trusted_ai_decision(
    browser: Browser, site: Site, publisher: Publisher, case: str
) -> None:
    ref = site.refs[case]
    body = (
        f'<figure id="f"><img id="m" src="/photo-400.jpg" alt="x" data-provenance-ref="{ref}">'
        f'<figcaption id="c" data-provenance-ref="{ref}">Caption</figcaption></figure>'
        '<img id="own" src="/photo-400.jpg" alt="y" ai-disclosure="none" data-provenance-ref="' + ref + '">'
    )
    page = open_page(browser, publisher.page(f"none-{case}.html", body, "zh-Hans"))
    before = box(page, "#m"), box(page, "#own")
    page.add_script_tag(url=f"{publisher.service}/v1/badge.js")
    page.wait_for_function("() => !!window.ProvenanceBadges")
    page.wait_for_load_state("networkidle")
    page.evaluate("() => ProvenanceBadges.refresh()")  # resolves once the batch has been rendered
    assert page.locator("[ai-disclosure]:not(#own)").count() == 0
    assert page.get_attribute("#own", "ai-disclosure") == "none"  # the page's own attribute left alone
    assert page.locator("[itemscope], link[itemprop]").count() == 0
    badges = page.locator(".provenance-badge").all_inner_texts()
    if case == "invalid":  # the neutral invalid mark is shown, and still nothing is marked for machines
        assert [t.strip() for t in badges] == ["内容凭证无效"] * 3
        assert overlaps_corner(box(page, "#f > [data-provenance-badge] .provenance-badge"), box(page, "#m"))
    else:
        assert badges == []
    # The media did not move (a mark inside the caption's text may make its line a little taller).
    media, own = box(page, "#m"), box(page, "#own")
    assert (media, own["w"], own["h"]) == (before[0], before[1]["w"], before[1]["h"])
    assert csp_violations(page) == []


def test_review_shows_in_the_popover_in_both_languages(browser: Browser, site: Site, publisher: Publisher) -> None:
    ref = site.refs["article"]
    body = (
        f'<h1 id="en" data-provenance-ref="{ref}" data-provenance-lang="en">Spring tides</h1>'
        f'<h1 id="zh" data-provenance-ref="{ref}" data-provenance-lang="zh-Hans">大潮</h1>'
    )
    page = open_page(browser, publisher.page("review.html", body))
    load_badges(page, publisher.service, 2)
    expected = {
        "en": ("Reported by AI", "Reviewed by the editors of The Harbour Gazette"),
        "zh": ("由 AI 报道", "经 The Harbour Gazette 编辑部审核"),
    }
    for element, (label, review) in expected.items():
        assert page.locator(f"#{element} .provenance-badge").inner_text().strip() == label  # the label stays
        page.locator(f"#{element} .provenance-badge").click()
        assert page.locator(f"#{element} .provenance-popover__review").inner_text() == review
        assert page.get_attribute(f"#{element}", "ai-disclosure") == "ai-generated"
    assert csp_violations(page) == []


def test_untrusted_content_is_neither_labelled_nor_marked(
    browser: Browser, database: Database, tmp_path: Path, publisher: Publisher
) -> None:
    keys, data = tmp_path / "keys", tmp_path / "var"
    init_dev_keys(keys, "Rotated Newsroom")
    with serve(database, data, keys) as server:
        site = Site(server, create_token(server, "newsroom"))
        ref = site.upload(106, "ai_generated")["id"]
    init_dev_keys(keys, "Rotated Newsroom", force=True)  # a new root: the old signer is not trusted any more
    with serve(database, data, keys) as server:
        badge = httpx.get(f"{server.base}/v1/badges/{ref}.json", timeout=10).json()
        assert (badge["state"], badge["labels"], badge["marking"]) == ("untrusted", [], None)
        SERVICES.append(server.base)
        try:
            service = Publisher(publisher.base, publisher.root, server.base)
            body = f'<img id="m" src="/photo-400.jpg" alt="x" data-provenance-ref="{ref}">'
            page = open_page(browser, service.page("untrusted.html", body, script=True))
            page.wait_for_function("() => !!window.ProvenanceBadges")  # badge.js ran
            page.evaluate("() => ProvenanceBadges.refresh()")
            assert page.locator("[ai-disclosure], [itemscope], .provenance-badge").count() == 0
            assert csp_violations(page) == []
        finally:
            SERVICES.remove(server.base)


def test_an_image_with_no_ref_is_matched_to_its_signed_original(
    browser: Browser, site: Site, publisher: Publisher
) -> None:
    # The publisher shows a resized, re-encoded copy of a stamped AI image (its manifest gone) and an unrelated
    # picture, both opted in to matching; neither carries a ref.
    original = images.encode(images.scene(1200, 900, seed=61), "JPEG", quality=92)
    stored = httpx.post(
        f"{site.server.base}/v1/assets",
        headers={"Authorization": f"Bearer {site.token}"},
        files={"file": ("storm.jpg", original, "image/jpeg")},
        data={"declaration": json.dumps({"source": "ai_generated"})},
        timeout=30,
    )
    assert stored.status_code == 201, stored.text
    copy = images.scene(1200, 900, seed=61).resize((600, 450))
    (publisher.root / "copy.jpg").write_bytes(images.encode(copy, "JPEG", quality=70))
    (publisher.root / "stranger.jpg").write_bytes(images.encode(images.scene(600, 450, seed=62), "JPEG"))
    body = (
        '<figure id="fig-copy"><img id="copy" src="/copy.jpg" alt="Storm" data-provenance-match></figure>'
        '<figure id="fig-zh" lang="zh-Hans">'
        '<img id="copy-zh" src="/copy.jpg" alt="风暴" data-provenance-match></figure>'
        '<figure id="fig-stranger"><img id="stranger" src="/stranger.jpg" alt="Other" data-provenance-match></figure>'
    )
    page = open_page(browser, publisher.page("match.html", body))
    load_badges(page, publisher.service, 2)
    assert page.locator("#fig-copy > [data-provenance-badge] .provenance-badge").inner_text() == (
        "Credentials found for a matching original"
    )
    assert page.locator("#fig-zh > [data-provenance-badge] .provenance-badge").inner_text() == "找到匹配原件的内容凭证"
    assert page.locator("#fig-stranger > [data-provenance-badge]").count() == 0
    page.locator("#fig-copy .provenance-badge").click()
    popover = page.locator("#fig-copy .provenance-popover")
    lines = popover.locator(".provenance-popover__recovered").all_inner_texts()
    assert lines[0] == "Original: AI-generated image"
    assert "no Content Credentials of its own" in lines[1]
    assert "Media Newsroom" in (popover.text_content() or "")
    assert popover.locator("a").get_attribute("href") == f"{site.server.base}/verify/{stored.json()['id']}?lang=en"
    # A copy is never marked as if it carried the AI claim itself.
    assert page.get_attribute("#copy", "ai-disclosure") is None
    assert page.locator("[itemscope]").count() == 0
    assert csp_violations(page) == []
