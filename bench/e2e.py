"""Benchmarks 1 and 4: webhook -> every tag in the registry, against a plain script
(`git clone --depth 1 && docker build && docker tag && docker push` per tag) on the same
commit; then a second commit that changes one source file.

Each side has its own Docker engine, so neither borrows the other's layer cache.
Run: .venv/bin/python -m bench.e2e
"""

from __future__ import annotations

import argparse
import os
import time

import httpx2 as httpx

from bench.harness import Bench, bench, deliver, plain_script, wait_for_build

PHASES = ("==> fetched", "==> built", "==> pushed ", "==> no local")

DOCKERFILE = """FROM hookbuild-test/busybox
RUN dd if=/dev/urandom of=/deps bs=1M count=64 2>/dev/null && sha256sum /deps > /deps.sum
COPY src/ /src/
RUN cat /src/* | sha256sum > /src.sum
"""


NEXT_COMMITS = 5
BIG_DOCKERFILE = """FROM hookbuild-test/busybox
COPY src/ /src/
RUN du -s /src > /size
"""


def settle() -> None:
    """Flush every dirty page and give the engines a moment: each timed run starts alike."""
    os.sync()
    time.sleep(0.5)


def run_case(
    b: Bench, name: str, files: dict[str, str], change: dict[str, str], worker: str
) -> tuple[list[tuple[str, float, float, float]], list[tuple[str, list[str]]]]:
    """Cold, then NEXT_COMMITS further commits of `change` (each a new content), the
    median of those reported: (label, plain, hookbuild, build) rows."""
    baseline_engine, _ = b.docker_hosts
    repo = b.repo(f"bench/{name}")
    first = repo.commit(files)
    config = b.config([(repo, '      - {branch: main, tags: [latest, "{short_sha}"]}\n')])
    base = b.serve(config)
    b.worker(config, worker, f"bench-worker-{name}")
    time.sleep(1.5)  # the worker is up and waiting, as in service
    rows = []
    phases: list[tuple[str, list[str]]] = []
    later = [("next commit, one file changed", None)] * NEXT_COMMITS
    image = f"{b.registry.host}/bench/plain-{name}"
    for index, (label, sha) in enumerate([("cold", first), *later]):
        if sha is None:
            sha = repo.commit({path: f"{text}{index}\n" for path, text in change.items()})

        def run_plain(sha: str = sha) -> float:
            return plain_script(baseline_engine, repo.url, image, ["latest", sha[:7]], b.root)

        def run_hookbuild(sha: str = sha) -> dict:  # type: ignore[type-arg]
            sent = time.time()
            response = deliver(base, repo.name, "refs/heads/main", sha, f"e2e-{sha}")
            record = wait_for_build(base, response.json()["builds"][0])
            # Until the record says finished (every tag pushed), on this machine's clock: the
            # bench's polling for the record would add up to its interval otherwise.
            record["elapsed"] = record["finished_at"] - sent
            return record

        # Each side starts with the disk quiet (the other's writes flushed), and they take
        # turns going first: whichever ran second paid for the first one's writeback.
        if index % 2 == 0:
            settle()
            plain = run_plain()
            settle()
            record = run_hookbuild()
        else:
            settle()
            record = run_hookbuild()
            settle()
            plain = run_plain()
        assert record["status"] == "succeeded", record
        assert {"latest", sha[:7]} <= set(b.registry.tags(f"bench/{name}"))
        rows.append((label, plain, record["elapsed"], record["duration"]))
        log = httpx.get(f"{base}/api/builds/{record['id']}/log", timeout=10).text.splitlines()
        phases.append((label, [line for line in log if line.startswith(PHASES)]))
    b.stop_processes()
    cold, nexts = rows[0], rows[1:]
    middle = sorted(nexts, key=lambda row: row[2] / row[1])[len(nexts) // 2]
    label = f"next commit (median of {len(nexts)})"
    return [cold, (label, *middle[1:])], phases[:2]


def report(title: str, rows: list[tuple[str, float, float, float]]) -> None:
    print(title)
    print(f"{'case':<34}{'plain script':>14}{'hookbuild':>12}{'ratio':>8}{'build only':>12}")
    for label, plain, hookbuild, duration in rows:
        print(
            f"{label:<34}{plain:>14.2f}{hookbuild:>12.2f}{hookbuild / plain:>8.2f}{duration:>12.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--small-only", action="store_true", help="skip the 3,000-file repository")
    args = parser.parse_args()
    big_rows: list[tuple[str, float, float, float]] = []
    big_phases: list[tuple[str, list[str]]] = []
    with bench(engines=2) as b:
        _, hookbuild_engine = b.docker_hosts
        sources = {f"src/file{i}.txt": f"content {i}\n" * 200 for i in range(20)}
        rows, phases = run_case(
            b,
            "e2e",
            {"Dockerfile": DOCKERFILE, **sources},
            {"src/file7.txt": "changed\n"},
            hookbuild_engine,
        )
        # A larger source tree (3,000 files, 12 MB): the clone the plain script makes every
        # time is what the cached mirror saves.
        if args.small_only:
            big = {}
        else:
            big = {f"src/d{i // 100}/f{i}.txt": f"{i} {'x' * 64}\n" * 64 for i in range(3000)}
            repo_files = {"Dockerfile": BIG_DOCKERFILE, **big}
            big_rows, big_phases = run_case(
                b, "big", repo_files, {"src/d7/f700.txt": "changed\n"}, hookbuild_engine
            )

    report("benchmark 1/4: webhook -> every tag in the registry (2 tags), seconds", rows)
    for label, lines in phases:
        print(f"hookbuild phases, {label}: " + " | ".join(line[4:] for line in lines))
    cold, warm = rows[0][3], rows[1][3]
    print(
        f"incremental: second-commit build {warm:.2f}s / cold build {cold:.2f}s = {warm / cold:.2f}"
    )
    if not big_rows:
        return
    report("the same for a 3,000-file, 12 MB source tree", big_rows)
    for label, lines in big_phases:
        print(f"hookbuild phases, {label}: " + " | ".join(line[4:] for line in lines))


if __name__ == "__main__":
    main()
