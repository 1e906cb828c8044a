"""builder/'s layout: a pure core, and the build's edges apart in builder/build/."""

from __future__ import annotations

import ast
from pathlib import Path

import builder

# What does I/O for a build, or serves HTTP: the core imports none of it, so that events,
# plans, config, rules and tags are plain functions tested with plain calls.
FOREIGN = frozenset(
    {"docker", "git", "redis", "rq", "starlette", "requests", "urllib3", "httpx", "tenacity"}
)
# The edges and the packages that use builder: the core knows none of them.
OWN_EDGES = ("builder.build", "webhooks", "runners")


def imported_modules(source: Path) -> set[str]:
    """Every module a file imports, at its top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            # `from builder import build` names a module too.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def core_files(package: Path) -> list[Path]:
    """The core's modules: builder/ but builder/build/."""
    edges = package / "build"
    return [p for p in sorted(package.rglob("*.py")) if edges not in p.parents]


def impurities(package: Path) -> list[str]:
    """`builder/x.py imports docker` for each foreign or edge import of the core."""
    found: list[str] = []
    for path in core_files(package):
        for module in sorted(imported_modules(path)):
            foreign = module.split(".")[0] in FOREIGN
            edge = any(module == e or module.startswith(f"{e}.") for e in OWN_EDGES)
            if foreign or edge:
                found.append(f"{path.relative_to(package.parent)} imports {module}")
    return found


PACKAGE = Path(builder.__file__).parent


def test_the_core_imports_no_io_library_nor_the_edges() -> None:
    """#17.1: builder's core (all but builder/build/) imports no docker, git, redis, rq,
    starlette or HTTP client, nor builder.build, webhooks or runners."""
    assert impurities(PACKAGE) == []


def test_the_purity_check_sees_the_edges_imports() -> None:
    """#17.1: the check finds what the edges import, inside functions too: it can fail."""
    edges = imported_modules(PACKAGE / "build" / "docker" / "engine.py")
    assert "docker.errors" in edges
    assert "git" in imported_modules(PACKAGE / "build" / "source.py")
    assert core_files(PACKAGE) and PACKAGE / "build" / "pipeline.py" not in core_files(PACKAGE)
