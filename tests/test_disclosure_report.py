"""The AI-disclosure compliance report (EU AI Act Art. 50): JSON and CSV, roles, the half-open period,
overrides, withdrawals, reviews and totals; in process on both databases and through the real server."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.audit import disclosure
from service.problems import Problem
from service.store.db import ArticleVersion

from . import images
from .databases import Database
from .server_support import create_token, serve
from .service_support import Service, assert_problem, running, service_settings

REPORT = "/v1/reports/ai-disclosure"
PERIOD = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}
OVERRIDE = '=HYPERLINK("http://evil.example") the agency confirmed a photograph'
WITHDRAWAL = "@SUM(1+1) wrong picture"


@pytest.fixture
def svc(database: Database, tmp_path: Path, keys_dir: Path) -> Iterator[Service]:
    with running(service_settings(tmp_path / "var", keys_dir, database, rate_limit_per_minute=100_000)) as service:
        yield service


def _report(svc: Service, role: str = "auditor", **params: Any) -> httpx.Response:
    return svc.client.get(REPORT, params={**PERIOD, **params}, headers=svc.bearer(role))


def _stock(svc: Service) -> dict[str, Any]:
    """An AI image, the same bytes declared camera (override), a human image withdrawn, three article versions."""
    data = images.jpeg(seed=201)
    ai = svc.upload(data, {"source": "ai_generated", "external_id": "cms-ai"}).json()
    camera = svc.upload(data, {"source": "camera", "override_upstream": OVERRIDE}).json()
    human = svc.upload(images.jpeg(seed=202), {"source": "human"}).json()
    assert (
        svc.client.post(
            f"/v1/assets/{human['id']}/withdraw", json={"reason": WITHDRAWAL}, headers=svc.bearer("newsroom")
        ).status_code
        == 200
    )
    weather = svc.post_article("ai-weather.json").json()
    svc.post_article("ai-weather.v2.json")
    council = svc.post_article("council-human.json").json()
    return {"ai": ai, "camera": camera, "human": human, "weather": weather, "council": council}


def test_the_report_answers_which_ai_content_was_published_and_whether_it_was_labelled(svc: Service) -> None:
    stock = _stock(svc)
    with svc.session() as session:  # an editorial review, as the review helper stores it in the verdict
        row = session.get(ArticleVersion, (stock["council"]["id"], 1))
        assert row is not None
        row.verdict = {**row.verdict, "review": {"editor": "M. Editor", "reviewed_at": "2026-12-01", "scope": "all"}}
        session.commit()
    response = _report(svc)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["from"] == "2000-01-01T00:00:00+00:00"
    assert report["to"] == "2100-01-01T00:00:00+00:00"
    items = {(item["id"], item["version"]): item for item in report["items"]}
    assert len(report["items"]) == 6
    ai = items[(stock["ai"]["id"], None)]
    assert (ai["declared_source"], ai["ai_declared"], ai["labels"], ai["labelled"]) == (
        "ai_generated", True, ["ai_generated"], True
    )  # fmt: skip
    assert ai["external_id"] == "cms-ai"
    assert ai["stamped_by"] == "test newsroom desk"
    camera = items[(stock["camera"]["id"], None)]
    assert camera["ai_declared"] is False
    assert camera["override"]["reason"] == OVERRIDE
    assert camera["override"]["overrides"]["assets"] == [stock["ai"]["id"]]
    human = items[(stock["human"]["id"], None)]
    assert human["withdrawal"]["reason"] == WITHDRAWAL
    assert human["withdrawal"]["by"] == "test newsroom desk"
    assert [d["action"] for d in human["withdrawal_decisions"]] == ["withdraw"]
    weather = items[(stock["weather"]["id"], 2)]
    assert (weather["declared_source"], weather["labels"], weather["labelled"]) == (
        "ai_generated",
        ["ai_reported"],
        True,
    )
    council = items[(stock["council"]["id"], 1)]
    assert council["review"] == {"editor": "M. Editor", "reviewed_at": "2026-12-01", "scope": "all"}
    assert council["labelled"] is False
    assert items[(stock["weather"]["id"], 1)]["review"] is None
    totals = report["totals"]
    assert totals["items"] == 6
    assert (totals["images"], totals["article_versions"]) == (3, 3)
    assert totals["by_label"] == {"ai_generated": 1, "ai_edited": 0, "ai_reported": 2, "ai_assisted": 0, "none": 3}
    assert totals["by_source"] == {"ai_generated": 3, "camera": 1, "human": 2}
    assert (totals["ai_declared"], totals["ai_declared_labelled"], totals["ai_declared_unlabelled"]) == (3, 3, 0)
    assert (totals["overrides"], totals["withdrawn"]) == (1, 1)
    decided = report["withdrawal_decisions_in_period"]
    assert [(d["action"], d["id"], d["reason"]) for d in decided] == [("withdraw", stock["human"]["id"], WITHDRAWAL)]


def test_the_period_is_half_open(svc: Service) -> None:
    first = svc.upload(images.jpeg(seed=210), {"source": "ai_generated"}).json()
    second = svc.upload(images.jpeg(seed=211), {"source": "ai_edited"}).json()
    at_first, at_second = first["created_at"], second["created_at"]
    cases: dict[str, tuple[dict[str, str], list[str]]] = {
        "from the first (inclusive) to the second (exclusive)": ({"from": at_first, "to": at_second}, [first["id"]]),
        "from the second": ({"from": at_second, "to": PERIOD["to"]}, [second["id"]]),
        "both": (PERIOD, [first["id"], second["id"]]),
        "before both": ({"from": PERIOD["from"], "to": at_first}, []),
        "a time without an offset is UTC": ({"from": at_first[:-6], "to": at_second[:-6]}, [first["id"]]),
    }
    for name, (period, expected) in cases.items():
        response = svc.client.get(REPORT, params=period, headers=svc.bearer("auditor"))
        assert response.status_code == 200, (name, response.text)
        assert [item["id"] for item in response.json()["items"]] == expected, name


def test_the_report_is_for_auditors_and_refuses_bad_periods(svc: Service) -> None:
    assert_problem(svc.client.get(REPORT, params=PERIOD), 401, "unauthorized")
    assert_problem(_report(svc, role="newsroom"), 403, "forbidden")
    assert _report(svc, role="admin").status_code == 200
    cases: dict[str, tuple[dict[str, str], str]] = {
        "no from": ({"to": PERIOD["to"]}, "from"),
        "no to": ({"from": PERIOD["from"]}, "to"),
        "from not a time": ({"from": "last month", "to": PERIOD["to"]}, "from"),
        "to before from": ({"from": PERIOD["to"], "to": PERIOD["from"]}, "to"),
        "empty period": ({"from": PERIOD["from"], "to": PERIOD["from"]}, "to"),
        "unknown format": ({**PERIOD, "format": "xlsx"}, "format"),
    }
    for name, (params, field) in cases.items():
        response = svc.client.get(REPORT, params=params, headers=svc.bearer("auditor"))
        body = assert_problem(response, 422, "invalid-request")
        assert [field] == [e["loc"][-1] for e in body["errors"]], name


def test_a_period_over_the_item_limit_is_refused_before_reading_rows(svc: Service) -> None:
    svc.upload(images.jpeg(seed=220), {"source": "ai_generated"})
    svc.upload(images.jpeg(seed=221), {"source": "ai_generated"})
    start, end = dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
    assert len(disclosure.build(svc.ctx, start, end, max_items=2)["items"]) == 2
    with pytest.raises(Problem) as refused:
        disclosure.build(svc.ctx, start, end, max_items=1)
    assert (refused.value.status, refused.value.kind, refused.value.extra["items"]) == (422, "report-too-large", 2)


def _csv(text: str) -> tuple[list[list[str]], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(text)))
    blank = rows.index([])
    return rows[:blank], rows[blank + 1 :]


def test_the_csv_has_a_header_one_row_per_item_safe_cells_and_totals(svc: Service) -> None:
    stock = _stock(svc)
    as_json = _report(svc).json()
    for response in (
        svc.client.get(REPORT, params=PERIOD, headers={**svc.bearer("auditor"), "Accept": "text/csv"}),
        _report(svc, format="csv"),
    ):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert (
            response.headers["content-disposition"] == 'attachment; filename="ai-disclosure-2000-01-01-2100-01-01.csv"'
        )
        items, totals = _csv(response.content.decode("utf-8"))
        assert items[0] == list(disclosure.COLUMNS)
        assert len(items) == 1 + len(as_json["items"])
        by_id = {(row[0], row[1], row[2]): dict(zip(items[0], row, strict=True)) for row in items[1:]}
        camera = by_id[("image", stock["camera"]["id"], "")]
        assert camera["override_reason"] == "'" + OVERRIDE  # a spreadsheet shows it, never runs it
        human = by_id[("image", stock["human"]["id"], "")]
        assert human["withdrawal_reason"] == "'" + WITHDRAWAL
        assert human["withdrawn_by"] == "test newsroom desk"
        ai = by_id[("image", stock["ai"]["id"], "")]
        assert (ai["declared_source"], ai["ai_declared"], ai["labels"], ai["labelled"]) == (
            "ai_generated", "true", "ai_generated", "true"
        )  # fmt: skip
        assert by_id[("article", stock["weather"]["id"], "2")]["labels"] == "ai_reported"
        assert totals[0] == ["total", "key", "count"]
        counted = {(row[0], row[1]): int(row[2]) for row in totals[1:]}
        assert counted[("all", "items")] == 6
        assert counted[("all", "ai_declared_unlabelled")] == 0
        assert counted[("label", "none")] == 3
        assert counted[("source", "camera")] == 1
    assert _report(svc, format="json").headers["content-type"] == "application/json"


def test_csv_cells_that_would_run_as_formulas_are_neutralised() -> None:
    cases = {
        "=1+1": "'=1+1", "+1": "'+1", "-1": "'-1", "@A1": "'@A1", "\tx": "'\tx", "\rx": "'\rx",
        "plain": "plain", "a=b": "a=b", "中文": "中文", None: "", True: "true", 3: "3",
    }  # fmt: skip
    for value, expected in cases.items():
        assert disclosure.safe_cell(value) == expected, value


@pytest.mark.slow  # a server process starts
def test_over_http_the_report_as_json_and_csv(database: Database, tmp_path: Path, keys_dir: Path) -> None:
    with serve(database, tmp_path / "var", keys_dir) as server:
        newsroom = {"Authorization": f"Bearer {create_token(server, 'newsroom')}"}
        auditor = {"Authorization": f"Bearer {create_token(server, 'auditor')}"}
        upload = httpx.post(
            f"{server.base}/v1/assets",
            headers=newsroom,
            files={"file": ("a.jpg", images.jpeg(seed=230), "image/jpeg")},
            data={"declaration": json.dumps({"source": "ai_generated"})},
            timeout=30,
        )
        assert upload.status_code == 201, upload.text
        url = f"{server.base}{REPORT}"
        assert httpx.get(url, params=PERIOD, headers=newsroom, timeout=10).status_code == 403
        report = httpx.get(url, params=PERIOD, headers=auditor, timeout=30)
        assert report.status_code == 200, report.text
        assert [item["id"] for item in report.json()["items"]] == [upload.json()["id"]]
        assert report.json()["totals"]["ai_declared_labelled"] == 1
        table = httpx.get(url, params=PERIOD, headers={**auditor, "Accept": "text/csv"}, timeout=30)
        items, totals = _csv(table.text)
        assert [row[1] for row in items[1:]] == [upload.json()["id"]]
        assert ["label", "ai_generated", "1"] in totals
        paths = httpx.get(f"{server.base}/openapi.json", timeout=10).json()["paths"]
        operation = paths[REPORT]["get"]
        assert {"application/json", "text/csv"} <= set(operation["responses"]["200"]["content"])
        assert {"from", "to", "format"} <= {p["name"] for p in operation["parameters"]}
        assert {"401", "403", "422"} <= set(operation["responses"])
