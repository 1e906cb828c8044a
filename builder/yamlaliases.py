"""Bound what YAML aliases make of a config, before anything walks it.

PyYAML builds an alias (`*name`) as the very object its anchor made, so loading a
"billion laughs" file (ten levels of nine aliases each) takes microseconds; every walk
after it (`${VAR}` expansion, validation) meets each value as often as aliases repeat
it: 10^10 times, for minutes and gigabytes. Here the tree is counted once per distinct
object, the repeats added up, not visited, and a tree that aliases make much bigger than
what is written is refused; so is an alias inside its own anchor, which makes a cycle.
Anchors, aliases and `<<:` merges of ordinary size stay.
"""

from __future__ import annotations

from typing import Any

from builder.errors import ConfigProblem

# How many values aliases may make of the document: this many times what is written
# (an anchor reused in every repository stays well inside), and never less than this floor.
GROWTH = 10
FLOOR = 100_000


def _children(node: dict[Any, Any] | list[Any]) -> list[Any]:
    return list(node.values()) if isinstance(node, dict) else node


def alias_problem(tree: Any) -> ConfigProblem | None:
    """Why aliases make `tree` too big (or cyclic) to use; None when they do not."""
    sizes: dict[int, int] = {}  # id of a container -> its values, every repeat counted
    in_progress: set[int] = set()
    written = 0
    stack: list[tuple[Any, bool]] = [(tree, False)]
    while stack:
        node, done = stack.pop()
        if not isinstance(node, dict | list):
            continue
        key, children = id(node), _children(node)
        keys = len(node) if isinstance(node, dict) else 0
        if done:
            in_progress.discard(key)
            sizes[key] = 1 + keys + sum(sizes.get(id(child), 1) for child in children)
            continue
        if key in sizes:
            continue  # an alias: counted by the size its anchor has
        if key in in_progress:
            return ConfigProblem("", "an alias refers to the value that holds it (a cycle)")
        in_progress.add(key)
        written += 1 + keys + sum(not isinstance(child, dict | list) for child in children)
        stack.append((node, True))
        stack.extend((child, False) for child in children if isinstance(child, dict | list))
    total = sizes.get(id(tree), 1)
    if total > max(GROWTH * written, FLOOR):
        return ConfigProblem(
            "",
            f"aliases (*name) make {total:,} values of the {written:,} written, more than "
            f"{GROWTH} times as many (a YAML bomb?): write the values out instead",
        )
    return None
