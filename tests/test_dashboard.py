"""The dashboard's pages, rendered by the real app over real Redis records."""

from __future__ import annotations

import time
from html import escape
from pathlib import Path

from redis import Redis
from starlette.testclient import TestClient

from runners.records import BuildRecord, BuildStatus, BuildStore
from tests.configs import parse_config
from webhooks.app import create_app

CONFIG = """
server: {token: dashboard-token-0123456789}
repositories:
  - {name: acme/web, forge: github, secret: s, image: r/web, rules: [{branch: /.*/}]}
  - {name: acme/api, forge: gitlab, secret: s, image: r/api, rules: [{branch: main}]}
"""


def record(
    store: BuildStore,
    build_id: str,
    repository: str,
    ref: str,
    status: BuildStatus,
    lines: list[str],
    age: float = 0,
) -> None:
    store.add(
        BuildRecord(
            id=build_id,
            forge="github",
            repository=repository,
            ref=ref,
            sha=f"{build_id:0>40}"[:40],
            image="r/x",
            tags=("latest",),
            created_at=time.time() - age,
            message="Fix the thing",
            pusher="ada",
        )
    )
    store.append_log(build_id, lines)
    if status is not BuildStatus.QUEUED:
        store.start(build_id, "worker-1")
    if status.finished:
        store.finish(
            build_id, status, error="build failed: exit 1" if status is BuildStatus.FAILED else None
        )


def client_for(redis: Redis, tmp_path: Path, public: bool = True) -> TestClient:
    text = CONFIG.replace("{token:", "{public: false, token:") if not public else CONFIG
    return TestClient(
        create_app(parse_config(f"state_dir: {tmp_path}\n{text}", {}), redis, docker_environ={})
    )


def test_repositories_page_shows_the_last_build_per_ref(redis: Redis, tmp_path: Path) -> None:
    store = BuildStore(redis)
    record(store, "old", "acme/web", "refs/heads/main", BuildStatus.FAILED, ["x"], age=60)
    record(store, "new", "acme/web", "refs/heads/main", BuildStatus.SUCCEEDED, ["x"])
    record(store, "dev", "acme/web", "refs/heads/dev", BuildStatus.FAILED, ["x"])

    page = client_for(redis, tmp_path).get("/").text

    assert "acme/web" in page and "acme/api" in page and "No builds yet." in page
    assert 'href="/builds/new"' in page and 'href="/builds/dev"' in page
    assert 'href="/builds/old"' not in page, "only the last build of each ref"


def test_builds_page_filters_by_repository_status_and_ref(redis: Redis, tmp_path: Path) -> None:
    store = BuildStore(redis)
    record(store, "b1", "acme/web", "refs/heads/main", BuildStatus.SUCCEEDED, ["x"])
    record(store, "b2", "acme/web", "refs/heads/dev", BuildStatus.FAILED, ["x"])
    record(store, "b3", "acme/api", "refs/heads/main", BuildStatus.QUEUED, [])
    client = client_for(redis, tmp_path)

    failed = client.get("/builds?status=failed").text
    api = client.get("/builds?repository=acme/api").text
    main = client.get("/builds?ref=main").text

    assert 'href="/builds/b2"' in failed and 'href="/builds/b1"' not in failed
    assert 'href="/builds/b3"' in api and 'href="/builds/b1"' not in api
    assert (
        'href="/builds/b1"' in main
        and 'href="/builds/b3"' in main
        and 'href="/builds/b2"' not in main
    )


def test_build_page_shows_the_commit_the_log_and_why_it_failed(
    redis: Redis, tmp_path: Path
) -> None:
    store = BuildStore(redis)
    log = [
        "==> build b9",
        "Step 1/2 : FROM base",
        "Step 2/2 : RUN false",
        "ERROR: exit 1",
        "==> FAILED: build failed: exit 1",
    ]
    record(store, "b9", "acme/web", "refs/heads/main", BuildStatus.FAILED, log)

    response = client_for(redis, tmp_path).get("/builds/b9")

    assert response.status_code == 200
    page = response.text
    assert '<span id="status" class="status failed">failed</span>' in page
    assert "Fix the thing" in page and "ada" in page and "build failed: exit 1" in page
    # Escaped: a log line is text, never markup.
    assert "".join(f"<div>{escape(line)}</div>" for line in log) in page
    assert 'data-finished="true"' in page, "a finished build's page opens no live stream"
    assert "markFailingStep" in page


