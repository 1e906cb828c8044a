"""What the config model and the build need to know of a forge, and nothing else.

The forges themselves are the drivers in `webhooks/forges/` (one module a forge, listed in
its registry). `builder` must not import `webhooks`, so it states here the little it reads
of a forge (the `Forge` protocol, which every driver satisfies), and whoever loads a config
hands it the registry (`parse_config(..., forges=...)`). A repository keeps a `ForgeFacts`
copy of its forge's: plain data, so a config pickled by runners/configload.py stays equal to
itself and a worker needs no driver. Pure: no I/O.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from builder.configerrors import shown


class Forge(Protocol):
    """A forge's source role, as far as the config and the worker need it."""

    # As written in the config's `forge:` and in `/hooks/{name}`.
    name: str
    # For messages: "GitHub", "Bitbucket Server".
    title: str
    # The basic-auth user name the forge takes with an access token as the password
    # (`clone_token` without `clone_username`).
    token_username: str
    # Where the hosted forge serves a repository (`{name}`: its full name), for a fetch with
    # no payload to read a clone URL from (trigger URLs, `hookbuild build`); None when the
    # forge is self-hosted and its address cannot be guessed.
    hosted_clone_url: str | None
    # The hosts a payload's clone URL may name when the config gives no `clone_hosts`.
    hosted_clone_hosts: tuple[str, ...]


# The registry a config is validated against: every forge by its name.
Forges = Mapping[str, Forge]


@dataclass(frozen=True)
class ForgeFacts:
    """One forge's `Forge` facts, copied out of its driver when a config is loaded."""

    name: str
    title: str
    token_username: str
    hosted_clone_url: str | None
    hosted_clone_hosts: tuple[str, ...]

    @classmethod
    def of(cls, forge: Forge) -> ForgeFacts:
        return cls(
            name=forge.name,
            title=forge.title,
            token_username=forge.token_username,
            hosted_clone_url=forge.hosted_clone_url,
            hosted_clone_hosts=tuple(forge.hosted_clone_hosts),
        )

    def clone_url(self, repository: str) -> str | None:
        template = self.hosted_clone_url
        return template.format(name=repository) if template else None


# How alike a misspelled forge and a real one must be (difflib's ratio) to be suggested:
# the config's other did-you-means use the same (builder/configerrors.py).
_CUTOFF = 0.7


def forge_problem(value: Any, forges: Collection[str]) -> str | None:
    """Why `value` is not the name of one of `forges` (worded as the config's other
    choices are); None when it is one."""
    if isinstance(value, str) and value in forges:
        return None
    names = [repr(name) for name in forges] or ["a registered forge (none is)"]
    expected = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    message = f"unknown forge {shown(value)}; expected {expected}"
    found = difflib.get_close_matches(str(value), list(forges), n=1, cutoff=_CUTOFF)
    return f"{message}; did you mean {found[0]!r}?" if found else message
