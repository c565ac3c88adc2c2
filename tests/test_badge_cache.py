"""Badge hot path details: conditional requests and stale-while-revalidate caching."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.store.db import Asset

from . import images
from .service_support import Service, running, service_settings


@pytest.fixture
def cached_service(tmp_path: Path, keys_dir: Path) -> Iterator[Service]:
    with running(service_settings(tmp_path / "var", keys_dir, badge_cache_seconds=0.2)) as svc:
        yield svc


def test_304_has_no_content_length_and_weak_validators_match(cached_service: Service) -> None:
    asset = cached_service.upload(images.jpeg(seed=31), {"source": "ai_generated"}).json()
    url = f"/v1/badges/{asset['id']}.svg"
    first = cached_service.client.get(url)
    etag = first.headers["etag"]
    assert not etag.startswith("W/")
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = cached_service.client.get(url, headers={"If-None-Match": header})
        assert again.status_code == 304, header
        assert "content-length" not in again.headers
        assert again.headers["etag"] == etag
    assert cached_service.client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200


def test_stale_badge_is_served_then_refreshed_in_the_background(cached_service: Service) -> None:
    asset = cached_service.upload(images.jpeg(seed=32), {"source": "ai_generated"}).json()
    url = f"/v1/badges/{asset['id']}.json"
    assert cached_service.client.get(url).json()["state"] == "trusted"
    with cached_service.ctx.session() as session:  # the decision changes behind the cache's back
        row = session.get(Asset, asset["id"])
        assert row is not None
        row.state, row.labels = "invalid", []
        session.commit()
    assert cached_service.client.get(url).json()["state"] == "trusted"  # still fresh
    time.sleep(0.3)
    assert cached_service.client.get(url).json()["state"] == "trusted"  # stale: served, refresh started
    for _ in range(50):
        if cached_service.client.get(url).json()["state"] == "invalid":
            break
        time.sleep(0.05)
    else:
        raise AssertionError("the badge was never refreshed")
    assert cached_service.client.get(url).json()["badge"]["text"] == "Content Credentials invalid"


def test_openapi_documents_the_badge_paths(cached_service: Service) -> None:
    paths = cached_service.client.get("/openapi.json").json()["paths"]
    for path in ("/v1/badges/{ref}.svg", "/v1/badges/{ref}.json", "/v1/badges/{ref}.html", "/v1/badges", "/v1/assets"):
        assert path in paths, path
