"""`GET /metrics` in Prometheus' format, read from Redis at scrape time (a registry of our
own, no global state)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from redis import Redis

from runners import stats
from runners.queue import QUEUE_NAME
from runners.records import BuildStore, text


class HookbuildCollector(Collector):
    def __init__(self, connection: Redis) -> None:
        self.connection = connection
        self.store = BuildStore(connection)

    def collect(self) -> Iterator[Metric]:
        builds = CounterMetricFamily(
            "hookbuild_builds", "Finished builds", labels=["status", "repository"]
        )
        for key, value in self.connection.hgetall(stats.BUILDS).items():
            status, _, repository = text(key).partition("|")
            builds.add_metric([status, repository], float(value))
        yield builds
        deliveries = CounterMetricFamily(
            "hookbuild_deliveries", "Webhook deliveries", labels=["forge", "outcome"]
        )
        for key, value in self.connection.hgetall(stats.DELIVERIES).items():
            forge, _, outcome = text(key).partition("|")
            deliveries.add_metric([forge, outcome], float(value))
        yield deliveries
        yield self._histogram(
            "hookbuild_build_duration_seconds",
            "Build duration",
            stats.DURATION,
            stats.DURATION_BUCKETS,
        )
        yield self._histogram(
            "hookbuild_queue_wait_seconds",
            "Time from queued to started",
            stats.WAIT,
            stats.WAIT_BUCKETS,
        )
        waiting = sum(
            int(self.connection.llen(key))
            for key in self.connection.scan_iter(f"{self.store.prefix}:waiting:*")
        )
        queued = GaugeMetricFamily("hookbuild_queue_length", "Builds waiting to start")
        queued.add_metric([], float(int(self.connection.llen(f"rq:queue:{QUEUE_NAME}")) + waiting))
        yield queued
        running = GaugeMetricFamily("hookbuild_running_builds", "Builds running now")
        running.add_metric([], float(len(self.store.running())))
        yield running

    def _histogram(
        self, name: str, doc: str, key: str, bounds: tuple[float, ...]
    ) -> HistogramMetricFamily:
        raw = {text(k): float(v) for k, v in self.connection.hgetall(key).items()}
        buckets = [(repr(b), raw.get(repr(b), 0.0)) for b in bounds] + [
            ("+Inf", raw.get("+Inf", 0.0))
        ]
        family = HistogramMetricFamily(name, doc)
        family.add_metric([], buckets, raw.get("sum", 0.0))
        return family


def render_metrics(connection: Redis) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HookbuildCollector(connection))
    return bytes(generate_latest(registry))
