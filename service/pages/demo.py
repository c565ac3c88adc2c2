"""The demo news site (a front page and article pages) and the landing page at ``/``.

Invariant: these pages never write a mark. Headlines and captions only carry ``data-provenance-ref``;
badge.js asks the badge API, and only verified decisions show anything (an untrusted or unknown stamp
shows nothing). The words of a story (headline, standfirst, byline, date, body) are the CMS's own
payload, stored with its version; the body shown is the blocks of the canonical text, exactly what the
manifest binds. Pictures are paired with articles by the external id the CMS declared with the upload:
layout, never a label.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from typing import Annotated, Any, Final

from fastapi import APIRouter, Header
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from provenance import ProvenanceError
from provenance.articles import parse_payload
from provenance.canonical import body_blocks
from service.context import ServiceContext
from service.deps import ContextDep, PublicBaseDep
from service.pages.templating import page, page_language
from service.pages.words import WORDS
from service.problems import Problem
from service.store import queries
from service.store.db import ArticleVersion, Asset
from service.store.errors import StorageError
from service.store.ids import ARTICLE_ID, ASSET_ID

router = APIRouter(tags=["pages"])

DEMO_WINDOW: Final = 200  # stored rows read per page: the demo stays cheap on a large database
FRONT_PAGE: Final = 12  # stories on the front page (the lead and the related list)
RELATED: Final = 4  # related stories under an article (one row of the grid)
#: The pages' words follow Accept-Language: a shared cache keeps one copy per language.
VARY: Final = {"Vary": "Accept-Language"}


@dataclass(frozen=True)
class Picture:
    """A stamped image as the page shows it; its mark comes from badge.js, by ``asset_id``."""

    asset_id: str
    caption: str  # the CMS's caption (the declared title): shown as text, never a label source
    credit: str | None


@dataclass(frozen=True)
class Story:
    """The latest version of an article as the page shows it; its mark comes from badge.js, by ``article_id``."""

    article_id: str
    version: int
    external_id: str
    headline: str
    standfirst: str | None
    byline: str | None
    language: str | None
    published: dt.datetime
    body: tuple[str, ...]
    picture: Picture | None
    ai_reported: bool  # from the stored, verified decision: only chooses the lead, never writes a mark

    @property
    def text_url(self) -> str:
        return f"/v1/articles/{self.article_id}/v{self.version}.txt"

    @property
    def manifest_url(self) -> str:
        return f"/v1/articles/{self.article_id}/v{self.version}.c2pa"


def _latest_versions(session: Session) -> list[ArticleVersion]:
    """The latest stored version of each recently stamped article, newest first."""
    seen: dict[str, ArticleVersion] = {}
    for row in queries.recent_versions(session, DEMO_WINDOW):
        if row.article_id not in seen or row.version > seen[row.article_id].version:
            seen[row.article_id] = row
    return sorted(seen.values(), key=lambda row: row.created_at, reverse=True)


def _pictures(assets: list[Asset]) -> dict[str, Picture]:
    """The newest picture declared for each external id (``assets`` newest first)."""
    pictures: dict[str, Picture] = {}
    for asset in assets:
        external_id = asset.declaration.get("external_id")
        if external_id and str(external_id) not in pictures:
            pictures[str(external_id)] = _picture(asset)
    return pictures


def _picture(asset: Asset) -> Picture:
    credit = asset.declaration.get("credit")
    return Picture(asset.id, str(asset.declaration.get("title") or ""), str(credit) if credit else None)


def _published(doc: dict[str, Any], fallback: dt.datetime) -> dt.datetime:
    """The CMS's publication time (``published``, ISO 8601, unsigned page content), else when it was stamped."""
    value = doc.get("published")
    if isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            return fallback
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
    return fallback


def _story(ctx: ServiceContext, row: ArticleVersion, picture: Picture | None, *, body: bool) -> Story:
    """The story of ``row`` from its stored payload (the body's blocks only when ``body``); a payload that
    cannot be read leaves the signed title, or the external id, as the headline."""
    story = Story(
        row.article_id, row.version, row.external_id, str(row.verdict.get("title") or row.external_id),
        standfirst=None, byline=None, language=None, published=row.created_at, body=(), picture=picture,
        ai_reported="ai_reported" in row.labels,
    )  # fmt: skip
    try:
        raw = ctx.blobs.get(row.payload_sha256)
        payload = parse_payload(raw)
        doc = json.loads(raw)
    except (ProvenanceError, StorageError, OSError, ValueError):
        return story
    return dataclasses.replace(
        story, headline=payload.headline, standfirst=payload.standfirst, byline=payload.byline,
        language=payload.language, published=_published(doc, row.created_at),
        body=tuple(body_blocks(payload.body, payload.body_format)) if body else (),
    )  # fmt: skip


