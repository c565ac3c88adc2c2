"""The HTTP service through its ASGI app: uploads, downloads, reports, verify, badges, roles, trust changes.

Every app is built on a fresh tmp data dir and a freshly initialised keys dir. Tests that only read
share one published service per module (``published``); tests that change state get their own.
Regression tests for bugs found while writing these tests are named after the bug.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from provenance import POLICY_VERSION, inspect
from provenance.keys import init_dev_keys
from provenance.vocabulary import badge_text, label_text
from service.audit.reverify import reverify
from service.security import limits
from service.security import tokens as auth
from service.store.db import ArticleVersion, Asset, Token

from . import images
from .databases import Database
from .service_support import (
    ARTICLE_ID,
    ASSET_ID,
    PROBLEM_JSON,
    STRONG_ETAG,
    TOKEN_NAMES,
    Service,
    assert_problem,
    running,
    sample,
    service_settings,
)

ORG = "Service Test Newsroom"
ZERO_ASSET = "img_" + "0" * 24
ZERO_ARTICLE = "art_" + "0" * 24
ZERO_SHA = "sha256-" + "0" * 64


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def untimed(body: dict[str, Any]) -> dict[str, Any]:
    """An API answer without ``created_at`` (compared on its own: its time zone is checked separately)."""
    return {k: v for k, v in body.items() if k != "created_at"}


@pytest.fixture
def service(database: Database, tmp_path: Path, keys_dir: Path) -> Iterator[Service]:
    """A fresh service of its own (default settings, no badge caching)."""
    with running(service_settings(tmp_path / "var", keys_dir, database)) as svc:
        yield svc


@dataclass(frozen=True)
class Published:
    """A service holding one AI image, one camera image and a corrected AI article (read-only tests)."""

    svc: Service
    upload: bytes  # the AI image as uploaded
    ai: dict[str, Any]  # POST /v1/assets answer for it
    camera: dict[str, Any]  # a camera PNG: trusted, no label
    article_v1: dict[str, Any]  # ai-weather v1
    article: dict[str, Any]  # ai-weather v2, a correction
    revoked: str  # a revoked newsroom token

    def content(self) -> bytes:
        return self.svc.client.get(f"/v1/assets/{self.ai['id']}/content").content

    def article_text(self, version: int = 2) -> bytes:
        return self.svc.client.get(f"/v1/articles/{self.article['id']}/v{version}.txt").content

    def article_manifest(self, version: int = 2) -> bytes:
        return self.svc.client.get(f"/v1/articles/{self.article['id']}/v{version}.c2pa").content


@pytest.fixture(scope="module")
def published(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    root = tmp_path_factory.mktemp("published")
    init_dev_keys(root / "keys", ORG)
    # Every refusal of the role tests below gets its own audit row (they are checked one by one).
    settings = service_settings(
        root / "var", root / "keys", database, rate_limit_per_minute=1_000_000, audit_refusals_per_minute=1_000_000
    )
    with running(settings) as svc:
        upload = images.jpeg(seed=1)
        ai = svc.upload(upload, {"source": "ai_generated", "title": "Storm over the harbour"})
        camera = svc.upload(images.png(seed=2), {"source": "camera"})
        v1 = svc.post_article("ai-weather.json")
        v2 = svc.post_article("ai-weather.v2.json")
        assert [r.status_code for r in (ai, camera, v1, v2)] == [201, 201, 201, 201]
        with svc.session() as session:
            revoked = auth.create_token(session, "revoked desk", "newsroom")
            session.flush()
            token = session.scalars(select(Token).where(Token.name == "revoked desk")).one()
            token.revoked_at = dt.datetime.now(dt.UTC)
            session.commit()
        yield Published(svc, upload, ai.json(), camera.json(), v1.json(), v2.json(), revoked)


# --------------------------------------------------------------------------------------------------
# 1. Success paths
# --------------------------------------------------------------------------------------------------

UPLOADS: dict[str, tuple[Callable[[], bytes], str, str, list[str]]] = {
    "AI-generated JPEG": (images.jpeg, "ai_generated", "image/jpeg", ["ai_generated"]),
    "AI-edited PNG": (images.png, "ai_edited", "image/png", ["ai_edited"]),
    "camera JPEG with unsigned EXIF": (images.camera_jpeg, "camera", "image/jpeg", []),
    "human-made PNG": (images.png, "human", "image/png", []),
    "unknown-source JPEG whose unsigned XMP says AI": (images.xmp_ai_jpeg, "unknown", "image/jpeg", []),
}


@pytest.mark.parametrize(("make", "source", "media_type", "labels"), UPLOADS.values(), ids=list(UPLOADS))
def test_upload_stamps_stores_and_serves(
    service: Service, make: Callable[[], bytes], source: str, media_type: str, labels: list[str]
) -> None:
    data = make()
    response = service.upload(data, {"source": source, "title": "A picture"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert re.fullmatch(ASSET_ID, body["id"])
    assert body["sha256"] == sha256(data)
    assert body["stamped_sha256"] != body["sha256"]
    assert body["media_type"] == media_type
    assert (body["state"], body["labels"]) == ("trusted", labels)
    assert body["declaration"] == {"source": source, "title": "A picture"}
    base = f"/v1/assets/{body['id']}"  # no public_base_url configured: absolute paths, never the Host header
    assert body["links"] == {
        "self": base,
        "content": f"{base}/content",
        "manifest": f"{base}/manifest.c2pa",
        "badge_svg": f"/v1/badges/{body['id']}.svg",
        "badge_json": f"/v1/badges/{body['id']}.json",
        "report": f"{base}/report",
    }
    assert response.headers["location"] == base
    assert untimed(service.client.get(f"/v1/assets/{body['id']}").json()) == untimed(body)

    content = service.client.get(body["links"]["content"])
    assert content.status_code == 200
    assert content.headers["content-type"] == media_type
    assert sha256(content.content) == body["stamped_sha256"]
    verdict = inspect(content.content, service.ctx.trust)
    assert (verdict.state.value, list(verdict.labels)) == ("trusted", labels)

    manifest = service.client.get(body["links"]["manifest"])
    assert manifest.status_code == 200
    assert manifest.headers["content-type"] == "application/c2pa"
    assert manifest.content[4:8] == b"jumb"  # a JUMBF manifest store
    assert service.rows(Asset) == 1
    assert [e.subject for e in service.events("stamp")] == [body["id"]]


TIMESTAMPS: dict[str, Callable[[Service], tuple[dict[str, Any], str]]] = {
    "asset record after upload": lambda s: (s.upload(images.jpeg(seed=20)).json(), "/v1/assets/{id}"),
    "article version after post": lambda s: (
        s.post_article("council-human.json").json(),
        "/v1/articles/{id}/v1/report",
    ),
}


@pytest.mark.parametrize("make", TIMESTAMPS.values(), ids=list(TIMESTAMPS))
def test_timestamps_are_timezone_aware_when_read_back(
    service: Service, make: Callable[[Service], tuple[dict[str, Any], str]]
) -> None:
    created, template = make(service)
    assert dt.datetime.fromisoformat(created["created_at"]).tzinfo is not None
    again = service.client.get(template.format(id=created["id"]), headers=service.bearer("admin")).json()
    stamp = again.get("created_at", again.get("stamped_at"))
    assert stamp == created["created_at"]
    assert dt.datetime.fromisoformat(stamp).tzinfo is not None


DOWNLOADS: dict[str, tuple[Callable[[Published], str], str]] = {
    "stamped image": (lambda p: f"/v1/assets/{p.ai['id']}/content", "image/jpeg"),
    "stamped PNG": (lambda p: f"/v1/assets/{p.camera['id']}/content", "image/png"),
    "image manifest": (lambda p: f"/v1/assets/{p.ai['id']}/manifest.c2pa", "application/c2pa"),
    "article text v2": (lambda p: f"/v1/articles/{p.article['id']}/v2.txt", "text/plain; charset=utf-8"),
    "article manifest v2": (lambda p: f"/v1/articles/{p.article['id']}/v2.c2pa", "application/c2pa"),
    "article text v1": (lambda p: f"/v1/articles/{p.article['id']}/v1.txt", "text/plain; charset=utf-8"),
}


@pytest.mark.parametrize(("path", "media_type"), DOWNLOADS.values(), ids=list(DOWNLOADS))
def test_downloads_have_strong_content_etags_and_304(
    published: Published, path: Callable[[Published], str], media_type: str
) -> None:
    client = published.svc.client
    response = client.get(path(published))
    assert response.status_code == 200
    assert response.headers["content-type"] == media_type
    etag = response.headers["etag"]
    assert etag == f'"{sha256(response.content)}"'  # strong (no W/), content-addressed
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "max-age=" in response.headers["cache-control"]

    again = client.get(path(published), headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    listed = client.get(path(published), headers={"If-None-Match": f'"{"0" * 64}", {etag}'})
    assert listed.status_code == 304
    other = client.get(path(published), headers={"If-None-Match": f'"{"0" * 64}"'})
    assert (other.status_code, other.content) == (200, response.content)


def test_stamped_image_etag_is_its_stamped_sha256(published: Published) -> None:
    response = published.svc.client.get(f"/v1/assets/{published.ai['id']}/content")
    assert response.headers["etag"] == f'"{published.ai["stamped_sha256"]}"'


@pytest.mark.parametrize(
    "path", ["/v1/assets/img_000000000000000000000000", "/v1/assets/nope/content", "/v1/assets/nope/manifest.c2pa"]
)
def test_unknown_asset_is_404_problem(published: Published, path: str) -> None:
    assert_problem(published.svc.client.get(path), 404, "not-found")


@pytest.mark.parametrize("suffix", ["v9.txt", "v9.c2pa"])
def test_unknown_article_version_is_404_problem(published: Published, suffix: str) -> None:
    assert_problem(published.svc.client.get(f"/v1/articles/{published.article['id']}/{suffix}"), 404, "not-found")


ARTICLES: dict[str, tuple[str, list[str]]] = {
    "AI-generated weather report": ("ai-weather.json", ["ai_reported"]),
    "human council report": ("council-human.json", []),
    "AI-assisted markets report in Chinese": ("markets-zh.json", ["ai_assisted"]),
}


@pytest.mark.parametrize(("name", "labels"), ARTICLES.values(), ids=list(ARTICLES))
def test_article_is_stamped_and_its_text_verifies_with_the_linked_manifest(
    service: Service, name: str, labels: list[str]
) -> None:
    response = service.post_article(name)
    assert response.status_code == 201, response.text
    body = response.json()
    assert re.fullmatch(ARTICLE_ID, body["id"])
    assert body["external_id"] == json.loads(sample(name))["external_id"]
    assert (body["version"], body["state"], body["labels"]) == (1, "trusted", labels)

    text = service.client.get(body["links"]["text"])
    assert text.status_code == 200
    assert text.headers["content-type"] == "text/plain; charset=utf-8"
    assert sha256(text.content) == body["sha256"]
    manifest_path = f"/v1/articles/{body['id']}/v1.c2pa"
    assert text.headers["link"] == f'<{manifest_path}>; rel="c2pa-manifest"'
    manifest = service.client.get(manifest_path)
    assert manifest.status_code == 200
    assert manifest.headers["content-type"] == "application/c2pa"
    assert body["links"]["manifest"] == manifest_path

    verdict = inspect(text.content, service.ctx.trust, sidecar=manifest.content)
    assert (verdict.state.value, list(verdict.labels)) == ("trusted", labels)
    assert verdict.sha256 == body["sha256"]
    assert service.rows(ArticleVersion) == 1


def test_article_correction_keeps_the_ai_label(service: Service) -> None:
    first = service.post_article("ai-weather.json")
    assert first.status_code == 201
    repeat = service.post_article("ai-weather.json")
    assert repeat.status_code == 200
    assert untimed(repeat.json()) == untimed(first.json())

    second = service.post_article("ai-weather.v2.json")  # edit_source: human
    assert second.status_code == 201, second.text
    v1, v2 = first.json(), second.json()
    assert v2["id"] == v1["id"]
    assert (v2["version"], v2["state"], v2["labels"]) == (2, "trusted", ["ai_reported"])
    assert v2["sha256"] != v1["sha256"]
    assert service.rows(ArticleVersion) == 2

    for version, body in ((1, v1), (2, v2)):
        text = service.client.get(f"/v1/articles/{v1['id']}/v{version}.txt")
        assert text.headers["link"] == f'</v1/articles/{v1["id"]}/v{version}.c2pa>; rel="c2pa-manifest"'
        manifest = service.client.get(f"/v1/articles/{v1['id']}/v{version}.c2pa").content
        verdict = inspect(text.content, service.ctx.trust, sidecar=manifest)
        assert (verdict.state.value, verdict.labels, verdict.sha256) == ("trusted", ("ai_reported",), body["sha256"])
    # the badge follows the latest version
    badge = service.client.get(f"/v1/badges/{v1['id']}.json").json()
    assert badge["labels"] == [{"id": "ai_reported", "text": "Reported by AI"}]


def test_article_version_with_other_text_is_refused(service: Service) -> None:
    assert service.post_article("ai-weather.json").status_code == 201
    payload = json.loads(sample("ai-weather.json"))
    payload["headline"] = "A different headline, same version"
    response = service.post_article(json.dumps(payload).encode())
    assert_problem(response, 409, "version-conflict")
    assert service.rows(ArticleVersion) == 1


def test_asset_report_as_auditor(published: Published) -> None:
    svc = published.svc
    response = svc.client.get(f"/v1/assets/{published.ai['id']}/report", headers=svc.bearer("auditor"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    report = response.json()
    assert (report["kind"], report["id"]) == ("image", published.ai["id"])
    verification = report["verification"]
    assert (verification["state"], verification["labels"]) == ("trusted", ["ai_generated"])
    assert verification["sha256"] == published.ai["stamped_sha256"]
    assert "signingCredential.trusted" in {c["code"] for c in verification["codes"]["success"]}
    assert verification["codes"]["failure"] == []
    assert report["stored_decision"] == {
        "state": "trusted",
        "labels": ["ai_generated"],
        "trust_fingerprint": svc.ctx.trust.fingerprint,
    }
    assert report["declaration"] == {"source": "ai_generated", "title": "Storm over the harbour"}
    chain = report["signer_chain"]
    assert len(chain) >= 2
    assert "Content Signer" in chain[0]["subject"]
    assert ORG in chain[0]["subject"]
    assert report["stamped_by"] == {"token": TOKEN_NAMES["newsroom"], "role": "newsroom"}
    assert report["upload"]["sha256"] == published.ai["sha256"]


def test_article_report_as_auditor(published: Published) -> None:
    svc = published.svc
    article = published.article
    response = svc.client.get(f"/v1/articles/{article['id']}/v2/report", headers=svc.bearer("auditor"))
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["kind"], report["id"], report["version"]) == ("article", article["id"], 2)
    assert report["external_id"] == article["external_id"]
    verification = report["verification"]
    assert (verification["state"], verification["labels"]) == ("trusted", ["ai_reported"])
    assert "signingCredential.trusted" in {c["code"] for c in verification["codes"]["success"]}
    assert verification["codes"]["failure"] == []
    assert ORG in report["signer_chain"][0]["subject"]
    assert report["stamped_by"] == {"token": TOKEN_NAMES["newsroom"], "role": "newsroom"}


REPORT_PATHS: dict[str, Callable[[Published], str]] = {
    "asset report": lambda p: f"/v1/assets/{p.ai['id']}/report",
    "article report": lambda p: f"/v1/articles/{p.article['id']}/v2/report",
    "article report, first version": lambda p: f"/v1/articles/{p.article['id']}/v1/report",
}


@pytest.mark.parametrize("path", REPORT_PATHS.values(), ids=list(REPORT_PATHS))
def test_report_as_html_has_no_script(published: Published, path: Callable[[Published], str]) -> None:
    svc = published.svc
    response = svc.client.get(path(published), headers={**svc.bearer("auditor"), "Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert "<script" not in response.text.lower()
    assert "Verification report" in response.text
    assert "signingCredential.trusted" in response.text


def test_html_report_escapes_what_the_upload_declared(service: Service) -> None:
    title = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    created = service.upload(images.jpeg(seed=3), {"source": "camera", "title": title})
    assert created.status_code == 201
    response = service.client.get(
        created.json()["links"]["report"], headers={**service.bearer("auditor"), "Accept": "text/html"}
    )
    assert response.status_code == 200
    assert "<script" not in response.text.lower()
    assert "<img" not in response.text.lower()
    assert "&lt;script&gt;" in response.text


VERIFY: dict[str, tuple[Callable[[Published], dict[str, tuple[str, bytes]]], str, list[str]]] = {
    "stamped image": (lambda p: {"file": ("a.jpg", p.content())}, "trusted", ["ai_generated"]),
    "unsigned image": (lambda p: {"file": ("b.jpg", images.jpeg(seed=9))}, "absent", []),
    "article text with its detached manifest": (
        lambda p: {"file": ("v2.txt", p.article_text()), "sidecar": ("v2.c2pa", p.article_manifest())},
        "trusted",
        ["ai_reported"],
    ),
    "article payload with its detached manifest": (
        lambda p: {"file": ("v2.json", sample("ai-weather.v2.json")), "sidecar": ("v2.c2pa", p.article_manifest())},
        "trusted",
        ["ai_reported"],
    ),
    "article text with another version's manifest": (
        lambda p: {"file": ("v2.txt", p.article_text(2)), "sidecar": ("v1.c2pa", p.article_manifest(1))},
        "invalid",
        [],
    ),
}


@pytest.mark.parametrize(("files", "state", "labels"), VERIFY.values(), ids=list(VERIFY))
def test_verify_stores_nothing(
    published: Published, files: Callable[[Published], dict[str, tuple[str, bytes]]], state: str, labels: list[str]
) -> None:
    svc = published.svc
    parts = files(published)
    before = svc.stored()
    response = svc.client.post("/v1/verify", files=parts, headers=svc.bearer("auditor"))
    assert response.status_code == 200, response.text
    verdict = response.json()
    assert (verdict["state"], verdict["labels"]) == (state, labels)
    assert svc.stored() == before


VERIFY_REJECTED: dict[str, tuple[dict[str, tuple[str, bytes]], int, str]] = {
    "empty file": ({"file": ("e", b"")}, 422, "input-error"),
    "text without its manifest": ({"file": ("t.txt", b"Just some words.\n")}, 422, "input-error"),
    "garbage manifest": (
        {"file": ("t.txt", b"Just some words.\n"), "sidecar": ("m", b"garbage")},
        422,
        "manifest-error",
    ),
}


@pytest.mark.parametrize(("files", "status", "kind"), VERIFY_REJECTED.values(), ids=list(VERIFY_REJECTED))
def test_verify_rejects_unverifiable_input(
    published: Published, files: dict[str, tuple[str, bytes]], status: int, kind: str
) -> None:
    svc = published.svc
    before = svc.stored()
    assert_problem(svc.client.post("/v1/verify", files=files, headers=svc.bearer("auditor")), status, kind)
    assert svc.stored() == before


def test_health_and_readiness(published: Published) -> None:
    client = published.svc.client
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "trust_fingerprint": published.svc.ctx.trust.fingerprint,
        "cached_decisions": len(published.svc.app.api.state.badges),
    }


def test_metrics_count_stamps(service: Service) -> None:
    sample_line = 'provenance_stamps_total{kind="image",label="ai_generated"} 1.0'
    before = service.client.get("/metrics")
    assert before.status_code == 200
    assert before.headers["content-type"].startswith("text/plain")
    assert sample_line not in before.text
    data = images.jpeg(seed=4)
    assert service.upload(data).status_code == 201
    assert sample_line in service.client.get("/metrics").text
    assert service.upload(data).status_code == 200  # a replay is not a new stamp
    assert sample_line in service.client.get("/metrics").text
    assert service.post_article("council-human.json").status_code == 201
    assert 'provenance_stamps_total{kind="article",label="none"} 1.0' in service.client.get("/metrics").text


def test_openapi_and_docs(published: Published) -> None:
    client = published.svc.client
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for path in ("/v1/assets", "/v1/articles", "/v1/verify", "/v1/assets/{asset_id}/report", "/healthz"):
        assert path in paths
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in docs.text


# --------------------------------------------------------------------------------------------------
# 2. Roles
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    path: Callable[[Published], str]
    role: str  # the role the endpoint needs
    files: Callable[[Published], dict[str, Any]] | None = None
    data: dict[str, str] | None = None
    content: Callable[[Published], bytes] | None = None

    def send(self, published: Published, authorization: str | None) -> Any:
        headers = {"Authorization": authorization} if authorization is not None else {}
        return published.svc.client.request(
            self.method,
            self.path(published),
            files=self.files(published) if self.files else None,
            data=self.data,
            content=self.content(published) if self.content else None,
            headers=headers,
        )


PROTECTED: dict[str, Call] = {
    "upload an image": Call(
        "POST",
        lambda p: "/v1/assets",
        "newsroom",
        files=lambda p: {"file": ("a.jpg", p.upload)},
        data={"declaration": json.dumps({"source": "ai_generated", "title": "Storm over the harbour"})},
    ),
    "post an article": Call(
        "POST", lambda p: "/v1/articles", "newsroom", content=lambda p: sample("ai-weather.v2.json")
    ),
    "read an asset report": Call("GET", lambda p: f"/v1/assets/{p.ai['id']}/report", "auditor"),
    "read an article report": Call("GET", lambda p: f"/v1/articles/{p.article['id']}/v2/report", "auditor"),
    "verify a file": Call("POST", lambda p: "/v1/verify", "auditor", files=lambda p: {"file": ("a.jpg", p.upload)}),
}

BAD_CREDENTIALS: dict[str, tuple[Callable[[Published], str | None], str]] = {
    "no Authorization header": (lambda p: None, "missing token"),
    "garbage bearer token": (lambda p: "Bearer not-a-token", "bad token"),
    "well-formed but unknown token": (lambda p: "Bearer pv_" + "A" * 43, "bad token"),
    "revoked token": (lambda p: f"Bearer {p.revoked}", "bad token"),
    "admin token under the Basic scheme": (lambda p: f"Basic {p.svc.tokens['admin']}", "bad token"),
    "admin token with one character changed": (lambda p: f"Bearer {p.svc.tokens['admin'][:-1]}#", "bad token"),
}


@pytest.mark.parametrize("call", PROTECTED.values(), ids=list(PROTECTED))
@pytest.mark.parametrize(("authorization", "reason"), BAD_CREDENTIALS.values(), ids=list(BAD_CREDENTIALS))
def test_bad_credentials_are_401_and_audited(
    published: Published, call: Call, authorization: Callable[[Published], str | None], reason: str
) -> None:
    svc = published.svc
    before, stored = len(svc.events("auth_failure")), svc.stored()
    response = call.send(published, authorization(published))
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    events = svc.events("auth_failure")
    assert len(events) == before + 1
    assert events[-1].subject == f"{call.method} {call.path(published)}"
    assert events[-1].detail == {"reason": reason, "needed": call.role}
    assert events[-1].token_id is None
    assert svc.stored() == stored


@pytest.mark.parametrize("call", PROTECTED.values(), ids=list(PROTECTED))
def test_wrong_role_is_403_and_audited(published: Published, call: Call) -> None:
    svc = published.svc
    wrong = "auditor" if call.role == "newsroom" else "newsroom"
    before, stored = len(svc.events("auth_failure")), svc.stored()
    response = call.send(published, f"Bearer {svc.tokens[wrong]}")
    assert_problem(response, 403, "forbidden")
    assert "www-authenticate" not in response.headers
    events = svc.events("auth_failure")
    assert len(events) == before + 1
    assert events[-1].detail == {"reason": "wrong role", "needed": call.role}
    assert events[-1].token_id == svc.token_id(wrong)
    assert svc.stored() == stored


@pytest.mark.parametrize("call", PROTECTED.values(), ids=list(PROTECTED))
@pytest.mark.parametrize("role", ["own role", "admin"])
def test_right_role_and_admin_are_admitted(published: Published, call: Call, role: str) -> None:
    svc = published.svc
    holder = call.role if role == "own role" else "admin"
    before = len(svc.events("auth_failure"))
    response = call.send(published, f"Bearer {svc.tokens[holder]}")
    assert response.status_code == 200, response.text  # uploads repeat published items: 200, not 201
    assert len(svc.events("auth_failure")) == before


PUBLIC: dict[str, Callable[[Published], str]] = {
    "SVG badge": lambda p: f"/v1/badges/{p.ai['id']}.svg",
    "JSON badge": lambda p: f"/v1/badges/{p.ai['id']}.json",
    "HTML badge": lambda p: f"/v1/badges/{p.ai['id']}.html",
    "badge batch": lambda p: f"/v1/badges?refs={p.ai['id']},{p.article['id']}",
    "asset record": lambda p: f"/v1/assets/{p.ai['id']}",
    "stamped content": lambda p: f"/v1/assets/{p.ai['id']}/content",
    "image manifest": lambda p: f"/v1/assets/{p.ai['id']}/manifest.c2pa",
    "article text": lambda p: f"/v1/articles/{p.article['id']}/v2.txt",
    "article manifest": lambda p: f"/v1/articles/{p.article['id']}/v2.c2pa",
    "liveness": lambda p: "/healthz",
    "readiness": lambda p: "/readyz",
}


@pytest.mark.parametrize("path", PUBLIC.values(), ids=list(PUBLIC))
def test_public_reads_need_no_token(published: Published, path: Callable[[Published], str]) -> None:
    svc = published.svc
    before = len(svc.events("auth_failure"))
    response = svc.client.get(path(published))
    assert response.status_code == 200, response.text
    assert len(svc.events("auth_failure")) == before


# --------------------------------------------------------------------------------------------------
# 3. Idempotency
# --------------------------------------------------------------------------------------------------


def test_same_upload_twice_is_one_asset(service: Service) -> None:
    data = images.jpeg(seed=5)
    first = service.upload(data, {"source": "ai_generated", "credit": "Desk"})
    assert first.status_code == 201
    blobs = service.blob_files()
    second = service.upload(data, {"credit": "Desk", "source": "ai_generated"})
    assert second.status_code == 200
    assert untimed(second.json()) == untimed(first.json())
    assert second.headers["location"] == first.json()["links"]["self"]
    assert service.rows(Asset) == 1
    assert len(service.events("stamp")) == 1
    assert service.blob_files() == blobs


def test_same_bytes_with_another_declaration_is_another_asset(service: Service) -> None:
    data = images.jpeg(seed=5)
    first = service.upload(data, {"source": "ai_generated"})
    second = service.upload(data, {"source": "ai_generated", "title": "Retitled"})
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["id"] != second.json()["id"]
    assert service.rows(Asset) == 2


def test_idempotency_key_replays_the_first_answer(service: Service) -> None:
    data = images.jpeg(seed=6)
    key = {"Idempotency-Key": "cms-upload-42"}
    first = service.upload(data, {"source": "camera"}, headers=key)
    assert first.status_code == 201
    again = service.upload(data, {"source": "camera"}, headers=key)
    assert again.status_code == 200
    assert untimed(again.json()) == untimed(first.json())
    assert service.rows(Asset) == 1


KEY_REUSE: dict[str, tuple[Callable[[], bytes], dict[str, str]]] = {
    "different bytes": (lambda: images.jpeg(seed=7), {"source": "camera"}),
    "same bytes, different declaration": (lambda: images.jpeg(seed=6), {"source": "human"}),
}


@pytest.mark.parametrize(("make", "declaration"), KEY_REUSE.values(), ids=list(KEY_REUSE))
def test_idempotency_key_reused_for_another_upload_is_422(
    service: Service, make: Callable[[], bytes], declaration: dict[str, str]
) -> None:
    key = {"Idempotency-Key": "cms-upload-42"}
    assert service.upload(images.jpeg(seed=6), {"source": "camera"}, headers=key).status_code == 201
    before = service.stored()
    body = assert_problem(service.upload(make(), declaration, headers=key), 422, "input-error")
    assert "Idempotency-Key" in body["detail"]
    assert service.stored() == before
    # keys belong to one token: another token may use the same key for its own upload
    assert service.upload(make(), declaration, role="admin", headers=key).status_code == 201


# --------------------------------------------------------------------------------------------------
# 4. Upstream AI claims
# --------------------------------------------------------------------------------------------------

UPSTREAM: dict[str, tuple[dict[str, str], int, list[str] | None]] = {
    "declared camera": ({"source": "camera"}, 409, None),
    "declared human": ({"source": "human"}, 409, None),
    "declared camera with an override reason": (
        {"source": "camera", "override_upstream": "staff photo; the AI claim was a CMS mistake"},
        201,
        ["ai_generated"],
    ),
    "declared unknown": ({"source": "unknown"}, 201, ["ai_generated"]),
    "declared ai_generated": ({"source": "ai_generated", "title": "Again"}, 201, ["ai_generated"]),
}


@pytest.mark.parametrize(("declaration", "status", "labels"), UPSTREAM.values(), ids=list(UPSTREAM))
def test_upstream_ai_claim_is_never_erased(
    service: Service, declaration: dict[str, str], status: int, labels: list[str] | None
) -> None:
    original = service.upload(images.jpeg(seed=8), {"source": "ai_generated"})
    assert original.status_code == 201
    stamped = service.client.get(original.json()["links"]["content"]).content
    before = service.stored()
    response = service.upload(stamped, declaration)
    if status == 409:
        body = assert_problem(response, 409, "upstream-conflict")
        assert "ai_generated" in body["detail"]
        assert service.stored() == before
        assert len(service.events("stamp")) == 1
    else:
        assert response.status_code == status, response.text
        assert (response.json()["state"], response.json()["labels"]) == ("trusted", labels)
        assert service.rows(Asset) == 2


# --------------------------------------------------------------------------------------------------
# 5. Rejected uploads store nothing
# --------------------------------------------------------------------------------------------------

LIMIT = 20_000
CAMERA = json.dumps({"source": "camera"})

BAD_UPLOADS: dict[str, tuple[Callable[[], bytes], str | None, int, str]] = {
    "one byte over max_upload_bytes": (lambda: b"\xff\xd8\xff" + b"\0" * (LIMIT - 2), CAMERA, 413, "input-too-large"),
    "far over max_upload_bytes (refused before parsing)": (
        lambda: b"\xff\xd8\xff" + b"\0" * (LIMIT + 200_000),
        CAMERA,
        413,
        "input-too-large",
    ),
    "zero bytes": (lambda: b"", CAMERA, 422, "input-error"),
    "plain text": (lambda: b"garbage bytes, not an image", CAMERA, 415, "unsupported-media"),
    "binary garbage": (lambda: bytes(range(256)) * 4, CAMERA, 415, "unsupported-media"),
    "PDF document": (lambda: b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", CAMERA, 415, "unsupported-media"),
    "truncated JPEG": (lambda: images.jpeg(64, 48)[:300], CAMERA, 422, "input-error"),
    "truncated PNG": (lambda: images.png(64, 48)[:100], CAMERA, 422, "input-error"),
    "declaration not JSON": (lambda: images.jpeg(64, 48), "{source: camera}", 422, "invalid-declaration"),
    "declaration a JSON list": (lambda: images.jpeg(64, 48), '["camera"]', 422, "invalid-declaration"),
    "declaration with an unknown source": (
        lambda: images.jpeg(64, 48),
        '{"source": "satellite"}',
        422,
        "invalid-declaration",
    ),
    "declaration with an extra field": (
        lambda: images.jpeg(64, 48),
        '{"source": "camera", "labels": ["ai_generated"]}',
        422,
        "invalid-declaration",
    ),
    "declaration title over 512 characters": (
        lambda: images.jpeg(64, 48),
        json.dumps({"source": "camera", "title": "x" * 513}),
        422,
        "invalid-declaration",
    ),
    "declaration missing": (lambda: images.jpeg(64, 48), None, 422, "invalid-request"),
}


@pytest.fixture
def small_service(database: Database, tmp_path: Path, keys_dir: Path) -> Iterator[Service]:
    with running(service_settings(tmp_path / "var", keys_dir, database, max_upload_bytes=LIMIT)) as svc:
        yield svc


@pytest.mark.parametrize(("make", "declaration", "status", "kind"), BAD_UPLOADS.values(), ids=list(BAD_UPLOADS))
def test_rejected_upload_stores_nothing(
    small_service: Service, make: Callable[[], bytes], declaration: str | None, status: int, kind: str
) -> None:
    svc = small_service
    data = make()
    before = svc.stored()
    if declaration is None:
        files = {"file": ("a.jpg", data, "image/jpeg")}
        response = svc.client.post("/v1/assets", files=files, headers=svc.bearer("newsroom"))
    else:
        response = svc.upload(data, declaration)
    assert_problem(response, status, kind)
    assert svc.stored() == before
    assert svc.rows(Asset) == 0
    assert svc.events("stamp") == []


def test_upload_without_file_part_is_422(small_service: Service) -> None:
    response = small_service.client.post(
        "/v1/assets", data={"declaration": CAMERA}, headers=small_service.bearer("newsroom")
    )
    assert_problem(response, 422, "invalid-request")
    assert small_service.rows(Asset) == 0


def test_upload_under_max_upload_bytes_is_accepted(small_service: Service) -> None:
    data = images.jpeg(64, 48)
    assert len(data) < LIMIT
    assert small_service.upload(data, CAMERA).status_code == 201


DEEP_JSON = b"[" * 50_000 + b"]" * 50_000
DEEP_BUGS: dict[str, Callable[[Service], Any]] = {
    "image declaration nested 50,000 deep": lambda s: s.upload(images.jpeg(64, 48), DEEP_JSON.decode()),
    "article payload nested 50,000 deep": lambda s: s.post_article(DEEP_JSON),
    "verify: payload-like file nested 50,000 deep with a sidecar": lambda s: s.client.post(
        "/v1/verify",
        files={"file": ("a.json", b'{"a":' + DEEP_JSON + b"}"), "sidecar": ("m", b"x")},
        headers=s.bearer("auditor"),
    ),
}


@pytest.mark.parametrize("send", DEEP_BUGS.values(), ids=list(DEEP_BUGS))
def test_deeply_nested_json_is_a_422_not_a_500(
    database: Database, tmp_path: Path, keys_dir: Path, send: Callable[[Service], Any]
) -> None:
    with running(service_settings(tmp_path / "var", keys_dir, database), raise_server_exceptions=False) as svc:
        response = send(svc)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM_JSON
        assert svc.stored()[:2] == (0, 0)


# --------------------------------------------------------------------------------------------------
# 6. Badges
# --------------------------------------------------------------------------------------------------

TEXTS = {
    "ai_generated": {"en": "AI-generated image", "zh-Hans": "AI 生成的图像"},
    "ai_reported": {"en": "Reported by AI", "zh-Hans": "由 AI 报道"},
    "content_credentials": {"en": "Content Credentials", "zh-Hans": "内容凭证"},
    "content_credentials_unverified": {"en": "Content Credentials not verified", "zh-Hans": "内容凭证未经验证"},
}


def test_expected_badge_texts_are_the_vocabulary() -> None:
    for lang in ("en", "zh-Hans"):
        for label in ("ai_generated", "ai_reported"):
            assert label_text(label, lang) == TEXTS[label][lang]
        for text_id in ("content_credentials", "content_credentials_unverified"):
            assert badge_text(text_id, lang) == TEXTS[text_id][lang]


BADGE_SUBJECTS: dict[str, tuple[Callable[[Published], str], str, str, str]] = {
    "AI image": (lambda p: p.ai["id"], "image", "ai_generated", "ai"),
    "camera image (trusted, no label)": (lambda p: p.camera["id"], "image", "content_credentials", "neutral"),
    "AI article": (lambda p: p.article["id"], "article", "ai_reported", "ai"),
}

BADGE_LANGS: dict[str, tuple[dict[str, str], dict[str, str], str]] = {
    "no preference is English": ({}, {}, "en"),
    "?lang=en": ({"lang": "en"}, {}, "en"),
    "?lang=zh-Hans": ({"lang": "zh-Hans"}, {}, "zh-Hans"),
    "Accept-Language zh-CN": ({}, {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}, "zh-Hans"),
    "Accept-Language en-GB": ({}, {"Accept-Language": "en-GB,en;q=0.9"}, "en"),
    "Accept-Language fr falls back to English": ({}, {"Accept-Language": "fr-FR"}, "en"),
    "?lang beats Accept-Language": ({"lang": "en"}, {"Accept-Language": "zh-CN"}, "en"),
}


@pytest.mark.parametrize("fmt", ["svg", "json", "html"])
@pytest.mark.parametrize(("params", "headers", "lang"), BADGE_LANGS.values(), ids=list(BADGE_LANGS))
@pytest.mark.parametrize(("ref", "kind", "text_id", "tone"), BADGE_SUBJECTS.values(), ids=list(BADGE_SUBJECTS))
def test_badge_words_come_from_the_vocabulary(
    published: Published,
    ref: Callable[[Published], str],
    kind: str,
    text_id: str,
    tone: str,
    params: dict[str, str],
    headers: dict[str, str],
    lang: str,
    fmt: str,
) -> None:
    text = TEXTS[text_id][lang]
    response = published.svc.client.get(f"/v1/badges/{ref(published)}.{fmt}", params=params, headers=headers)
    assert response.status_code == 200
    if fmt == "json":
        body = response.json()
        assert body["badge"] == {"text": text, "tone": tone}
        assert (body["ref"], body["kind"], body["state"], body["lang"]) == (ref(published), kind, "trusted", lang)
        expected_labels = [] if text_id == "content_credentials" else [{"id": text_id, "text": text}]
        assert body["labels"] == expected_labels
    elif fmt == "svg":
        assert f"<title>{text}</title>" in response.text
        assert f'aria-label="{text}"' in response.text
        assert f'lang="{lang}"' in response.text
    else:
        assert f'<html lang="{lang}">' in response.text
        assert f'<span class="{tone}" role="img" aria-label="{text}">{text}</span>' in response.text


BADGE_FORMATS: dict[str, tuple[str, str]] = {
    "svg": ("image/svg+xml", "default-src 'none'"),
    "json": ("application/json", "default-src 'none'"),
    "html": ("text/html; charset=utf-8", "default-src 'none'; style-src 'sha256-"),
}


@pytest.mark.parametrize(
    ("fmt", "content_type", "csp"), [(k, *v) for k, v in BADGE_FORMATS.items()], ids=list(BADGE_FORMATS)
)
def test_badge_headers_etag_and_304(published: Published, fmt: str, content_type: str, csp: str) -> None:
    client = published.svc.client
    path = f"/v1/badges/{published.ai['id']}.{fmt}"
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["content-security-policy"].startswith(csp)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "public, max-age=60"
    assert "set-cookie" not in response.headers
    assert "<script" not in response.text.lower()
    etag = response.headers["etag"]
    assert re.fullmatch(STRONG_ETAG, etag), etag

    cached = client.get(path, headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached.headers["etag"] == etag
    stale = client.get(path, headers={"If-None-Match": '"0000"'})
    assert (stale.status_code, stale.content) == (200, response.content)
    chinese = client.get(path, params={"lang": "zh-Hans"})
    assert chinese.headers["etag"] != etag  # another body, another tag
    assert client.get(path, params={"lang": "zh-Hans"}, headers={"If-None-Match": etag}).status_code == 200


def test_badge_head_has_headers_and_no_body(published: Published) -> None:
    response = published.svc.client.head(f"/v1/badges/{published.ai['id']}.svg")
    assert response.status_code == 200
    assert response.content == b""
    assert re.fullmatch(STRONG_ETAG, response.headers["etag"])


def test_cached_badge_keeps_body_etag_and_304(database: Database, tmp_path: Path, keys_dir: Path) -> None:
    settings = service_settings(tmp_path / "var", keys_dir, database, badge_cache_seconds=60, badge_max_age=300)
    with running(settings) as svc:
        image = svc.upload(images.jpeg(seed=18)).json()
        path = f"/v1/badges/{image['id']}.svg"
        first = svc.client.get(path)
        hit = svc.client.get(path)  # served from memory
        assert first.status_code == hit.status_code == 200
        assert hit.content == first.content
        assert hit.headers["etag"] == first.headers["etag"]
        assert hit.headers["cache-control"] == "public, max-age=300"
        assert hit.headers["content-security-policy"] == "default-src 'none'"
        assert svc.client.get(path, headers={"If-None-Match": first.headers["etag"]}).status_code == 304


BADGE_REFS: dict[str, tuple[Callable[[Published], str], str, str]] = {
    "asset id": (lambda p: p.ai["id"], "image", "ai_generated"),
    "sha256 of the original upload": (lambda p: f"sha256-{p.ai['sha256']}", "image", "ai_generated"),
    "sha256 of the stamped bytes": (lambda p: f"sha256-{p.ai['stamped_sha256']}", "image", "ai_generated"),
    "sha256 of the camera upload": (lambda p: f"sha256-{p.camera['sha256']}", "image", "content_credentials"),
    "article id": (lambda p: p.article["id"], "article", "ai_reported"),
    "sha256 of the article text": (lambda p: f"sha256-{p.article['sha256']}", "article", "ai_reported"),
    "sha256 of the first version's text": (lambda p: f"sha256-{p.article_v1['sha256']}", "article", "ai_reported"),
}


@pytest.mark.parametrize(("ref", "kind", "text_id"), BADGE_REFS.values(), ids=list(BADGE_REFS))
def test_badge_refs_resolve(published: Published, ref: Callable[[Published], str], kind: str, text_id: str) -> None:
    response = published.svc.client.get(f"/v1/badges/{ref(published)}.json")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["ref"], body["kind"], body["state"]) == (ref(published), kind, "trusted")
    assert body["badge"]["text"] == TEXTS[text_id]["en"]


UNKNOWN_REFS = {"unknown asset id": ZERO_ASSET, "unknown article id": ZERO_ARTICLE, "unknown sha256": ZERO_SHA}


@pytest.mark.parametrize("fmt", ["svg", "json", "html"])
@pytest.mark.parametrize("ref", UNKNOWN_REFS.values(), ids=list(UNKNOWN_REFS))
def test_unknown_badge_is_404_problem(published: Published, ref: str, fmt: str) -> None:
    response = published.svc.client.get(f"/v1/badges/{ref}.{fmt}")
    assert_problem(response, 404, "not-found")
    assert response.headers["x-content-type-options"] == "nosniff"


MALFORMED_BADGES = {
    "asset id too short": "/v1/badges/img_abc123.svg",
    "upper-case hex": "/v1/badges/img_" + "A" * 24 + ".svg",
    "unknown prefix": "/v1/badges/vid_" + "0" * 24 + ".json",
    "sha256 too short": "/v1/badges/sha256-" + "0" * 63 + ".json",
    "unsupported format": f"/v1/badges/{ZERO_ASSET}.png",
    "no format": f"/v1/badges/{ZERO_ASSET}",
    "nested path": f"/v1/badges/{ZERO_ASSET}/x.svg",
    "script in the ref": "/v1/badges/%3Cscript%3E.svg",
}


@pytest.mark.parametrize("path", MALFORMED_BADGES.values(), ids=list(MALFORMED_BADGES))
def test_malformed_badge_path_is_404_problem(published: Published, path: str) -> None:
    response = published.svc.client.get(path)
    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == 404
    assert body["type"].startswith("/problems/")
    assert "<script" not in response.text


def test_malformed_badge_ref_has_the_not_found_problem_type(published: Published) -> None:
    assert_problem(published.svc.client.get("/v1/badges/img_abc123.svg"), 404, "not-found")


def test_badge_with_unsupported_lang_is_400(published: Published) -> None:
    response = published.svc.client.get(f"/v1/badges/{published.ai['id']}.svg", params={"lang": "fr"})
    assert_problem(response, 400, "bad-request")


def test_badge_batch(published: Published) -> None:
    client = published.svc.client
    refs = [published.ai["id"], published.camera["id"], published.article["id"], ZERO_ASSET, "not-a-ref"]
    response = client.get("/v1/badges", params={"refs": ",".join(refs)})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert response.headers["x-content-type-options"] == "nosniff"
    body = response.json()
    assert body["lang"] == "en"
    assert list(body["badges"]) == refs
    assert body["badges"][published.ai["id"]] == client.get(f"/v1/badges/{published.ai['id']}.json").json()
    assert body["badges"][published.camera["id"]]["badge"]["text"] == "Content Credentials"
    assert body["badges"][published.article["id"]]["badge"]["text"] == "Reported by AI"
    assert body["badges"][ZERO_ASSET] is None
    assert body["badges"]["not-a-ref"] is None


@pytest.mark.parametrize(
    ("params", "headers"),
    [({"lang": "zh-Hans"}, {}), ({}, {"Accept-Language": "zh-CN"})],
    ids=["?lang=zh-Hans", "Accept-Language zh-CN"],
)
def test_badge_batch_in_chinese(published: Published, params: dict[str, str], headers: dict[str, str]) -> None:
    response = published.svc.client.get(
        "/v1/badges", params={"refs": f"{published.ai['id']},{published.camera['id']}", **params}, headers=headers
    )
    body = response.json()
    assert body["lang"] == "zh-Hans"
    assert body["badges"][published.ai["id"]]["labels"] == [{"id": "ai_generated", "text": "AI 生成的图像"}]
    assert body["badges"][published.camera["id"]]["badge"]["text"] == "内容凭证"


def test_badge_batch_of_100_refs_is_allowed(published: Published) -> None:
    refs = [f"img_{i:024x}" for i in range(100)]
    response = published.svc.client.get("/v1/badges", params={"refs": ",".join(refs)})
    assert response.status_code == 200
    assert response.json()["badges"] == dict.fromkeys(refs)


BATCH_REJECTED: dict[str, dict[str, str]] = {
    "no refs parameter": {},
    "empty refs": {"refs": ""},
    "only commas": {"refs": ",,,"},
    "101 refs": {"refs": ",".join(f"img_{i:024x}" for i in range(101))},
    "unsupported lang": {"refs": ZERO_ASSET, "lang": "de"},
}


@pytest.mark.parametrize("params", BATCH_REJECTED.values(), ids=list(BATCH_REJECTED))
def test_badge_batch_rejections_are_400(published: Published, params: dict[str, str]) -> None:
    assert_problem(published.svc.client.get("/v1/badges", params=params), 400, "bad-request")


def test_new_upload_is_visible_in_badges_at_once(service: Service) -> None:
    data = images.png(seed=11)
    ref = f"sha256-{sha256(data)}"
    assert_problem(service.client.get(f"/v1/badges/{ref}.json"), 404, "not-found")
    assert service.upload(data, {"source": "ai_edited"}).status_code == 201
    badge = service.client.get(f"/v1/badges/{ref}.json")
    assert badge.status_code == 200
    assert badge.json()["badge"]["text"] == "AI-edited image"


# --------------------------------------------------------------------------------------------------
# 7. Re-verification when trust changes
# --------------------------------------------------------------------------------------------------


def test_badges_follow_the_trust_configuration(database: Database, tmp_path: Path, keys_dir: Path) -> None:
    data_dir = tmp_path / "var"
    old_root = tmp_path / "old-root.pem"

    with running(service_settings(data_dir, keys_dir, database)) as first:
        image = first.upload(images.jpeg(seed=12), {"source": "ai_generated"}).json()
        article = first.post_article("ai-weather.json").json()
        assert (image["state"], image["labels"]) == ("trusted", ["ai_generated"])
        first_fingerprint = first.ctx.trust.fingerprint
    shutil.copyfile(keys_dir / "root.pem", old_root)
    init_dev_keys(keys_dir, "Rotated Newsroom", force=True)  # new root, new signer: the old signer is untrusted

    with running(service_settings(data_dir, keys_dir, database)) as second:
        badge = second.client.get(f"/v1/badges/{image['id']}.json").json()
        assert (badge["state"], badge["labels"]) == ("untrusted", [])
        assert badge["badge"] == {"text": "Content Credentials not verified", "tone": "unverified"}
        zh = second.client.get(f"/v1/badges/{image['id']}.svg", params={"lang": "zh-Hans"}).text
        assert "<title>内容凭证未经验证</title>" in zh
        article_badge = second.client.get(f"/v1/badges/{article['id']}.json").json()
        assert (article_badge["state"], article_badge["labels"]) == ("untrusted", [])
        assert second.client.get(f"/v1/assets/{image['id']}").json()["state"] == "untrusted"
        events = [e.detail for e in second.events("reverify")]
        second_fingerprint = second.ctx.trust.fingerprint
        assert second_fingerprint != first_fingerprint
        expected = {"from": first_fingerprint, "to": second_fingerprint, "checked": 2, "changed": 2}
        assert {**expected, "policy": POLICY_VERSION} in events
        # the service's own new signer is trusted
        fresh = second.upload(images.jpeg(seed=13), {"source": "ai_generated"}).json()
        assert (fresh["state"], fresh["labels"]) == ("trusted", ["ai_generated"])

        again = reverify(second.ctx)  # nothing was made under other trust
        assert (again.checked, again.changed, again.previous) == (0, 0, second_fingerprint)
        forced = reverify(second.ctx, force=True)
        assert (forced.checked, forced.changed) == (3, 0)

    with running(service_settings(data_dir, keys_dir, database, trust_anchors=[old_root])) as third:
        badge = third.client.get(f"/v1/badges/{image['id']}.json").json()
        assert (badge["state"], badge["badge"]["text"]) == ("trusted", "AI-generated image")
        assert badge["labels"] == [{"id": "ai_generated", "text": "AI-generated image"}]
        assert third.client.get(f"/v1/badges/{article['id']}.json").json()["badge"]["text"] == "Reported by AI"
        fresh_badge = third.client.get(f"/v1/badges/{fresh['id']}.json").json()
        assert fresh_badge["badge"]["text"] == "AI-generated image"
        report = third.client.get(f"/v1/assets/{image['id']}/report", headers=third.bearer("auditor")).json()
        assert report["stored_decision"]["trust_fingerprint"] == third.ctx.trust.fingerprint
        assert report["verification"]["state"] == "trusted"


def test_reverify_directly_updates_stored_decisions(database: Database, tmp_path: Path, keys_dir: Path) -> None:
    with running(service_settings(tmp_path / "var", keys_dir, database)) as svc:
        image = svc.upload(images.jpeg(seed=14), {"source": "ai_generated"}).json()
        assert reverify(svc.ctx).checked == 0
        svc.ctx.trust = type(svc.ctx.trust)()  # trust nothing
        report = reverify(svc.ctx)
        assert (report.checked, report.changed) == (1, 1)
        badge = svc.client.get(f"/v1/badges/{image['id']}.json").json()  # badge_cache_seconds=0
        assert (badge["state"], badge["labels"]) == ("untrusted", [])
        assert svc.events("reverify")[-1].detail["changed"] == 1


def _edit_stored_asset(svc: Service, asset_id: str, **verdict: Any) -> None:
    """Change a stored decision as an older release (or an earlier signing) would have left it."""
    with svc.session() as session:
        row = session.get(Asset, asset_id)
        assert row is not None
        labels = verdict.pop("labels", None)
        row.verdict = {**row.verdict, **verdict}
        if labels is not None:
            row.labels = labels
        session.commit()


def test_a_decision_made_under_another_policy_is_recomputed_and_the_badge_follows(
    database: Database, tmp_path: Path, keys_dir: Path
) -> None:
    with running(service_settings(tmp_path / "var", keys_dir, database)) as svc:
        image = svc.upload(images.jpeg(seed=15), {"source": "ai_generated"}).json()
        # As if stamped by a release whose policy gave no label: same trust, older policy.
        _edit_stored_asset(svc, image["id"], policy_version="labels/0", labels=[])
        report = reverify(svc.ctx)
        assert (report.checked, report.changed) == (1, 1)
        badge = svc.client.get(f"/v1/badges/{image['id']}.json").json()
        assert [label["id"] for label in badge["labels"]] == ["ai_generated"]
        assert reverify(svc.ctx).checked == 0  # current now
        assert svc.events("reverify")[-1].detail["policy"] == POLICY_VERSION


def test_a_missing_timestamp_note_survives_re_verification(database: Database, tmp_path: Path, keys_dir: Path) -> None:
    note = "signed without a timestamp: the timestamp authority did not answer within 5 s"
    with running(service_settings(tmp_path / "var", keys_dir, database)) as svc:
        image = svc.upload(images.jpeg(seed=16), {"source": "camera"}).json()
        _edit_stored_asset(svc, image["id"], timestamp_note=note)
        assert reverify(svc.ctx, force=True).checked == 1
        with svc.session() as session:
            row = session.get(Asset, image["id"])
            assert row is not None
            assert row.verdict["timestamp_note"] == note
            assert row.verdict["policy_version"] == POLICY_VERSION


# --------------------------------------------------------------------------------------------------
# 8. Durability: no row without its blobs, no acknowledgement without the row
# --------------------------------------------------------------------------------------------------


class CommitFails:
    """A session factory whose sessions fail to commit while they hold a new asset or article version."""

    def __init__(self, sessions: Callable[[], Session]) -> None:
        self.sessions = sessions
        self.failures = 0

    def __call__(self) -> Session:
        session = self.sessions()
        commit = session.commit

        def failing_commit() -> None:
            if any(isinstance(obj, Asset | ArticleVersion) for obj in session.new):
                self.failures += 1
                raise OSError("simulated crash between the blob write and the commit")
            commit()

        session.commit = failing_commit  # type: ignore[method-assign]
        return session


DURABLE: dict[str, tuple[Callable[[Service], Any], type[Any]]] = {
    "image upload": (lambda s: s.upload(images.jpeg(seed=15), {"source": "ai_generated"}), Asset),
    "article post": (lambda s: s.post_article("ai-weather.json"), ArticleVersion),
}


@pytest.mark.parametrize(("send", "model"), DURABLE.values(), ids=list(DURABLE))
def test_failed_commit_is_a_500_with_no_row_and_a_retry_succeeds(
    database: Database,
    tmp_path: Path,
    keys_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    send: Callable[[Service], Any],
    model: type[Any],
) -> None:
    with running(service_settings(tmp_path / "var", keys_dir, database), raise_server_exceptions=False) as svc:
        failing = CommitFails(svc.ctx.sessions)
        with monkeypatch.context() as patch:
            patch.setattr(svc.ctx, "sessions", failing)
            response = send(svc)
        assert failing.failures == 1
        assert_problem(response, 500, "internal-error")
        assert "simulated" not in response.text  # nothing internal leaks
        assert svc.rows(model) == 0
        assert svc.events("stamp") == []
        assert svc.events("stamp_article") == []
        orphans = svc.blob_files()
        assert orphans  # the blobs were written first

        retry = send(svc)
        assert retry.status_code == 201, retry.text
        assert svc.rows(model) == 1
        assert orphans <= svc.blob_files()
        badge = svc.client.get(f"/v1/badges/{retry.json()['id']}.json")
        assert badge.json()["badge"]["tone"] == "ai"


# --------------------------------------------------------------------------------------------------
# 9. Rate limit
# --------------------------------------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The rate limiter's clock, moved by hand (``clock[0]`` in seconds)."""
    now = [1000.0]
    # The limiter is shared by every process through the database, so it reads the wall clock.
    monkeypatch.setattr(limits, "time", types.SimpleNamespace(time=lambda: now[0], monotonic=lambda: now[0]))
    return now


