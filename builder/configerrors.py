"""Pydantic's validation errors as `ConfigProblem`s a person can act on.

Each problem names its place (`repositories[0].rules[1].tags[0]`), shows the value that was
refused (`workers: expected a valid integer, got 'many'`), and, for a key the model does not
have, the key that was probably meant (`unknown key 'proccesses'; did you mean 'processes'?`).
The place's model is found by walking the config model's field annotations along the error's
location, so no list of keys is kept by hand.
"""

from __future__ import annotations

import difflib
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from builder.envsubst import location_of
from builder.errors import ConfigProblem

# A value is shown up to this many characters (its repr), so that a pasted blob does not
# fill the terminal; the config is trusted, but it may hold anything a variable expanded to.
VALUE_CHARS = 60
# How alike a misspelled key and a real one must be (difflib's ratio) to be suggested.
_CUTOFF = 0.7
# Keys whose values are secrets: a refused one is not shown (`hookbuild up` logs its errors).
_SECRET_KEYS = frozenset(
    {"secret", "signing_token", "trigger_token", "clone_token", "token", "password"}
)
# Errors whose message is ours (a validator's ValueError) already quote what they refuse.
_OWN_MESSAGE = frozenset({"value_error", "assertion_error", "missing", "extra_forbidden"})


def problems_from(error: ValidationError, root: type[BaseModel]) -> list[ConfigProblem]:
    """Every error of `error` (raised validating `root`), one problem a line."""
    problems: list[ConfigProblem] = []
    # `latest: maybe` fails each member of `Literal["auto"] | bool`: one line says all.
    unions: dict[tuple[str | int, ...], tuple[int, list[str]]] = {}
    for item in error.errors():
        raw = tuple(p for p in item["loc"] if isinstance(p, str | int))
        path, in_union = _field_path(root, raw)
        if not in_union:
            problems.extend(_problems_of(item, root, path))
            continue
        index, expected = unions.setdefault(path, (len(problems), []))
        expected.append(_expected(item["msg"]).removeprefix("expected "))
        message = f"expected {' or '.join(expected)}, got {shown(item.get('input'))}"
        problem = ConfigProblem(location_of(path), message)
        problems[index : index + 1] = [problem]
    return problems


def _problems_of(
    item: Any, root: type[BaseModel], path: tuple[str | int, ...]
) -> list[ConfigProblem]:
    kind = item["type"]
    if kind == "extra_forbidden":
        key = str(path[-1])
        return [ConfigProblem(location_of(path), unknown_key(key, root, path[:-1]))]
    message = item["msg"].removeprefix("Value error, ")
    if kind == "model_type":
        message = "expected a mapping (`key: value` lines)"
    elif kind == "literal_error":
        expected = item.get("ctx", {}).get("expected", "")
        message = f"unknown {path[-1]} {shown(item.get('input'))}; expected {expected}"
        choices = [str(c) for c in _literal_choices(root, path)]
        if suggestion := _closest(str(item.get("input")), choices):
            message += f"; did you mean {suggestion!r}?"
        return [ConfigProblem(location_of(path), message)]
    elif kind not in _OWN_MESSAGE and "input" in item:
        value = _kind_of(item["input"]) if _is_secret(path) else shown(item["input"])
        message = f"{_expected(message)}, got {value}"
    problems = []
    for line in message.split("\n"):
        # A validator of a list reports each entry as "[index] message" (ruleconfig's tags):
        # the index moves into the location (`rules[1].tags[2]`).
        index, sep, rest = line.partition("] ")
        if line.startswith("[") and sep and index[1:].isdigit():
            problems.append(ConfigProblem(location_of((*path, int(index[1:]))), rest))
        else:
            problems.append(ConfigProblem(location_of(path), line))
    return problems


def _is_secret(path: tuple[str | int, ...]) -> bool:
    return "secret_build_args" in path or any(p in _SECRET_KEYS for p in path[-1:])


