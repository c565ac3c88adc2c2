"""The transparency log's public files and proofs under ``/log/`` (C2SP tlog-tiles).

``GET /log/checkpoint`` (the latest signed checkpoint), ``GET /log/tile/<L>/<N>[.p/<W>]`` (hash tiles) and
``GET /log/tile/entries/<N>[.p/<W>]`` (entry bundles): static files in the C2SP layout, so a CDN or a
bucket can serve them; every tile is immutable, so it is cached for a year, and the checkpoint is
revalidated on every use. ``GET /log/proof/inclusion`` and ``/log/proof/consistency`` compute RFC 6962
proofs; ``GET /log/key`` is the verifier key (pin it out of band: the README says how).
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool

from provenance.tlog import LogError, parse_tile_path
from service import problems
from service.deps import ContextDep
from service.log import tree
from service.problems import Problem

router = APIRouter(prefix="/log", tags=["transparency log"])

IMMUTABLE: Final = {"Cache-Control": "public, max-age=31536000, immutable", "Access-Control-Allow-Origin": "*"}
REVALIDATE: Final = {"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"}
_TEXT: Final = "text/plain; charset=utf-8"


def _not_found(detail: str) -> Problem:
    return Problem(404, "not-found", "Not Found", detail)


@router.get(
    "/checkpoint",
    summary="The latest signed checkpoint (C2SP tlog-checkpoint)",
    response_class=Response,
    responses={200: {"content": {_TEXT: {}}}, **problems.responses(404)},
)
def checkpoint(ctx: ContextDep) -> Response:
    with ctx.session() as session:
        latest = tree.latest(session)
    if latest is None:
        raise _not_found("the log has not signed a checkpoint yet")
    return Response(latest.note, media_type=_TEXT, headers=REVALIDATE)


@router.get(
    "/key",
    summary="The log's verifier key (C2SP signed-note)",
    response_class=Response,
    responses={200: {"content": {_TEXT: {}}}},
)
def key(ctx: ContextDep) -> Response:
    return Response(ctx.log_verifier.vkey + "\n", media_type=_TEXT, headers=REVALIDATE)


@router.get(
    "/tile/{path:path}",
    summary="A hash tile or an entry bundle (C2SP tlog-tiles)",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}, **problems.responses(404)},
)
def tile(ctx: ContextDep, path: str) -> Response:
    try:
        ref = parse_tile_path(f"tile/{path}")
    except LogError as exc:
        raise _not_found(f"no such tile: {exc}") from exc
    with ctx.session() as session:
        latest = tree.latest(session)
        data = tree.tile_file(session, ref, latest.size if latest else 0)
    if data is None:
        raise _not_found("the log has no such tile yet")
    return Response(data, media_type="application/octet-stream", headers=IMMUTABLE)


def _bad(exc: LogError) -> Problem:
    return problems.invalid([{"loc": ["query"], "msg": str(exc), "type": "value_error"}])


Index = Annotated[int, Query(ge=0, le=(1 << 63) - 1, description="The entry's index")]
Size = Annotated[
    int | None, Query(ge=0, le=(1 << 63) - 1, description="The tree size to prove against (default: the latest)")
]


@router.get(
    "/proof/inclusion", summary="An entry and its inclusion proof (RFC 6962)", responses=problems.responses(422)
)
async def inclusion(ctx: ContextDep, index: Index, size: Size = None) -> dict[str, Any]:
    def prove() -> dict[str, Any]:
        with ctx.session() as session:
            return tree.entry_proof(session, index, size)

    try:
        return await run_in_threadpool(prove)
    except LogError as exc:
        raise _bad(exc) from exc


@router.get(
    "/proof/consistency",
    summary="That a tree extends an earlier one (RFC 6962 consistency proof)",
    responses=problems.responses(422),
)
async def consistency(
    ctx: ContextDep,
    old: Annotated[int, Query(alias="from", ge=0, le=(1 << 63) - 1, description="The earlier tree size")],
    new: Annotated[
        int | None, Query(alias="to", ge=0, le=(1 << 63) - 1, description="The later tree size (default: the latest)")
    ] = None,
) -> dict[str, Any]:
    def prove() -> dict[str, Any]:
        with ctx.session() as session:
            return tree.consistency(session, old, new)

    try:
        return await run_in_threadpool(prove)
    except LogError as exc:
        raise _bad(exc) from exc
