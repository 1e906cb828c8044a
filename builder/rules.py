"""Match a push against a repository's images and rules: the plans to build, and why.

Pure functions over frozen data; no I/O. Per image, rules that match the same push with the
same build settings share one build that gets all their tags (build once, tag many). Every
rule says why it matched or not, for `hookbuild preview` and the recorded deliveries.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import semver

from builder.config import RepositoryConfig
from builder.events import PushEvent
from builder.paths_filter import path_filter_reason
from builder.plan import BuildPlan
from builder.ruleconfig import ImageConfig, RuleConfig
from builder.tags.kinds import TagKind, classify, is_partial_version
from builder.tags.templates import (
    NeedsSemver,
    TemplateContext,
    has_deferred_date,
    is_valid_tag,
    render,
    to_docker_tag,
)
from builder.tags.versions import is_release, parse_version

SKIP_MARKERS = ("[skip ci]", "[ci skip]", "[skip build]", "[build skip]")


@dataclass(frozen=True)
class RuleOutcome:
    rule: str
    matched: bool
    why: str
    tags: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "matched": self.matched,
            "why": self.why,
            "tags": list(self.tags),
        }


@dataclass(frozen=True)
class ImageOutcome:
    image: str
    tags: tuple[str, ...]
    rules: tuple[RuleOutcome, ...]
    skipped: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "tags": list(self.tags),
            "rules": [r.to_json() for r in self.rules],
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class Decision:
    """What one push means for one repository: plans to build, or the reason for none."""

    plans: tuple[BuildPlan, ...]
    skipped: str | None
    images: tuple[ImageOutcome, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"images": [i.to_json() for i in self.images], "skipped": self.skipped}


@dataclass
class _Tag:
    name: str
    kind: TagKind
    overwrite: bool
    sanitised: bool = False


@dataclass
class _Group:
    """Rules of one image that share build settings: one build, all their tags."""

    dockerfile: str
    context: str
    build_args: dict[str, str]
    target: str | None
    labels: dict[str, str]
    paths: tuple[str, ...]
    ignore_paths: tuple[str, ...]
    cancel_superseded: bool
    timeout: int
    tags: dict[str, _Tag] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def decide(
    repository: RepositoryConfig, event: PushEvent, changed: Sequence[str] | None = None
) -> Decision:
    """`changed`: the files the push changed, when known (preview); else the worker checks
    the path filters after fetching."""
    if event.deleted:
        kind = event.ref_type if event.ref_type != "other" else "ref"
        return Decision((), f"{kind} deleted: {event.ref}")
    if event.ref_type == "other":
        return Decision((), f"{event.ref} is neither a branch nor a tag")
    message = (event.message or "").lower()
    marker = next((m for m in SKIP_MARKERS if m in message), None)
    if marker:
        return Decision((), f"{marker} in the head commit message")
    clone_url = repository.clone_url or event.clone_url
    if not clone_url:
        return Decision((), "no clone URL: the payload has none and the config sets no clone_url")
    if problem := repository.clone_url_problem(clone_url):
        return Decision((), f"refused: {problem}")

    default_branch = repository.default_branch or event.default_branch or "main"
    version = parse_version(event.tag) if event.ref_type == "tag" else None
    plans: list[BuildPlan] = []
    images: list[ImageOutcome] = []
    for image in repository.all_images:
        groups, outcome = _decide_image(repository, image, event, version, default_branch, changed)
        images.append(outcome)
        for group in groups:
            if group.tags:
                plans.append(
                    _plan(repository, image, event, clone_url, default_branch, version, group)
                )
    if not plans:
        reasons = sorted({i.skipped for i in images if i.skipped})
        reason = "; ".join(reasons) if reasons else f"no rule matches {event.ref}"
        return Decision((), reason, tuple(images))
    return Decision(tuple(plans), None, tuple(images))


def _decide_image(
    repository: RepositoryConfig,
    image: ImageConfig,
    event: PushEvent,
    version: semver.Version | None,
    default_branch: str,
    changed: Sequence[str] | None,
) -> tuple[list[_Group], ImageOutcome]:
    outcomes: list[RuleOutcome] = []
    groups: dict[tuple[Any, ...], _Group] = {}
    for rule in image.rules:
        outcome, tags, notes = _apply(rule, event, version, default_branch, repository.latest_from)
        paths = tuple(rule.paths if rule.paths is not None else image.paths)
        ignore = tuple(rule.ignore_paths if rule.ignore_paths is not None else image.ignore_paths)
        if outcome.matched and changed is not None:
            reason = path_filter_reason(changed, paths, ignore)
            if reason:
                outcome = RuleOutcome(outcome.rule, False, reason)
        outcomes.append(outcome)
        if not outcome.matched:
            continue
        build_args = {**(image.build_args or {}), **(rule.build_args or {})}
        labels = {**(image.labels or {}), **(rule.labels or {})}
        group = _Group(
            dockerfile=rule.dockerfile or image.dockerfile or "Dockerfile",
            context=rule.context or image.context or ".",
            build_args=build_args,
            target=rule.target or image.target,
            labels=labels,
            paths=paths if changed is None else (),
            ignore_paths=ignore if changed is None else (),
            cancel_superseded=(rule.cancel or _default_cancel(event)) == "superseded",
            timeout=rule.timeout or repository.timeout,
        )
        key = (
            group.dockerfile,
            group.context,
            tuple(sorted(build_args.items())),
            group.target,
            tuple(sorted(labels.items())),
            group.paths,
            group.ignore_paths,
            group.cancel_superseded,
            group.timeout,
        )
        group = groups.setdefault(key, group)
        for tag in tags:
            group.tags.setdefault(tag.name, tag)
        group.notes.extend(notes)
    _one_build_per_tag(list(groups.values()))
    all_tags = tuple(dict.fromkeys(t for g in groups.values() for t in g.tags))
    skipped = None
    if not groups:
        path_reasons = [o.why for o in outcomes if o.why.startswith("no changed file")]
        skipped = path_reasons[0] if path_reasons else f"no rule matches {event.ref}"
    return list(groups.values()), ImageOutcome(image.name, all_tags, tuple(outcomes), skipped)


def _one_build_per_tag(groups: list[_Group]) -> None:
    """Rules that match one push with different build settings make several builds; a tag
    that more than one of them computes (`latest` by default) goes to the first rule's
    build only, so two builds never race to push it. Each other build says so."""
    given: set[str] = set()
    for group in groups:
        for name in [name for name in group.tags if name in given]:
            del group.tags[name]
            group.notes.append(f"{name} is an earlier rule's tag, built with other settings")
        given.update(group.tags)


def _plan(
    repository: RepositoryConfig,
    image: ImageConfig,
    event: PushEvent,
    clone_url: str,
    default_branch: str,
    version: semver.Version | None,
    group: _Group,
) -> BuildPlan:
    return BuildPlan(
        forge=event.forge,
        repository=repository.name,
        clone_url=clone_url,
        ref=event.ref,
        sha=event.sha,
        image=image.name,
        tags=tuple(group.tags),
        dockerfile=group.dockerfile,
        context=group.context,
        build_args=group.build_args,
        timeout=group.timeout,
        message=event.message,
        pusher=event.pusher,
        delivery_id=event.delivery_id,
        notes=tuple(group.notes),
        before=event.before,
        default_branch=default_branch,
        target=group.target,
        labels=group.labels,
        oci_labels=image.oci_labels is not False,
        builder=image.builder or "auto",
        network=image.network or "default",
        tag_kinds={t.name: t.kind.value for t in group.tags.values()},
        overwrite=tuple(t.name for t in group.tags.values() if t.overwrite),
        version=str(version) if version is not None else None,
        paths=group.paths,
        ignore_paths=group.ignore_paths,
        cancel_superseded=group.cancel_superseded,
        sanitised=tuple(t.name for t in group.tags.values() if t.sanitised),
    )


def _default_cancel(event: PushEvent) -> str:
    """A newer push makes an older branch build pointless; every tag is a release."""
    return "superseded" if event.ref_type == "branch" else "never"


def _apply(
    rule: RuleConfig,
    event: PushEvent,
    version: semver.Version | None,
    default_branch: str,
    latest_from: str,
) -> tuple[RuleOutcome, list[_Tag], list[str]]:
    if rule.source_type != "any" and rule.source_type != event.ref_type:
        return (
            RuleOutcome(rule.describe(), False, f"{event.ref} is not a {rule.source_type}"),
            [],
            [],
        )
    pattern = rule.pattern
    found = pattern.match(event.ref_name) if pattern is not None else None
    if pattern is not None and found is None:
        how = "does not match" if pattern.is_regex else "is not"
        why = f"{event.ref_name!r} {how} {pattern.source}"
        return RuleOutcome(rule.describe(), False, why), [], []
    if rule.semver and version is None:
        why = f"{event.ref_name!r} is not a semantic version (semver: true)"
        return RuleOutcome(rule.describe(), False, why), [], []

    context = TemplateContext(
        branch=event.branch,
        tag=event.tag,
        sha=event.sha,
        groups=found.groups if found else (),
        named=found.named if found else {},
        version=version,
    )
    wanted: list[tuple[str, str, TagKind]] = []  # (template, raw tag, kind)
    notes: list[str] = []
    for template in rule.tag_templates:
        kind = classify(template, event.ref_type)
        try:
            raw = render(template, context)
        except NeedsSemver as missing:
            notes.append(f"tag template {template!r} needs a semver ref for {{{missing}}}: skipped")
            continue
        if version is not None and version.prerelease and is_partial_version(template):
            # As metadata-action: a pre-release only extends its full version, never `1.2`.
            raw, kind = str(version), TagKind.RELEASE
        wanted.append((template, raw, kind))
    if rule.semver and version is not None:
        wanted.append(("{version}", str(version), TagKind.RELEASE))
        if not version.prerelease:  # a pre-release gets only its full version
            wanted.append(("{major}.{minor}", f"{version.major}.{version.minor}", TagKind.MOVING))
            if version.major > 0:  # as metadata-action: no `0` tag for 0.x releases
                wanted.append(("{major}", str(version.major), TagKind.MOVING))
    if _gets_latest(rule, event, version, default_branch, latest_from):
        wanted.append(("latest", "latest", TagKind.MOVING))

    flavor = rule.flavor
    tags: list[_Tag] = []
    for template, raw, kind in wanted:
        if flavor is not None:
            raw = f"{flavor.prefix}{raw}{flavor.suffix}"
        tag = raw if is_valid_tag(raw) or has_deferred_date(raw) else to_docker_tag(raw)
        if not tag:
            notes.append(
                f"tag template {template!r} gave {raw!r}, which has no valid tag in it: skipped"
            )
            continue
        if tag != raw:
            notes.append(f"tag {raw!r} is not a valid Docker tag: using {tag!r}")
        if all(t.name != tag for t in tags):
            tags.append(_Tag(tag, kind, rule.overwrite, sanitised=tag != raw))
    outcome = RuleOutcome(rule.describe(), True, "matched", tuple(t.name for t in tags))
    return outcome, tags, notes


def _gets_latest(
    rule: RuleConfig,
    event: PushEvent,
    version: semver.Version | None,
    default_branch: str,
    latest_from: str,
) -> bool:
    if rule.latest is not True and rule.latest is not False:  # "auto"
        if latest_from == "tags":
            return event.ref_type == "tag" and is_release(version)
        return event.ref_type == "branch" and event.branch == default_branch
    return bool(rule.latest)
