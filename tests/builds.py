"""Push and wait: deliver a signed GitHub push to the app, work the queue (in this process)
or wait for a worker process, and read back the build's record and log."""

from __future__ import annotations

import json

from redis import Redis
from starlette.testclient import TestClient

from builder.config import Config
from runners.records import BuildRecord, BuildStatus, BuildStore
from runners.worker.process import run_worker
from tests.conftest import fixture_bytes
from tests.helpers import post_github_push, step_output
from tests.services import docker_env, wait_until
from tests.signing import forge_headers
from webhooks.app import create_app

ZERO_SHA = "0" * 40


def deliver(
    client: TestClient,
    ref: str,
    sha: str,
    *,
    secret: str,
    repository: str = "acme/web",
    before: str = ZERO_SHA,
    delivery: str = "",
) -> list[str]:
    """A signed GitHub push (the published fixture's shape, default branch main) of `sha`
    to `ref`, accepted (202) or answered with nothing to build (200): the builds it queued."""
    payload = json.loads(fixture_bytes("github/push-branch-goscm.json"))
    payload.update(ref=ref, after=sha, before=before)
    payload["repository"].update(full_name=repository, default_branch="main")
    payload["head_commit"]["message"] = "change"
    body = json.dumps(payload).encode()
    response = client.post(
        "/hooks/github",
        content=body,
        headers=forge_headers("github", "push", body, secret, delivery or sha + ref),
    )
    assert response.status_code in (200, 202), response.text
    return list(response.json()["builds"])


def work(config: Config, redis: Redis, docker_host: str, name: str | None = None) -> None:
    """A worker in this process until the queue is empty."""
    run_worker(config, redis, docker_env(docker_host), name=name, burst=True, in_process=True)


def status_of(store: BuildStore, build_id: str) -> BuildStatus | None:
    record = store.get(build_id)
    return record.status if record else None


def log_has(store: BuildStore, build_id: str, text: str) -> bool:
    """A whole line of a step's output, not its `Step 2/7 : RUN echo ...` header (nor
    BuildKit's `#5 [2/7] RUN echo ...`)."""
    return text in step_output(store.log_lines(build_id))


def finished(store: BuildStore, build_id: str, timeout: float = 120) -> BuildRecord:
    """The build's record once it has ended (a worker process runs it)."""
    wait_until(
        lambda: (status_of(store, build_id) or BuildStatus.QUEUED).finished,
        timeout,
        f"build {build_id} to finish",
    )
    record = store.get(build_id)
    assert record is not None
    return record


def push_and_build(
    redis: Redis, docker_host: str, config: Config, clone_url: str, sha: str, delivery: str
) -> tuple[BuildRecord, list[str]]:
    """A signed push of `sha` to main, a worker until the queue is empty: the build's
    record and its log."""
    client = TestClient(create_app(config, redis))
    status, answer = post_github_push(
        client, "acme/web", "refs/heads/main", sha, clone_url, delivery=delivery
    )
    assert status == 202, answer
    work(config, redis, docker_host, name="test-worker")
    store = BuildStore(redis)
    record = store.get(answer["builds"][0])
    assert record is not None
    return record, store.log_lines(record.id)
