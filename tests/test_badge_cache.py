"""Badge hot path details: conditional requests, and a cache kept until the change feed names a change."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.badges.app import BadgeService
from service.store.changes import Changed
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
    with svc.session() as session:  # the decision changes without any request to this service
        row = session.get(Asset, asset_id)
        assert row is not None
        row.state, row.labels = "invalid", []
        session.commit()


def _eventually_invalid(svc: Service, url: str) -> None:
    deadline = time.monotonic() + 0.2 + 5.0  # badge_cache_seconds, plus room for a loaded machine
    while svc.client.get(url).json()["state"] != "invalid":
        assert time.monotonic() < deadline, "the change never reached the badge cache"
        time.sleep(0.01)


def _cache(svc: Service, badges: BadgeService, url: str, ref: str) -> None:
    """Ask until the answer is cached: a render is not kept when the listener applies a change (here: the
    uploads' own) while it reads, and a listener starved on a loaded machine drops the cache."""
    deadline = time.monotonic() + 5.0
    while badges.cached(ref, "json", "en") is None:
        assert time.monotonic() < deadline, "the badge was never cached"
        assert svc.client.get(url).json()["state"] == "trusted"
        time.sleep(0.01)


def test_a_cached_badge_is_kept_until_the_change_feed_names_it(cached_service: Service) -> None:
    asset = cached_service.upload(images.jpeg(seed=32), {"source": "ai_generated"}).json()
    other = cached_service.upload(images.jpeg(seed=35), {"source": "ai_generated"}).json()
    url = f"/v1/badges/{asset['id']}.json"
    badges = cached_service.app.api.state.badges
    _cache(cached_service, badges, url, asset["id"])
    with cached_service.session() as session:  # a change to the cached item's row that no badge shows
        row = session.get(Asset, asset["id"])
        assert row is not None
        row.trust_fingerprint = "0" * 64
        session.commit()
    time.sleep(0.5)  # several reads of the feed later, the decision is still the one cached
    assert badges.cached(asset["id"], "json", "en") is not None
    _change_behind_the_cache(cached_service, other["id"])  # another item changes: this one is kept
    _eventually_invalid(cached_service, f"/v1/badges/{other['id']}.json")
    assert badges.cached(asset["id"], "json", "en") is not None
    _change_behind_the_cache(cached_service, asset["id"])
    _eventually_invalid(cached_service, url)
    assert cached_service.client.get(url).json()["badge"]["text"] == "Content Credentials invalid"


def test_a_change_shows_after_an_idle_spell(cached_service: Service) -> None:
    asset = cached_service.upload(images.jpeg(seed=33), {"source": "ai_generated"}).json()
    url = f"/v1/badges/{asset['id']}.json"
    assert cached_service.client.get(url).json()["state"] == "trusted"
    _change_behind_the_cache(cached_service, asset["id"])
    time.sleep(0.25)  # longer than badge_cache_seconds, and no request in between
    _eventually_invalid(cached_service, url)


def test_badge_caches_are_bounded_and_keep_the_recently_used(cached_service: Service) -> None:
    badges = BadgeService(cached_service.ctx.sessions, cache_seconds=60, max_age=60, max_entries=50)
    badges.apply(Changed(frozenset()), time.monotonic())  # in step with the (unread) change feed
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


def test_a_listener_out_of_step_bypasses_the_cache(cached_service: Service) -> None:
    badges = BadgeService(cached_service.ctx.sessions, cache_seconds=0.2, max_age=60)
    asset = cached_service.upload(images.jpeg(seed=36), {"source": "ai_generated"}).json()
    badges.apply(Changed(frozenset()), time.monotonic() - 10)  # its last read began long ago
    badges.render(asset["id"], "svg", "en")
    assert badges.cached(asset["id"], "svg", "en") is None  # never served: a change may be missing
    badges.apply(Changed(frozenset()), time.monotonic())
    badges.render(asset["id"], "svg", "en")
    assert badges.cached(asset["id"], "svg", "en") is not None


def test_openapi_documents_the_badge_paths(cached_service: Service) -> None:
    paths = cached_service.client.get("/openapi.json").json()["paths"]
    for path in ("/v1/badges/{ref}.svg", "/v1/badges/{ref}.json", "/v1/badges/{ref}.html", "/v1/badges", "/v1/assets"):
        assert path in paths, path
