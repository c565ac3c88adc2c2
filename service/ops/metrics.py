"""Prometheus metrics: requests, latencies, stamps by label, rejections by reason, isolated parsing
(one registry per app)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from provenance import isolation


class IsolationCollector(Collector):
    """The isolated parsers' counters, read from :func:`provenance.isolation.stats` at scrape time."""

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        stats = isolation.stats()
        yield CounterMetricFamily("provenance_parse_calls", "Isolated SDK calls", value=stats.calls)
        yield CounterMetricFamily(
            "provenance_parse_workers_replaced",
            "Parsing workers killed or dead (memory cap, deadline, crash) and replaced",
            value=stats.replaced,
        )
        yield CounterMetricFamily(
            "provenance_parse_timeouts", "Isolated SDK calls past their deadline", value=stats.timeouts
        )
        yield GaugeMetricFamily(
            "provenance_parse_worker_peak_rss_bytes",
            "Largest resident set of any parsing worker",
            value=stats.peak_worker_rss,
        )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "provenance_http_requests", "HTTP requests", ["route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "provenance_http_request_seconds", "Request latency", ["route"], registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )  # fmt: skip
        self.stamps = Counter(
            "provenance_stamps", "Stamped assets and articles", ["kind", "label"], registry=self.registry
        )
        self.rejections = Counter("provenance_rejections", "Rejected requests", ["reason"], registry=self.registry)
        self.audit_write_failures = Counter(
            "provenance_audit_write_failures", "Audit rows that could not be written", registry=self.registry
        )
        self.badges = Counter("provenance_badge_responses", "Badge responses", ["status"], registry=self.registry)
        # Label lookups cost more than the increment: the hot path uses children bound once.
        self._badge_children = {status: self.badges.labels(status=str(status)) for status in (200, 304, 400, 404)}
        self.registry.register(IsolationCollector())

    def count_badge(self, status: int) -> None:
        child = self._badge_children.get(status)
        if child is None:
            child = self._badge_children[status] = self.badges.labels(status=str(status))
        child.inc()
