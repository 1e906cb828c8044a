"""`POST /hooks/github`: every answer a forge can get, and that rejected requests queue nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from starlette.applications import Starlette
from starlette.testclient import TestClient

from runners import redisclient
from runners.deliverylog import DeliveryLog
from runners.queue import QUEUE_NAME
from runners.records import BuildStore
from tests.configs import parse_config
from tests.conftest import fixture_bytes, github_signature
from webhooks.app import create_app

SECRET = "github-secret"


# Each test runs twice: on the app as `hookbuild serve` runs it (its lifespan started, so
# deliveries are written by the asyncio intake) and on a bare app (written from threads).
PATHS = pytest.mark.parametrize("intake", ["asyncio", "threads"])


def started(app: Starlette, intake: str) -> Iterator[TestClient]:
    if intake == "threads":
        yield TestClient(app)
        return
    with TestClient(app) as client:
        yield client


@pytest.fixture(params=["asyncio", "threads"])
def client(redis: Redis, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    config = parse_config(
        f"""
state_dir: {tmp_path}
server: {{max_body_bytes: 200000}}
repositories:
  - name: Codertocat/Hello-World
    forge: github
    secret: {SECRET}
    image: localhost:5000/hello
    rules:
      - branch: /.*/
        tags: ["{{branch}}"]
  - name: bradrydzewski/drone-test-go
    forge: github
    secret: {SECRET}
    image: localhost:5000/drone
    rules:
      - tag: /^v(.*)$/
        tags: ["{{1}}"]
