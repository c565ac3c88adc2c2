"""Auditor endpoints: verification reports of stored items (JSON for API clients, a page for browsers),
signed links to a report page, and stateless verification.

A report page opens with a bearer token, a browser session (``/signin``) or a signed link minted here; see
:mod:`service.security.sessions`. Every report is script-free; its JSON is one click away (``?format=json``).
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from service import problems
from service.audit import disclosure, reports
from service.audit.reports import Report, ReportLink
from service.audit.verify import VERIFY_BODY, verify_bytes
from service.deps import ContextDep, PublicBaseDep
from service.ingest.forms import read_form
from service.pages.templating import page, page_language
from service.records.lookup import Version, asset_row, version_row
from service.security import sessions
from service.security.deps import AuditorDep, AuditorViewDep
from service.security.sessions import Viewer
from service.store.db import AuditEvent

router = APIRouter(tags=["audit"])
REPORT_ERRORS = problems.responses(401, 403, 404, 422, 429)
REPORT_RESPONSES = {
    **REPORT_ERRORS,
    200: {"description": "The report: JSON, or its page when the client accepts text/html (not with format=json)",
          "content": {"text/html": {}}},
    303: {"description": "A browser without a valid session or link: on to /signin"},
}  # fmt: skip
FormatQuery = Annotated[
    Literal["json"] | None, Query(description="json: the JSON report as a download, whatever Accept says")
]
LangQuery = Annotated[str | None, Query(description="Page language: en or zh-Hans (default: Accept-Language)")]


def _wants_page(request: Request, format: str | None) -> bool:
    return format is None and "text/html" in request.headers.get("accept", "")


def _answer(request: Request, viewer: Viewer, report: Report, html: bool, lang: str | None) -> Response:
    """The report as its page, as JSON, or (``format=json``) as a JSON download."""
    data = report.data
    if not html:
        answer = JSONResponse(data)
        if request.query_params.get("format") == "json":
            answer.headers["Content-Disposition"] = f'attachment; filename="{data["id"]}-report.json"'
        return answer
    lang = page_language(lang, request.headers.get("accept-language"))
    live, stored = data["verification"], data["stored_decision"]
    text, tone, _meaning = reports.mark(stored["state"], stored["labels"], lang)
    path, link = request.url.path, f"link={quote(viewer.link)}" if viewer.via == "link" else ""
    response = page(
        "report.html",
        lang,
        scripts=[],
        report=data,
        viewer=viewer,
        s=reports.summary(live, lang, report.images, report.active_thumbnail),
        stored={"mark": text, "tone": tone,
                "differs": (stored["state"], stored["labels"]) != (live["state"], live["labels"])},
        codes=reports.codes(live),
        upload=reports.upload_view(data.get("upload"), lang),
        self_url=f"{path}?{link}" if link else path,
        json_url=f"{path}?format=json" + (f"&{link}" if link else ""),
    )  # fmt: skip
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # a signed link never leaks through a Referer
    return response


@router.get("/v1/assets/{asset_id}/report", summary="Full verification report of an asset", responses=REPORT_RESPONSES)
def asset_report(
    request: Request,
    ctx: ContextDep,
    viewer: AuditorViewDep,
    asset_id: str,
    format: FormatQuery = None,
    lang: LangQuery = None,
) -> Response:
    html = _wants_page(request, format)
    row = asset_row(ctx, asset_id)
    report = reports.asset_report(ctx, row, images=reports.MAX_THUMBNAILS if html else 0)
    return _answer(request, viewer, report, html, lang)


@router.get(
    "/v1/articles/{article_id}/v{version}/report",
    summary="Full verification report of an article version",
    responses=REPORT_RESPONSES,
)
def article_report(
    request: Request,
    ctx: ContextDep,
    viewer: AuditorViewDep,
    article_id: str,
    version: Version,
    format: FormatQuery = None,
    lang: LangQuery = None,
) -> Response:
    html = _wants_page(request, format)
    report = reports.article_report(ctx, version_row(ctx, article_id, version))
    return _answer(request, viewer, report, html, lang)


def _mint(ctx: ContextDep, base: str, path: str, auditor: AuditorDep) -> ReportLink:
    link = sessions.sign_link(ctx.settings, path, auditor.token_id)
    with ctx.session() as session:  # who shared which report, until when
        session.add(AuditEvent(kind="report_link_minted", token_id=auditor.token_id, subject=path,
                               detail={"expires_at": link.expires_at}))  # fmt: skip
        session.commit()
    return ReportLink(url=f"{base}{path}?link={quote(link.value)}", expires_at=link.expires_at)


LINK_RESPONSES = problems.responses(401, 403, 404, 422, 429)


@router.post(
    "/v1/assets/{asset_id}/report-link",
    summary="Mint a short-lived signed link to an asset's report page (opens without a token)",
    status_code=201,
    responses=LINK_RESPONSES,
)
def asset_report_link(ctx: ContextDep, base: PublicBaseDep, auditor: AuditorDep, asset_id: str) -> ReportLink:
    return _mint(ctx, base, f"/v1/assets/{asset_row(ctx, asset_id).id}/report", auditor)


@router.post(
    "/v1/articles/{article_id}/v{version}/report-link",
    summary="Mint a short-lived signed link to an article version's report page (opens without a token)",
    status_code=201,
    responses=LINK_RESPONSES,
)
def article_report_link(
    ctx: ContextDep, base: PublicBaseDep, auditor: AuditorDep, article_id: str, version: Version
) -> ReportLink:
    row = version_row(ctx, article_id, version)
    return _mint(ctx, base, f"/v1/articles/{row.article_id}/v{row.version}/report", auditor)


@router.post(
    "/v1/verify",
    summary="Verify any file (optionally with a detached manifest); nothing is stored",
    openapi_extra=VERIFY_BODY,
    responses=problems.responses(400, 401, 403, 408, 413, 415, 422, 429),
)
async def verify(request: Request, ctx: ContextDep, _auditor: AuditorDep, lang: LangQuery = None) -> Response:
    form = await read_form(
        request, ctx.settings.max_upload_bytes, files=("file", "sidecar"), optional=frozenset({"sidecar"})
    )
    data, manifest = form.files["file"], form.files.get("sidecar")
    html = _wants_page(request, None)
    verdict = await run_in_threadpool(
        verify_bytes, ctx, data, manifest, thumbnails=reports.MAX_THUMBNAILS if html else 0
    )
    if not html:
        return JSONResponse(verdict.to_dict())
    report = reports.verification(verdict)
    lang = page_language(lang, request.headers.get("accept-language"))
    return page(
        "verify.html", lang, scripts=[], error="", verdict=report.data, codes=reports.codes(report.data),
        s=reports.summary(report.data, lang, report.images, report.active_thumbnail),
    )  # fmt: skip


@router.get(
    "/v1/reports/ai-disclosure",
    summary="AI-disclosure compliance report (EU AI Act Art. 50): every item stamped in [from, to), JSON or CSV",
    description=(
        "Auditor or admin. Every image and article version stamped in the half-open period `from <= stamped_at "
        "< to`: declared source, label given, whether it was labelled, overrides and their reasons, withdrawals "
        "(who, when, why), editorial review; totals per label and source. CSV with `Accept: text/csv` or "
        "`?format=csv`: one row per item, an empty row, then a `total,key,count` section."
    ),
    response_class=Response,
    responses={**disclosure.RESPONSES, **problems.responses(401, 403, 422, 429)},
)
def ai_disclosure_report(
    request: Request,
    ctx: ContextDep,
    _auditor: AuditorDep,
    start: disclosure.FromQuery,
    to: disclosure.ToQuery,
    format: disclosure.FormatQuery = None,
) -> Response:
    return disclosure.respond(request, ctx, start, to, format)
