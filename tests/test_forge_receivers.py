"""`POST /hooks/{forge}` for every forge: real fixtures, correct and wrong signatures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from starlette.testclient import TestClient

from builder.config import Config
from runners.queue import QUEUE_NAME
from runners.records import BuildStore
from tests import configs
from tests.configs import parse_config
from tests.conftest import FIXTURES
from tests.fixture_index import DRIVER_FOR, INDEX, PUSH_EVENTS, expected_pushes
from tests.signing import forge_headers, gitlab_signing_headers
from webhooks.app import create_app

SECRET = "forge-secret"


def build_config(tmp_path: Path) -> Config:
    """One repository per (forge, full name) in the fixtures; every ref builds."""
    seen: set[tuple[str, str]] = set()
    entries = []
    for entry in INDEX["fixtures"]:
        forge, name = DRIVER_FOR[entry["forge"]], entry["expect"].get("full_name")
        if not name or (forge, name) in seen:
            continue
        seen.add((forge, name))
        entries.append(
            configs.repository(
                name,
                f"localhost:5000/{forge}/{len(seen)}",
                forge=forge,
                secret=SECRET,
                clone_url="git://127.0.0.1/unused.git",
                rules=[{"tags": ["{short_sha}"]}],
            )
        )
    return configs.config(tmp_path, entries)


@pytest.fixture
def client(redis: Redis, tmp_path: Path) -> TestClient:
    return TestClient(create_app(build_config(tmp_path), redis))


def push_cases() -> list[Any]:
    return [
        pytest.param(entry, id=entry["file"])
        for entry in INDEX["fixtures"]
        if entry["event_header"].partition(": ")[2] in PUSH_EVENTS
    ]


def post(
    client: TestClient, forge: str, event: str, body: bytes, secret: str, delivery: str
) -> Any:
    return client.post(
        f"/hooks/{forge}", content=body, headers=forge_headers(forge, event, body, secret, delivery)
    )


@pytest.mark.parametrize("entry", push_cases())
def test_signed_push_builds_each_live_ref(
    client: TestClient, redis: Redis, entry: dict[str, Any]
) -> None:
    forge = DRIVER_FOR[entry["forge"]]
    event = entry["event_header"].partition(": ")[2]
    body = (FIXTURES / entry["file"]).read_bytes()

    response = post(client, forge, event, body, SECRET, "delivery-ok")

    live = [p for p in expected_pushes(entry) if not p["deleted"]]
    records = BuildStore(redis).recent()
    if live:
        assert response.status_code == 202, response.text
        assert sorted((r.ref, r.sha) for r in records) == sorted((p["ref"], p["sha"]) for p in live)
        assert {r.forge for r in records} == {forge}
    else:
        assert response.status_code == 200, response.text
        assert "deleted" in response.json()["skipped"]
        assert records == []


@pytest.mark.parametrize("entry", push_cases())
def test_wrong_secret_is_401_and_queues_nothing(
    client: TestClient, redis: Redis, entry: dict[str, Any]
) -> None:
    forge = DRIVER_FOR[entry["forge"]]
    event = entry["event_header"].partition(": ")[2]
    body = (FIXTURES / entry["file"]).read_bytes()

    response = post(client, forge, event, body, "not-the-secret", "delivery-bad")

    assert response.status_code == 401, response.text
    assert redis.llen(f"rq:queue:{QUEUE_NAME}") == 0 and BuildStore(redis).recent() == []


def test_missing_signature_is_401(client: TestClient, redis: Redis) -> None:
    body = (FIXTURES / "gitea/push-branch-woodpecker.json").read_bytes()
    response = client.post("/hooks/gitea", content=body, headers={"X-Gitea-Event": "push"})
    assert response.status_code == 401 and "missing X-Gitea-Signature" in response.json()["error"]


def test_another_forges_hook_for_a_configured_repository_is_404(redis: Redis) -> None:
    config = parse_config(
        f"repositories:\n  - {{name: acme/only-gitea, forge: gitea, secret: {SECRET}, "
        "image: r/x, rules: [{branch: main}]}\n",
        {},
    )
    client = TestClient(create_app(config, redis))
    payload = json.loads((FIXTURES / "github/push-branch-goscm.json").read_bytes())
    payload["repository"]["full_name"] = "acme/only-gitea"
    response = post(client, "github", "push", json.dumps(payload).encode(), SECRET, "d-x")
    assert response.status_code == 404
    assert response.json()["error"] == "no github repository 'acme/only-gitea' in the config"


def test_forgejo_endpoint_reads_only_forgejo_headers(client: TestClient, redis: Redis) -> None:
    body = (FIXTURES / "forgejo/push-branch-woodpecker.json").read_bytes()
    headers = forge_headers("forgejo", "push", body, SECRET, "d-f")
    headers["X-Forgejo-Signature"] = "0" * 64  # the Gitea and GitHub signatures stay valid
    response = client.post("/hooks/forgejo", content=body, headers=headers)
    assert response.status_code == 401 and "X-Forgejo-Signature" in response.json()["error"]


def test_gitea_tag_announced_by_push_and_create_builds_once(
    client: TestClient, redis: Redis
) -> None:
    create = json.loads((FIXTURES / "forgejo/create-tag-woodpecker.json").read_bytes())
    push = json.loads((FIXTURES / "forgejo/push-branch-woodpecker.json").read_bytes())
    push["ref"] = f"refs/tags/{create['ref']}"
    push["after"] = create["sha"]
    push_body = json.dumps(push).encode()
    create_body = json.dumps(create).encode()

    first = post(client, "forgejo", "push", push_body, SECRET, "d-push")
    second = post(client, "forgejo", "create", create_body, SECRET, "d-create")

    assert first.status_code == 202
    assert second.status_code == 200
    assert "already built" in second.json()["skipped"]
    assert len(BuildStore(redis).recent()) == 1


def test_gitea_create_of_a_tag_builds_when_no_push_did(client: TestClient, redis: Redis) -> None:
    body = (FIXTURES / "forgejo/create-tag-woodpecker.json").read_bytes()
    response = post(client, "forgejo", "create", body, SECRET, "d-c")
    assert response.status_code == 202
    [record] = BuildStore(redis).recent()
    assert (
        record.ref == "refs/tags/v1.0.0"
        and record.sha == "ef98532add3b2feb7a137426bba1248724367df5"
    )


def test_gitea_test_delivery_builds_like_any_push(client: TestClient, redis: Redis) -> None:
    payload = json.loads((FIXTURES / "gitea/push-branch-woodpecker.json").read_bytes())
    payload["before"] = payload["after"]  # the settings page's "Test Delivery"
    response = post(client, "gitea", "push", json.dumps(payload).encode(), SECRET, "d-t")
    assert response.status_code == 202
    assert [r.sha for r in BuildStore(redis).recent()] == [payload["after"]]


def test_gitea_all_zero_after_builds_nothing(client: TestClient, redis: Redis) -> None:
    payload = json.loads((FIXTURES / "gitea/push-branch-woodpecker.json").read_bytes())
    payload["after"] = "0" * 40
    response = post(client, "gitea", "push", json.dumps(payload).encode(), SECRET, "d-z")
    assert response.status_code == 200 and response.json()["skipped"].startswith("branch deleted")


def test_bitbucket_server_diagnostics_ping_without_body_is_200(client: TestClient) -> None:
    response = client.post(
        "/hooks/bitbucket-server", content=b"", headers={"X-Event-Key": "diagnostics:ping"}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("forge", "file", "event"),
    [
        ("github", "github/pull_request-opened-octokit.json", "pull_request"),
        ("gitlab", "gitlab/merge_request-opened-goscm.json", "Merge Request Hook"),
        (
            "bitbucket",
            "bitbucket-cloud/pullrequest_created-samerepo-goscm.json",
            "pullrequest:created",
        ),
        ("bitbucket-server", "bitbucket-server/pr_opened-samerepo-goscm.json", "pr:opened"),
        ("gitea", "gitea/pull_request-opened-goscm.json", "pull_request"),
        ("gitea", "gitea/delete-branch-goscm.json", "delete"),
    ],
)
def test_events_we_dont_build_are_200_with_the_reason(
    client: TestClient, redis: Redis, forge: str, file: str, event: str
) -> None:
    body = (FIXTURES / file).read_bytes()
    response = post(client, forge, event, body, SECRET, "d-pr")
    if response.status_code == 404:
        pytest.skip("the payload's repository is not among the push fixtures' repositories")
    assert response.status_code == 200, response.text
    assert response.json()["ignored"]
    assert BuildStore(redis).recent() == []


def test_gitlab_signing_token_scheme(redis: Redis, tmp_path: Path) -> None:
    token = "whsec_" + "c2lnbmluZy10b2tlbi1mb3ItdGVzdHM="
    config = parse_config(
        "repositories:\n  - {name: gitlab-org/hello-world, forge: gitlab, secret: plain, "
        f"signing_token: '{token}', clone_url: 'git://127.0.0.1/x.git', image: r/x, "
        "rules: [{branch: master}]}\n",
        {},
    )
    client = TestClient(create_app(config, redis))
    body = (FIXTURES / "gitlab/push-branch-goscm.json").read_bytes()
    base = {"X-Gitlab-Event": "Push Hook", "Content-Type": "application/json"}

    good = client.post(
        "/hooks/gitlab", content=body, headers=base | gitlab_signing_headers(body, token, "id-1")
    )
    stale = client.post(
        "/hooks/gitlab",
        content=body,
        headers=base | gitlab_signing_headers(body, token, "id-2", 1_000_000),
    )
    forged = client.post(
        "/hooks/gitlab",
        content=body,
        headers=base | gitlab_signing_headers(body, "whsec_AAAA", "id-3"),
    )
    token_only = client.post(
        "/hooks/gitlab", content=body, headers=base | {"X-Gitlab-Token": "plain"}
    )

    assert good.status_code == 202, good.text
    assert stale.status_code == 401 and "5 minutes" in stale.json()["error"]
    assert forged.status_code == 401
    assert token_only.status_code == 401  # a configured signing token must be used
