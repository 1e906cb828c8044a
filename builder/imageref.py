"""Image names and tags as a registry accepts them, checked when the config is read.

The grammar is the Distribution project's (github.com/distribution/reference, regexp.go and
reference.go), which dockerd and registries apply on push: a name that breaks it would pass
`hookbuild check` and fail every build with "repository name must be lowercase" or "invalid
reference format". Written here from that grammar, not vendored:

    name      := [domain '/'] component ('/' component)*      (the path at most 255 chars)
    domain    := host [':' port]
    host      := label ('.' label)* | '[' ipv6 ']'           (a label may have capitals)
    component := [a-z0-9]+ (separator [a-z0-9]+)*
    separator := '.' | '_' | '__' | '-'+
    tag       := [A-Za-z0-9_] [A-Za-z0-9_.-]{0,127}
"""

from __future__ import annotations

import re

_ALPHANUMERIC = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_COMPONENT = rf"{_ALPHANUMERIC}(?:{_SEPARATOR}{_ALPHANUMERIC})*"
_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"

_NAME = re.compile(rf"(?:({_DOMAIN})/)?({_COMPONENT}(?:/{_COMPONENT})*)")
_COMPONENT_ONLY = re.compile(_COMPONENT)
_DOMAIN_ONLY = re.compile(_DOMAIN)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")

# reference.go's RepositoryNameTotalLengthMax, which it applies to the path after the domain.
PATH_MAX = 255
TAG_MAX = 128

COMPONENT_RULE = "lower-case letters and digits, joined by one '.', one or two '_', or dashes"
TAG_RULE = "a tag is letters, digits, '_', '.' and '-', at most 128, and starts with no '.' or '-'"


def image_name_problem(name: str) -> str | None:
    """Why a registry would refuse `name` (given without a tag); None when it takes it."""
    match = _NAME.fullmatch(name)
    if match is not None:
        path = match.group(2)
        if len(path) > PATH_MAX:
            return f"image {name!r}: its path is {len(path)} characters, more than {PATH_MAX}"
        return None
    domain, path = _split_domain(name)
    if domain is not None and not _DOMAIN_ONLY.fullmatch(domain):
        return f"image {name!r}: registry {domain!r} is not a host name or address with a port"
    for component in path.split("/"):
        if _COMPONENT_ONLY.fullmatch(component):
            continue
        if _COMPONENT_ONLY.fullmatch(component.lower()):
            return (
                f"image {name!r} has capitals in {component!r}; a registry takes only "
                "lower-case repository names"
            )
        shown = component or "(empty)"
        return f"image {name!r}: path component {shown!r} breaks the rule: {COMPONENT_RULE}"
    return f"image {name!r} is not a valid image reference"


def _split_domain(name: str) -> tuple[str | None, str]:
    """The registry part, as Docker decides it (normalize.go, splitDockerDomain): the first
    part when it has a '.' or ':', is `localhost`, or has a capital (no path may have one)."""
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first.lower() != first):
        return first, rest
    return None, name


def is_literal_tag_valid(tag: str) -> bool:
    return _TAG.fullmatch(tag) is not None


def tag_problem(tag: str, what: str = "tag", leading: bool = True) -> str | None:
    """Why `tag`, given as written (no placeholder), is no tag a registry takes; None if it
    is one. `what` names it in the message; `leading`: it starts the tag (a flavor's
    suffix does not)."""
    if leading and is_literal_tag_valid(tag):
        return None
    if not tag:
        return f"a {what} must not be empty"
    if len(tag) > TAG_MAX:
        return f"{what} {tag[:40]!r}… is {len(tag)} characters; {TAG_RULE}"
    bad = sorted({c for c in tag if not (c.isascii() and (c.isalnum() or c in "_.-"))})
    if bad:
        shown = " and ".join(repr(c) for c in bad)
        return f"{what} {tag!r} has {shown}; {TAG_RULE}"
    if leading:
        return f"{what} {tag!r} starts with {tag[0]!r}; {TAG_RULE}"
    return None