@pytest.fixture
def limited(database: Database, tmp_path: Path, keys_dir: Path, clock: list[float]) -> Iterator[Service]:
    with running(service_settings(tmp_path / "var", keys_dir, database, rate_limit_per_minute=2)) as svc:
        yield svc


def test_third_upload_in_a_row_is_429(limited: Service) -> None:
    data = images.jpeg(seed=16)
    assert limited.upload(data).status_code == 201
    assert limited.upload(data).status_code == 200
    refused = limited.upload(data)
    assert_problem(refused, 429, "rate-limited")
    assert int(refused.headers["retry-after"]) >= 1
    # per token: another token still gets through, and public reads are not limited
    assert limited.upload(data, role="admin").status_code == 200
    assert limited.client.get(f"/v1/badges/sha256-{sha256(data)}.json").status_code == 200
    assert 'provenance_rejections_total{reason="rate_limited"} 1.0' in limited.client.get("/metrics").text


def test_rate_limit_refills_with_time(limited: Service, clock: list[float]) -> None:
    data = images.jpeg(seed=16)
    for _ in range(2):
        assert limited.upload(data).status_code in (200, 201)
    assert limited.upload(data).status_code == 429
    clock[0] += 30.0  # 2 per minute: one request every 30 s
    assert limited.upload(data).status_code == 200
    assert limited.upload(data).status_code == 429


