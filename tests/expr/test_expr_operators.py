"""Operator semantics: arithmetic, comparison, equality, membership, logic, ``??``, ``?:``,
member access / indexing and null paths; every evaluation error with message and column.

Written from the spec, not from the implementation.
"""

from __future__ import annotations

import pytest

from engine.expr import (
    ExpressionCompileError,
    ExpressionError,
    ExpressionEvaluationError,
    compile_expression,
)

I64_MAX = 2**63 - 1
I64_MIN = -(2**63)

# A context with one value of every type, used by the type-error tables below.
CTX = {
    "inputs": {
        "n": 1,
        "zero": 0,
        "f": 1.5,
        "fzero": 0.0,
        "s": "x",
        "t": True,
        "F": False,
        "nil": None,
        "l": [1, 2],
        "m": {"a": 1},
        "max": I64_MAX,
        "min": I64_MIN,
        "big": 1e308,
        "neg": -7,
    }
}

# operand expression per type name
OPERAND = {
    "int": "inputs.n",
    "float": "inputs.f",
    "string": "inputs.s",
    "bool": "inputs.t",
    "null": "inputs.nil",
    "list": "inputs.l",
    "map": "inputs.m",
}


def ev(src, ctx=None, **kw):
    return compile_expression(src, **kw).evaluate(CTX if ctx is None else ctx)


def identical(actual, expected) -> bool:
    if expected is None or isinstance(expected, bool):
        return actual is expected
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, list):
        return len(actual) == len(expected) and all(map(identical, actual, expected))
    if isinstance(expected, dict):
        return set(actual) == set(expected) and all(
            identical(actual[k], expected[k]) for k in expected
        )
    return actual == expected


def check_rendering(err: ExpressionError) -> None:
    lines = str(err).split("\n")
    assert len(lines) == 2, str(err)
    prefix = f"{err.message} at column {err.column}: "
    assert lines[0] == prefix + err.source
    assert lines[1].rstrip() == " " * (len(prefix) + err.column - 1) + "^"


def eval_error(src, ctx=None) -> ExpressionEvaluationError:
    expr = compile_expression(src)  # must compile: these are evaluation-time errors
    with pytest.raises(ExpressionEvaluationError) as ei:
        expr.evaluate(CTX if ctx is None else ctx)
    err = ei.value
    assert err.source == src
    check_rendering(err)
    return err


def op_col(src, op) -> int:
    """Column of the (last) binary operator `op` written with surrounding spaces."""
    return src.rindex(f" {op} ") + 2


# ---- arithmetic


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("1 + 2", 3),
        ("1 + 2.5", 3.5),
        ("1.5 + 1.5", 3.0),
        ("'a' + 'b'", "ab"),
        ("'' + ''", ""),
        ("[1] + [2, 3]", [1, 2, 3]),
        ("[] + []", []),
        ("inputs.l + inputs.l", [1, 2, 1, 2]),
        ("'a' + string(1)", "a1"),
        ("5 - 7", -2),
        ("5 - 0.5", 4.5),
        ("2 * 3", 6),
        ("2.0 * 3", 6.0),
        ("-2 * -3", 6),
        ("6 / 3", 2),
        ("-6 / 3", -2),
        ("7 / 2", 3.5),
        ("-7 / 2", -3.5),
        ("1 / 4", 0.25),
        ("6.0 / 3", 2.0),
        ("6 / 3.0", 2.0),
        ("0 / 5", 0),
        ("7 % 3", 1),
        ("-7 % 3", -1),
        ("7 % -3", 1),
        ("-7 % -3", -1),
        ("6 % 3", 0),
        ("5.5 % 2", 1.5),
        ("-inputs.n", -1),
        ("-inputs.f", -1.5),
        ("-0", 0),
        ("inputs.max - 1 + 1", I64_MAX),
        ("inputs.min + 1 - 1", I64_MIN),
        ("inputs.min % -1", 0),
        ("inputs.max / 1", I64_MAX),
        ("inputs.min / 1", I64_MIN),
        ("inputs.max * -1", -I64_MAX),
        ("inputs.min / 2", I64_MIN // 2),
    ],
)
def test_arithmetic(src, expected):
    got = ev(src)
    assert identical(got, expected), got


