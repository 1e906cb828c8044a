"""#16.8: `hookbuild check` refuses what a registry would refuse, and says where and why."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
from click.testing import CliRunner, Result
from redis import Redis

from runners.cli import main
from tests.conftest import github_push_body, github_signature
from tests.helpers import SECRET
from tests.services import free_port, port_open

CONFIG = """
server:
  listen: 127.0.0.1:{port}
registries: [{{host: "localhost:5000", insecure: true}}]
repositories:
  - name: acme/web
    forge: github
    secret: ${{WEBHOOK_SECRET}}
    clone_url: git://127.0.0.1:9/acme/web.git
    image: {image}
    rules:
      - branch: main
        tags: [latest, "{{short_sha}}"]
      - branch: /^release-(.+)$/
        tags: [{release_tag}]
"""


def write(
    tmp_path: Path,
    *,
    image: str = "localhost:5000/nc/web",
    release_tag: str = '"release-{1}"',
    port: int = 8080,
    extra: str = "",
) -> Path:
    path = tmp_path / "builds.yml"
    path.write_text(CONFIG.format(image=image, release_tag=release_tag, port=port) + extra)
    return path


def check(path: Path) -> Result:
    return CliRunner().invoke(main, ["check", str(path)], env={"WEBHOOK_SECRET": SECRET})


def test_a_registry_host_with_a_port_and_the_grammar_s_separators_pass(tmp_path: Path) -> None:
    """#16.8: names a registry takes (a host with a port, an address, `__`, `--`) pass."""
    for image in (
        "localhost:5000/nc/web",
        "127.0.0.1:5000/x/y",
        "Registry.Example.com:443/team/app",
        "localhost:5000/a__b/c--d.e_f",
        "acme/web",
    ):
        result = check(write(tmp_path, image=image))
        assert result.exit_code == 0, (image, result.output)


def test_an_image_with_capitals_fails_check_naming_it(tmp_path: Path) -> None:
    """#16.8: an image with capitals fails `check`, naming the image and the component."""
    result = check(write(tmp_path, image="localhost:5000/nc/UPPER"))
    assert result.exit_code == 1
    assert (
        "repositories[0].image: image 'localhost:5000/nc/UPPER' has capitals in 'UPPER'; "
        "a registry takes only lower-case repository names" in result.output
    )


def test_an_image_that_breaks_the_grammar_fails_check_with_the_rule(tmp_path: Path) -> None:
    """#16.8: a path component the grammar refuses (`web-`) is named with the rule."""
    result = check(write(tmp_path, image="localhost:5000/nc/web-"))
    assert result.exit_code == 1
    assert (
        "repositories[0].image: image 'localhost:5000/nc/web-': path component 'web-' "
        "breaks the rule: lower-case letters and digits" in result.output
    )


def test_a_bad_literal_tag_fails_check_naming_rule_and_tag(tmp_path: Path) -> None:
    """#16.8: a literal tag `Bad Tag!` fails `check` at its rule and index; a computed
    one (`release-{1}`) is still made valid at build time."""
    result = check(write(tmp_path, release_tag='"release-{1}", "Bad Tag!"'))
    assert result.exit_code == 1
    assert (
        "repositories[0].rules[1].tags[1]: tag 'Bad Tag!' has ' ' and '!'; a tag is "
        "letters, digits, '_', '.' and '-'" in result.output
    )
    assert "tags[0]" not in result.output
    result = check(write(tmp_path, release_tag='"-bad"'))
    assert result.exit_code == 1
    assert "repositories[0].rules[1].tags[0]: tag '-bad' starts with '-'" in result.output


def test_a_misspelled_top_level_key_gets_a_did_you_mean(tmp_path: Path) -> None:
    """#16.8: `wokers:` at the top gets "did you mean 'workers'", and `proccesses:` written
    at the top, where it does not belong, is pointed under `server:`."""
    result = check(write(tmp_path, extra="wokers: 3\nproccesses: 2\n"))
    assert result.exit_code == 1
    assert "wokers: unknown key 'wokers'; did you mean 'workers'?" in result.output
    assert (
        "proccesses: unknown key 'proccesses'; did you mean 'processes' under `server:`?"
        in result.output
    )


