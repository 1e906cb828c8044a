"""Real `hookbuild worker` processes for tests, and a config file to give them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from tests import configs
from tests.conftest import fixture_bytes
from tests.services import docker_env
from tests.signing import forge_headers

SECRET = "sched-secret"


def push_body(repository: str, ref: str, sha: str) -> bytes:
    """A GitHub push payload (the fixture's shape) of `sha` to `ref`, default branch main."""
    payload = json.loads(fixture_bytes("github/push-branch-goscm.json"))
    payload.update(ref=ref, after=sha, before="0" * 40)
    payload["repository"].update(full_name=repository, default_branch="main")
    return json.dumps(payload).encode()


def deliver(client: TestClient, repository: str, ref: str, sha: str, delivery: str) -> list[str]:
    """A signed GitHub push of `sha` to `ref`; the builds it queued."""
    body = push_body(repository, ref, sha)
    response = client.post(
        "/hooks/github",
        content=body,
        headers=forge_headers("github", "push", body, SECRET, delivery),
    )
    assert response.status_code == 202, response.text
    return list(response.json()["builds"])


TOKEN = "api-token-0123456789abcdef"


def write_config(
    path: Path,
    state: Path,
    registry_host: str,
    repositories: list[tuple[str, str, str]],  # (name, clone url, rules yaml)
    extra: str = "",
    builder: str = "auto",
    **fields: Any,
) -> Path:
    """A config for worker processes: GitHub repositories named like their images;
    `fields` are more settings of each repository (`oci_labels=False`, ...)."""
    entries = [
        configs.repository(
            name,
            f"{registry_host}/{name}",
            secret=SECRET,
            clone_url=url,
            build_args={"GREETING": "hi"},
            builder=builder,
            rules=rules,
            **fields,
        )
        for name, url, rules in repositories
    ]
    return configs.config_file(
        path,
        state,
        entries,
        server={"token": TOKEN},
        retries={"backoff_seconds": 0.1},
        extra=extra,
    )


class WorkerProcess:
    def __init__(
        self,
        config: Path,
        redis_url: str,
        docker_host: str,
        name: str,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        env = {**docker_env(docker_host), "PYTHONPATH": os.getcwd(), **(extra_env or {})}
        self.name = name
        self.log = config.parent / f"{name}.log"
        self._log_handle = open(self.log, "wb")  # noqa: SIM115 - lives as long as the worker
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "runners.cli",
                "worker",
                "--config",
                str(config),
                "--redis-url",
                redis_url,
                "--name",
                name,
            ],
            env=env,
            stdout=self._log_handle,
            stderr=subprocess.STDOUT,
        )

    def signal(self, sig: int) -> None:
        self.process.send_signal(sig)

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self._log_handle.close()
        return code