def test_inexact_division_is_float():
    assert ev("1 / 3") == pytest.approx(1 / 3)
    assert type(ev("1 / 3")) is float
    assert type(ev("6 / 3")) is int


def test_add_does_not_alias_context_lists():
    ctx = {"inputs": {"l": [1]}}
    out = ev("inputs.l + []", ctx)
    assert out == [1]


ADD_OK = {
    ("int", "int"),
    ("int", "float"),
    ("float", "int"),
    ("float", "float"),
    ("string", "string"),
    ("list", "list"),
}
NUM = {"int", "float"}
TYPES = list(OPERAND)


@pytest.mark.parametrize("lt", TYPES)
@pytest.mark.parametrize("rt", TYPES)
@pytest.mark.parametrize("op", ["+", "-", "*", "%"])
def test_arithmetic_type_matrix(op, lt, rt):
    src = f"{OPERAND[lt]} {op} {OPERAND[rt]}"
    ok = (lt, rt) in ADD_OK if op == "+" else (lt in NUM and rt in NUM)
    if ok:
        ev(src)  # no error
    else:
        err = eval_error(src)
        assert err.column == op_col(src, op)


@pytest.mark.parametrize("lt", TYPES)
@pytest.mark.parametrize("rt", TYPES)
def test_division_type_matrix(lt, rt):
    src = f"{OPERAND[lt]} / {OPERAND[rt]}"
    if lt in NUM and rt in NUM:
        ev(src)
    else:
        err = eval_error(src)
        assert err.column == op_col(src, "/")


@pytest.mark.parametrize(
    "src",
    ["'a' + 1", "1 + 'a'", "'a' * 3", "[1] * 2", "{} + {}", "null + 1", "true + 1", "[1] + 'a'"],
)
def test_arithmetic_type_error_literals(src):
    op = next(o for o in "+-*/%" if f" {o} " in src)
    err = eval_error(src, {})
    assert err.column == op_col(src, op)


@pytest.mark.parametrize(
    "src",
    [
        "inputs.n / inputs.zero",
        "inputs.f / inputs.zero",
        "inputs.n / inputs.fzero",
        "1 / 0",
        "1.5 / 0.0",
    ],
)
def test_division_by_zero(src):
    err = eval_error(src)
    assert "zero" in err.message
    assert err.column == op_col(src, "/")


@pytest.mark.parametrize("src", ["inputs.n % inputs.zero", "5 % 0", "5.5 % 0"])
def test_modulo_by_zero(src):
    err = eval_error(src)
    assert err.column == op_col(src, "%")


@pytest.mark.parametrize("type_name", ["string", "bool", "null", "list", "map"])
def test_unary_minus_numbers_only(type_name):
    src = f"1 + -{OPERAND[type_name]}"
    err = eval_error(src)
    assert err.column == src.index("-") + 1


# ---- 64-bit overflow


@pytest.mark.parametrize(
    ("src", "op"),
    [
        ("inputs.max + 1", "+"),
        ("1 + inputs.max", "+"),
        ("inputs.min - 1", "-"),
        ("0 - inputs.min", "-"),
        ("inputs.max * 2", "*"),
        ("inputs.min * -1", "*"),
        ("inputs.min / -1", "/"),
        ("inputs.max + inputs.max", "+"),
        ("4294967296 * 4294967296", "*"),
    ],
)
def test_integer_overflow(src, op):
    err = eval_error(src)
    assert "overflow" in err.message
    assert err.column == op_col(src, op)


def test_unary_minus_overflow():
    src = "-inputs.min"
    err = eval_error(src)
    assert "overflow" in err.message
    assert err.column == 1


def test_integer_literal_out_of_range_is_an_error():
    with pytest.raises(ExpressionError):
        compile_expression("9223372036854775808").evaluate({})


# ---- non-finite floats


@pytest.mark.parametrize(
    ("src", "op"),
    [
        ("inputs.big * 10", "*"),
        ("inputs.big + inputs.big", "+"),
        ("-inputs.big - inputs.big", "-"),
        ("inputs.big / 1e-308", "/"),
        ("1e308 * 1e308", "*"),
    ],
)
def test_non_finite_float_result_is_error(src, op):
    err = eval_error(src)
    assert err.column == op_col(src, op)


