"""Hostile names: tags that collide once sanitised, control characters, replayed
deliveries, and secret build args (issue 15, findings 12, 13, 17 and 20)."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis import Redis
from starlette.testclient import TestClient

from builder.config import parse_config
from builder.tagorder import TagHolder
from builder.tagowners import refusal, takes_over
from runners.records import BuildStatus, BuildStore
from tests.conftest import FIXTURES, MakeRepo
from tests.helpers import DOCKERFILE
from tests.registry import RegistryReader
from tests.signing import gitlab_signing_headers
from tests.test_rules_e2e import config, deliver, work
from webhooks.app import create_app
from webhooks.errors import SignatureInvalid
from webhooks.forges.gitlab import GitLabDriver

GITLAB_TOKEN = "whsec_" + "c2lnbmluZy10b2tlbi1mb3ItdGVzdHM="


def test_12_a_sanitised_tag_never_takes_an_exact_names_tag() -> None:
    """#12: the tag owner rule, in any order: an exact name beats a sanitised one."""
    main = TagHolder(sha="a" * 40, committed_at=1, ref="refs/heads/main", build_id="b1")
    dash = TagHolder(
        sha="b" * 40, committed_at=2, ref="refs/heads/-main", sanitised=True, build_id="b2"
    )
    refused = refusal("main", "refs/heads/-main", True, main)
    assert refused is not None and "already belongs to refs/heads/main" in refused
    assert refusal("main", "refs/heads/main", False, dash) is None
    assert takes_over("refs/heads/main", False, dash)
    assert refusal("main", "refs/heads/.main", True, dash) is not None  # first sanitised keeps it
    assert refusal("main", "refs/heads/-main", True, dash) is None  # its own ref moves it
    assert not takes_over("refs/heads/main", False, main)
    legacy = TagHolder(sha="a" * 40, committed_at=1)  # recorded before refs were
    assert refusal("main", "refs/heads/-main", True, legacy) is None


@pytest.mark.docker
def test_12_branch_dash_main_does_not_overwrite_mains_image_in_either_order(
    redis: Redis, docker_host: str, registry: RegistryReader, make_repo: MakeRepo, tmp_path: Path
) -> None:
    """#12: `-main` (tag `main` once sanitised) leaves main's image in the registry,
    whether it is pushed after main or before; its log says which tag and why."""
    repo = make_repo()
    good = repo.commit({"Dockerfile": DOCKERFILE, "version.txt": "main\n"})
    repo.push("main")
    evil = repo.commit({"version.txt": "evil\n"})
    repo.push("refs/heads/-main")
    rules = '      - {branch: "/.*/", tags: ["{sourceref}", "{short_sha}"]}\n'
    cfg = config(tmp_path, registry, repo.url, "names/web", rules)
    client = TestClient(create_app(cfg, redis))
    store = BuildStore(redis)

    [main_build] = deliver(client, "refs/heads/main", good)
    work(cfg, redis, docker_host)
    main_digest = registry.digest("names/web", "main")
    [evil_build] = deliver(client, "refs/heads/-main", evil)
    work(cfg, redis, docker_host)
    record = store.get(evil_build)
    assert record is not None and record.status is BuildStatus.SUCCEEDED, record
    assert registry.digest("names/web", "main") == main_digest
    assert registry.read_file("names/web", "main", "/commit.txt") == "main\n"
    assert registry.read_file("names/web", evil[:7], "/commit.txt") == "evil\n"  # still pushed
    log = "\n".join(store.log_lines(evil_build))
    assert (
        f"==> not pushing {registry.host}/names/web:main: tag 'main' is the sanitised name of "
        f"refs/heads/-main, and it already belongs to refs/heads/main (its exact name; "
        f"build {main_build})"
    ) in log

    # The other order: `-main` first takes the free tag; main's next build takes it back
    # even though `-main`'s commit is newer, and `-main` cannot take it again.
    later = repo.commit({"version.txt": "later\n"})
    repo.push("refs/heads/-main")
    other = config(tmp_path, registry, repo.url, "names/other", rules)
    client = TestClient(create_app(other, redis))
    deliver(client, "refs/heads/-main", evil, delivery="first")
    work(other, redis, docker_host)
    assert registry.read_file("names/other", "main", "/commit.txt") == "evil\n"
    [taken_back] = deliver(client, "refs/heads/main", good, delivery="second")
    work(other, redis, docker_host)
    assert registry.read_file("names/other", "main", "/commit.txt") == "main\n"
    assert "taking it back from refs/heads/-main" in "\n".join(store.log_lines(taken_back))
    deliver(client, "refs/heads/-main", later, delivery="third")
    work(other, redis, docker_host)
    assert registry.read_file("names/other", "main", "/commit.txt") == "main\n"


