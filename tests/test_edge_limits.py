"""Input limits at the edge (issue 10, item 9): every value a request can put into a bounded column or a query
is checked before the database, with a 4xx problem, identically on SQLite (which ignores VARCHAR lengths and
stores NULs) and PostgreSQL (which refuses both).

Each table is a limit: the value at the limit is accepted where that makes sense, the values past it are a 4xx
problem, and nothing was written (rows and blobs unchanged). One service per module and database keeps the
file fast; every refusal gets its own audit row (``audit_refusals_per_minute``), so the rows can be checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect as reflect

from provenance import InputError
from provenance.articles import MAX_EXTERNAL_ID, MAX_VERSION
from provenance.keys import init_dev_keys
from service.security.tokens import audit_subject, create_token, revoke_tokens
from service.store.db import (
    MAX_AUDIT_SUBJECT,
    MAX_IDEMPOTENCY_KEY,
    MAX_TOKEN_NAME,
    ArticleVersion,
    Asset,
    AuditEvent,
    Token,
)

from . import images
from .databases import Database
from .service_support import (
    Service,
    Streamed,
    assert_problem,
    chunks_of,
    multipart,
    running,
    sample,
    service_settings,
    stream,
)

CLI = [sys.executable, "-m", "service.cli"]
UNKNOWN_ASSET = "img_" + "0" * 24
UNKNOWN_ARTICLE = "art_" + "0" * 24


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("edge")
    init_dev_keys(directory / "keys", "Edge Newsroom")
    return directory


@pytest.fixture(scope="module")
def svc(database: Database, root: Path) -> Iterator[Service]:
    """A service whose server errors come back as 500 answers (so a database error fails an assertion)."""
    settings = service_settings(
        root / "var", root / "keys", database, rate_limit_per_minute=1_000_000, audit_refusals_per_minute=1_000_000
    )
    with running(settings, raise_server_exceptions=False) as service:
        yield service


def written(svc: Service) -> tuple[Any, ...]:
    """Everything a request could write: assets, article versions, blobs, tokens and audit rows."""
    return (*svc.stored(), svc.rows(Token), svc.rows(AuditEvent))


# --------------------------------------------------------------------------------------------------
# Path parameters: any length, any character, never a database error
# --------------------------------------------------------------------------------------------------

ODD_IDS = {
    "10,000 characters": "x" * 10_000,
    "an asset id's prefix, then 10,000 hex digits": "img_" + "0" * 10_000,
    "a NUL": "%00",
    "a NUL inside an id of the right length": "img_" + "0" * 11 + "%00" + "0" * 12,
    "control characters": "art_%01%1f%7f",
    "300 two-byte characters (600 bytes)": "é" * 300,
    "bytes that are no UTF-8 (a surrogate's encoding)": "%ED%A0%80",
    "well-formed but unknown asset": UNKNOWN_ASSET,
    "well-formed but unknown article": UNKNOWN_ARTICLE,
}
PUBLIC_PATHS = (
    "/v1/assets/{}",
    "/v1/assets/{}/content",
    "/v1/assets/{}/manifest.c2pa",
    "/v1/articles/{}/v1.txt",
    "/v1/articles/{}/v1.c2pa",
    "/v1/badges/{}.svg",
    "/v1/badges/{}.json",
)
AUDITOR_PATHS = ("/v1/assets/{}/report", "/v1/articles/{}/v1/report")


@pytest.mark.parametrize("ident", ODD_IDS.values(), ids=list(ODD_IDS))
def test_unknown_ids_of_any_form_are_404(svc: Service, ident: str) -> None:
    before = written(svc)
    for template in PUBLIC_PATHS:
        assert_problem(svc.client.get(template.format(ident)), 404, "not-found")
    for template in AUDITOR_PATHS:
        assert_problem(svc.client.get(template.format(ident), headers=svc.bearer("auditor")), 404, "not-found")
    assert written(svc) == before


VERSIONS = {
    "0": ("0", 422),
    "negative": ("-1", 422),
    "the largest 32-bit integer (at the limit: a version, just not a stored one)": (str(MAX_VERSION), 404),
    "one past the 32-bit range": (str(MAX_VERSION + 1), 422),
    "beyond 64 bits": ("9" * 30, 422),
    "not a number": ("one", 422),
}


@pytest.mark.parametrize(("version", "status"), VERSIONS.values(), ids=list(VERSIONS))
def test_path_versions_are_bounded_to_32_bits(svc: Service, version: str, status: int) -> None:
    kind = "not-found" if status == 404 else "invalid-request"
    before = written(svc)
    for path in (f"/v1/articles/{UNKNOWN_ARTICLE}/v{version}.txt", f"/v1/articles/{UNKNOWN_ARTICLE}/v{version}.c2pa"):
        assert_problem(svc.client.get(path), status, kind)
    report = svc.client.get(f"/v1/articles/{UNKNOWN_ARTICLE}/v{version}/report", headers=svc.bearer("auditor"))
    assert_problem(report, status, kind)
    assert written(svc) == before


# --------------------------------------------------------------------------------------------------
# Authentication comes first, whatever the path; the refusal's audit row fits its column
# --------------------------------------------------------------------------------------------------

REFUSED_PATHS = {
    "asset report, 10,000-character id": "/v1/assets/" + "x" * 10_000 + "/report",
    "article report, 60,000-character id": "/v1/articles/" + "x" * 60_000 + "/v1/report",
    "asset report, NUL id": "/v1/assets/%00/report",
    "article report, control characters and a bidi override": "/v1/articles/%01%E2%80%AE%7f/v1/report",
    "article report, version beyond 32 bits": f"/v1/articles/{UNKNOWN_ARTICLE}/v{'9' * 30}/report",
    "asset report, 199 multibyte characters": "/v1/assets/" + "文" * 199 + "/report",
    "verify, 10,000-character query": "/v1/verify?" + "q" * 10_000,
}
CALLERS = {
    "no token": (None, 401, "unauthorized", "missing token"),
    "unknown token": ("Bearer pv_" + "A" * 43, 401, "unauthorized", "bad token"),
    "the wrong role": ("newsroom", 403, "forbidden", "wrong role"),
}


@pytest.mark.parametrize("path", REFUSED_PATHS.values(), ids=list(REFUSED_PATHS))
@pytest.mark.parametrize(("who", "status", "kind", "reason"), CALLERS.values(), ids=list(CALLERS))
def test_refusal_is_answered_and_audited_whatever_the_path(
    svc: Service, path: str, who: str | None, status: int, kind: str, reason: str
) -> None:
    headers = svc.bearer(who) if who in svc.tokens else ({"Authorization": who} if who else {})
    method = "POST" if path.startswith("/v1/verify") else "GET"
    before = svc.events("auth_failure")
    before_stored = svc.stored()
    assert_problem(svc.client.request(method, path, headers=headers), status, kind)
    rows = svc.events("auth_failure")
    assert len(rows) == len(before) + 1
    row = rows[-1]
    assert row.detail["reason"] == reason
    assert row.subject is not None
    assert row.subject.startswith(method + " /v1/")
    assert len(row.subject) <= MAX_AUDIT_SUBJECT
    assert row.subject.isprintable()  # a NUL or an override is named (⟨U+0000⟩), never stored
    if len(f"{method} {path.partition('?')[0]}") > MAX_AUDIT_SUBJECT:
        assert row.subject.endswith("…")
    assert svc.stored() == before_stored


AUDIT_SUBJECTS = {
    "short text is kept": ("GET /v1/assets/x/report", "GET /v1/assets/x/report"),
    "text at the limit is kept": ("s" * MAX_AUDIT_SUBJECT, "s" * MAX_AUDIT_SUBJECT),
    "one past the limit is cut, ending in …": ("s" * (MAX_AUDIT_SUBJECT + 1), "s" * (MAX_AUDIT_SUBJECT - 1) + "…"),
    "a NUL is named": ("GET /\x00", "GET /⟨U+0000⟩"),
    "a lone surrogate is named": ("GET /\ud800", "GET /⟨U+D800⟩"),
    "named characters count towards the limit": ("\x00" * 100, ("⟨U+0000⟩" * 25)[: MAX_AUDIT_SUBJECT - 1] + "…"),
}


@pytest.mark.parametrize(("text", "subject"), AUDIT_SUBJECTS.values(), ids=list(AUDIT_SUBJECTS))
def test_audit_subject(text: str, subject: str) -> None:
    assert audit_subject(text) == subject
    assert len(audit_subject(text)) <= MAX_AUDIT_SUBJECT


# --------------------------------------------------------------------------------------------------
# Article payloads: external_id within its column, version within 32 bits
# --------------------------------------------------------------------------------------------------


def payload(**fields: Any) -> bytes:
    """The ai-weather sample with ``fields`` replaced (JSON escapes a lone surrogate as \\ud800)."""
    return json.dumps({**json.loads(sample("ai-weather.json")), **fields}).encode()


ACCEPTED_ARTICLES = {
    f"external_id of {MAX_EXTERNAL_ID} characters": {"external_id": "e" * MAX_EXTERNAL_ID},
    f"external_id of {MAX_EXTERNAL_ID} CJK characters (900 bytes)": {"external_id": "文" * MAX_EXTERNAL_ID},
    "the largest 32-bit version": {"external_id": "edge/largest-version", "version": MAX_VERSION},
}


@pytest.mark.parametrize("fields", ACCEPTED_ARTICLES.values(), ids=list(ACCEPTED_ARTICLES))
def test_article_at_the_limits_is_stamped(svc: Service, fields: dict[str, Any]) -> None:
    response = svc.post_article(payload(**fields))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["external_id"] == fields["external_id"]
    with svc.session() as session:
        row = session.get(ArticleVersion, (body["id"], body["version"]))
        assert row is not None
        assert row.external_id == fields["external_id"]
    assert svc.client.get(body["links"]["text"]).status_code == 200


REFUSED_ARTICLES = {
    f"external_id of {MAX_EXTERNAL_ID + 1} characters": ({"external_id": "e" * (MAX_EXTERNAL_ID + 1)}, "external_id"),
    f"external_id of {MAX_EXTERNAL_ID + 1} CJK characters": (
        {"external_id": "文" * (MAX_EXTERNAL_ID + 1)},
        "external_id",
    ),
    "external_id with a NUL": ({"external_id": "cms/\x00/1"}, "external_id"),
    "external_id with a control character": ({"external_id": "cms/\x1f"}, "external_id"),
    "external_id with a lone surrogate": ({"external_id": "cms/\ud800"}, "external_id"),
    "byline with a lone surrogate": ({"external_id": "edge/byline", "byline": "A \ud800"}, "byline"),
    "language with a lone surrogate": ({"external_id": "edge/language", "language": "en\udc00"}, "language"),
    "url with a lone surrogate": ({"external_id": "edge/url", "url": "https://news.example/\ud800"}, "url"),
    "version one past 32 bits": ({"external_id": "edge/version", "version": MAX_VERSION + 1}, "version"),
    "version beyond 64 bits": ({"external_id": "edge/version", "version": 2**64}, "version"),
    "version 0": ({"external_id": "edge/version", "version": 0}, "version"),
}


@pytest.mark.parametrize(("fields", "named"), REFUSED_ARTICLES.values(), ids=list(REFUSED_ARTICLES))
def test_article_past_a_limit_is_422_and_stores_nothing(svc: Service, fields: dict[str, Any], named: str) -> None:
    before = written(svc)
    body = assert_problem(svc.post_article(payload(**fields)), 422, "input-error")
    assert named in body["detail"]
    assert written(svc) == before


def test_an_image_declares_an_external_id_within_the_articles_limit(svc: Service) -> None:
    """An image is paired with an article by ``external_id``: it has the article's bound, not another."""
    at = svc.upload(images.jpeg(seed=90), {"source": "camera", "external_id": "e" * MAX_EXTERNAL_ID})
    assert at.status_code == 201, at.text
    before = written(svc)
    over = svc.upload(images.jpeg(seed=91), {"source": "camera", "external_id": "e" * (MAX_EXTERNAL_ID + 1)})
    assert_problem(over, 422, "invalid-declaration")
    assert written(svc) == before


