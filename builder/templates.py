"""Tag templates (`{short_sha}`, `release-{1}`, `{\\1}`, `{name}`) and Docker tag hygiene."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# Docker's tag grammar: [\w][\w.-]{0,127}
_VALID_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_INVALID_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")

REF_VARIABLES = frozenset({"branch", "tag", "sourceref", "sha", "short_sha"})


class TemplateError(ValueError):
    """A template that names a variable no push can provide."""


@dataclass(frozen=True)
class TemplateContext:
    """The values a template may use for one push and one rule match."""

    branch: str
    tag: str
    sha: str
    groups: tuple[str, ...]
    named: Mapping[str, str]

    def lookup(self, name: str) -> str:
        if name in ("branch", "tag"):
            return self.branch if name == "branch" else self.tag
        if name == "sourceref":
            return self.branch or self.tag
        if name == "sha":
            return self.sha
        if name == "short_sha":
            return self.sha[:7]
        index = _group_index(name)
        if index is not None:
            return self.groups[index - 1] if index <= len(self.groups) else ""
        return self.named.get(name, "")


def _group_index(name: str) -> int | None:
    """`1` and `\\1` (Docker Hub's spelling) both name the first regex group."""
    digits = name[1:] if name.startswith("\\") else name
    if len(digits) == 1 and digits.isdigit() and digits != "0":
        return int(digits)
    return None


def check_template(template: str, group_count: int, group_names: frozenset[str]) -> None:
    """Raise `TemplateError` if the template uses a variable this rule cannot fill."""
    if template.count("{") != template.count("}"):
        raise TemplateError(f"unbalanced braces in {template!r}")
    for name in _PLACEHOLDER.findall(template):
        if name in REF_VARIABLES or name in group_names:
            continue
        index = _group_index(name)
        if index is not None:
            if index > group_count:
                raise TemplateError(
                    f"{{{name}}} in {template!r} needs regex group {index}, "
                    f"but the pattern has {group_count}"
                )
            continue
        known = ", ".join([*sorted(REF_VARIABLES | group_names), "1..9"])
        raise TemplateError(
            f"unknown template variable {{{name}}} in {template!r} (known: {known})"
        )


def render(template: str, context: TemplateContext) -> str:
    return _PLACEHOLDER.sub(lambda m: context.lookup(m.group(1)), template)


def is_valid_tag(tag: str) -> bool:
    return bool(_VALID_TAG.match(tag))


def to_docker_tag(raw: str) -> str:
    """Make any string a valid Docker tag: `feature/x` -> `feature-x`; '' if nothing is left."""
    tag = _INVALID_CHARS.sub("-", raw).lstrip(".-")
    return tag[:128]
