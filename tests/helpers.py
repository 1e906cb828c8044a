"""Small builders shared by tests: configs, signed deliveries, and build logs read alike."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from starlette.testclient import TestClient

from builder import config as config_model
from builder.config import Config
from runners.configload import load_config_compact as _load_compact
from tests.conftest import github_push_body, github_signature, local_clone_settings
from webhooks.forges import DRIVERS

SECRET = "webhook-secret-for-tests"
_BUILDKIT_STEP_NUMBER = re.compile(r"^#\d+ ")


# The config with every registered forge, as the entry points load it (runners/cli.py):
# tests that read a config directly use these.
def parse_config(
    text: str, environ: Mapping[str, str], source: str = "", reading_only: bool = False
) -> Config:
    return config_model.parse_config(text, environ, source, reading_only, forges=DRIVERS)


def load_config(path: str | Path, environ: Mapping[str, str], reading_only: bool = False) -> Config:
    return config_model.load_config(path, environ, reading_only, forges=DRIVERS)


def load_config_compact(path: str | Path, environ: Mapping[str, str]) -> Config:
    return _load_compact(path, environ, forges=DRIVERS)


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
    rules: str = '      - branch: main\n        tags: [latest, "{short_sha}"]\n',
    registry_auth: tuple[str, str] | None = None,
    extra_repo: str = "",
    environ: dict[str, str] | None = None,
    insecure: bool = True,
) -> Config:
    auth = ""
    if registry_auth:
        auth = f"    username: {registry_auth[0]}\n    password: ${{REGISTRY_PASSWORD}}\n"
    text = (
        f"state_dir: {state_dir}\n"
        "retries: {backoff_seconds: 0.1}\n"
        "registries:\n"
        f"  - host: {registry_host}\n{auth}    insecure: {str(insecure).lower()}\n"
        "repositories:\n"
        f"  - name: {repository}\n"
        "    forge: github\n"
        "    secret: ${WEBHOOK_SECRET}\n"
        f"    image: {registry_host}/{image_path}\n"
        "    build_args: {GREETING: hello}\n"
        f"{local_clone_settings()}"
        f"{extra_repo}"
        "    rules:\n"
        f"{rules}"
    )
    env = {"WEBHOOK_SECRET": SECRET, **(environ or {})}
    if registry_auth:
        env.setdefault("REGISTRY_PASSWORD", registry_auth[1])
    return parse_config(text, env)


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
