"""Human pages: the badge script and its stylesheet, the demo news page, and the verify page.

Every value written into HTML goes through :func:`service.render.markup.text` (hidden characters of
manifest strings made visible, then escaped); label words come only from the vocabulary. Pages are sent
with a strict Content-Security-Policy (scripts and styles from this origin only, nothing inline).
"""

from __future__ import annotations

import base64
import math
import zlib
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from provenance import ProvenanceError, media
from provenance.models import Verdict
from provenance.vocabulary import badge_text, label_text
from service import markup, problems
from service.audit.verify import VERIFY_BODY, verify_bytes
from service.deps import ContextDep
from service.ingest.forms import read_form

router = APIRouter(tags=["pages"])
STATIC = Path(__file__).resolve().parent / "static"
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


def _static(name: str, media_type: str) -> Response:
    return Response(
        (STATIC / name).read_bytes(),
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff",
                 "Access-Control-Allow-Origin": "*"},
    )  # fmt: skip


@router.get("/v1/badge.js", summary="Embeddable badge script", response_class=Response)
def badge_js() -> Response:
    return _static("badge.js", "text/javascript; charset=utf-8")


@router.get("/v1/badge.css", summary="Stylesheet for the badge script", response_class=Response)
def badge_css() -> Response:
    return _static("badge.css", "text/css; charset=utf-8")


def _page(lang: str, title: str, body: str, status: int = 200, script: str = "/v1/badge.js") -> HTMLResponse:
    html = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{markup.text(title)}</title>'
        '<link rel="stylesheet" href="/v1/badge.css"><link rel="stylesheet" href="/static/page.css">'
        f'<script src="{script}" defer></script></head><body>{body}</body></html>'
    )
    return HTMLResponse(html, status_code=status, headers=markup.security_headers(markup.PAGE_CSP))


@router.get("/favicon.ico", include_in_schema=False, response_class=Response)
def favicon() -> Response:
    return Response(status_code=204, headers={"Cache-Control": "public, max-age=86400"})


VERIFY_JS = "/static/verify.js"


@router.get("/static/verify.js", include_in_schema=False, response_class=Response)
def verify_js() -> Response:
    return _static("verify.js", "text/javascript; charset=utf-8")


@router.get("/static/page.css", include_in_schema=False, response_class=Response)
def page_css() -> Response:
    return _static("page.css", "text/css; charset=utf-8")


def _form(message: str = "") -> str:
    error = f'<p class="error" role="alert">{markup.text(message)}</p>' if message else ""
    return (
        "<header><h1>Verify a file · 验证文件</h1></header><main>"
        f"{error}"
        '<form method="post" action="/verify" enctype="multipart/form-data" data-dropzone>'
        "<p data-drop-hint hidden>Drop a file here, or choose one · 拖放文件到此处，或选择文件</p>"
        '<p><label>Image, or article .txt <input type="file" name="file" required></label></p>'
        '<p><label>Detached manifest (.c2pa), for articles <input type="file" name="sidecar"></label></p>'
        '<p><button type="submit">Verify</button></p></form>'
    )


MAX_THUMBNAILS = 24


def _image_type(blob: bytes) -> str | None:
    """The sniffed type of a thumbnail's bytes, if it is an image we show (never the manifest's word for it)."""
    try:
        kind = media.sniff(blob)
    except ProvenanceError:
        return None
    return kind if kind in media.THUMBNAIL_TYPES else None


def _thumbnails(verdict: Verdict) -> dict[str, str]:
    """data: URIs of the thumbnails taken from the verified file's one read, by identifier."""
    return {
        identifier: f"data:{media_type};base64,{base64.b64encode(blob).decode()}"
        for identifier, blob in verdict.thumbnails.items()
        if (media_type := _image_type(blob)) is not None
    }


def _node(node: dict[str, Any], images: dict[str, str]) -> str:
    actions = "".join(
        f"<li>{markup.text(a.get('action'))}"
        + (f" — {markup.text(a.get('digital_source_type'))}" if a.get("digital_source_type") else "")
        + "</li>"
        for a in node.get("actions", [])
    )
    signer = node.get("signer") or {}
    who = markup.text(signer.get("organization") or signer.get("common_name") or "—")
    children = "".join(_node(child, images) for child in node.get("ingredients", []))
    thumb = node.get("thumbnail") or {}
    src = images.get(str(thumb.get("identifier"))) if isinstance(thumb, dict) else None
    picture = f'<img class="thumbnail" src="{markup.text(src)}" alt="" width="96"> ' if src else ""
    return (
        f"<li>{picture}"
        f'<span class="state state--{markup.text(node.get("state"))}">{markup.text(node.get("state"))}</span> '
        f"{markup.text(node.get('title') or node.get('label') or '—')} · "
        f"{markup.text(node.get('relationship') or '')} "
        f"· {who}<ul>{actions}</ul>" + (f"<ol>{children}</ol>" if children else "") + "</li>"
    )


