"""API ergonomics: the bearer scheme in the OpenAPI, validation errors that name the field and the allowed
values, refusals that never name a command-line flag, ``override_upstream`` on article corrections, and
optional payload fields that can be left out (the README's own tables of fields)."""

from __future__ import annotations

import ast
import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provenance.articles import ArticleSource
from provenance.assertions import UPSTREAM_OVERRIDE
from provenance.models import State
from provenance.stamp import Source
from service import problems
from service.ingest.schemas import Declaration
from tests import images
from tests.databases import Database
from tests.service_support import Service, assert_problem, running, sample, service_settings

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
NO_ID = "0" * 24
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")


@pytest.fixture(scope="module")
def svc(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    from provenance.keys import init_dev_keys

    root = tmp_path_factory.mktemp("ergonomics")
    init_dev_keys(root / "keys", "Ergonomics Newsroom")
    with running(service_settings(root / "var", root / "keys", database)) as service:
        yield service


def article(external_id: str, version: int = 1, **fields: Any) -> bytes:
    """A valid article payload (the AI weather sample) under ``external_id``, with ``fields`` changed
    (a field set to ``None`` is left out)."""
    doc = json.loads(sample("ai-weather.json"))
    doc.update(external_id=external_id, version=version, **fields)
    return json.dumps({k: v for k, v in doc.items() if v is not None}).encode()


# --- OpenAPI: the bearer scheme -------------------------------------------------------------------------

PATH_VALUES = {
    "asset_id": f"img_{NO_ID}",
    "article_id": f"art_{NO_ID}",
    "version": "1",
    "ref": f"sha256-{'0' * 64}",
    "width": "300",
    "fmt": "jpg",
    "manifest_id": "urn:c2pa:00000000-0000-0000-0000-000000000000",
    "path": "0/000",
}


def test_openapi_applies_the_bearer_scheme_to_exactly_the_operations_that_need_a_token(svc: Service) -> None:
    document = svc.client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["bearer"]["type"] == "http"
    assert schemes["bearer"]["scheme"] == "bearer"
    assert "security" not in document  # public unless an operation says otherwise
    protected, public = set(), set()
    for path, operations in document["paths"].items():
        url = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m[1]], path)
        for method, operation in operations.items():
            names = [p["name"].lower() for p in operation.get("parameters", [])]
            assert "authorization" not in names, (method, path)  # the scheme says it, not a header field
            # Without a token: 401 for every protected operation, never for a public one.
            answer = svc.client.request(method.upper(), url)
            needs_token = answer.status_code == 401
            (protected if needs_token else public).add((method.upper(), path))
            if needs_token:
                assert operation.get("security") == [{"bearer": []}], (method, path)
            elif path == "/metrics":  # the operator's metrics token, needed only when one is configured
                assert operation["security"] == [{}, {"metrics_token": []}]
            else:
                assert "security" not in operation, (method, path, answer)
            if needs_token:
                assert answer.headers["www-authenticate"] == "Bearer"
    assert {("POST", "/v1/assets"), ("POST", "/v1/articles"), ("POST", "/v1/verify")} <= protected
    assert {("GET", "/v1/badges/{ref}.svg"), ("GET", "/v1/assets/{asset_id}"), ("GET", "/healthz")} <= public


# --- validation errors name the field and the allowed values ------------------------------------------


def test_a_bad_source_in_a_declaration_names_the_field_and_the_allowed_values(svc: Service) -> None:
    body = assert_problem(svc.upload(images.jpeg(seed=601), {"source": "robot"}), 422, "invalid-declaration")
    allowed = [s.value for s in Source]
    assert body["errors"] == [{"loc": ["declaration", "source"], "msg": body["errors"][0]["msg"], "allowed": allowed}]
    assert body["detail"].startswith("declaration field 'source': ")
    assert all(value in body["detail"] for value in allowed)
    assert "robot" not in json.dumps(body)  # the client's value is not echoed


DECLARATION_MISMATCHES = {
    "source missing": ({"title": "x"}, ["declaration", "source"], "Field required", None),
    "unknown field": (
        {"source": "camera", "caption": "x"},
        ["declaration", "caption"],
        "Extra inputs are not permitted",
        list(Declaration.model_fields),
    ),
    "title not text": ({"source": "camera", "title": 7}, ["declaration", "title"], "valid string", None),
    "a list, not an object": (["camera"], ["declaration"], "valid dictionary", None),
}


@pytest.mark.parametrize("case", DECLARATION_MISMATCHES)
def test_declaration_mismatches_are_named(svc: Service, case: str) -> None:
    declaration, loc, msg, allowed = DECLARATION_MISMATCHES[case]
    response = svc.upload(images.jpeg(seed=602), json.dumps(declaration))
    body = assert_problem(response, 422, "invalid-declaration")
    [error] = body["errors"]
    assert error["loc"] == loc
    assert msg in error["msg"]
    assert error.get("allowed") == allowed
    assert str(loc[-1]) in body["detail"]