def test_a_misspelled_nested_key_gets_a_did_you_mean(tmp_path: Path) -> None:
    """#16.8: misspelled keys in server, a rule and a registry each get a "did you mean"
    at their own place."""
    path = write(tmp_path)
    text = path.read_text()
    text = text.replace("server:\n", "server:\n  proccesses: 2\n")
    text = text.replace("        tags: [latest,", "        overwrte: true\n        tags: [latest,")
    text = text.replace("insecure: true}", "insecure: true, usrname: me}")
    path.write_text(text)
    result = check(path)
    assert result.exit_code == 1
    assert "server.proccesses: unknown key 'proccesses'; did you mean 'processes'?" in (
        result.output
    )
    assert (
        "repositories[0].rules[0].overwrte: unknown key 'overwrte'; did you mean 'overwrite'?"
        in result.output
    )
    assert "registries[0].usrname: unknown key 'usrname'; did you mean 'username'?" in (
        result.output
    )


def test_a_type_error_shows_the_value_it_got(tmp_path: Path) -> None:
    """#16.8: `workers: "many"` says it got 'many'; a long value is clipped, a control
    character escaped; `latest: maybe` is one line, not one per member of its type."""
    long = "x" * 500
    path = write(
        tmp_path,
        extra=f'workers: "many"\nmax_running_per_repository: "{long}\\u001b[2J"\n',
    )
    text = path.read_text().replace(
        "      - branch: main\n", "      - branch: main\n        latest: maybe\n"
    )
    path.write_text(text)
    result = check(path)
    assert result.exit_code == 1
    assert "workers: expected a valid integer, got 'many'" in result.output
    [line] = [x for x in result.output.splitlines() if "max_running_per_repository" in x]
    assert "got 'xxxxx" in line and "more characters]" in line and len(line) < 200
    assert "\x1b" not in result.output
    assert (
        "repositories[0].rules[0].latest: expected 'auto' or a valid boolean, got 'maybe'"
        in result.output
    )
    assert "latest.bool" not in result.output


def test_a_type_error_in_a_secret_does_not_show_it(tmp_path: Path) -> None:
    """#16.8: a secret of the wrong type says what it got, never the value itself
    (`hookbuild up` logs the same errors)."""
    path = write(tmp_path)
    path.write_text(path.read_text().replace("${WEBHOOK_SECRET}", "987654321"))
    result = check(path)
    assert result.exit_code == 1
    assert (
        "repositories[0].secret: expected a valid string, got a number "
        "(a secret's value is not shown)" in result.output
    )
    assert "987654321" not in result.output


def test_a_bad_image_is_refused_at_load_so_no_build_is_queued(
    tmp_path: Path, redis: Redis, redis_url: str
) -> None:
    """#16.8: `hookbuild serve` with an upper-case image stops at load with the same error
    as `check`, before it listens: a push finds nobody, and Redis holds nothing."""
    port = free_port()
    path = write(tmp_path, image="localhost:5000/nc/UPPER", port=port)
    env = {**os.environ, "WEBHOOK_SECRET": SECRET, "PYTHONPATH": os.getcwd()}
    args = ["serve", "--config", str(path), "--redis-url", redis_url]
    process = subprocess.Popen(
        [sys.executable, "-m", "runners.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while process.poll() is None and time.monotonic() < deadline:
            if port_open(port):
                # It started with the bad image: a push would queue a build that must fail.
                body = github_push_body(
                    "acme/web", "refs/heads/main", "a" * 40, "git://127.0.0.1:9/acme/web.git"
                )
                httpx.post(
                    f"http://127.0.0.1:{port}/hooks/github",
                    content=body,
                    headers={
                        "Content-Type": "application/json",
                        "X-GitHub-Event": "push",
                        "X-GitHub-Delivery": "bad-image-1",
                        "X-Hub-Signature-256": github_signature(SECRET, body),
                    },
                    timeout=10,
                )
                break
            time.sleep(0.1)
    finally:
        if process.poll() is None:
            process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 1, stderr
    assert "repositories[0].image: image 'localhost:5000/nc/UPPER' has capitals" in stderr
    assert redis.keys("*") == []