def _gitlab_client(redis: Redis, tmp_path: Path) -> tuple[TestClient, bytes, dict[str, str]]:
    cfg = parse_config(
        f"state_dir: {tmp_path / 'state'}\nrepositories:\n"
        "  - {name: gitlab-org/hello-world, forge: gitlab, secret: plain, "
        f"signing_token: '{GITLAB_TOKEN}', clone_url: 'git://127.0.0.1/x.git', image: r/x, "
        "rules: [{branch: master}]}\n",
        {},
    )
    body = (FIXTURES / "gitlab/push-branch-goscm.json").read_bytes()
    return TestClient(create_app(cfg, redis)), body, {"X-Gitlab-Event": "Push Hook"}


def test_17_a_replayed_gitlab_delivery_with_a_new_idempotency_key_builds_nothing_new(
    redis: Redis, tmp_path: Path
) -> None:
    """#17: with a signing token, dedup is on the signed webhook-id, not Idempotency-Key."""
    client, body, base = _gitlab_client(redis, tmp_path)
    signed = base | gitlab_signing_headers(body, GITLAB_TOKEN, "msg_1")
    first = client.post("/hooks/gitlab", content=body, headers=signed | {"Idempotency-Key": "a"})
    assert first.status_code == 202, first.text
    replay = client.post("/hooks/gitlab", content=body, headers=signed | {"Idempotency-Key": "b"})
    assert replay.status_code == 200 and replay.json()["duplicate"] is True, replay.text
    assert replay.json()["builds"] == first.json()["builds"]
    assert len(BuildStore(redis).recent()) == 1
    # GitLab's own retry of the same event keeps its webhook-id: also one build.
    again = client.post("/hooks/gitlab", content=body, headers=signed)
    assert again.json()["builds"] == first.json()["builds"]


@pytest.mark.parametrize("stamp", ["1" * 13, "9" * 5000, "-1", "1e9", ""])
def test_17_a_webhook_timestamp_that_is_not_ascii_digits_is_401_not_500(
    redis: Redis, tmp_path: Path, stamp: str
) -> None:
    """#17: a webhook-timestamp of 5,000 digits is refused with a clear reason, not a 500."""
    client, body, base = _gitlab_client(redis, tmp_path)
    signed = (
        base | gitlab_signing_headers(body, GITLAB_TOKEN, "msg_2") | {"webhook-timestamp": stamp}
    )
    response = client.post("/hooks/gitlab", content=body, headers=signed)
    assert response.status_code == 401, response.text
    reason = response.json()["error"]
    assert "webhook-timestamp" in reason
    assert BuildStore(redis).recent() == []


@pytest.mark.parametrize("stamp", ["²", "\u0661\u0667" + "\u0660" * 8, "9" * 5000])
def test_17_the_gitlab_driver_refuses_a_non_ascii_timestamp_with_its_reason(stamp: str) -> None:
    """#17: `webhook-timestamp: ²` as a server decodes it (latin-1) is SignatureInvalid,
    not a ValueError (a 500)."""
    body = b"{}"
    headers = gitlab_signing_headers(body, GITLAB_TOKEN, "msg_3") | {"webhook-timestamp": stamp}
    with pytest.raises(SignatureInvalid, match="webhook-timestamp is not a Unix time"):
        GitLabDriver().verify(headers, body, "plain", GITLAB_TOKEN)
