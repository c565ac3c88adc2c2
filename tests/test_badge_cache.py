"""Badge hot path details: conditional requests, a cache kept until the change feed names a change, a
compact decision per ref with shared bodies, and decisions preloaded at start."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

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
    assert len(badges) <= 50
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


@contextmanager
def _queries(svc: Service) -> Iterator[list[str]]:
    """The SQL statements the service's engine runs inside the block (from every thread)."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(svc.ctx.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(svc.ctx.engine, "before_cursor_execute", note)


def _in_step(badges: BadgeService) -> None:
    badges.apply(Changed(frozenset()), time.monotonic() + 3600)  # in step with the (unread) feed for an hour


def test_preloaded_decisions_answer_without_touching_the_database(cached_service: Service) -> None:
    ai = cached_service.upload(images.jpeg(seed=37), {"source": "ai_generated"}).json()
    camera = cached_service.upload(images.jpeg(seed=38), {"source": "camera"}).json()
    withdrawn = cached_service.upload(images.jpeg(seed=39), {"source": "ai_generated"}).json()
    cached_service.client.post(
        f"/v1/assets/{withdrawn['id']}/withdraw", json={"reason": "test"}, headers=cached_service.bearer("newsroom")
    ).raise_for_status()
    badges = BadgeService(cached_service.ctx.sessions, cache_seconds=60, max_age=60)
    _in_step(badges)
    assert badges.preload(100) == 3
    with _queries(cached_service) as queries:
        answers = {ref: badges.cached(ref, "json", "en") for ref in (ai["id"], camera["id"], withdrawn["id"])}
    assert queries == []
    bodies = {ref: answer[0].body["body"] for ref, answer in answers.items() if answer is not None}
    assert len(bodies) == 3
    # What a request reads gives the same bodies: the preload reads what a lookup reads.
    fresh = BadgeService(cached_service.ctx.sessions, cache_seconds=60, max_age=60)
    for ref, body in bodies.items():
        assert fresh.render(ref, "json", "en")[0].body["body"] == body
    assert b'"state":"withdrawn"' in bodies[withdrawn["id"]]
    assert b'"ai_generated"' in bodies[ai["id"]]
    assert b"ai_generated" not in bodies[camera["id"]]


def test_preload_takes_the_newest_and_only_the_free_room(cached_service: Service) -> None:
    refs = [cached_service.upload(images.jpeg(seed=40 + i), {"source": "ai_generated"}).json()["id"] for i in range(4)]
    badges = BadgeService(cached_service.ctx.sessions, cache_seconds=60, max_age=60, max_entries=3)
    _in_step(badges)
    in_use = f"sha256-{0:064x}"
    badges.render(in_use, "svg", "en")  # a decision in use (an unknown ref) is never displaced
    assert badges.preload(100) == 2
    assert badges.cached(in_use, "svg", "en") is not None
    assert [ref for ref in refs if badges.cached(ref, "svg", "en") is not None] == refs[2:]  # the newest two
    assert badges.preload(100) == 0  # full


def test_preload_pages_through_every_image(cached_service: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    refs = {cached_service.upload(images.jpeg(seed=50 + i), {"source": "camera"}).json()["id"] for i in range(5)}
    monkeypatch.setattr("service.badges.app.PRELOAD_PAGE", 2)  # three pages: 2, 2 and 1
    badges = BadgeService(cached_service.ctx.sessions, cache_seconds=60, max_age=60)
    _in_step(badges)
    assert badges.preload(100) == 5
    assert all(badges.cached(ref, "svg", "en") is not None for ref in refs)
    again = BadgeService(cached_service.ctx.sessions, cache_seconds=60, max_age=60)
    assert again.preload(3) == 3  # a limit inside a page


def test_a_page_a_change_overtakes_is_read_again(cached_service: Service) -> None:
    asset = cached_service.upload(images.jpeg(seed=60), {"source": "ai_generated"}).json()
    badges = BadgeService(cached_service.ctx.sessions, cache_seconds=60, max_age=60)
    _in_step(badges)
    changed: list[bool] = []
    preloading = threading.get_ident()  # the service's own threads read assets too

    def change_during_the_first_read(*_args: Any) -> None:
        if threading.get_ident() == preloading and not changed:  # the read in flight becomes stale
            changed.append(True)
            _change_behind_the_cache(cached_service, asset["id"])
            badges.forget([asset["id"]])  # as the listener would, after the commit

    event.listen(cached_service.ctx.engine, "after_cursor_execute", change_during_the_first_read)
    try:
        assert badges.preload(100) == 1
    finally:
        event.remove(cached_service.ctx.engine, "after_cursor_execute", change_during_the_first_read)
    # Kept without the generation check: the first read's "trusted"; with it, the page was read again.
    answer = badges.cached(asset["id"], "json", "en")
    assert answer is not None
    assert b'"state":"invalid"' in answer[0].body["body"]


def test_refs_that_look_the_same_share_one_body_and_keep_their_own_tags(cached_service: Service) -> None:
    first = cached_service.upload(images.jpeg(seed=61), {"source": "ai_generated"}).json()["id"]
    second = cached_service.upload(images.jpeg(seed=62), {"source": "ai_generated"}).json()["id"]
    badges = BadgeService(cached_service.ctx.sessions, cache_seconds=60, max_age=60)
    _in_step(badges)
    one, two = badges.render(first, "svg", "zh-Hans"), badges.render(second, "svg", "zh-Hans")
    assert one[0] is two[0]  # one rendered SVG for every ref that looks the same
    assert dict(one[1])[b"surrogate-key"] == f"{first} provenance-badge".encode()
    assert dict(two[1])[b"surrogate-key"] == f"{second} provenance-badge".encode()
    assert badges.render(first, "json", "en")[0] is not badges.render(second, "json", "en")[0]  # JSON names its ref
    response = cached_service.client.get(f"/v1/badges/{second}.svg?lang=zh-Hans")
    assert response.headers["surrogate-key"] == f"{second} provenance-badge"
    assert response.headers["cache-tag"] == f"{second},provenance-badge"
    assert response.content == one[0].body["body"]


def test_the_service_preloads_at_start_and_stops_the_preload_at_shutdown(
    database: Database, tmp_path: Path, keys_dir: Path
) -> None:
    settings = service_settings(tmp_path / "var", keys_dir, database, badge_cache_seconds=0.2)
    with running(settings) as svc:
        refs = [svc.upload(images.jpeg(seed=63 + i), {"source": "ai_generated"}).json()["id"] for i in range(2)]
    with running(settings) as svc:
        badges = svc.app.api.state.badges
        deadline = time.monotonic() + 10
        while len(badges) < 2:
            assert time.monotonic() < deadline, "the service never preloaded its badges"
            time.sleep(0.01)
        assert svc.client.get(f"/v1/badges/{refs[0]}.svg").status_code == 200
    assert not [t for t in threading.enumerate() if t.name == "badge-preload"]
    with running(
        service_settings(tmp_path / "var", keys_dir, database, badge_cache_seconds=0.2, badge_preload=0)
    ) as svc:
        time.sleep(0.3)
        assert len(svc.app.api.state.badges) == 0
