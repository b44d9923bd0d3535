"""Property tests (hypothesis): robustness of the compiler on random text and token soups,
determinism of evaluation and rendering, and agreement with reference semantics written here
from the spec (64-bit integer arithmetic, JSON deep equality, text rendering, JSON round trip).
"""

from __future__ import annotations

import contextlib
import json
import math
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.expr import (
    DEFAULT_ROOTS,
    FUNCTIONS,
    ExpressionCompileError,
    ExpressionError,
    ExpressionEvaluationError,
    compile_expression,
    compile_template,
)

I64_MIN, I64_MAX = -(2**63), 2**63 - 1

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MEDIUM = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---- reference semantics


def is_json_value(v) -> bool:
    if v is None or isinstance(v, (bool, int, str)):
        return True
    if isinstance(v, float):
        return math.isfinite(v)
    if type(v) is list:
        return all(is_json_value(x) for x in v)
    if type(v) is dict:
        return all(type(k) is str and is_json_value(x) for k, x in v.items())
    return False


def json_eq(a, b) -> bool:
    """Spec equality: deep, int/float numeric, every other type mismatch unequal."""
    num = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, num) and isinstance(b, num):
        return a == b
    if a is None or b is None:
        return a is b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(json_eq(x, y) for x, y in zip(a, b, strict=False))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(json_eq(a[k], b[k]) for k in a)
    return a == b


def to_text(v) -> str:
    if v is None:
        return ""
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, str):
        return v
    return json.dumps(v, separators=(",", ":"))


def canon(v) -> str:
    """A representation that distinguishes 1 / 1.0 / true and keeps key order."""
    return repr(v)


# ---- strategies

ascii_text = st.text(alphabet="abcxyz ,.-_'\"\\/{}$", max_size=8)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(I64_MIN, I64_MAX)
    | st.integers(-5, 5)
    | st.floats(allow_nan=False, allow_infinity=False)
    | ascii_text
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", "c", "items", "keys"]), children, max_size=4)
    ),
    max_leaves=12,
)
root_maps = st.dictionaries(
    st.sampled_from(["a", "b", "c", "l", "s", "n"]), json_values, max_size=6
)
contexts = st.dictionaries(st.sampled_from(list(DEFAULT_ROOTS)), root_maps, max_size=5)


def check_error(err: ExpressionError, src: str) -> None:
    assert isinstance(err.message, str) and err.message
    assert isinstance(err.column, int)
    assert 1 <= err.column <= len(src) + 1, (err.column, src)
    text = str(err)
    prefix = f"{err.message} at column {err.column}: "
    if src.isprintable():
        lines = text.split("\n")
        assert len(lines) == 2, text
        assert lines[0] == prefix + err.source
        assert lines[1].rstrip() == " " * (len(prefix) + err.column - 1) + "^"
    elif "\n" not in src and "\r" not in src:
        # control characters may be printed differently (e.g. a tab as a space); the caret
        # must still sit under the offending character as printed
        lines = text.split("\n")
        assert len(lines) == 2, text
        assert lines[0].startswith(prefix)
        caret = lines[1].rstrip()
        assert caret.strip() == "^"
        if (
            err.column <= len(src)
            and src[err.column - 1].isprintable()
            and not src[err.column - 1].isspace()
        ):
            assert lines[0][caret.index("^")] == src[err.column - 1], text


# ---- robustness


@MEDIUM
@given(st.text(max_size=120))
def test_random_text_only_raises_expression_errors(src):
    try:
        expr = compile_expression(src)
    except ExpressionError as err:
        assert isinstance(err, ExpressionCompileError)
        assert err.source == src
        check_error(err, src)
        return
    with contextlib.suppress(ExpressionEvaluationError):
        expr.evaluate({})


@FAST
@given(
    st.text(
        alphabet=st.sampled_from(list("()[]{}'\"\\$!&|?:.,+-*/%<>=# \nabcinstuef0123456789")),
        max_size=80,
    )
)
def test_random_punctuation_only_raises_expression_errors(src):
    try:
        compile_expression(src)
    except ExpressionError as err:
        check_error(err, src)