def _front_order(stories: list[Story], lang: str) -> list[Story]:
    """Stories in the page's language first, the most recently published first within each language."""
    newest = sorted(stories, key=lambda story: story.published, reverse=True)
    return sorted(newest, key=lambda story: story.language != lang)


def _when(published: dt.datetime, lang: str) -> str:
    words = WORDS[lang]
    month = words["demo_months"].split()[published.month - 1]
    return words["demo_date"].format(
        day=published.day, month=month, year=published.year, time=published.strftime("%H:%M")
    )


def _switch(lang: str) -> str:
    return "en" if lang == "zh-Hans" else "zh-Hans"


def _stories(ctx: ServiceContext, session: Session, lang: str) -> tuple[list[Story], dict[str, Picture]]:
    """The front page's stories in their order, and the pictures of every recent external id."""
    rows = _latest_versions(session)[:FRONT_PAGE]
    pictures = _pictures(list(queries.recent_assets(session, DEMO_WINDOW)))
    stories = [_story(ctx, row, pictures.get(row.external_id), body=False) for row in rows]
    return _front_order(stories, lang), pictures


@router.get("/demo", summary="A demo news front page whose marks all come from badge.js", response_class=HTMLResponse)
def front_page(
    ctx: ContextDep,
    lang: str | None = None,
    image: str | None = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> HTMLResponse:
    """The lead story (an AI-reported one when there is one, in the page's language first) and related stories.
    ``?image=`` puts a stored image under the lead instead of its own."""
    lang = page_language(lang, accept_language)
    with ctx.session() as session:
        stories, _ = _stories(ctx, session, lang)
        chosen = queries.asset(session, image) if image and ASSET_ID.fullmatch(image) else None
    lead = next((story for story in stories if story.ai_reported), stories[0] if stories else None)
    related = [story for story in stories if story is not lead]
    picture = _picture(chosen) if chosen else lead.picture if lead else None
    return page(
        "demo_front.html", lang, headers=VARY, lead=lead, picture=picture, related=related, when=_when,
        switch=_switch(lang), switch_href=f"/demo?lang={_switch(lang)}",
    )  # fmt: skip


@router.get(
    "/demo/articles/{article_id}",
    summary="A demo article page whose marks all come from badge.js",
    response_class=HTMLResponse,
    responses={404: {"description": "No such article"}},
)
def article_page(
    ctx: ContextDep,
    article_id: Annotated[str, PathParam(description="The article id (art_…)")],
    lang: str | None = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> HTMLResponse:
    """The latest version of one article: headline, standfirst, byline, date, picture, body, related stories."""
    lang = page_language(lang, accept_language)
    if not ARTICLE_ID.fullmatch(article_id):
        raise Problem(404, "not-found", "Unknown article", "not an article id (art_ and 24 hex digits)")
    with ctx.session() as session:
        row = queries.latest_version(session, article_id)
        if row is None:
            raise Problem(404, "not-found", "Unknown article", f"no article {article_id}")
        stories, pictures = _stories(ctx, session, lang)
    story = _story(ctx, row, pictures.get(row.external_id), body=True)
    related = [other for other in stories if other.article_id != article_id][:RELATED]
    return page(
        "demo_article.html", lang, headers=VARY, story=story, related=related, when=_when,
        switch=_switch(lang), switch_href=f"/demo/articles/{article_id}?lang={_switch(lang)}",
    )  # fmt: skip


@router.get(
    "/", summary="Where to start: the demo, the verify page, the API documentation", response_class=HTMLResponse
)
def landing(
    base: PublicBaseDep,
    lang: str | None = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> HTMLResponse:
    lang = page_language(lang, accept_language)
    return page(
        "landing.html", lang, headers=VARY, scripts=[], base=base or "https://SERVICE",
        switch=_switch(lang), switch_href=f"/?lang={_switch(lang)}",
    )  # fmt: skip
