"""Forge knowledge lives in the drivers: one module a forge plus its line in the registry."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any, get_type_hints

import pytest
from pydantic import TypeAdapter, ValidationError

from builder import config as config_model
from builder.errors import ConfigError
from webhooks.forges import FORGES, default_drivers
from webhooks.forges.base import ForgeDriver

ROOT = Path(__file__).resolve().parent.parent
REPOSITORY = "repositories:\n  - {{name: acme/web, forge: {forge}, secret: s3cret, clone_token: t0ken, image: registry.test/acme/web, rules: [{{branch: main}}]}}\n"


def _protocol_attributes() -> dict[str, Any]:
    """Every data member of `ForgeDriver` (its own and `Forge`'s) with its type."""
    return {
        name: hint for name, hint in get_type_hints(ForgeDriver).items() if not name.startswith("_")
    }


def _protocol_methods() -> list[str]:
    return [
        name
        for name, member in vars(ForgeDriver).items()
        if not name.startswith("_") and inspect.isfunction(member)
    ]


def test_every_registered_driver_has_every_member_of_the_protocol() -> None:
    """#17: each registered driver gives every attribute of `ForgeDriver` (name, title,
    token user, hosted clone URL and hosts, ping events, tags_once), of its declared type,
    and every method: nothing about a forge is looked up elsewhere with a default."""
    attributes = _protocol_attributes()
    assert {"name", "title", "token_username", "hosted_clone_url"} <= set(attributes)
    assert {"hosted_clone_hosts", "ping_events", "tags_once"} <= set(attributes)
    drivers = default_drivers()
    assert list(drivers) == list(FORGES)
    for key, driver in drivers.items():
        for name, hint in attributes.items():
            assert hasattr(driver, name), f"the {key} driver has no {name}"
            try:
                TypeAdapter(hint).validate_python(getattr(driver, name), strict=True)
            except ValidationError as exc:
                pytest.fail(f"the {key} driver's {name} is not a {hint}: {exc}")
        for method in _protocol_methods():
            assert callable(getattr(driver, method, None)), f"the {key} driver has no {method}"
        assert driver.name == key
        assert driver.title.strip()
        url = driver.hosted_clone_url
        assert url is None or (url.startswith("https://") and "{name}" in url)
        # A hosted forge's default URL is on its own default hosts.
        assert (url is None) == (not driver.hosted_clone_hosts)


class _ExampleForge:
    name = "example"
    title = "Example Forge"
    token_username = "example-token"
    hosted_clone_url: str | None = "https://git.example.test/{name}.git"
    hosted_clone_hosts: tuple[str, ...] = ("git.example.test",)


def test_the_config_accepts_exactly_the_registered_forges() -> None:
    """#17: `forge:` takes every registered forge's name and nothing else, and a
    repository's clone defaults and token user come from its registered forge: a registry
    with one new forge is all the config needs to know of it."""
    drivers = default_drivers()
    for name in FORGES:
        config = config_model.parse_config(REPOSITORY.format(forge=name), {}, forges=drivers)
        repository = config.repositories[0]
        driver = drivers[name]
        assert repository.clone_credentials == (driver.token_username, "t0ken")
        assert repository.allowed_clone_hosts == frozenset(driver.hosted_clone_hosts)

    registry = {"example": _ExampleForge()}
    config = config_model.parse_config(REPOSITORY.format(forge="example"), {}, forges=registry)
    repository = config.repositories[0]
    assert repository.clone_credentials == ("example-token", "t0ken")
    assert repository.default_clone_url == "https://git.example.test/acme/web.git"
    assert repository.allowed_clone_hosts == frozenset({"git.example.test"})
    assert repository.forge_facts.title == "Example Forge"
    with pytest.raises(ConfigError) as raised:
        config_model.parse_config(REPOSITORY.format(forge="github"), {}, forges=registry)
    assert [str(p) for p in raised.value.problems] == [
        "repositories[0].forge: unknown forge 'github'; expected 'example'"
    ]


def _forge_keyed(tree: ast.AST, names: frozenset[str]) -> list[int]:
    """Lines where a dict is keyed by a forge's name, or a tuple, list, set or subscript
    (a `Literal[...]`) lists two forges' names."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
            if any(k in names for k in keys):
                found.append(node.lineno)
        elements: list[ast.expr] = []
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            elements = node.elts
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple):
            elements = node.slice.elts
        listed = {e.value for e in elements if isinstance(e, ast.Constant)} & names
        if len(listed) >= 2:
            found.append(elements[0].lineno)
    return found


def test_no_mapping_or_list_of_forges_outside_the_drivers() -> None:
    """#17: outside webhooks/forges/, no module keys a mapping by forge name or lists
    forge names (as FORGES, the Forge Literal, TOKEN_USERNAMES, HOSTED_CLONE_URLS and
    HOSTED_CLONE_HOSTS did): a new forge is its driver and its registry line."""
    names = frozenset(FORGES)
    offenders = []
    for package in ("builder", "webhooks", "runners"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.is_relative_to(ROOT / "webhooks" / "forges"):
                continue
            for line in _forge_keyed(ast.parse(path.read_text()), names):
                offenders.append(f"{path.relative_to(ROOT)}:{line}")
    assert offenders == []
