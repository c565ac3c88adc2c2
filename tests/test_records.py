"""The stored record: finding items (filters, cursor pages, roles) and withdrawing them (410, badges,
audit trail, reinstatement), in process on both databases and through the real server (two workers)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import select, text, update

from service.store.db import ArticleLabel, ArticleVersion, Asset, AssetLabel, make_engine
from service.store.schema import MIGRATIONS

from . import images
from .databases import Database
from .server_support import Server, create_token, serve
from .service_support import Service, assert_problem, running, service_settings

WITHDRAW_REASON = "the photographer withdrew consent"


@pytest.fixture
def svc(database: Database, tmp_path: Path, keys_dir: Path) -> Iterator[Service]:
    settings = service_settings(tmp_path / "var", keys_dir, database, rate_limit_per_minute=100_000)
    with running(settings) as service:
        yield service


def _upload(svc: Service, seed: int, **declaration: Any) -> dict[str, Any]:
    response = svc.upload(images.jpeg(seed=seed), {"source": "ai_generated", **declaration})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _find(svc: Service, path: str, role: str = "auditor", **params: Any) -> httpx.Response:
    return svc.client.get(path, params=params, headers=svc.bearer(role))


def _all_pages(svc: Service, path: str, cursor: str | None = None, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for _ in range(100):
        page = _find(svc, path, **params, **({"cursor": cursor} if cursor else {}))
        assert page.status_code == 200, page.text
        items.extend(page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("paging did not end")


# --- find -------------------------------------------------------------------------------------------------


def test_find_assets_by_every_filter(svc: Service) -> None:
    ai = _upload(svc, 1, external_id="cms-1")
    edited = _upload(svc, 2, source="ai_edited", external_id="cms-2")
    camera = _upload(svc, 3, source="camera")
    cases: dict[str, tuple[dict[str, Any], list[str]]] = {
        "no filter: newest first": ({}, [camera["id"], edited["id"], ai["id"]]),
        "label ai_generated": ({"label": "ai_generated"}, [ai["id"]]),
        "label ai_edited": ({"label": "ai_edited"}, [edited["id"]]),
        "label none: the camera declaration": ({"label": "none"}, [camera["id"]]),
        "source camera": ({"source": "camera"}, [camera["id"]]),
        "source ai_edited": ({"source": "ai_edited"}, [edited["id"]]),
        "external_id exact": ({"external_id": "cms-2"}, [edited["id"]]),
        "external_id unknown": ({"external_id": "cms-"}, []),
        "state trusted": ({"state": "trusted"}, [camera["id"], edited["id"], ai["id"]]),
        "state invalid": ({"state": "invalid"}, []),
        "label and source disagree": ({"label": "ai_generated", "source": "camera"}, []),
        "since the second (inclusive)": ({"since": edited["created_at"]}, [camera["id"], edited["id"]]),
        "until the second (exclusive)": ({"until": edited["created_at"]}, [ai["id"]]),
        "since = until: empty": ({"since": edited["created_at"], "until": edited["created_at"]}, []),
        "withdrawn false": ({"withdrawn": "false"}, [camera["id"], edited["id"], ai["id"]]),
        "withdrawn true": ({"withdrawn": "true"}, []),
    }
    for name, (params, expected) in cases.items():
        page = _find(svc, "/v1/assets", **params)
        assert page.status_code == 200, (name, page.text)
        assert [item["id"] for item in page.json()["items"]] == expected, name
    first = _find(svc, "/v1/assets", external_id="cms-1").json()["items"][0]
    assert first["source"] == "ai_generated"
    assert first["labels"] == ["ai_generated"]
    assert first["withdrawal"] is None
    assert first["withdrawn_at"] is None
    assert first["links"]["self"] == f"/v1/assets/{ai['id']}"


def test_find_pages_are_stable_and_complete_with_equal_stamping_times(svc: Service) -> None:
    uploaded = [_upload(svc, 10 + i)["id"] for i in range(7)]
    same = dt.datetime(2020, 1, 1, 12, 0, tzinfo=dt.UTC)
    with svc.session() as session:  # several items stamped in the same microsecond: the id decides
        session.execute(update(Asset).where(Asset.id.in_(uploaded[:5])).values(created_at=same))
        session.execute(update(AssetLabel).where(AssetLabel.asset_id.in_(uploaded[:5])).values(created_at=same))
        session.commit()
    expected = [uploaded[6], uploaded[5], *sorted(uploaded[:5], reverse=True)]
    for limit in (1, 2, 3, 7, 200):
        for label in (None, "ai_generated"):
            params: dict[str, Any] = {"limit": limit, **({"label": label} if label else {})}
            found = [item["id"] for item in _all_pages(svc, "/v1/assets", **params)]
            assert found == expected, (limit, label)
    last = _find(svc, "/v1/assets", limit=7).json()
    assert last["next_cursor"] is None  # exactly one full page: no empty page after it
    # An item stamped while a client pages through shows on no page already handed out, and never twice.
    page = _find(svc, "/v1/assets", limit=2).json()
    _upload(svc, 30)
    rest = _all_pages(svc, "/v1/assets", limit=2, cursor=page["next_cursor"])
    assert [item["id"] for item in page["items"] + rest] == expected


def _cursor(*key: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def test_find_refuses_bad_limits_and_cursors_with_422_naming_them(svc: Service) -> None:
    asset = _upload(svc, 40)
    at, art = asset["created_at"], "art_" + "0" * 24
    cases: dict[str, tuple[str, dict[str, Any], str]] = {
        "limit 0": ("/v1/assets", {"limit": 0}, "limit"),
        "limit 201": ("/v1/assets", {"limit": 201}, "limit"),
        "limit not a number": ("/v1/assets", {"limit": "ten"}, "limit"),
        "garbage cursor": ("/v1/assets", {"cursor": "%%%not base64"}, "cursor"),
        "base64 of no JSON": ("/v1/assets", {"cursor": base64.urlsafe_b64encode(b"\xff\xfe").decode()}, "cursor"),
        "an article cursor for assets": ("/v1/assets", {"cursor": _cursor("v", at, art, 1)}, "cursor"),
        "an asset cursor for articles": ("/v1/articles", {"cursor": _cursor("a", at, asset["id"])}, "cursor"),
        "cursor with a naive time": ("/v1/assets", {"cursor": _cursor("a", at[:-6], asset["id"])}, "cursor"),
        "cursor with another id form": ("/v1/assets", {"cursor": _cursor("a", at, "x' OR 1=1")}, "cursor"),
        "cursor version 0": ("/v1/articles", {"cursor": _cursor("v", at, art, 0)}, "cursor"),
        "cursor too long": ("/v1/assets", {"cursor": "A" * 201}, "cursor"),
        "unknown label": ("/v1/assets", {"label": "ai"}, "label"),
        "unknown state": ("/v1/assets", {"state": "fine"}, "state"),
        "article source for images": ("/v1/assets", {"source": "ai_assisted"}, "source"),
        "image source for articles": ("/v1/articles", {"source": "camera"}, "source"),
        "since not a time": ("/v1/assets", {"since": "yesterday"}, "since"),
        "until before since": ("/v1/assets", {"since": "2026-12-02T00:00Z", "until": "2026-12-01T00:00Z"}, "until"),
        "external id with a NUL": ("/v1/assets", {"external_id": "a\x00b"}, "external_id"),
        "external id too long": ("/v1/articles", {"external_id": "x" * 301}, "external_id"),
    }  # fmt: skip
    for name, (path, params, field) in cases.items():
        body = assert_problem(_find(svc, path, **params), 422, "invalid-request")
        assert [field] == [e["loc"][-1] for e in body["errors"]], name
    assert _find(svc, "/v1/assets", limit=200).status_code == 200
    assert _find(svc, "/v1/assets", limit=1).status_code == 200


def test_find_is_for_token_holders_only(svc: Service) -> None:
    _upload(svc, 50)
    for path in ("/v1/assets", "/v1/articles"):
        assert_problem(svc.client.get(path), 401, "unauthorized")
        assert_problem(svc.client.get(path, headers={"Authorization": "Bearer pv_wrong"}), 401, "unauthorized")
        for role in ("newsroom", "auditor", "admin"):
            assert _find(svc, path, role=role).status_code == 200, (path, role)


def test_find_articles_lists_every_version_with_its_source(svc: Service) -> None:
    assert svc.post_article("ai-weather.json").status_code == 201
    assert svc.post_article("ai-weather.v2.json").status_code == 201
    assert svc.post_article("council-human.json").status_code == 201
    found = _find(svc, "/v1/articles").json()["items"]
    assert [(item["version"], item["source"]) for item in found] == [
        (1, "human"),
        (2, "ai_generated"),
        (1, "ai_generated"),
    ]
    weather = found[1]["id"]
    by_id = _find(svc, "/v1/articles", external_id=found[1]["external_id"]).json()["items"]
    assert [(item["id"], item["version"]) for item in by_id] == [(weather, 2), (weather, 1)]
    assert [i["version"] for i in _find(svc, "/v1/articles", source="human").json()["items"]] == [1]
    assert [i["id"] for i in _find(svc, "/v1/articles", label="none").json()["items"]] == [found[0]["id"]]
    labelled = _find(svc, "/v1/articles", label="ai_reported").json()["items"]
    assert [(i["id"], i["version"]) for i in labelled] == [(weather, 2), (weather, 1)]
    pages = _all_pages(svc, "/v1/articles", limit=1)
    assert [(i["id"], i["version"]) for i in pages] == [(i["id"], i["version"]) for i in found]


def test_label_rows_follow_a_changed_decision(svc: Service) -> None:
    asset = _upload(svc, 60)
    with svc.session() as session:  # e.g. re-verification under new trust drops the label
        row = session.get(Asset, asset["id"])
        assert row is not None
        row.state, row.labels = "invalid", []
        session.commit()
    assert _find(svc, "/v1/assets", label="ai_generated").json()["items"] == []
    assert [i["id"] for i in _find(svc, "/v1/assets", label="none").json()["items"]] == [asset["id"]]
    with svc.session() as session:
        row = session.get(Asset, asset["id"])
        assert row is not None
        row.state, row.labels = "trusted", ["ai_generated", "ai_edited"]
        session.commit()
        labels = session.scalars(select(AssetLabel.label).where(AssetLabel.asset_id == asset["id"])).all()
    assert sorted(labels) == ["ai_edited", "ai_generated"]
    assert [i["id"] for i in _find(svc, "/v1/assets", label="ai_edited").json()["items"]] == [asset["id"]]


# --- withdraw ---------------------------------------------------------------------------------------------


def _withdraw(svc: Service, path: str, role: str = "newsroom", reason: Any = WITHDRAW_REASON) -> httpx.Response:
    return svc.client.post(path, json={"reason": reason}, headers=svc.bearer(role))


def test_a_withdrawn_asset_is_gone_from_the_public_and_kept_for_auditors(svc: Service) -> None:
    asset = _upload(svc, 70)
    links = asset["links"]
    assert svc.client.get(links["content"]).status_code == 200
    done = _withdraw(svc, f"/v1/assets/{asset['id']}/withdraw")
    assert done.status_code == 200, done.text
    withdrawal = done.json()["withdrawal"]
    assert withdrawal["reason"] == WITHDRAW_REASON
    assert withdrawal["by"] == "test newsroom desk"
    for url in (links["content"], links["manifest"]):
        body = assert_problem(svc.client.get(url), 410, "withdrawn")
        assert body["withdrawn_at"] == withdrawal["withdrawn_at"]
        assert WITHDRAW_REASON not in json.dumps(body)  # when, never who or why
        assert "newsroom" not in json.dumps(body)
    assert svc.client.get(links["self"]).json()["withdrawn_at"] == withdrawal["withdrawn_at"]
    badge = svc.client.get(links["badge_json"]).json()
    assert badge["state"] == "withdrawn"
    assert badge["labels"] == []
    assert badge["signer"] is None
    assert badge["withdrawn_at"] == withdrawal["withdrawn_at"]
    svg = svc.client.get(links["badge_svg"])
    assert svg.status_code == 200
    assert svg.headers["content-type"] == "image/svg+xml"
    assert 'width="0"' in svg.text
    assert "<text" not in svg.text
    html = svc.client.get(f"/v1/badges/{asset['id']}.html")
    assert html.status_code == 200
    assert "<span" not in html.text
    batch = svc.client.get("/v1/badges", params={"refs": asset["id"]}).json()
    assert batch["badges"][asset["id"]]["state"] == "withdrawn"
    for digest in (asset["sha256"], asset["stamped_sha256"]):  # the bytes' badges too
        assert svc.client.get(f"/v1/badges/sha256-{digest}.json").json()["state"] == "withdrawn"
    report = svc.client.get(links["report"], headers=svc.bearer("auditor"))
    assert report.status_code == 200  # auditors still see the evidence
    assert _find(svc, "/v1/assets", withdrawn="true").json()["items"][0]["withdrawal"] == withdrawal
    assert _find(svc, "/v1/assets", withdrawn="false").json()["items"] == []
    events = svc.events("withdraw")
    assert [(e.subject, e.token_id, e.detail["reason"]) for e in events] == [
        (asset["id"], svc.token_id("newsroom"), WITHDRAW_REASON)
    ]


def test_withdraw_and_reinstate_roles_reasons_and_conflicts(svc: Service) -> None:
    asset = _upload(svc, 80)
    path = f"/v1/assets/{asset['id']}"
    assert_problem(svc.client.post(f"{path}/withdraw", json={"reason": "x"}), 401, "unauthorized")
    assert_problem(_withdraw(svc, f"{path}/withdraw", role="auditor"), 403, "forbidden")
    for reason in ("", "   ", "a\x00b", "x" * 2001, None, 5):
        assert_problem(_withdraw(svc, f"{path}/withdraw", reason=reason), 422, "invalid-request")
    assert_problem(svc.client.post(f"{path}/withdraw", headers=svc.bearer("newsroom")), 422, "invalid-request")
    unknown = "img_" + "0" * 24
    assert_problem(_withdraw(svc, f"/v1/assets/{unknown}/withdraw"), 404, "not-found")
    assert_problem(_withdraw(svc, "/v1/assets/nonsense/withdraw"), 404, "not-found")
    assert_problem(_withdraw(svc, f"{path}/reinstate", role="admin"), 409, "not-withdrawn")
    assert _withdraw(svc, f"{path}/withdraw", role="admin").status_code == 200  # admin may withdraw too
    assert_problem(_withdraw(svc, f"{path}/withdraw"), 409, "already-withdrawn")
    assert_problem(_withdraw(svc, f"{path}/reinstate", role="newsroom"), 403, "forbidden")
    assert_problem(_withdraw(svc, f"{path}/reinstate", role="auditor"), 403, "forbidden")
    back = _withdraw(svc, f"{path}/reinstate", role="admin", reason="consent given again")
    assert back.status_code == 200, back.text
    assert back.json()["withdrawal"] is None
    assert svc.client.get(asset["links"]["content"]).status_code == 200
    assert svc.client.get(asset["links"]["badge_json"]).json()["state"] == "trusted"
    reinstated = svc.events("reinstate")
    assert len(reinstated) == 1
    assert reinstated[0].token_id == svc.token_id("admin")
    assert reinstated[0].detail["reason"] == "consent given again"
    assert reinstated[0].detail["withdrawal_reason"] == WITHDRAW_REASON
    assert [e.token_id for e in svc.events("withdraw")] == [svc.token_id("admin")]


def test_a_withdrawn_article_is_withdrawn_in_every_version(svc: Service) -> None:
    first = svc.post_article("ai-weather.json").json()
    second = svc.post_article("ai-weather.v2.json").json()
    done = _withdraw(svc, f"/v1/articles/{first['id']}/withdraw")
    assert done.status_code == 200, done.text
    assert done.json()["version"] == 2  # answered with the latest version
    for version in (first, second):
        for url in (version["links"]["text"], version["links"]["manifest"]):
            assert_problem(svc.client.get(url), 410, "withdrawn")
        report = svc.client.get(version["links"]["report"], headers=svc.bearer("auditor"))
        assert report.status_code == 200
    assert svc.client.get(f"/v1/badges/{first['id']}.json").json()["state"] == "withdrawn"
    assert svc.client.get(f"/v1/badges/sha256-{second['sha256']}.json").json()["state"] == "withdrawn"
    assert_problem(_withdraw(svc, f"/v1/articles/{first['id']}/withdraw"), 409, "already-withdrawn")
    assert_problem(_withdraw(svc, f"/v1/articles/art_{'0' * 24}/withdraw"), 404, "not-found")
    listed = _find(svc, "/v1/articles", withdrawn="true").json()["items"]
    assert [(i["version"], i["withdrawal"]["reason"]) for i in listed] == [(2, WITHDRAW_REASON), (1, WITHDRAW_REASON)]
    assert _withdraw(svc, f"/v1/articles/{first['id']}/reinstate", role="admin").status_code == 200
    assert svc.client.get(second["links"]["text"]).status_code == 200
    assert svc.client.get(f"/v1/badges/{first['id']}.json").json()["state"] == "trusted"


def test_withdrawing_the_strongest_of_shared_bytes_shows_nothing_not_a_weaker_claim(svc: Service) -> None:
    data = images.jpeg(seed=90)
    ai = svc.upload(data, {"source": "ai_generated"}).json()
    camera = svc.upload(data, {"source": "camera", "override_upstream": "the agency confirmed a photo"})
    assert camera.status_code == 201, camera.text
    ref = f"/v1/badges/sha256-{ai['sha256']}.json"
    assert svc.client.get(ref).json()["labels"][0]["id"] == "ai_generated"
    assert _withdraw(svc, f"/v1/assets/{ai['id']}/withdraw").status_code == 200
    assert svc.client.get(ref).json()["state"] == "withdrawn"  # never the camera declaration's badge


def test_uploading_a_withdrawn_item_again_answers_that_it_is_withdrawn(svc: Service) -> None:
    data = images.jpeg(seed=95)
    asset = svc.upload(data, {"source": "ai_generated"}).json()
    assert _withdraw(svc, f"/v1/assets/{asset['id']}/withdraw").status_code == 200
    again = svc.upload(data, {"source": "ai_generated"})
    assert again.status_code == 200, again.text  # the same asset, still withdrawn: not published again
    assert again.json()["id"] == asset["id"]
    assert again.json()["withdrawn_at"] is not None
    first = svc.post_article("ai-weather.json").json()
    assert first["withdrawn_at"] is None
    assert _withdraw(svc, f"/v1/articles/{first['id']}/withdraw").status_code == 200
    correction = svc.post_article("ai-weather.v2.json")
    assert correction.status_code == 201, correction.text
    assert correction.json()["withdrawn_at"] is not None  # stored, and withdrawn with its article
    assert svc.client.get(correction.json()["links"]["text"]).status_code == 410


def test_openapi_documents_the_record_endpoints(svc: Service) -> None:
    paths = svc.client.get("/openapi.json").json()["paths"]
    for path, method, statuses in (
        ("/v1/assets", "get", {"200", "401", "403", "422"}),
        ("/v1/articles", "get", {"200", "401", "403", "422"}),
        ("/v1/assets/{asset_id}/withdraw", "post", {"200", "401", "403", "404", "409", "422"}),
        ("/v1/assets/{asset_id}/reinstate", "post", {"200", "401", "403", "404", "409", "422"}),
        ("/v1/articles/{article_id}/withdraw", "post", {"200", "401", "403", "404", "409", "422"}),
        ("/v1/articles/{article_id}/reinstate", "post", {"200", "401", "403", "404", "409", "422"}),
        ("/v1/assets/{asset_id}/content", "get", {"200", "404", "410"}),
        ("/v1/articles/{article_id}/v{version}.txt", "get", {"200", "404", "410"}),
    ):
        operation = paths[path][method]
        assert statuses <= set(operation["responses"]), (path, sorted(operation["responses"]))
    params = {p["name"] for p in paths["/v1/assets"]["get"]["parameters"]}
    assert {"external_id", "label", "state", "source", "since", "until", "limit", "cursor"} <= params


# --- migration -----------------------------------------------------------------------------------------------


def test_the_migration_backfills_sources_external_ids_and_labels(database: Database, tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    url = database.url(data) or f"sqlite:///{data / 'provenance.db'}"
    engine = make_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
    at = "2026-11-30 10:00:00+00" if database.kind == "postgresql" else "2026-11-30 10:00:00.000000"
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO assets (id, upload_sha256, stamped_sha256, manifest, media_type, declaration, state,"
                " labels, verdict, upstream, signer_chain, trust_fingerprint, created_at) VALUES"
                " (:id, 'a', 'b', :m, 'image/jpeg', :d, 'trusted', :l, '{}', '{}', '[]', 'f', :at)"
            ),
            {"id": "img_" + "1" * 24, "m": b"x", "d": json.dumps({"source": "ai_edited", "external_id": "cms-9"}),
             "l": json.dumps(["ai_edited"]), "at": at},
        )  # fmt: skip
        claim = {"article": {"source": "ai_assisted"}}
        for version, verdict in ((1, claim), (2, {"error": "unreadable"})):
            connection.execute(
                text(
                    "INSERT INTO article_versions (article_id, version, external_id, text_sha256, manifest_sha256,"
                    " payload_sha256, state, labels, verdict, signer_chain, trust_fingerprint, created_at) VALUES"
                    " (:id, :v, 'cms-a', 't', 'm', 'p', 'trusted', :l, :verdict, '[]', 'f', :at)"
                ),
                {"id": "art_" + "2" * 24, "v": version, "l": json.dumps(["ai_assisted"]),
                 "verdict": json.dumps(verdict), "at": at},
            )  # fmt: skip
        connection.execute(
            text("INSERT INTO audit_events (at, kind, subject, detail) VALUES (:at, 'stamp_article', :s, :d)"),
            {"at": at, "s": f"art_{'2' * 24}/v2", "d": json.dumps({"source": "human"})},
        )
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    with engine.connect() as connection:
        assert connection.execute(select(Asset.source, Asset.external_id)).all() == [("ai_edited", "cms-9")]
        assert connection.execute(select(AssetLabel.label)).scalars().all() == ["ai_edited"]
        sources = connection.execute(select(ArticleVersion.version, ArticleVersion.source).order_by("version")).all()
        assert sources == [(1, "ai_assisted"), (2, "human")]  # from the claim, else from the audit log
        assert connection.execute(select(ArticleLabel.version).order_by("version")).scalars().all() == [1, 2]
    engine.dispose()


# --- the real server: two workers ----------------------------------------------------------------------------


@pytest.fixture
def workers(database: Database, tmp_path: Path, keys_dir: Path) -> Iterator[Server]:
    env = {
        "PROVENANCE_BADGE_CACHE_SECONDS": "1.5",
        "PROVENANCE_RATE_LIMIT_PER_MINUTE": "100000",
        "PROVENANCE_PARSE_WORKERS": "1",  # fewer processes to start
    }
    with serve(database, tmp_path / "var", keys_dir, "--workers", "2", env=env) as server:
        yield server


@pytest.mark.slow  # two workers start (~5 s) and badge caches expire
def test_over_http_find_withdraw_and_the_badge_is_gone_in_every_worker(workers: Server) -> None:
    base = workers.base
    newsroom = {"Authorization": f"Bearer {create_token(workers, 'newsroom')}"}
    auditor = {"Authorization": f"Bearer {create_token(workers, 'auditor')}"}
    admin = {"Authorization": f"Bearer {create_token(workers, 'admin')}"}
    ids = []
    for seed in (101, 102, 103):
        upload = httpx.post(
            f"{base}/v1/assets",
            headers=newsroom,
            files={"file": ("a.jpg", images.jpeg(seed=seed), "image/jpeg")},
            data={"declaration": json.dumps({"source": "ai_generated", "external_id": f"cms-{seed}"})},
            timeout=30,
        )
        assert upload.status_code == 201, upload.text
        ids.append(upload.json()["id"])
    assert httpx.get(f"{base}/v1/assets", timeout=10).status_code == 401
    for headers in (newsroom, auditor, admin):
        assert httpx.get(f"{base}/v1/assets", headers=headers, timeout=10).status_code == 200
    seen, cursor = [], None
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = httpx.get(f"{base}/v1/assets", params=params, headers=auditor, timeout=10).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    assert httpx.get(f"{base}/v1/assets", params={"limit": "201"}, headers=auditor, timeout=10).status_code == 422

    target = ids[0]
    badge = f"{base}/v1/badges/{target}.json"
    for _ in range(20):  # each on a new connection: both workers cache the trusted decision
        assert httpx.get(badge, timeout=10).json()["state"] == "trusted"
    refused = httpx.post(f"{base}/v1/assets/{target}/withdraw", json={"reason": "x"}, headers=auditor, timeout=10)
    assert refused.status_code == 403
    done = httpx.post(
        f"{base}/v1/assets/{target}/withdraw", json={"reason": WITHDRAW_REASON}, headers=newsroom, timeout=10
    )
    assert done.status_code == 200, done.text
    withdrawn_at = time.monotonic()
    assert httpx.get(f"{base}/v1/assets/{target}/content", timeout=10).status_code == 410
    assert httpx.get(f"{base}/v1/assets/{target}/manifest.c2pa", timeout=10).status_code == 410
    time.sleep(max(0.0, withdrawn_at + 1.6 - time.monotonic()))  # badge_cache_seconds (1.5 s) have passed
    for _ in range(20):
        answer = httpx.get(badge, timeout=10).json()
        assert answer["state"] == "withdrawn"
        assert answer["labels"] == []
        svg = httpx.get(f"{base}/v1/badges/{target}.svg", timeout=10)
        assert svg.status_code == 200
        assert "<text" not in svg.text
    back = httpx.post(f"{base}/v1/assets/{target}/reinstate", json={"reason": "cleared"}, headers=admin, timeout=10)
    assert back.status_code == 200, back.text
    assert httpx.get(f"{base}/v1/assets/{target}/content", timeout=10).status_code == 200
    time.sleep(1.6)
    for _ in range(20):
        assert httpx.get(badge, timeout=10).json()["state"] == "trusted"
