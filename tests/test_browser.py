"""The dashboard in a real browser: Playwright driving Debian's Chromium (/usr/bin/chromium,
never a downloaded browser) against the real app, a real worker and a real Docker engine.

Screenshots land in $HOOKBUILD_TEST_ARTIFACTS (default: test-artifacts/).
"""

from __future__ import annotations

import os
import re
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from redis import Redis
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runners.deliverylog import DeliveryLog, DeliveryRecord
from runners.records import BuildRecord, BuildStatus, BuildStore
from tests import configs
from tests.configs import load_config
from tests.conftest import GitRepo, MakeRepo
from tests.registry import RegistryReader
from tests.services import docker_env, live_server
from tests.signing import forge_headers
from tests.workers import SECRET, WorkerProcess, push_body, write_config
from webhooks.app import create_app

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("HOOKBUILD_TEST_ARTIFACTS", "test-artifacts"))
SLOW = (
    "FROM hookbuild-test/busybox\n"
    "RUN echo {marker} && for i in $(seq 1 40); do echo line-$i; sleep 0.1; done\n"
    "RUN echo done > /done\n"
)
FAILING = "FROM hookbuild-test/busybox\nRUN echo {marker}\nRUN echo broken-step && exit 3\n"
# Long enough for the page to open while the build runs.
SLEEPY = "FROM hookbuild-test/busybox\nRUN echo {marker} && sleep 2\nRUN echo done > /done\n"
SLEEPY_FAILING = "FROM hookbuild-test/busybox\nRUN echo {marker} && sleep 2\nRUN exit 3\n"
GREEN = "rgb(46, 160, 67)"  # --ok (#2ea043) in style.css


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


@dataclass
class Dashboard:
    url: str
    repo: GitRepo
    store: BuildStore
    builder: str


