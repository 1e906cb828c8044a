"""Rules beyond the basics: latest, skip markers, images per repository, path filters,
tag kinds, flavors, and the explanations `preview` prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from redis import Redis
from starlette.testclient import TestClient

from builder.config import RepositoryConfig
from builder.events import PushEvent
from builder.paths_filter import path_filter_reason
from builder.rules import decide
from runners.cli import main
from tests.configs import parse_config
from webhooks.app import create_app

SHA = "0123456789abcdef0123456789abcdef01234567"
MONOREPO = """
repositories:
  - name: acme/mono
    forge: github
    secret: s
    clone_url: git://127.0.0.1/mono.git
    images:
      - name: localhost:5000/acme/api
        context: services/api
        dockerfile: services/api/Dockerfile
        paths: ["services/api/**", "libs/**"]
        rules: [{branch: main, tags: [latest]}]
      - name: localhost:5000/acme/web
        context: services/web
        dockerfile: services/web/Dockerfile
        paths: ["services/web/**"]
        ignore_paths: ["**/*.md"]
        rules:
          - {branch: main, tags: [latest]}
          - {tag: "/^v.*$/", semver: true}
"""


def repo(text: str) -> RepositoryConfig:
    return parse_config(text, {}).repositories[0]


def push(ref: str, **kw: object) -> PushEvent:
    url = "https://github.com/acme/mono.git"
    return PushEvent("github", "acme/mono", ref, SHA, clone_url=url, **kw)  # type: ignore[arg-type]


def simple(rules: str, extra: str = "") -> RepositoryConfig:
    return repo(
        "repositories:\n  - name: acme/mono\n    forge: github\n    secret: s\n"
        f"    image: localhost:5000/acme/app\n{extra}    rules:\n{rules}"
    )


def test_latest_auto_goes_to_the_payloads_default_branch() -> None:
    r = simple("      - {branch: /.*/, tags: ['{branch}']}\n")
    [on_default] = decide(r, push("refs/heads/trunk", default_branch="trunk")).plans
    [elsewhere] = decide(r, push("refs/heads/main", default_branch="trunk")).plans
    assert on_default.tags == ("trunk", "latest") and elsewhere.tags == ("main",)


def test_config_default_branch_wins_over_the_payload() -> None:
    r = simple("      - {branch: /.*/, tags: ['{branch}']}\n", "    default_branch: develop\n")
    [plan] = decide(r, push("refs/heads/develop", default_branch="main")).plans
    assert plan.tags == ("develop", "latest")


def test_latest_false_and_true() -> None:
    r = simple(
        "      - {branch: main, tags: [edge], latest: false}\n      - {tag: /.*/, tags: ['{tag}'], latest: true}\n"
    )
    assert decide(r, push("refs/heads/main")).plans[0].tags == ("edge",)
    assert decide(r, push("refs/tags/nightly")).plans[0].tags == ("nightly", "latest")


@pytest.mark.parametrize(
    "marker", ["[skip ci]", "[ci skip]", "[skip build]", "[build skip]", "[SKIP CI]"]
)
def test_skip_markers_in_the_head_commit_build_nothing(marker: str) -> None:
    decision = decide(
        simple("      - {branch: main}\n"), push("refs/heads/main", message=f"docs: typo {marker}")
    )
    assert (
        decision.plans == () and decision.skipped == f"{marker.lower()} in the head commit message"
    )


def test_each_image_of_a_monorepo_gets_its_own_plan_and_settings() -> None:
    plans = decide(repo(MONOREPO), push("refs/heads/main")).plans
    assert [(p.image, p.context, p.dockerfile, p.tags) for p in plans] == [
        ("localhost:5000/acme/api", "services/api", "services/api/Dockerfile", ("latest",)),
        ("localhost:5000/acme/web", "services/web", "services/web/Dockerfile", ("latest",)),
    ]
    assert plans[0].paths == ("services/api/**", "libs/**") and plans[1].ignore_paths == (
        "**/*.md",
    )


def test_path_filters_with_known_changes_pick_the_images() -> None:
    decision = decide(repo(MONOREPO), push("refs/heads/main"), changed=["libs/util/x.go"])
    assert [p.image for p in decision.plans] == ["localhost:5000/acme/api"]
    web = decision.images[1]
    assert web.skipped == "no changed file under paths (services/web/**)"
    assert web.rules[0].matched is False and web.rules[0].why.startswith(
        "no changed file under paths"
    )


@pytest.mark.parametrize(
    ("changed", "paths", "ignore", "reason"),
    [
        (["a/b.py"], ["a/**"], [], None),
        (["README.md"], ["a/**"], [], "no changed file under paths (a/**)"),
        (["docs/x.md", "README.md"], [], ["**/*.md"], "no changed file outside ignore_paths"),
        (["docs/x.md", "src/y.c"], [], ["**/*.md"], None),
        (["a/deep/down/f"], ["a/**/f"], [], None),
        ([], ["a/**"], [], "no changed file"),
        (["x"], [], [], None),
    ],
)
def test_path_filter_reasons(
    changed: list[str], paths: list[str], ignore: list[str], reason: str | None
) -> None:
    assert path_filter_reason(changed, paths, ignore) == reason


def test_tag_kinds_decide_how_tags_may_change() -> None:
    r = simple(
        "      - {tag: /^v.*$/, semver: true, tags: ['{sha}'], overwrite: true}\n"
        "      - {branch: main, tags: ['{short_sha}', edge]}\n"
    )
    [release] = decide(r, push("refs/tags/v1.4.2")).plans
    assert release.tag_kinds == {
        "0123456789abcdef0123456789abcdef01234567": "pinned",
        "1.4.2": "release",
        "1.4": "moving",
        "1": "moving",
    }
    assert set(release.overwrite) == set(release.tags) and release.version == "1.4.2"
    [branch] = decide(r, push("refs/heads/main")).plans
    assert branch.tag_kinds == {"0123456": "pinned", "edge": "moving", "latest": "moving"}


def test_semver_rule_on_a_non_semver_tag_says_why() -> None:
    decision = decide(simple("      - {tag: /.*/, semver: true}\n"), push("refs/tags/nightly"))
    assert decision.images[0].rules[0].why == "'nightly' is not a semantic version (semver: true)"


def test_date_tags_wait_for_the_commit_date() -> None:
    [plan] = decide(
        simple("      - {branch: main, tags: ['nightly-{date:%Y%m%d}'], latest: false}\n"),
        push("refs/heads/main"),
    ).plans
    assert plan.tags == ("nightly-{date:%Y%m%d}",)


def test_config_refuses_what_cannot_work() -> None:
    from builder.errors import ConfigError

    with pytest.raises(ConfigError) as caught:
        parse_config(
            "repositories:\n  - {name: a/b, forge: github, secret: s, image: r/a, images: [{name: r/b, rules: [{branch: x}]}]}\n"
            "  - {name: a/c, forge: github, secret: s, image: r/c, rules: [{branch: x, semver: true}]}\n",
            {},
        )
    text = str(caught.value)
    assert "repositories[0]: give either `image` with `rules`, or `images`, not both" in text
    assert "repositories[1].rules[0]: `semver: true` is for tag rules" in text


def test_preview_cli_explains_every_rule(tmp_path: Path) -> None:
    config = tmp_path / "builds.yml"
    config.write_text(MONOREPO)
    result = CliRunner().invoke(
        main,
        [
            "preview",
            "--config",
            str(config),
            "--repo",
            "acme/mono",
            "--ref",
            "refs/tags/v1.2.3",
            "--json",
            "--changed",
            "services/web/app.js",
        ],
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["skipped"] is None
    api, web = answer["images"]
    assert api == {
        "image": "localhost:5000/acme/api",
        "tags": [],
        "rules": [
            {
                "rule": "branch: main",
                "matched": False,
                "why": "refs/tags/v1.2.3 is not a branch",
                "tags": [],
            }
        ],
        "skipped": "no rule matches refs/tags/v1.2.3",
    }
    assert web["tags"] == ["1.2.3", "1.2", "1"]
    assert web["rules"][1] == {
        "rule": "tag: /^v.*$/",
        "matched": True,
        "why": "matched",
        "tags": ["1.2.3", "1.2", "1"],
    }


def test_preview_cli_says_skipped_for_skip_ci(tmp_path: Path) -> None:
    config = tmp_path / "builds.yml"
    config.write_text(MONOREPO)
    result = CliRunner().invoke(
        main,
        [
            "preview",
            "--config",
            str(config),
            "--repo",
            "acme/mono",
            "--ref",
            "main",
            "--message",
            "wip [skip ci]",
        ],
    )
    assert (
        result.exit_code == 0
        and "builds nothing: [skip ci] in the head commit message" in result.output
    )


def test_preview_api_answers_the_same_json(redis: Redis) -> None:
    config = parse_config(MONOREPO, {})
    client = TestClient(create_app(config, redis))
    response = client.post(
        "/api/preview",
        json={"repository": "acme/mono", "ref": "refs/heads/main", "changed": ["libs/a"]},
    )
    assert response.status_code == 200
    assert [i["tags"] for i in response.json()["images"]] == [["latest"], []]
    unknown = client.post("/api/preview", json={"repository": "nope", "ref": "main"})
    assert unknown.status_code == 404 and "no repository 'nope'" in unknown.json()["error"]
    assert client.post("/api/preview", json={"repository": "acme/mono"}).status_code == 400


def test_every_delivery_is_recorded_with_its_outcome(redis: Redis) -> None:
    from tests.conftest import fixture_bytes
    from tests.signing import forge_headers

    config = parse_config(
        "repositories:\n  - {name: Codertocat/Hello-World, forge: github, secret: s, image: r/h, rules: [{branch: master}]}\n",
        {},
    )
    client = TestClient(create_app(config, redis))
    push_body = fixture_bytes("github/push-branch-goscm.json")
    deleted = fixture_bytes("github/push-tag-deleted-octokit.json")
    client.post(
        "/hooks/github",
        content=push_body,
        headers=forge_headers("github", "push", push_body, "s", "d1"),
    )
    client.post(
        "/hooks/github",
        content=push_body,
        headers=forge_headers("github", "push", push_body, "s", "d1"),
    )
    client.post(
        "/hooks/github",
        content=deleted,
        headers=forge_headers("github", "push", deleted, "s", "d2"),
    )
    client.post(
        "/hooks/github",
        content=push_body,
        headers=forge_headers("github", "push", push_body, "bad", "d3"),
    )

    events = client.get("/api/events").json()["events"]
    assert [(e["delivery_id"], e["outcome"], e["status"]) for e in events] == [
        ("d3", "rejected", 401),
        ("d2", "skipped", 200),
        ("d1", "duplicate", 200),
        ("d1", "built", 202),
    ]
    assert events[1]["reason"] == "tag deleted: refs/tags/simple-tag"
    assert events[3]["builds"] and events[3]["ref"] == "refs/heads/master"
