"""Numbers from query strings and headers, parsed strictly.

`str.isdigit()` accepts "²" and int() accepts "٣" and "1_000"; an unbounded string of
digits costs quadratic time to convert. Here a number is 1 to 18 ASCII digits, and anything
else, or out of range, is a `BadParameter` (400 with our JSON error shape), never a 500.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from webhooks.errors import BadParameter

MAX_DIGITS = 18
_DIGITS = re.compile(rf"[0-9]{{1,{MAX_DIGITS}}}", re.ASCII)


def number(value: str, name: str, low: int, high: int) -> int:
    if _DIGITS.fullmatch(value) is None:
        raise BadParameter(f"{name} must be a whole number from {low} to {high}")
    parsed = int(value)
    if not low <= parsed <= high:
        raise BadParameter(f"{name} must be a whole number from {low} to {high}")
    return parsed


def query_int(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    """`?name=N`; absent or empty (as an HTML form sends it) is `default`."""
    value = params.get(name)
    if not value:
        return default
    return number(value, name, low, high)
