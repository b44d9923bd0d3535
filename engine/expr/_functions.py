"""The built-in functions of the expression language.

Every function is pure and deterministic: no clock, no randomness, no environment, no I/O (the
workflow supplies time as ``workflow.now``). Each takes JSON values and raises
:class:`EvaluationFailure` with a message; the evaluator adds the source and the column.

Why one long module: it is the language's library, one short function per built-in, each with
its docstring example, registered in :data:`FUNCTIONS`; a reader looks them up here by name.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

import re2

from engine.expr._values import (
    INT_MAX,
    MAX_RANGE,
    MAX_SIZE,
    EvaluationFailure,
    check_float,
    check_int,
    check_size,
    json_equal,
    kind,
    to_text,
    type_name,
)

__all__ = ["FUNCTIONS", "SIGNATURES", "Signature", "compile_pattern", "search_compiled"]


@dataclass(frozen=True, slots=True)
class Signature:
    """How many arguments a function takes (``max_args`` None means no upper bound)."""

    min_args: int
    max_args: int | None

    def describe(self) -> str:
        """Human wording of the arity, e.g. ``1 to 3 arguments``."""
        if self.max_args is None:
            return f"at least {_plural(self.min_args)}"
        if self.min_args == self.max_args:
            return _plural(self.min_args)
        return f"{self.min_args} to {_plural(self.max_args)}"

    def accepts(self, count: int) -> bool:
        """Whether a call with ``count`` arguments is valid."""
        return count >= self.min_args and (self.max_args is None or count <= self.max_args)


def _plural(count: int) -> str:
    return f"{count} argument" if count == 1 else f"{count} arguments"


FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {}
"""Every built-in function by name; each docstring shows an example."""
SIGNATURES: Final[dict[str, Signature]] = {}


def _builtin(
    name: str, min_args: int, max_args: int | None = -1
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(implementation: Callable[..., Any]) -> Callable[..., Any]:
        FUNCTIONS[name] = implementation
        SIGNATURES[name] = Signature(min_args, min_args if max_args == -1 else max_args)
        return implementation

    return register


_KIND_OF_TYPE: Final[dict[type, str]] = {
    bool: "boolean",
    int: "number",
    float: "number",
    str: "string",
    list: "list",
    dict: "map",
}


def _need(name: str, position: int, value: Any, *kinds: type) -> None:
    if type(value) not in kinds:
        wanted = " or ".join(sorted({_KIND_OF_TYPE[k] for k in kinds}))
        raise EvaluationFailure(
            f"{name}() expects a {wanted} as argument {position}, got {kind(value)}"
        )


def _number(name: str, position: int, value: Any) -> None:
    _need(name, position, value, int, float)


@_builtin("size", 1)
def size(value: Any) -> int:
    """Length of a string, list or map; ``size(null)`` is 0. Example: ``size([1, 2]) == 2``."""
    if value is None:
        return 0
    _need("size", 1, value, str, list, dict)
    return len(value)


@_builtin("contains", 2)
def contains(haystack: Any, needle: Any) -> bool:
    """Substring of a string, element of a list, or key of a map.

    Example: ``contains('deploy-prod', 'prod')``, ``contains(['a', 'b'], 'b')``.
    """
    t = type(haystack)
    if t is str:
        _need("contains", 2, needle, str)
        return needle in haystack
    if t is list:
        return any(json_equal(item, needle) for item in haystack)
    if t is dict:
        _need("contains", 2, needle, str)
        return needle in haystack
    raise EvaluationFailure(f"contains() expects a string, list or map, got {kind(haystack)}")


@_builtin("startsWith", 2)
def starts_with(text: Any, prefix: Any) -> bool:
    """Whether a string starts with another. Example: ``startsWith(inputs.ref, 'refs/tags/')``."""
    _need("startsWith", 1, text, str)
    _need("startsWith", 2, prefix, str)
    return bool(text.startswith(prefix))


@_builtin("endsWith", 2)
def ends_with(text: Any, suffix: Any) -> bool:
    """Whether a string ends with another. Example: ``endsWith(inputs.file, '.yaml')``."""
    _need("endsWith", 1, text, str)
    _need("endsWith", 2, suffix, str)
    return bool(text.endswith(suffix))


@_builtin("lower", 1)
def lower(text: Any) -> str:
    """Lower-case a string. Example: ``lower('Prod') == 'prod'``."""
    _need("lower", 1, text, str)
    return str(text.lower())


@_builtin("upper", 1)
def upper(text: Any) -> str:
    """Upper-case a string. Example: ``upper('eu') == 'EU'``."""
    _need("upper", 1, text, str)
    return str(text.upper())


@_builtin("trim", 1)
def trim(text: Any) -> str:
    """Strip leading and trailing whitespace. Example: ``trim('  v1 ') == 'v1'``."""
    _need("trim", 1, text, str)
    return str(text.strip())


@_builtin("split", 2)
def split(text: Any, separator: Any) -> list[Any]:
    """Split a string on a non-empty separator. Example: ``split('a,b', ',') == ['a', 'b']``."""
    _need("split", 1, text, str)
    _need("split", 2, separator, str)
    if not separator:
        raise EvaluationFailure("split() needs a non-empty separator")
    return check_size(text.split(separator))  # type: ignore[no-any-return]


@_builtin("join", 1, 2)
def join(items: Any, separator: Any = "") -> str:
    """Join list items, rendered as template text, with a separator.

    Example: ``join(['us', 'eu'], ', ') == 'us, eu'``.
    """
    _need("join", 1, items, list)
    _need("join", 2, separator, str)
    return check_size(separator.join(to_text(item) for item in items))  # type: ignore[no-any-return]


@_builtin("replace", 3)
def replace(text: Any, old: Any, new: Any) -> str:
    """Replace every occurrence of a non-empty substring.

    Example: ``replace('a-b-c', '-', '_') == 'a_b_c'``.
    """
    _need("replace", 1, text, str)
    _need("replace", 2, old, str)
    _need("replace", 3, new, str)
    if not old:
        raise EvaluationFailure("replace() needs a non-empty string to replace")
    if new and len(text) + text.count(old) * (len(new) - len(old)) > MAX_SIZE:
        raise EvaluationFailure(f"result too large: the limit is {MAX_SIZE} characters")
    return str(text.replace(old, new))


def _quiet_options() -> Any:
    # RE2 logs every rejected pattern to stderr by default; a bad pattern is the author's
    # mistake, reported through the error message, not server noise.
    options = re2.Options()
    options.log_errors = False
    return options


_RE2_OPTIONS: Final = _quiet_options()


def compile_pattern(pattern: str) -> Any:
    """Compile an RE2 pattern (linear-time matching), failing with a readable message."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except UnicodeEncodeError:
        raise EvaluationFailure("invalid regular expression: it holds a lone surrogate") from None
    except re2.error as error:
        reason = error.args[0] if error.args else ""
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise EvaluationFailure(f"invalid regular expression {pattern!r}: {reason}") from None


