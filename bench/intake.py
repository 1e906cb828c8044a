"""Benchmarks 5 and 6: webhook intake (signed GitHub deliveries per second, accepted and
durably recorded, p50/p99 at 32 connections, acknowledged deliveries without a record),
and resident memory of the server and of an idle worker.

Baseline: as many reads of one build record (GET /api/builds/{id}, one Redis read each)
from the same server: the floor for a request that touches Redis. The load generator runs on the same two
cores. Run: .venv/bin/python -m bench.intake
"""

from __future__ import annotations

import asyncio
import time

import httpx2 as httpx
from redis import Redis

from bench.harness import bench, intake, percentile, rss_mb
from runners.records import BuildStore

COUNT = 4000


def read_load(base: str, count: int, concurrency: int = 32) -> dict[str, float]:
    latencies: list[float] = []

    async def run() -> float:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
            remaining = iter(range(count))

            async def one() -> None:
                for _ in remaining:
                    started = time.perf_counter()
                    await client.get("/api/builds/none")
                    latencies.append(time.perf_counter() - started)

            began = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(concurrency)))
            return time.perf_counter() - began

    elapsed = asyncio.run(run())
    return {
        "rate": count / elapsed,
        "p50_ms": percentile(latencies, 0.5) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def main() -> None:
    with bench() as b:
        repo = b.repo("bench/intake")
        config = b.config([(repo, "      - {tag: /.*/, tags: ['{tag}']}\n")])
        base = b.serve(config)
        server = b.processes[-1]
        worker = b.worker(config, b.docker_hosts[0], "idle-worker")
        time.sleep(4)  # started and waiting on the queue
        idle_worker_mb = rss_mb(worker.pid)
        worker.send_signal(19)  # SIGSTOP: it must not drain the queue during the load
        floor = read_load(base, COUNT)
        result = intake(base, repo.name, COUNT)
        acknowledged = result.pop("acknowledged")
        store = BuildStore(Redis(port=b.redis_port))
        missing = sum(1 for build_id in acknowledged if store.get(build_id) is None)  # type: ignore[union-attr]
        worker.send_signal(18)  # SIGCONT
        print(
            f"benchmark 5: intake, {COUNT} signed deliveries over 32 connections (client on the same 2 cores)"
        )
        print(f"{'':<28}{'per second':>12}{'p50 ms':>10}{'p99 ms':>10}")
        print(
            f"{'GET a build (floor)':<28}{floor['rate']:>12.0f}{floor['p50_ms']:>10.1f}{floor['p99_ms']:>10.1f}"
        )
        print(
            f"{'/hooks/github (queued)':<28}{result['rate']:>12.0f}{result['p50_ms']:>10.1f}{result['p99_ms']:>10.1f}"
        )
        print(
            f"ratio to the floor: rate {result['rate'] / floor['rate']:.2f}, p99 {result['p99_ms'] / floor['p99_ms']:.2f}"
        )
        print(
            f"acknowledged: {len(acknowledged)}, without a record: {missing}, failed requests: {result['failures']:.0f}"
        )  # type: ignore[arg-type]
        print("benchmark 6: resident memory (target <= 100 MB each)")
        print(
            f"server after the load: {rss_mb(server.pid):.1f} MB; idle worker: {idle_worker_mb:.1f} MB"
        )


if __name__ == "__main__":
    main()
