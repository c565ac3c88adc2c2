"""Signed renditions (``GET /v1/assets/{id}/renditions/{width}.{jpg|webp}``) on both databases: every width
and format, the manifest as c2pa-python reads it (the original as parentOf ingredient with its manifest,
opened/resized/converted actions, the label kept, Trusted), storage and caching, concurrent first requests,
refused widths and formats, withdrawal, and the rendition's badge (also through the change feed)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import c2pa
import httpx
import pytest
from PIL import Image
from sqlalchemy import select

from provenance import inspect
from provenance.keys import init_dev_keys
from provenance.softbinding import ALG, LABEL, from_assertion, image_binding
from service.store.db import Rendition

from . import images
from .databases import Database
from .service_support import STRONG_ETAG, Service, assert_problem, running, service_settings

ORG = "Rendition Test Newsroom"
ORIGINAL_SIZE = (800, 600)
IPTC_TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


@dataclass(frozen=True)
class Published:
    """A service holding an AI-generated JPEG and a camera PNG, both 800x600 (read-only tests)."""

    svc: Service
    ai: dict[str, Any]
    camera: dict[str, Any]


@pytest.fixture(scope="module")
def published(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Published]:
    root = tmp_path_factory.mktemp("renditions")
    init_dev_keys(root / "keys", ORG)
    with running(service_settings(root / "var", root / "keys", database)) as svc:
        ai = svc.upload(images.jpeg(*ORIGINAL_SIZE, seed=31), {"source": "ai_generated", "title": "Harbour"})
        camera = svc.upload(images.png(*ORIGINAL_SIZE, seed=32), {"source": "camera"})
        assert [ai.status_code, camera.status_code] == [201, 201]
        yield Published(svc, ai.json(), camera.json())


@pytest.fixture
def svc(database: Database, tmp_path: Path, keys_dir: Path) -> Iterator[Service]:
    """A service of its own (for tests that change state), caching badges so that the change feed matters."""
    with running(service_settings(tmp_path / "var", keys_dir, database, badge_cache_seconds=60)) as service:
        yield service


def sdk_report(svc: Service, data: bytes, media_type: str) -> dict[str, Any]:
    """The manifest store of ``data`` as c2pa-python reads it, trusting the service's root (and only it)."""
    anchors = (svc.ctx.settings.keys_dir / "root.pem").read_text()
    settings = {
        "version": 1,
        "trust": {"trust_anchors": anchors},
        "verify": {"verify_trust": True, "remote_manifest_fetch": False, "ocsp_fetch": False},
    }
    context = c2pa.Context.from_dict(settings)
    with c2pa.Reader(media_type, io.BytesIO(data), context=context) as reader:
        report: dict[str, Any] = json.loads(reader.json())
    return report


def active(report: dict[str, Any]) -> dict[str, Any]:
    manifest: dict[str, Any] = report["manifests"][report["active_manifest"]]
    return manifest


def assertion(manifest: dict[str, Any], label: str) -> dict[str, Any]:
    found: dict[str, Any] = next(a["data"] for a in manifest["assertions"] if a["label"] == label)
    return found


def rendition_path(asset: dict[str, Any], width: int | str, fmt: str) -> str:
    return f"/v1/assets/{asset['id']}/renditions/{width}.{fmt}"


# Each original, width and format: (original, width, extension, media type, labels, converted?).
CASES: dict[str, tuple[str, int, str, str, list[str], bool]] = {
    "AI JPEG at 150 as JPEG": ("ai", 150, "jpg", "image/jpeg", ["ai_generated"], False),
    "AI JPEG at 300 as WebP": ("ai", 300, "webp", "image/webp", ["ai_generated"], True),
    "AI JPEG at 768 as JPEG": ("ai", 768, "jpg", "image/jpeg", ["ai_generated"], False),
    "AI JPEG at 768 as WebP": ("ai", 768, "webp", "image/webp", ["ai_generated"], True),
    "camera PNG at 300 as JPEG": ("camera", 300, "jpg", "image/jpeg", [], True),
    "camera PNG at 150 as WebP": ("camera", 150, "webp", "image/webp", [], True),
}


