"""Rule matching and tag templates: pure functions, plain calls."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from builder.events import PushEvent
from builder.rules import decide
from builder.tags.templates import is_valid_tag, to_docker_tag
from tests.configs import parse_config

SHA = "0123456789abcdef0123456789abcdef01234567"

CONFIG = parse_config(
    """
repositories:
  - name: acme/web
    forge: github
    secret: s
    image: localhost:5000/acme/web
    rules:
      - branch: main
        tags: [latest, "{short_sha}"]
      - branch: /^release-(?P<line>.+)$/
        tags: ["release-{1}", "line-{line}", "{sourceref}"]
      - tag: /^v([0-9.]+)$/
        tags: ["{1}", "{\\\\1}-full", "{sha}"]
      - branch: /^feature/.+$/
        tags: ["{branch}"]
      - branch: docs
        dockerfile: docs/Dockerfile
        tags: [docs]
      - branch: docs
        tags: [docs-app]
""",
    {},
)
REPO = CONFIG.repositories[0]


def push(ref: str, **kw: object) -> PushEvent:
    url = "https://github.com/acme/web.git"
    return PushEvent("github", "acme/web", ref, SHA, clone_url=url, **kw)  # type: ignore[arg-type]


def test_literal_branch_gives_its_tags() -> None:
    [plan] = decide(REPO, push("refs/heads/main")).plans
    assert plan.tags == ("latest", "0123456")
    assert plan.sha == SHA and plan.ref == "refs/heads/main"


def test_regex_groups_positional_named_and_sourceref() -> None:
    [plan] = decide(REPO, push("refs/heads/release-2.1")).plans
    # {sourceref} gives release-2.1 again: one tag, pushed once.
    assert plan.tags == ("release-2.1", "line-2.1")


def test_tag_rule_with_docker_hub_backslash_groups() -> None:
    [plan] = decide(REPO, push("refs/tags/v1.2.3")).plans
    assert plan.tags == ("1.2.3", "1.2.3-full", SHA)


def test_invalid_docker_tag_is_made_valid_and_the_log_is_told() -> None:
    [plan] = decide(REPO, push("refs/heads/feature/x")).plans
    assert plan.tags == ("feature-x",)
    assert plan.notes == ("tag 'feature/x' is not a valid Docker tag: using 'feature-x'",)


def test_branch_rule_does_not_fire_for_a_tag_of_the_same_name() -> None:
    decision = decide(REPO, push("refs/tags/main"))
    assert decision.plans == () and decision.skipped == "no rule matches refs/tags/main"


def test_unmatched_branch_says_why() -> None:
    decision = decide(REPO, push("refs/heads/other"))
    assert decision.skipped == "no rule matches refs/heads/other"
    assert decision.images[0].rules[0].why == "'other' is not main"


def test_deletion_builds_nothing() -> None:
    decision = decide(REPO, push("refs/heads/main", deleted=True))
    assert decision.skipped == "branch deleted: refs/heads/main"


def test_rules_with_different_dockerfiles_build_separately() -> None:
    plans = decide(REPO, push("refs/heads/docs")).plans
    assert [(p.dockerfile, p.tags) for p in plans] == [
        ("docs/Dockerfile", ("docs",)),
        ("Dockerfile", ("docs-app",)),
    ]


def test_regex_is_anchored_to_the_whole_name() -> None:
    assert decide(REPO, push("refs/heads/xrelease-1")).plans == ()


@given(st.text(max_size=300))
def test_sanitized_tags_are_always_valid_or_empty(raw: str) -> None:
    tag = to_docker_tag(raw)
    assert tag == "" or is_valid_tag(tag)


def test_a_named_group_wins_over_a_built_in_variable_of_the_same_name() -> None:
    """`(?P<version>...)` is the user's own name: it is filled from the match, not from
    the semver variables (which would need a full semantic version)."""
    config = parse_config(
        "repositories:\n  - name: acme/web\n    forge: github\n    secret: s\n    image: r/web\n"
        "    rules:\n      - {tag: '/^v(?P<version>\\d+\\.\\d+)$/', tags: ['{version}']}\n",
        {},
    )
    [plan] = decide(config.repositories[0], push("refs/tags/v1.2")).plans
    assert plan.tags == ("1.2",)