@FAST
@given(st.text(max_size=120))
def test_random_template_text_only_raises_expression_errors(text):
    try:
        tpl = compile_template(text)
    except ExpressionError as err:
        assert isinstance(err, ExpressionCompileError)
        assert 1 <= err.column <= len(text) + 1
        return
    with contextlib.suppress(ExpressionEvaluationError):
        tpl.render({})


TOKENS = (
    list(DEFAULT_ROOTS)
    + ["item", "stat", "foo", "a", "b", "items", "keys", "__class__"]
    + [f"{name}(" for name in FUNCTIONS]
    + ["lenght(", "(", ")", "[", "]", "{", "}", ",", ":", "?", "??", ".", "!", "not", "and", "or"]
    + ["&&", "||", "==", "!=", "<", "<=", ">", ">=", "in", "+", "-", "*", "/", "%", "="]
    + ["0", "1", "2", "-1", "3.5", "1e3", "2.5e-3", "9223372036854775807", "1e308"]
    + ["null", "true", "false", "'a'", '"b"', "''", "'\\n'", "'\\u00e9'", "'\\q'", "'unterminated"]
    + ["'a,b'", "','", "'{0}'", "'(a+)+$'", "'['", "'[1,2]'", "'1'", "${{", "}}", "#", "@"]
)

token_soup = st.lists(st.sampled_from(TOKENS), min_size=1, max_size=25)

SOUP_CTX = {
    "inputs": {"a": 1, "b": "x", "items": [1, 2, 3], "m": {"k": [1, {"z": None}]}, "s": "a,b"},
    "state": {"n": 2.5, "f": False, "l": ["a", "b"]},
    "steps": {"build": {"outputs": {"ok": True}}},
}


@MEDIUM
@given(token_soup, st.booleans())
def test_token_soup_only_raises_expression_errors(tokens, spaced):
    src = (" " if spaced else "").join(tokens)
    try:
        expr = compile_expression(src)
    except ExpressionError as err:
        assert isinstance(err, ExpressionCompileError)
        assert err.source == src
        check_error(err, src)
        return
    first = second = None
    try:
        first = canon(expr.evaluate(SOUP_CTX))
    except ExpressionEvaluationError as err:
        check_error(err, src)
        first = "error: " + str(err)
    try:
        second = canon(expr.evaluate(SOUP_CTX))
    except ExpressionEvaluationError as err:
        second = "error: " + str(err)
    assert first == second


@FAST
@given(token_soup)
def test_token_soup_in_templates(tokens):
    text = "x ${{ " + " ".join(tokens) + " }} y"
    try:
        tpl = compile_template(text)
    except ExpressionError as err:
        assert isinstance(err, ExpressionCompileError)
        assert 1 <= err.column <= len(text) + 1
        return
    try:
        out = tpl.render(SOUP_CTX)
    except ExpressionEvaluationError:
        return
    assert isinstance(out, str)


# ---- determinism

DET_EXPRS = [
    "inputs.a",
    "inputs",
    "inputs.a == inputs.b",
    "inputs.a != state.a",
    "inputs.a ?? inputs.b ?? 'd'",
    "size(inputs.a)",
    "toJSON(inputs)",
    "string(inputs.a)",
    "type(inputs.a)",
    "inputs.a + inputs.b",
    "inputs.a - inputs.b",
    "inputs.a * inputs.b",
    "inputs.a / inputs.b",
    "inputs.a % inputs.b",
    "-inputs.a",
    "keys(inputs)",
    "values(inputs)",
    "unique(values(inputs))",
    "inputs.a in inputs.b",
    "inputs.a < inputs.b",
    "sort(values(inputs))",
    "merge(inputs, state)",
    "inputs.a[0]",
    "inputs.a[-1]",
    "inputs.a.b",
    "inputs.a['items']",
    "inputs.a ? 1 : 2",
    "!inputs.a",
    "inputs.a && inputs.b || state.c",
    "flatten(values(inputs))",
    "format('{0}-{1}', inputs.a, inputs.b)",
    "join(values(inputs), ',')",
    "contains(inputs.a, inputs.b)",
    "min(values(inputs))",
    "max(inputs.a)",
    "int(inputs.a)",
    "float(inputs.a)",
    "bool(inputs.a)",
    "round(inputs.a)",
    "round(inputs.a, 2)",
    "abs(inputs.a)",
    "upper(inputs.a)",
    "trim(inputs.s)",
    "split(inputs.s, ',')",
    "replace(inputs.s, 'a', 'b')",
    "matches(inputs.s, 'a+')",
    "startsWith(inputs.s, 'a')",
    "fromJSON(inputs.s)",
    "range(inputs.n)",
    "{k: inputs.a, l: [inputs.b, state]}",
    "[inputs.a, inputs.b][inputs.n]",
    "inputs[inputs.s]",
]


