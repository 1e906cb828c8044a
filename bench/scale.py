"""Benchmark 8: scale. (a) Intake p99 and the server's memory with 10,000 repositories
configured, against one repository. (b) With 100,000 finished builds kept, the first page
of GET /api/builds and of one repository's builds.
Run: .venv/bin/python -m bench.scale
"""

from __future__ import annotations

import statistics
import time

import httpx2 as httpx
from redis import Redis

from bench.harness import bench, intake, percentile, rss_mb
from runners.records import BuildRecord, BuildStatus, BuildStore

RULES = "      - {tag: /.*/, tags: ['{tag}']}\n"


ROUNDS = 5
PAGE_REQUESTS = 300


def main() -> None:
    with bench() as b:
        repo = b.repo("scale/target")
        # Both servers run side by side and take their loads in turns: this VM's speed
        # drifts within minutes, which one load after the other measured as a difference.
        servers: dict[str, tuple[str, int]] = {}
        for label, extra_repos in (("1 repository", 0), ("10,000 repositories", 9_999)):
            others = "".join(
                f"  - {{name: scale/r{i}, forge: github, secret: s, clone_url: 'git://127.0.0.1/r{i}.git', "
                f"image: {b.registry.host}/scale/r{i}, rules: [{{branch: main}}]}}\n"
                for i in range(extra_repos)
            )
            config = b.config([(repo, RULES)])
            config.write_text(config.read_text() + others)
            base = b.serve(config)
            servers[label] = (base, b.processes[-1].pid)
        p99s: dict[str, list[float]] = {label: [] for label in servers}
        for index, (base, _pid) in enumerate(servers.values()):
            intake(base, repo.name, 300, prefix=f"warm{index}")
        for round_ in range(ROUNDS):
            for index, (label, (base, _pid)) in enumerate(servers.items()):
                p99s[label].append(
                    intake(base, repo.name, 1000, prefix=f"r{round_}s{index}").p99_ms
                )
        rss = {label: rss_mb(pid) for label, (_base, pid) in servers.items()}
        b.stop_processes()
        Redis(port=b.redis_port).flushdb()
        one, many = (statistics.median(p99s[label]) for label in servers)
        print(
            f"benchmark 8a: intake with many repositories configured ({ROUNDS} loads each, in turns)"
        )
        for label, values in p99s.items():
            ordered = sorted(values)
            print(
                f"{label:<22} p99 median {statistics.median(values):6.1f} ms"
                f" ({ordered[0]:.1f}-{ordered[-1]:.1f})   server {rss[label]:6.1f} MB"
            )
        grown = rss["10,000 repositories"] - rss["1 repository"]
        print(f"ratio p99 {many / one:.2f} (target <= 1.1); memory +{grown:.1f} MB (target <= 50)")

        connection = Redis(port=b.redis_port)
        store = BuildStore(connection)
        now = time.time()
        began = time.monotonic()
        for chunk in range(100):
            with connection.pipeline(transaction=False) as pipe:
                for i in range(1000):
                    n = chunk * 1000 + i
                    store.add(
                        BuildRecord(
                            id=f"b{n:07d}",
                            forge="github",
                            repository=f"scale/r{n % 500}",
                            ref="refs/heads/main",
                            sha=f"{n:040x}",
                            image="r/x",
                            tags=("latest",),
                            status=BuildStatus.SUCCEEDED,
                            created_at=now - 100_000 + n,
                            started_at=now - 100_000 + n,
                            finished_at=now - 100_000 + n + 30,
                        ),
                        pipeline=pipe,
                    )
                pipe.execute()
        filled = time.monotonic() - began
        config = b.config([(repo, RULES)])
        base = b.serve(config)
        timings: dict[str, list[float]] = {"all builds": [], "one repository": []}
        with httpx.Client(base_url=base, timeout=10) as client:
            for _ in range(PAGE_REQUESTS):
                for label, path in (
                    ("all builds", "/api/builds"),
                    ("one repository", "/api/builds?repository=scale/r7"),
                ):
                    started = time.perf_counter()
                    page = client.get(path).json()
                    timings[label].append(time.perf_counter() - started)
                    assert len(page["builds"]) == 50
        print(
            f"benchmark 8b: 100,000 finished builds kept (stored in {filled:.0f}s); first page (50), {PAGE_REQUESTS} requests each"
        )
        for label, values in timings.items():
            print(
                f"GET {label:<16} p50 {percentile(values, 0.5) * 1000:6.1f} ms   p99 {percentile(values, 0.99) * 1000:6.1f} ms (target <= 50)"
            )


if __name__ == "__main__":
    main()
