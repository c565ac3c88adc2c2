"""OpenAPI for the whole service, including the badge paths served in front of FastAPI, and the page
that shows it (``/docs``; ``/redoc`` redirects there).

Every error answer is documented as what it is: an RFC 9457 ``application/problem+json`` document
(:class:`service.problems.ProblemDetails`), validation errors included (FastAPI's own 422 schema,
``HTTPValidationError``, is never what the service sends, so it is not in the document). Every operation
that takes an API token (a role check of :mod:`service.security.deps`) says so with the ``bearer`` security
scheme, and only those: badges, public records, pages and health are open to anyone.

Offline (invariant): the documentation page loads nothing from another origin. Swagger UI comes from a
pinned package (``fastapi-offline``, only its files) and is served under ``/docs/static/`` with a start-up
script of this service; the page is a Jinja2 template (``pages/templates/docs/``) under a
Content-Security-Policy that allows this origin only. ReDoc is not offered: its bundle always loads a logo
from the vendor's CDN.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

import fastapi_offline
from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from service import markup, problems
from service.badges.app import MAX_BATCH
from service.pages.templating import render
from service.problems import Problem
from service.security import deps as security_deps
from service.store.ids import REF

_LANG = {
    "name": "lang",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": ["en", "zh-Hans"]},
    "description": "Language of the badge text; default from Accept-Language, else en.",
}
_MEDIA = {"svg": "image/svg+xml", "json": "application/json", "html": "text/html"}
_FASTAPI_VALIDATION: Final = ("HTTPValidationError", "ValidationError")

#: The security scheme of every operation that needs a token (``Authorization: Bearer pv_…``).
BEARER: Final = "bearer"
_BEARER_SCHEME: Final = {
    "type": "http",
    "scheme": "bearer",
    "description": "An API token (`pv_…`) with the operation's role: newsroom, auditor or admin (admin may "
    "do everything). Missing or unknown: 401; without the role: 403.",
}
#: ``/metrics`` takes no API token, but the operator's ``metrics_token`` when one is set (optional otherwise).
METRICS: Final = "metrics_token"
_METRICS_SCHEME: Final = {
    "type": "http",
    "scheme": "bearer",
    "description": "The operator's `metrics_token`, when one is configured (no API token is accepted here).",
}

DOCS_ASSETS: Final = "/docs/static"
_VENDOR: Final = Path(fastapi_offline.__file__).resolve().parent / "static"  # Swagger UI 5.32
_OWN: Final = Path(__file__).resolve().parent / "pages" / "static" / "docs"
_JS, _CSS = "text/javascript; charset=utf-8", "text/css; charset=utf-8"
#: Every file the documentation pages load: name -> (file, media type). Nothing else is served there.
_ASSET_FILES: Final = {
    "swagger-ui-bundle.js": (_VENDOR / "swagger-ui-bundle.js", _JS),
    "swagger-ui.css": (_VENDOR / "swagger-ui.css", _CSS),
    "favicon.png": (_VENDOR / "favicon.png", "image/png"),
    "swagger-init.js": (_OWN / "swagger-init.js", _JS),
}


def _badge_path(fmt: str) -> dict[str, Any]:
    return {
        "get": {
            "tags": ["badges"],
            "summary": f"Badge as {fmt.upper()} (public, cacheable, safe to embed)",
            "description": "Served from the stored decision; text only from the fixed vocabulary. "
            "Strong ETag, 304 on If-None-Match.",
            "parameters": [
                {
                    "name": "ref",
                    "in": "path",
                    "required": True,
                    "schema": {
                        "type": "string",
                        "pattern": f"^{REF.pattern}$",
                    },
                    "description": "Asset id, article id, or sha256-<hex> of the original or stamped bytes.",
                },
                _LANG,
            ],
            "responses": {
                "200": {"description": "The badge", "content": {_MEDIA[fmt]: {}}},
                "304": {"description": "Not modified"},
                **_problems(400, 404),
            },
        }
    }


def _problems(*statuses: int) -> dict[str, Any]:
    return {str(status): response for status, response in problems.responses(*statuses).items()}


def _problem_json_for_validation(schema: dict[str, Any]) -> None:
    """Every 422 FastAPI documented with its own schema is answered as a problem (service.problems)."""
    for operations in schema["paths"].values():
        for operation in operations.values():
            answer = operation.get("responses", {}).get("422")
            if answer and "application/json" in answer.get("content", {}):
                operation["responses"]["422"] = _problems(422)["422"]
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION:
        components.pop(name, None)
    components.update(problems.openapi_schemas())


#: The documentation page's policy: everything from this origin only ("try it out" included), images
#: also as data: URLs (Swagger UI's icons); never an inline script.
DOCS_CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _protected(api: FastAPI) -> set[tuple[str, str]]:
    """(path, method) of every operation that depends on a role check of :mod:`service.security.deps`."""

    def checks_role(dependant: Dependant) -> bool:
        return any(
            getattr(dep.call, "__module__", None) == security_deps.__name__ or checks_role(dep)
            for dep in dependant.dependencies
        )

    # Newer FastAPI keeps included routers as such: iterate their routes with the paths they answer on.
    contexts = getattr(routing, "iter_route_contexts", None)
    routes: Iterable[Any] = contexts(api.routes) if contexts else api.routes
    return {
        (route.path_format, method.lower())
        for route in routes
        if isinstance(getattr(route, "dependant", None), Dependant) and checks_role(route.dependant)
        for method in route.methods or ()
    }


def _security(schema: dict[str, Any], protected: set[tuple[str, str]]) -> None:
    """Declare the bearer schemes and apply them: the API token to the ``protected`` operations, the optional
    metrics token to any other operation reading ``Authorization``. That header is then no longer listed as
    a parameter (the scheme says it)."""
    schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes[BEARER] = _BEARER_SCHEME
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            parameters = operation.get("parameters", [])
            kept = [p for p in parameters if not _is_authorization(p)]
            if (path, method) in protected:
                operation["security"] = [{BEARER: []}]
            elif len(kept) != len(parameters):
                schemes[METRICS] = _METRICS_SCHEME
                operation["security"] = [{}, {METRICS: []}]  # {}: none needed unless configured
            else:
                continue
            if kept:
                operation["parameters"] = kept
            else:
                operation.pop("parameters", None)


def _is_authorization(parameter: dict[str, Any]) -> bool:
    return parameter.get("in") == "header" and str(parameter.get("name", "")).lower() == "authorization"


def _docs_page(template: str, title: str) -> Callable[[], HTMLResponse]:
    """A route answering the page ``template`` (rendered once) under :data:`DOCS_CSP`."""
    html = render(template, "en", title=title, assets=DOCS_ASSETS, openapi_url="/openapi.json")
    headers = markup.security_headers(DOCS_CSP)
    return lambda: HTMLResponse(html, headers=headers)


def _docs_asset(name: str) -> FileResponse:
    """One of the documentation pages' files (:data:`_ASSET_FILES`); 404 for any other name."""
    if name not in _ASSET_FILES:
        raise Problem(404, "not-found", "Not found", "no such documentation file")
    path, media_type = _ASSET_FILES[name]
    headers = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
    return FileResponse(path, media_type=media_type, headers=headers)