def _outcome(expr, ctx):
    try:
        value = expr.evaluate(ctx)
    except ExpressionEvaluationError as err:
        check_error(err, expr.source)
        return "error: " + str(err), None
    assert is_json_value(value), repr(value)
    return canon(value), value


@MEDIUM
@given(st.sampled_from(DET_EXPRS), contexts)
def test_random_contexts_evaluate_deterministically(src, ctx):
    snapshot = canon(ctx)
    expr = compile_expression(src)
    first, _ = _outcome(expr, ctx)
    second, _ = _outcome(expr, ctx)
    third, _ = _outcome(compile_expression(src), ctx)
    assert first == second == third
    assert canon(ctx) == snapshot  # evaluation never mutates the context


@FAST
@given(contexts)
def test_render_is_deterministic(ctx):
    tpl = compile_template(
        "a=${{ inputs.a }} b=${{ state.b }} j=${{ toJSON(inputs) }} s=${{ inputs.s ?? 'none' }}"
    )
    outs = []
    for _ in range(2):
        try:
            outs.append(tpl.render(ctx))
        except ExpressionEvaluationError as err:
            outs.append("error: " + str(err))
    assert outs[0] == outs[1]


# ---- agreement with references


@MEDIUM
@given(json_values)
def test_single_template_returns_value_and_text_renders_like_reference(value):
    ctx = {"inputs": {"v": value}}
    single = compile_template("${{ inputs.v }}").render(ctx)
    assert canon(single) == canon(value)
    assert compile_template("<${{ inputs.v }}>").render(ctx) == "<" + to_text(value) + ">"
    assert compile_expression("string(inputs.v)").evaluate(ctx) == to_text(value)


@MEDIUM
@given(json_values)
def test_json_round_trip(value):
    ctx = {"inputs": {"v": value}}
    text = compile_expression("toJSON(inputs.v)").evaluate(ctx)
    assert json.loads(text) == json.loads(json.dumps(value))
    assert text == json.dumps(value, separators=(",", ":"))
    back = compile_expression("fromJSON(toJSON(inputs.v))").evaluate(ctx)
    assert canon(back) == canon(value)


@MEDIUM
@given(json_values, json_values)
def test_equality_matches_reference(a, b):
    ctx = {"inputs": {"a": a, "b": b}}
    assert compile_expression("inputs.a == inputs.b").evaluate(ctx) is json_eq(a, b)
    assert compile_expression("inputs.a != inputs.b").evaluate(ctx) is (not json_eq(a, b))
    assert compile_expression("inputs.a == inputs.a").evaluate(ctx) is True
    expected_in = any(json_eq(a, x) for x in [b, 1, "x"])
    assert compile_expression("inputs.a in [inputs.b, 1, 'x']").evaluate(ctx) is expected_in


@FAST
@given(st.lists(json_values, max_size=8))
def test_unique_matches_reference(items):
    expected = []
    for x in items:
        if not any(json_eq(x, y) for y in expected):
            expected.append(x)
    got = compile_expression("unique(inputs.l)").evaluate({"inputs": {"l": items}})
    assert canon(got) == canon(expected)


