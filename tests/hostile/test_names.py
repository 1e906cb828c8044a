"""Hostile names: tags that collide once sanitised, control characters, replayed
deliveries, and secret build args (issue 15, findings 12, 13, 17 and 20)."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from redis import Redis
from starlette.testclient import TestClient

from builder.errors import ConfigError
from builder.printable import printable_log_line
from builder.tags.order import TagHolder
from builder.tags.owners import refusal, takes_over
from runners import servicelog
from runners.cli import main
from runners.records import BuildRecord, BuildStatus, BuildStore, new_build_id
from tests import builds
from tests.builds import work
from tests.configs import ACME_SECRET as SECRET
from tests.configs import acme_web, parse_config
from tests.conftest import FIXTURES, MakeRepo
from tests.helpers import DOCKERFILE
from tests.registry import RegistryReader
from tests.services import live_server
from tests.signing import gitlab_signing_headers
from webhooks.app import create_app
from webhooks.errors import SignatureInvalid
from webhooks.forges.gitlab import GitLabDriver

deliver = partial(builds.deliver, secret=SECRET)
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
    cfg = acme_web(tmp_path, registry, repo.url, "names/web", rules)
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
    other = acme_web(tmp_path, registry, repo.url, "names/other", rules)
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


HOSTILE = "acme/\x1b]0;owned\x07\x1b[2Jweb\r\b\u202e"
RAW_CONTROLS = ("\x1b", "\x07", "\r", "\b", "\u202e")


def _shows_no_raw_controls(text: str) -> None:
    found = [c for c in RAW_CONTROLS if c in text]
    assert not found, f"raw control characters {found!r} in {text!r}"


def _hostile_config(tmp_path: Path) -> Path:
    path = tmp_path / "builds.yml"
    path.write_text(
        f"state_dir: {tmp_path / 'state'}\nrepositories:\n"
        "  - {name: acme/web, forge: github, secret: s, image: r/x, rules: [{branch: main}]}\n"
    )
    return path


def _hostile_build(redis: Redis) -> str:
    store = BuildStore(redis)
    record = BuildRecord(
        id=new_build_id(),
        forge="github",
        repository="acme/web",
        ref="refs/heads/" + HOSTILE,
        sha="0" * 40,
        image="r/x",
        tags=(HOSTILE,),
        status=BuildStatus.FAILED,
        error="failed: " + HOSTILE,
    )
    store.add(record)
    store.append_log(
        record.id,
        ["\x1b[31mred\x1b[0m\tstep", "title \x1b]0;owned\x07 clear \x1b[2J", "over\rwrite\b"],
    )
    return record.id


def test_13_hookbuild_events_and_builds_escape_control_characters(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    """#13: a repository name with `ESC]0;...BEL ESC[2J` does not retitle or clear the
    terminal through `hookbuild events` or `hookbuild builds`: each control is escaped."""
    config_file = _hostile_config(tmp_path)
    client = TestClient(create_app(parse_config(config_file.read_text(), {}), redis))
    body = json.dumps({"repository": {"full_name": HOSTILE}, "ref": "refs/heads/main"})
    answer = client.post(
        "/hooks/github",
        content=body,
        headers={"X-GitHub-Event": "push", "Content-Type": "application/json"},
    )
    assert answer.status_code in (401, 404)
    _hostile_build(redis)
    runner = CliRunner()
    options = ["--config", str(config_file), "--redis-url", redis_url]
    for command in ("events", "builds"):
        result = runner.invoke(main, [command, *options])
        assert result.exit_code == 0, result.output
        _shows_no_raw_controls(result.output)
        assert "\\x1b]0;owned\\x07\\x1b[2Jweb\\r\\x08\\u202e" in result.output, command


def test_13_hookbuild_logs_escapes_controls_and_keeps_colours_only_for_a_terminal(
    redis: Redis, tmp_path: Path
) -> None:
    """#13: `hookbuild logs` escapes OSC, CSI other than colours, BEL, CR and backspace;
    colours (SGR) are dropped when stdout is not a terminal and kept when it is."""
    config_file = _hostile_config(tmp_path)
    build_id = _hostile_build(redis)
    with live_server(create_app(parse_config(config_file.read_text(), {}), redis)) as url:
        result = CliRunner().invoke(
            main, ["logs", build_id, "--config", str(config_file), "--server", url]
        )
    assert result.exit_code == 0, result.output
    _shows_no_raw_controls(result.output)
    # (The log's text reader takes a carriage return for a line break: none reaches here.)
    assert result.output.splitlines()[:2] == [
        "red\tstep",
        "title \\x1b]0;owned\\x07 clear \\x1b[2J",
    ]
    assert "write\\x08" in result.output
    on_a_terminal = printable_log_line("\x1b[31mred\x1b[0m \x1b]0;t\x07", keep_colours=True)
    assert on_a_terminal == "\x1b[31mred\x1b[0m \\x1b]0;t\\x07"


def test_13_the_text_service_log_escapes_controls_and_json_stays_json(
    redis: Redis, tmp_path: Path
) -> None:
    """#13: the text service log shows a hostile name escaped (the delivery line and a
    message); the JSON log stays valid JSON holding the name as it came."""
    config = parse_config(_hostile_config(tmp_path).read_text(), {})
    body = json.dumps({"repository": {"full_name": HOSTILE}, "ref": "refs/heads/main"})
    headers = {"X-GitHub-Event": "push", "Content-Type": "application/json"}
    for log_format in ("text", "json"):
        stream = io.StringIO()
        servicelog.configure(log_format, stream=stream)
        try:
            TestClient(create_app(config, redis)).post(
                "/hooks/github", content=body, headers=headers
            )
            servicelog.get_logger("test").warning("hostile " + HOSTILE, name=HOSTILE)
        finally:
            servicelog.configure("text")
        output = stream.getvalue()
        _shows_no_raw_controls(output)
        if log_format == "json":
            lines = [json.loads(line) for line in output.splitlines()]
            assert any(line.get("name") == HOSTILE for line in lines)
        else:
            assert "hostile acme/\\x1b]0;owned\\x07" in output
            assert "name='acme/\\x1b]0;owned\\x07" in output


def test_13_dashboard_pages_escape_control_characters(redis: Redis, tmp_path: Path) -> None:
    """#13: the dashboard escapes control characters in what it shows (Jinja escapes only
    HTML): the deliveries, builds and build pages."""
    config = parse_config(_hostile_config(tmp_path).read_text(), {})
    client = TestClient(create_app(config, redis))
    body = json.dumps({"repository": {"full_name": HOSTILE}, "ref": "refs/heads/main"})
    client.post(
        "/hooks/github",
        content=body,
        headers={"X-GitHub-Event": "push", "Content-Type": "application/json"},
    )
    build_id = _hostile_build(redis)
    for page in ("/deliveries", "/builds", f"/builds/{build_id}"):
        response = client.get(page)
        assert response.status_code == 200, page
        _shows_no_raw_controls(response.text)
        assert "\\x1b]0;owned\\x07" in response.text, page
    assert "<div>red\tstep</div>" in response.text  # the log's colours dropped


SECRET_DOCKERFILE = """FROM hookbuild-test/busybox
ARG TOKEN
COPY version.txt /version.txt
RUN echo "token is $TOKEN" && printf %s "$TOKEN" | wc -c > /token-length
"""


def _everything_in(redis: Redis) -> str:
    """Every value of every key in this Redis database, as text."""
    found: list[str] = []
    readers: dict[str, Callable[[Any], object]] = {
        "string": redis.get,
        "hash": redis.hgetall,
        "list": lambda key: redis.lrange(key, 0, -1),
        "set": redis.smembers,
        "zset": lambda key: redis.zrange(key, 0, -1),
        "stream": redis.xrange,
    }
    for key in redis.scan_iter():
        kind = redis.type(key)
        read = readers.get(kind.decode() if isinstance(kind, bytes) else str(kind))
        found.append(f"{key!r} {read(key) if read else None!r}")
    return "\n".join(found)


@pytest.mark.docker
def test_20_a_secret_build_arg_reaches_the_build_and_no_record_plan_or_log(
    redis: Redis, docker_host: str, registry: RegistryReader, make_repo: MakeRepo, tmp_path: Path
) -> None:
    """#20: `secret_build_args` are passed to the build, never stored in the plan, the
    record or Redis, and masked in the build log and the service log."""
    canary = "canary-" + os.urandom(8).hex()
    repo = make_repo()
    sha = repo.commit({"Dockerfile": SECRET_DOCKERFILE, "version.txt": "secret\n"})
    repo.push("main")
    cfg = parse_config(
        f"state_dir: {tmp_path / 'state'}\nrepositories:\n"
        f"  - name: acme/web\n    forge: github\n    secret: {SECRET}\n"
        f"    clone_url: {repo.url}\n    image: {registry.host}/names/secret\n"
        "    secret_build_args:\n      TOKEN: ${NAMES_CANARY}\n"
        '    rules: [{branch: main, tags: ["{short_sha}"]}]\n',
        {"NAMES_CANARY": canary},
    )
    client = TestClient(create_app(cfg, redis))
    service_log = io.StringIO()
    servicelog.configure("text", stream=service_log)
    try:
        [build_id] = deliver(client, "refs/heads/main", sha)
        work(cfg, redis, docker_host)
    finally:
        servicelog.configure("text")

    record = BuildStore(redis).get(build_id)
    assert record is not None and record.status is BuildStatus.SUCCEEDED, record
    # The build had it: the image knows its length.
    length = registry.read_file("names/secret", sha[:7], "/token-length")
    assert length is not None and length.strip() == str(len(canary))
    log = client.get(f"/api/builds/{build_id}/log").text
    assert "token is ***" in log
    for text in (
        log,
        client.get(f"/api/builds/{build_id}").text,
        json.dumps(record.plan),
        _everything_in(redis),
        service_log.getvalue(),
    ):
        assert canary not in text
    assert "TOKEN" not in json.dumps(record.plan)


@pytest.mark.parametrize(
    "field",
    [
        "secret: ' '",
        "secret: ''",
        "signing_token: '  '",
        'trigger_token: "\\t"',
        "clone_token: ''",
        "secret_build_args: {TOKEN: ' '}",
    ],
)
def test_20_a_blank_secret_or_token_is_a_config_error(field: str) -> None:
    """#20: a whitespace-only (or empty) secret, token or secret build arg fails `check`."""
    text = (
        "repositories:\n  - name: acme/web\n    forge: gitlab\n    image: r/x\n"
        "    rules: [{branch: main}]\n"
    )
    if not field.startswith("secret:"):
        text += "    secret: s\n"
    with pytest.raises(ConfigError) as caught:
        parse_config(text + f"    {field}\n", {})
    key = field.split(":")[0]
    assert f"repositories[0].{key}" in str(caught.value)
    assert "empty or only whitespace" in str(caught.value) or "at least 1" in str(caught.value)


def test_20_a_blank_server_token_is_a_config_error() -> None:
    """#20: `server.token` of spaces is refused, as an empty one."""
    with pytest.raises(ConfigError, match=r"server\.token: must not be empty or only whitespace"):
        parse_config(f"server: {{token: '{' ' * 20}'}}\n", {})
