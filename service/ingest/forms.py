"""Bounded reading of multipart uploads (uploads, the verify API and the verify page).

Order matters for uploads: a route's dependencies (authentication, role, rate limit) run before its
body is touched, so routes that take files declare no ``File``/``Form`` parameters (FastAPI would parse
those first) and call :func:`read_form` themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from starlette.datastructures import UploadFile
from starlette.requests import Request

from service.problems import Problem

#: Bytes of one text field of a multipart form, held in memory (Starlette's default; a declaration is a few
#: hundred bytes, and its JSON is validated and bounded field by field afterwards).
MAX_FORM_FIELD_BYTES: Final = 1024 * 1024


@dataclass(frozen=True)
class UploadForm:
    """The parts of a multipart upload: file contents and text fields by part name."""

    files: dict[str, bytes]
    fields: dict[str, str]


def invalid_part(loc: list[str], message: str) -> Problem:
    """The 422 for a part of an upload request (a form part, a header) that is missing or wrong."""
    return Problem(
        422,
        "invalid-request",
        "Invalid request",
        "the request does not match the API",
        errors=[{"loc": loc, "msg": message}],
    )


def _missing(name: str, message: str = "Field required") -> Problem:
    return invalid_part(["body", name], message)


async def _read_limited(upload: UploadFile, limit: int, what: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := await upload.read(1024 * 1024):
        size += len(chunk)
        if size > limit:
            raise Problem(413, "input-too-large", "Input too large", f"{what} are limited to {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(
    request: Request,
    max_file_bytes: int,
    *,
    files: tuple[str, ...],
    fields: tuple[str, ...] = (),
    optional: frozenset[str] = frozenset(),
) -> UploadForm:
    """Read a multipart form with bounds: only the named parts, each once, each file at most
    ``max_file_bytes`` and each text field at most :data:`MAX_FORM_FIELD_BYTES`.

    Parts in ``optional`` may be missing; an optional file part with an empty file name is a file input
    left empty (browsers send those) and counts as missing. The whole body is bounded by the body guard
    (``service.app.BodyGuard``). Raises :class:`Problem`: 422 ``invalid-request`` for a missing,
    repeated or mistyped part, 413 for a file over the limit; malformed framing or parts beyond the
    expected number are 400 (Starlette's parser stops at the first one).
    """
    read_files: dict[str, bytes] = {}
    read_fields: dict[str, str] = {}
    # A text field may come as a file part (curl -F name=@file), so it counts towards both caps.
    caps = {"max_files": len(files) + len(fields), "max_fields": len(fields), "max_part_size": MAX_FORM_FIELD_BYTES}
    async with request.form(**caps) as form:
        for name in (*files, *fields):
            values = form.getlist(name)
            if len(values) > 1:
                raise _missing(name, "given more than once")
            value = values[0] if values else None
            if isinstance(value, UploadFile) and name in optional and not value.filename:
                value = None
            if value is None:
                if name not in optional:
                    raise _missing(name)
            elif name in files:
                if not isinstance(value, UploadFile):
                    raise _missing(name, "expected a file part")
                read_files[name] = await _read_limited(value, max_file_bytes, "uploads")
            elif isinstance(value, UploadFile):  # a text field sent as a file (curl -F name=@file)
                data = await _read_limited(value, MAX_FORM_FIELD_BYTES, "form fields")
                try:
                    read_fields[name] = data.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise _missing(name, "expected UTF-8 text") from exc
            else:
                read_fields[name] = value
    return UploadForm(read_files, read_fields)


def form_body(
    *, files: dict[str, str], fields: dict[str, str] | None = None, required: tuple[str, ...]
) -> dict[str, Any]:
    """The OpenAPI ``requestBody`` of a form that a route reads itself with :func:`read_form`
    (parts by name, with their descriptions), for ``openapi_extra``."""
    binary = {"type": "string", "contentMediaType": "application/octet-stream"}
    properties: dict[str, Any] = {name: {**binary, "description": text} for name, text in files.items()}
    properties.update({name: {"type": "string", "description": text} for name, text in (fields or {}).items()})
    schema = {"type": "object", "required": list(required), "properties": properties}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}