def test_huge_float_literal_is_an_error():
    with pytest.raises(ExpressionError):
        compile_expression("1e999").evaluate({})


# ---- equality


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("1 == 1", True),
        ("1 == 1.0", True),
        ("1.0 == 1", True),
        ("0 == -0.0", True),
        ("1 == 2", False),
        ("'a' == 'a'", True),
        ("'a' == 'A'", False),
        ("null == null", True),
        ("true == true", True),
        ("true == 1", False),
        ("1 == true", False),
        ("false == 0", False),
        ("'1' == 1", False),
        ("null == false", False),
        ("null == 0", False),
        ("null == ''", False),
        ("null == []", False),
        ("[] == {}", False),
        ("[1, 2] == [1, 2]", True),
        ("[1, 2] == [2, 1]", False),
        ("[1, 2] == [1, 2.0]", True),
        ("[1] == [true]", False),
        ("[[1], {'a': [null]}] == [[1.0], {'a': [null]}]", True),
        ("{'a': 1, 'b': 2} == {'b': 2, 'a': 1}", True),
        ("{'a': 1} == {'a': 1.0}", True),
        ("{'a': true} == {'a': 1}", False),
        ("{'a': 1} == {'a': 1, 'b': 2}", False),
        ("{'a': null} == {}", False),
        ("inputs.l == [1, 2]", True),
        ("inputs.m == {a: 1}", True),
        ("inputs.missing == null", True),
        ("1 != 1.0", False),
        ("true != 1", True),
        ("'1' != 1", True),
        ("null != false", True),
        ("[1] != [1]", False),
        ("{'a': 1} != {'a': 2}", True),
    ],
)
def test_equality(src, expected):
    assert ev(src) is expected


@pytest.mark.parametrize("lt", TYPES)
@pytest.mark.parametrize("rt", TYPES)
def test_equality_never_errors_across_types(lt, rt):
    eq = ev(f"{OPERAND[lt]} == {OPERAND[rt]}")
    ne = ev(f"{OPERAND[lt]} != {OPERAND[rt]}")
    assert isinstance(eq, bool) and ne is (not eq)
    if lt != rt and {lt, rt} != {"int", "float"}:
        assert eq is False


# ---- ordering


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("1 < 2", True),
        ("2 < 1", False),
        ("1 <= 1", True),
        ("1 > 0.5", True),
        ("1.5 >= 1.5", True),
        ("1 >= 1.0", True),
        ("-1 < 0", True),
        ("'a' < 'b'", True),
        ("'b' < 'a'", False),
        ("'a' < 'ab'", True),
        ("'B' < 'a'", True),
        ("'abc' <= 'abc'", True),
        ("'b' > 'a'", True),
        ("'a' >= 'b'", False),
        ("inputs.max > inputs.min", True),
        ("9007199254740993 > 9007199254740992", True),
    ],
)
def test_ordering(src, expected):
    assert ev(src) is expected


ORD_OK = {
    ("int", "int"),
    ("int", "float"),
    ("float", "int"),
    ("float", "float"),
    ("string", "string"),
}


@pytest.mark.parametrize("lt", TYPES)
@pytest.mark.parametrize("rt", TYPES)
@pytest.mark.parametrize("op", ["<", "<=", ">", ">="])
def test_ordering_type_matrix(op, lt, rt):
    src = f"{OPERAND[lt]} {op} {OPERAND[rt]}"
    if (lt, rt) in ORD_OK:
        assert isinstance(ev(src), bool)
    else:
        err = eval_error(src)
        assert err.message.startswith("cannot compare")
        assert err.column == op_col(src, op)


@pytest.mark.parametrize(
    ("src", "message"),
    [
        ('state.count > "3"', "cannot compare number with string"),
        ('"3" < state.count', "cannot compare string with number"),
        ("state.count >= '3'", "cannot compare number with string"),
        ("state.f <= 'x'", "cannot compare number with string"),
    ],
)
def test_ordering_error_message_spec(src, message):
    err = eval_error(src, {"state": {"count": 1, "f": 1.5}})
    assert err.message == message
    assert err.column == next(src.index(o) for o in ("<=", ">=", "<", ">") if o in src) + 1