def test_many_mismatches_are_bounded_and_counted(svc: Service) -> None:
    declaration = {"source": "camera", **{f"extra_{i}": i for i in range(500)}}
    body = assert_problem(svc.upload(images.jpeg(seed=603), declaration), 422, "invalid-declaration")
    assert len(body["errors"]) == problems.MAX_FIELD_ERRORS
    assert body["detail"].endswith("; and 497 more")


ARTICLE_ENUMS = {
    "source": {"source": "robot"},
    "edit_source": {"edit_source": "robot"},
}


@pytest.mark.parametrize("field", ARTICLE_ENUMS)
def test_a_bad_enum_in_an_article_payload_names_the_field_and_the_allowed_values(svc: Service, field: str) -> None:
    body = assert_problem(svc.post_article(article(f"enum/{field}", **ARTICLE_ENUMS[field])), 422, "input-error")
    assert f"'{field}'" in body["detail"]
    assert all(s.value in body["detail"] for s in ArticleSource)


def test_bad_query_and_path_parameters_name_the_parameter_and_the_allowed_values(svc: Service) -> None:
    auditor = svc.bearer("auditor")
    body = assert_problem(svc.client.get("/v1/assets?state=bogus", headers=auditor), 422, "invalid-request")
    [error] = body["errors"]
    assert error["loc"] == ["query", "state"]
    assert error["allowed"] == [s.value for s in State]
    assert body["detail"].startswith("query parameter 'state': ")
    assert all(s.value in body["detail"] for s in State)

    body = assert_problem(svc.client.get("/v1/assets?limit=0", headers=auditor), 422, "invalid-request")
    assert [e["loc"] for e in body["errors"]] == [["query", "limit"]]
    assert "query parameter 'limit': Input should be greater than or equal to 1" in body["detail"]

    body = assert_problem(svc.client.get(f"/v1/articles/art_{NO_ID}/v0.txt"), 422, "invalid-request")
    assert [e["loc"] for e in body["errors"]] == [["path", "version"]]
    assert body["detail"].startswith("path parameter 'version': ")

    # Badges are answered in front of FastAPI, with the same wording.
    body = assert_problem(svc.client.get(f"/v1/badges/img_{NO_ID}.svg?lang=fr"), 400, "bad-request")
    assert "lang" in body["detail"]
    assert "en" in body["detail"]
    assert "zh-Hans" in body["detail"]


# --- no refusal names a command-line flag --------------------------------------------------------------


def _flags_in(root: Path) -> set[str]:
    """Every ``--flag`` written in a string of the library's or the service's source."""
    found: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                found.update(FLAG.findall(node.value))
    return found


def test_no_library_error_answered_to_a_client_names_a_flag() -> None:
    flags = _flags_in(ROOT / "provenance") | _flags_in(ROOT / "service")
    assert {"--override-upstream", "--sidecar", "--force"} <= flags  # the sweep sees the library's hints
    for cls, status, _title in problems._LIBRARY:
        for flag in sorted(flags):
            for exc in (cls("it failed", hint=f"pass {flag} VALUE"), cls(f"it failed without {flag}")):
                problem = problems.from_library(exc)
                assert problem.status == status
                assert not FLAG.search(problem.detail), (cls.__name__, flag, problem.detail)
                assert not FLAG.search(json.dumps(problem.extra))


def test_no_service_problem_text_names_a_flag() -> None:
    """Every string literal given to a ``Problem(…)`` in the service."""
    for path in (ROOT / "service").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "Problem":
                for part in ast.walk(node):
                    if isinstance(part, ast.Constant) and isinstance(part.value, str):
                        assert not FLAG.search(part.value), f"{path}:{node.lineno}"


def test_refusals_reached_through_the_api_name_api_fields_not_flags(svc: Service) -> None:
    # A human correction of an AI-labelled article (the library's hint names --override-upstream).
    assert svc.post_article(article("flags/correction")).status_code == 201
    refused = svc.post_article(article("flags/correction", 2, source="human"))
    body = assert_problem(refused, 409, "upstream-conflict")
    assert "`override_upstream`" in body["detail"]
    # An image whose own manifest says AI, declared camera (the library's hint names --override-upstream).
    stamped = svc.upload(images.jpeg(seed=604), {"source": "ai_generated"}).json()
    data = svc.client.get(stamped["links"]["content"]).content
    body = assert_problem(svc.upload(data, {"source": "camera"}), 409, "upstream-conflict")
    assert "override_upstream" in body["detail"]
    # Canonical text without its detached manifest (the library's hint names --sidecar).
    text = svc.client.get(svc.post_article(article("flags/text")).json()["links"]["text"]).content
    verify = svc.client.post("/v1/verify", files={"file": ("a.txt", text, "text/plain")}, headers=svc.bearer("auditor"))
    body = verify.json()
    assert "sidecar" in json.dumps(body)
    for answer in (refused.text, verify.text):
        assert not FLAG.search(answer), answer