""",
        {},
    )
    yield from started(create_app(config, redis), request.param)


def deliver(
    client: TestClient,
    body: bytes,
    event: str = "push",
    *,
    secret: str | None = SECRET,
    delivery: str = "d-1",
) -> tuple[int, dict]:  # type: ignore[type-arg]
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery,
    }
    if secret is not None:
        headers["X-Hub-Signature-256"] = github_signature(secret, body)
    response = client.post("/hooks/github", content=body, headers=headers)
    return response.status_code, response.json()


def queued(redis: Redis) -> int:
    return int(redis.llen(f"rq:queue:{QUEUE_NAME}"))


def test_signed_push_is_accepted_with_its_build_ids(client: TestClient, redis: Redis) -> None:
    status, answer = deliver(client, fixture_bytes("github/push-branch-goscm.json"))
    assert status == 202
    [build_id] = answer["builds"]
    record = BuildStore(redis).get(build_id)
    assert record is not None and record.status.value == "queued"
    assert record.sha == "199eddf46df50de8d02e99bf1c5fdb4101338224"
    # master is the payload's default branch, so `latest` comes with it (latest: auto).
    assert record.tags == ("master", "latest")
    assert queued(redis) == 1


def test_tag_push_matches_tag_rule(client: TestClient, redis: Redis) -> None:
    status, answer = deliver(client, fixture_bytes("github/push-tag-created-goscm.json"))
    assert status == 202
    record = BuildStore(redis).get(answer["builds"][0])
    assert record is not None and record.tags == ("0.0.1",) and record.ref == "refs/tags/v0.0.1"


@pytest.mark.parametrize("secret", ["wrong-secret", None], ids=["wrong", "missing"])
def test_bad_or_missing_signature_is_401_and_queues_nothing(
    client: TestClient, redis: Redis, secret: str | None
) -> None:
    status, answer = deliver(client, fixture_bytes("github/push-branch-goscm.json"), secret=secret)
    assert status == 401
    assert "X-Hub-Signature-256" in answer["error"]
    assert queued(redis) == 0 and BuildStore(redis).recent() == []


def test_sha1_signature_alone_is_not_accepted(client: TestClient, redis: Redis) -> None:
    import hashlib
    import hmac

    body = fixture_bytes("github/push-branch-goscm.json")
    sha1 = "sha1=" + hmac.new(SECRET.encode(), body, hashlib.sha1).hexdigest()
    response = client.post(
        "/hooks/github",
        content=body,
        headers={"X-GitHub-Event": "push", "X-Hub-Signature": sha1},
    )
    assert response.status_code == 401 and queued(redis) == 0


def test_unknown_repository_is_404(client: TestClient, redis: Redis) -> None:
    status, answer = deliver(client, fixture_bytes("github/push-branch-woodpecker.json"))
    assert status == 404
    assert answer["error"] == "no github repository 'woodpecker-ci/woodpecker' in the config"
    assert queued(redis) == 0


def test_malformed_body_is_400(client: TestClient, redis: Redis) -> None:
    status, answer = deliver(client, b"payload=%7B%22ref%22%3A1%7D")
    assert status == 400 and "not JSON" in answer["error"]
    assert queued(redis) == 0


def test_missing_event_header_is_400(client: TestClient) -> None:
    response = client.post("/hooks/github", content=b"{}")
    assert response.status_code == 400 and "no event header" in response.json()["error"]


def test_oversized_body_is_413_before_reading_it(client: TestClient, redis: Redis) -> None:
    body = b'{"pad": "' + b"x" * 300_000 + b'"}'
    status, answer = deliver(client, body)
    assert status == 413 and "over the limit of 200000" in answer["error"]
    assert queued(redis) == 0


def test_oversized_chunked_body_is_413(client: TestClient, redis: Redis) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(30):
            yield b"x" * 10_000

    response = client.post("/hooks/github", content=chunks(), headers={"X-GitHub-Event": "push"})
    assert response.status_code == 413 and queued(redis) == 0


def test_ping_is_200(client: TestClient) -> None:
    body = fixture_bytes("github/ping-repo-octokit.json")
    payload = json.loads(body)
    payload["repository"]["full_name"] = "Codertocat/Hello-World"
    body = json.dumps(payload).encode()
    status, answer = deliver(client, body, "ping")
    assert status == 200 and answer["ignored"] == "ping: the webhook is set up"


def test_org_ping_without_repository_is_200(client: TestClient) -> None:
    status, answer = deliver(client, fixture_bytes("github/ping-org-octokit.json"), "ping")
    assert status == 200 and "names no repository" in answer["ignored"]


def test_branch_deletion_is_200_with_the_reason(client: TestClient, redis: Redis) -> None:
    body = fixture_bytes("github/push-tag-deleted-octokit.json")
    status, answer = deliver(client, body)
    assert status == 200
    assert answer == {"builds": [], "skipped": "tag deleted: refs/tags/simple-tag"}
    assert queued(redis) == 0


def test_push_no_rule_matches_is_200_with_the_reason(client: TestClient, redis: Redis) -> None:
    body = fixture_bytes("github/push-branch-created-goscm.json")  # drone-test-go: tag rules only
    status, answer = deliver(client, body)
    assert status == 200 and answer["skipped"] == "no rule matches refs/heads/feature-branch"
    assert queued(redis) == 0


def test_pull_request_is_ignored_with_the_reason(client: TestClient) -> None:
    body = fixture_bytes("github/pull_request-opened-octokit.json")
    payload = json.loads(body)
    payload["repository"]["full_name"] = "Codertocat/Hello-World"
    status, answer = deliver(client, json.dumps(payload).encode(), "pull_request")
    assert status == 200 and answer["ignored"] == "pull_request events do not build; only push does"


@PATHS
def test_redis_down_is_503_so_the_forge_can_redeliver(tmp_path: Path, intake: str) -> None:
    from tests.services import free_port

    config = parse_config(
        f"repositories:\n  - {{name: Codertocat/Hello-World, forge: github, secret: {SECRET}, "
        "image: localhost:5000/h, rules: [{branch: master}]}\n",
        {},
    )
    # As `hookbuild serve` connects (runners/server.py).
    dead = redisclient.from_url(
        f"redis://127.0.0.1:{free_port()}",
        retries=redisclient.ANSWERING_RETRIES,
        socket_connect_timeout=0.5,
    )
    for client in started(create_app(config, dead), intake):
        began = time.monotonic()
        status, answer = deliver(client, fixture_bytes("github/push-branch-goscm.json"))
        assert status == 503 and "redeliver" in answer["error"]
        # Within the shortest forge's timeout (Gitea's 5 s, PROTOCOLS.md), or the forge
        # records a timeout instead of the reason. The Redis client's retries take up to
        # ~2.3 s of it (redis-py's default, up to ~5 s); writing the delivery's line after
        # them took as long again.
        assert time.monotonic() - began < 5


def test_unknown_forge_is_404(client: TestClient) -> None:
    response = client.post("/hooks/gitbucket", content=b"{}")
    assert response.status_code == 404 and "unknown forge" in response.json()["error"]


def test_a_redelivery_builds_nothing_again_and_says_which_builds_it_made(
    client: TestClient, redis: Redis
) -> None:
    body = fixture_bytes("github/push-branch-goscm.json")
    first_status, first = deliver(client, body, delivery="same-id")
    again_status, again = deliver(client, body, delivery="same-id")

    assert first_status == 202 and again_status == 200
    assert again == {"builds": first["builds"], "duplicate": True}
    assert [r.id for r in BuildStore(redis).recent()] == first["builds"] and queued(redis) == 1
    outcomes = [e["outcome"] for e in DeliveryLog(redis).recent()]
    assert outcomes == ["duplicate", "built"]


def test_a_newer_push_supersedes_the_queued_build_of_its_branch(
    client: TestClient, redis: Redis
) -> None:
    payload = json.loads(fixture_bytes("github/push-branch-goscm.json"))
    _, older = deliver(client, json.dumps(payload).encode(), delivery="p-1")
    payload["after"] = "a" * 40
    _, newer = deliver(client, json.dumps(payload).encode(), delivery="p-2")

    store = BuildStore(redis)
    [older_id], [newer_id] = older["builds"], newer["builds"]
    old, new = store.get(older_id), store.get(newer_id)
    assert old is not None and old.status.value == "cancelled"
    assert old.error == f"superseded by {newer_id}"
    assert new is not None and new.status.value == "queued"
    # The newer push came within the burst window: it waits a moment for more.
    assert redis.exists(f"hookbuild:build:{newer_id}:settle")


def test_a_delivery_whose_write_fails_has_its_line_in_the_events(
    client: TestClient, redis: Redis
) -> None:
    """#16.3: the delivery's line went on the pipeline of a write Redis refused, and the
    record was marked as written: `/api/events` never said what came of the delivery."""
    from runners.keys import PREFIX

    # The repository's slot set is a string: Redis refuses the intake (WRONGTYPE).
    redis.set(f"{PREFIX}:slots:Codertocat/Hello-World", "not a set")
    status, answer = deliver(client, fixture_bytes("github/push-branch-goscm.json"), delivery="w-1")
    assert status == 503 and "redeliver" in answer["error"]
    [line] = DeliveryLog(redis).recent()
    assert (line["outcome"], line["status"], line["delivery_id"]) == ("error", 503, "w-1")
    assert "WRONGTYPE" in line["reason"] and line["builds"] == []
    assert BuildStore(redis).recent() == []
