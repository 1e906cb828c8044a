"""Rules against the real registry: forward-only moving tags, immutable releases, path
filters computed from the clone, date tags, and a regex that cannot hang the receiver."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis import Redis
from starlette.testclient import TestClient

from builder.config import Config, parse_config
from runners.records import BuildStatus, BuildStore
from runners.worker.process import run_worker
from tests.conftest import MakeRepo, fixture_bytes, git
from tests.helpers import DOCKERFILE
from tests.registry import RegistryReader
from tests.services import docker_env
from tests.signing import forge_headers
from webhooks.app import create_app

SECRET = "rules-secret"


def config(
    tmp_path: Path,
    registry: RegistryReader,
    clone_url: str,
    image: str,
    rules: str,
    extra: str = "",
) -> Config:
    return parse_config(
        f"state_dir: {tmp_path / 'state'}\n"
        "repositories:\n"
        f"  - name: acme/web\n    forge: github\n    secret: {SECRET}\n    clone_url: {clone_url}\n"
        f"    build_args: {{GREETING: hi}}\n{extra}"
        f"    image: {registry.host}/{image}\n    rules:\n{rules}",
        {},
    )


def deliver(
    client: TestClient, ref: str, sha: str, before: str = "0" * 40, delivery: str = ""
) -> list[str]:
    payload = json.loads(fixture_bytes("github/push-branch-goscm.json"))
    payload.update(ref=ref, after=sha, before=before)
    payload["repository"].update(full_name="acme/web", default_branch="main")
    payload["head_commit"]["message"] = "change"
    body = json.dumps(payload).encode()
    response = client.post(
        "/hooks/github",
        content=body,
        headers=forge_headers("github", "push", body, SECRET, delivery or sha + ref),
    )
    assert response.status_code in (200, 202), response.text
    return list(response.json()["builds"])


def work(cfg: Config, redis: Redis, docker_host: str) -> None:
    run_worker(cfg, redis, docker_env(docker_host), burst=True, in_process=True)


pytestmark = pytest.mark.docker


def test_builds_finishing_in_the_wrong_order_leave_latest_on_the_newer_commit(
    redis: Redis, docker_host: str, registry: RegistryReader, make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo()
    older = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "older\n"})
    newer = repo.commit({"version.txt": "newer\n"})
    repo.push("main")
    cfg = config(
        tmp_path,
        registry,
        repo.url,
        "order/web",
        '      - {branch: main, tags: [latest, "{short_sha}", "d{date:%Y%m%d}"]}\n',
    )
    client = TestClient(create_app(cfg, redis))

    [newer_build] = deliver(client, "refs/heads/main", newer)
    work(cfg, redis, docker_host)  # the newer commit finishes first...
    [older_build] = deliver(client, "refs/heads/main", older, delivery="late")
    work(cfg, redis, docker_host)  # ...the older one last

    store = BuildStore(redis)
    newer_record, older_record = store.get(newer_build), store.get(older_build)
    assert newer_record and older_record
    assert (
        newer_record.status is BuildStatus.SUCCEEDED
        and older_record.status is BuildStatus.SUCCEEDED
    )
    assert registry.digest("order/web", "latest") == newer_record.digest
    assert registry.read_file("order/web", "latest", "/commit.txt") == "newer\n"
    # The older build still pushed its own pinned tag.
    assert registry.read_file("order/web", older[:7], "/commit.txt") == "older\n"
    log = "\n".join(store.log_lines(older_build))
    assert (
        f"==> leaving {registry.host}/order/web:latest where it is: it points at a newer commit ({newer[:7]}"
        in log
    )
    # {date} is the commit's date, in UTC.
    day = datetime.fromtimestamp(
        int(git(repo.work, "show", "-s", "--format=%ct", newer)), UTC
    ).strftime("%Y%m%d")
    assert f"d{day}" in registry.tags("order/web") and f"d{day}" in newer_record.tags


def test_two_release_tags_of_one_commit_leave_moving_tags_on_the_higher_version(
    redis: Redis, docker_host: str, registry: RegistryReader, make_repo: MakeRepo, tmp_path: Path
) -> None:
    """v1.4.1, then v1.4.0 on the same commit: `1.4` and `1` stay on v1.4.1's image, and
    the log of v1.4.0's build says semver decided."""
    repo = make_repo()
    sha = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "one commit\n"})
    repo.push("main")
    repo.tag("v1.4.1")
    repo.tag("v1.4.0")
    cfg = config(
        tmp_path, registry, repo.url, "semver/web", "      - {tag: /^v.*$/, semver: true}\n"
    )
    client = TestClient(create_app(cfg, redis))
    [higher] = deliver(client, "refs/tags/v1.4.1", sha)
    work(cfg, redis, docker_host)
    [lower] = deliver(client, "refs/tags/v1.4.0", sha)
    work(cfg, redis, docker_host)

    store = BuildStore(redis)
    higher_record, lower_record = store.get(higher), store.get(lower)
    assert higher_record and lower_record
    assert higher_record.status is BuildStatus.SUCCEEDED
    assert lower_record.status is BuildStatus.SUCCEEDED
    # The two builds made two images (their version labels differ), so digests tell them apart.
    assert registry.digest("semver/web", "1.4.0") != higher_record.digest
    assert registry.digest("semver/web", "1.4") == higher_record.digest
    assert registry.digest("semver/web", "1") == higher_record.digest
    log = "\n".join(store.log_lines(lower))
    for tag in ("1.4", "1"):
        assert (
            f"==> leaving {registry.host}/semver/web:{tag} where it is: it holds a higher "
            f"version (1.4.1 > 1.4.0), from build {higher}" in log
        )