def ref_int_op(op, a, b):
    """Reference 64-bit integer semantics; returns ('ok', value) or ('error', kind)."""
    if op in ("<", "<=", ">", ">=", "==", "!="):
        return "ok", {
            "<": a < b,
            "<=": a <= b,
            ">": a > b,
            ">=": a >= b,
            "==": a == b,
            "!=": a != b,
        }[op]
    if op in ("/", "%") and b == 0:
        return "error", "zero"
    if op == "+":
        r = a + b
    elif op == "-":
        r = a - b
    elif op == "*":
        r = a * b
    elif op == "/":
        if a % b == 0:
            r = a // b
        else:
            return "ok", a / b
    elif op == "%":
        q = abs(a) // abs(b)
        if (a < 0) != (b < 0):
            q = -q
        r = a - b * q
    else:
        raise AssertionError(op)
    if not I64_MIN <= r <= I64_MAX:
        return "error", "overflow"
    return "ok", r


ints = (
    st.integers(I64_MIN, I64_MAX)
    | st.integers(-100, 100)
    | st.sampled_from([I64_MIN, I64_MAX, -1, 0, 1, 2**32, -(2**31)])
)


@MEDIUM
@given(st.sampled_from(["+", "-", "*", "/", "%", "<", "<=", ">", ">=", "==", "!="]), ints, ints)
def test_int_arithmetic_matches_python(op, a, b):
    src = f"inputs.a {op} inputs.b"
    expr = compile_expression(src)
    kind, expected = ref_int_op(op, a, b)
    ctx = {"inputs": {"a": a, "b": b}}
    if kind == "error":
        with pytest.raises(ExpressionEvaluationError) as ei:
            expr.evaluate(ctx)
        if expected == "overflow":
            assert "overflow" in ei.value.message
        assert ei.value.column == src.index(op) + 1
        return
    got = expr.evaluate(ctx)
    if isinstance(expected, float):
        assert type(got) is float
        assert math.isclose(got, expected, rel_tol=1e-15), (got, expected)
    else:
        assert type(got) is type(expected)
        assert got == expected


@FAST
@given(ints)
def test_unary_minus_and_abs_match_python(a):
    ctx = {"inputs": {"a": a}}
    if a == I64_MIN:
        for src in ("-inputs.a", "abs(inputs.a)"):
            with pytest.raises(ExpressionEvaluationError) as ei:
                compile_expression(src).evaluate(ctx)
            assert "overflow" in ei.value.message
    else:
        assert compile_expression("-inputs.a").evaluate(ctx) == -a
        assert compile_expression("abs(inputs.a)").evaluate(ctx) == abs(a)


@FAST
@given(st.lists(st.integers(-1000, 1000) | st.floats(-1e6, 1e6), max_size=10))
def test_sort_min_max_match_python(items):
    ctx = {"inputs": {"l": items}}
    assert compile_expression("sort(inputs.l)").evaluate(ctx) == sorted(items)
    if items:
        assert compile_expression("min(inputs.l)").evaluate(ctx) == min(items)
        assert compile_expression("max(inputs.l)").evaluate(ctx) == max(items)


@FAST
@given(st.text(alphabet="abc,; ", max_size=20), st.sampled_from([",", ";", "ab", " "]))
def test_split_join_replace_match_python(s, sep):
    ctx = {"inputs": {"s": s, "sep": sep}}
    assert compile_expression("split(inputs.s, inputs.sep)").evaluate(ctx) == s.split(sep)
    assert compile_expression("join(split(inputs.s, inputs.sep), inputs.sep)").evaluate(ctx) == s
    assert compile_expression("replace(inputs.s, inputs.sep, '#')").evaluate(ctx) == s.replace(
        sep, "#"
    )
    assert compile_expression("contains(inputs.s, inputs.sep)").evaluate(ctx) is (sep in s)
    assert compile_expression("inputs.sep in inputs.s").evaluate(ctx) is (sep in s)
    assert compile_expression("size(inputs.s)").evaluate(ctx) == len(s)
    assert compile_expression("startsWith(inputs.s, inputs.sep)").evaluate(ctx) is s.startswith(sep)
    assert compile_expression("endsWith(inputs.s, inputs.sep)").evaluate(ctx) is s.endswith(sep)


