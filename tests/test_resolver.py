"""The Soft Binding Resolution API and ``POST /v1/badges/match`` on both databases: a copy that lost its
manifest (resized, re-encoded) finds its original by binding and by content, the manifest store is served
as ``application/c2pa`` and is the original's (it does not hard-bind the copy), a match is said as a
recovered manifest, withdrawn items never match, hostile and oversized requests are refused, lookups are
rate-limited per address, and the multi-index search returns exactly what a full scan would."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import c2pa
import pytest
from PIL import Image

from provenance import softbinding
from provenance.keys import init_dev_keys
from provenance.softbinding import ALG, MAX_DISTANCE, SoftBinding
from service.resolver.index import MAX_RESULTS, matches
from service.store.db import SoftBindingEntry, Withdrawal, hamming64, signed64

from . import images
from .databases import Database
from .service_support import Service, assert_problem, running, sample, service_settings

ORG = "Resolver Test Newsroom"


@dataclass(frozen=True)
class Stored:
    svc: Service
    ai: dict[str, Any]  # an AI-generated scene, 1200x900 JPEG
    other: dict[str, Any]  # a camera scene
    original: bytes  # the AI scene as uploaded
    article: dict[str, Any]


def scene_jpeg(seed: int, size: tuple[int, int] = (1200, 900)) -> bytes:
    return images.encode(images.scene(*size, seed=seed), "JPEG", quality=92)


@pytest.fixture(scope="module")
def stored(database: Database, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stored]:
    root = tmp_path_factory.mktemp("resolver")
    init_dev_keys(root / "keys", ORG)
    with running(service_settings(root / "var", root / "keys", database, match_per_minute=10_000)) as svc:
        original = scene_jpeg(41)
        ai = svc.upload(original, {"source": "ai_generated", "title": "Storm over the bay"})
        other = svc.upload(scene_jpeg(42), {"source": "camera"})
        article = svc.post_article("wind-record.json")
        assert [ai.status_code, other.status_code, article.status_code] == [201, 201, 201]
        yield Stored(svc, ai.json(), other.json(), original, article.json())


def stamped_bytes(svc: Service, asset: dict[str, Any]) -> bytes:
    return svc.client.get(f"/v1/assets/{asset['id']}/content").content


def fingerprint_of(svc: Service, asset: dict[str, Any]) -> SoftBinding:
    """The binding signed into the stored asset's manifest, as inspect reported it at stamping."""
    report = svc.client.get(f"/v1/assets/{asset['id']}/report", headers=svc.bearer("auditor")).json()
    (claim,) = report["verification"]["soft_bindings"]
    assert claim["alg"] == ALG
    return softbinding.parse_value(ALG, claim["code"])


def copy_of(data: bytes, scale: float = 0.5, quality: int = 70) -> bytes:
    """What a CMS or a social network does: resize and re-encode, which drops the manifest."""
    img = Image.open(io.BytesIO(data)).convert("RGB")
    size = (round(img.width * scale), round(img.height * scale))
    return images.encode(img.resize(size, Image.Resampling.BILINEAR), "JPEG", quality=quality)


def manifest_id_of(svc: Service, asset: dict[str, Any]) -> str:
    report = svc.client.get(f"/v1/assets/{asset['id']}/report", headers=svc.bearer("auditor")).json()
    label: str = report["verification"]["active_manifest"]
    return label


def test_supported_algorithms(stored: Stored) -> None:
    answer = stored.svc.client.get("/services/supportedAlgorithms")
    assert answer.status_code == 200
    assert answer.json() == {"watermarks": [], "fingerprints": [{"alg": "io.iscc.v0"}]}


def test_by_binding_finds_the_manifest_in_every_form_of_the_value(stored: Stored) -> None:
    svc = stored.svc
    binding = fingerprint_of(svc, stored.ai)
    expected = {
        "manifestId": manifest_id_of(svc, stored.ai),
        "similarityScore": 100,
        "distance": 0,
        "item": stored.ai["id"],
        "badge": f"/v1/badges/{stored.ai['id']}.json",
    }
    for value in (binding.base64, binding.value):
        got = svc.client.get("/matches/byBinding", params={"alg": ALG, "value": value})
        assert got.status_code == 200, got.text
        assert got.json() == {"matches": [expected]}
        posted = svc.client.post("/matches/byBinding", json={"alg": ALG, "value": value})
        assert posted.json() == {"matches": [expected]}


def test_a_copy_without_its_manifest_finds_its_original_by_content(stored: Stored) -> None:
    svc = stored.svc
    for copy in (copy_of(stored.original), copy_of(stamped_bytes(svc, stored.ai), 0.25, 60)):
        assert b"c2pa" not in copy  # no manifest left
        answer = svc.client.post("/matches/byContent", content=copy, headers={"Content-Type": "image/jpeg"})
        assert answer.status_code == 200, answer.text
        (match,) = answer.json()["matches"]
        assert match["item"] == stored.ai["id"]
        assert match["manifestId"] == manifest_id_of(svc, stored.ai)
        assert 0 <= match["distance"] <= MAX_DISTANCE
        assert 0 < match["similarityScore"] <= 100
    unrelated = svc.client.post("/matches/byContent", content=scene_jpeg(977), headers={"Content-Type": "image/png"})
    assert unrelated.json() == {"matches": []}  # the declared image type does not matter: bytes are sniffed


