"""Counters and histograms for /metrics, kept in Redis: builds finish in worker processes on
any machine, so only Redis sees them all. Updated with the transition that causes them."""

from __future__ import annotations

from redis.client import Pipeline

from runners.keys import PREFIX

DURATION_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
WAIT_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0)

BUILDS = f"{PREFIX}:stats:builds"  # "status|repository" -> count
DELIVERIES = f"{PREFIX}:stats:deliveries"  # "forge|outcome" -> count
DURATION = f"{PREFIX}:stats:duration"  # bucket upper bound (or "sum", "count") -> value
WAIT = f"{PREFIX}:stats:wait"


def observe(pipe: Pipeline, key: str, buckets: tuple[float, ...], value: float) -> None:
    for bound in buckets:
        if value <= bound:
            pipe.hincrby(key, repr(bound), 1)
    pipe.hincrby(key, "+Inf", 1)
    pipe.hincrbyfloat(key, "sum", value)
    pipe.hincrby(key, "count", 1)
