"""The base and frontend images the pipeline pulls for BuildKit, read from Dockerfiles."""

from __future__ import annotations

import pytest

from builder.baseimages import base_images, frontend_image


@pytest.mark.parametrize(
    ("dockerfile", "build_args", "target", "expected"),
    [
        pytest.param("FROM python:3.12\nRUN true\n", {}, None, ["python:3.12"], id="one"),
        pytest.param("from  --platform=linux/amd64  alpine\n", {}, None, ["alpine"], id="flags"),
        pytest.param("FROM scratch\nCOPY a /a\n", {}, None, [], id="scratch"),
        pytest.param(
            "FROM golang:1.22 AS build\nRUN make\nFROM build AS test\nFROM debian:12\n"
            "COPY --from=build /app /app\n",
            {},
            None,
            ["golang:1.22", "debian:12"],
            id="stages-are-not-images",
        ),
        pytest.param(
            "FROM golang:1.22 AS Build\nFROM debian:12 AS runtime\nFROM busybox\n",
            {},
            "build",
            ["golang:1.22"],
            id="nothing-after-the-target",
        ),
        pytest.param(
            "ARG REGISTRY=r.example:5000\nARG TAG\nFROM ${REGISTRY}/base:${TAG:-1}\n",
            {},
            None,
            ["r.example:5000/base:1"],
            id="arg-defaults",
        ),
        pytest.param(
            "ARG REGISTRY=r.example:5000\nARG TAG\nFROM $REGISTRY/base:${TAG}\n",
            {"TAG": "2", "REGISTRY": "other:5000"},
            None,
            ["other:5000/base:2"],
            id="build-args-win",
        ),
        pytest.param(
            "ARG TAG\nFROM base:${TAG}\nFROM busybox\n",
            {},
            None,
            ["busybox"],
            id="unknown-variable-left-to-the-builder",
        ),
        pytest.param(
            "FROM a\nARG LATE=x\nFROM b:$LATE\n",
            {},
            None,
            ["a"],
            id="an-arg-after-a-from-belongs-to-its-stage",
        ),
        pytest.param(
            "# syntax=docker/dockerfile:1\n# escape=`\nFROM `\n  alpine:3 `\n  AS base\n"
            "# FROM commented:out\nRUN <<EOF\nFROM not-an-instruction\nEOF\nFROM alpine:3\n",
            {},
            None,
            ["alpine:3"],
            id="directives-continuations-comments-heredocs",
        ),
        pytest.param(
            "FROM img@sha256:" + "a" * 64 + "\nFROM img@sha256:" + "a" * 64 + "\n",
            {},
            None,
            ["img@sha256:" + "a" * 64],
            id="digest-once",
        ),
    ],
)
def test_base_images(
    dockerfile: str, build_args: dict[str, str], target: str | None, expected: list[str]
) -> None:
    assert base_images(dockerfile, build_args, target) == expected


@pytest.mark.parametrize(
    ("dockerfile", "build_args", "expected"),
    [
        pytest.param("# syntax=docker/dockerfile:1\nFROM a\n", {}, "docker/dockerfile:1", id="one"),
        pytest.param(
            "# escape=`\n#  SYNTAX = example.com/f:2  \nFROM a\n",
            {},
            "example.com/f:2",
            id="second",
        ),
        pytest.param("FROM a\n# syntax=docker/dockerfile:1\n", {}, None, id="after-an-instruction"),
        pytest.param("# a comment\n# syntax=docker/dockerfile:1\n", {}, None, id="after-a-comment"),
        pytest.param("FROM a\n", {"BUILDKIT_SYNTAX": "x/front:1 --opt"}, "x/front:1", id="arg"),
        pytest.param("FROM a\n", {"BUILDKIT_SYNTAX": ""}, None, id="empty-arg"),
    ],
)
def test_frontend_image(dockerfile: str, build_args: dict[str, str], expected: str | None) -> None:
    assert frontend_image(dockerfile, build_args) == expected
