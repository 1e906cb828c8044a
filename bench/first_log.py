"""Benchmark 7: latency from the webhook to the first line of the build's log readable
through the API, with an idle worker waiting. Baseline: the same server's answer to the
webhook itself (the request that queued the build).
Run: .venv/bin/python -m bench.first_log
"""

from __future__ import annotations

import time

import httpx2 as httpx

from bench.harness import bench, deliver, median, wait_for_build

DOCKERFILE = "FROM hookbuild-test/busybox\nCOPY nonce /nonce\n"


def main() -> None:
    with bench() as b:
        repo = b.repo("bench/firstlog")
        repo.commit({"Dockerfile": DOCKERFILE, "nonce": "0\n"})
        config = b.config([(repo, "      - {branch: main, tags: [latest]}\n")])
        base = b.serve(config)
        b.worker(config, b.docker_hosts[0], "idle")
        time.sleep(3)
        answers, first_lines = [], []
        for i in range(15):
            sha = repo.commit({"nonce": f"push-{i}\n"})
            time.sleep(0.5)  # the worker is idle again
            began = time.perf_counter()
            response = deliver(base, repo.name, "refs/heads/main", sha, f"first-{i}")
            answers.append(time.perf_counter() - began)
            build_id = response.json()["builds"][0]
            with httpx.Client(base_url=base, timeout=10) as client:
                while not client.get(f"/api/builds/{build_id}/log").text:
                    pass
            first_lines.append(time.perf_counter() - began)
            wait_for_build(base, build_id)
        print("benchmark 7: webhook -> first log line through the API, idle worker, 15 pushes")
        print(f"webhook answered (baseline): median {median(answers) * 1000:.0f} ms")
        print(
            f"first log line readable:     median {median(first_lines) * 1000:.0f} ms, "
            f"max {max(first_lines) * 1000:.0f} ms (target <= 200 ms)"
        )


if __name__ == "__main__":
    main()