@_builtin("matches", 2)
def matches(text: Any, pattern: Any) -> bool:
    """Whether an RE2 regular expression matches anywhere in a string (linear time).

    Example: ``matches(inputs.version, '^v[0-9]+\\.[0-9]+$')``.
    """
    _need("matches", 1, text, str)
    _need("matches", 2, pattern, str)
    return compile_pattern(pattern).search(text) is not None


def search_compiled(compiled: Any, text: Any) -> bool:
    """``matches`` with a pattern compiled ahead of time."""
    _need("matches", 1, text, str)
    return compiled.search(text) is not None


@_builtin("format", 1, None)
def format_(template: Any, *values: Any) -> str:
    """Replace ``{0}``, ``{1}``... with values rendered as template text; ``{{`` is a brace.

    Example: ``format('{0}/{1}', 'eu', 3) == 'eu/3'``.
    """
    _need("format", 1, template, str)
    out: list[str] = []
    i = 0
    n = len(template)
    while i < n:
        ch = template[i]
        if ch == "{":
            if template.startswith("{{", i):
                out.append("{")
                i += 2
                continue
            end = template.find("}", i)
            digits = template[i + 1 : end] if end != -1 else ""
            if not (digits.isascii() and digits.isdigit()):
                raise EvaluationFailure(
                    f"format() has a bad placeholder at position {i}: use {{0}}, {{1}}... or {{{{"
                )
            index = int(digits)
            if index >= len(values):
                raise EvaluationFailure(
                    f"format() placeholder {{{index}}} has no value: {len(values)} given"
                )
            out.append(to_text(values[index]))
            i = end + 1
        elif ch == "}":
            if template.startswith("}}", i):
                out.append("}")
                i += 2
                continue
            raise EvaluationFailure(f"format() has a lone '}}' at position {i}: write '}}}}'")
        else:
            out.append(ch)
            i += 1
    return check_size("".join(out))  # type: ignore[no-any-return]