def _kind_of(value: object) -> str:
    """What a secret's refused value is, without showing it."""
    kinds = {bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    kinds.update({list: "a list", dict: "a mapping", type(None): "nothing"})
    return f"{kinds.get(type(value), 'another type')} (a secret's value is not shown)"


def _expected(message: str) -> str:
    """`Input should be a valid integer, unable to parse ...` -> `expected a valid integer`."""
    if message.startswith("Input should be "):
        return "expected " + message.removeprefix("Input should be ").split(", unable")[0]
    return message


def shown(value: object) -> str:
    """A refused value as the user can recognise it, bounded, control characters escaped
    (repr escapes what `str.isprintable` refuses)."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return f"a list {_clip(repr(value))}"
    return _clip(repr(value))


def _clip(text: str) -> str:
    if len(text) <= VALUE_CHARS:
        return text
    return f"{text[:VALUE_CHARS]}…[{len(text) - VALUE_CHARS} more characters]"


def unknown_key(key: str, root: type[BaseModel], parent: tuple[str | int, ...]) -> str:
    """`unknown key 'proccesses'; did you mean 'processes'?`, looking among the keys of the
    place, then among the keys one level down (a key written one level too high)."""
    message = f"unknown key {shown(key)}"
    model = _model_at(root, parent)
    if model is None:
        return message
    if suggestion := _closest(key, list(model.model_fields)):
        return f"{message}; did you mean {suggestion!r}?"
    sections = {
        inner: name  # e.g. "processes": "server"
        for name, info in model.model_fields.items()
        if (child := _model_in(info.annotation)) is not None
        for inner in child.model_fields
    }
    if suggestion := _closest(key, list(sections)):
        return f"{message}; did you mean {suggestion!r} under `{sections[suggestion]}:`?"
    return message


def _closest(word: str, choices: list[str]) -> str | None:
    found = difflib.get_close_matches(word, choices, n=1, cutoff=_CUTOFF)
    return found[0] if found else None


def _field_path(
    root: type[BaseModel], raw: tuple[str | int, ...]
) -> tuple[tuple[str | int, ...], bool]:
    """The error's location without pydantic's union-member tags (`latest.bool`), and
    whether it had one."""
    annotation: Any = root
    path: list[str | int] = []
    for part in raw:
        annotation = _unwrap(annotation)
        if isinstance(part, str) and _is_union(annotation) and _model_in(annotation) is None:
            return tuple(path), True  # the rest names a union member, not a place
        # None: an unknown key, or past what the model describes
        annotation = _step(annotation, part, into_dicts=True)
        path.append(part)
    return tuple(path), False


def _step(annotation: Any, part: str | int, *, into_dicts: bool = False) -> Any:
    """The annotation of `part` within `annotation` (a model's field, a list's item, a
    dict's value), or None where the model says nothing of it."""
    model = _model_in(annotation)
    if isinstance(part, str) and model is not None and part in model.model_fields:
        return model.model_fields[part].annotation
    if isinstance(part, int) and get_origin(annotation) is list:
        return get_args(annotation)[0]
    if into_dicts and isinstance(part, str) and get_origin(annotation) is dict:
        return get_args(annotation)[1]
    return None


def _model_at(root: type[BaseModel], path: tuple[str | int, ...]) -> type[BaseModel] | None:
    annotation: Any = root
    for part in path:
        annotation = _step(_unwrap(annotation), part)
        if annotation is None:
            return None
    return _model_in(_unwrap(annotation))


def _literal_choices(root: type[BaseModel], path: tuple[str | int, ...]) -> list[object]:
    parent = _model_at(root, path[:-1])
    if parent is None or not isinstance(path[-1], str) or path[-1] not in parent.model_fields:
        return []
    annotation = _unwrap(parent.model_fields[path[-1]].annotation)
    members = get_args(annotation) if _is_union(annotation) else (annotation,)
    return [c for m in members if get_origin(m) is Literal for c in get_args(m)]


def _unwrap(annotation: Any) -> Any:
    """`Annotated[X, ...]` -> X, `X | None` -> X."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        elif _is_union(annotation):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def _model_in(annotation: Any) -> type[BaseModel] | None:
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None
