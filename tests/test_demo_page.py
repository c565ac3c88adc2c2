"""The demo news site in a real browser: Debian's chromium driven by Playwright, against the real server.

The site holds the samples (stamped by this server's key) and one AI-declared article with its AI-declared
picture stamped by another newsroom's key that this server does not trust: the page shows it like any
other story, and badge.js gives it no mark. Screenshots go to ``test-artifacts/`` (not committed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page

from provenance.articles import parse_payload
from provenance.canonical import body_blocks
from provenance.keys import init_dev_keys
from service.pages.demo import RELATED
from service.store.ids import article_id

from . import images
from .browser_support import ARTIFACTS, badge_text, watch
from .databases import Database
from .server_support import Server, serve

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
WIRE = "2026/11/30/wire-ai-forecast"  # stamped by a newsroom this server does not trust
WIRE_ARTICLE = {
    "external_id": WIRE,
    "version": 1,
    "headline": "Wire: automated forecast for the week",
    "standfirst": "Declared AI-written, but signed by a key this newsroom does not trust.",
    "byline": "Unknown Wire Service",
    "language": "en",
    "url": "https://wire.example.net/2026/11/30/forecast",
    "published": "2026-11-30T08:00:00+00:00",
    "body_text": "Dry and cold all week.\n",
    "source": "ai_generated",
}

# What each story of the front page carries, by external id: (picture mark, headline mark), per language.
# Captions and titles never make a mark ("AI generated?" is the camera photo's caption); the wire story
# declares AI for both, but its stamp is untrusted, so it has none.
MARKS: dict[str, dict[str, tuple[str | None, str | None]]] = {
    "zh-Hans": {
        "2026/11/29/typhoon-warning-zh": ("AI 生成的图像", "由 AI 报道"),
        "2026/11/28/weather-storm-warning": ("AI 生成的图像", "由 AI 报道"),
        "2026/11/28/markets-close-zh": ("经 AI 编辑的图像", "AI 辅助撰写"),
        "2026/11/27/offshore-wind-record": ("经 AI 编辑的图像", "AI 辅助撰写"),
        "2026/11/27/council-budget": (None, None),
        "2026/11/26/city-library-opens-zh": (None, None),
        "2026/11/29/harbour-bridge-reopens": (None, None),
        WIRE: (None, None),
    },
    "en": {
        "2026/11/29/typhoon-warning-zh": ("AI-generated image", "Reported by AI"),
        "2026/11/28/weather-storm-warning": ("AI-generated image", "Reported by AI"),
        "2026/11/28/markets-close-zh": ("AI-edited image", "Written with AI assistance"),
        "2026/11/27/offshore-wind-record": ("AI-edited image", "Written with AI assistance"),
        "2026/11/27/council-budget": (None, None),
        "2026/11/26/city-library-opens-zh": (None, None),
        "2026/11/29/harbour-bridge-reopens": (None, None),
        WIRE: (None, None),
    },
}
# The lead of each language's front page: an AI-reported story in the page's language.
LEADS = {"zh-Hans": "2026/11/29/typhoon-warning-zh", "en": "2026/11/28/weather-storm-warning"}
# How each case opens the page: the browser's Accept-Language, or ?lang= against it.
OPENINGS = {
    "Chinese from Accept-Language": ("zh-Hans", "zh-CN", ""),
    "English from Accept-Language": ("en", "en-GB", ""),
    "English by ?lang= over a Chinese browser": ("en", "zh-CN", "?lang=en"),
}


def _untrusted_samples(folder: Path) -> Path:
    """A samples folder with the wire story and its picture, both declared AI."""
    (folder / "articles").mkdir(parents=True)
    (folder / "wire.jpg").write_bytes(images.jpeg(seed=91))
    (folder / "articles" / "wire.json").write_text(json.dumps(WIRE_ARTICLE, ensure_ascii=False))
    index = {
        "images": [
            {
                "file": "wire.jpg",
                "declaration": {"source": "ai_generated", "title": "Forecast map", "external_id": WIRE},
            }
        ],
        "articles": ["articles/wire.json"],
    }
    (folder / "samples.json").write_text(json.dumps(index))
    return folder


@pytest.fixture(scope="module")
def news(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The samples, plus the wire story stamped earlier by a key that is not (or no longer) trusted here."""
    root = tmp_path_factory.mktemp("news")
    data = root / "var"
    ours, theirs = root / "keys", root / "wire-keys"
    init_dev_keys(ours, "Browser Newsroom")
    init_dev_keys(theirs, "Unknown Wire Service")
    with serve(database, data, theirs, "--samples", str(_untrusted_samples(root / "wire"))):
        pass  # stamped (and trusted) under the wire's own keys; re-verified under ours below
    with serve(database, data, ours, "--samples", str(SAMPLES)) as server:
        yield server


