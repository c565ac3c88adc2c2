"""Human pages: the badge script and stylesheets, the verify page, the public view of a stored item, and the
auditors' sign-in and sign-out.

All HTML comes from the templates (:mod:`service.pages.templating`: autoescape, hidden characters shown);
label words come only from the vocabulary, page words from :mod:`service.pages.words`. Pages carry the strict
:data:`~service.markup.PAGE_CSP` (scripts and styles from this origin only, nothing inline). Sessions, CSRF
tokens and cookies: :mod:`service.security.sessions`.
"""

from __future__ import annotations

import math
import re
import zlib
from pathlib import Path
from typing import Annotated, Final

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from provenance import ProvenanceError
from service import problems
from service.audit import reports
from service.audit.verify import VERIFY_BODY, verify_bytes
from service.cache import BADGE_TAG, cache_tags
from service.context import ServiceContext
from service.deps import ContextDep
from service.ingest.forms import read_form
from service.pages.templating import page, page_language
from service.pages.words import WORDS
from service.problems import Problem
from service.security import sessions
from service.security.deps import record_refusal
from service.security.sessions import NewSession, Viewer

router = APIRouter(tags=["pages"])
STATIC = Path(__file__).resolve().parent / "static"
VERIFY_JS: Final = "/static/verify.js"

LangQuery = Annotated[str | None, Query(description="Page language: en or zh-Hans (default: Accept-Language)")]
AcceptLanguage = Annotated[str | None, Header(include_in_schema=False)]


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


@router.get("/favicon.ico", include_in_schema=False, response_class=Response)
def favicon() -> Response:
    return Response(status_code=204, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/static/verify.js", include_in_schema=False, response_class=Response)
def verify_js() -> Response:
    return _static("verify.js", "text/javascript; charset=utf-8")


@router.get("/static/page.css", include_in_schema=False, response_class=Response)
def page_css() -> Response:
    return _static("page.css", "text/css; charset=utf-8")


@router.get("/static/report.css", include_in_schema=False, response_class=Response)
def report_css() -> Response:
    return _static("report.css", "text/css; charset=utf-8")


@router.get("/static/demo.css", include_in_schema=False, response_class=Response)
def demo_css() -> Response:
    return _static("demo.css", "text/css; charset=utf-8")


# --- /verify: any file, in the browser -----------------------------------------------------------------------


def _verify_page(
    lang: str, *, status: int = 200, error: str = "", report: reports.Report | None = None
) -> HTMLResponse:
    verdict = report.data if report else None
    return page(
        "verify.html",
        lang,
        status=status,
        scripts=[VERIFY_JS],
        error=error,
        verdict=verdict,
        s=reports.summary(verdict, lang, report.images, report.active_thumbnail) if report and verdict else None,
        codes=reports.codes(verdict) if verdict else [],
    )


@router.get("/verify", summary="Verify a file in the browser", response_class=HTMLResponse)
def verify_page(lang: LangQuery = None, accept_language: AcceptLanguage = None) -> HTMLResponse:
    return _verify_page(page_language(lang, accept_language))


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
async def verify_submit(
    request: Request, ctx: ContextDep, lang: LangQuery = None, accept_language: AcceptLanguage = None
) -> HTMLResponse:
    lang = page_language(lang, accept_language)
    wait = await anyio.to_thread.run_sync(_limited, request, ctx)  # a database write: off the event loop
    if wait:  # before the body is read: a limited client's upload costs nothing
        limited = _verify_page(lang, status=429, error=WORDS[lang]["too_many"])
        limited.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return limited
    form = await read_form(
        request, ctx.settings.max_upload_bytes, files=("file", "sidecar"), optional=frozenset({"sidecar"})
    )
    data, manifest = form.files["file"], form.files.get("sidecar")

    def run() -> reports.Report:
        # The same verification as POST /v1/verify; thumbnails come from that one read of the file.
        return reports.verification(verify_bytes(ctx, data, manifest, thumbnails=reports.MAX_THUMBNAILS))

    try:
        report = await run_in_threadpool(run)
    except ProvenanceError as exc:
        problem = problems.from_library(exc)
        if problem.status >= 500:
            raise  # the service's fault: logged and answered by service.problems, with nothing for the operator
        return _verify_page(lang, status=422, error=problem.detail)
    return _verify_page(lang, report=report)


@router.get(
    "/verify/{ref}",
    summary="Public verification view of a stored item (where a badge's report_url leads)",
    response_class=HTMLResponse,
    responses={**problems.responses(404), 410: {"description": "The item was withdrawn"}},
)
def verify_item(
    ctx: ContextDep, ref: str, lang: LangQuery = None, accept_language: AcceptLanguage = None
) -> HTMLResponse:
    lang = page_language(lang, accept_language)
    item = reports.public_view(ctx, ref)
    if item is None:
        raise Problem(404, "not-found", "Unknown item", "no stored item has this reference")
    if item.state == "withdrawn":
        raise Problem(410, "withdrawn", "Withdrawn", "this item was withdrawn by its publisher")
    s = reports.summary(item.verdict, lang, decision=(item.state, item.labels))
    response = page("verify_item.html", lang, scripts=[], item=item, s=s, codes=reports.codes(item.verdict))
    response.headers.update(cache_tags([item.id, ref], BADGE_TAG))  # purged with the item's badges
    return response


# --- sign-in and sign-out of auditors ------------------------------------------------------------------------

_NEXT: Final = re.compile(r"/(?!/)[A-Za-z0-9/_.\-]{0,300}")
_WHY: Final = {"expired": "signin_expired", "link": "signin_link", "signed-out": "signin_signed_out"}


def _limited(request: Request, ctx: ServiceContext) -> float:
    """Seconds until this client address may post again (0: now); shared by every process of the deployment."""
    client = request.client.host if request.client else "unknown"
    return ctx.public_limiter.allow(zlib.crc32(client.encode()))


def _next(value: object) -> str:
    """Where to go after signing in: a path on this site only (never another origin), else the sign-in page."""
    return value if isinstance(value, str) and _NEXT.fullmatch(value) else "/signin"


def _secure(request: Request, ctx: ServiceContext) -> bool:
    return sessions.is_secure(ctx.settings, request.url.scheme)


def _cookie(response: Response, name: str, value: str, max_age: int, secure: bool) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=secure, httponly=True, samesite="strict")


