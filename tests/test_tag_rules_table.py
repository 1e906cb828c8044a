"""Table tests from the documented examples of Docker Hub's build rules and of
docker/metadata-action's tag types. Each case names where its example comes from; where
hookbuild differs on purpose, the case says so."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from builder.events import PushEvent
from builder.rules import decide
from builder.tags.final import final_tags
from tests.configs import parse_config

SHA = "90dd6032fac8bda1b6c4436a2e65de27961ed071"  # metadata-action README's bake example
MA = "docker/metadata-action README"
HUB = "Docker Hub automated builds"


@dataclass(frozen=True)
class Case:
    source: str
    rule: str  # one YAML rule
    ref: str
    tags: tuple[str, ...]
    latest_from: str = "branch"
    default_branch: str = "master"


CASES = [
    # metadata-action, "Basic" and `type=ref` tables.
    Case(
        f"{MA}, Basic: push refs/heads/master",
        '{branch: /.*/, tags: ["{branch}"], latest: false}',
        "refs/heads/master",
        ("master",),
    ),
    Case(
        f"{MA}, Basic: push refs/heads/releases/v1",
        '{branch: /.*/, tags: ["{branch}"]}',
        "refs/heads/releases/v1",
        ("releases-v1",),
    ),
    Case(
        f"{MA}, type=ref: refs/heads/my/branch",
        '{branch: /.*/, tags: ["{branch}"]}',
        "refs/heads/my/branch",
        ("my-branch",),
    ),
    Case(
        f"{MA}, Basic: push tag refs/tags/v1.2.3 -> v1.2.3, latest",
        '{tag: /.*/, tags: ["{tag}"]}',
        "refs/tags/v1.2.3",
        ("v1.2.3", "latest"),
        latest_from="tags",
    ),
    # Deliberate difference: metadata-action's Basic table also gives a beta `latest`;
    # hookbuild gives `latest` only to release tags (the highest release tag seen).
    Case(
        f"{MA}, Basic: push tag v2.0.8-beta.67 (no latest for a pre-release here)",
        '{tag: /.*/, tags: ["{tag}"]}',
        "refs/tags/v2.0.8-beta.67",
        ("v2.0.8-beta.67",),
        latest_from="tags",
    ),
    # metadata-action, "Semver" table: {{version}} and {{major}}.{{minor}}.
    Case(
        f"{MA}, Semver: refs/tags/v1.2.3 -> 1.2.3, 1.2, latest",
        '{tag: /.*/, tags: ["{version}", "{major}.{minor}"]}',
        "refs/tags/v1.2.3",
        ("1.2.3", "1.2", "latest"),
        latest_from="tags",
    ),
    Case(
        f"{MA}, Semver: refs/tags/v2.0.8-beta.67 -> 2.0.8-beta.67",
        '{tag: /.*/, tags: ["{version}", "{major}.{minor}"]}',
        "refs/tags/v2.0.8-beta.67",
        ("2.0.8-beta.67",),
        latest_from="tags",
    ),
    # metadata-action, `type=semver` pattern table.
    Case(
        f"{MA}, type=semver: v1.2.3 {{{{version}}}}",
        '{tag: /.*/, tags: ["{version}"]}',
        "refs/tags/v1.2.3",
        ("1.2.3",),
    ),
    Case(
        f"{MA}, type=semver: v1.2.3 v{{{{major}}}}",
        '{tag: /.*/, tags: ["v{major}"]}',
        "refs/tags/v1.2.3",
        ("v1",),
    ),
    Case(
        f"{MA}, type=semver: v1.2.3 {{{{minor}}}}",
        '{tag: /.*/, tags: ["{minor}"]}',
        "refs/tags/v1.2.3",
        ("2",),
    ),
    Case(
        f"{MA}, type=semver: v1.2.3 {{{{patch}}}}",
        '{tag: /.*/, tags: ["{patch}"]}',
        "refs/tags/v1.2.3",
        ("3",),
    ),
    Case(
        f"{MA}, type=semver: v2.0.8-beta.67 {{{{major}}}}.{{{{minor}}}} -> full version",
        '{tag: /.*/, tags: ["{major}.{minor}"]}',
        "refs/tags/v2.0.8-beta.67",
        ("2.0.8-beta.67",),
    ),
    # metadata-action, `type=match` table (hookbuild matches the whole name: anchored regexes).
    Case(
        f"{MA}, type=match: v2.0.8-beta.67, v(.*) group 1",
        '{tag: "/v(.*)/", tags: ["{1}"]}',
        "refs/tags/v2.0.8-beta.67",
        ("2.0.8-beta.67",),
    ),
    Case(
        f"{MA}, type=match: v2.0.8-beta.67, v(\\d.\\d) group 1",
        '{tag: "/v(\\\\d.\\\\d).*/", tags: ["{1}"]}',
        "refs/tags/v2.0.8-beta.67",
        ("2.0",),
    ),
    Case(
        f"{MA}, type=match: 20200110-RC2, \\d+",
        '{tag: "/(\\\\d+).*/", tags: ["{1}"]}',
        "refs/tags/20200110-RC2",
        ("20200110",),
    ),
    # metadata-action, `type=sha` (bake example: name/app:sha-90dd603).
    Case(
        f"{MA}, type=sha: sha-90dd603",
        '{branch: /.*/, tags: ["sha-{short_sha}"], latest: false}',
        "refs/heads/master",
        ("sha-90dd603",),
    ),
    # metadata-action, `flavor` input: a suffix on every tag.
    Case(
        f"{MA}, flavor suffix",
        "{tag: /.*/, semver: true, flavor: {suffix: -alpine}}",
        "refs/tags/v1.2.3",
        ("1.2.3-alpine", "1.2-alpine", "1-alpine"),
    ),
    # metadata-action, "Major version zero" note: no `0` tag for 0.x releases.
    Case(
        f"{MA}, Major version zero",
        "{tag: /.*/, semver: true}",
        "refs/tags/v0.4.1",
        ("0.4.1", "0.4"),
    ),
    # The issue's own semver examples.
    Case(
        "issue 4: semver v1.2.3 -> 1.2.3, 1.2, 1, latest",
        "{tag: /^v.*$/, semver: true}",
        "refs/tags/v1.2.3",
        ("1.2.3", "1.2", "1", "latest"),
        latest_from="tags",
    ),
    Case(
        "issue 4: semver v2.0.0-rc.1 -> 2.0.0-rc.1 only",
        "{tag: /^v.*$/, semver: true}",
        "refs/tags/v2.0.0-rc.1",
        ("2.0.0-rc.1",),
        latest_from="tags",
    ),
    Case(
        "issue 2: feature/x -> feature-x",
        '{branch: /.*/, tags: ["{sourceref}"]}',
        "refs/heads/feature/x",
        ("feature-x",),
    ),
    # Docker Hub build rules.
    Case(
        f"{HUB}: the default rule, branch master -> latest",
        "{branch: master, tags: [latest]}",
        "refs/heads/master",
        ("latest",),
    ),
    Case(
        f"{HUB}: source tag /^v([0-9]+)[0-9.]*$/, tag v{{\\1}}: v10.1.2 -> v10",
        '{tag: "/^v([0-9]+)[0-9.]*$/", tags: ["v{\\\\1}"]}',
        "refs/tags/v10.1.2",
        ("v10",),
    ),
    Case(
        f"{HUB}: source branch /^v([0-9.]+)$/, tag v{{\\1}}: branch v1.1 -> v1.1",
        '{branch: "/^v([0-9.]+)$/", tags: ["v{\\\\1}"]}',
        "refs/heads/v1.1",
        ("v1.1",),
    ),
    Case(
        f"{HUB}: tags matching /^[0-9.]+$/ with {{sourceref}}",
        '{tag: "/^[0-9.]+$/"}',
        "refs/tags/1.2.3",
        ("1.2.3",),
    ),
    Case(
        f"{HUB}: a branch rule with no tags gives the branch name ({{sourceref}})",
        "{branch: develop}",
        "refs/heads/develop",
        ("develop",),
    ),
]


def tags_for(case: Case) -> tuple[str, ...]:
    config = parse_config(
        "repositories:\n  - name: name/app\n    forge: github\n    secret: s\n"
        f"    image: localhost:5000/name/app\n    default_branch: {case.default_branch}\n"
        f"    latest_from: {case.latest_from}\n    rules:\n      - {case.rule}\n",
        {},
    )
    event = PushEvent(
        "github", "name/app", case.ref, SHA, clone_url="https://github.com/name/app.git"
    )
    decision = decide(config.repositories[0], event)
    assert decision.skipped is None, decision.to_json()
    [plan] = decision.plans
    return plan.tags


@pytest.mark.parametrize("case", CASES, ids=[c.source for c in CASES])
def test_documented_example(case: Case) -> None:
    assert tags_for(case) == case.tags


def test_metadata_action_schedule_date_pattern() -> None:
    """docker/metadata-action README, type=schedule: {{date 'YYYYMMDD'}} -> 20210326. In
    hookbuild the date is the commit's (UTC), filled in by the worker."""
    committed = datetime(2021, 3, 26, 23, 30, tzinfo=UTC)
    assert final_tags(("{date:%Y%m%d}", "nightly-{date}"), committed, print) == (
        "20210326",
        "nightly-20210326",
    )