# --- override_upstream on article corrections ----------------------------------------------------------


def test_override_upstream_on_a_correction_through_the_api_is_signed_and_recorded(svc: Service) -> None:
    first = svc.post_article(article("override/story"))
    assert first.status_code == 201
    ai_labels = first.json()["labels"]
    assert ai_labels  # the AI-generated sample article is labelled
    reason = "rewritten from scratch by the night desk"
    blank = svc.post_article(article("override/story", 2, source="human", override_upstream="   "))
    assert "override reason" in assert_problem(blank, 422, "input-error")["detail"]

    corrected = svc.post_article(article("override/story", 2, source="human", override_upstream=reason))
    assert corrected.status_code == 201, corrected.text
    assert corrected.json()["labels"] == ai_labels  # the AI label stays
    manifest = svc.client.get(corrected.json()["links"]["manifest"]).content
    assert UPSTREAM_OVERRIDE.encode() in manifest
    assert reason.encode() in manifest
    corrections = [e for e in svc.events("stamp_article") if e.detail.get("external_id") == "override/story"]
    [event] = [e for e in corrections if e.subject.endswith("/v2")]
    assert event.detail["overrides"] == {"version": 1, "labels": ai_labels, "reason": reason}

    # Without a conflict the reason is not signed, and not recorded as an override.
    plain = svc.post_article(article("override/plain", 1, source="human", override_upstream=reason))
    assert plain.status_code == 201
    assert UPSTREAM_OVERRIDE.encode() not in svc.client.get(plain.json()["links"]["manifest"]).content
    [event] = [e for e in svc.events("stamp_article") if e.detail.get("external_id") == "override/plain"]
    assert "overrides" not in event.detail


# --- optional fields, as the README lists them ---------------------------------------------------------


def readme_fields(heading: str) -> dict[str, bool]:
    """The README's table of fields under ``heading``: field -> required."""
    text = README.read_text()
    table = text.split(heading, 1)[1].split("\n\n", 2)[1]
    fields: dict[str, bool] = {}
    for line in table.splitlines()[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        for name in re.findall(r"`(\w+)`", cells[0]):
            fields[name] = cells[1] == "required"
    assert fields, heading
    return fields


FULL_DECLARATION = {
    "source": "camera",
    "title": "Harbour at dawn",
    "credit": "A. Photographer",
    "external_id": "optional/harbour",
    "override_upstream": "the desk checked the original",
}
FULL_ARTICLE = {
    **json.loads(sample("council-human.json")),
    "standfirst": "A standfirst",
    "edit_source": "human",
    "override_upstream": "checked by the desk",
    "review": {"editor": "Night desk", "reviewed_at": "2026-11-28T09:30:00Z", "scope": "full text"},
}


def test_the_readme_tables_cover_every_field() -> None:
    assert set(readme_fields("**Declaration fields**")) == set(Declaration.model_fields)
    article_fields = readme_fields("**Article payload fields**")
    assert {"external_id", "version", "headline", "source", "standfirst", "edit_source", "override_upstream"} <= set(
        article_fields
    )


def test_every_optional_declaration_field_can_be_left_out(svc: Service) -> None:
    for seed, (name, required) in enumerate(readme_fields("**Declaration fields**").items(), start=610):
        declaration = {k: v for k, v in FULL_DECLARATION.items() if k != name}
        response = svc.upload(images.jpeg(seed=seed), declaration)
        if required:
            error = assert_problem(response, 422, "invalid-declaration")["errors"][0]
            assert error["loc"] == ["declaration", name]
        else:
            assert response.status_code == 201, (name, response.text)


def test_every_optional_article_field_can_be_left_out(svc: Service) -> None:
    fields = readme_fields("**Article payload fields**")
    bodies = [name for name in fields if name.startswith("body_")]
    for name, required in fields.items():
        if name in bodies:
            continue  # exactly one body is required, whichever
        doc = copy.deepcopy(FULL_ARTICLE)
        doc["external_id"] = f"optional/{name}"
        doc.pop(name, None)
        response = svc.post_article(json.dumps(doc).encode())
        if required:
            assert f"'{name}'" in assert_problem(response, 422, "input-error")["detail"]
        else:
            assert response.status_code == 201, (name, response.text)
