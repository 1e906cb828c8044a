"""Trigger URLs (Docker Hub's build triggers) and `hookbuild build`, against real git."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from redis import Redis
from starlette.testclient import TestClient

from builder.config import Config, parse_config
from runners.cli import main
from runners.queue import QUEUE_NAME
from runners.records import BuildStatus, BuildStore
from runners.worker.process import run_worker
from tests.conftest import GitRepo, MakeRepo, git
from tests.helpers import DOCKERFILE
from tests.registry import RegistryReader
from tests.services import docker_env, live_server
from webhooks.app import create_app

TOKEN = "trigger-token-123"


def config_for(
    tmp_path: Path, clone_url: str, registry_host: str, token: str | None = TOKEN
) -> str:
    trigger = f"    trigger_token: {token}\n" if token else ""
    return (
        f"state_dir: {tmp_path / 'state'}\n"
        "repositories:\n"
        "  - name: acme/web\n    forge: gitea\n    secret: s\n"
        f"    clone_url: {clone_url}\n{trigger}"
        f"    image: {registry_host}/trigger/web\n"
        "    build_args: {GREETING: triggered}\n"
        "    rules:\n"
        '      - {branch: main, tags: [latest, "{short_sha}"]}\n'
        '      - {tag: "/^v([0-9.]+)$/", tags: ["{1}"]}\n'
    )


def setup(
    tmp_path: Path, redis: Redis, make_repo: MakeRepo, registry_host: str = "127.0.0.1:1"
) -> tuple[Config, TestClient, GitRepo]:
    repo = make_repo()
    repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "1\n"})
    repo.push("main")
    config = parse_config(config_for(tmp_path, repo.url, registry_host), {})
    return config, TestClient(create_app(config, redis)), repo


def test_trigger_with_a_ref_resolves_its_head(
    redis: Redis, make_repo: MakeRepo, tmp_path: Path
) -> None:
    _, client, repo = setup(tmp_path, redis, make_repo)
    head = git(repo.work, "rev-parse", "HEAD")

    response = client.post(f"/trigger/acme/web/{TOKEN}", json={"ref": "refs/heads/main"})

    assert response.status_code == 202, response.text
    assert response.json()["sha"] == head and response.json()["ref"] == "refs/heads/main"
    [record] = BuildStore(redis).recent()
    assert record.sha == head and record.tags == ("latest", head[:7]) and record.pusher == "trigger"


def test_trigger_docker_hub_style_tag_resolves_an_annotated_tag_to_its_commit(
    redis: Redis, make_repo: MakeRepo, tmp_path: Path
) -> None:
    _, client, repo = setup(tmp_path, redis, make_repo)
    head = git(repo.work, "rev-parse", "HEAD")
    git(repo.work, "tag", "-a", "v1.2.3", "-m", "release")
    git(repo.work, "push", "-q", str(repo.bare), "refs/tags/v1.2.3")

    response = client.post(
        f"/trigger/acme/web/{TOKEN}", json={"source_type": "Tag", "source_name": "v1.2.3"}
    )

    assert response.status_code == 202, response.text
    [record] = BuildStore(redis).recent()
    assert record.ref == "refs/tags/v1.2.3" and record.sha == head and record.tags == ("1.2.3",)


def test_trigger_with_empty_body_builds_the_default_branch(
    redis: Redis, make_repo: MakeRepo, tmp_path: Path
) -> None:
    _, client, _ = setup(tmp_path, redis, make_repo)
    response = client.post(f"/trigger/acme/web/{TOKEN}")
    assert response.status_code == 202 and response.json()["ref"] == "refs/heads/main"


def test_trigger_with_a_sha_builds_that_commit(
    redis: Redis, make_repo: MakeRepo, tmp_path: Path
) -> None:
    _, client, repo = setup(tmp_path, redis, make_repo)
    old = git(repo.work, "rev-parse", "HEAD")
    repo.commit({"version.txt": "2\n"})
    repo.push("main")
    response = client.post(
        f"/trigger/acme/web/{TOKEN}", json={"ref": "refs/heads/main", "sha": old}
    )
    assert response.status_code == 202
    assert [r.sha for r in BuildStore(redis).recent()] == [old]


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        (
            f"/trigger/acme/web/wrong-{TOKEN}",
            {"ref": "refs/heads/main"},
            401,
            "wrong trigger token",
        ),
        (f"/trigger/acme/other/{TOKEN}", {}, 404, "no repository 'acme/other'"),
        (f"/trigger/acme/web/{TOKEN}", {"ref": "refs/heads/nope"}, 404, "has no 'refs/heads/nope'"),
        (f"/trigger/acme/web/{TOKEN}", {"source_type": "Commit"}, 400, '"source_type" must be'),
        (f"/trigger/acme/web/{TOKEN}", {"ref": "main", "sha": "abc"}, 400, "40-character"),
        # No rule for the branch: 200 with the reason in "skipped" (checked below).
        (f"/trigger/acme/web/{TOKEN}", {"ref": "refs/heads/other", "sha": "a" * 40}, 200, ""),
    ],
)
def test_trigger_refusals_queue_nothing(
    redis: Redis,
    make_repo: MakeRepo,
    tmp_path: Path,
    path: str,
    body: dict[str, str],
    status: int,
    message: str,
) -> None:
    _, client, _ = setup(tmp_path, redis, make_repo)
    response = client.post(path, json=body)
    assert response.status_code == status, response.text
    if message:
        assert message in response.json()["error"]
    else:
        assert response.json()["skipped"] == "no rule matches refs/heads/other"
    assert redis.llen(f"rq:queue:{QUEUE_NAME}") == 0


def test_trigger_is_off_without_a_token(redis: Redis, make_repo: MakeRepo, tmp_path: Path) -> None:
    repo = make_repo()
    config = parse_config(config_for(tmp_path, repo.url, "127.0.0.1:1", token=None), {})
    response = TestClient(create_app(config, redis)).post("/trigger/acme/web/anything", json={})
    assert response.status_code == 403 and "set its trigger_token" in response.json()["error"]


@pytest.mark.docker
def test_hookbuild_build_follow_builds_and_pushes(
    redis: Redis,
    redis_url: str,
    docker_host: str,
    registry: RegistryReader,
    make_repo: MakeRepo,
    tmp_path: Path,
) -> None:
    repo = make_repo()
    sha = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "cli\n"})
    repo.push("main")
    config_file = tmp_path / "builds.yml"
    config_file.write_text(config_for(tmp_path, repo.url, registry.host))
    config = parse_config(config_file.read_text(), {})
    runner = CliRunner()

    queued = runner.invoke(
        main,
        [
            "build",
            "acme/web",
            "--ref",
            "main",
            "--config",
            str(config_file),
            "--redis-url",
            redis_url,
        ],
    )
    assert queued.exit_code == 0, queued.output
    build_id, ref, short = queued.output.split()
    assert (ref, short) == ("refs/heads/main", sha[:7])
    run_worker(config, redis, docker_env(docker_host), burst=True, in_process=True)
    with live_server(create_app(config, redis)) as url:
        followed = runner.invoke(
            main, ["logs", build_id, "--follow", "--config", str(config_file), "--server", url]
        )

    assert followed.exit_code == 0, followed.output
    assert f"==> pushed {registry.host}/trigger/web:latest" in followed.output
    record = BuildStore(redis).get(build_id)
    assert record is not None and record.status is BuildStatus.SUCCEEDED
    assert registry.read_file("trigger/web", sha[:7], "/greeting") == "triggered\n"


def test_hookbuild_build_says_why_nothing_builds(
    redis_url: str, make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo()
    repo.commit({"Dockerfile": DOCKERFILE})
    repo.push("main")
    repo.push("feature")
    config_file = tmp_path / "builds.yml"
    config_file.write_text(config_for(tmp_path, repo.url, "127.0.0.1:1"))
    result = CliRunner().invoke(
        main,
        [
            "build",
            "acme/web",
            "--ref",
            "feature",
            "--config",
            str(config_file),
            "--redis-url",
            redis_url,
        ],
    )
    assert result.exit_code == 1
    assert "no rule matches refs/heads/feature" in result.output
