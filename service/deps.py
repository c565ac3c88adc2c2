"""FastAPI dependencies every route may use: the service context and the base of response links."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.context import ServiceContext


def get_context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[ServiceContext, Depends(get_context)]


def public_base(ctx: ContextDep) -> str:
    """The base of the links in responses: the configured public URL, never the request's ``Host``
    (empty when unset: links are then absolute paths)."""
    return (ctx.settings.public_base_url or "").rstrip("/")


PublicBaseDep = Annotated[str, Depends(public_base)]
