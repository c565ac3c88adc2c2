"""Newsroom upload hooks: images (multipart) and article payloads (JSON)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from provenance.articles import MAX_PAYLOAD
from service import problems
from service.deps import ContextDep, PublicBaseDep
from service.ingest.forms import form_body, read_form
from service.ingest.pipeline import ingest_article, ingest_asset
from service.ingest.schemas import Declaration, IdempotencyKey
from service.problems import Problem
from service.records.lookup import withdrawal_of
from service.records.schemas import ArticlePublic, AssetPublic
from service.security.deps import NewsroomDep

router = APIRouter(tags=["ingest"])

DECLARATION_HELP = "JSON: source, title?, credit?, external_id?, override_upstream?"
#: The upload form, documented by hand: the route reads it itself, after authentication.
UPLOAD_BODY = form_body(
    files={"file": "The image"}, fields={"declaration": DECLARATION_HELP}, required=("file", "declaration")
)
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
    form = await read_form(request, ctx.settings.max_upload_bytes, files=("file",), fields=("declaration",))
    declaration = _declaration(form.fields["declaration"])
    result = await run_in_threadpool(ingest_asset, ctx, form.files["file"], declaration, caller, idempotency_key)
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
