"""Config loading: env references, validation errors with locations, `hookbuild check`."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from builder.errors import ConfigError
from runners.cli import main
from tests.configs import parse_config

GOOD = """
registries:
  - host: localhost:5000
    username: ${REGISTRY_USER:-}
    password: ${REGISTRY_PASSWORD:-}
    insecure: true
repositories:
  - name: acme/web
    forge: github
    secret: ${ACME_WEB_SECRET}
    image: localhost:5000/acme/web
    build_args: {GREETING: hello, N: 3}
    rules:
      - branch: main
        tags: [latest, "{short_sha}"]
      - branch: /^release-(.+)$/
        tags: ["release-{1}"]
      - tag: /^v(?P<release>[0-9.]+)$/
        tags: ["{version}", "{\\\\1}"]
"""


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, environ or {})
    return [str(p) for p in caught.value.problems]


def test_env_references_and_defaults_are_expanded() -> None:
    config = parse_config(GOOD, {"ACME_WEB_SECRET": "s3cret", "HOME": "/home/u"})
    repository = config.repository("github", "acme/web")
    assert repository is not None and repository.secret == "s3cret"
    assert repository.build_args == {"GREETING": "hello", "N": "3"}
    assert config.registries[0].username == "" and not config.registries[0].has_credentials
    assert config.server.listen == "0.0.0.0:8080"
    assert config.server.max_body_bytes == 26214400
    assert config.workers == 2
    assert config.state_dir == "/home/u/.local/state/hookbuild"


def test_unset_variable_is_named_with_its_location() -> None:
    assert problems(GOOD) == [
        "repositories[0].secret: environment variable ACME_WEB_SECRET is not set"
    ]


def test_every_problem_is_reported_with_where_it_is() -> None:
    text = """
server: {listen: nowhere, max_body_bytes: 0}
workers: 0
repositories:
  - name: acme/web
    forge: gitbucket
    secret: x
    image: localhost:5000/acme/web:latest
    colour: blue
    rules:
      - branch: main
        tags: ["{shortsha}"]
      - branch: /^release-(.+)$/
        tags: ["release-{2}"]
      - branch: /(a)\\1/
      - branch: main
        tag: v1
      - branch: x
        dockerfile: ../Dockerfile
        context: /etc
"""
    found = problems(text)
    assert "server.listen: expected HOST:PORT, got 'nowhere'" in found
    assert any(p.startswith("server.max_body_bytes: ") for p in found)
    assert any(p.startswith("workers: ") for p in found)
    assert any(p.startswith("repositories[0].forge: unknown forge 'gitbucket'") for p in found)
    assert "repositories[0].colour: unknown key 'colour'" in found
    assert any(p.startswith("repositories[0].image: give the image without a tag") for p in found)
    assert any(
        p.startswith("repositories[0].rules[0].tags[0]: unknown template variable {shortsha}")
        for p in found
    )
    assert (
        "repositories[0].rules[1].tags[0]: {2} in 'release-{2}' needs regex group 2, "
        "but the pattern has 1" in found
    )
    assert any(
        p.startswith("repositories[0].rules[2].branch: regex /(a)\\1/ is refused") for p in found
    )
    assert "repositories[0].rules[3]: a rule has either `branch:` or `tag:`, not both" in found
    assert "repositories[0].rules[4].dockerfile: '../Dockerfile' may not contain '..'" in found
    assert (
        "repositories[0].rules[4].context: '/etc' must be relative to the repository root" in found
    )


def test_yaml_syntax_error_names_the_line() -> None:
    assert problems("repositories:\n  - name: [unclosed\n")[0].startswith("line 3, column 1: ")


def test_duplicate_repository_is_an_error() -> None:
    repo = "  - {name: a/b, forge: github, secret: s, image: r/a, rules: [{branch: main}]}\n"
    found = problems("repositories:\n" + repo + repo)
    assert any("repeats github repository 'a/b'" in p for p in found)


def test_check_command_prints_errors_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "builds.yml"
    bad.write_text(GOOD.replace("branch: main", "branch: /(/"))
    result = CliRunner().invoke(main, ["check", str(bad)], env={"ACME_WEB_SECRET": "x"})
    assert result.exit_code == 1
    assert "repositories[0].rules[0].branch: regex /(/ is refused" in result.output


def test_check_command_accepts_a_good_file(tmp_path: Path) -> None:
    good = tmp_path / "builds.yml"
    good.write_text(GOOD)
    result = CliRunner().invoke(main, ["check", str(good)], env={"ACME_WEB_SECRET": "x"})
    assert result.exit_code == 0, result.output
    assert "ok (1 repositories, 1 images, 3 rules)" in result.output


def test_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[1] / "builds.example.yml"
    config = parse_config(example.read_text(), {"ACME_WEB_SECRET": "x", "HOME": "/root"})
    assert config.repositories, "the documented example configures at least one repository"


def test_a_config_loaded_in_a_child_process_is_the_same_config(tmp_path: Path) -> None:
    """Servers and workers parse in a forked child (runners/configload.py)."""
    from builder.events import PushEvent
    from builder.rules import decide
    from tests.configs import load_config, load_config_compact

    path = tmp_path / "builds.yml"
    path.write_text(
        "repositories:\n"
        "  - name: acme/web\n    forge: github\n    secret: ${SECRET}\n    image: r/web\n"
        "    rules:\n      - {tag: '/^v(?P<release>\\d+\\.\\d+)$/', tags: ['{release}']}\n"
    )
    environ = {"SECRET": "from-the-environment"}
    direct, compact = load_config(path, environ), load_config_compact(path, environ)
    push = PushEvent(
        forge="github",
        repository="acme/web",
        ref="refs/tags/v1.2",
        sha="a" * 40,
        clone_url="https://github.com/acme/web.git",
    )

    assert compact == direct
    assert compact.repository("github", "acme/web") is not None
    assert [p.tags for p in decide(compact.repositories[0], push).plans] == [("1.2",)]

    path.write_text("repositories:\n  - {name: acme/web, forge: nope}\n")
    with pytest.raises(ConfigError) as raised:
        load_config_compact(path, {})
    assert [p.location for p in raised.value.problems] == [
        "repositories[0].forge",
        "repositories[0].secret",
    ]


def test_oci_labels_default_on_and_an_image_may_differ_from_its_repository() -> None:
    from builder.build.pipeline import oci_labels
    from builder.build.source import CommitInfo
    from builder.events import PushEvent
    from builder.rules import decide

    config = parse_config(
        """