def test_retry_after_is_long_enough(limited: Service, clock: list[float]) -> None:
    data = images.jpeg(seed=16)
    for _ in range(2):
        limited.upload(data)
    refused = limited.upload(data)
    assert refused.status_code == 429
    clock[0] += float(refused.headers["retry-after"])
    assert limited.upload(data).status_code == 200


# --------------------------------------------------------------------------------------------------
# The CLI's tokens work against the service
# --------------------------------------------------------------------------------------------------


def test_cli_token_works_against_the_service(database: Database, tmp_path: Path, keys_dir: Path) -> None:
    data_dir = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVENANCE_")} | database.env(data_dir)
    command = [sys.executable, "-m", "service.cli", "tokens", "create", "--role", "newsroom", "--name", "x"]
    done = subprocess.run(
        [*command, "--data-dir", str(data_dir), "--keys-dir", str(keys_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1, done.stdout
    token = lines[0]
    assert re.fullmatch(r"pv_[A-Za-z0-9_-]{43}", token)
    assert done.stdout == token + "\n"

    with running(service_settings(data_dir, keys_dir, database)) as svc:
        headers = {"Authorization": f"Bearer {token}"}
        created = svc.upload(images.jpeg(seed=17), {"source": "camera"}, role=None, headers=headers)
        assert created.status_code == 201, created.text
        report = svc.client.get(created.json()["links"]["report"], headers=svc.bearer("auditor")).json()
        assert report["stamped_by"] == {"token": "x", "role": "newsroom"}
        forbidden = svc.client.get(created.json()["links"]["report"], headers=headers)
        assert_problem(forbidden, 403, "forbidden")


def test_the_same_bytes_cannot_silently_lose_an_earlier_ai_declaration(
    database: Database, tmp_path: Path, keys_dir: Path
) -> None:
    data = images.jpeg(seed=41)
    digest = hashlib.sha256(data).hexdigest()
    with running(service_settings(tmp_path / "var", keys_dir, database)) as svc:
        first = svc.upload(data, {"source": "ai_generated"})
        assert first.status_code == 201
        before = svc.stored()
        refused = svc.upload(data, {"source": "camera"})
        body = assert_problem(refused, 409, "upstream-conflict")
        assert first.json()["id"] in body["detail"]
        assert svc.stored() == before  # nothing stored
        reason = "the agency confirmed it is a photograph; the earlier declaration was a mistake"
        second = svc.upload(data, {"source": "camera", "override_upstream": reason})
        assert second.status_code == 201, second.text
        # The sha256- badge of the shared original keeps the trusted AI label.
        badge = svc.client.get(f"/v1/badges/sha256-{digest}.json").json()
        assert [label["id"] for label in badge["labels"]] == ["ai_generated"]
        report = svc.client.get(f"/v1/assets/{second.json()['id']}/report", headers=svc.bearer("auditor")).json()
        assert report["declaration"]["override_upstream"] == reason
        overrides = svc.events("stamp")[-1].detail["overrides"]
        assert overrides == {"assets": [first.json()["id"]], "reason": reason}
        # A later AI declaration of bytes first declared a camera photo is no conflict.
        other = images.jpeg(seed=42)
        assert svc.upload(other, {"source": "camera"}).status_code == 201
        assert svc.upload(other, {"source": "ai_edited"}).status_code == 201
