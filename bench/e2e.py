"""Benchmarks 1 and 4: webhook -> every tag in the registry, against a plain script
(`git clone --depth 1 && docker build && docker tag && docker push` per tag) on the same
commit; then a second commit that changes one source file.

A second baseline, the same script with one `docker build --label`, builds as many steps
as hookbuild does, and so shows hookbuild's own cost apart from the label step's: the
legacy builder makes labels a step of their own, a container create and commit (~0.1 s
here; one step per `--label`, hence hookbuild's one LABEL line for all of its labels).
Each of the three has its own Docker engine, so none borrows another's layer cache.
hookbuild runs with its default, `builder: auto`, which is BuildKit for these Dockerfiles
and sets the labels without a step; `--builder classic` measures the legacy builder, and
`--oci-labels-off` runs hookbuild with `oci_labels: false`, which leaves that step out.
(The plain script cannot use BuildKit here: the docker CLI needs its buildx plugin.)
Run: .venv/bin/python -m bench.e2e [--small-only] [--oci-labels-off] [--builder B]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx

from bench.harness import (
    Bench,
    Repo,
    add_builder_option,
    bench,
    deliver,
    plain_script,
    wait_for_build,
)

PHASES = ("==> fetched", "==> built", "==> pushed ", "==> no local")

DOCKERFILE = """FROM hookbuild-test/busybox
RUN dd if=/dev/urandom of=/deps bs=1M count=64 2>/dev/null && sha256sum /deps > /deps.sum
COPY src/ /src/
RUN cat /src/* | sha256sum > /src.sum
"""


COLD_ROUNDS = 5
NEXT_COMMITS = 11
BIG_DOCKERFILE = """FROM hookbuild-test/busybox
COPY src/ /src/
RUN du -s /src > /size
"""


def settle() -> None:
    """Flush every dirty page and give the engines a moment: each timed run starts alike."""
    os.sync()
    time.sleep(0.5)


@dataclass(frozen=True)
class Row:
    label: str
    plain: float
    plain_labelled: float
    hookbuild: float
    build: float  # the build's own duration in its record


def run_case(
    b: Bench, name: str, files: dict[str, str], change: dict[str, str], repo_keys: str = ""
) -> tuple[list[Row], list[tuple[str, list[str]]]]:
    """COLD_ROUNDS cold builds, each of its own repository whose Dockerfile no engine has
    seen (the sides take turns going first, as below), then NEXT_COMMITS further commits of
    `change` to the first repository (each a new content): a row for each. `repo_keys`:
    more settings of hookbuild's repositories, as YAML lines."""
    plain_engine, hookbuild_engine, labelled_engine = b.docker_hosts
    repos = [b.repo(f"bench/{name}")]
    repos += [b.repo(f"bench/{name}-cold{n}") for n in range(1, COLD_ROUNDS)]
    firsts = [repo.commit(_unseen(files, f"{name}-{n}")) for n, repo in enumerate(repos)]
    # The repository's own keys may follow its rules.
    rules = '      - {branch: main, tags: [latest, "{short_sha}"]}\n' + repo_keys
    config = b.config([(repo, rules) for repo in repos])
    base = b.serve(config)
    b.worker(config, hookbuild_engine, f"bench-worker-{name}")
    time.sleep(1.5)  # the worker is up and waiting, as in service
    rows = []
    phases: list[tuple[str, list[str]]] = []
    rounds: list[tuple[str, Repo, str | None]] = [
        ("cold", repo, first) for repo, first in zip(repos, firsts, strict=True)
    ]
    rounds += [("next commit, one file changed", repos[0], None)] * NEXT_COMMITS
    image = f"{b.registry.host}/bench/plain-{name}"
    labelled = f"{b.registry.host}/bench/plain-labelled-{name}"
    for index, (label, repo, sha) in enumerate(rounds):
        if sha is None:
            sha = repo.commit({path: f"{text}{index}\n" for path, text in change.items()})
        tags = ["latest", sha[:7]]

        def run_plain(tags: list[str] = tags, url: str = repo.url) -> float:
            return plain_script(plain_engine, url, image, tags, b.root)

        def run_plain_labelled(
            tags: list[str] = tags, sha: str = sha, url: str = repo.url
        ) -> float:
            # One label: the engine makes each `--label` a step of its own, and hookbuild
            # puts all of its labels in one.
            labels = {"org.opencontainers.image.revision": sha}
            return plain_script(labelled_engine, url, labelled, tags, b.root, labels)

        def run_hookbuild(sha: str = sha, repo: Repo = repo) -> dict[str, Any]:
            sent = time.time()
            response = deliver(base, repo.name, "refs/heads/main", sha, f"e2e-{sha}")
            # Timed to the record's finished_at (every tag pushed), on this machine's clock,
            # so the bench's polling adds nothing; it polls slowly, so as not to take CPU
            # from the build (the plain script's runs have no such neighbour).
            record: dict[str, Any] = wait_for_build(
                base, response.json()["builds"][0], interval=0.5
            )
            record["elapsed"] = record["finished_at"] - sent
            return record

        # Each run starts with the disk quiet (the last one's writes flushed), and the runs
        # take turns going first: whichever ran after another paid for its writeback.
        runs: list[Callable[[], Any]] = [run_plain, run_plain_labelled, run_hookbuild]
        order = runs[index % 3 :] + runs[: index % 3]
        results: dict[str, Any] = {}
        for run in order:
            settle()
            results[run.__name__] = run()
        record = results["run_hookbuild"]
        assert record["status"] == "succeeded", record
        assert set(tags) <= set(b.registry.tags(repo.name))
        row = Row(
            label,
            results["run_plain"],
            results["run_plain_labelled"],
            record["elapsed"],
            record["duration"],
        )
        rows.append(row)
        print(
            f"  {name} {label}: plain {row.plain:.2f}s, plain labelled {row.plain_labelled:.2f}s,"
            f" hookbuild {row.hookbuild:.2f}s ({order[0].__name__[4:]} first)",
            flush=True,
        )
        log = httpx.get(f"{base}/api/builds/{record['id']}/log", timeout=10).text.splitlines()
        phases.append((label, [line for line in log if line.startswith(PHASES)]))
    b.stop_processes()
    return rows, [phases[0], phases[COLD_ROUNDS]]


def _unseen(files: dict[str, str], mark: str) -> dict[str, str]:
    """`files` with a first step after FROM that no engine has built: every step misses
    the layer cache, on every side, as on a new repository."""
    head, _, rest = files["Dockerfile"].partition("\n")
    return {**files, "Dockerfile": f"{head}\nRUN echo {mark} > /round\n{rest}"}


def report(title: str, rows: list[Row]) -> None:
    """Medians of the cold rounds, then of the next commits: each column's, and each ratio's
    over the runs (a run's sides ran back to back, so their ratio is steadier than the
    columns)."""
    print(title)
    print(
        f"{'case':<30}{'plain':>8}{'labelled':>10}{'hookbuild':>11}"
        f"{'ratio':>7}{'quartiles':>12}{'to labelled':>13}{'build only':>12}"
    )
    cold, nexts = rows[:COLD_ROUNDS], rows[COLD_ROUNDS:]

    def line(label: str, rs: list[Row]) -> None:
        def mid(values: list[float]) -> float:
            return statistics.median(values)

        print(
            f"{label:<30}{mid([r.plain for r in rs]):>8.2f}"
            f"{mid([r.plain_labelled for r in rs]):>10.2f}{mid([r.hookbuild for r in rs]):>11.2f}"
            f"{mid([r.hookbuild / r.plain for r in rs]):>7.2f}"
            f"{_quartiles([r.hookbuild / r.plain for r in rs]):>12}"
            f"{mid([r.hookbuild / r.plain_labelled for r in rs]):>13.2f}"
            f"{mid([r.build for r in rs]):>12.2f}"
        )

    line(f"cold (median of {len(cold)})", cold)
    if nexts:
        line(f"next commit (median of {len(nexts)})", nexts)


def _quartiles(values: list[float]) -> str:
    """The middle half of the per-run ratios: how far one run's figure can be trusted."""
    if len(values) < 4:
        return "-"
    low, _, high = statistics.quantiles(values, n=4)
    return f"{low:.2f}-{high:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--small-only", action="store_true", help="skip the 3,000-file repository")
    parser.add_argument(
        "--oci-labels-off",
        action="store_true",
        help="hookbuild with `oci_labels: false`: no labels of its own, and no label step",
    )
    add_builder_option(parser)
    args = parser.parse_args()
    settings = {"oci_labels: false": args.oci_labels_off, f"builder: {args.builder}": True}
    chosen = [setting for setting, on in settings.items() if on]
    repo_keys = "".join(f"    {setting}\n" for setting in chosen)
    big_rows: list[Row] = []
    big_phases: list[tuple[str, list[str]]] = []
    with bench(engines=3) as b:
        sources = {f"src/file{i}.txt": f"content {i}\n" * 200 for i in range(20)}
        rows, phases = run_case(
            b,
            "e2e",
            {"Dockerfile": DOCKERFILE, **sources},
            {"src/file7.txt": "changed\n"},
            repo_keys,
        )
        # A larger source tree (3,000 files, 12 MB): the clone the plain script makes every
        # time is what the cached mirror saves.
        if not args.small_only:
            big = {f"src/d{i // 100}/f{i}.txt": f"{i} {'x' * 64}\n" * 64 for i in range(3000)}
            repo_files = {"Dockerfile": BIG_DOCKERFILE, **big}
            big_rows, big_phases = run_case(
                b, "big", repo_files, {"src/d7/f700.txt": "changed\n"}, repo_keys
            )

    if chosen:
        print(f"hookbuild ran with {', '.join(chosen)}")
    report("benchmark 1/4: webhook -> every tag in the registry (2 tags), seconds", rows)
    for label, lines in phases:
        print(f"hookbuild phases, {label}: " + " | ".join(line[4:] for line in lines))
    cold_build = statistics.median(row.build for row in rows[:COLD_ROUNDS])
    warm_build = statistics.median(row.build for row in rows[COLD_ROUNDS:])
    print(
        f"incremental: second-commit build {warm_build:.2f}s / cold build {cold_build:.2f}s"
        f" = {warm_build / cold_build:.2f}"
    )
    if big_rows:
        report("the same for a 3,000-file, 12 MB source tree", big_rows)
        for label, lines in big_phases:
            print(f"hookbuild phases, {label}: " + " | ".join(line[4:] for line in lines))


if __name__ == "__main__":
    main()