@_builtin("keys", 1)
def keys(mapping: Any) -> list[Any]:
    """The keys of a map, in insertion order. Example: ``keys({'a': 1}) == ['a']``."""
    _need("keys", 1, mapping, dict)
    return list(mapping)


@_builtin("values", 1)
def values(mapping: Any) -> list[Any]:
    """The values of a map, in insertion order. Example: ``values({'a': 1}) == [1]``."""
    _need("values", 1, mapping, dict)
    return list(mapping.values())


_INT_TEXT: Final = re2.compile(r"^\s*[+-]?[0-9]+\s*$", _RE2_OPTIONS)
_FLOAT_TEXT: Final = re2.compile(
    r"^\s*[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$", _RE2_OPTIONS
)


@_builtin("int", 1)
def int_(value: Any) -> int:
    """Convert to an integer: floats truncate toward zero, strings must be whole numbers.

    Example: ``int('42') == 42``, ``int(2.9) == 2``, ``int(true) == 1``.
    """
    t = type(value)
    if t is int:
        return value  # type: ignore[no-any-return]
    if t is bool:
        return 1 if value else 0
    if t is float:
        if not math.isfinite(value):
            raise EvaluationFailure("int() cannot convert a non-finite number")
        return check_int(int(value))
    if t is str:
        if _INT_TEXT.match(value) is None:
            raise EvaluationFailure(f"int() cannot convert {_short(value)}: not a whole number")
        return _parse_int(value)
    raise EvaluationFailure(f"int() cannot convert {kind(value)}")


@_builtin("float", 1)
def float_(value: Any) -> float:
    """Convert to a float. Example: ``float('2.5') == 2.5``, ``float(2) == 2.0``."""
    t = type(value)
    if t is float:
        return value  # type: ignore[no-any-return]
    if t is int:
        return check_float(float(value))
    if t is str:
        if _FLOAT_TEXT.match(value) is None:
            raise EvaluationFailure(f"float() cannot convert {value!r}: not a number")
        return check_float(float(value))
    raise EvaluationFailure(f"float() cannot convert {kind(value)}")


@_builtin("string", 1)
def string(value: Any) -> str:
    """Render as template text: null is empty, lists and maps are compact JSON.

    Example: ``'attempt ' + string(3) == 'attempt 3'``.
    """
    return check_size(to_text(value))  # type: ignore[no-any-return]


@_builtin("bool", 1)
def bool_(value: Any) -> bool:
    """Convert to a boolean: 'true'/'false' (any case), numbers (0 is false), null is false.

    Example: ``bool('True') == true``.
    """
    t = type(value)
    if t is bool:
        return value  # type: ignore[no-any-return]
    if value is None:
        return False
    if t is int or t is float:
        return bool(value != 0)
    if t is str:
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return bool(lowered == "true")
        raise EvaluationFailure(f"bool() cannot convert {value!r}: use 'true' or 'false'")
    raise EvaluationFailure(f"bool() cannot convert {kind(value)}")


