"""Match a push against a repository's rules: the plans to build, or why nothing builds.

Pure functions over frozen data; no I/O. Rules of one repository that match the same push
with the same dockerfile, context and build args share one build that gets all their tags
(build once, tag many).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from builder.config import RepositoryConfig, RuleConfig
from builder.events import PushEvent
from builder.plan import BuildPlan
from builder.templates import TemplateContext, is_valid_tag, render, to_docker_tag


@dataclass(frozen=True)
class RuleOutcome:
    rule: str
    matched: bool
    why: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    """What one push means for one repository: plans to build, or the reason for none."""

    plans: tuple[BuildPlan, ...]
    skipped: str | None
    rules: tuple[RuleOutcome, ...] = ()


def decide(repository: RepositoryConfig, event: PushEvent) -> Decision:
    if event.deleted:
        kind = event.ref_type if event.ref_type != "other" else "ref"
        return Decision((), f"{kind} deleted: {event.ref}")
    if event.ref_type == "other":
        return Decision((), f"{event.ref} is neither a branch nor a tag")
    clone_url = repository.clone_url or event.clone_url
    if not clone_url:
        return Decision((), "no clone URL: the payload has none and the config sets no clone_url")

    outcomes: list[RuleOutcome] = []
    groups: dict[tuple[str, str, tuple[tuple[str, str], ...]], _Group] = {}
    for rule in repository.rules:
        outcome, tags, notes = _apply(rule, event)
        outcomes.append(outcome)
        if not outcome.matched:
            continue
        dockerfile = rule.dockerfile or repository.dockerfile
        context = rule.context or repository.context
        build_args = {**repository.build_args, **(rule.build_args or {})}
        key = (dockerfile, context, tuple(sorted(build_args.items())))
        group = groups.setdefault(key, _Group(dockerfile, context, build_args))
        group.add(tags, notes)

    if not groups:
        return Decision((), f"no rule matches {event.ref}", tuple(outcomes))
    plans = tuple(
        BuildPlan(
            forge=event.forge,
            repository=repository.name,
            clone_url=clone_url,
            ref=event.ref,
            sha=event.sha,
            image=repository.image,
            tags=tuple(group.tags),
            dockerfile=group.dockerfile,
            context=group.context,
            build_args=group.build_args,
            timeout=repository.timeout,
            message=event.message,
            pusher=event.pusher,
            delivery_id=event.delivery_id,
            notes=tuple(group.notes),
        )
        for group in groups.values()
        if group.tags
    )
    if not plans:
        return Decision((), "every computed tag was empty", tuple(outcomes))
    return Decision(plans, None, tuple(outcomes))


class _Group:
    def __init__(self, dockerfile: str, context: str, build_args: Mapping[str, str]) -> None:
        self.dockerfile, self.context, self.build_args = dockerfile, context, dict(build_args)
        self.tags: list[str] = []
        self.notes: list[str] = []

    def add(self, tags: list[str], notes: list[str]) -> None:
        self.tags.extend(t for t in tags if t not in self.tags)
        self.notes.extend(notes)


def _apply(rule: RuleConfig, event: PushEvent) -> tuple[RuleOutcome, list[str], list[str]]:
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
        return (
            RuleOutcome(rule.describe(), False, f"{event.ref_name!r} {how} {pattern.source}"),
            [],
            [],
        )
    context = TemplateContext(
        branch=event.branch,
        tag=event.tag,
        sha=event.sha,
        groups=found.groups if found else (),
        named=found.named if found else {},
    )
    tags: list[str] = []
    notes: list[str] = []
    for template in rule.tags:
        raw = render(template, context)
        tag = raw if is_valid_tag(raw) else to_docker_tag(raw)
        if not tag:
            notes.append(
                f"tag template {template!r} gave {raw!r}, which has no valid tag in it: skipped"
            )
            continue
        if tag != raw:
            notes.append(f"tag {raw!r} is not a valid Docker tag: using {tag!r}")
        if tag not in tags:
            tags.append(tag)
    return RuleOutcome(rule.describe(), True, "matched", tuple(tags)), tags, notes
