"""Branch and tag patterns: a literal name, or `/regex/` matched against the whole name.

Regexes run on RE2 (linear time), so a user's pattern cannot hang the receiver or a worker
with catastrophic backtracking; a pattern RE2 refuses (backreferences, lookaround) is a
config error that says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # we report the error ourselves, with its config location


class PatternError(ValueError):
    """A `/regex/` that RE2 cannot compile."""


@dataclass(frozen=True)
class RefMatch:
    """A successful match: positional and named regex groups (empty for literals)."""

    groups: tuple[str, ...] = ()
    named: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RefPattern:
    """A compiled pattern; `source` is what the user wrote."""

    source: str
    _regex: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def parse(cls, source: str) -> RefPattern:
        if len(source) >= 2 and source.startswith("/") and source.endswith("/"):
            body = source[1:-1]
            try:
                regex = re2.compile(body, _OPTIONS)
            except re2.error as exc:
                reason = (
                    exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
                )
                raise PatternError(
                    f"regex {source} is refused: {reason} (patterns use RE2 syntax, which has "
                    "no backreferences or lookaround so that matching always runs in linear time)"
                ) from exc
            return cls(source, regex)
        return cls(source, None)

    @property
    def is_regex(self) -> bool:
        return self._regex is not None

    @property
    def group_count(self) -> int:
        return int(self._regex.groups) if self._regex is not None else 0

    @property
    def group_names(self) -> frozenset[str]:
        return frozenset(self._regex.groupindex) if self._regex is not None else frozenset()

    def match(self, name: str) -> RefMatch | None:
        if self._regex is None:
            return RefMatch() if name == self.source else None
        found = self._regex.fullmatch(name)
        if found is None:
            return None
        groups = tuple(g or "" for g in found.groups())
        named = {k: v or "" for k, v in found.groupdict().items()}
        return RefMatch(groups, named)
