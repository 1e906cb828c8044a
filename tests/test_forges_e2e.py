"""One real build per forge family: that forge's payload shape, signed its way, pointed at a
repository served from 127.0.0.1, ending with the image in the real registry."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from starlette.testclient import TestClient

from runners.records import BuildStatus, BuildStore
from tests import configs
from tests.builds import work
from tests.conftest import MakeRepo, local_clone_settings
from tests.helpers import DOCKERFILE
from tests.payloads import bitbucket, bitbucket_server, gitea, gitlab
from tests.registry import RegistryReader
from tests.signing import forge_headers
from webhooks.app import create_app

pytestmark = pytest.mark.docker
SECRET = "family-secret"

FAMILIES: dict[str, tuple[str, Callable[[str, str, str], tuple[str, dict[str, Any]]], bool]] = {
    # forge: (repository name, payload maker, whether the config must give clone_url)
    "gitlab": ("group/sub/app", gitlab, False),
    "bitbucket": ("workspace/app", bitbucket, True),
    "bitbucket-server": ("PROJ/app", bitbucket_server, False),
    "gitea": ("org/app", gitea, False),
}


@pytest.mark.parametrize("forge", sorted(FAMILIES))
def test_forge_push_ends_with_the_image_in_the_registry(
    forge: str,
    redis: Redis,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    name, make_payload, needs_clone_url = FAMILIES[forge]
    repo = make_repo(name)
    sha = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": f"{forge}\n"})
    repo.push("main")
    image = f"{registry.host}/families/{forge}"
    clone = {"clone_url": repo.url} if needs_clone_url else local_clone_settings()
    entry = configs.repository(
        name,
        image,
        forge=forge,
        secret=SECRET,
        build_args={"GREETING": forge},
        extra=clone,
        rules='      - {branch: main, tags: [latest, "{short_sha}"]}\n',
    )
    config = configs.config(tmp_path, [entry])
    event, payload = make_payload(name, repo.url, sha)
    body = json.dumps(payload).encode()

    response = TestClient(create_app(config, redis)).post(
        f"/hooks/{forge}",
        content=body,
        headers=forge_headers(forge, event, body, SECRET, f"{forge}-1"),
    )
    assert response.status_code == 202, response.text
    work(config, redis, docker_host)

    [record] = BuildStore(redis).recent()
    assert record.status is BuildStatus.SUCCEEDED, record.error
    assert record.forge == forge and record.sha == sha
    assert registry.tags(f"families/{forge}") == sorted(["latest", sha[:7]])
    assert registry.read_file(f"families/{forge}", "latest", "/greeting") == f"{forge}\n"