@pytest.mark.parametrize(
    ("which", "width", "ext", "media_type", "labels", "converted"), CASES.values(), ids=list(CASES)
)
def test_a_rendition_is_resized_signed_and_keeps_the_original(
    published: Published, which: str, width: int, ext: str, media_type: str, labels: list[str], converted: bool
) -> None:
    svc = published.svc
    asset = getattr(published, which)
    response = svc.client.get(rendition_path(asset, width, ext))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == media_type
    data = response.content
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (width, round(ORIGINAL_SIZE[1] * width / ORIGINAL_SIZE[0]))
        assert img.get_format_mimetype() == media_type

    report = sdk_report(svc, data, media_type)
    assert report["validation_state"] == "Trusted", report.get("validation_status")
    manifest = active(report)
    actions = [a["action"] for a in assertion(manifest, "c2pa.actions.v2")["actions"]]
    assert actions == ["c2pa.opened", "c2pa.resized", *(["c2pa.converted"] if converted else [])]
    (parent,) = manifest["ingredients"]
    assert parent["relationship"] == "parentOf"
    # The parent ingredient is the original's own manifest, carried over whole (provenance is never erased).
    original = svc.client.get(f"/v1/assets/{asset['id']}/content").content
    original_report = sdk_report(svc, original, asset["media_type"])
    assert parent["active_manifest"] == original_report["active_manifest"]
    carried = report["manifests"][parent["active_manifest"]]
    assert carried["signature_info"] == active(original_report)["signature_info"]
    assert carried["assertions"] == active(original_report)["assertions"]
    binding = assertion(manifest, LABEL)
    assert binding["alg"] == ALG
    fingerprint = from_assertion(binding)  # the rendition's own pixels' ISCC Image-Code
    assert fingerprint is not None
    assert fingerprint == image_binding(data)

    verdict = inspect(data, svc.ctx.trust)  # the labels come from the ingredient: the rendition declares none
    assert verdict.state.value == "trusted"
    assert list(verdict.labels) == labels
    opened = assertion(manifest, "c2pa.actions.v2")["actions"][0]
    assert "digitalSourceType" not in opened
    if labels:
        origin = assertion(carried, "c2pa.actions.v2")["actions"][0]
        assert origin["digitalSourceType"] == IPTC_TRAINED


def test_a_rendition_is_stored_once_and_served_immutable(published: Published) -> None:
    svc = published.svc
    path = rendition_path(published.ai, 300, "jpg")
    first = svc.client.get(path)
    again = svc.client.get(path)
    assert first.status_code == again.status_code == 200
    assert again.content == first.content  # served from storage: a second signing would differ
    digest = hashlib.sha256(first.content).hexdigest()
    assert first.headers["etag"] == f'"{digest}"'
    assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert published.ai["id"] in first.headers["surrogate-key"].split()
    assert svc.client.get(path, headers={"If-None-Match": first.headers["etag"]}).status_code == 304
    with svc.session() as session:
        rows = list(
            session.scalars(select(Rendition).where(Rendition.asset_id == published.ai["id"], Rendition.width == 300))
        )
    stored = {(r.format, r.sha256, r.size) for r in rows}
    assert ("jpg", digest, len(first.content)) in stored
    assert svc.ctx.blobs.get(digest) == first.content


def test_concurrent_first_requests_make_one_rendition(published: Published) -> None:
    svc = published.svc
    path = rendition_path(published.camera, 768, "jpg")
    barrier = threading.Barrier(4)

    def fetch() -> httpx.Response:
        barrier.wait()
        return svc.client.get(path)

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: fetch(), range(4)))
    assert [a.status_code for a in answers] == [200] * 4
    assert len({a.content for a in answers}) == 1
    with svc.session() as session:
        rows = session.scalars(select(Rendition).where(Rendition.asset_id == published.camera["id"])).all()
    assert [(r.width, r.format) for r in rows].count((768, "jpg")) == 1


