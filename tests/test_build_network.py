"""`network:` on a repository or an image: the network a build's RUN steps have."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from starlette.testclient import TestClient

from builder.errors import ConfigError
from runners.records import BuildStatus, BuildStore
from runners.worker.process import run_worker
from tests import services
from tests.configs import parse_config
from tests.conftest import MakeRepo, local_clone_settings
from tests.helpers import SECRET, post_github_push
from tests.registry import RegistryReader
from webhooks.app import create_app

# What the RUN step sees: `lo` alone with no network, `eth0` beside it on a bridge.
# `WHICH` differs per image: the classic builder's cache, like `docker build --network`'s,
# would hand the second image the first one's step, made on the other network.
SHOW_NETWORK = (
    "FROM hookbuild-test/busybox\nARG WHICH\nRUN echo $WHICH && ls /sys/class/net > /net.txt\n"
)
NO_NETWORK_LINE = "==> no network for RUN steps: the config says `network: none`"


@pytest.fixture(scope="module")
def bridged_docker_host(service_root: Path, docker_host: str) -> Iterator[str]:
    """An engine with a bridge, as one with Docker's default networking has: the tests'
    own engines run with --bridge=none, where every build has only `lo` whatever it asks."""
    with services.bridge() as network, services.short_dir("dockerd-net") as directory:
        service, host = services.start_dockerd(directory, network=network)
        try:
            services.copy_image(docker_host, host, services.BASE_IMAGE)
            yield host
        finally:
            service.stop(timeout=30)


def _config_text(state: Path, registry: str, name: str, clone_url: str, builder: str) -> str:
    return f"""
state_dir: {state}
retries: {{backoff_seconds: 0.1}}
registries: [{{host: "{registry}", insecure: true}}]
repositories:
  - name: {name}
    forge: github
    secret: {SECRET}
    clone_url: {clone_url}
{local_clone_settings()}    builder: {builder}
    network: none
    images:
      - name: {registry}/{name}/open
        network: default
        build_args: {{WHICH: open}}
        rules: [{{branch: main, tags: [main]}}]
      - name: {registry}/{name}/closed
        build_args: {{WHICH: closed}}
        rules: [{{branch: main, tags: [main]}}]
"""


@pytest.mark.docker
@pytest.mark.parametrize("builder", ["classic", "buildkit"])
def test_network_none_builds_with_no_network_and_default_with_the_engines(
    redis: Redis,
    registry: RegistryReader,
    bridged_docker_host: str,
    make_repo: MakeRepo,
    tmp_path: Path,
    builder: str,
) -> None:
    """#16.4: `network: none` (the repository's, kept by an image) gives RUN steps no
    network, with one line in the build log; `network: default` (an image's, over the
    repository's) gets the engine's bridge, with both builders."""
    repo = make_repo(f"net-{builder}/web")
    sha = repo.commit({"Dockerfile": SHOW_NETWORK})
    repo.push("main")
    text = _config_text(tmp_path / "state", registry.host, repo.name, repo.url, builder)
    config = parse_config(text, {})
    client = TestClient(create_app(config, redis))
    status, body = post_github_push(
        client, repo.name, "refs/heads/main", sha, repo.url, delivery="net-1"
    )
    assert status == 202, body
    env = services.docker_env(bridged_docker_host)
    run_worker(config, redis, env, burst=True, in_process=True)

    store = BuildStore(redis)
    logs = {}
    for build_id in body["builds"]:
        record = store.get(build_id)
        assert record is not None
        assert record.status is BuildStatus.SUCCEEDED, record.error
        logs[record.image.rsplit("/", 1)[-1]] = store.log_lines(build_id)
    assert registry.read_file(f"{repo.name}/open", "main", "/net.txt") == "eth0\nlo\n"
    assert registry.read_file(f"{repo.name}/closed", "main", "/net.txt") == "lo\n"
    assert logs["closed"].count(NO_NETWORK_LINE) == 1, logs["closed"]
    assert not any("no network" in line for line in logs["open"]), logs["open"]


def test_network_is_default_or_none_on_a_repository_or_an_image() -> None:
    """#16.4: `network:` takes `default` or `none`; a repository's goes to its image, and
    anything else is a config error at its location."""
    repository = """
repositories:
  - name: acme/web
    forge: github
    secret: s3cret
    image: localhost:5000/acme/web
    network: none
    rules: [{branch: main}]
"""
    config = parse_config(repository, {})
    [image] = config.repositories[0].all_images
    assert image.network == "none"
    unset = parse_config(repository.replace("    network: none\n", ""), {})
    assert unset.repositories[0].all_images[0].network == "default"

    with pytest.raises(ConfigError) as caught:
        parse_config(repository.replace("network: none", "network: host"), {})
    [problem] = caught.value.problems
    assert problem.location == "repositories[0].network"
    assert "'default' or 'none'" in problem.message
