"""BuildKit's status messages (the protobuf inside a build's `moby.buildkit.trace` aux
chunks) written byte by byte, for tests that feed them to `BuildKitProgress`."""

from __future__ import annotations

import base64


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def field(number: int, value: int | bytes | str) -> bytes:
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def timestamp(seconds: float) -> bytes:
    whole = int(seconds)
    return field(1, whole) + field(2, round((seconds - whole) * 1e9))


def vertex(digest: str, name: str, **state: float | bool | str) -> bytes:
    body = field(1, digest) + field(3, name)
    if state.get("cached"):
        body += field(4, 1)
    if "started" in state:
        body += field(5, timestamp(float(state["started"])))
    if "completed" in state:
        body += field(6, timestamp(float(state["completed"])))
    if "error" in state:
        body += field(7, str(state["error"]))
    return field(1, body)


def log(digest: str, message: bytes) -> bytes:
    return field(3, field(1, digest) + field(2, timestamp(1.0)) + field(3, 1) + field(4, message))


def status(digest: str, ident: str, done: bool) -> bytes:
    body = field(1, ident) + field(2, digest) + field(4, 10)
    return field(2, body + (field(8, timestamp(2.0)) if done else b""))


def aux(*parts: bytes) -> str:
    return base64.b64encode(b"".join(parts)).decode()