REFUSED: dict[str, tuple[str, int, str]] = {
    "width not configured": ("1000.jpg", 404, "not-found"),
    "configured width above the original's": ("1024.jpg", 404, "not-found"),
    "upscale asked again (remembered)": ("1024.webp", 404, "not-found"),
    "width zero": ("0.jpg", 422, "invalid-request"),
    "width not a number": ("wide.jpg", 422, "invalid-request"),
    "width beyond any bound": ("99999999999.jpg", 422, "invalid-request"),
    "unsupported format": ("300.png", 422, "invalid-request"),
    "no format": ("300", 404, "not-found"),
}


@pytest.mark.parametrize(("name", "status", "kind"), REFUSED.values(), ids=list(REFUSED))
def test_refused_renditions_are_problems(published: Published, name: str, status: int, kind: str) -> None:
    response = published.svc.client.get(f"/v1/assets/{published.ai['id']}/renditions/{name}")
    assert_problem(response, status, kind)


def test_an_unknown_asset_has_no_renditions(published: Published) -> None:
    assert_problem(published.svc.client.get("/v1/assets/img_" + "0" * 24 + "/renditions/300.jpg"), 404, "not-found")
    assert_problem(published.svc.client.get("/v1/assets/nonsense/renditions/300.jpg"), 404, "not-found")


def _badge(svc: Service, ref: str) -> dict[str, Any]:
    response = svc.client.get(f"/v1/badges/{ref}.json")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _until_state(svc: Service, ref: str, state: str) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while (badge := _badge(svc, ref))["state"] != state and time.monotonic() < deadline:
        time.sleep(0.05)
    return badge


def test_withdrawal_takes_renditions_and_their_badges_with_it(svc: Service) -> None:
    asset = svc.upload(images.jpeg(*ORIGINAL_SIZE, seed=33), {"source": "ai_generated"}).json()
    path = rendition_path(asset, 150, "webp")
    made = svc.client.get(path)
    assert made.status_code == 200, made.text
    ref = f"sha256-{hashlib.sha256(made.content).hexdigest()}"
    badge = _badge(svc, ref)  # now held in the badge cache
    assert (badge["ref"], badge["kind"], badge["state"]) == (ref, "image", "trusted")
    assert [label["id"] for label in badge["labels"]] == ["ai_generated"]

    withdrawn = svc.client.post(
        f"/v1/assets/{asset['id']}/withdraw", json={"reason": "wrong"}, headers=svc.bearer("newsroom")
    )
    assert withdrawn.status_code == 200, withdrawn.text
    body = assert_problem(svc.client.get(path), 410, "withdrawn")
    assert body["withdrawn_at"] == withdrawn.json()["withdrawal"]["withdrawn_at"]
    assert_problem(svc.client.get(rendition_path(asset, 300, "jpg")), 410, "withdrawn")  # never made while withdrawn
    assert _until_state(svc, ref, "withdrawn")["state"] == "withdrawn"  # the change feed names the rendition

    reinstated = svc.client.post(
        f"/v1/assets/{asset['id']}/reinstate", json={"reason": "fine"}, headers=svc.bearer("admin")
    )
    assert reinstated.status_code == 200, reinstated.text
    again = svc.client.get(path)
    assert again.status_code == 200
    assert again.content == made.content
    assert [label["id"] for label in _until_state(svc, ref, "trusted")["labels"]] == ["ai_generated"]
    assert made.headers["etag"] == again.headers["etag"]


def test_only_configured_widths_are_made(database: Database, tmp_path: Path, keys_dir: Path) -> None:
    settings = service_settings(tmp_path / "var", keys_dir, database, rendition_widths=[200])
    with running(settings) as svc:
        asset = svc.upload(images.jpeg(400, 300, seed=34), {"source": "human"}).json()
        assert svc.client.get(rendition_path(asset, 200, "jpg")).status_code == 200
        body = assert_problem(svc.client.get(rendition_path(asset, 300, "jpg")), 404, "not-found")
        assert body["allowed"] == [200]
        assert svc.rows(Rendition) == 1
        assert re.fullmatch(STRONG_ETAG, svc.client.get(rendition_path(asset, 200, "jpg")).headers["etag"])
