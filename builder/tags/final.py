"""A build's final tags: `{date...}` filled with the commit's date, each made a valid tag."""

from __future__ import annotations

from datetime import datetime

from builder.logsink import LineSink
from builder.tags.templates import fill_dates, has_deferred_date, is_valid_tag, to_docker_tag


def final_tags(tags: tuple[str, ...], committed_at: datetime, say: LineSink) -> tuple[str, ...]:
    """Fill `{date...}` with the commit's date, and make each result a valid tag."""
    return final_tags_made_valid(tags, committed_at, say)[0]


def final_tags_made_valid(
    tags: tuple[str, ...], committed_at: datetime, say: LineSink, sanitised: tuple[str, ...] = ()
) -> tuple[tuple[str, ...], frozenset[str]]:
    """`final_tags`, and which of them were made valid (those of `sanitised`, and dated
    tags that were not valid once filled in): builder.tags.owners."""
    done: list[str] = []
    made_valid = set(sanitised)
    for tag in tags:
        if has_deferred_date(tag):
            filled = fill_dates(tag, committed_at)
            tag = filled if is_valid_tag(filled) else to_docker_tag(filled)
            if not tag:
                say(f"==> note: tag {filled!r} has no valid tag in it: skipped")
                continue
            if tag != filled:
                made_valid.add(tag)
        if tag not in done:
            done.append(tag)
    return tuple(done), frozenset(made_valid)