def test_two_rules_with_other_settings_never_both_push_a_tag(
    redis: Redis, docker_host: str, registry: RegistryReader, make_repo: MakeRepo, tmp_path: Path
) -> None:
    """Two rules of one image match one push with different build args: two builds, and
    `latest` (both rules' tag) is pushed by the first rule's build only."""
    repo = make_repo()
    sha = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "two rules\n"})
    repo.push("main")
    rules = (
        "      - {branch: main, build_args: {GREETING: one}, tags: [latest, one]}\n"
        "      - {branch: main, build_args: {GREETING: two}, tags: [latest, two]}\n"
    )
    cfg = config(tmp_path, registry, repo.url, "tworules/web", rules)
    client = TestClient(create_app(cfg, redis))
    first, second = deliver(client, "refs/heads/main", sha)
    work(cfg, redis, docker_host)

    store = BuildStore(redis)
    first_record, second_record = store.get(first), store.get(second)
    assert first_record and second_record
    assert first_record.status is BuildStatus.SUCCEEDED
    assert second_record.status is BuildStatus.SUCCEEDED
    assert first_record.tags == ("latest", "one") and second_record.tags == ("two",)
    assert registry.read_file("tworules/web", "latest", "/greeting") == "one\n"
    assert registry.read_file("tworules/web", "two", "/greeting") == "two\n"
    log = "\n".join(store.log_lines(second))
    assert "==> note: latest is an earlier rule's tag, built with other settings" in log
    assert f"{registry.host}/tworules/web:latest" not in log


def test_release_tag_refuses_another_image_unless_overwrite(
    redis: Redis, docker_host: str, registry: RegistryReader, make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo()
    first = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "first\n"})
    repo.push("main")
    repo.tag("v1.0.0")
    rules = "      - {tag: /^v.*$/, semver: true}\n"
    cfg = config(tmp_path, registry, repo.url, "release/web", rules)
    client = TestClient(create_app(cfg, redis))
    [built] = deliver(client, "refs/tags/v1.0.0", first)
    work(cfg, redis, docker_host)
    original = registry.digest("release/web", "1.0.0")

    # A rebuild of the same commit, here by the other builder, makes another image: the
    # release tags keep the first one, and the build succeeds and says so.
    classic_cfg = config(
        tmp_path, registry, repo.url, "release/web", rules, extra="    builder: classic\n"
    )
    [rebuilt] = deliver(
        TestClient(create_app(classic_cfg, redis)), "refs/tags/v1.0.0", first, delivery="again"
    )
    work(classic_cfg, redis, docker_host)
    again = BuildStore(redis).get(rebuilt)
    assert again is not None and again.status is BuildStatus.SUCCEEDED, again
    log = BuildStore(redis).log_lines(rebuilt)
    assert (
        f"==> leaving {registry.host}/release/web:1.0.0 where it is: it holds an earlier build "
        f"of this commit (build {built}, {original}); release tags do not move unless the rule "
        "says `overwrite: true`"
    ) in log
    assert registry.digest("release/web", "1.0.0") == original

    second = repo.commit({"version.txt": "second\n"})
    repo.tag("v1.0.0")  # the tag is moved to another commit
    [refused] = deliver(client, "refs/tags/v1.0.0", second)
    work(cfg, redis, docker_host)
    record = BuildStore(redis).get(refused)
    assert record is not None and record.status is BuildStatus.FAILED
    assert record.error is not None and "refusing to replace a release tag" in record.error
    assert "overwrite: true" in record.error
    assert registry.digest("release/web", "1.0.0") == original
    assert registry.read_file("release/web", "1.0", "/commit.txt") == "first\n"

    allowed_cfg = config(
        tmp_path,
        registry,
        repo.url,
        "release/web",
        "      - {tag: /^v.*$/, semver: true, overwrite: true}\n",
    )
    [allowed] = deliver(
        TestClient(create_app(allowed_cfg, redis)), "refs/tags/v1.0.0", second, delivery="ow"
    )
    work(allowed_cfg, redis, docker_host)
    assert BuildStore(redis).get(allowed).status is BuildStatus.SUCCEEDED  # type: ignore[union-attr]
    assert registry.read_file("release/web", "1.0.0", "/commit.txt") == "second\n"


