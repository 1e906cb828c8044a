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

from builder.config import parse_config
from runners.records import BuildStatus, BuildStore
from runners.worker.process import run_worker
from tests.conftest import FIXTURES, MakeRepo, local_clone_settings
from tests.helpers import DOCKERFILE
from tests.registry import RegistryReader
from tests.services import docker_env
from tests.signing import forge_headers
from webhooks.app import create_app

pytestmark = pytest.mark.docker
SECRET = "family-secret"


def gitlab(name: str, url: str, sha: str) -> tuple[str, dict[str, Any]]:
    payload = json.loads((FIXTURES / "gitlab/push-branch-goscm.json").read_bytes())
    payload["project"]["path_with_namespace"] = name
    payload["project"]["git_http_url"] = url
    payload.update(ref="refs/heads/main", after=sha, checkout_sha=sha, commits=[])
    return "Push Hook", payload


def bitbucket(name: str, url: str, sha: str) -> tuple[str, dict[str, Any]]:
    payload = json.loads(
        (FIXTURES / "bitbucket-cloud/repo_push-branch-woodpecker.json").read_bytes()
    )
    payload["repository"]["full_name"] = name
    change = payload["push"]["changes"][0]
    change["new"].update(name="main", type="branch")
    change["new"]["target"]["hash"] = sha
    return "repo:push", payload


def bitbucket_server(name: str, url: str, sha: str) -> tuple[str, dict[str, Any]]:
    payload = json.loads(
        (
            FIXTURES / "bitbucket-server/repo_refs_changed-branch-updated-woodpecker.json"
        ).read_bytes()
    )
    key, slug = name.split("/")
    payload["repository"]["project"]["key"] = key
    payload["repository"]["slug"] = slug
    payload["repository"]["links"]["clone"] = [{"name": "http", "href": url}]
    payload["changes"][0].update(refId="refs/heads/main", toHash=sha, type="UPDATE")
    payload["changes"][0]["ref"].update(id="refs/heads/main", displayId="main")
    return "repo:refs_changed", payload


def gitea(name: str, url: str, sha: str) -> tuple[str, dict[str, Any]]:
    payload = json.loads((FIXTURES / "gitea/push-branch-multi-woodpecker.json").read_bytes())
    payload["repository"]["full_name"] = name
    payload["repository"]["clone_url"] = url
    payload.update(ref="refs/heads/main", after=sha)
    return "push", payload


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
    clone = f"    clone_url: {repo.url}\n" if needs_clone_url else local_clone_settings()
    config = parse_config(
        f"state_dir: {tmp_path}\n"
        "repositories:\n"
        f"  - name: {name}\n    forge: {forge}\n    secret: {SECRET}\n{clone}"
        f"    image: {image}\n    build_args: {{GREETING: {forge}}}\n"
        '    rules: [{branch: main, tags: [latest, "{short_sha}"]}]\n',
        {},
    )
    event, payload = make_payload(name, repo.url, sha)
    body = json.dumps(payload).encode()

    response = TestClient(create_app(config, redis)).post(
        f"/hooks/{forge}",
        content=body,
        headers=forge_headers(forge, event, body, SECRET, f"{forge}-1"),
    )
    assert response.status_code == 202, response.text
    run_worker(config, redis, docker_env(docker_host), burst=True, in_process=True)

    [record] = BuildStore(redis).recent()
    assert record.status is BuildStatus.SUCCEEDED, record.error
    assert record.forge == forge and record.sha == sha
    assert registry.tags(f"families/{forge}") == sorted(["latest", sha[:7]])
    assert registry.read_file(f"families/{forge}", "latest", "/greeting") == f"{forge}\n"