def item(external_id: str) -> str:
    return f'[data-external-id="{external_id}"]'


def marks(page: Page, selector: str) -> list[str]:
    return [text.strip() for text in badge_text(page, selector)]


def expected(mark: str | None) -> list[str]:
    return [mark] if mark else []


def open_marked(browser: Browser, locale: str, url: str) -> tuple[Page, dict[str, list[str]]]:
    """A page of ``url`` for a browser in ``locale``, once badge.js has rendered its one batch."""
    page = browser.new_page(locale=locale)
    seen = watch(page)
    page.goto(url)
    page.wait_for_selector(".headline .provenance-badge")
    page.wait_for_load_state("networkidle")
    return page, seen


def loaded(page: Page, selector: str) -> bool:
    return bool(page.locator(selector).evaluate("img => img.complete && img.naturalWidth > 0"))


@pytest.mark.parametrize("case", OPENINGS)
def test_front_page_marks_come_from_verified_decisions(browser: Browser, news: Server, case: str) -> None:
    lang, locale, query = OPENINGS[case]
    page, seen = open_marked(browser, locale, f"{news.base}/demo{query}")
    assert page.locator("html").get_attribute("lang") == lang
    declared = json.loads((SAMPLES / "samples.json").read_text())["images"]  # as the CMS declared its pictures
    lead_image = next(i["declaration"] for i in declared if i["declaration"]["external_id"] == LEADS[lang])
    assert page.locator("#lead-caption .caption-text").inner_text() == lead_image["title"]
    assert loaded(page, ".lead img")
    assert page.locator("#lead-headline").get_attribute("data-provenance-ref") == article_id(LEADS[lang])
    picture_mark, headline_mark = MARKS[lang][LEADS[lang]]
    assert marks(page, "#lead-caption") == [picture_mark]
    assert marks(page, "#lead-headline") == [headline_mark]
    assert page.locator(".lead .standfirst").inner_text().strip() != ""
    assert page.locator(".lead .dateline time").count() == 1

    related = page.locator(".related li[data-external-id]")
    shown = [related.nth(i).get_attribute("data-external-id") for i in range(related.count())]
    assert sorted(shown) == sorted(set(MARKS[lang]) - {LEADS[lang]})
    for external_id in shown:
        assert external_id is not None
        picture_mark, headline_mark = MARKS[lang][external_id]
        assert page.locator(f"{item(external_id)} img").count() == 1, external_id  # each item: image + headline
        assert loaded(page, f"{item(external_id)} img"), external_id
        assert page.locator(f"{item(external_id)} .headline > a").inner_text().strip() != "", external_id
        assert marks(page, f"{item(external_id)} .caption") == expected(picture_mark), external_id
        assert marks(page, f"{item(external_id)} .headline") == expected(headline_mark), external_id
    # Stories in the page's language come first.
    languages = [page.locator(f"{item(e)} .headline > a").get_attribute("lang") for e in shown]
    assert languages == sorted(languages, key=lambda tag: tag != lang)
    assert len(seen["batches"]) == 1  # one batch request for the whole page
    assert seen["errors"] == []
    assert seen["dialogs"] == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"demo-front-{lang}.png"), full_page=True)


def test_an_untrusted_stamp_gets_no_mark_though_it_declares_ai(browser: Browser, news: Server) -> None:
    wire = article_id(WIRE)
    decision = httpx.get(f"{news.base}/v1/badges/{wire}.json", timeout=10).json()
    assert decision["state"] == "untrusted"  # the declaration said ai_generated; no verified claim says so here
    page, seen = open_marked(browser, "en-GB", f"{news.base}/demo/articles/{wire}")
    assert page.locator("#story-headline").inner_text().strip() == WIRE_ARTICLE["headline"]
    assert page.locator("#story-caption .caption-text").inner_text() == "Forecast map"
    assert marks(page, "#story-headline") == []
    assert marks(page, "#story-caption") == []
    assert marks(page, ".related .headline") != []  # the trusted stories next to it do carry their marks
    assert seen["errors"] == []


# Article pages: the lead of each front page, opened from it, then switched to the other language.
ARTICLES = {
    "Chinese AI report, then in English": ("zh-CN", "2026/11/29/typhoon-warning-zh", "typhoon-zh.json", "en"),
    "English AI report v2 (a correction), then in Chinese": (
        "en-GB",
        "2026/11/28/weather-storm-warning",
        "ai-weather.v2.json",
        "zh-Hans",
    ),
}