def test_external_id_limit_is_the_column_on_the_migrated_database(svc: Service) -> None:
    """The limits checked at the edge are the lengths of the columns the migrations made (no drift)."""
    bounds = {
        ("article_versions", "external_id"): MAX_EXTERNAL_ID,
        ("tokens", "name"): MAX_TOKEN_NAME,
        ("assets", "idempotency_key"): MAX_IDEMPOTENCY_KEY,
        ("audit_events", "subject"): MAX_AUDIT_SUBJECT,
    }
    schema = reflect(svc.ctx.engine)
    for (table, column), limit in bounds.items():
        (found,) = (c for c in schema.get_columns(table) if c["name"] == column)
        assert found["type"].length == limit, (table, column)


# --------------------------------------------------------------------------------------------------
# Idempotency-Key: stored with the asset, so bounded by its column
# --------------------------------------------------------------------------------------------------

ACCEPTED_KEYS = {
    f"{MAX_IDEMPOTENCY_KEY} ASCII characters": ("k" * MAX_IDEMPOTENCY_KEY, 901),
    # A header is Latin-1 for the service: 200 characters, 400 bytes once stored as UTF-8.
    f"{MAX_IDEMPOTENCY_KEY} Latin-1 characters": ("é" * MAX_IDEMPOTENCY_KEY, 902),
}