def _signin_page(
    request: Request, ctx: ServiceContext, lang: str, next_path: str, *, message: str = "", status: int = 200,
    viewer: Viewer | None = None,
) -> HTMLResponse:  # fmt: skip
    """The sign-in form (with a CSRF token bound to its own cookie), or the signed-in state for ``viewer``."""
    nonce = request.cookies.get(sessions.CSRF_COOKIE) or ""
    if not re.fullmatch(r"[A-Za-z0-9_-]{22}", nonce):
        nonce = sessions.new_csrf_nonce()
    response = page(
        "signin.html", lang, status=status, scripts=[], next=next_path, message=message, problem=status >= 400,
        viewer=viewer, csrf=sessions.csrf_token(ctx.settings, nonce),
    )  # fmt: skip
    response.headers["Cache-Control"] = "no-store"
    if viewer is None:
        _cookie(response, sessions.CSRF_COOKIE, nonce, sessions.CSRF_COOKIE_SECONDS, _secure(request, ctx))
    return response


@router.get("/signin", summary="Auditor sign-in form (exchanges a token for a browser session)")
def sign_in_page(
    request: Request,
    ctx: ContextDep,
    lang: LangQuery = None,
    accept_language: AcceptLanguage = None,
    next: Annotated[str | None, Query(max_length=400, description="Path to open after signing in")] = None,
    why: Annotated[str | None, Query(max_length=20, description="Why the form is shown (expired, link, …)")] = None,
) -> HTMLResponse:
    lang = page_language(lang, accept_language)
    cookie = sessions.session_cookie(request.cookies)
    viewer = None
    if cookie:
        with ctx.session() as db:
            viewer = sessions.session_viewer(ctx.settings, db, cookie)
    return _signin_page(request, ctx, lang, _next(next), message=_WHY.get(why or "", ""), viewer=viewer)