@pytest.mark.parametrize("case", ARTICLES)
def test_article_page_in_both_languages(browser: Browser, news: Server, case: str) -> None:
    locale, external_id, sample, other = ARTICLES[case]
    payload = parse_payload((SAMPLES / "articles" / sample).read_bytes())
    page, seen = open_marked(browser, locale, f"{news.base}/demo")
    page.click("#lead-headline > a")
    page.wait_for_selector("#story-headline .provenance-badge")
    page.wait_for_load_state("networkidle")
    assert page.url.startswith(f"{news.base}/demo/articles/{article_id(external_id)}")
    first = page.locator("html").get_attribute("lang")
    for lang in (first, other):
        assert lang is not None
        picture_mark, headline_mark = MARKS[lang][external_id]
        assert page.locator("#story-headline").inner_text().strip().startswith(payload.headline)
        assert marks(page, "#story-headline") == [headline_mark]
        assert marks(page, "#story-caption") == [picture_mark]
        assert loaded(page, ".story img")
        assert page.locator(".story .standfirst").inner_text() == payload.standfirst
        assert page.locator(".story .byline").inner_text() == payload.byline
        assert page.locator(".story .dateline time").get_attribute("datetime")
        # The body is the canonical text's blocks: what the manifest binds (no script, no markup).
        body = page.locator(".story .body p").all_inner_texts()
        assert body == body_blocks(payload.body, payload.body_format)
        assert (page.locator(".story .updated").count() == 1) == (payload.version > 1)
        related = page.locator(".related li[data-external-id]")
        assert related.count() == RELATED  # of the seven other stories
        for i in range(related.count()):
            other_id = related.nth(i).get_attribute("data-external-id")
            assert other_id is not None
            assert other_id != external_id
            picture_mark, headline_mark = MARKS[lang][other_id]
            assert marks(page, f".related {item(other_id)} .caption") == expected(picture_mark)
            assert marks(page, f".related {item(other_id)} .headline") == expected(headline_mark)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"demo-article-{payload.language}-in-{lang}.png"), full_page=True)
        if lang == first:
            page.click("#lang-toggle")
            page.wait_for_selector("#story-headline .provenance-badge")
            page.wait_for_load_state("networkidle")
            assert page.locator("html").get_attribute("lang") == other
    signed = page.locator(".signed a").first.get_attribute("href")
    assert signed is not None
    text = httpx.get(news.base + signed, timeout=10)
    assert text.status_code == 200
    assert text.content == payload.canonical_text()
    assert "trackView" not in page.content()  # the CMS's script tag is no article text
    assert seen["errors"] == []
    assert seen["dialogs"] == []


def test_landing_page_leads_to_the_demo_the_verify_page_and_the_docs(browser: Browser, news: Server) -> None:
    page = browser.new_page(locale="zh-CN")
    seen = watch(page)
    page.goto(f"{news.base}/")
    assert page.locator("html").get_attribute("lang") == "zh-Hans"
    for link, path in {"#to-demo": "/demo?lang=zh-Hans", "#to-verify": "/verify", "#to-docs": "/docs"}.items():
        assert page.locator(link).get_attribute("href") == path
        assert httpx.get(news.base + path, timeout=10).status_code == 200, path
    page.click("#to-demo")
    page.wait_for_selector("#lead-caption .provenance-badge")
    assert marks(page, "#lead-caption") == ["AI 生成的图像"]
    page.goto(f"{news.base}/")
    page.click("#lang-toggle")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#to-demo").get_attribute("href") == "/demo?lang=en"
    assert seen["errors"] == []


@pytest.mark.parametrize(
    ("path", "status"),
    [("/demo/articles/art_000000000000000000000000", 404), ("/demo/articles/nonsense", 404)],
)
def test_unknown_article_pages_are_404_problems(news: Server, path: str, status: int) -> None:
    response = httpx.get(news.base + path, timeout=10)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "Traceback" not in response.text


# Which language a page speaks: ?lang= first, then Accept-Language, else English.
LANGUAGES = {
    "Accept-Language zh-CN": ({"Accept-Language": "zh-CN,zh;q=0.9"}, "", "zh-Hans"),
    "Accept-Language en-US over zh": ({"Accept-Language": "en-US,zh;q=0.5"}, "", "en"),
    "?lang=zh-Hans over Accept-Language en": ({"Accept-Language": "en"}, "?lang=zh-Hans", "zh-Hans"),
    "unsupported ?lang= and no Accept-Language": ({}, "?lang=fr", "en"),
}


@pytest.mark.parametrize("case", LANGUAGES)
@pytest.mark.parametrize("path", ["/", "/demo", f"/demo/articles/{article_id(WIRE)}"])
def test_page_language(news: Server, case: str, path: str) -> None:
    headers, query, lang = LANGUAGES[case]
    response = httpx.get(news.base + path + query, headers=headers, timeout=10)
    assert response.status_code == 200
    assert f'<html lang="{lang}">' in response.text
    assert response.headers["vary"] == "Accept-Language"  # a shared cache keeps each language apart
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
