"""Small builders shared by tests: configs, signed deliveries, and build logs read alike."""

from __future__ import annotations

import re
from pathlib import Path

from starlette.testclient import TestClient

from builder.config import Config
from tests import configs
from tests.configs import MAIN_TAGS
from tests.conftest import github_push_body, github_signature, local_clone_settings

SECRET = "webhook-secret-for-tests"
_BUILDKIT_STEP_NUMBER = re.compile(r"^#\d+ ")


def step_output(log: list[str]) -> list[str]:
    """A build log with BuildKit's step numbers taken off (`#6 line-5` reads `line-5`), as
    the classic builder writes a step's output: tests read either builder's log alike."""
    return [_BUILDKIT_STEP_NUMBER.sub("", line, count=1) for line in log]


DOCKERFILE = """FROM hookbuild-test/busybox
ARG GREETING
COPY version.txt /version.txt
RUN echo "$GREETING" > /greeting && cat /version.txt > /commit.txt
"""


def make_config(
    state_dir: Path,
    registry_host: str,
    *,
    repository: str = "acme/web",
    image_path: str = "acme/web",
    rules: str = MAIN_TAGS,
    registry_auth: tuple[str, str] | None = None,
    extra_repo: str = "",
    environ: dict[str, str] | None = None,
    insecure: bool = True,
) -> Config:
    """One GitHub repository cloned from the session's git daemon, built for one registry."""
    registry: dict[str, object] = {"host": registry_host}
    env = {"WEBHOOK_SECRET": SECRET, **(environ or {})}
    if registry_auth:
        registry.update(username=registry_auth[0], password="${REGISTRY_PASSWORD}")
        env.setdefault("REGISTRY_PASSWORD", registry_auth[1])
    registry["insecure"] = insecure
    entry = configs.repository(
        repository,
        f"{registry_host}/{image_path}",
        secret="${WEBHOOK_SECRET}",
        build_args={"GREETING": "hello"},
        extra=local_clone_settings() + extra_repo,
        rules=rules,
    )
    return configs.config(
        state_dir,
        [entry],
        environ=env,
        retries={"backoff_seconds": 0.1},
        registries=[registry],
    )


def post_github_push(
    client: TestClient,
    repository: str,
    ref: str,
    sha: str,
    clone_url: str,
    *,
    delivery: str,
    secret: str = SECRET,
    message: str = "change",
) -> tuple[int, dict]:  # type: ignore[type-arg]
    body = github_push_body(repository, ref, sha, clone_url, message=message)
    response = client.post(
        "/hooks/github",
        content=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": github_signature(secret, body),
        },
    )
    return response.status_code, response.json()