def test_the_manifest_store_is_the_originals_and_does_not_bind_the_copy(stored: Stored) -> None:
    svc = stored.svc
    manifest_id = manifest_id_of(svc, stored.ai)
    answer = svc.client.get(f"/manifests/{manifest_id}")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/c2pa"
    store = answer.content
    again = svc.client.get(f"/manifests/{manifest_id}", headers={"If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304
    # With the stamped original, the store verifies; with the copy in hand, its hard binding fails.
    original = stamped_bytes(svc, stored.ai)
    with c2pa.Reader("image/jpeg", io.BytesIO(original), store) as reader:
        report = json.loads(reader.json())
    assert report["active_manifest"] == manifest_id
    with c2pa.Reader("image/jpeg", io.BytesIO(copy_of(original)), store) as reader:
        codes = {s["code"] for s in json.loads(reader.json()).get("validation_status", [])}
    assert any("mismatch" in code for code in codes), codes
    assert_problem(svc.client.get("/manifests/urn:c2pa:00000000-0000-0000-0000-000000000000"), 404, "not-found")


def test_an_article_is_found_by_its_text(stored: Stored) -> None:
    svc = stored.svc
    text = svc.client.get(stored.article["links"]["text"]).content.decode()
    edited = text.replace("53%", "54%", 1)
    answer = svc.client.post("/matches/byContent", content=edited.encode(), headers={"Content-Type": "text/plain"})
    (match,) = answer.json()["matches"]
    assert match["item"] == stored.article["id"]
    badge = svc.client.post("/v1/badges/match", content=text.encode(), headers={"Content-Type": "text/plain"})
    assert badge.json()["original"]["labels"] == [{"id": "ai_assisted", "text": "Written with AI assistance"}]
    # An image never matches a text (the kinds are separate).
    assert json.loads(sample("wind-record.json"))["body_text"] not in stored.original.decode("latin-1")


def test_a_badge_match_speaks_of_the_original_never_of_the_copy(stored: Stored) -> None:
    svc = stored.svc
    copy = copy_of(stamped_bytes(svc, stored.ai))
    answer = svc.client.post("/v1/badges/match", content=copy, headers={"Content-Type": "image/jpeg"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["state"] == "matching_original"
    assert body["text"] == "Credentials found for a matching original"
    assert "no Content Credentials of its own" in body["note"]
    assert body["original"]["ref"] == stored.ai["id"]
    assert body["original"]["state"] == "trusted"
    assert body["original"]["labels"] == [{"id": "ai_generated", "text": "AI-generated image"}]
    assert body["original"]["signer"] == ORG
    assert 0 <= body["match"]["distance"] <= MAX_DISTANCE
    zh = svc.client.post("/v1/badges/match?lang=zh-Hans", content=copy, headers={"Content-Type": "image/jpeg"})
    assert zh.json()["text"] == "找到匹配原件的内容凭证"
    assert zh.json()["original"]["labels"][0]["text"] == "AI 生成的图像"
    none = svc.client.post("/v1/badges/match", content=scene_jpeg(978), headers={"Content-Type": "image/jpeg"})
    assert none.json() == {"state": "no_match", "text": "No credentials found for this content", "lang": "en"}


def test_refusals(stored: Stored) -> None:
    client = stored.svc.client
    binding = fingerprint_of(stored.svc, stored.ai)
    assert_problem(
        client.get("/matches/byBinding", params={"alg": "com.example.wm", "value": "AA=="}), 400, "invalid-binding"
    )
    assert_problem(client.get("/matches/byBinding", params={"alg": ALG, "value": "%%%"}), 400, "invalid-binding")
    assert_problem(client.get("/matches/byBinding", params={"alg": ALG}), 422, "invalid-request")
    assert_problem(client.post("/matches/byBinding", json={"alg": ALG}), 422, "invalid-request")
    too_many = {"alg": ALG, "value": binding.base64, "maxResults": 0}
    assert_problem(client.get("/matches/byBinding", params=too_many), 422, "invalid-request")
    pdf = client.post("/matches/byContent", content=b"%PDF-1.7", headers={"Content-Type": "application/pdf"})
    assert_problem(pdf, 415, "unsupported-media")
    flat = images.encode(Image.new("RGB", (300, 200), (9, 9, 9)), "PNG")
    assert_problem(
        client.post("/matches/byContent", content=flat, headers={"Content-Type": "image/png"}), 415, "unsupported-media"
    )
    garbage = client.post(
        "/matches/byContent", content=b"\x89PNG\r\n\x1a\n" + b"\0" * 64, headers={"Content-Type": "image/png"}
    )
    assert garbage.status_code in (415, 422), garbage.text
    assert_problem(
        client.post("/matches/byContent", content=b"", headers={"Content-Type": "image/jpeg"}), 400, "empty-body"
    )
    other = client.post(
        "/matches/byContent?alg=com.example.wm", content=stored.original, headers={"Content-Type": "image/jpeg"}
    )
    assert_problem(other, 400, "invalid-binding")
    assert_problem(
        client.post("/v1/badges/match?lang=fr", content=stored.original, headers={"Content-Type": "image/jpeg"}),
        400,
        "invalid-language",
    )
    # Only the API answers POST /v1/badges/match; every other badge path stays read-only.
    assert client.post("/v1/badges/img_0.json").status_code == 405
    assert MAX_RESULTS == 20


def test_bodies_and_rates_are_bounded(database: Database, tmp_path: Path, keys_dir: Path) -> None:
    settings = service_settings(tmp_path / "var", keys_dir, database, match_per_minute=3, match_max_bytes=50_000)
    with running(settings) as svc:
        big = images.encode(images.noise(400, 400), "PNG")
        assert len(big) > 50_000
        refused = svc.client.post("/matches/byContent", content=big, headers={"Content-Type": "image/png"})
        assert_problem(refused, 413, "input-too-large")
        statuses = [
            svc.client.get("/matches/byBinding", params={"alg": ALG, "value": "ISCC:EEA4GQZQTY6J5DTH"}).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 200]  # the oversized body was refused before it reached the limiter
        limited = svc.client.post("/v1/badges/match", content=b"x", headers={"Content-Type": "text/plain"})
        assert_problem(limited, 429, "rate-limited")
        assert int(limited.headers["Retry-After"]) >= 1
        assert svc.client.get("/services/supportedAlgorithms").status_code == 200  # not a lookup


def test_a_withdrawn_item_never_matches_and_its_manifest_is_gone(
    database: Database, tmp_path: Path, keys_dir: Path
) -> None:
    with running(service_settings(tmp_path / "var", keys_dir, database)) as svc:
        asset = svc.upload(scene_jpeg(43), {"source": "ai_generated"}).json()
        binding = fingerprint_of(svc, asset)
        manifest_id = manifest_id_of(svc, asset)
        query = {"alg": ALG, "value": binding.value}
        assert len(svc.client.get("/matches/byBinding", params=query).json()["matches"]) == 1
        withdrawn = svc.client.post(
            f"/v1/assets/{asset['id']}/withdraw", json={"reason": "wrong picture"}, headers=svc.bearer("newsroom")
        )
        assert withdrawn.status_code == 200, withdrawn.text
        assert svc.client.get("/matches/byBinding", params=query).json() == {"matches": []}
        assert_problem(svc.client.get(f"/manifests/{manifest_id}"), 410, "withdrawn")
        copy = copy_of(stamped_bytes_of_row(svc, asset["id"]))
        none = svc.client.post("/v1/badges/match", content=copy, headers={"Content-Type": "image/jpeg"})
        assert none.json()["state"] == "no_match"


def stamped_bytes_of_row(svc: Service, asset_id: str) -> bytes:
    """A withdrawn asset's stamped bytes, from the store (its public content answers 410)."""
    from service.store.db import Asset

    with svc.session() as session:
        row = session.get(Asset, asset_id)
        assert row is not None
        digest = row.stamped_sha256
    return svc.ctx.blobs.get(digest)


def test_the_multi_index_search_returns_what_a_full_scan_returns(
    database: Database, tmp_path: Path, keys_dir: Path
) -> None:
    rng = random.Random(5)
    with running(service_settings(tmp_path / "var", keys_dir, database)) as svc:
        codes = [rng.getrandbits(64) for _ in range(3000)]
        planted = []
        for query in codes[:40]:  # neighbours of the first codes at every distance up to the threshold and past it
            for distance in (1, MAX_DISTANCE // 2, MAX_DISTANCE, MAX_DISTANCE + 1, MAX_DISTANCE + 3):
                code = query
                for bit in rng.sample(range(64), distance):
                    code ^= 1 << bit
                planted.append(code)
        everything = codes + planted
        with svc.session() as session:
            session.add_all(
                SoftBindingEntry.of(f"urn:test:{i}", "image", code, f"img_{i:024x}")
                for i, code in enumerate(everything)
            )
            session.add(SoftBindingEntry.of("urn:test:text", "text", codes[0], "art_" + "0" * 24, 1))
            session.add(Withdrawal(item_id=f"img_{1:024x}", kind="image", reason="test"))
            session.commit()
        with svc.session() as session:
            for q in codes[:40] + [rng.getrandbits(64) for _ in range(10)]:
                binding = SoftBinding(ALG, "ISCC:test", "image", q)
                found = [(m.manifest_id, m.distance) for m in matches(session, binding, MAX_RESULTS)]
                expected = sorted(
                    (
                        (f"urn:test:{i}", hamming64(signed64(q), signed64(c)))
                        for i, c in enumerate(everything)
                        if (q ^ c).bit_count() <= MAX_DISTANCE and i != 1
                    ),
                    key=lambda pair: pair[1],
                )[:MAX_RESULTS]
                assert sorted(found, key=lambda p: (p[1], p[0])) == sorted(expected, key=lambda p: (p[1], p[0]))
                assert [d for _m, d in found] == sorted(d for _m, d in found)  # nearest first
