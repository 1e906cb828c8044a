"""`hookbuild preview`: what a push would build, and why; the API's answer
(webhooks/preview.py) as text."""

from __future__ import annotations

import json
from typing import Any

import click

from builder.errors import TriggerRequestError
from builder.printable import printable_lines
from runners.cli.options import config_option, echo, load
from webhooks.preview import PLACEHOLDER_SHA
from webhooks.preview import preview as explain

SHA_PLACEHOLDER_NOTE = "no --sha given: <commit> stands for the pushed commit in tags too"


@click.command()
@config_option
@click.option("--repo", "repository", required=True, help="The repository's name in the config.")
@click.option("--ref", required=True, help="refs/heads/NAME, refs/tags/NAME, or a branch name.")
@click.option(
    "--sha",
    default=None,
    help="The commit (default: none; the answer shows <commit> where it would stand).",
)
@click.option(
    "--changed", multiple=True, help="A file the push changed (repeat); checks path filters."
)
@click.option("--message", default=None, help="The head commit's message; checks [skip ci].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
def preview(
    config_path: str,
    repository: str,
    ref: str,
    sha: str | None,
    changed: tuple[str, ...],
    message: str | None,
    as_json: bool,
) -> None:
    """Show what a push would build: per image, the rules that matched and their tags, and
    for each rule that did not match, why. Builds nothing, needs no running service."""
    config = load(config_path, reading_only=True)
    try:
        answer = explain(config, repository, ref, sha, list(changed) if changed else None, message)
    except TriggerRequestError as exc:
        raise click.ClickException(printable_lines(str(exc))) from exc
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    for line in preview_lines(repository, answer, sha_given=sha is not None):
        echo(line)


def without_placeholder(text: str) -> str:
    """A preview made without --sha names `<commit>` where the placeholder commit stood,
    so that no made-up commit looks real (in the heading and in tags like `sha-0123456`)."""
    return text.replace(PLACEHOLDER_SHA, "<commit>").replace(PLACEHOLDER_SHA[:7], "<commit>")


def preview_lines(repository: str, answer: dict[str, Any], sha_given: bool) -> list[str]:
    """`hookbuild preview`'s answer as text (unescaped: the caller prints it with `_echo`)."""
    shown = (lambda text: text) if sha_given else without_placeholder
    lines = [f"{repository} {answer['ref']} at {shown(answer['sha'][:7])}"]
    if not sha_given:
        lines.append(f"  {SHA_PLACEHOLDER_NOTE}")
    if answer["skipped"]:
        lines.append(f"  builds nothing: {answer['skipped']}")
    for image in answer["images"]:
        lines.append(f"  {image['image']}: " + shown(", ".join(image["tags"]) or "no tags"))
        for rule in image["rules"]:
            mark = "+" if rule["matched"] else "-"
            detail = ", ".join(rule["tags"]) if rule["matched"] else rule["why"]
            lines.append(f"    {mark} {rule['rule']}: {shown(detail)}")
    if answer.get("note"):
        lines.append(f"  note: {answer['note']}")
    return lines
