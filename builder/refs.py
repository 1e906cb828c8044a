"""Refs and commit ids as a payload may give them, checked before anything acts on them.

`check_ref` follows `git check-ref-format` (a full ref: `refs/...`), so a ref that git
itself would refuse, or that would read as an option or crash a later step (a NUL byte),
is stopped at intake. One regular expression: the receiver calls it on every delivery.
"""

from __future__ import annotations

import re

MAX_REF_LENGTH = 512  # forges refuse far shorter refs; a tag can hold at most 128

# What `git check-ref-format` refuses anywhere in a ref: control characters, space and
# `~^:?*[\`; `..`, `@{`, `//`; a component that starts with `.` or ends with `.lock`; a
# ref that ends with `/` or `.`.
_BAD_REF = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//|/\.|\.lock(?:/|$)|[/.]$")
_SHA = re.compile(r"(?:[0-9a-f]{40}|[0-9a-f]{64})")


def ref_problem(ref: str) -> str | None:
    """Why `ref` is not a full ref that git accepts; None when it is one."""
    if len(ref) > MAX_REF_LENGTH:
        return f"ref is longer than {MAX_REF_LENGTH} characters"
    if not ref.startswith("refs/") or len(ref) == 5:
        return f"ref {ref[:80]!r} is not a full ref (refs/heads/..., refs/tags/...)"
    if _BAD_REF.search(ref):
        return f"ref {ref[:80]!r} is not a valid git ref name (git check-ref-format)"
    return None


def is_sha(value: str) -> bool:
    """A full commit id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits."""
    return _SHA.fullmatch(value) is not None
