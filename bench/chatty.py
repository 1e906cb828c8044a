"""A chatty build: one RUN step printing 20,000 lines. hookbuild (webhook to every tag
pushed, each line in the build's log; BuildKit, its default here) against `docker build`
of the same Dockerfile with the docker CLI on the same engine (the legacy builder: the
CLI has no buildx plugin here). `--builder classic` runs hookbuild's build with the legacy
builder too.
Run: .venv/bin/python -m bench.chatty [--builder B]
"""

from __future__ import annotations

import argparse
import subprocess
import time

from bench.harness import ENV_BASE, add_builder_option, bench, deliver, wait_for_build

DOCKERFILE = "FROM hookbuild-test/busybox\nRUN echo {marker} && seq 1 20000\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    add_builder_option(parser)
    builder = parser.parse_args().builder
    with bench(engines=1) as b:
        engine = b.docker_hosts[0]
        repo = b.repo("bench/chatty")
        repo.commit({"Dockerfile": DOCKERFILE.format(marker="first")})
        rules = f"      - {{branch: main, tags: [latest]}}\n    builder: {builder}\n"
        config = b.config([(repo, rules)])
        base = b.serve(config)
        b.worker(config, engine, "chatty-worker")
        time.sleep(2)  # the worker is up and waiting
        context = b.root / "plain-context"
        context.mkdir()
        rows = []
        for i in range(3):
            (context / "Dockerfile").write_text(DOCKERFILE.format(marker=f"plain-{i}"))
            began = time.monotonic()
            subprocess.run(
                ["docker", "build", "-t", "bench/chatty-plain", str(context)],
                env={**ENV_BASE, "DOCKER_HOST": engine, "DOCKER_BUILDKIT": "0"},
                capture_output=True,
                check=True,
            )
            plain = time.monotonic() - began
            sha = repo.commit({"Dockerfile": DOCKERFILE.format(marker=f"hookbuild-{i}")})
            began = time.monotonic()
            answer = deliver(base, repo.name, "refs/heads/main", sha, f"chatty-{i}")
            record = wait_for_build(base, answer.json()["builds"][0])
            assert record["status"] == "succeeded", record
            rows.append((plain, time.monotonic() - began, record["duration"]))
    print("chatty build: a RUN step printing 20,000 lines, seconds")
    print(f"{'docker build (CLI)':>20}{'hookbuild':>12}{'build only':>12}{'ratio':>8}")
    for plain, hookbuild, duration in rows:
        print(f"{plain:>20.2f}{hookbuild:>12.2f}{duration:>12.2f}{hookbuild / plain:>8.2f}")


if __name__ == "__main__":
    main()