def test_monorepo_builds_only_the_images_whose_files_changed(
    redis: Redis, docker_host: str, registry: RegistryReader, make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo()
    files = {
        "services/api/Dockerfile": DOCKERFILE,
        "services/api/version.txt": "api-1\n",
        "services/web/Dockerfile": DOCKERFILE,
        "services/web/version.txt": "web-1\n",
    }
    first = repo.commit(files)
    repo.push("main")
    images = "".join(
        f"      - name: {registry.host}/mono/{name}\n        context: services/{name}\n"
        f'        dockerfile: services/{name}/Dockerfile\n        paths: ["services/{name}/**"]\n'
        '        rules: [{branch: main, tags: ["{short_sha}"]}]\n'
        for name in ("api", "web")
    )
    cfg = parse_config(
        f"state_dir: {tmp_path / 'state'}\nrepositories:\n  - name: acme/web\n    forge: github\n"
        f"    secret: {SECRET}\n    clone_url: {repo.url}\n    build_args: {{GREETING: mono}}\n    images:\n{images}",
        {},
    )
    client = TestClient(create_app(cfg, redis))
    deliver(client, "refs/heads/main", first)  # a new branch: nothing to compare, both build
    work(cfg, redis, docker_host)
    second = repo.commit({"services/api/version.txt": "api-2\n"})
    repo.push("main")
    api_build, web_build = deliver(client, "refs/heads/main", second, before=first)
    work(cfg, redis, docker_host)

    store = BuildStore(redis)
    api, web = store.get(api_build), store.get(web_build)
    assert api is not None and api.status is BuildStatus.SUCCEEDED, api.error if api else None
    assert web is not None and web.status is BuildStatus.SKIPPED
    assert web.error == "no changed file under paths (services/web/**)"
    assert "==> changed files: services/api/version.txt" in store.log_lines(web_build)
    # main is the default branch, so `latest` comes too (latest: auto).
    assert registry.tags("mono/api") == sorted([first[:7], second[:7], "latest"])
    assert registry.tags("mono/web") == sorted([first[:7], "latest"])
    assert registry.read_file("mono/api", "latest", "/commit.txt") == "api-2\n"
    [event] = [e for e in client.get("/api/events").json()["events"] if e["sha"] == second]
    assert event["build_statuses"] == {api_build: "succeeded", web_build: "skipped"}


def test_a_delivery_whose_builds_were_all_skipped_reads_as_skipped(
    redis: Redis, docker_host: str, registry: RegistryReader, make_repo: MakeRepo, tmp_path: Path
) -> None:
    repo = make_repo()
    first = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "1\n", "docs/a.md": "a\n"})
    repo.push("main")
    second = repo.commit({"docs/a.md": "b\n"})
    repo.push("main")
    cfg = config(
        tmp_path,
        registry,
        repo.url,
        "docs/web",
        "      - {branch: main}\n",
        extra='    ignore_paths: ["docs/**"]\n',
    )
    client = TestClient(create_app(cfg, redis))
    deliver(client, "refs/heads/main", second, before=first)
    work(cfg, redis, docker_host)
    [event] = client.get("/api/events").json()["events"]
    assert (
        event["outcome"] == "skipped" and event["reason"] == "no changed file outside ignore_paths"
    )
    assert registry.tags("docs/web") == []


@pytest.mark.timeout(30)
def test_pathological_regex_cannot_hang_the_receiver(redis: Redis, tmp_path: Path) -> None:
    # (a+)+$ against "aaaa...b" takes exponential time in a backtracking engine; RE2 is linear.
    cfg = parse_config(
        "repositories:\n  - {name: acme/web, forge: github, secret: "
        + SECRET
        + ", clone_url: 'git://127.0.0.1/x.git', "
        "image: r/x, rules: [{branch: '/(a+)+$/'}, {branch: main}]}\n",
        {},
    )
    client = TestClient(create_app(cfg, redis))
    # As long as intake lets a ref be (builder/refs.py): a backtracking engine would take
    # some 2**490 steps on it.
    evil = "refs/heads/" + "a" * 490 + "b"
    assert deliver(client, evil, "1" * 40) == []
    assert len(deliver(client, "refs/heads/main", "2" * 40)) == 1


def test_backreference_regex_is_refused_by_check(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from runners.cli import main

    path = tmp_path / "builds.yml"
    path.write_text(
        "repositories:\n  - {name: a/b, forge: github, secret: s, image: r/a, rules: [{branch: '/(a*)*\\1$/'}]}\n"
    )
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 1
    assert "repositories[0].rules[0].branch: regex /(a*)*\\1$/ is refused" in result.output
    assert "linear time" in result.output
