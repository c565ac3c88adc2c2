"""Newsroom upload hooks: images (multipart, or the raw bytes with the declaration in a header) and
article payloads (JSON)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from provenance.articles import MAX_PAYLOAD
from service import problems
from service.deps import ContextDep, PublicBaseDep
from service.ingest.forms import form_body, invalid_part, read_form
from service.ingest.pipeline import ingest_article, ingest_asset
from service.ingest.schemas import Declaration, IdempotencyKey
from service.problems import Problem
from service.records.lookup import withdrawal_of
from service.records.schemas import ArticlePublic, AssetPublic
from service.security.deps import NewsroomDep

router = APIRouter(tags=["ingest"])

DECLARATION_HELP = "JSON: source, title?, credit?, external_id?, override_upstream?"
#: The header of a raw-body upload that carries its declaration (JSON; ``\uXXXX`` escapes outside ASCII).
DECLARATION_HEADER = "Provenance-Declaration"
#: The upload, documented by hand: the route reads it itself, after authentication. A multipart form, or the
#: image's bytes as the whole body (no multipart parsing, no framing: what a CMS hook can send cheapest).
UPLOAD_BODY = form_body(
    files={"file": "The image"}, fields={"declaration": DECLARATION_HELP}, required=("file", "declaration")
)
UPLOAD_BODY["requestBody"]["content"]["image/*"] = {
    "schema": {"type": "string", "contentMediaType": "application/octet-stream"}
}
UPLOAD_BODY["requestBody"]["description"] = (
    f"A multipart form (`file`, `declaration`), or the image's bytes as the body with any `image/*` or "
    f"`application/octet-stream` type and the declaration in the `{DECLARATION_HEADER}` header."
)
UPLOAD_BODY["parameters"] = [
    {
        "name": DECLARATION_HEADER,
        "in": "header",
        "required": False,
        "description": f"The declaration of a raw-body upload ({DECLARATION_HELP}); not with a multipart form",
        "schema": {"type": "string"},
    }
]
ARTICLE_BODY = {
    "requestBody": {
        "required": True,
        "description": f"The CMS article payload (JSON, at most {MAX_PAYLOAD} bytes)",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


def _declaration(text: str) -> Declaration:
    try:
        return Declaration.model_validate(json.loads(text))
    except json.JSONDecodeError as exc:
        raise Problem(422, "invalid-declaration", "Invalid declaration", f"the declaration is not JSON: {exc}") from exc
    except ValidationError as exc:  # names each field, with the allowed values or field names
        fields = tuple(Declaration.model_fields)
        kind, title = "invalid-declaration", "Invalid declaration"
        raise problems.invalid(exc.errors(), kind=kind, title=title, where=("declaration",), fields=fields) from exc
    except RecursionError as exc:
        raise Problem(
            422, "invalid-declaration", "Invalid declaration", "the declaration is nested too deeply"
        ) from exc


FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").partition(";")[0].strip().lower()


async def _upload(request: Request, limit: int) -> tuple[bytes, Declaration]:
    """The upload's bytes and declaration, from a multipart form or from a raw body and its header."""
    media_type = _media_type(request)
    header = request.headers.get(DECLARATION_HEADER)
    if media_type in FORMS:  # a form (urlencoded has no file part: read_form says it is missing)
        if header is not None:
            raise _header_error(
                f"a multipart upload carries its declaration as a form field, not in {DECLARATION_HEADER}"
            )
        form = await read_form(request, limit, files=("file",), fields=("declaration",))
        return form.files["file"], _declaration(form.fields["declaration"])
    if not (media_type.startswith("image/") or media_type == "application/octet-stream"):
        raise Problem(
            415,
            "unsupported-media",
            "Unsupported media type",
            "an upload is a multipart form, or the image's bytes with an image/* or application/octet-stream type",
        )
    if header is None:
        raise _header_error("Field required")
    if not header.isascii():  # HTTP reads header bytes as Latin-1: UTF-8 there would silently become mojibake
        raise _header_error("the declaration header is ASCII: write other characters as \\uXXXX JSON escapes")
    declaration = _declaration(header)  # before the body is read: a bad declaration costs no upload
    # Bounded while it streams: the body guard (service.security.bodies) refuses past the upload limit plus the
    # multipart framing; the image itself is held to the upload limit here.
    data = await request.body()
    if len(data) > limit:
        raise Problem(413, "input-too-large", "Input too large", f"uploads are limited to {limit} bytes")
    if not data:
        raise Problem(
            422,
            "invalid-request",
            "Invalid request",
            "the upload is empty",
            errors=[{"loc": ["body"], "msg": "the upload is empty"}],
        )
    return data, declaration


def _header_error(message: str) -> Problem:
    return invalid_part(["header", DECLARATION_HEADER], message)


@router.post(
    "/v1/assets",
    status_code=201,
    summary="Upload an image: inspect, stamp, store",
    openapi_extra=UPLOAD_BODY,
    responses=problems.responses(400, 401, 403, 408, 409, 413, 415, 422, 429, 503, 507),
)
async def upload_asset(
    request: Request,
    response: Response,
    ctx: ContextDep,
    base: PublicBaseDep,
    caller: NewsroomDep,
    idempotency_key: IdempotencyKey = None,
) -> AssetPublic:
    data, declaration = await _upload(request, ctx.settings.max_upload_bytes)
    result = await run_in_threadpool(ingest_asset, ctx, data, declaration, caller, idempotency_key)
    metrics = request.app.state.metrics
    if result.created:
        for label in result.row.labels or ["none"]:
            metrics.stamps.labels(kind="image", label=label).inc()
    else:
        response.status_code = 200
    # A repeat of a withdrawn asset answers with the stored asset, which says it is withdrawn.
    public = AssetPublic.of(base, result.row, None if result.created else withdrawal_of(ctx, result.row.id))
    response.headers["Location"] = public.links.self
    return public


@router.post(
    "/v1/articles",
    status_code=201,
    summary="Stamp an article payload (a new version becomes a correction)",
    openapi_extra=ARTICLE_BODY,
    responses=problems.responses(401, 403, 408, 409, 413, 422, 429, 503, 507),
)
async def post_article(
    request: Request, response: Response, ctx: ContextDep, base: PublicBaseDep, caller: NewsroomDep
) -> ArticlePublic:
    # Bounded while it streams: the body guard (service.security.bodies) refuses past MAX_PAYLOAD with a 413.
    body = await request.body()
    result = await run_in_threadpool(ingest_article, ctx, body, caller)
    if result.created:
        for label in result.row.labels or ["none"]:
            request.app.state.metrics.stamps.labels(kind="article", label=label).inc()
    else:
        response.status_code = 200
    # A new version of a withdrawn article is stored withdrawn (the withdrawal is the article's): it says so.
    return ArticlePublic.of(base, result.row, withdrawal_of(ctx, result.row.article_id))
