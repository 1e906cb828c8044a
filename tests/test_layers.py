"""#17.2: the direction of imports, over the whole import graph (grimp reads every `import`,
those inside functions too, and follows them transitively).

builder/ is the core and the build's edges: it imports neither the HTTP side nor the runners.
What runs builds (runners.worker, and builder's pipeline under it) imports no webhooks. Only
the CLI's command modules, and runners.server (uvicorn's factory for serving processes), wire
the webhooks side to the rest; webhooks/app.py wires the HTTP side itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import grimp
import pytest

PACKAGES = ("builder", "webhooks", "runners")
# Where everything may be wired together (see the module docstring).
ENTRY_POINTS = ("runners.cli", "runners.server")


@dataclass(frozen=True)
class Rule:
    name: str
    importers: tuple[str, ...]
    forbidden: tuple[str, ...]
    allowed_importers: tuple[str, ...] = ()


RULES = [
    Rule("builder imports neither webhooks nor runners", ("builder",), ("webhooks", "runners")),
    Rule("the worker side imports no webhooks", ("runners.worker",), ("webhooks",)),
    Rule(
        "only the CLI's entry points wire webhooks into runners",
        ("runners",),
        ("webhooks",),
        allowed_importers=ENTRY_POINTS,
    ),
    Rule(
        "nothing but the CLI imports the CLI",
        ("builder", "webhooks", "runners"),
        ("runners.cli",),
        allowed_importers=("runners.cli",),
    ),
    Rule(
        "the HTTP side imports neither the worker side nor the supervisor",
        ("webhooks",),
        ("runners.worker", "runners.supervisor"),
    ),
]


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def _inside(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in packages)


def violations(graph: grimp.ImportGraph, rule: Rule) -> list[tuple[str, ...]]:
    """For each module the rule covers, the shortest chain of imports from it to a module it
    forbids, not passing through an allowed importer (those may wire anything)."""
    found = []
    for start in sorted(graph.modules):
        if not _inside(start, rule.importers) or _inside(start, rule.allowed_importers):
            continue
        if _inside(start, rule.forbidden):
            continue
        chains: dict[str, tuple[str, ...]] = {start: (start,)}
        todo = [start]
        while todo:  # breadth first: the first chain found is a shortest one
            module = todo.pop(0)
            imports = sorted(graph.find_modules_directly_imported_by(module))
            if bad := [m for m in imports if _inside(m, rule.forbidden)]:
                found.append((*chains[module], bad[0]))
                break
            for imported in imports:
                if imported not in chains and not _inside(imported, rule.allowed_importers):
                    chains[imported] = (*chains[module], imported)
                    todo.append(imported)
    return found


@pytest.mark.parametrize("rule", RULES, ids=[rule.name for rule in RULES])
def test_imports_go_one_way(graph: grimp.ImportGraph, rule: Rule) -> None:
    """#17.2: no chain of imports breaks `rule`; a failure names each chain."""
    assert violations(graph, rule) == []