@FAST
@given(st.text(max_size=10), st.text(max_size=10))
def test_string_ordering_matches_code_points(a, b):
    ctx = {"inputs": {"a": a, "b": b}}
    assert compile_expression("inputs.a < inputs.b").evaluate(ctx) is (a < b)
    assert compile_expression("inputs.a >= inputs.b").evaluate(ctx) is (a >= b)


@FAST
@given(st.floats(-1e15, 1e15))
def test_round_half_away_from_zero(x):
    got = compile_expression("round(inputs.x)").evaluate({"inputs": {"x": x}})
    expected = int(Decimal(x).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    assert type(got) is int
    assert got == expected


@FAST
@given(st.integers(-50, 50), st.integers(-50, 50), st.integers(-7, 7))
def test_range_matches_python(a, b, step):
    ctx = {"inputs": {"a": a, "b": b, "s": step}}
    if step == 0:
        with pytest.raises(ExpressionEvaluationError):
            compile_expression("range(inputs.a, inputs.b, inputs.s)").evaluate(ctx)
        return
    assert compile_expression("range(inputs.a, inputs.b, inputs.s)").evaluate(ctx) == list(
        range(a, b, step)
    )
    assert compile_expression("range(inputs.a, inputs.b)").evaluate(ctx) == list(range(a, b))
    assert compile_expression("range(inputs.a)").evaluate(ctx) == list(range(a))


@FAST
@given(contexts)
def test_names_and_references_are_static(ctx):
    expr = compile_expression("inputs.a ?? state.b ?? steps.c.d")
    assert expr.names == frozenset({"inputs", "state", "steps"})
    before = expr.references
    with contextlib.suppress(ExpressionEvaluationError):
        expr.evaluate(ctx)
    assert expr.references == before
    assert [(r.root, r.key) for r in before] == [("inputs", "a"), ("state", "b"), ("steps", "c")]


@FAST
@given(st.integers(0, 70))
def test_paren_depth_boundary(depth):
    src = "(" * depth + "1" + ")" * depth
    if depth <= 64:
        assert compile_expression(src).evaluate({}) == 1
    else:
        with pytest.raises(ExpressionCompileError):
            compile_expression(src)


@st.composite
def arithmetic_source(draw, depth=0):
    """Random + - * expressions over small ints, with optional unary minus and parentheses.

    For these operators the spec's precedence and associativity are Python's, so Python's own
    eval is the reference."""
    n_terms = draw(st.integers(1, 6))
    parts = []
    for i in range(n_terms):
        if depth < 3 and draw(st.integers(0, 4)) == 0:
            term = "(" + draw(arithmetic_source(depth=depth + 1)) + ")"
        else:
            term = str(draw(st.integers(0, 99)))
        if draw(st.booleans()) and draw(st.booleans()):
            term = "-" + term
        if i:
            parts.append(draw(st.sampled_from(["+", "-", "*"])))
        parts.append(term)
    return " ".join(parts)


@MEDIUM
@given(arithmetic_source(), st.sampled_from(["", "<", "==", ">="]), arithmetic_source())
def test_precedence_matches_python_for_arithmetic_and_comparison(left, cmp, right):
    src = f"{left} {cmp} {right}" if cmp else left
    expected = eval(src, {"__builtins__": {}})
    try:
        actual = compile_expression(src).evaluate({})
    except ExpressionEvaluationError as err:
        # Python's integers are unbounded; ours overflow at 64 bits (tested on their own).
        assert "overflow" in err.message
        assume(False)
    assert actual == expected


@MEDIUM
@given(
    st.lists(
        st.sampled_from(["true", "false", "1 < 2", "2 < 1", "(true || false)"]),
        min_size=1,
        max_size=8,
    ),
    st.lists(st.sampled_from(["&&", "||"]), min_size=7, max_size=7),
)
def test_logic_precedence_matches_python(atoms, ops):
    src = atoms[0]
    py = atoms[0]
    for atom, op in zip(atoms[1:], ops, strict=False):
        src += f" {op} {atom}"
        py += f" {'and' if op == '&&' else 'or'} {atom}"
    py = py.replace("true", "True").replace("false", "False").replace("||", "or")
    assert compile_expression(src).evaluate({}) is eval(py, {"__builtins__": {}})
