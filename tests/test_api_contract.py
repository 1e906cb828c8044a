"""Every endpoint against the OpenAPI document, with generated requests (schemathesis):
no server error, a documented status, a body and content type matching the schema.

The app runs on real Redis (with builds of every state in it) and the test's real Docker
engine (for /healthz); the requests carry the API token, as a client of the API would.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from redis import Redis
from schemathesis.checks import positive_data_acceptance

from runners.queue import BuildQueue
from runners.records import BuildRecord, BuildStatus
from tests.configs import parse_config
from tests.services import docker_env, live_server
from webhooks import openapi
from webhooks.app import create_app

TOKEN = "contract-token-0123456789"
CONFIG = f"""
server: {{token: {TOKEN}}}
repositories:
  - name: acme/web
    forge: github
    secret: s
    trigger_token: trigger-token-0123456789
    image: r/web
    rules: [{{branch: main}}]
"""


def seed(redis: Redis) -> None:
    """A build in every finished state (a follow of any of them ends), and one queued."""
    queue = BuildQueue(redis)
    for index, status in enumerate(BuildStatus):
        queue.store.add(
            BuildRecord(
                id=f"b{index}",
                forge="github",
                repository="acme/web",
                ref="refs/heads/main",
                sha=f"{index}" * 40,
                image="r/web",
                tags=("latest",),
                created_at=time.time() - 60 + index,
            )
        )
        queue.store.append_log(f"b{index}", ["Step 1/1 : FROM scratch", "==> done"])
        if status.finished:
            queue.store.finish(f"b{index}", status)


# The document the app serves (checked equal below); its operations are known at import.
DOCUMENT = schemathesis.openapi.from_dict(openapi.spec())
OPERATIONS = [result.ok() for result in DOCUMENT.get_all_operations()]  # type: ignore[union-attr]


@pytest.fixture
def api_url(redis: Redis, docker_host: str, tmp_path: Path) -> Iterator[str]:
    seed(redis)
    config = parse_config(f"state_dir: {tmp_path}\n{CONFIG}", {})
    app = create_app(config, redis, docker_environ=docker_env(docker_host))
    with live_server(app) as url:
        assert httpx.get(f"{url}/api/openapi.json").json() == openapi.spec()
        yield url


# What a webhook needs besides its path (the forge's event header, its signature, a body of
# the forge's shape) differs by forge; OpenAPI cannot say it, so a request the document
# allows is still refused with 400. The real forges' payloads are tested in test_forge_receivers.py.
UNEXPRESSIBLE = {"POST /hooks/{forge}": [positive_data_acceptance]}


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda operation: operation.label)
def test_every_endpoint_answers_as_documented(operation: Any, api_url: str) -> None:
    @given(case=operation.as_strategy())
    @settings(
        max_examples=int(os.environ.get("HOOKBUILD_CONTRACT_EXAMPLES", "30")),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def answers_as_documented(case: Any) -> None:
        case.call_and_validate(
            base_url=api_url,
            headers={"Authorization": f"Bearer {TOKEN}"},
            excluded_checks=UNEXPRESSIBLE.get(operation.label, []),
        )

    answers_as_documented()