repositories:
  - name: acme/one
    forge: github
    secret: s
    image: localhost:5000/one
    rules: [{branch: main, tags: [latest]}]
  - name: acme/mono
    forge: github
    secret: s
    oci_labels: false
    labels: {team: web}
    images:
      - {name: localhost:5000/api, rules: [{branch: main, tags: [latest]}]}
      - {name: localhost:5000/web, oci_labels: true, rules: [{branch: main, tags: [latest]}]}
""",
        {},
    )
    commit = CommitInfo(sha="a" * 40, committed_at=datetime.now(UTC), author="a", message="m")
    seen: dict[str, dict[str, str]] = {}
    for repository in config.repositories:
        push = PushEvent(
            forge="github",
            repository=repository.name,
            ref="refs/heads/main",
            sha="a" * 40,
            clone_url=f"https://github.com/{repository.name}.git",
        )
        for plan in decide(repository, push).plans:
            seen[plan.image] = oci_labels(plan, commit)
    assert seen["localhost:5000/one"]["org.opencontainers.image.revision"] == "a" * 40
    assert seen["localhost:5000/api"] == {"team": "web"}  # the repository's choice
    assert seen["localhost:5000/web"]["team"] == "web"  # its own: both kinds
    assert "org.opencontainers.image.revision" in seen["localhost:5000/web"]


def test_builder_defaults_to_auto_and_an_image_may_choose_its_own() -> None:
    from builder.events import PushEvent
    from builder.rules import decide

    config = parse_config(
        """
repositories:
  - name: acme/one
    forge: github
    secret: s
    image: localhost:5000/one
    rules: [{branch: main, tags: [latest]}]
  - name: acme/mono
    forge: github
    secret: s
    builder: buildkit
    images:
      - {name: localhost:5000/api, rules: [{branch: main, tags: [latest]}]}
      - {name: localhost:5000/web, builder: classic, rules: [{branch: main, tags: [latest]}]}
""",
        {},
    )
    chosen: dict[str, str] = {}
    for repository in config.repositories:
        push = PushEvent(
            forge="github",
            repository=repository.name,
            ref="refs/heads/main",
            sha="a" * 40,
            clone_url=f"https://github.com/{repository.name}.git",
        )
        for plan in decide(repository, push).plans:
            chosen[plan.image] = plan.builder
    assert chosen == {
        "localhost:5000/one": "auto",
        "localhost:5000/api": "buildkit",  # the repository's
        "localhost:5000/web": "classic",  # its own
    }
    bad = GOOD.replace("    rules:\n", "    builder: kaniko\n    rules:\n", 1)
    [problem] = problems(bad, {"ACME_WEB_SECRET": "s"})
    assert problem.startswith("repositories[0].builder: ")
    assert "'auto', 'buildkit' or 'classic'" in problem
