"""Limits: source length, nesting depth, long flat chains, range size, built string/list size.

Written from the spec, not from the implementation.
"""

from __future__ import annotations

import pytest

from engine.expr import (
    ExpressionCompileError,
    ExpressionError,
    ExpressionEvaluationError,
    compile_expression,
    compile_template,
)

MAX_SOURCE = 4096
MAX_DEPTH = 64
MAX_SIZE = 1_048_576
MAX_RANGE = 10_000


def ev(src, ctx=None):
    return compile_expression(src).evaluate({} if ctx is None else ctx)


def check_rendering(err: ExpressionError) -> None:
    lines = str(err).split("\n")
    assert len(lines) == 2
    prefix = f"{err.message} at column {err.column}: "
    assert lines[0] == prefix + err.source
    assert lines[1].rstrip() == " " * (len(prefix) + err.column - 1) + "^"


# ---- source length


def _padded(body: str, length: int) -> str:
    assert len(body) <= length
    return body + " " * (length - len(body))


@pytest.mark.parametrize("length", [MAX_SOURCE - 1, MAX_SOURCE])
def test_source_at_limit_compiles(length):
    body = "1" + " + 1" * 900  # 3601 chars, flat
    assert ev(_padded(body, length)) == 901


@pytest.mark.parametrize("length", [MAX_SOURCE + 1, MAX_SOURCE * 4])
def test_source_over_limit_is_compile_error(length):
    src = _padded("1 + 1", length)
    with pytest.raises(ExpressionCompileError) as ei:
        compile_expression(src)
    err = ei.value
    assert "4096" in err.message or "4 KiB" in err.message or "4KiB" in err.message
    assert 1 <= err.column <= length + 1


def test_source_over_limit_string_literal():
    src = "'" + "x" * MAX_SOURCE + "'"
    with pytest.raises(ExpressionCompileError):
        compile_expression(src)


def test_huge_source_fails_fast():
    import time

    src = "(" * 100_000 + "1" + ")" * 100_000
    start = time.perf_counter()
    with pytest.raises(ExpressionCompileError):
        compile_expression(src)
    assert time.perf_counter() - start < 0.5


# ---- nesting depth


def nested(kind: str, depth: int) -> str:
    if kind == "paren":
        return "(" * depth + "1" + ")" * depth
    if kind == "bracket":
        return "[" * depth + "1" + "]" * depth
    if kind == "map":
        return "{a: " * depth + "1" + "}" * depth
    if kind == "not":
        return "!" * depth + "true"
    if kind == "not_word":
        return "not " * depth + "true"
    if kind == "minus":
        return "- " * depth + "1"
    if kind == "mixed":
        # alternate unary minus and parentheses: each contributes one level
        out = ""
        for i in range(depth):
            out += "-" if i % 2 == 0 else "("
        closers = depth // 2
        return out + "1" + ")" * closers
    raise AssertionError(kind)


KINDS = ["paren", "bracket", "map", "not", "not_word", "minus", "mixed"]


@pytest.mark.parametrize("kind", KINDS)
def test_nesting_at_limit_compiles(kind):
    src = nested(kind, MAX_DEPTH)
    assert len(src) <= MAX_SOURCE
    compile_expression(src).evaluate({})


@pytest.mark.parametrize("kind", KINDS)
def test_nesting_over_limit_is_compile_error(kind):
    src = nested(kind, MAX_DEPTH + 1)
    with pytest.raises(ExpressionCompileError) as ei:
        compile_expression(src)
    err = ei.value
    msg = err.message.lower()
    assert "nest" in msg or "depth" in msg
    assert 1 <= err.column <= len(src)
    check_rendering(err)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("depth", [200, 1000])
def test_deep_nesting_never_crashes(kind, depth):
    src = nested(kind, depth)
    if len(src) > MAX_SOURCE:
        src = src[:MAX_SOURCE]
    with pytest.raises(ExpressionCompileError):
        compile_expression(src)


def test_nested_calls_over_limit():
    src = "abs(" * 100 + "1" + ")" * 100
    with pytest.raises(ExpressionCompileError):
        compile_expression(src)


def test_nesting_values_are_right():
    assert ev(nested("paren", MAX_DEPTH)) == 1
    assert ev(nested("not", MAX_DEPTH)) is True
    assert ev(nested("minus", MAX_DEPTH)) == 1
    v = ev(nested("bracket", MAX_DEPTH))
    for _ in range(MAX_DEPTH - 1):
        v = v[0]
    assert v == [1]


# ---- flat chains


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        (" && ".join(["inputs.t"] * 200), True),
        (" and ".join(["inputs.t"] * 200), True),
        (" || ".join(["inputs.f"] * 200), False),
        (" || ".join(["inputs.f"] * 199 + ["inputs.t"]), True),
        (" + ".join(["1"] * 500), 500),
        (" - ".join(["1"] * 500), 1 - 499),
        (" * ".join(["1"] * 500), 1),
        (" + ".join(["'a'"] * 500), "a" * 500),
        (" ?? ".join(["null"] * 300 + ["7"]), 7),
        ("[" + ", ".join(["1"] * 1000) + "]", [1] * 1000),
        ("inputs" + ".a" * 300, None),
        ("inputs" + "['a']" * 300, None),
        ("size(" + " + ".join(["[1]"] * 500) + ")", 500),
    ],
    ids=[
        "and-200",
        "and-word-200",
        "or-200",
        "or-200-true",
        "plus-500",
        "minus-500",
        "times-500",
        "concat-500",
        "coalesce-301",
        "list-1000",
        "dot-path-300",
        "index-path-300",
        "list-concat-500",
    ],
)
def test_long_flat_chains_compile(src, expected):
    assert len(src) <= MAX_SOURCE
    assert ev(src, {"inputs": {"t": True, "f": False}}) == expected


