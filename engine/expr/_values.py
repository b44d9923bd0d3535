"""Values of the expression language: JSON values with strict, explicit semantics.

Python's own rules are too loose for workflow conditions (``True == 1``, ``"a" * 3``, truthy
strings), so every operator goes through the helpers here instead of Python operators directly.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

__all__ = [
    "INT_MAX",
    "INT_MIN",
    "MAX_DEPTH",
    "MAX_RANGE",
    "MAX_SIZE",
    "MAX_SOURCE",
    "EvaluationFailure",
    "check_float",
    "check_int",
    "check_size",
    "json_equal",
    "kind",
    "to_text",
    "type_name",
]

INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1
MAX_SOURCE: Final = 4096
"""Longest expression source, in characters."""
MAX_DEPTH: Final = 64
"""Deepest nesting of brackets, parentheses and unary operators."""
MAX_RANGE: Final = 10_000
"""Most items ``range()`` may produce."""
MAX_SIZE: Final = 1_048_576
"""Most characters of a string, or items of a list, that an expression may build."""


class EvaluationFailure(Exception):  # noqa: N818 - internal signal, never escapes the package
    """Raised by value helpers and functions; the evaluator adds the source and column."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


_KINDS: Final[dict[type, str]] = {
    type(None): "null",
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    list: "list",
    dict: "map",
}

_TYPE_NAMES: Final[dict[type, str]] = {
    type(None): "null",
    bool: "bool",
    int: "int",
    float: "float",
    str: "string",
    list: "list",
    dict: "map",
}


def kind(value: Any) -> str:
    """The kind of a value as error messages name it (``number`` covers int and float)."""
    return _KINDS.get(type(value), type(value).__name__)


def type_name(value: Any) -> str:
    """The name ``type()`` returns: null, bool, int, float, string, list or map."""
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def check_int(value: int) -> int:
    """Return ``value`` if it fits in a signed 64-bit integer, else fail with an overflow."""
    if INT_MIN <= value <= INT_MAX:
        return value
    raise EvaluationFailure("integer overflow: the result does not fit in 64 bits")


def check_float(value: float) -> float:
    """Return ``value`` if it is finite, else fail."""
    if math.isfinite(value):
        return value
    raise EvaluationFailure("number out of range: the result is not finite")


def check_size(value: Any) -> Any:
    """Return a built string or list if it is within :data:`MAX_SIZE`, else fail."""
    if len(value) > MAX_SIZE:
        what = "characters" if type(value) is str else "items"
        raise EvaluationFailure(f"result too large: {len(value)} {what}, the limit is {MAX_SIZE}")
    return value


def json_equal(left: Any, right: Any) -> bool:
    """Deep equality on JSON values: ints and floats compare numerically, types never mix."""
    tl = type(left)
    tr = type(right)
    if tl is tr:
        if tl is list:
            return len(left) == len(right) and all(
                json_equal(a, b) for a, b in zip(left, right, strict=True)
            )
        if tl is dict:
            return left.keys() == right.keys() and all(
                json_equal(v, right[k]) for k, v in left.items()
            )
        return bool(left == right)
    if (tl is int or tl is float) and (tr is int or tr is float):
        return bool(left == right)
    return False


def to_text(value: Any) -> str:
    """Render a value as template text: null is empty, lists and maps are compact JSON."""
    t = type(value)
    if t is str:
        return value  # type: ignore[no-any-return]
    if value is None:
        return ""
    if t is bool:
        return "true" if value else "false"
    if t is int:
        return str(value)
    if t is float:
        return repr(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