# ---- in


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("1 in [1, 2]", True),
        ("3 in [1, 2]", False),
        ("1.0 in [1, 2]", True),
        ("true in [1]", False),
        ("1 in [true]", False),
        ("null in [null]", True),
        ("null in []", False),
        ("[1] in [[1], [2]]", True),
        ("{'a': 1} in [{'a': 1.0}]", True),
        ("'a' in {'a': 1}", True),
        ("'b' in {'a': 1}", False),
        ("'a' in {'a': null}", True),
        ("'b' in 'abc'", True),
        ("'bc' in 'abc'", True),
        ("'' in 'abc'", True),
        ("'d' in 'abc'", False),
        ("'B' in 'abc'", False),
        ("inputs.s in ['x', 'y']", True),
        ("'items' in {}", False),
        ("'keys' in {'keys': 1}", True),
    ],
)
def test_in(src, expected):
    assert ev(src) is expected


@pytest.mark.parametrize(
    "src",
    [
        "1 in 'abc'",
        "1 in 5",
        "'a' in 5",
        "'a' in null",
        "'a' in true",
        "[1] in 'abc'",
        "null in 'abc'",
        "inputs.n in inputs.n",
    ],
)
def test_in_errors(src):
    err = eval_error(src)
    assert err.column == src.index(" in ") + 2


# ---- logic


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("true && true", True),
        ("true && false", False),
        ("false && true", False),
        ("true && null", False),
        ("null && true", False),
        ("null && null", False),
        ("true || false", True),
        ("false || false", False),
        ("null || true", True),
        ("null || null", False),
        ("false || null", False),
        ("!true", False),
        ("!false", True),
        ("!null", True),
        ("!!null", False),
        ("not null", True),
        ("true and true", True),
        ("true and null", False),
        ("null or false", False),
        ("inputs.missing || true", True),
        ("!inputs.missing", True),
        ("inputs.t && !inputs.F", True),
    ],
)
def test_logic(src, expected):
    assert ev(src) is expected


@pytest.mark.parametrize(
    "src",
    [
        "false && (1 / 0 > 0)",
        "false && 'not a bool'",
        "false && inputs.n",
        "null && 1 / 0",
        "false and 1 / 0",
        "false && inputs.s > 3",
        "false && size(5)",
        "false && int('x')",
    ],
)
def test_and_short_circuits(src):
    assert ev(src) is False


@pytest.mark.parametrize(
    "src",
    [
        "true || (1 / 0 > 0)",
        "true || 'not a bool'",
        "true or 1 / 0",
        "true || inputs.s > 3",
        "true || size(5)",
    ],
)
def test_or_short_circuits(src):
    assert ev(src) is True


def test_short_circuit_left_to_right_chain():
    assert ev("true && false && 1 / 0") is False
    assert ev("false || true || 1 / 0") is True
    assert ev("false || false || true") is True


@pytest.mark.parametrize("type_name", ["int", "float", "string", "list", "map"])
@pytest.mark.parametrize("op", ["&&", "||", "and", "or"])
def test_logic_rejects_non_boolean_left(op, type_name):
    src = f"{OPERAND[type_name]} {op} true"
    err = eval_error(src)
    assert "??" in err.message or "compar" in err.message
    assert err.column in (1, op_col(src, op))


@pytest.mark.parametrize("type_name", ["int", "float", "string", "list", "map"])
@pytest.mark.parametrize(("op", "left"), [("&&", "true"), ("||", "false")])
def test_logic_rejects_non_boolean_right(op, left, type_name):
    src = f"{left} {op} {OPERAND[type_name]}"
    err = eval_error(src)
    assert "??" in err.message or "compar" in err.message
    assert err.column in (op_col(src, op), src.index("inputs") + 1)


@pytest.mark.parametrize("type_name", ["int", "float", "string", "list", "map"])
@pytest.mark.parametrize("op", ["!", "not "])
def test_not_rejects_non_boolean(op, type_name):
    src = f"true && {op}{OPERAND[type_name]}"
    err = eval_error(src)
    assert "??" in err.message or "compar" in err.message
    assert err.column in (src.index(op.strip()) + 1, src.index("inputs") + 1)


