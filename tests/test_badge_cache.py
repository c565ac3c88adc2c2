"""Badge hot path details: conditional requests and stale-while-revalidate caching."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.badges.app import BadgeService
from service.store.db import Asset

from . import images
from .databases import Database
from .service_support import Service, running, service_settings


@pytest.fixture
def cached_service(database: Database, tmp_path: Path, keys_dir: Path) -> Iterator[Service]:
    with running(service_settings(tmp_path / "var", keys_dir, database, badge_cache_seconds=0.2)) as svc:
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


def _change_behind_the_cache(svc: Service, asset_id: str) -> None:
    with svc.session() as session:  # the decision changes behind the cache's back
        row = session.get(Asset, asset_id)
        assert row is not None
        row.state, row.labels = "invalid", []
        session.commit()


def test_a_busy_badge_is_refreshed_in_the_background_before_it_expires(cached_service: Service) -> None:
    asset = cached_service.upload(images.jpeg(seed=32), {"source": "ai_generated"}).json()
    url = f"/v1/badges/{asset['id']}.json"
    assert cached_service.client.get(url).json()["state"] == "trusted"
    _change_behind_the_cache(cached_service, asset["id"])
    assert cached_service.client.get(url).json()["state"] == "trusted"  # fresh: served from memory
    time.sleep(0.12)  # past half of badge_cache_seconds (0.2 s): served, and one refresh starts
    assert cached_service.client.get(url).json()["state"] == "trusted"
    for _ in range(50):
        if cached_service.client.get(url).json()["state"] == "invalid":
            break
        time.sleep(0.01)
    else:
        raise AssertionError("the badge was never refreshed")
    assert cached_service.client.get(url).json()["badge"]["text"] == "Content Credentials invalid"


def test_a_change_shows_on_the_first_request_after_an_idle_spell(cached_service: Service) -> None:
    asset = cached_service.upload(images.jpeg(seed=33), {"source": "ai_generated"}).json()
    url = f"/v1/badges/{asset['id']}.json"
    assert cached_service.client.get(url).json()["state"] == "trusted"
    _change_behind_the_cache(cached_service, asset["id"])
    time.sleep(0.25)  # longer than badge_cache_seconds, and no request in between
    assert cached_service.client.get(url).json()["state"] == "invalid"  # never the stale answer


def test_badge_caches_are_bounded_and_keep_the_recently_used(cached_service: Service) -> None:
    badges = BadgeService(cached_service.ctx.sessions, cache_seconds=60, max_age=60, max_entries=50)
    asset = cached_service.upload(images.jpeg(seed=34), {"source": "ai_generated"}).json()
    badges.render(asset["id"], "svg", "en")
    for i in range(500):  # anyone can ask for refs that do not exist
        badges.render(f"sha256-{i:064x}", "svg", "en")
        if i % 10 == 0:
            assert badges.cached(asset["id"], "svg", "en") is not None  # used again: kept
    assert len(badges._cache) <= 50
    assert len(badges._decisions) <= 50
    assert badges.cached(asset["id"], "svg", "en") is not None
    assert badges.cached(f"sha256-{0:064x}", "svg", "en") is None  # long unused: evicted


def test_openapi_documents_the_badge_paths(cached_service: Service) -> None:
    paths = cached_service.client.get("/openapi.json").json()["paths"]
    for path in ("/v1/badges/{ref}.svg", "/v1/badges/{ref}.json", "/v1/badges/{ref}.html", "/v1/badges", "/v1/assets"):
        assert path in paths, path