def _verdict_html(verdict: dict[str, Any], images: dict[str, str]) -> str:
    labels = verdict.get("labels") or []
    if verdict.get("state") == "invalid":
        mark = (
            badge_text("content_credentials_invalid", "en")
            + " · "
            + badge_text("content_credentials_invalid", "zh-Hans")
        )
    elif labels:
        mark = " · ".join(label_text(labels[0], lang) for lang in ("en", "zh-Hans"))
    else:
        mark = "—"
    signer = verdict.get("signer") or {}
    tree = "".join(_node(i, images) for i in verdict.get("ingredients", []))
    rows = [
        ("State · 状态", str(verdict.get("state"))),
        ("Title · 标题", str(verdict.get("title") or "—")),
        ("Label · 标签", mark),
        ("Signer · 签名者", str(signer.get("organization") or signer.get("common_name") or "—")),
        ("Claim generator", str(verdict.get("claim_generator") or "—")),
        ("Signed at · 时间", str(signer.get("time") or "—")),
        ("SHA-256", str(verdict.get("sha256"))),
    ]
    table = "".join(f"<tr><th>{markup.text(k)}</th><td>{markup.text(v)}</td></tr>" for k, v in rows)
    codes = verdict.get("codes") or {}
    code_list = "".join(
        f"<li>{markup.text(group)}: {markup.text(c.get('code'))}</li>"
        for group in ("failure", "informational", "success")
        for c in codes.get(group, [])
    )
    return (
        f'<section id="verdict" data-state="{markup.text(verdict.get("state"))}"><h2>Verdict · 结论</h2>'
        f"<table>{table}</table>"
        + (f"<h3>Ingredients · 素材</h3><ol>{tree}</ol>" if tree else "")
        + f"<details><summary>Status codes · 状态码</summary><ul>{code_list}</ul></details></section>"
    )


@router.get("/verify", summary="Verify a file in the browser", response_class=HTMLResponse)
def verify_page() -> HTMLResponse:
    return _page("en", "Verify a file", _form() + "</main>", script=VERIFY_JS)


@router.post(
    "/verify",
    summary="Verify a file in the browser (form post)",
    response_class=HTMLResponse,
    openapi_extra=VERIFY_BODY,
    responses={
        **problems.responses(400, 408, 413),
        422: {"description": "The file could not be verified (the form again, with the reason)"},
        429: {"description": "Too many verifications from this address (the form again)"},
    },
)
async def verify_submit(request: Request, ctx: ContextDep) -> HTMLResponse:
    client = request.client.host if request.client else "unknown"
    wait = ctx.public_limiter.allow(zlib.crc32(client.encode()))
    if wait:  # before the body is read: a limited client's upload costs nothing
        page = _page("en", "Verify a file", _form("Too many verifications: try again in a minute.") + "</main>", 429)
        page.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return page
    form = await read_form(
        request, ctx.settings.max_upload_bytes, files=("file", "sidecar"), optional=frozenset({"sidecar"})
    )
    data, manifest = form.files["file"], form.files.get("sidecar")

    def run() -> tuple[dict[str, Any], dict[str, str]]:
        # The same verification as POST /v1/verify; thumbnails come from that one read of the file.
        verdict = verify_bytes(ctx, data, manifest, thumbnails=MAX_THUMBNAILS)
        return verdict.to_dict(), _thumbnails(verdict)

    try:
        verdict, images = await run_in_threadpool(run)
    except ProvenanceError as exc:
        problem = problems.from_library(exc)
        if problem.status >= 500:
            raise  # the service's fault: logged and answered by service.problems, with nothing for the operator
        return _page("en", "Verify a file", _form(problem.detail) + "</main>", status=422, script=VERIFY_JS)
    return _page("en", "Verification result", _form() + _verdict_html(verdict, images) + "</main>", script=VERIFY_JS)