def install(api: FastAPI) -> None:
    """The OpenAPI document (``/openapi.json``) and the page showing it (``/docs``, its files, ``/redoc``)."""

    def openapi() -> dict[str, Any]:
        if api.openapi_schema is None:
            schema = get_openapi(title=api.title, version=api.version, summary=api.summary, routes=api.routes)
            for fmt in _MEDIA:
                schema["paths"][f"/v1/badges/{{ref}}.{fmt}"] = _badge_path(fmt)
            schema["paths"]["/v1/badges"] = {
                "get": {
                    "tags": ["badges"],
                    "summary": f"Up to {MAX_BATCH} badges as JSON, for a whole page",
                    "parameters": [
                        {"name": "refs", "in": "query", "required": True, "schema": {"type": "string"},
                         "description": "Comma-separated badge references."},
                        _LANG,
                    ],
                    "responses": {"200": {"description": "Badges by reference (null when unknown)",
                                          "content": {"application/json": {}}},
                                  **_problems(400)},
                }
            }  # fmt: skip
            _problem_json_for_validation(schema)
            _security(schema, _protected(api))
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]

    swagger = _docs_page("docs/swagger.html", f"{api.title} - Swagger UI")
    api.add_api_route("/docs", swagger, include_in_schema=False, response_class=HTMLResponse)
    api.add_api_route("/redoc", lambda: RedirectResponse("/docs", 308), include_in_schema=False)
    api.add_api_route(f"{DOCS_ASSETS}/{{name}}", _docs_asset, methods=["GET", "HEAD"], include_in_schema=False)
