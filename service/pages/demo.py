"""The demo news page: every mark on it comes from badge.js and the verified decisions."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from service import markup
from service.deps import ContextDep
from service.store import queries
from service.store.db import ArticleVersion, Asset

router = APIRouter(tags=["pages"])
_TEXT = {
    "en": {
        "title": "AI news", "lead": "Lead story", "related": "Related articles", "switch": "中文",
        "image": "Image", "verify": "Verify a file", "empty": "No stamped samples yet: run `make run`.",
    },
    "zh-Hans": {
        "title": "AI 新闻", "lead": "头条", "related": "相关文章", "switch": "English",
        "image": "图片", "verify": "验证文件", "empty": "尚无已签名的示例：请运行 `make run`。",
    },
}  # fmt: skip


def _page(lang: str, title: str, body: str) -> HTMLResponse:
    html = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{markup.text(title)}</title>'
        '<link rel="stylesheet" href="/v1/badge.css"><link rel="stylesheet" href="/static/page.css">'
        '<script src="/v1/badge.js" defer></script></head><body>' + body + "</body></html>"
    )
    return HTMLResponse(html, headers=markup.security_headers(markup.PAGE_CSP))


DEMO_WINDOW = 200  # the demo shows recent items only: it must stay cheap on a large database


def _latest_versions(session: Session) -> list[ArticleVersion]:
    rows = queries.recent_versions(session, DEMO_WINDOW)
    seen: dict[str, ArticleVersion] = {}
    for row in rows:
        if row.article_id not in seen or row.version > seen[row.article_id].version:
            seen[row.article_id] = row
    return list(seen.values())


@router.get("/demo", summary="A demo news page whose marks all come from badge.js", response_class=HTMLResponse)
def demo(ctx: ContextDep, lang: str = "zh-Hans", image: str | None = None) -> HTMLResponse:
    lang = lang if lang in _TEXT else "zh-Hans"
    text = _TEXT[lang]
    with ctx.session() as session:
        articles = _latest_versions(session)
        images = list(reversed(queries.recent_assets(session, DEMO_WINDOW)))
    # Images are paired with articles by the external id the CMS declared with the upload.
    by_article: dict[str, Asset] = {}
    for img in images:
        if img.declaration.get("external_id"):
            by_article[str(img.declaration["external_id"])] = img
    lead = next((a for a in articles if "ai_reported" in a.labels), articles[0] if articles else None)
    chosen = [i for i in images if i.id == image]
    default = by_article.get(lead.external_id) if lead else None
    picture = chosen[0] if chosen else default or next((i for i in images if "ai_generated" in i.labels), None)
    other = "en" if lang == "zh-Hans" else "zh-Hans"
    parts = [
        f'<header><h1>{markup.text(text["title"])}</h1><nav><a id="lang-toggle" href="/demo?lang={other}">'
        f'{markup.text(text["switch"])}</a> · <a href="/verify">{markup.text(text["verify"])}</a></nav></header><main>'
    ]
    if lead is None and picture is None:
        parts.append(f"<p>{markup.text(text['empty'])}</p>")
    if lead is not None:
        headline = str(lead.verdict.get("title") or lead.external_id)
        parts.append(
            f'<article class="lead"><h2 id="lead-headline" data-provenance-ref="{lead.article_id}">'
            f"{markup.text(headline)}</h2>"
        )
        if picture is not None:
            parts.append(_figure(picture, "lead-caption", str(picture.declaration.get("title") or text["image"])))
        parts.append(
            f'<p><a href="/v1/articles/{lead.article_id}/v{lead.version}.txt">{markup.text(lead.external_id)}</a></p>'
            "</article>"
        )
    related = [a for a in articles if lead is None or a.article_id != lead.article_id]
    if related:
        parts.append(f'<section class="related"><h2>{markup.text(text["related"])}</h2><ul>')
        for item in related:
            headline = str(item.verdict.get("title") or item.external_id)
            thumb = by_article.get(item.external_id)
            parts.append(
                f'<li data-external-id="{markup.text(item.external_id)}">'
                + (_figure(thumb, None, str(thumb.declaration.get("title") or text["image"])) if thumb else "")
                + f'<p class="headline" data-provenance-ref="{item.article_id}">{markup.text(headline)}</p></li>'
            )
        parts.append("</ul></section>")
    parts.append("</main>")
    return _page(lang, text["title"], "".join(parts))


def _figure(asset: Asset, caption_id: str | None, caption: str) -> str:
    ident = f' id="{caption_id}"' if caption_id else ""
    return (
        f'<figure><img src="/v1/assets/{asset.id}/content" alt="{markup.text(caption)}">'
        f'<figcaption{ident} class="caption" data-provenance-ref="{asset.id}">{markup.text(caption)}</figcaption>'
        "</figure>"
    )