# ---- range size


def test_range_at_limit():
    assert len(ev("range(inputs.n)", {"inputs": {"n": MAX_RANGE}})) == MAX_RANGE
    assert len(ev("range(-5, inputs.n - 5)", {"inputs": {"n": MAX_RANGE}})) == MAX_RANGE


@pytest.mark.parametrize(
    "src",
    [
        "range(inputs.n + 1)",
        "range(0, inputs.n * 10, 1)",
        "range(inputs.n * 1000, 0, -1)",
        "range(9223372036854775807)",
    ],
)
def test_range_over_limit(src):
    expr = compile_expression(src)
    with pytest.raises(ExpressionEvaluationError) as ei:
        expr.evaluate({"inputs": {"n": MAX_RANGE}})
    assert ei.value.column in (1, 7)
    check_rendering(ei.value)


# ---- built string / list size


def test_string_at_limit_is_fine():
    s = "a" * (MAX_SIZE // 2)
    assert len(ev("inputs.s + inputs.s", {"inputs": {"s": s}})) == MAX_SIZE


def test_list_at_limit_is_fine():
    lst = [0] * (MAX_SIZE // 2)
    assert len(ev("inputs.l + inputs.l", {"inputs": {"l": lst}})) == MAX_SIZE


@pytest.mark.parametrize(
    ("src", "ctx", "column_of"),
    [
        ("inputs.s + inputs.s", {"s": "a" * (MAX_SIZE // 2 + 1)}, "+"),
        ("inputs.l + inputs.l", {"l": [0] * (MAX_SIZE // 2 + 1)}, "+"),
        ("inputs.l + inputs.l + inputs.l", {"l": [0] * 400_000}, "+ inputs.l + "),
        ("inputs.s + 'x'", {"s": "a" * MAX_SIZE}, "+"),
        ("join(inputs.l, 'xx')", {"l": ["a"] * 400_000}, None),
        ("replace(inputs.s, 'a', 'aaaa')", {"s": "a" * 300_000}, None),
        ("format('{0}{0}{0}{0}', inputs.s)", {"s": "a" * 300_000}, None),
        ("toJSON(inputs.l)", {"l": ["abcdef"] * 200_000}, None),
        ("string(inputs.l)", {"l": ["abcdef"] * 200_000}, None),
        ("flatten(inputs.ll)", {"ll": [[0] * 600_000, [0] * 600_000]}, None),
    ],
)
def test_built_value_over_limit(src, ctx, column_of):
    expr = compile_expression(src)
    with pytest.raises(ExpressionEvaluationError) as ei:
        expr.evaluate({"inputs": ctx})
    err = ei.value
    if column_of is None:
        assert err.column in (1, src.index("(") + 2)
    elif column_of == "+ inputs.l + ":
        # the second '+' is where the total first exceeds the limit
        assert err.column == src.rindex("+") + 1
    else:
        assert err.column == src.index(column_of) + 1


def test_repeated_concatenation_is_stopped():
    # 120 x 10,000 items: the list limit must stop it long before memory runs out
    src = "size(" + " + ".join(["range(10000)"] * 120) + ")"
    assert len(src) <= MAX_SOURCE
    with pytest.raises(ExpressionEvaluationError):
        ev(src)


# ---- values that compile and fail when they run: an evaluation error, never another exception
# (inside a run, any other exception would fail the workflow task and wedge the run)

HUGE_DIGITS = "1" * 5000


@pytest.mark.parametrize(
    ("src", "inputs", "message"),
    [
        ("int(inputs.x)", {"x": HUGE_DIGITS}, "does not fit in 64 bits"),
        ("fromJSON(inputs.x)", {"x": HUGE_DIGITS}, "does not fit in 64 bits"),
        ("int('99999999999999999999')", {}, "does not fit in 64 bits"),
        ("format('{²}')", {}, "bad placeholder"),
        ("format('{٣}', 1)", {}, "bad placeholder"),
        ("round(1e300)", {}, "does not fit in 64 bits"),
        ("round(inputs.x)", {"x": -1e300}, "does not fit in 64 bits"),
        ("toJSON(inputs.x)", {"x": float("nan")}, "non-finite number"),
    ],
)
def test_run_time_failures_are_evaluation_errors(src, inputs, message):
    with pytest.raises(ExpressionEvaluationError) as caught:
        compile_expression(src).evaluate({"inputs": inputs})
    assert message in str(caught.value)
    assert len(str(caught.value)) < 600  # the input is not echoed whole


def test_round_with_digits_keeps_numbers_too_large_for_decimals():
    assert compile_expression("round(inputs.x, 2)").evaluate({"inputs": {"x": 1e300}}) == 1e300


def test_an_unforeseen_exception_is_an_evaluation_error(monkeypatch):
    from engine.expr import _functions

    def broken(_value):
        raise KeyError("surprise")

    monkeypatch.setitem(_functions.FUNCTIONS, "lower", broken)
    expression = compile_expression("lower(inputs.x)")
    with pytest.raises(ExpressionEvaluationError, match="expression failed: 'surprise'"):
        expression.evaluate({"inputs": {"x": "A"}})
    template = compile_template("a ${{ lower(inputs.x) }} b")
    with pytest.raises(ExpressionEvaluationError, match="expression failed"):
        template.render({"inputs": {"x": "A"}})
