"""Long logs in the browser: a 10,000-line build log on the dashboard's build page, in
Debian's chromium driven by Playwright, against `hookbuild serve` on real Redis.

1. A finished build's page: navigation to every line in the page. Baseline: the same log as
   plain text from GET /api/builds/{id}/log, opened in the same browser.
2. A running build's page following the log: 10,000 lines written to Redis at once, to the
   last of them on the page. Baseline: a bare EventSource on an empty page that only counts
   the same stream's events (the stream's cost without any rendering).
Run: .venv/bin/python -m bench.log_page
"""

from __future__ import annotations

import os
import time

from playwright.sync_api import Page, sync_playwright
from redis import Redis

from bench.harness import bench, median
from runners.records import BuildRecord, BuildStatus, BuildStore

LINES = 10_000
RUNS = int(os.environ.get("RUNS", "5"))
CHROMIUM = "/usr/bin/chromium"
LINE = "Step {i}/9999 : RUN make -j2 target-{i} && echo compiled object file number {i}"


def add_build(store: BuildStore, build_id: str, lines: int, finished: bool) -> None:
    store.add(
        BuildRecord(
            id=build_id,
            forge="github",
            repository="bench/log",
            ref="refs/heads/main",
            sha="b" * 40,
            image="r/log",
            tags=("main",),
        )
    )
    store.start(build_id, "bench")
    if lines:
        store.append_log(build_id, [LINE.format(i=i) for i in range(lines)])
    if finished:
        store.finish(build_id, BuildStatus.SUCCEEDED)


def timed_load(page: Page, url: str, ready: str) -> float:
    began = time.perf_counter()
    page.goto(url)
    page.wait_for_function(ready, timeout=120_000, polling="raf")
    return time.perf_counter() - began


def main() -> None:
    with bench(engines=0) as b:
        store = BuildStore(Redis.from_url(b.redis_url))
        config = b.config([(b.repo("bench/log"), "      - {branch: main}\n")])
        base = b.serve(config)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})

            finished_page, plain_text = [], []
            for run in range(RUNS):
                add_build(store, f"done{run}", LINES, finished=True)
                finished_page.append(
                    timed_load(
                        page,
                        f"{base}/builds/done{run}",
                        f"document.querySelectorAll('#log > div').length === {LINES}",
                    )
                )
                plain_text.append(
                    timed_load(
                        page,
                        f"{base}/api/builds/done{run}/log",
                        f"document.body.innerText.includes('target-{LINES - 1} ')",
                    )
                )

            followed, bare_stream = [], []
            for run in range(RUNS):
                add_build(store, f"live{run}", 0, finished=False)
                page.goto(f"{base}/builds/live{run}")
                page.wait_for_function(
                    "document.getElementById('status').textContent.trim() === 'running'"
                )
                page.wait_for_timeout(300)  # the stream is open
                began = time.perf_counter()
                store.append_log(f"live{run}", [LINE.format(i=i) for i in range(LINES)])
                page.wait_for_function(
                    f"document.querySelectorAll('#log > div').length === {LINES}",
                    timeout=120_000,
                    polling="raf",
                )
                followed.append(time.perf_counter() - began)
                store.finish(f"live{run}", BuildStatus.SUCCEEDED)

                add_build(store, f"bare{run}", 0, finished=False)
                page.goto(f"{base}/static/style.css")  # a page of ours, so the origin matches
                page.evaluate(
                    f"""() => {{ window.seen = 0;
                        const s = new EventSource('/api/builds/bare{run}/log?follow=true');
                        s.onmessage = () => {{ window.seen++; }}; }}"""
                )
                page.wait_for_timeout(300)
                began = time.perf_counter()
                store.append_log(f"bare{run}", [LINE.format(i=i) for i in range(LINES)])
                page.wait_for_function(f"window.seen === {LINES}", timeout=120_000, polling="raf")
                bare_stream.append(time.perf_counter() - began)
                store.finish(f"bare{run}", BuildStatus.SUCCEEDED)

            timed_load(
                page,
                f"{base}/builds/done0",
                f"document.querySelectorAll('#log > div').length === {LINES}",
            )
            scroll = page.evaluate(
                """async () => { const log = document.getElementById('log');
                    const began = performance.now(); let frames = 0;
                    while (log.scrollTop > 0 || frames === 0) {
                      log.scrollTop = Math.max(0, log.scrollTop - 4000); frames++;
                      await new Promise(requestAnimationFrame); }
                    return [(performance.now() - began) / frames, frames]; }"""
            )
            browser.close()

    print(f"log page benchmark: {LINES} lines, median of {RUNS} runs, chromium")
    fp, pt = median(finished_page), median(plain_text)
    print(f"1. finished build page, every line shown: {fp * 1000:.0f} ms")
    print(f"   baseline, the same log as plain text:  {pt * 1000:.0f} ms   ratio {fp / pt:.2f}")
    fl, bs = median(followed), median(bare_stream)
    print(f"2. following a running build, 10,000 new lines on the page: {fl * 1000:.0f} ms")
    print(
        f"   baseline, a bare EventSource counting them:             {bs * 1000:.0f} ms"
        f"   ratio {fl / bs:.2f}"
    )
    print(f"   scrolling the 10,000-line log: {scroll[0]:.1f} ms a frame over {scroll[1]} frames")


if __name__ == "__main__":
    main()
