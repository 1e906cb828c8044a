"""Untrusted text made safe to show on a terminal, in a text log or on a page.

A repository name, a ref or a build's output may hold control characters: `ESC]0;...BEL`
retitles a terminal, `ESC[2J` clears it, a carriage return or backspaces overwrite what
was printed before, U+202E reverses what follows. Each character that Python does not
call printable (`str.isprintable`: C0 and C1 controls, DEL, format and separator
characters other than the space) is shown as its escape, as `repr` spells it (`\\x1b`,
`\\r`, `\\u202e`), so that it is seen and does nothing.

Text that is already printable, nearly all of it, costs one `isprintable` call.
"""

from __future__ import annotations

import re

# Select Graphic Rendition: colours and bold, the only escape sequence a build's own
# output may keep (`hookbuild logs` on a terminal).
_SGR = re.compile(r"(\x1b\[[0-9;:]*m)")


def _escaped(char: str) -> str:
    return repr(char)[1:-1]


def printable(text: str, keep: str = "") -> str:
    """`text` with every non-printable character escaped, but those in `keep`."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c in keep else _escaped(c) for c in text)


def printable_lines(text: str) -> str:
    """`printable` for several lines (a traceback, a commit message): newlines and tabs
    stay."""
    return printable(text, "\n\t")


def without_colours(text: str) -> str:
    """`text` without its SGR sequences (colours, bold), for where they cannot show."""
    return _SGR.sub("", text)


def printable_log_line(line: str, keep_colours: bool) -> str:
    """One line of a build's output: tabs stay, colours (SGR) stay if `keep_colours`
    (a terminal) and are dropped if not, every other control is escaped."""
    if line.isprintable():
        return line
    parts = _SGR.split(line)
    for index, part in enumerate(parts):
        parts[index] = (part if keep_colours else "") if index % 2 else printable(part, "\t")
    return "".join(parts)
