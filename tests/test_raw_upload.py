"""``POST /v1/assets`` with the image's bytes as the body and the declaration in ``Provenance-Declaration``:
the same stamp, record and answers as the multipart form, without multipart parsing; and its refusals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from provenance.keys import init_dev_keys

from . import images
from .databases import Database
from .service_support import Service, assert_problem, running, service_settings

HEADER = "Provenance-Declaration"
LIMIT = 256 * 1024


@pytest.fixture
def svc(tmp_path: Path, database: Database) -> Iterator[Service]:
    keys = tmp_path / "keys"
    init_dev_keys(keys, "Raw Upload Newsroom")
    with running(service_settings(tmp_path / "data", keys, database, max_upload_bytes=LIMIT)) as service:
        yield service


def raw(svc: Service, data: bytes, declaration: dict[str, Any] | str | None, **headers: str) -> httpx.Response:
    sent: dict[str, str | bytes] = {"Content-Type": "image/jpeg", **svc.bearer("newsroom"), **headers}
    if declaration is not None:  # as bytes: a client may send any, and the service must refuse what is not ASCII
        sent[HEADER] = (declaration if isinstance(declaration, str) else json.dumps(declaration)).encode()
    return svc.client.post("/v1/assets", content=data, headers=sent)


def test_a_raw_upload_is_the_same_stamp_as_the_form(svc: Service) -> None:
    data = images.jpeg(seed=801)
    title = "生成的插图 \u00e9"  # outside ASCII: sent as \u escapes (json.dumps' default)
    declaration = {"source": "ai_generated", "title": title, "external_id": "cms-801"}
    created = raw(svc, data, declaration)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["labels"] == ["ai_generated"]
    assert created.headers["location"] == body["links"]["self"]
    report = svc.client.get(body["links"]["report"], headers=svc.bearer("auditor")).json()
    assert report["declaration"]["title"] == title
    # The same bytes and declaration through the form: the same asset (a repeat), not a second one.
    repeat = svc.upload(data, declaration)
    assert (repeat.status_code, repeat.json()["id"]) == (200, body["id"])
    # Any image type or octet-stream: the service sniffs the bytes; the Content-Type only says "raw".
    png = raw(svc, images.png(seed=802), {"source": "camera"}, **{"Content-Type": "application/octet-stream"})
    assert png.status_code == 201, png.text
    assert png.json()["media_type"] == "image/png"
    keyed = raw(svc, images.jpeg(seed=803), {"source": "camera"}, **{"Idempotency-Key": "raw-1"})
    again = raw(svc, images.jpeg(seed=803), {"source": "camera"}, **{"Idempotency-Key": "raw-1"})
    assert (keyed.status_code, again.status_code, again.json()["id"]) == (201, 200, keyed.json()["id"])


REFUSED: dict[str, tuple[dict[str, str], bytes, str | None, int, str, list[str] | None]] = {
    "no declaration header": ({}, b"x", None, 422, "invalid-request", ["header", HEADER]),
    "declaration not JSON": ({}, b"x", "{source", 422, "invalid-declaration", None),
    "an unknown source": ({}, b"x", '{"source": "robot"}', 422, "invalid-declaration", ["declaration", "source"]),
    "UTF-8 in the header": ({}, b"x", '{"source": "camera", "title": "\u00e9"}', 422, "invalid-request", None),
    "an empty body": ({}, b"", '{"source": "camera"}', 422, "invalid-request", ["body"]),
    "over the upload limit": ({}, b"\xff" * (LIMIT + 1), '{"source": "camera"}', 413, "input-too-large", None),
    "not an image type": ({"Content-Type": "text/plain"}, b"x", '{"source": "camera"}', 415, "unsupported-media", None),
    "no content type": ({"Content-Type": ""}, b"x", '{"source": "camera"}', 415, "unsupported-media", None),
    "not an image at all": ({}, b"plain words, no image", '{"source": "camera"}', 415, "unsupported-media", None),
}  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "data", "declaration", "status", "kind", "loc"), REFUSED.values(), ids=list(REFUSED)
)
def test_raw_uploads_are_refused_clearly_and_store_nothing(
    svc: Service,
    headers: dict[str, str],
    data: bytes,
    declaration: str | None,
    status: int,
    kind: str,
    loc: list[str] | None,
) -> None:
    body = assert_problem(raw(svc, data, declaration, **headers), status, kind)
    if loc is not None:
        assert body["errors"][0]["loc"][: len(loc)] == loc, body
    assert svc.stored()[:2] == (0, 0)


def test_a_form_with_the_header_too_is_ambiguous(svc: Service) -> None:
    response = svc.upload(images.jpeg(seed=804), headers={HEADER: '{"source": "camera"}'})
    body = assert_problem(response, 422, "invalid-request")
    assert body["errors"][0]["loc"] == ["header", HEADER]
    assert svc.stored()[:2] == (0, 0)


def test_a_raw_upload_needs_a_newsroom_token_before_its_body_is_read(svc: Service) -> None:
    anonymous = svc.client.post("/v1/assets", content=images.jpeg(seed=805), headers={"Content-Type": "image/jpeg"})
    assert_problem(anonymous, 401, "unauthorized")
    auditor = raw(svc, images.jpeg(seed=805), {"source": "camera"}, **svc.bearer("auditor"))
    assert_problem(auditor, 403, "forbidden")
    assert svc.stored()[:2] == (0, 0)


def test_openapi_documents_both_bodies_and_the_header(svc: Service) -> None:
    operation = svc.client.get("/openapi.json").json()["paths"]["/v1/assets"]["post"]
    assert set(operation["requestBody"]["content"]) == {"multipart/form-data", "image/*"}
    assert HEADER in operation["requestBody"]["description"]
    assert [p["name"] for p in operation["parameters"] if p["in"] == "header"].count(HEADER) == 1
