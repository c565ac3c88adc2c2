"""OpenAPI for the whole service, including the badge paths served in front of FastAPI, and the pages
that show it (``/docs``, ``/redoc``).

Every error answer is documented as what it is: an RFC 9457 ``application/problem+json`` document
(:class:`service.problems.ProblemDetails`), validation errors included (FastAPI's own 422 schema,
``HTTPValidationError``, is never what the service sends, so it is not in the document).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Final

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse

from service import markup, problems
from service.badges.app import MAX_BATCH
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

# The documentation pages load Swagger UI and ReDoc from this CDN (a later change serves them locally).
_CDN: Final = "https://cdn.jsdelivr.net"
_FAVICON_HOST: Final = "https://fastapi.tiangolo.com"
_INLINE_SCRIPT: Final = re.compile(r"<script>(.*?)</script>", re.DOTALL)


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


#: The documentation pages' policy: the CDN's scripts and styles, the page's own inline scripts by hash
#: (never 'unsafe-inline' for scripts), inline styles (both UIs set them), data: images, the spec and
#: "try it out" requests to this origin, ReDoc's search worker.
DOCS_CSP: Final = (
    f"default-src 'none'; script-src {_CDN} {{inline_scripts}}; style-src {_CDN} 'unsafe-inline'; "
    f"img-src 'self' data: {_FAVICON_HOST}; connect-src 'self'; worker-src blob:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _docs_page(page: HTMLResponse) -> Callable[[], HTMLResponse]:
    """A route answering ``page`` under :data:`DOCS_CSP`, its inline scripts allowed by their hashes."""
    html = bytes(page.body).decode()
    hashes = " ".join(markup.source_hash(script) for script in _INLINE_SCRIPT.findall(html))
    headers = markup.security_headers(DOCS_CSP.format(inline_scripts=hashes))
    return lambda: HTMLResponse(html, headers=headers)


def install(api: FastAPI) -> None:
    """The OpenAPI document (``/openapi.json``) and the pages showing it (``/docs``, ``/redoc``)."""

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
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]

    swagger = get_swagger_ui_html(
        openapi_url="/openapi.json",
        title=f"{api.title} - Swagger UI",
        oauth2_redirect_url=None,
        swagger_ui_parameters={"validatorUrl": None},  # no request to the public validator
    )
    redoc = get_redoc_html(openapi_url="/openapi.json", title=f"{api.title} - ReDoc", with_google_fonts=False)
    api.add_api_route("/docs", _docs_page(swagger), include_in_schema=False, response_class=HTMLResponse)
    api.add_api_route("/redoc", _docs_page(redoc), include_in_schema=False, response_class=HTMLResponse)