def upload_with_key(svc: Service, data: bytes, key: str) -> Streamed:
    """An upload whose Idempotency-Key goes on the wire byte for byte (Latin-1), as from a real client."""
    body, content_type = multipart([("file", "upload.jpg", data), ("declaration", None, b'{"source": "camera"}')])
    headers = {**svc.bearer("newsroom"), "Content-Type": content_type, "Idempotency-Key": key}
    return stream(svc, "POST", "/v1/assets", chunks_of(body), {**headers, "Content-Length": str(len(body))})


@pytest.mark.parametrize(("key", "seed"), ACCEPTED_KEYS.values(), ids=list(ACCEPTED_KEYS))
def test_idempotency_key_at_the_limit_is_stored_and_replays(svc: Service, key: str, seed: int) -> None:
    data = images.jpeg(seed=seed)
    first = upload_with_key(svc, data, key)
    assert first.status == 201, first.body
    with svc.session() as session:
        row = session.get(Asset, first.json()["id"])
        assert row is not None
        assert row.idempotency_key == key
    again = upload_with_key(svc, data, key)
    assert again.status == 200, again.body
    assert again.json()["id"] == first.json()["id"]


REFUSED_KEYS = {
    f"{MAX_IDEMPOTENCY_KEY + 1} characters": "k" * (MAX_IDEMPOTENCY_KEY + 1),
    "10,000 characters": "k" * 10_000,
    "a NUL": "cms-job\x00",
    "a control character": "cms-job\x01",
    "DEL": "cms-job\x7f",
}


