"""The images a Dockerfile builds FROM, named as the engine will look them up.

BuildKit, asked for without a client session (builder/build/docker/engine.py), pulls nothing: it
builds from images the engine already has, and fails with "no active sessions" on any
other. So the pipeline pulls the missing ones first, through the engine, with the
registry's credentials from the config. This finds them: every FROM that is neither
`scratch` nor an earlier stage, with the ARGs declared before the first FROM filled in from
their defaults and the build's build args, as the builder fills them in.

Why not dockerfile-parse, the PyPI library for this: tried (2.0.1), it reads
`FROM ${BASE}:${TAG:-latest}` with TAG=1.36 as `busybox:1.36:-latest}`, and takes a `FROM`
line inside a `RUN <<EOT` heredoc body for an instruction. Both cases are in
tests/test_baseimages.py. The `dockerfile` package wraps BuildKit's own Go parser and
splits heredocs right, but expands no variables, so the ARG handling here would stay.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

_ESCAPE_DIRECTIVE = re.compile(r"#\s*escape\s*=\s*(\S)\s*$", re.IGNORECASE)
_SYNTAX_DIRECTIVE = re.compile(r"#\s*syntax\s*=\s*(\S+)\s*$", re.IGNORECASE)
_DIRECTIVE = re.compile(r"#\s*\w+\s*=")
_HEREDOC = re.compile(r"<<(-?)([\"']?)(\w+)\2")
# $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:+alternative}, ${VAR+alternative}
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?:(:?[-+])([^}]*))?\}|(\w+))")


def base_images(
    dockerfile: str, build_args: Mapping[str, str], target: str | None = None
) -> list[str]:
    """The images to pull, in order, each once; a FROM whose variables have no value is
    left to the builder (it will say what is wrong)."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    images: list[str] = []
    before_first_from = True
    for keyword, rest in instructions(dockerfile):
        if keyword == "ARG" and before_first_from:
            for declaration in rest.split():
                name, has_default, default = declaration.partition("=")
                if name in build_args:
                    args[name] = build_args[name]
                elif has_default:
                    args[name] = default.strip("\"'")
        elif keyword == "FROM":
            before_first_from = False
            words = [word for word in rest.split() if not word.startswith("--")]
            if not words:
                continue
            image = _expand(words[0], args)
            is_base = image and image.lower() != "scratch" and image.lower() not in stages
            if image and is_base and image not in images:
                images.append(image)
            stage = words[2].lower() if len(words) > 2 and words[1].lower() == "as" else None
            if stage:
                stages.add(stage)
            if target and stage == target.lower():
                break  # later stages are not built
    return images


def frontend_image(dockerfile: str, build_args: Mapping[str, str]) -> str | None:
    """The frontend image BuildKit would run to read this Dockerfile instead of its own
    parser: the `BUILDKIT_SYNTAX` build arg, else a `# syntax=` parser directive."""
    if build_args.get("BUILDKIT_SYNTAX", "").strip():
        return build_args["BUILDKIT_SYNTAX"].split()[0]
    for line in dockerfile.splitlines():
        if not _DIRECTIVE.match(line.strip()):
            return None  # parser directives end at the first other line
        if syntax := _SYNTAX_DIRECTIVE.match(line.strip()):
            return syntax[1]
    return None


def instructions(dockerfile: str) -> Iterator[tuple[str, str]]:
    """(KEYWORD, its arguments) for each instruction: continuation lines joined, comments
    and heredoc bodies skipped."""
    escape = "\\"
    lines = iter(dockerfile.splitlines())
    for line in lines:  # parser directives come first, then end at the first other line
        directive = _ESCAPE_DIRECTIVE.match(line.strip())
        if directive:
            escape = directive[1]
        elif not _DIRECTIVE.match(line.strip()):
            yield from _instructions([line, *lines], escape)
            return


def _instructions(lines: list[str], escape: str) -> Iterator[tuple[str, str]]:
    pending: list[str] = []
    heredoc: tuple[str, bool] | None = None  # (its end word, whether tabs are stripped)
    for raw in lines:
        if heredoc is not None:
            word, strip_tabs = heredoc
            if (raw.lstrip("\t") if strip_tabs else raw) == word:
                heredoc = None
            continue
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith(escape):
            pending.append(line[: -len(escape)])
            continue
        text = " ".join([*pending, line]).strip()
        pending = []
        keyword, _, rest = text.partition(" ")
        yield keyword.upper(), rest.strip()
        body = _HEREDOC.search(rest)
        if body and keyword.upper() in {"RUN", "COPY", "ADD"}:
            heredoc = (body[3], body[1] == "-")


def _expand(word: str, args: Mapping[str, str]) -> str | None:
    """`word` with its variables replaced; None if one has no value and no default."""
    missing = False

    def value(match: re.Match[str]) -> str:
        nonlocal missing
        name = match[1] or match[4]
        operator, operand = match[2], match[3] or ""
        current = args.get(name)
        if operator in (":-", "-"):
            empty = current is None or (operator == ":-" and current == "")
            return operand if empty else str(current)
        if operator in (":+", "+"):
            unset = current is None or (operator == ":+" and current == "")
            return "" if unset else operand
        if current is None:
            missing = True
            return ""
        return current

    expanded = _VARIABLE.sub(value, word)
    return None if missing else expanded