@_builtin("type", 1)
def type_(value: Any) -> str:
    """The type name: null, bool, int, float, string, list or map.

    Example: ``type(1.5) == 'float'``.
    """
    return type_name(value)


@_builtin("toJSON", 1)
def to_json(value: Any) -> str:
    """Compact JSON text of a value. Example: ``toJSON({'a': [1]}) == '{"a":[1]}'``."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise EvaluationFailure("toJSON() cannot write a non-finite number") from None
    return check_size(text)  # type: ignore[no-any-return]


def _reject_constant(name: str) -> Any:
    raise EvaluationFailure(f"fromJSON() does not accept {name}")


def _parse_int(text: str) -> int:
    # More digits than a 64-bit integer has is an overflow, decided before Python's own
    # (4,300-digit) conversion limit can raise.
    if len(text.strip().lstrip("+-").lstrip("0")) > _INT_DIGITS:
        raise EvaluationFailure("integer overflow: the number does not fit in 64 bits")
    return check_int(int(text))


_INT_DIGITS: Final = 19


def _short(text: str, limit: int = 40) -> str:
    """A string as quoted in an error: its first characters only."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text)} characters)"


def _parse_float(text: str) -> float:
    return check_float(float(text))


@_builtin("fromJSON", 1)
def from_json(text: Any) -> Any:
    """Parse JSON text. Example: ``fromJSON('{"a": 1}').a == 1``."""
    _need("fromJSON", 1, text, str)
    try:
        value = json.loads(
            text, parse_constant=_reject_constant, parse_float=_parse_float, parse_int=_parse_int
        )
    except json.JSONDecodeError as error:
        raise EvaluationFailure(
            f"fromJSON() got invalid JSON: {error.msg} at position {error.pos}"
        ) from None
    except RecursionError:
        raise EvaluationFailure("fromJSON() got JSON nested too deeply") from None
    if "\\u" in text and _has_surrogate(value):
        raise EvaluationFailure("fromJSON() got a lone surrogate ('\\ud800'-'\\udfff')")
    return value


def _has_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if type(item) is str:
            if _SURROGATE.search(item):
                return True
        elif type(item) is list:
            stack.extend(item)
        elif type(item) is dict:
            stack.extend(item)
            stack.extend(item.values())
    return False


_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _comparable_items(name: str, args: tuple[Any, ...]) -> list[Any]:
    items = list(args[0]) if len(args) == 1 and type(args[0]) is list else list(args)
    if len(args) == 1 and type(args[0]) is not list:
        raise EvaluationFailure(f"{name}() expects a list or at least 2 arguments")
    if not items:
        raise EvaluationFailure(f"{name}() of an empty list")
    _homogeneous(name, items)
    return items


def _homogeneous(name: str, items: list[Any]) -> None:
    first = items[0]
    numeric = type(first) in (int, float)
    for item in items:
        t = type(item)
        if numeric and t in (int, float):
            continue
        if not numeric and t is str and type(first) is str:
            continue
        raise EvaluationFailure(
            f"{name}() needs all numbers or all strings, got {kind(first)} and {kind(item)}"
        )


@_builtin("min", 1, None)
def min_(*args: Any) -> Any:
    """Smallest of a list or of the arguments. Example: ``min([3, 1, 2]) == 1``."""
    return min(_comparable_items("min", args))


@_builtin("max", 1, None)
def max_(*args: Any) -> Any:
    """Largest of a list or of the arguments. Example: ``max(1, 5, 3) == 5``."""
    return max(_comparable_items("max", args))


@_builtin("abs", 1)
def abs_(value: Any) -> Any:
    """Absolute value. Example: ``abs(-3) == 3``."""
    _number("abs", 1, value)
    return check_int(abs(value)) if type(value) is int else abs(value)


