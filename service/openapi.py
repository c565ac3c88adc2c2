"""OpenAPI for the whole service, including the badge paths served in front of FastAPI."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from service.badges import MAX_BATCH, REF

_LANG = {
    "name": "lang",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": ["en", "zh-Hans"]},
    "description": "Language of the badge text; default from Accept-Language, else en.",
}
_MEDIA = {"svg": "image/svg+xml", "json": "application/json", "html": "text/html"}


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
                "404": {"description": "Unknown badge", "content": {"application/problem+json": {}}},
            },
        }
    }


def install(api: FastAPI) -> None:
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
                                          "content": {"application/json": {}}}},
                }
            }  # fmt: skip
            api.openapi_schema = schema
        return api.openapi_schema

    api.openapi = openapi  # type: ignore[method-assign]
