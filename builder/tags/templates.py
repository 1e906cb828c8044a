"""Tag templates (`{short_sha}`, `release-{1}`, `{\\1}`, `{name}`, `{major}.{minor}`,
`nightly-{date:%Y%m%d}`) and Docker tag hygiene."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import semver

# Docker's tag grammar: [\w][\w.-]{0,127}
_VALID_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_INVALID_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

REF_VARIABLES = frozenset({"branch", "tag", "sourceref", "sha", "short_sha"})
SEMVER_VARIABLES = frozenset({"version", "major", "minor", "patch", "prerelease"})
DEFAULT_DATE_FORMAT = "%Y%m%d"


class TemplateError(ValueError):
    """A template that names a variable no push can provide."""


@dataclass(frozen=True)
class TemplateContext:
    """The values a template may use for one push and one rule match."""

    branch: str
    tag: str
    sha: str
    groups: tuple[str, ...] = ()
    named: Mapping[str, str] = field(default_factory=dict)
    version: semver.Version | None = None
    committed_at: datetime | None = None  # None: `{date}` stays for the worker to fill in


class NeedsSemver(Exception):
    """The template uses `{version}` and friends, but the ref is no semver."""


def _group_index(name: str) -> int | None:
    """`1` and `\\1` (Docker Hub's spelling) both name the first regex group."""
    digits = name[1:] if name.startswith("\\") else name
    if len(digits) == 1 and digits.isdigit() and digits != "0":
        return int(digits)
    return None


def _date_format(name: str) -> str | None:
    if name == "date":
        return DEFAULT_DATE_FORMAT
    if name.startswith("date:"):
        return name[5:]
    return None


def check_template(template: str, group_count: int, group_names: frozenset[str]) -> None:
    """Raise `TemplateError` if the template uses a variable this rule cannot fill."""
    if template.count("{") != template.count("}"):
        raise TemplateError(f"unbalanced braces in {template!r}")
    for name in _PLACEHOLDER.findall(template):
        if name in REF_VARIABLES or name in SEMVER_VARIABLES or name in group_names:
            continue
        date_format = _date_format(name)
        if date_format is not None:
            if not date_format or "%" not in date_format:
                raise TemplateError(
                    f"{{{name}}} in {template!r} needs a strftime format, e.g. %Y%m%d"
                )
            continue
        index = _group_index(name)
        if index is not None:
            if index > group_count:
                raise TemplateError(
                    f"{{{name}}} in {template!r} needs regex group {index}, "
                    f"but the pattern has {group_count}"
                )
            continue
        known = ", ".join(
            [*sorted(REF_VARIABLES | SEMVER_VARIABLES | group_names), "date:FMT", "1..9"]
        )
        raise TemplateError(
            f"unknown template variable {{{name}}} in {template!r} (known: {known})"
        )


def _lookup(name: str, context: TemplateContext) -> str:
    if name in context.named:
        return context.named[name]  # the rule's own group: named on purpose, so it wins
    if name in ("branch", "tag"):
        return context.branch if name == "branch" else context.tag
    if name == "sourceref":
        return context.branch or context.tag
    if name == "sha":
        return context.sha
    if name == "short_sha":
        return context.sha[:7]
    if name in SEMVER_VARIABLES:
        version = context.version
        if version is None:
            raise NeedsSemver(name)
        if name == "version":
            return str(version)
        return str(getattr(version, name) or "")
    date_format = _date_format(name)
    if date_format is not None:
        if context.committed_at is None:
            return "{" + name + "}"
        return context.committed_at.astimezone(UTC).strftime(date_format)
    index = _group_index(name)
    if index is not None:
        return context.groups[index - 1] if index <= len(context.groups) else ""
    return context.named.get(name, "")


def render(template: str, context: TemplateContext) -> str:
    """Fill in the template; raises `NeedsSemver` when it needs a version the ref lacks."""
    return _PLACEHOLDER.sub(lambda m: _lookup(m.group(1), context), template)


def has_deferred_date(tag: str) -> bool:
    """True while `{date...}` waits for the commit's date (known once the worker fetched it)."""
    return any(_date_format(name) is not None for name in _PLACEHOLDER.findall(tag))


def fill_dates(tag: str, committed_at: datetime) -> str:
    return _PLACEHOLDER.sub(
        lambda m: (
            committed_at.astimezone(UTC).strftime(fmt)
            if (fmt := _date_format(m.group(1))) is not None
            else m.group(0)
        ),
        tag,
    )


def has_placeholder(template: str) -> bool:
    """False for a literal tag (`latest`, `stable`), which is pushed as written."""
    return _PLACEHOLDER.search(template) is not None


def is_valid_tag(tag: str) -> bool:
    return bool(_VALID_TAG.match(tag))


def to_docker_tag(raw: str) -> str:
    """Make any string a valid Docker tag: `feature/x` -> `feature-x`; '' if nothing is left."""
    tag = _INVALID_CHARS.sub("-", raw).lstrip(".-")
    return tag[:128]
