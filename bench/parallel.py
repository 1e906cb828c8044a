"""Benchmarks 2 and 3. (2) Eight repositories pushed at once: makespan with 1, 2 and 4
workers, against the plain script run for the eight one after another. (3) A burst of 20
pushes to one branch within 2 seconds: builds executed and the final image's commit.

Each build has a 2-second wait and some hashing, like a build that waits on I/O and then
computes; every round commits new content so nothing comes from the layer cache.
`--builder classic` runs hookbuild's builds with the legacy builder instead of its
default, `auto` (BuildKit here).
Run: .venv/bin/python -m bench.parallel [--builder B]
"""

from __future__ import annotations

import argparse
import time

import httpx2 as httpx

from bench.harness import add_builder_option, bench, deliver, plain_script, wait_for_build

DOCKERFILE = """FROM hookbuild-test/busybox
COPY nonce /nonce
RUN sleep 2 && dd if=/dev/zero bs=1M count=64 2>/dev/null | sha256sum > /sum
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add_builder_option(parser)
    builder = parser.parse_args().builder
    with bench() as b:
        engine = b.docker_hosts[0]
        repos = [b.repo(f"par/r{i}") for i in range(8)]
        for repo in repos:
            repo.commit({"Dockerfile": DOCKERFILE, "nonce": "0\n"})
        # `builder:` is a key of the repository, after its rules.
        rules = f"      - {{branch: main, tags: [latest]}}\n    builder: {builder}\n"
        config = b.config(
            [(repo, rules) for repo in repos], extra="max_running_per_repository: 2\n"
        )
        base = b.serve(config)

        shas = [repo.commit({"nonce": f"serial-{repo.name}\n"}) for repo in repos]
        began = time.monotonic()
        for repo in repos:
            plain_script(
                engine, repo.url, f"{b.registry.host}/{repo.name}-plain", ["latest"], b.root
            )
        serial = time.monotonic() - began

        results = []
        for count in (1, 2, 4):
            workers = [b.worker(config, engine, f"par-{count}-{i}") for i in range(count)]
            time.sleep(3)  # workers up and waiting
            # Content unique per repository and round: nothing comes from the layer cache.
            shas = [repo.commit({"nonce": f"{count}-{repo.name}\n"}) for repo in repos]
            began = time.time()
            ids = [
                deliver(base, repo.name, "refs/heads/main", sha, f"par-{count}-{repo.name}").json()[
                    "builds"
                ][0]
                for repo, sha in zip(repos, shas, strict=True)
            ]
            # Until the last record's finished_at, on this machine's clock: slow polling
            # neither adds to the figure nor takes CPU from the builds.
            records = [wait_for_build(base, build_id, interval=0.5) for build_id in ids]
            makespan = max(r["finished_at"] for r in records) - began
            assert all(r["status"] == "succeeded" for r in records), records
            results.append((count, makespan))
            for worker in workers:
                worker.terminate()
                worker.wait()

        print("benchmark 2: 8 repositories pushed at once, makespan in seconds (2 cores)")
        print(f"plain script, one after another: {serial:.2f}")
        for count, makespan in results:
            print(
                f"hookbuild, {count} worker(s): {makespan:.2f}  ratio to serial {makespan / serial:.2f}"
            )

        # Benchmark 3: a burst of 20 pushes to one branch.
        repo = repos[0]
        worker = b.worker(config, engine, "burst")
        time.sleep(3)
        shas = [repo.commit({"nonce": f"burst-{i}\n"}) for i in range(20)]
        began = time.monotonic()
        ids = [
            deliver(base, repo.name, "refs/heads/main", sha, f"burst-{i}").json()["builds"][0]
            for i, sha in enumerate(shas)
        ]
        sent = time.monotonic() - began
        records = [wait_for_build(base, build_id) for build_id in ids]
        executed = [r for r in records if r["started_at"] is not None]
        final = httpx.get(f"{base}/api/builds/{ids[-1]}", timeout=10).json()
        print(
            f"benchmark 3: 20 pushes sent in {sent:.2f}s; builds executed: {len(executed)} (target <= 2); "
            f"last push's build: {final['status']}, commit {final['sha'][:7]} (the last: {shas[-1][:7]})"
        )
        worker.terminate()
        worker.wait()


if __name__ == "__main__":
    main()