@router.post(
    "/signin",
    summary="Sign in with an auditor token (form post); sets an HttpOnly, SameSite=Strict session cookie",
    response_class=HTMLResponse,
    responses={303: {"description": "Signed in: on to `next`"}, 401: {"description": "Not a live token (the form)"},
               403: {"description": "Wrong role, or no valid CSRF token (the form)"},
               429: {"description": "Too many attempts from this address (the form)"}},
)  # fmt: skip
async def sign_in(
    request: Request, ctx: ContextDep, lang: LangQuery = None, accept_language: AcceptLanguage = None
) -> Response:
    lang = page_language(lang, accept_language)
    form = await request.form()
    next_path = _next(form.get("next"))
    wait = await anyio.to_thread.run_sync(_limited, request, ctx)  # a database write: off the event loop
    if wait:
        limited = _signin_page(request, ctx, lang, next_path, message="signin_too_many", status=429)
        limited.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return limited
    csrf, token = form.get("csrf"), form.get("token")
    if not sessions.csrf_valid(
        ctx.settings, request.cookies.get(sessions.CSRF_COOKIE), csrf if isinstance(csrf, str) else None
    ):
        record_refusal(request, ctx, None, "bad csrf", "auditor")
        return _signin_page(request, ctx, lang, next_path, message="signin_bad_form", status=403)
    with ctx.session() as db:
        outcome = sessions.sign_in(ctx.settings, db, token if isinstance(token, str) else "")
        db.commit()  # the audit row of a session started
    if not isinstance(outcome, NewSession):
        record_refusal(request, ctx, outcome, "bad token" if outcome is None else "wrong role", "auditor")
        message, status = ("signin_bad_token", 401) if outcome is None else ("signin_wrong_role", 403)
        return _signin_page(request, ctx, lang, next_path, message=message, status=status)
    response = RedirectResponse(next_path, status_code=303, headers={"Cache-Control": "no-store"})
    secure = _secure(request, ctx)
    _cookie(response, sessions.cookie_name(secure), outcome.value, ctx.settings.session_seconds, secure)
    response.delete_cookie(sessions.CSRF_COOKIE, path="/", secure=secure, httponly=True, samesite="strict")
    return response


@router.post(
    "/signout",
    summary="Sign out (form post with the session's CSRF token); the session ends on the server too",
    response_class=HTMLResponse,
    responses={303: {"description": "Signed out: on to the sign-in page"},
               403: {"description": "No valid CSRF token (the sign-in page)"}},
)  # fmt: skip
async def sign_out(request: Request, ctx: ContextDep, accept_language: AcceptLanguage = None) -> Response:
    lang = page_language(None, accept_language)
    form = await request.form()
    csrf = form.get("csrf")
    cookie = sessions.session_cookie(request.cookies)
    if cookie:
        with ctx.session() as db:
            ended = sessions.sign_out(ctx.settings, db, cookie, csrf if isinstance(csrf, str) else "")
            viewer = None if ended else sessions.session_viewer(ctx.settings, db, cookie)
            db.commit()
        if not ended and viewer is not None:  # a live session, but this form did not come from it
            record_refusal(request, ctx, viewer.caller, "bad csrf", "auditor")
            return _signin_page(request, ctx, lang, "/signin", message="signin_bad_form", status=403, viewer=viewer)
    response = RedirectResponse("/signin?why=signed-out", status_code=303, headers={"Cache-Control": "no-store"})
    secure = _secure(request, ctx)
    for name in (sessions.COOKIE, sessions.SECURE_COOKIE):
        response.delete_cookie(name, path="/", secure=secure or name == sessions.SECURE_COOKIE, httponly=True,
                               samesite="strict")  # fmt: skip
    return response
