"""Caching: one bounded in-memory cache for the service (least recently used entries go first), and the
cache tags that let a CDN purge what it holds of one item.

Invariant: a cache never holds more than ``max_entries`` entries, whatever the requests (anyone can
ask for refs, languages or client addresses that do not exist); ``get``, ``put`` and ``discard`` are O(1)
and safe across threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Final, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A mapping bounded to ``max_entries``: putting one more evicts the least recently used."""

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError("an LRU cache needs room for at least one entry")
        self.max_entries = max_entries
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def add_cold(self, key: K, value: V) -> bool:
        """Add ``key`` as the least recently used entry, if it is absent and there is room (never evicts):
        for filling a cache ahead of use without displacing what is in use. ``False``: the cache is full."""
        with self._lock:
            if len(self._items) >= self.max_entries:
                return False
            if key not in self._items:
                self._items[key] = value
                self._items.move_to_end(key, last=False)
            return True

    def discard(self, key: K) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


#: The cache tag of every badge response (purging it purges every badge: what a trust change asks for).
BADGE_TAG: Final = "provenance-badge"
#: The cache tag of every public content response (stamped bytes, article texts, detached manifests).
CONTENT_TAG: Final = "provenance-content"
#: Longest tag header value in bytes (Fastly and Cloudflare accept 16 KB): further items are left out.
MAX_TAGS_HEADER: Final = 8 * 1024


def cache_tags(items: Iterable[str], tag: str) -> dict[str, str]:
    """The CDN cache-tag headers naming ``items`` (item ids, refs), as many as fit in
    :data:`MAX_TAGS_HEADER`, then ``tag``: ``Surrogate-Key`` space-separated (Fastly), ``Cache-Tag``
    comma-separated (Cloudflare). Item ids and refs never hold a space or a comma."""
    tags: list[str] = []
    size = len(tag)
    for item in dict.fromkeys(items):
        if size + 1 + len(item) > MAX_TAGS_HEADER:
            break
        tags.append(item)
        size += 1 + len(item)
    tags.append(tag)
    return {"Surrogate-Key": " ".join(tags), "Cache-Tag": ",".join(tags)}
