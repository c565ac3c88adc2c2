"""HTTP hardening for the public internet (issue 9): bounded bodies, authentication before any body is read,
bounded path integers, bounded refusal auditing, links from configuration only, hidden characters shown
visibly, security headers on every HTML response, problem documents in the OpenAPI, ``Allow`` on 405, and
library errors mapped without operator hints.

Every case runs the real service (``running``) on a fresh data dir. Bodies that must not be read, or read
only up to a limit, are sent with :func:`~tests.service_support.stream`, which delivers them chunk by chunk
and counts what the service pulled.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import types
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provenance import (
    ConfigurationError,
    FileKeySigner,
    InputError,
    InputTooLargeError,
    KeyMaterialError,
    ManifestError,
    ProvenanceError,
    SigningError,
    Source,
    StampRequest,
    TrustConfig,
    UnsupportedMediaError,
    UpstreamConflictError,
    VerificationError,
    isolation,
    stamp,
)
from provenance.articles import MAX_PAYLOAD
from provenance.display import visible
from provenance.errors import InputTooComplexError, ParserBusyError, ParserUnavailableError
from provenance.keys import init_dev_keys
from provenance.softbinding import ALG
from service import problems
from service.app import MULTIPART_FRAMING, SMALL_BODY
from service.renditions.routes import MAX_WIDTH
from service.security import limits

from . import images
from .conftest import EXTERNAL
from .databases import Database
from .service_support import (
    PROBLEM_JSON,
    Service,
    Streamed,
    assert_problem,
    checkpoint_size,
    chunks_of,
    multipart,
    running,
    sample,
    service_settings,
    stream,
    wait_logged,
)

LIMIT = 200_000  # max_upload_bytes of the services here (bigger than the multipart framing allowance)
CHUNK = 16 * 1024
BAD_TOKEN = "Bearer pv_" + "A" * 43
ZERO_ASSET = "img_" + "0" * 24
# A title with every kind of hidden character: override, embedding pop, isolate, zero-width, BOM, mark.
HIDDEN_TITLE = "Storm \u202eruobrah eht revo\u202c \u2066calm\u2069\u200b seas\ufeff\u200f"
HIDDEN = "\u202e\u202c\u2066\u2069\u200b\ufeff\u200f"


def assert_streamed_problem(answer: Streamed, status: int, kind: str) -> dict[str, Any]:
    assert answer.status == status, answer.body
    assert answer.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = answer.json()
    assert (body["type"], body["status"]) == (f"/problems/{kind}", status)
    return body


CAMERA = b'{"source":"camera"}'


def upload_body(size: int) -> tuple[bytes, str]:
    """A multipart image upload whose file part is ``size`` bytes."""
    return multipart([("file", "big.jpg", b"\xff\xd8\xff" + b"\0" * size), ("declaration", None, CAMERA)])


def verify_body(size: int) -> tuple[bytes, str]:
    return multipart([("file", "big.jpg", b"\xff\xd8\xff" + b"\0" * size)])


@pytest.fixture
def small(database: Database, tmp_path: Path, keys_dir: Path) -> Iterator[Service]:
    with running(service_settings(tmp_path / "var", keys_dir, database, max_upload_bytes=LIMIT)) as svc:
        yield svc


@dataclass(frozen=True)
class Published:
    """A read-only service holding an AI image whose title hides characters, and an AI article."""

    svc: Service
    image: dict[str, Any]
    article: dict[str, Any]

    def content(self) -> bytes:
        return self.svc.client.get(f"/v1/assets/{self.image['id']}/content").content


@pytest.fixture(scope="module")
def published(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    root = tmp_path_factory.mktemp("hardening")
    init_dev_keys(root / "keys", "Hardening Newsroom")
    settings = service_settings(
        root / "var", root / "keys", database, rate_limit_per_minute=1_000_000, public_verify_per_minute=1_000_000
    )
    with running(settings) as svc:
        image = svc.upload(images.jpeg(seed=40), {"source": "ai_generated", "title": HIDDEN_TITLE})
        article = svc.post_article("ai-weather.json")
        assert (image.status_code, article.status_code) == (201, 201), (image.text, article.text)
        yield Published(svc, image.json(), article.json())


# --------------------------------------------------------------------------------------------------
# 1, 3. Bodies are bounded while they stream, chunked or not
# --------------------------------------------------------------------------------------------------

UPLOAD_LIMIT = LIMIT + MULTIPART_FRAMING
STREAMED_OVER: dict[str, tuple[str, str | None, Callable[[], tuple[bytes, str]], int, int]] = {
    "image upload": ("/v1/assets", "newsroom", lambda: upload_body(10 * LIMIT), UPLOAD_LIMIT, CHUNK),
    "API verification": ("/v1/verify", "auditor", lambda: verify_body(10 * LIMIT), UPLOAD_LIMIT, CHUNK),
    "verify page (public)": ("/verify", None, lambda: verify_body(10 * LIMIT), UPLOAD_LIMIT, CHUNK),
    "article payload": (
        "/v1/articles",
        "newsroom",
        lambda: (b'{"headline": "' + b"x" * (MAX_PAYLOAD + 2 * 1024 * 1024) + b'"}', "application/json"),
        MAX_PAYLOAD,
        256 * 1024,
    ),
}


@pytest.mark.parametrize(("path", "role", "make", "limit", "chunk"), STREAMED_OVER.values(), ids=list(STREAMED_OVER))
def test_chunked_body_over_the_limit_is_refused_at_the_limit(
    small: Service, path: str, role: str | None, make: Callable[[], tuple[bytes, str]], limit: int, chunk: int
) -> None:
    body, content_type = make()
    before = small.stored()
    answer = stream(small, "POST", path, chunks_of(body, chunk), {"content-type": content_type, **small.bearer(role)})
    assert_streamed_problem(answer, 413, "input-too-large")
    assert limit < answer.consumed <= limit + chunk  # read up to the limit, not one chunk more
    assert small.stored() == before
    assert 'provenance_rejections_total{reason="too_large"} 1.0' in small.client.get("/metrics").text


@pytest.mark.parametrize(("path", "role", "make", "limit", "chunk"), STREAMED_OVER.values(), ids=list(STREAMED_OVER))
def test_declared_length_over_the_limit_is_refused_before_reading(
    small: Service, path: str, role: str | None, make: Callable[[], tuple[bytes, str]], limit: int, chunk: int
) -> None:
    body, content_type = make()
    headers = {"content-type": content_type, "content-length": str(len(body)), **small.bearer(role)}
    answer = stream(small, "POST", path, chunks_of(body, chunk), headers)
    assert_streamed_problem(answer, 413, "input-too-large")
    assert answer.consumed == 0


def test_parts_each_under_the_limit_but_together_over_it_are_413(small: Service) -> None:
    # Each part passes the per-file limit; only counting the whole body as it streams catches the total.
    body, content_type = multipart(
        [("file", "a.jpg", b"\xff\xd8\xff" + b"\0" * (LIMIT - 3)), ("sidecar", "m.c2pa", b"\0" * LIMIT)]
    )
    headers = {"content-type": content_type, **small.bearer("auditor")}
    answer = stream(small, "POST", "/v1/verify", chunks_of(body, CHUNK), headers)
    assert_streamed_problem(answer, 413, "input-too-large")
    assert answer.consumed <= UPLOAD_LIMIT + CHUNK


def test_body_longer_than_its_content_length_is_refused(small: Service) -> None:
    # uvicorn enforces Content-Length framing itself; the guard holds even where a server does not.
    payload = sample("council-human.json")
    headers = {"content-type": "application/json", "content-length": "16", **small.bearer("newsroom")}
    answer = stream(small, "POST", "/v1/articles", chunks_of(payload, 64), headers)
    assert_streamed_problem(answer, 400, "bad-request")
    assert answer.consumed <= 64
    assert small.stored()[:2] == (0, 0)


@pytest.mark.parametrize("path", ["/healthz", f"/v1/assets/{ZERO_ASSET}", "/demo", "/v1/nowhere"])
def test_other_routes_take_only_a_small_body(small: Service, path: str) -> None:
    over = stream(small, "POST", path, iter([b"x" * (SMALL_BODY + 1)]), {"content-length": str(SMALL_BODY + 1)})
    assert_streamed_problem(over, 413, "input-too-large")
    assert over.consumed == 0
    under = stream(small, "POST", path, iter([b"x" * 100]), {"content-length": "100"})
    assert under.status in (404, 405)  # refused by routing, not by size


def test_article_payload_at_the_limit_is_read_and_parsed(small: Service) -> None:
    payload = json.loads(sample("council-human.json"))
    payload["body_text"] = "word " * 10
    raw = json.dumps(payload).encode()
    padded = raw[:-1] + b" " * (MAX_PAYLOAD - len(raw)) + b"}"  # exactly MAX_PAYLOAD bytes of valid JSON
    assert len(padded) == MAX_PAYLOAD
    answer = stream(
        small, "POST", "/v1/articles", chunks_of(padded, 256 * 1024),
        {"content-type": "application/json", **small.bearer("newsroom")},
    )  # fmt: skip
    assert answer.status == 201, answer.body


# --------------------------------------------------------------------------------------------------
# 2. Authentication and role are checked before the body is read
# --------------------------------------------------------------------------------------------------

REFUSED_UNREAD: dict[str, tuple[str, Callable[[Service], dict[str, str]], int, str]] = {
    "anonymous image upload": ("/v1/assets", lambda s: {}, 401, "unauthorized"),
    "image upload with a bad token": ("/v1/assets", lambda s: {"Authorization": BAD_TOKEN}, 401, "unauthorized"),
    "image upload with an auditor token": ("/v1/assets", lambda s: s.bearer("auditor"), 403, "forbidden"),
    "anonymous verification": ("/v1/verify", lambda s: {}, 401, "unauthorized"),
    "verification with a newsroom token": ("/v1/verify", lambda s: s.bearer("newsroom"), 403, "forbidden"),
    "anonymous article": ("/v1/articles", lambda s: {}, 401, "unauthorized"),
    "article with an auditor token": ("/v1/articles", lambda s: s.bearer("auditor"), 403, "forbidden"),
}


@pytest.mark.parametrize(("path", "credentials", "status", "kind"), REFUSED_UNREAD.values(), ids=list(REFUSED_UNREAD))
def test_refused_callers_are_answered_without_reading_the_body(
    small: Service, path: str, credentials: Callable[[Service], dict[str, str]], status: int, kind: str
) -> None:
    body, content_type = upload_body(10 * LIMIT)  # larger than the limit: a 413 would mean it was read
    answer = stream(small, "POST", path, chunks_of(body, CHUNK), {"content-type": content_type, **credentials(small)})
    assert_streamed_problem(answer, status, kind)
    assert answer.consumed == 0


def test_rate_limited_verify_page_does_not_read_the_body(database: Database, tmp_path: Path, keys_dir: Path) -> None:
    with running(service_settings(tmp_path / "var", keys_dir, database, public_verify_per_minute=1)) as svc:
        assert svc.client.post("/verify", files={"file": ("a.jpg", images.jpeg(seed=42))}).status_code == 200
        body, content_type = verify_body(1024 * 1024)
        answer = stream(svc, "POST", "/verify", chunks_of(body, CHUNK), {"content-type": content_type})
        assert answer.status == 429
        assert answer.consumed == 0


UPLOAD_FORMS: dict[str, tuple[list[tuple[str, str | None, bytes]], int, str]] = {
    "file part missing": ([("declaration", None, CAMERA)], 422, "invalid-request"),
    "declaration missing": ([("file", "a.jpg", b"x")], 422, "invalid-request"),
    "file given twice": (
        [("file", "a.jpg", b"x"), ("file", "b.jpg", b"y"), ("declaration", None, CAMERA)],
        422,
        "invalid-request",
    ),
    "file sent as a text field": ([("file", None, b"x"), ("declaration", None, CAMERA)], 400, "bad-request"),
    "unexpected extra parts": (
        [("file", "a.jpg", b"x"), ("declaration", None, CAMERA), ("extra", "c.jpg", b"z"), ("more", "d.jpg", b"w")],
        400,
        "bad-request",
    ),
    "declaration not UTF-8": (
        [("file", "a.jpg", b"x"), ("declaration", "d.json", b"\xff\xfe")],
        422,
        "invalid-request",
    ),
}


@pytest.mark.parametrize(("parts", "status", "kind"), UPLOAD_FORMS.values(), ids=list(UPLOAD_FORMS))
def test_upload_forms_are_read_with_bounds(
    small: Service, parts: list[tuple[str, str | None, bytes]], status: int, kind: str
) -> None:
    body, content_type = multipart(parts)
    headers = {"Content-Type": content_type, **small.bearer("newsroom")}
    assert_problem(small.client.post("/v1/assets", content=body, headers=headers), status, kind)
    assert small.stored()[:2] == (0, 0)


def test_declaration_may_come_as_a_file_part(small: Service) -> None:
    files = {"file": ("a.jpg", images.jpeg(seed=43)), "declaration": ("d.json", b'{"source":"camera"}')}
    response = small.client.post("/v1/assets", files=files, headers=small.bearer("newsroom"))
    assert response.status_code == 201, response.text


# --------------------------------------------------------------------------------------------------
# 4. Integers beyond range in a path are 404/422, never 500
# --------------------------------------------------------------------------------------------------

VERSIONS = {
    "2**63 (SQLite's integer overflows)": "9223372036854775808",
    "2**31 (beyond the 32-bit column)": "2147483648",
    "forty digits": "1" + "0" * 40,
    "zero": "0",
    "negative": "-1",
    "negative 2**63": "-9223372036854775809",
}
VERSION_ROUTES: dict[str, tuple[str, str | None]] = {
    "canonical text": ("/v1/articles/{id}/v{n}.txt", None),
    "detached manifest": ("/v1/articles/{id}/v{n}.c2pa", None),
    "report": ("/v1/articles/{id}/v{n}/report", "auditor"),
}


@pytest.fixture(scope="module")
def tolerant(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, str]]:
    """A service holding one article (and its id), whose client shows a server error as a 500 answer."""
    root = tmp_path_factory.mktemp("tolerant")
    init_dev_keys(root / "keys", "Tolerant Newsroom")
    with running(service_settings(root / "var", root / "keys", database), raise_server_exceptions=False) as svc:
        article = svc.post_article("ai-weather.json")
        assert article.status_code == 201
        yield svc, article.json()["id"]


@pytest.mark.parametrize(("template", "role"), VERSION_ROUTES.values(), ids=list(VERSION_ROUTES))
@pytest.mark.parametrize("version", VERSIONS.values(), ids=list(VERSIONS))
def test_out_of_range_versions_are_422_not_500(
    tolerant: tuple[Service, str], template: str, role: str | None, version: str
) -> None:
    svc, article_id = tolerant
    response = svc.client.get(template.format(id=article_id, n=version), headers=svc.bearer(role))
    assert_problem(response, 422, "invalid-request")


@pytest.mark.parametrize(("template", "role"), VERSION_ROUTES.values(), ids=list(VERSION_ROUTES))
def test_largest_version_is_a_plain_404(tolerant: tuple[Service, str], template: str, role: str | None) -> None:
    svc, article_id = tolerant
    response = svc.client.get(template.format(id=article_id, n=2**31 - 1), headers=svc.bearer(role))
    assert_problem(response, 404, "not-found")


def test_every_integer_path_parameter_is_bounded(published: Published) -> None:
    spec = published.svc.client.get("/openapi.json").json()
    integers = [
        (path, parameter["name"], parameter["schema"])
        for path, operations in spec["paths"].items()
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path" and parameter["schema"].get("type") == "integer"
    ]
    assert len(integers) == 5  # versions of .txt, .c2pa, report, report-link; a rendition's width
    for path, name, schema in integers:
        bounds = (1, MAX_WIDTH) if name == "width" else (1, 2**31 - 1)
        assert (schema.get("minimum"), schema.get("maximum")) == bounds, (path, name)


# --------------------------------------------------------------------------------------------------
# 5. Refused requests cannot grow the audit log without bound
# --------------------------------------------------------------------------------------------------


def test_refusals_beyond_the_quota_become_one_summary_row(database: Database, tmp_path: Path, keys_dir: Path) -> None:
    with running(service_settings(tmp_path / "var", keys_dir, database, audit_refusals_per_minute=20)) as svc:
        for _ in range(200):
            response = svc.client.get(f"/v1/assets/{ZERO_ASSET}/report", headers={"Authorization": BAD_TOKEN})
            assert response.status_code == 401
        assert len(svc.events("auth_failure")) == 20
        assert 'provenance_rejections_total{reason="bad_token"} 200.0' in svc.client.get("/metrics").text  # exact
    # Shutdown wrote the summary of the window still open.
    rows, summaries = svc.events("auth_failure"), svc.events("auth_failures_suppressed")
    assert len(rows) + len(summaries) == 21
    (summary,) = summaries
    assert summary.detail["count"] == 180
    assert summary.detail["by_reason"] == {"bad token": 180}
    assert summary.detail["written"] == 20
    assert len(rows) + summary.detail["count"] == 200
    start, end = (dt.datetime.fromisoformat(summary.detail[k]) for k in ("window_start", "window_end"))
    assert start <= end <= start + dt.timedelta(seconds=60)


def test_summary_is_written_when_the_window_rolls_over(
    database: Database, tmp_path: Path, keys_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(limits, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    with running(service_settings(tmp_path / "var", keys_dir, database, audit_refusals_per_minute=5)) as svc:
        report = f"/v1/assets/{ZERO_ASSET}/report"
        for _ in range(4):
            svc.client.get(report)  # missing token
        for _ in range(6):
            svc.client.get(report, headers=svc.bearer("newsroom"))  # wrong role
        assert (len(svc.events("auth_failure")), svc.events("auth_failures_suppressed")) == (5, [])
        now[0] += 59.0
        svc.client.get(report)  # same window: counted only
        assert len(svc.events("auth_failure")) == 5
        now[0] += 2.0
        svc.client.get(report)  # a new window: the last one's summary, then this refusal's own row
        (summary,) = svc.events("auth_failures_suppressed")
        assert summary.detail["count"] == 6
        assert summary.detail["by_reason"] == {"missing token": 1, "wrong role": 5}
        assert len(svc.events("auth_failure")) == 6
    assert len(svc.events("auth_failures_suppressed")) == 1  # nothing was suppressed in the new window


# --------------------------------------------------------------------------------------------------
# 6. Links come from the configured public base URL, never from the Host header
# --------------------------------------------------------------------------------------------------

FORGED = {"Host": "attacker.example"}


def test_links_use_the_public_base_url_whatever_the_host_header(
    database: Database, tmp_path: Path, keys_dir: Path
) -> None:
    base = "https://provenance.example.org"
    with running(service_settings(tmp_path / "var", keys_dir, database, public_base_url=base + "/")) as svc:
        created = svc.upload(images.jpeg(seed=44), headers=FORGED)
        assert created.status_code == 201, created.text
        asset = created.json()
        assert created.headers["location"] == f"{base}/v1/assets/{asset['id']}"
        assert asset["links"]["badge_svg"] == f"{base}/v1/badges/{asset['id']}.svg"
        assert all(link.startswith(f"{base}/v1/") for link in asset["links"].values())
        again = svc.client.get(f"/v1/assets/{asset['id']}", headers=FORGED).json()
        assert again["links"] == asset["links"]
        article = svc.client.post(
            "/v1/articles", content=sample("ai-weather.json"), headers={**FORGED, **svc.bearer("newsroom")}
        ).json()
        assert article["links"]["text"] == f"{base}/v1/articles/{article['id']}/v1.txt"
        assert all(link.startswith(f"{base}/v1/") for link in article["links"].values())


def test_without_a_public_base_url_links_are_absolute_paths(database: Database, tmp_path: Path, keys_dir: Path) -> None:
    with running(service_settings(tmp_path / "var", keys_dir, database)) as svc:
        created = svc.upload(images.jpeg(seed=45), headers=FORGED)
        article = svc.client.post(
            "/v1/articles", content=sample("ai-weather.json"), headers={**FORGED, **svc.bearer("newsroom")}
        )
        for response in (created, article):
            assert response.status_code == 201, response.text
            assert "attacker" not in response.text
            assert all(link.startswith("/v1/") for link in response.json()["links"].values())
        assert created.headers["location"] == f"/v1/assets/{created.json()['id']}"


# --------------------------------------------------------------------------------------------------
# 7. Hidden characters from manifests are shown, never rendered
# --------------------------------------------------------------------------------------------------

VISIBLE: dict[str, tuple[str, str]] = {
    "right-to-left override": ("a\u202eb", "a⟨U+202E⟩b"),
    "embeddings and pop": ("\u202a\u202b\u202cx\u202d", "⟨U+202A⟩⟨U+202B⟩⟨U+202C⟩x⟨U+202D⟩"),
    "isolates": ("\u2066\u2067\u2068x\u2069", "⟨U+2066⟩⟨U+2067⟩⟨U+2068⟩x⟨U+2069⟩"),
    "marks": ("\u200e\u200f\u061c", "⟨U+200E⟩⟨U+200F⟩⟨U+061C⟩"),
    "zero-width characters and BOM": ("\u200b\u200c\u200d\u2060\ufeff", "⟨U+200B⟩⟨U+200C⟩⟨U+200D⟩⟨U+2060⟩⟨U+FEFF⟩"),
    "C0 and C1 controls, DEL": ("\x00\x1b[31m\x7f\x85\x9b", "⟨U+0000⟩⟨U+001B⟩[31m⟨U+007F⟩⟨U+0085⟩⟨U+009B⟩"),
    "carriage return": ("a\rb", "a⟨U+000D⟩b"),
    "line and paragraph separators": ("a\u2028b\u2029", "a⟨U+2028⟩b⟨U+2029⟩"),
    "soft hyphen and tag characters": ("co\xadop\U000e0041", "co⟨U+00AD⟩op⟨U+E0041⟩"),
    "lone surrogate": ("\ud800", "⟨U+D800⟩"),
    "Hangul filler": ("\u3164", "⟨U+3164⟩"),
    "plain English": ("Storm over the harbour", "Storm over the harbour"),
    "Chinese label": ("AI 生成的图像", "AI 生成的图像"),
    "accents, Arabic, emoji": ("café مرحبا 😀", "café مرحبا 😀"),
    "tab and newline kept": ("a\tb\nc", "a\tb\nc"),
}


@pytest.mark.parametrize(("text", "shown"), VISIBLE.values(), ids=list(VISIBLE))
def test_visible_names_hidden_characters(text: str, shown: str) -> None:
    assert visible(text) == shown


@given(st.text())
def test_visible_leaves_no_hidden_character_and_is_idempotent(text: str) -> None:
    shown = visible(text)
    assert all(ch in "\t\n" or unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Zl", "Zp"} for ch in shown)
    assert visible(shown) == shown
    assert re.sub(r"⟨U\+([0-9A-F]{4,6})⟩", lambda m: chr(int(m.group(1), 16)), shown) == text or "⟨" in text


def _assert_shown_not_rendered(html: str) -> None:
    assert "⟨U+202E⟩ruobrah eht revo⟨U+202C⟩" in html
    assert "⟨U+2066⟩calm⟨U+2069⟩⟨U+200B⟩ seas⟨U+FEFF⟩⟨U+200F⟩" in html
    assert not any(ch in html for ch in HIDDEN)


def test_verify_page_shows_hidden_title_characters(published: Published) -> None:
    response = published.svc.client.post("/verify", files={"file": ("a.jpg", published.content())})
    assert response.status_code == 200, response.text
    _assert_shown_not_rendered(response.text)


def test_html_report_shows_hidden_title_characters(published: Published) -> None:
    svc = published.svc
    response = svc.client.get(
        published.image["links"]["report"], headers={**svc.bearer("auditor"), "Accept": "text/html"}
    )
    assert response.status_code == 200
    _assert_shown_not_rendered(response.text)


def test_json_report_keeps_the_title_as_signed(published: Published) -> None:
    svc = published.svc
    report = svc.client.get(published.image["links"]["report"], headers=svc.bearer("auditor")).json()
    assert report["verification"]["title"] == HIDDEN_TITLE  # data stays data; only displays neutralise it


def test_demo_page_shows_hidden_caption_characters(published: Published) -> None:
    response = published.svc.client.get("/demo", params={"lang": "en", "image": published.image["id"]})
    assert response.status_code == 200
    _assert_shown_not_rendered(response.text)


# --------------------------------------------------------------------------------------------------
# 8. Every HTML response carries a Content-Security-Policy and nosniff; downloads are sandboxed
# --------------------------------------------------------------------------------------------------

EXPECTED_HTML = {
    "/demo",
    "/verify",
    "/docs",
    "/v1/assets/{asset_id}/report",
    "/v1/articles/{article_id}/v{version}/report",
    "/verify/{ref}",
    "/signin",
}


def _assert_secured(name: str, headers: Any) -> None:
    assert headers.get("content-security-policy", "").startswith("default-src 'none'"), name
    assert headers.get("x-content-type-options") == "nosniff", name


def test_every_html_route_has_a_csp_and_nosniff(published: Published, spec: dict[str, Any]) -> None:
    svc = published.svc
    # Every documented GET path (badge paths included) and every route of the app itself (/docs, its files).
    paths = {path for path, operations in spec["paths"].items() if "get" in operations}
    paths |= {route.path for route in svc.app.api.routes if "GET" in (getattr(route, "methods", None) or ())}
    verified = svc.client.get(published.image["links"]["report"], headers=svc.bearer("auditor")).json()["verification"]
    values = {
        "asset_id": published.image["id"],
        "article_id": published.article["id"],
        "version": "1",
        "ref": published.image["id"],
        "name": "swagger-init.js",
        "width": "150",
        "fmt": "jpg",
        "manifest_id": verified["active_manifest"],
    }
    wait_logged(svc.client.get, 2)  # the image and the article; the tile holding them is a partial one
    logged = checkpoint_size(svc.client.get)
    values["path"] = f"0/000.p/{logged}"
    # The query parameters any documented GET needs (each route ignores the others').
    params = {"refs": published.image["id"], "from": "2000-01-01T00:00Z", "to": "2100-01-01T00:00Z"}
    params.update(alg=ALG, value=verified["soft_bindings"][0]["code"])
    own_params = {"/log/proof/inclusion": {"index": "0"}, "/log/proof/consistency": {"from": "1", "to": str(logged)}}
    html: dict[str, Any] = {}
    for path in sorted(paths):
        response = svc.client.get(
            path.format(**values),
            params=own_params.get(path, params),
            headers={**svc.bearer("admin"), "Accept": "text/html"},
        )
        assert response.status_code == 200, (path, response.text)
        if response.headers["content-type"].startswith("text/html"):
            html[path] = response.headers
    assert set(html) >= {*EXPECTED_HTML, "/v1/badges/{ref}.html"}
    html["verify page error"] = svc.client.post("/verify", files={"file": ("x", b"garbage")}).headers
    for name, headers in html.items():
        _assert_secured(name, headers)


def test_rate_limited_verify_page_is_secured(database: Database, tmp_path: Path, keys_dir: Path) -> None:
    with running(service_settings(tmp_path / "var", keys_dir, database, public_verify_per_minute=1)) as svc:
        files = {"file": ("a.jpg", images.jpeg(seed=46))}
        assert svc.client.post("/verify", files=files).status_code == 200
        limited = svc.client.post("/verify", files=files)
        assert limited.status_code == 429
        _assert_secured("429 page", limited.headers)


def test_docs_run_no_inline_script_and_nothing_from_another_origin(published: Published) -> None:
    response = published.svc.client.get("/docs")
    directives = [d.split() for d in response.headers["content-security-policy"].split(";")]
    policy = {d[0]: d[1:] for d in directives if d}
    assert policy["script-src"] == ["'self'"]
    assert re.findall(r"<script[^>]*>\s*[^<\s]", response.text) == []  # every script has a src, none inline
    assert policy["connect-src"] == ["'self'"]
    assert (policy["frame-ancestors"], policy["base-uri"]) == (["'none'"], ["'none'"])
    assert "/openapi.json" in response.text
    # ReDoc always loads its logo from a CDN: /redoc leads to the offline Swagger UI instead.
    assert published.svc.client.get("/redoc", follow_redirects=False).headers["location"] == "/docs"


def test_downloads_are_never_run_as_documents(published: Published) -> None:
    svc, image, article = published.svc, published.image, published.article
    links = (
        image["links"]["content"],
        image["links"]["manifest"],
        article["links"]["text"],
        article["links"]["manifest"],
    )
    for path in links:
        response = svc.client.get(path)
        assert response.status_code == 200
        assert response.headers["content-security-policy"] == "default-src 'none'; sandbox", path
        assert response.headers["x-content-type-options"] == "nosniff"


# --------------------------------------------------------------------------------------------------
# 9. The OpenAPI documents problem answers
# --------------------------------------------------------------------------------------------------

DOCUMENTED: dict[str, tuple[str, str, set[int]]] = {
    "image upload": ("/v1/assets", "post", {400, 401, 403, 408, 409, 413, 415, 422, 429, 500, 503, 507}),
    "article": ("/v1/articles", "post", {401, 403, 408, 409, 413, 422, 429, 500, 503, 507}),
    "API verification": ("/v1/verify", "post", {400, 401, 403, 408, 413, 415, 422, 429, 500}),
    "asset report": ("/v1/assets/{asset_id}/report", "get", {401, 403, 404, 422, 429}),
    "article text": ("/v1/articles/{article_id}/v{version}.txt", "get", {404, 422}),
    "asset": ("/v1/assets/{asset_id}", "get", {404}),
    "readiness": ("/readyz", "get", {503}),
    "SVG badge": ("/v1/badges/{ref}.svg", "get", {400, 404}),
    "badge batch": ("/v1/badges", "get", {400}),
}


@pytest.fixture(scope="module")
def spec(published: Published) -> dict[str, Any]:
    document: dict[str, Any] = published.svc.client.get("/openapi.json").json()
    return document


@pytest.mark.parametrize(("path", "method", "statuses"), DOCUMENTED.values(), ids=list(DOCUMENTED))
def test_openapi_documents_problem_answers(spec: dict[str, Any], path: str, method: str, statuses: set[int]) -> None:
    responses = spec["paths"][path][method]["responses"]
    assert {int(s) for s in responses if s.startswith(("4", "5"))} >= statuses
    for status in statuses:
        content = responses[str(status)]["content"]
        assert list(content) == [PROBLEM_JSON], (path, status)
        assert content[PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/ProblemDetails"}


def test_openapi_has_no_fastapi_validation_schema_and_every_error_is_a_problem(spec: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in json.dumps(spec)
    problem = spec["components"]["schemas"]["ProblemDetails"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert "errors" in problem["properties"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")) and "content" in response:
                    assert list(response["content"]) == [PROBLEM_JSON], (method, path, status)


@pytest.mark.parametrize(
    ("path", "parts"), [("/v1/assets", {"file", "declaration"}), ("/v1/verify", {"file", "sidecar"})]
)
def test_openapi_still_documents_the_upload_forms(spec: dict[str, Any], path: str, parts: set[str]) -> None:
    form = spec["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(form["properties"]) == parts
    assert form["properties"]["file"]["contentMediaType"] == "application/octet-stream"
    assert "file" in form["required"]


# --------------------------------------------------------------------------------------------------
# 10. 405 answers carry Allow
# --------------------------------------------------------------------------------------------------


def test_405_from_the_api_carries_allow(published: Published) -> None:
    response = published.svc.client.post("/healthz")
    assert_problem(response, 405, "method-not-allowed")
    assert "GET" in {m.strip() for m in response.headers["allow"].split(",")}


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", [f"/v1/badges/{ZERO_ASSET}.svg", "/v1/badges/x.svg", "/v1/badges"])
def test_405_from_the_badge_app_carries_allow(published: Published, method: str, path: str) -> None:
    response = published.svc.client.request(method, path, content=b"ignored")
    assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "GET, HEAD"


# --------------------------------------------------------------------------------------------------
# 11. Library errors map by class; 5xx problems carry no operator hints
# --------------------------------------------------------------------------------------------------

LIBRARY: dict[str, tuple[ProvenanceError, int, str]] = {
    "too complex to parse": (InputTooComplexError("parsing ran past its deadline"), 422, "input-too-complex"),
    "too large": (InputTooLargeError("over 256 MiB"), 413, "input-too-large"),
    "unsupported": (UnsupportedMediaError("not an image"), 415, "unsupported-media"),
    "bad input": (InputError("truncated JPEG"), 422, "input-error"),
    "malformed manifest": (ManifestError("bad JUMBF box"), 422, "manifest-error"),
    "upstream conflict": (UpstreamConflictError("upstream says AI"), 409, "upstream-conflict"),
    "signing failure": (
        SigningError("COSE signature invalid", hint="check that the key matches the certificate"),
        500,
        "signing-error",
    ),
    "missing key": (KeyMaterialError("cannot read /srv/keys/signer.key", hint="run `provenance keys init`"), 500,
                    "key-material-error"),
    "our result did not verify": (VerificationError("stamped file is untrusted"), 500, "verification-error"),
    "the operator's configuration": (ConfigurationError("the C2PA SDK rejected the trust configuration"), 500,
                                      "configuration-error"),
    "every parser busy": (ParserBusyError("every parsing worker stayed busy for 30 s"), 503, "parser-busy"),
    "parser cannot start": (ParserUnavailableError("a parsing worker exited while starting"), 503,
                            "parser-unavailable"),
}  # fmt: skip


@pytest.mark.parametrize(("error", "status", "kind"), LIBRARY.values(), ids=list(LIBRARY))
def test_library_errors_map_by_class(error: ProvenanceError, status: int, kind: str) -> None:
    problem = problems.from_library(error)
    assert (problem.status, problem.kind) == (status, kind)
    if status >= 500:
        assert error.message not in problem.detail
        assert not error.hint or error.hint not in problem.detail
    else:
        assert problem.detail == error.diagnostics()


def test_busy_parsers_tell_the_client_when_to_retry() -> None:
    problem = problems.from_library(ParserBusyError("every parsing worker stayed busy for 30 s"))
    assert problem.status == 503
    assert int(problem.headers["Retry-After"]) > 0


def test_input_too_complex_has_its_own_title() -> None:
    problem = problems.from_library(InputTooComplexError("the parser hit its memory cap"))
    assert (problem.status, problem.kind, problem.title) == (422, "input-too-complex", "Input too complex")


def heif_whose_item_table_lies() -> bytes:
    """A HEIF image the structural check and the SDK's reader accept, but the SDK's writer cannot sign:
    its item-location box claims three items and holds one (found by mutating ``images.heif()``)."""
    data = bytearray(images.heif())
    count = data.index(b"iloc") + 11  # low byte of item_count, after version, flags and the size fields
    assert data[count] == 1
    data[count] = 3
    return bytes(data)


def test_an_upload_the_sdk_cannot_sign_is_bad_input_not_a_key_problem(
    trust: TrustConfig, signer: FileKeySigner, small: Service
) -> None:
    data = heif_whose_item_table_lies()
    with pytest.raises(InputError, match="could not be signed") as raised:
        stamp(data, StampRequest(Source.CAMERA), signer, trust)
    assert not isinstance(raised.value, SigningError)
    assert "key" not in raised.value.diagnostics()
    body = assert_problem(small.upload(data, {"source": "camera"}), 422, "input-error")
    assert "key" not in body["detail"]


def test_the_verify_page_reads_a_file_once_for_its_verdict_and_every_thumbnail(published: Published) -> None:
    data = (EXTERNAL / "c2pa-rs" / "CACA.jpg").read_bytes()  # two ingredients, each with a thumbnail
    before = isolation.stats().calls
    response = published.svc.client.post("/verify", files={"file": ("CACA.jpg", data, "image/jpeg")})
    assert response.status_code == 200, response.text
    assert response.text.count('<img class="thumbnail" src="data:image/jpeg;base64,') == 2
    assert isolation.stats().calls - before == 1  # one SDK read in one worker call, thumbnails included


def test_a_broken_timestamp_authority_url_is_the_operators_error_not_the_clients() -> None:
    from provenance.timestamps import Timestamping

    with pytest.raises(ConfigurationError, match="timestamp authority URL") as raised:
        Timestamping("ftp://tsa.example.org/")
    assert not isinstance(raised.value, InputError)
    assert problems.from_library(raised.value).status == 500