@pytest.mark.parametrize("key", REFUSED_KEYS.values(), ids=list(REFUSED_KEYS))
def test_idempotency_key_past_the_limit_is_422_before_the_body(svc: Service, key: str) -> None:
    before = written(svc)
    body = assert_problem(svc.upload(images.jpeg(seed=903), headers={"Idempotency-Key": key}), 422, "invalid-request")
    assert [e["loc"] for e in body["errors"]] == [["header", "idempotency-key"]]
    assert written(svc) == before


# --------------------------------------------------------------------------------------------------
# Token names: bounded by their column, in the library call and on the command line
# --------------------------------------------------------------------------------------------------

REFUSED_NAMES = {
    f"{MAX_TOKEN_NAME + 1} characters": "n" * (MAX_TOKEN_NAME + 1),
    "only spaces": "   ",
    "a NUL": "cms\x00desk",
    "a line break": "cms\ndesk",
    "a bidi override": "cms \u202edesk",
}


@pytest.mark.parametrize("name", REFUSED_NAMES.values(), ids=list(REFUSED_NAMES))
def test_token_name_past_the_limit_is_refused(svc: Service, name: str) -> None:
    before = written(svc)
    with svc.session() as session:
        with pytest.raises(InputError):
            create_token(session, name, "newsroom")
        assert revoke_tokens(session, name) == 0  # no token has such a name
        session.commit()
    assert written(svc) == before


def test_token_name_at_the_limit_is_stored(svc: Service) -> None:
    name = "n" * MAX_TOKEN_NAME
    with svc.session() as session:
        create_token(session, f"  {name} ", "auditor")  # surrounding spaces are not part of the name
        session.commit()
    with svc.session() as session:
        assert revoke_tokens(session, name) == 1
        session.commit()
    (created,) = (e for e in svc.events("token_created") if e.subject == name)
    assert created.detail == {"role": "auditor"}


def test_a_stored_name_create_now_refuses_can_still_be_revoked(svc: Service) -> None:
    """Revoking must stay possible for a token an older version created (e.g. on SQLite, with a hidden character)."""
    legacy = "legacy \u202edesk"
    with svc.session() as session:
        session.add(Token(name=legacy, role="newsroom", secret_sha256="0" * 64))
        session.commit()
    with svc.session() as session:
        assert revoke_tokens(session, legacy) == 1
        session.commit()
    assert svc.events("token_revoked")[-1].subject == "legacy ⟨U+202E⟩desk"  # shown, not hidden, in the audit log


def test_cli_refuses_a_token_name_past_the_limit_with_exit_2(svc: Service, database: Database, root: Path) -> None:
    data = root / "var"
    where = ("--data-dir", str(data), "--keys-dir", str(root / "keys"))
    env = {**os.environ, **database.env(data)}
    before = written(svc)
    name = "n" * (MAX_TOKEN_NAME + 1)
    done = subprocess.run(
        [*CLI, "tokens", "create", "--role", "newsroom", "--name", name, *where],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    message = f"a token name is at most {MAX_TOKEN_NAME} characters (this one has {len(name)})"
    assert done.stderr == f"error: {message}\n"  # one line
    assert written(svc) == before
