"""Where a build's log lines go (`LineSink`), and whole lines from output that arrives in
chunks cut anywhere, in linear time.

The pipeline hands a sink to every part that says something in the log: the source fetch,
the engine's build and push streams, BuildKit's progress, the publisher and the retries.

A build's output comes in pieces (the engine's `stream` chunks, BuildKit's log messages)
that cut lines anywhere. Gluing each piece to the unfinished line and splitting again
(`partial + chunk`) costs the line's length at every piece: a 25 MB line with no newline
pinned a CPU for minutes. Here each character is looked at once, and a line longer than
`max_chars` keeps its first `max_chars` only, with the cut said at its end.
"""

from __future__ import annotations

from collections.abc import Callable

LineSink = Callable[[str], None]

DEFAULT_MAX_LINE_CHARS = 64 * 1024


class LineAssembler:
    def __init__(self, max_chars: int = DEFAULT_MAX_LINE_CHARS) -> None:
        self.max_chars = max_chars
        self._parts: list[str] = []
        self._kept = 0  # characters of the unfinished line in `_parts`
        self._dropped = 0  # characters of it past `max_chars`, dropped

    def feed(self, text: str) -> list[str]:
        """The lines that `text` finishes (without their newline)."""
        lines: list[str] = []
        start = 0
        while True:
            end = text.find("\n", start)
            if end < 0:
                self._add(text, start, len(text))
                return lines
            self._add(text, start, end)
            lines.append(self._take())
            start = end + 1

    def rest(self) -> str | None:
        """The unfinished line, ended here (the output's end); None when there is none."""
        if not self._kept and not self._dropped:
            return None
        return self._take()

    def _add(self, text: str, start: int, end: int) -> None:
        room = self.max_chars - self._kept
        keep = min(end - start, max(room, 0))
        if keep:
            self._parts.append(text[start : start + keep])
            self._kept += keep
        self._dropped += end - start - keep

    def _take(self) -> str:
        line = "".join(self._parts).removesuffix(
            "\r"
        )  # a CRLF's CR, in this piece or an earlier one
        if self._dropped:
            line += f" [line cut: {self._dropped} more characters not kept]"
        self._parts, self._kept, self._dropped = [], 0, 0
        return line