@_builtin("round", 1, 2)
def round_(value: Any, digits: Any = None) -> Any:
    """Round half away from zero: to an int, or to a float with ``digits`` decimals.

    Example: ``round(2.5) == 3``, ``round(3.14159, 2) == 3.14``.
    """
    _number("round", 1, value)
    if digits is None:
        if type(value) is int:
            return value
        if not math.isfinite(value):
            raise EvaluationFailure("round() cannot round a non-finite number")
        if abs(value) > INT_MAX:
            raise EvaluationFailure("integer overflow: the result does not fit in 64 bits")
        rounded = Decimal(repr(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return check_int(int(rounded))
    _need("round", 2, digits, int)
    if not 0 <= digits <= 15:
        raise EvaluationFailure("round() digits must be between 0 and 15")
    if abs(value) >= 2**53:  # no decimals left to round
        return float(value)
    exponent = Decimal(1).scaleb(-digits)
    return check_float(float(Decimal(repr(value)).quantize(exponent, rounding=ROUND_HALF_UP)))


@_builtin("sort", 1)
def sort(items: Any) -> list[Any]:
    """Sort a list of numbers or of strings. Example: ``sort(['b', 'a']) == ['a', 'b']``."""
    _need("sort", 1, items, list)
    if not items:
        return []
    _homogeneous("sort", items)
    return sorted(items)


def _identity(value: Any) -> Any:
    """A hashable key that is equal exactly when the values are deeply equal."""
    t = type(value)
    if t is bool:
        return ("b", value)
    if t is int or t is float:
        return ("n", value)
    if t is list:
        return ("l", tuple(_identity(item) for item in value))
    if t is dict:
        return ("m", frozenset((k, _identity(v)) for k, v in value.items()))
    return ("s", value)


@_builtin("unique", 1)
def unique(items: Any) -> list[Any]:
    """Drop repeated items, keeping the first of each. Example: ``unique([1, 2, 1]) == [1, 2]``."""
    _need("unique", 1, items, list)
    seen: set[Any] = set()
    out = []
    for item in items:
        identity = _identity(item)
        if identity not in seen:
            seen.add(identity)
            out.append(item)
    return out


@_builtin("flatten", 1)
def flatten(items: Any) -> list[Any]:
    """Splice nested lists one level deep.

    Example: ``flatten([[1], [2, 3], 4]) == [1, 2, 3, 4]``.
    """
    _need("flatten", 1, items, list)
    out: list[Any] = []
    for item in items:
        if type(item) is list:
            out.extend(item)
        else:
            out.append(item)
    return check_size(out)  # type: ignore[no-any-return]


@_builtin("merge", 1, None)
def merge(*maps: Any) -> dict[str, Any]:
    """Shallow-merge maps, later keys winning; null arguments are skipped.

    Example: ``merge({'a': 1}, {'a': 2, 'b': 3}) == {'a': 2, 'b': 3}``.
    """
    out: dict[str, Any] = {}
    for position, mapping in enumerate(maps, start=1):
        if mapping is None:
            continue
        _need("merge", position, mapping, dict)
        out.update(mapping)
    return out


@_builtin("range", 1, 3)
def range_(*args: Any) -> list[int]:
    """Integers from start (default 0) up to, not including, end, by step.

    Example: ``range(3) == [0, 1, 2]``, ``range(1, 10, 4) == [1, 5, 9]``.
    """
    for position, arg in enumerate(args, start=1):
        _need("range", position, arg, int)
    start, end, step = (0, args[0], 1) if len(args) == 1 else (args[0], args[1], 1)
    if len(args) == 3:
        step = args[2]
    if step == 0:
        raise EvaluationFailure("range() step must not be zero")
    count = len(range(start, end, step))
    if count > MAX_RANGE:
        raise EvaluationFailure(f"range() of {count} items exceeds the limit of {MAX_RANGE}")
    return list(range(start, end, step))
