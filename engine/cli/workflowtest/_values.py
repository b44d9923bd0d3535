"""Comparing JSON values the way a test reads them, and showing them in messages.

Two comparisons: *exact* (``result``) and *subset* (``state``, a step's ``output``, an action's
parameters, ``match``): a mapping matches when every key it names matches, at any depth; lists
and scalars always compare exactly. Numbers compare by value (``1`` equals ``1.0``) but a
boolean is never a number (``true`` is not ``1``), as in JSON.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any, Final

__all__ = ["contains", "differences", "show"]

_SHOWN: Final = 120
"""Characters of a value a message shows before cutting it."""


def show(value: Any, limit: int = _SHOWN) -> str:
    """A value as compact JSON (cut to ``limit`` characters)."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def contains(actual: Any, expected: Any) -> bool:
    """Whether ``actual`` matches ``expected`` as a subset (see the module docstring)."""
    return next(differences(actual, expected, subset=True), None) is None


def differences(
    actual: Any, expected: Any, *, subset: bool, path: str = ""
) -> Iterator[tuple[str, str]]:
    """Every place where ``actual`` does not match ``expected``: ``(path, what differs)``.

    ``path`` reads like ``.tests[1].name`` (empty for the value itself).
    """
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            yield path, f"expected {show(expected)}, got {show(actual)}"
            return
        for key, wanted in expected.items():
            where = _key_path(path, key)
            if key not in actual:
                yield where, f"missing (expected {show(wanted)})"
            else:
                yield from differences(actual[key], wanted, subset=subset, path=where)
        if not subset:
            for key in actual:
                if key not in expected:
                    yield _key_path(path, key), f"not expected, got {show(actual[key])}"
        return
    if isinstance(expected, list):
        if not isinstance(actual, list):
            yield path, f"expected {show(expected)}, got {show(actual)}"
            return
        if len(actual) != len(expected):
            yield (
                path,
                f"expected {len(expected)} item(s), got {len(actual)}: expected "
                f"{show(expected)}, got {show(actual)}",
            )
            return
        for index, (got, wanted) in enumerate(zip(actual, expected, strict=True)):
            yield from differences(got, wanted, subset=subset, path=f"{path}[{index}]")
        return
    if not _scalar_equal(actual, expected):
        yield path, f"expected {show(expected)}, got {show(actual)}"


def _scalar_equal(actual: Any, expected: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        if isinstance(expected, float) and isinstance(actual, float) and math.isnan(expected):
            return math.isnan(actual)
        return actual == expected
    if isinstance(actual, (dict, list)):
        return False
    return type(actual) is type(expected) and actual == expected


def _key_path(path: str, key: str) -> str:
    if key.isidentifier():
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key, ensure_ascii=False)}]"