@pytest.fixture
def dashboard(
    request: pytest.FixtureRequest,
    redis: Redis,
    redis_url: str,
    registry: RegistryReader,
    docker_host: str,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> Iterator[Dashboard]:
    """The app on a real port, with one worker on the test engine; the builder is the
    test's parameter where it has one (`indirect`), else the default."""
    repo = make_repo("browser/web")
    builder = getattr(request, "param", "classic")
    path = write_config(
        tmp_path / "builds.yml",
        tmp_path / "state",
        registry.host,
        [(repo.name, repo.url, "      - {branch: /.*/, tags: ['{branch}']}\n")],
        builder=builder,
    )
    app = create_app(load_config(path, {}), redis, docker_environ=docker_env(docker_host))
    worker = WorkerProcess(path, redis_url, docker_host, "w-browser")
    with live_server(app) as url:
        try:
            yield Dashboard(url, repo, BuildStore(redis), builder)
        finally:
            worker.stop()


def push(dashboard: Dashboard, dockerfile: str, delivery: str) -> str:
    """A commit, pushed, and the signed delivery GitHub sends for it; returns the build id."""
    sha = dashboard.repo.commit({"Dockerfile": dockerfile.format(marker=secrets.token_hex(8))})
    dashboard.repo.push("main")
    body = push_body(dashboard.repo.name, "refs/heads/main", sha)
    response = httpx.post(
        f"{dashboard.url}/hooks/github",
        content=body,
        headers=forge_headers("github", "push", body, SECRET, delivery),
        timeout=10,
    )
    assert response.status_code == 202, response.text
    [build_id] = response.json()["builds"]
    return str(build_id)


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, "a real picture of the page"
    return path


@pytest.mark.docker
def test_a_build_streams_its_log_into_the_page_and_turns_green(
    dashboard: Dashboard, page: Page
) -> None:
    url = dashboard.url
    page.goto(f"{url}/")
    expect(page.get_by_role("link", name="browser/web").first).to_be_visible()

    build_id = push(dashboard, SLOW, "browser-1")
    page.goto(f"{url}/builds")
    page.locator(f'a[href="/builds/{build_id}"]').first.click()
    expect(page).to_have_url(f"{url}/builds/{build_id}")
    log = page.locator("#log")
    status = page.locator("#status")

    # Lines arrive while the build still runs: both read in one look at the page.
    expect(log.get_by_text("line-5", exact=True)).to_be_visible(timeout=60_000)
    seen = page.evaluate(
        """() => [document.getElementById('status').textContent.trim(),
                  document.getElementById('log').textContent.includes('line-40')]"""
    )
    assert seen == ["running", False], "a line shows before the build ends"

    expect(status).to_have_text("succeeded", timeout=120_000)
    expect(status).to_have_css("background-color", GREEN)
    # Step 1/4 .. 4/4 (the fourth sets the OCI labels), highlighted as steps.
    expect(log.locator("div.step")).to_have_count(4)
    screenshot(page, "build-page-succeeded")
    rows = log.locator(":scope > div").all_text_contents()
    assert rows == dashboard.store.log_lines(build_id), "every line once, in order"

    # On a phone: the page fits the screen's width (long lines wrap inside the log).
    page.set_viewport_size({"width": 390, "height": 844})
    for path in (f"/builds/{build_id}", "/builds", "/", "/deliveries"):
        page.goto(f"{url}{path}")
        overflow = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a phone"
    page.goto(f"{url}/builds/{build_id}")
    screenshot(page, "build-page-phone")


FAILING_STEP = {
    "classic": (r"^Step 3/\d+ : RUN echo broken-step && exit 3$", "non-zero code: 3"),
    "buildkit": (r"^#\d+ \[3/3\] RUN echo broken-step && exit 3$", "exit code: 3"),
}


@pytest.mark.docker
@pytest.mark.parametrize("dashboard", ["classic", "buildkit"], indirect=True)
def test_a_failed_build_shows_its_failing_step(dashboard: Dashboard, page: Page) -> None:
    build_id = push(dashboard, FAILING, "browser-2")
    step, reason = FAILING_STEP[dashboard.builder]
    page.goto(f"{dashboard.url}/builds/{build_id}")

    expect(page.locator("#status")).to_have_text("failed", timeout=120_000)
    failing = page.locator("#log div.failing-step")
    expect(failing).to_have_count(1)
    expect(failing).to_contain_text(re.compile(step))
    expect(page.locator("#log div.error").last).to_contain_text(reason)
    screenshot(page, f"build-page-failed-{dashboard.builder}")

    # A visit after the end renders the same highlight from the stored log.
    page.reload()
    expect(page.locator("#log div.failing-step")).to_contain_text("broken-step")
    expect(page.get_by_text(reason).first).to_be_visible()


def test_a_ten_thousand_line_log_streams_in_whole_and_in_order(
    redis: Redis, page: Page, tmp_path: Path
) -> None:
    """A very chatty build: 10,000 lines written while the page follows them."""
    store = BuildStore(redis)
    store.add(
        BuildRecord(
            id="chatty",
            forge="github",
            repository="browser/web",
            ref="refs/heads/main",
            sha="c" * 40,
            image="r/web",
            tags=("main",),
        )
    )
    store.start("chatty", "worker-x")
    store.append_log("chatty", [f"early-{i}" for i in range(100)])
    config = configs.config_file(
        tmp_path / "builds.yml",
        tmp_path,
        [configs.repository("browser/web", "r/web", secret="s", rules=[{"branch": "main"}])],
    )
    with live_server(create_app(load_config(config, {}), redis, docker_environ={})) as url:
        page.goto(f"{url}/builds/chatty")
        expect(page.locator("#log").get_by_text("early-99", exact=True)).to_be_attached()
        for start in range(0, 10_000, 500):
            store.append_log("chatty", [f"line-{i}" for i in range(start, start + 500)])
            time.sleep(0.02)
        store.finish("chatty", BuildStatus.SUCCEEDED)

        expect(page.locator("#status")).to_have_text("succeeded", timeout=60_000)
        rows = page.locator("#log > div").all_text_contents()
    assert rows == store.log_lines("chatty") and len(rows) == 10_100


def test_the_place_in_line_goes_once_the_build_leaves_the_line(
    redis: Redis, page: Page, tmp_path: Path
) -> None:
    """A page opened while its build waits says where it is in line, until a worker takes
    it: no worker here, so the test moves the build on itself."""
    name = f"line-{secrets.token_hex(3)}/web"
    path = write_config(
        tmp_path / "builds.yml",
        tmp_path / "state",
        "127.0.0.1:1",
        [(name, "git://127.0.0.1:1/none.git", "      - {branch: main, tags: [main]}\n")],
    )
    with live_server(create_app(load_config(path, {}), redis, docker_environ={})) as url:
        body = push_body(name, "refs/heads/main", "d" * 40)
        answer = httpx.post(
            f"{url}/hooks/github",
            content=body,
            headers=forge_headers("github", "push", body, SECRET, f"line-{name}"),
            timeout=10,
        )
        assert answer.status_code == 202, answer.text
        [build_id] = answer.json()["builds"]
        page.goto(f"{url}/builds/{build_id}")
        expect(page.locator("#position")).to_have_text(re.compile(r"position \d+ in line"))

        BuildStore(redis).start(build_id, "worker-x")

        expect(page.locator("#status")).to_have_text("running")
        expect(page.locator("#position")).to_have_count(0)


@pytest.mark.docker
@pytest.mark.parametrize(
    ("dockerfile", "ending"),
    [(SLEEPY, "succeeded"), (SLEEPY_FAILING, "failed")],
    ids=["succeeded", "failed"],
)
def test_a_page_opened_mid_build_shows_the_whole_end_without_a_reload(
    dashboard: Dashboard, page: Page, dockerfile: str, ending: str
) -> None:
    """#16.11: a build page opened while the build runs shows, when it ends, its real
    duration, what it pushed (or why it failed), and no Cancel button, all without a
    reload (it showed "Took 4.6s" of a 26.5 s build, and no digests or Why)."""
    build_id = push(dashboard, dockerfile, f"browser-end-{ending}")
    page.goto(f"{dashboard.url}/builds/{build_id}")
    expect(page.locator("#log")).to_have_attribute("data-finished", "false")
    page.evaluate("() => { window.sameDocument = true; }")
    cancel = page.locator("button[data-action=cancel]")
    expect(cancel).to_be_visible()

    expect(page.locator("#status")).to_have_text(ending, timeout=120_000)
    record = dashboard.store.get(build_id)
    assert record is not None and record.duration is not None and record.duration > 2
    expect(page.locator("#took")).to_have_text(f"{record.duration:.1f}s on {record.worker}")
    if ending == "succeeded":
        assert record.digests
        for ref, digest in record.digests.items():
            expect(page.locator("#pushed")).to_contain_text(f"{ref}@{digest}")
        expect(page.locator("#why")).to_be_hidden()
    else:
        assert record.error
        expect(page.locator("#why")).to_be_visible()
        expect(page.locator("#why")).to_contain_text(record.error)
        expect(page.locator("#pushed")).to_be_hidden()
    expect(cancel).to_have_count(0)
    assert page.evaluate("() => window.sameDocument") is True, "the page was not reloaded"
    screenshot(page, f"build-page-ended-{ending}")

    # The same page rendered after the end shows the same, and no Cancel either.
    page.reload()
    expect(page.locator("#took")).to_have_text(f"{record.duration:.1f}s on {record.worker}")
    expect(page.locator("button[data-action=cancel]")).to_have_count(0)


class Answers:
    """The app, recording each request's path and the status it got: the browser asks for
    /favicon.ico on its own, out of the page's sight (Playwright does not see it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.seen: list[tuple[str, int]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.seen.append((scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, recording)


LONG_REF = "refs/heads/feature/phone-layout/a-rather-long-branch-name"
# Each line break a text makes, as (the character before, the character after): the
# characters' boxes, read with a Range one character at a time.
LINE_BREAKS = """(el) => {
  const breaks = [];
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  let top = null, before = "";
  for (let node; (node = walker.nextNode());) {
    for (let i = 0; i < node.length; i++) {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const box = range.getBoundingClientRect();
      if (box.height === 0) continue;
      if (top !== null && box.top > top + 2) breaks.push([before, node.data[i]]);
      top = box.top;
      before = node.data[i];
    }
  }
  return breaks;
}"""


def test_on_a_phone_badges_stay_whole_refs_break_at_slashes_and_no_favicon_404(
    redis: Redis, browser: Browser, tmp_path: Path
) -> None:
    """#16.12: at 390 px a status badge is one line (it wrapped as `succee|ded`), a ref
    on /deliveries and /builds breaks only after a `/` or `-`, never mid-word, and no
    page asks for a /favicon.ico that is not there."""
    store = BuildStore(redis)
    for index, status in enumerate((BuildStatus.SUCCEEDED, BuildStatus.CANCELLED)):
        build_id = f"phone{index}"
        store.add(
            BuildRecord(
                id=build_id,
                forge="github",
                repository="browser/web",
                ref=LONG_REF,
                sha="e" * 40,
                image="r/web",
                tags=("feature-phone-layout-a-rather-long-branch-name",),
            )
        )
        store.start(build_id, "worker-x")
        store.finish(build_id, status)
    DeliveryLog(redis).add(
        DeliveryRecord(
            forge="github",
            outcome="built",
            status=202,
            event="push",
            delivery_id="phone-delivery",
            repository="browser/web",
            ref=LONG_REF,
            builds=["phone0", "phone1"],
        )
    )
    config = configs.config_file(
        tmp_path / "builds.yml",
        tmp_path,
        [configs.repository("browser/web", "r/web", secret="s", rules=[{"branch": "/.*/"}])],
    )
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    app = Answers(create_app(load_config(config, {}), redis, docker_environ={}))
    try:
        with live_server(app) as url:
            for path in ("/", "/builds", "/builds/phone0", "/deliveries"):
                page.goto(f"{url}{path}")
                page.wait_for_load_state("networkidle")
                badges = page.locator(".status")
                assert badges.count() > 0 or path == "/deliveries", path
                for badge in badges.all():
                    one_line = badge.evaluate(
                        "(el) => el.getBoundingClientRect().height"
                        " < 1.5 * parseFloat(getComputedStyle(el).lineHeight)"
                    )
                    assert one_line, f"{path}: the badge {badge.text_content()!r} wraps"
                refs = page.locator("code", has_text="refs/heads/feature")
                assert refs.count() > 0, path
                for ref in refs.all():
                    breaks = ref.evaluate(LINE_BREAKS)
                    assert all(before in "/-" for before, _ in breaks), (path, breaks)
                overflow = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
                assert overflow <= 0, f"{path} scrolls sideways by {overflow}px on a phone"
            page.goto(f"{url}/deliveries")
            screenshot(page, "deliveries-phone")
            page.wait_for_timeout(500)  # the browser's own late requests (the icon)
    finally:
        context.close()
    assert {path for path, _ in app.seen} >= {"/", "/builds", "/deliveries", "/static/style.css"}
    assert [(path, status) for path, status in app.seen if status >= 400] == []
