"""Benchmarks 1 and 4: webhook -> every tag in the registry, against a plain script
(`git clone --depth 1 && docker build && docker tag && docker push` per tag) on the same
commit; then a second commit that changes one source file.

Each side has its own Docker engine, so neither borrows the other's layer cache.
Run: .venv/bin/python -m bench.e2e
"""

from __future__ import annotations

import time

import httpx2 as httpx

from bench.harness import bench, deliver, plain_script, wait_for_build

PHASES = ("==> fetched", "==> built", "==> pushed ", "==> no local")

DOCKERFILE = """FROM hookbuild-test/busybox
RUN dd if=/dev/urandom of=/deps bs=1M count=64 2>/dev/null && sha256sum /deps > /deps.sum
COPY src/ /src/
RUN cat /src/* | sha256sum > /src.sum
"""


def main() -> None:
    with bench(engines=2) as b:
        baseline_engine, hookbuild_engine = b.docker_hosts
        repo = b.repo("bench/e2e")
        sources = {f"src/file{i}.txt": f"content {i}\n" * 200 for i in range(20)}
        first = repo.commit({"Dockerfile": DOCKERFILE, **sources})
        config = b.config([(repo, '      - {branch: main, tags: [latest, "{short_sha}"]}\n')])
        base = b.serve(config)
        b.worker(config, hookbuild_engine, "bench-worker")
        time.sleep(1.5)  # the worker is up and waiting, as in service

        rows = []
        phases: list[tuple[str, list[str]]] = []
        for label, sha in (("cold", first), ("second commit, one file changed", None)):
            if sha is None:
                sha = repo.commit({"src/file7.txt": "changed\n"})
            image = f"{b.registry.host}/bench/plain"
            plain = plain_script(baseline_engine, repo.url, image, ["latest", sha[:7]], b.root)
            started = time.monotonic()
            response = deliver(base, repo.name, "refs/heads/main", sha, f"e2e-{sha}")
            record = wait_for_build(base, response.json()["builds"][0])
            hookbuild = time.monotonic() - started
            assert record["status"] == "succeeded", record
            assert {"latest", sha[:7]} <= set(b.registry.tags("bench/e2e"))
            rows.append((label, plain, hookbuild, record["duration"]))
            log = httpx.get(f"{base}/api/builds/{record['id']}/log", timeout=10).text.splitlines()
            phases.append((label, [line for line in log if line.startswith(PHASES)]))

        print("benchmark 1/4: webhook -> every tag in the registry (2 tags), seconds")
        print(f"{'case':<34}{'plain script':>14}{'hookbuild':>12}{'ratio':>8}{'build only':>12}")
        for label, plain, hookbuild, duration in rows:
            print(
                f"{label:<34}{plain:>14.2f}{hookbuild:>12.2f}{hookbuild / plain:>8.2f}{duration:>12.2f}"
            )
        for label, lines in phases:
            print(f"hookbuild phases, {label}: " + " | ".join(line[4:] for line in lines))
        cold, warm = rows[0][3], rows[1][3]
        print(
            f"incremental: second-commit build {warm:.2f}s / cold build {cold:.2f}s = {warm / cold:.2f}"
        )


if __name__ == "__main__":
    main()
