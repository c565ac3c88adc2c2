"""The C2PA Soft Binding Resolution API (version 1.x) at the root, and ``POST /v1/badges/match``.

``GET``/``POST /matches/byBinding``, ``POST /matches/byContent``, ``GET /manifests/{manifestId}`` and
``GET /services/supportedAlgorithms``, as the C2PA specifies them; public, every lookup rate-limited per
client address (``match_per_minute``) before its body is read, bodies bounded (``match_max_bytes`` for
content, 64 KiB otherwise). There is no ``byReference``: the service never fetches a URL a client names.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from provenance.softbinding import ALG, MAX_DISTANCE
from provenance.vocabulary import LANGUAGES, preferred_language
from service import problems
from service.deps import ContextDep, PublicBaseDep
from service.problems import Problem
from service.records.lookup import GONE
from service.resolver.index import MAX_RESULTS
from service.resolver.lookup import (
    C2PA_MEDIA_TYPE,
    binding_of_content,
    binding_of_value,
    find,
    manifest_store,
    match_badge,
    query_result,
)
from service.security.public import MatchLimitDep

router = APIRouter(tags=["soft binding resolution"])

#: Every answer may be read by a page or a verifier of any origin (no cookies are ever involved).
CORS: Final = {"Access-Control-Allow-Origin": "*"}
_PREFLIGHT: Final = {
    **CORS,
    "Access-Control-Allow-Methods": "POST",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "86400",
}

MaxResults = Annotated[
    int, Query(alias="maxResults", ge=1, description=f"Most matches to return (at most {MAX_RESULTS})")
]
_MATCH_DOC: Final = (
    f"Fingerprints (`{ALG}`, ISCC Content-Code of an image or a text) within {MAX_DISTANCE} of 64 bits of the "
    "query's, nearest first. A match means the content resembles a stored original, not that the content in "
    "hand is signed: its own credentials are the original's manifest (`GET /manifests/{manifestId}`), which "
    "does not hard-bind a copy. Each match also names the item and its badge (extensions)."
)
_ANSWERS: Final = problems.responses(400, 413, 422, 429)


class SoftBindingQuery(BaseModel):
    """``c2pa.softBindingQuery``: one soft binding, its value the base64 of the algorithm's binary form (the
    ISCC code itself, with or without ``ISCC:``, is accepted too)."""

    alg: str = Field(max_length=200, examples=[ALG])
    value: str = Field(max_length=200, examples=["ISCC:EEA4GQZQTY6J5DTH"])


class Match(BaseModel):
    manifestId: str = Field(description="The matched manifest's label (`urn:c2pa:…`)")
    similarityScore: int = Field(ge=0, le=100, description="100: the same fingerprint; 0: at the threshold")
    endpoint: str | None = Field(default=None, description="Absent: `/manifests` of this service")
    distance: int = Field(description="Bits of the 64-bit fingerprint that differ (extension)")
    item: str = Field(description="The asset or article the manifest is of (extension)")
    badge: str = Field(description="The item's badge: its verified label (extension)")


class QueryResult(BaseModel):
    """``c2pa.softBindingQueryResult``."""

    matches: list[Match]


class AlgorithmList(BaseModel):
    """``c2pa.softBindingAlgList``."""

    watermarks: list[dict[str, str]]
    fingerprints: list[dict[str, str]]


@router.get(
    "/services/supportedAlgorithms",
    summary="The soft-binding algorithms this service resolves",
    response_model=AlgorithmList,
)
def supported_algorithms(response: Response) -> dict[str, Any]:
    response.headers.update({"Cache-Control": "public, max-age=3600", **CORS})
    return {"watermarks": [], "fingerprints": [{"alg": ALG}]}


@router.get(
    "/matches/byBinding",
    summary="Manifests whose soft binding matches a value",
    description=_MATCH_DOC,
    response_model=QueryResult,
    response_model_exclude_none=True,
    responses=_ANSWERS,
)
def matches_by_binding(
    response: Response,
    ctx: ContextDep,
    base: PublicBaseDep,
    _limit: MatchLimitDep,
    alg: Annotated[str, Query(max_length=200)],
    value: Annotated[str, Query(max_length=200)],
    max_results: MaxResults = MAX_RESULTS,
) -> dict[str, Any]:
    response.headers.update(CORS)
    return query_result(find(ctx, binding_of_value(alg, value), max_results), base)


@router.post(
    "/matches/byBinding",
    summary="Manifests whose soft binding matches a value (the query as JSON)",
    description=_MATCH_DOC,
    response_model=QueryResult,
    response_model_exclude_none=True,
    responses=_ANSWERS,
)
def matches_by_binding_post(
    response: Response,
    ctx: ContextDep,
    base: PublicBaseDep,
    _limit: MatchLimitDep,
    query: SoftBindingQuery,
    max_results: MaxResults = MAX_RESULTS,
) -> dict[str, Any]:
    response.headers.update(CORS)
    return query_result(find(ctx, binding_of_value(query.alg, query.value), max_results), base)


_CONTENT_BODY: Final = {
    "requestBody": {
        "required": True,
        "description": "The image (any format the service stamps, sniffed from the bytes) or UTF-8 text/plain",
        "content": {
            "image/*": {"schema": {"type": "string", "format": "binary"}},
            "text/plain": {"schema": {"type": "string"}},
        },
    }
}


async def _content(request: Request, ctx: ContextDep) -> tuple[bytes, str]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if not (media_type.startswith("image/") or media_type in ("text/plain", "application/octet-stream")):
        raise Problem(415, "unsupported-media", "Unsupported media type", "send an image/* or text/plain body")
    return await request.body(), media_type  # bounded by the body guard (match_max_bytes)


@router.post(
    "/matches/byContent",
    summary="Manifests matching an image or a text (the service computes its fingerprint)",
    description=_MATCH_DOC + " `hintAlg`/`hintValue` are accepted and not used.",
    response_model=QueryResult,
    response_model_exclude_none=True,
    openapi_extra=_CONTENT_BODY,
    responses=problems.responses(400, 413, 415, 422, 429, 503),
)
async def matches_by_content(
    request: Request,
    response: Response,
    ctx: ContextDep,
    base: PublicBaseDep,
    _limit: MatchLimitDep,
    alg: Annotated[str | None, Query(max_length=200)] = None,
    max_results: MaxResults = MAX_RESULTS,
    hint_alg: Annotated[str | None, Query(alias="hintAlg", max_length=200)] = None,
    hint_value: Annotated[str | None, Query(alias="hintValue", max_length=200)] = None,
) -> dict[str, Any]:
    if alg is not None and alg != ALG:
        raise Problem(400, "invalid-binding", "Unsupported algorithm", f"this service computes {ALG} only")
    data, media_type = await _content(request, ctx)
    binding = await run_in_threadpool(binding_of_content, ctx, data, media_type)
    response.headers.update(CORS)
    return query_result(await run_in_threadpool(find, ctx, binding, max_results), base)


@router.get(
    "/manifests/{manifest_id}",
    summary="A matched manifest store (application/c2pa)",
    description=(
        "The stored manifest store of a manifest id a match named: the original's signed manifest, with its "
        "ingredients. `returnActiveManifest` is accepted; the store is always whole (its ingredients' "
        "manifests are part of the evidence). A withdrawn item's manifest answers 410."
    ),
    response_class=Response,
    responses={
        200: {"content": {C2PA_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
        **problems.responses(404),
        **GONE,
    },
)
def get_manifest(
    ctx: ContextDep,
    manifest_id: Annotated[str, Path(max_length=200)],
    return_active_manifest: Annotated[bool, Query(alias="returnActiveManifest")] = False,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    store = manifest_store(ctx, manifest_id)
    headers = {
        "ETag": store.etag,
        "Cache-Control": "public, max-age=300",  # withdrawal shows within minutes behind a CDN (purge: item tag)
        "X-Content-Type-Options": "nosniff",
        **CORS,
    }
    if if_none_match is not None and store.etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    return Response(store.data, media_type=C2PA_MEDIA_TYPE, headers=headers)


@router.post(
    "/v1/badges/match",
    tags=["badges"],
    summary="The badge of a matching original, for content that carries no ref or no credentials",
    description=(
        "Send the image (or UTF-8 text/plain) as the body. The answer never says the content in hand is "
        'verified: `state` is `matching_original` with `text` "Credentials found for a matching original", '
        "the match's closeness, and the original's own badge (`original`, as `GET /v1/badges/{ref}.json` "
        "shows it: its verified label), or `no_match`. Public, rate-limited per client address."
    ),
    openapi_extra=_CONTENT_BODY,
    responses=problems.responses(400, 413, 415, 422, 429, 503),
)
async def badge_match(
    request: Request,
    response: Response,
    ctx: ContextDep,
    _limit: MatchLimitDep,
    lang: Annotated[str | None, Query(description="en or zh-Hans (default: Accept-Language)")] = None,
    accept_language: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    if lang is not None and lang not in LANGUAGES:
        raise Problem(400, "invalid-language", "Unsupported language", f"lang must be one of {', '.join(LANGUAGES)}")
    language = lang or preferred_language(accept_language)
    data, media_type = await _content(request, ctx)
    binding = await run_in_threadpool(binding_of_content, ctx, data, media_type)
    response.headers.update({**CORS, "Cache-Control": "no-store"})
    return await run_in_threadpool(match_badge, ctx, binding, language)


@router.options("/matches/byBinding", include_in_schema=False)
@router.options("/matches/byContent", include_in_schema=False)
@router.options("/v1/badges/match", include_in_schema=False)
def preflight() -> Response:
    """CORS preflight of the POST lookups (their bodies are JSON or images, not a form): any origin may ask."""
    return Response(status_code=204, headers=_PREFLIGHT)