def test_logic_results_are_booleans():
    for src in ("null && true", "null || null", "!null", "true && true", "false || true"):
        assert type(ev(src)) is bool


# ---- ?: and ??


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("true ? 1 : 2", 1),
        ("false ? 1 : 2", 2),
        ("null ? 1 : 2", 2),
        ("inputs.missing ? 1 : 2", 2),
        ("true ? 1 : 1 / 0", 1),
        ("false ? 1 / 0 : 2", 2),
        ("inputs.t ? 'yes' : 'no'", "yes"),
        ("1 < 2 ? [1] : {}", [1]),
    ],
)
def test_conditional(src, expected):
    assert identical(ev(src), expected)


@pytest.mark.parametrize("type_name", ["int", "float", "string", "list", "map"])
def test_conditional_rejects_non_boolean(type_name):
    src = f"{OPERAND[type_name]} ? 1 : 2"
    err = eval_error(src)
    assert "??" in err.message or "compar" in err.message
    assert err.column in (1, src.index("?") + 1)


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("null ?? 1", 1),
        ("0 ?? 1", 0),
        ("false ?? 1", False),
        ("'' ?? 1", ""),
        ("[] ?? 1", []),
        ("inputs.missing ?? 'd'", "d"),
        ("inputs.missing.deeper ?? 'd'", "d"),
        ("inputs.n ?? 1 / 0", 1),
        ("inputs.nil ?? inputs.missing ?? null", None),
        ("inputs.l[5] ?? -1", -1),
    ],
)
def test_null_coalescing(src, expected):
    assert identical(ev(src), expected)


# ---- member access / index


@pytest.mark.parametrize(
    "src",
    [
        "inputs.missing",
        "inputs.missing.deeper",
        "inputs.missing[0]",
        "inputs.missing['k']",
        "inputs.nil.x",
        "inputs.nil[0]",
        "inputs.nil['x']",
        "inputs.l[2]",
        "inputs.l[100]",
        "inputs.l[-3]",
        "inputs.l[-100]",
        "inputs.m.b",
        "inputs.m['b']",
        "inputs.m.b.c.d",
        "[][0]",
        "{}.a",
        "null.a",
        "null[0]",
    ],
)
def test_null_paths(src):
    assert ev(src) is None


@pytest.mark.parametrize(
    ("src", "offender"),
    [
        ("inputs.s.x", ".x"),
        ("inputs.s[0]", "[0]"),
        ("inputs.s['x']", "['x']"),
        ("inputs.n.x", ".x"),
        ("inputs.n[0]", "[0]"),
        ("inputs.f.x", ".x"),
        ("inputs.t.x", ".x"),
        ("inputs.F[0]", "[0]"),
        ("inputs.l.x", ".x"),
        ("inputs.l.length", ".length"),
        ("inputs.l['x']", "['x']"),
        ("inputs.l['0']", "['0']"),
        ("inputs.m[0]", "[0]"),
        ("inputs.m[1.5]", "[1.5]"),
        ("inputs.m[true]", "[true]"),
        ("inputs.l[inputs.m]", "[inputs.m]"),
        ("'abc'.length", ".length"),
        ("'abc'[0]", "[0]"),
        ("(1).x", ".x"),
    ],
)
def test_member_and_index_errors(src, offender):
    start = src.rindex(offender)
    try:
        compile_expression(src)
    except ExpressionCompileError as err:
        # a literal index of the wrong type may be rejected at compile time
        assert "[" in offender and offender[1] not in "'\"i", src
        error = err
    else:
        error = eval_error(src)
    # the caret is under the '.' / '[' or under the key / index inside it
    assert error.column in (start + 1, start + 2)
    check_rendering(error)


def test_computed_index_by_expression():
    assert ev("inputs.l[inputs.n - 1]") == 1
    assert ev("inputs.m['a' + '']") == 1
    assert ev("[10, 20, 30][-1]") == 30


# ---- determinism / misc


def test_operations_return_fresh_values():
    ctx = {"inputs": {"l": [1, 2]}}
    expr = compile_expression("inputs.l + [3]")
    a = expr.evaluate(ctx)
    b = expr.evaluate(ctx)
    assert a == b == [1, 2, 3]
    assert ctx["inputs"]["l"] == [1, 2]