def test_running_build_page_follows_the_log_live(redis: Redis, tmp_path: Path) -> None:
    store = BuildStore(redis)
    record(
        store,
        "r1",
        "acme/web",
        "refs/heads/main",
        BuildStatus.RUNNING,
        ["==> build r1", "Step 1/3 : FROM base"],
    )
    page = client_for(redis, tmp_path).get("/builds/r1").text
    assert 'data-finished="false"' in page and 'data-first="0"' in page
    # The page shows the log's tail: the stream starts after its last line shown.
    assert "const shown = Number(log.dataset.first) + log.children.length;" in page
    assert "new EventSource(`/api/builds/${build}/log?follow=true&start=${shown}`)" in page


def test_unknown_build_is_404(redis: Redis, tmp_path: Path) -> None:
    assert client_for(redis, tmp_path).get("/builds/<nope>").status_code == 404


def test_deliveries_page_and_the_stylesheet(redis: Redis, tmp_path: Path) -> None:
    from runners.deliverylog import DeliveryLog, DeliveryRecord

    DeliveryLog(redis).add(
        DeliveryRecord(
            forge="gitea",
            outcome="skipped",
            status=200,
            reason="no rule matches refs/heads/x",
            repository="acme/web",
            ref="refs/heads/x",
        )
    )
    client = client_for(redis, tmp_path)
    page = client.get("/deliveries").text
    assert "no rule matches refs/heads/x" in page and "gitea" in page
    css = client.get("/static/style.css")
    assert css.status_code == 200 and "#log" in css.text


def test_pages_need_the_token_when_not_public(redis: Redis, tmp_path: Path) -> None:
    client = client_for(redis, tmp_path, public=False)
    assert client.get("/builds").status_code == 401
    assert (
        client.get(
            "/builds", headers={"Authorization": "Bearer dashboard-token-0123456789"}
        ).status_code
        == 200
    )


def test_api_filters_by_status_and_ref_from_indexes_that_follow_each_transition(
    redis: Redis, tmp_path: Path
) -> None:
    store = BuildStore(redis)
    record(store, "b1", "acme/web", "refs/heads/main", BuildStatus.SUCCEEDED, ["x"], age=30)
    record(store, "b2", "acme/web", "refs/heads/dev", BuildStatus.FAILED, ["x"], age=20)
    record(store, "b3", "acme/api", "refs/heads/main", BuildStatus.QUEUED, [], age=10)
    record(store, "b4", "acme/web", "refs/tags/v1.0", BuildStatus.RUNNING, [])
    client = client_for(redis, tmp_path)

    def ids(query: str) -> list[str]:
        response = client.get(f"/api/builds?{query}")
        assert response.status_code == 200, response.text
        return [b["id"] for b in response.json()["builds"]]

    assert ids("status=queued") == ["b3"]
    assert ids("status=running") == ["b4"]
    assert ids("ref=main") == ["b3", "b1"]
    assert ids("ref=refs/heads/main") == ["b3", "b1"]
    assert ids("ref=v1.0&repository=acme/web") == ["b4"]
    assert ids("repository=acme/web&status=failed") == ["b2"]
    assert ids("ref=main&status=succeeded") == ["b1"]
    assert ids("repository=acme/api&ref=main&status=queued") == ["b3"]
    assert ids("") == ["b4", "b3", "b2", "b1"]

    store.start("b3", "worker-1")
    store.finish("b3", BuildStatus.SUCCEEDED)
    assert ids("status=queued") == []
    assert ids("status=succeeded") == ["b3", "b1"]
    assert ids("status=succeeded&limit=1&offset=1") == ["b1"]

    unknown = client.get("/api/builds?status=green")
    assert unknown.status_code == 400 and "use one of queued" in unknown.json()["error"]


def test_cancel_is_offered_only_while_a_build_is_unfinished(redis: Redis, tmp_path: Path) -> None:
    """#16.12: a finished build's page has no Cancel button; a queued or running one has."""
    store = BuildStore(redis)
    record(store, "waiting", "acme/web", "refs/heads/main", BuildStatus.QUEUED, [])
    record(store, "going", "acme/web", "refs/heads/main", BuildStatus.RUNNING, ["x"])
    record(store, "done", "acme/web", "refs/heads/main", BuildStatus.SUCCEEDED, ["x"])
    record(store, "broke", "acme/web", "refs/heads/main", BuildStatus.FAILED, ["x"])
    client = client_for(redis, tmp_path)
    cancel = 'data-action="cancel"'
    assert cancel in client.get("/builds/waiting").text
    assert cancel in client.get("/builds/going").text
    assert cancel not in client.get("/builds/done").text
    assert cancel not in client.get("/builds/broke").text
    assert 'data-action="rebuild"' in client.get("/builds/done").text
