"""Every built-in function: happy paths and each error.

Written from the spec, not from the implementation.
"""

from __future__ import annotations

import time

import pytest

from engine.expr import (
    ExpressionCompileError,
    ExpressionError,
    ExpressionEvaluationError,
    compile_expression,
)

I64_MAX = 2**63 - 1
I64_MIN = -(2**63)


def ev(src, ctx=None, **kw):
    return compile_expression(src, **kw).evaluate({} if ctx is None else ctx)


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


def arg_columns(src: str) -> set[int]:
    """1-based columns of the top-level arguments of the call that starts src."""
    cols: set[int] = set()
    depth = 0
    quote = None
    i = src.index("(")
    cols.add(i + 2)
    for j in range(i + 1, len(src)):
        ch = src[j]
        if quote:
            if ch == "\\":
                continue
            if ch == quote:
                quote = None
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            k = j + 1
            while src[k] == " ":
                k += 1
            cols.add(k + 1)
    return cols


def call_error(src, ctx=None) -> ExpressionEvaluationError:
    """src starts with a call; it must compile and fail at evaluation."""
    expr = compile_expression(src)
    with pytest.raises(ExpressionEvaluationError) as ei:
        expr.evaluate({} if ctx is None else ctx)
    err = ei.value
    assert err.source == src
    # caret under the function name, or under the offending argument
    assert err.column in {1} | arg_columns(src), (err.column, str(err))
    check_rendering(err)
    return err


# Values handed in through the context, so that nothing can be folded at compile time.
V = {
    "null": None,
    "true": True,
    "false": False,
    "int": 3,
    "float": 2.5,
    "str": "Hello",
    "list": [3, 1, 2],
    "map": {"b": 1, "a": 2},
}


def ctx_of(**values):
    return {"inputs": values}


# ---- happy paths

CASES = [
    # size
    ("size('abc')", 3),
    ("size('')", 0),
    ("size('é日')", 2),
    ("size([1, 2, [3, 4]])", 3),
    ("size({'a': 1, 'b': 2})", 2),
    ("size({})", 0),
    ("size(null)", 0),
    ("size(inputs.missing)", 0),
    # contains
    ("contains('abc', 'b')", True),
    ("contains('abc', 'abc')", True),
    ("contains('abc', 'x')", False),
    ("contains('abc', '')", True),
    ("contains([1, 2], 2)", True),
    ("contains([1, 2], 2.0)", True),
    ("contains([1, 2], 3)", False),
    ("contains([true], 1)", False),
    ("contains([1], true)", False),
    ("contains([[1], {'a': 1}], {'a': 1.0})", True),
    ("contains([null], null)", True),
    ("contains({'a': 1}, 'a')", True),
    ("contains({'a': 1}, 'b')", False),
    # startsWith / endsWith
    ("startsWith('abc', 'ab')", True),
    ("startsWith('abc', 'bc')", False),
    ("startsWith('abc', '')", True),
    ("endsWith('abc', 'bc')", True),
    ("endsWith('abc', 'ab')", False),
    ("endsWith('', '')", True),
    # lower / upper / trim
    ("lower('AbC É')", "abc é"),
    ("upper('aBc')", "ABC"),
    ("trim('  a b  ')", "a b"),
    ("trim('\\t\\n a \\r\\n')", "a"),
    ("trim('')", ""),
    # split
    ("split('a,b,c', ',')", ["a", "b", "c"]),
    ("split('a,,b', ',')", ["a", "", "b"]),
    ("split('abc', ',')", ["abc"]),
    ("split('a::b', '::')", ["a", "b"]),
    ("split('a.b', '.')", ["a", "b"]),
    # join
    ("join(['a', 'b'], ', ')", "a, b"),
    ("join(['a', 'b'])", "ab"),
    ("join([], ',')", ""),
    ("join(['x'], ',')", "x"),
    ("join([1, true, null, 1.5, [1, 'a'], {'a': 1}], '|')", '1|true||1.5|[1,"a"]|{"a":1}'),
    # replace
    ("replace('aaa', 'a', 'b')", "bbb"),
    ("replace('abcabc', 'bc', '')", "aa"),
    ("replace('abc', 'x', 'y')", "abc"),
    ("replace('a.b.c', '.', '-')", "a-b-c"),
    # matches: RE2 search semantics
    ("matches('abc', 'b')", True),
    ("matches('abc', '^b')", False),
    ("matches('abc', '^a.c$')", True),
    ("matches('abc', 'B')", False),
    ("matches('abc', '(?i)B')", True),
    ("matches('v1.2.3', '^v[0-9]+\\\\.[0-9]+\\\\.[0-9]+$')", True),
    ("matches('', '')", True),
    ("matches('line1\\nline2', '^line2')", False),
    # format
    ("format('{0} and {1}', 'a', 'b')", "a and b"),
    ("format('{1}{0}', 1, 2)", "21"),
    ("format('{0}{0}', 'x')", "xx"),
    ("format('{{0}}', 1)", "{0}"),
    ("format('{{{0}}}', 1)", "{1}"),
    ("format('no placeholders')", "no placeholders"),
    ("format('[{0}]', null)", "[]"),
    ("format('{0} {1} {2}', true, 1.5, [1, 2])", "true 1.5 [1,2]"),
    ("format('{0}', {'a': 1, 'b': [1, 2]})", '{"a":1,"b":[1,2]}'),
    # keys / values
    ("keys({'b': 1, 'a': 2})", ["b", "a"]),
    ("values({'b': 1, 'a': 2})", [1, 2]),
    ("keys({})", []),
    ("values({})", []),
    # int
    ("int(5)", 5),
    ("int(5.9)", 5),
    ("int(-5.9)", -5),
    ("int(0.5)", 0),
    ("int('42')", 42),
    ("int(' 42 ')", 42),
    ("int('-7')", -7),
    ("int(true)", 1),
    ("int(false)", 0),
    ("int('9223372036854775807')", I64_MAX),
    # float
    ("float(1)", 1.0),
    ("float(2.5)", 2.5),
    ("float('1.5')", 1.5),
    ("float('-1e3')", -1000.0),
    # string
    ("string(null)", ""),
    ("string(true)", "true"),
    ("string(false)", "false"),
    ("string(1)", "1"),
    ("string(-12)", "-12"),
    ("string(1.5)", "1.5"),
    ("string(2.0)", "2.0"),
    ("string(0.1)", "0.1"),
    ("string('x')", "x"),
    ("string([1, 'a', null, true])", '[1,"a",null,true]'),
    ("string({'a': 1, 'b': [1, 2]})", '{"a":1,"b":[1,2]}'),
    ("string([])", "[]"),
    ("string({})", "{}"),
    # bool
    ("bool(true)", True),
    ("bool(false)", False),
    ("bool('true')", True),
    ("bool('TRUE')", True),
    ("bool('False')", False),
    ("bool('fAlSe')", False),
    ("bool(0)", False),
    ("bool(2)", True),
    ("bool(-1)", True),
    ("bool(0.0)", False),
    ("bool(0.5)", True),
    ("bool(null)", False),
    # type
    ("type(null)", "null"),
    ("type(true)", "bool"),
    ("type(1)", "int"),
    ("type(1.0)", "float"),
    ("type(1e3)", "float"),
    ("type(6 / 3)", "int"),
    ("type(7 / 2)", "float"),
    ("type('')", "string"),
    ("type([])", "list"),
    ("type({})", "map"),
    ("type(inputs.missing)", "null"),
    # toJSON / fromJSON
    ("toJSON({'a': 1, 'b': [1, 2]})", '{"a":1,"b":[1,2]}'),
    ("toJSON('x')", '"x"'),
    ("toJSON(null)", "null"),
    ("toJSON(true)", "true"),
    ("toJSON(1.5)", "1.5"),
    ("toJSON([])", "[]"),
    ("toJSON('a\"b')", '"a\\"b"'),
    ("fromJSON('{\"a\": [1, 2]}')", {"a": [1, 2]}),
    ("fromJSON('1')", 1),
    ("fromJSON('1.5')", 1.5),
    ("fromJSON('null')", None),
    ("fromJSON('\"s\"')", "s"),
    ("fromJSON(' [true] ')", [True]),
    ("fromJSON(toJSON({'k': [1, null]}))", {"k": [1, None]}),
    # min / max
    ("min([3, 1, 2])", 1),
    ("min(3, 1, 2)", 1),
    ("min(3, 1)", 1),
    ("max([3, 1, 2])", 3),
    ("max(3, 1, 2)", 3),
    ("max('a', 'b')", "b"),
    ("min(['b', 'a', 'c'])", "a"),
    ("min([1, 2.5])", 1),
    ("max([1, 2.5])", 2.5),
    ("max([7])", 7),
    ("min(-1, -2.5)", -2.5),
    # abs
    ("abs(-3)", 3),
    ("abs(3)", 3),
    ("abs(-1.5)", 1.5),
    ("abs(0)", 0),
    # round
    ("round(2.5)", 3),
    ("round(-2.5)", -3),
    ("round(3.5)", 4),
    ("round(0.5)", 1),
    ("round(-0.5)", -1),
    ("round(2.4)", 2),
    ("round(-2.6)", -3),
    ("round(5)", 5),
    ("round(1.234, 2)", 1.23),
    ("round(1.5, 0)", 2.0),
    ("round(-1.234, 1)", -1.2),
    # sort
    ("sort([3, 1, 2])", [1, 2, 3]),
    ("sort(['b', 'a', 'C'])", ["C", "a", "b"]),
    ("sort([1, 2.5, 0])", [0, 1, 2.5]),
    ("sort([])", []),
    ("sort([1])", [1]),
    # unique
    ("unique([1, 2, 1, 3, 2])", [1, 2, 3]),
    ("unique([[1], [1], {'a': 1}, {'a': 1}])", [[1], {"a": 1}]),
    ("unique([1, 1.0, true, true])", [1, True]),
    ("unique(['b', 'a', 'b'])", ["b", "a"]),
    ("unique([null, null])", [None]),
    ("unique([])", []),
    # flatten
    ("flatten([[1, 2], [3]])", [1, 2, 3]),
    ("flatten([[1], [2, [3]]])", [1, 2, [3]]),
    ("flatten([])", []),
    ("flatten([[], []])", []),
    # merge
    ("merge({'a': 1}, {'b': 2}, {'a': 3})", {"a": 3, "b": 2}),
    ("merge({'a': {'x': 1}}, {'a': {'y': 2}})", {"a": {"y": 2}}),
    ("merge({'a': 1}, null)", {"a": 1}),
    ("merge(null, {'a': 1})", {"a": 1}),
    ("merge({'a': 1})", {"a": 1}),
    ("merge({}, {})", {}),
    ("merge({'a': 1}, {'a': null})", {"a": None}),
    # range
    ("range(3)", [0, 1, 2]),
    ("range(0)", []),
    ("range(-2)", []),
    ("range(1, 4)", [1, 2, 3]),
    ("range(4, 1)", []),
    ("range(0, 10, 3)", [0, 3, 6, 9]),
    ("range(5, 0, -2)", [5, 3, 1]),
    ("size(range(10000))", 10000),
    ("size(range(0, 20000, 2))", 10000),
]


@pytest.mark.parametrize(("src", "expected"), CASES, ids=[c[0] for c in CASES])
def test_function(src, expected):
    got = ev(src)
    assert identical(got, expected), got


def test_round_digits_returns_float():
    assert type(ev("round(1.234, 2)")) is float
    assert type(ev("round(2.5)")) is int


@pytest.mark.parametrize("name", ["min", "max"])
def test_min_max_mixed_int_float_keeps_value(name):
    assert ev(f"{name}(1, 1.0)") == 1


def test_functions_on_context_values():
    ctx = ctx_of(**V)
    assert ev("size(inputs.str)", ctx) == 5
    assert ev("sort(inputs.list)", ctx) == [1, 2, 3]
    assert ev("keys(inputs.map)", ctx) == ["b", "a"]
    assert ev("upper(inputs.str)", ctx) == "HELLO"
    assert V["list"] == [3, 1, 2]  # sort does not mutate


def test_merge_does_not_mutate_arguments():
    ctx = ctx_of(a={"x": 1}, b={"y": 2})
    assert ev("merge(inputs.a, inputs.b)", ctx) == {"x": 1, "y": 2}
    assert ctx["inputs"]["a"] == {"x": 1}


def test_matches_is_linear_time():
    # catastrophic backtracking for a backtracking engine; RE2 is linear
    ctx = ctx_of(s="a" * 5000 + "!")
    start = time.perf_counter()
    assert ev("matches(inputs.s, '^(a+)+$')", ctx) is False
    assert ev("matches(inputs.s, '(a|aa)*b')", ctx) is False
    assert time.perf_counter() - start < 1.0


@pytest.mark.parametrize("pattern", ["(", "[a-", "a{2,1}", "(a)\\\\1", "(?<=a)b", "*"])
def test_matches_invalid_literal_pattern_is_compile_error(pattern):
    src = f"matches(inputs.s, '{pattern}')"
    with pytest.raises(ExpressionCompileError) as ei:
        compile_expression(src)
    err = ei.value
    assert err.column in (1, src.index("'") + 1)
    check_rendering(err)


@pytest.mark.parametrize("pattern", ["(", "[a-", "(a)\\1"])
def test_matches_invalid_dynamic_pattern_is_evaluation_error(pattern):
    call_error("matches(inputs.s, inputs.p)", ctx_of(s="abc", p=pattern))


# ---- errors

ERRORS = [
    # size
    ("size(inputs.int)", {}),
    ("size(inputs.true)", {}),
    ("size(inputs.float)", {}),
    # contains
    ("contains(inputs.str, inputs.int)", {}),
    ("contains(inputs.int, 1)", {}),
    ("contains(inputs.true, true)", {}),
    # startsWith / endsWith
    ("startsWith(inputs.int, 'a')", {}),
    ("startsWith(inputs.str, inputs.int)", {}),
    ("endsWith(inputs.list, 'a')", {}),
    ("endsWith(inputs.str, inputs.null)", {}),
    # lower / upper / trim
    ("lower(inputs.int)", {}),
    ("upper(inputs.list)", {}),
    ("trim(inputs.null)", {}),
    # split
    ("split(inputs.str, '')", {}),
    ("split(inputs.int, ',')", {}),
    ("split(inputs.str, inputs.int)", {}),
    # join
    ("join(inputs.str, ',')", {}),
    ("join(inputs.map)", {}),
    ("join(inputs.list, inputs.int)", {}),
    # replace
    ("replace(inputs.str, '', 'x')", {}),
    ("replace(inputs.int, 'a', 'b')", {}),
    ("replace(inputs.str, 'a', inputs.int)", {}),
    # matches
    ("matches(inputs.int, 'a')", {}),
    ("matches(inputs.str, inputs.int)", {}),
    # format
    ("format('{2}', 1)", {}),
    ("format('{0} {1}', inputs.int)", {}),
    ("format(inputs.int, 1)", {}),
    # keys / values
    ("keys(inputs.list)", {}),
    ("keys(inputs.str)", {}),
    ("values(inputs.list)", {}),
    ("values(inputs.int)", {}),
    # int
    ("int('4x')", {}),
    ("int('')", {}),
    ("int('  ')", {}),
    ("int(inputs.list)", {}),
    ("int(inputs.map)", {}),
    ("int('9223372036854775808')", {}),
    ("int(1e19)", {}),
    ("int(-1e19)", {}),
    # float
    ("float('x')", {}),
    ("float('')", {}),
    ("float(inputs.list)", {}),
    ("float('inf')", {}),
    ("float('nan')", {}),
    ("float('1e999')", {}),
    # bool
    ("bool('yes')", {}),
    ("bool('')", {}),
    ("bool('1')", {}),
    # fromJSON
    ("fromJSON('x')", {}),
    ("fromJSON('{')", {}),
    ("fromJSON(\"{'a': 1}\")", {}),
    ("fromJSON('')", {}),
    ("fromJSON(inputs.int)", {}),
    ("fromJSON('NaN')", {}),
    ("fromJSON('1e999')", {}),
    # min / max
    ("min([])", {}),
    ("max([])", {}),
    ("min([1, 'a'])", {}),
    ("max(1, 'a')", {}),
    ("min([true, false])", {}),
    ("max([null, 1])", {}),
    ("min([[1], [2]])", {}),
    ("max(inputs.str)", {}),
    ("min(inputs.int)", {}),
    # abs
    ("abs(inputs.str)", {}),
    ("abs(inputs.null)", {}),
    # round
    ("round(inputs.str)", {}),
    ("round(inputs.null)", {}),
    ("round(1e19)", {}),
    ("round(1.5, inputs.str)", {}),
    # sort
    ("sort([1, 'a'])", {}),
    ("sort([true, false])", {}),
    ("sort([[2], [1]])", {}),
    ("sort([{}, {}])", {}),
    ("sort([null, 1])", {}),
    ("sort(inputs.str)", {}),
    ("sort(inputs.map)", {}),
    # unique / flatten
    ("unique(inputs.str)", {}),
    ("unique(inputs.map)", {}),
    ("flatten(inputs.str)", {}),
    ("flatten(inputs.int)", {}),
    # merge
    ("merge(inputs.int)", {}),
    ("merge({}, inputs.list)", {}),
    ("merge(inputs.str, {})", {}),
    # range
    ("range(1, 1, 0)", {}),
    ("range(0, 10, inputs.zero)", {"zero": 0}),
    ("range(inputs.float)", {}),
    ("range(inputs.str)", {}),
    ("range(10001)", {}),
    ("range(0, 10001)", {}),
    ("range(-10001, 0)", {}),
    ("range(inputs.n)", {"n": 10001}),
    ("range(0, 100000, 2)", {}),
]


@pytest.mark.parametrize(("src", "extra"), ERRORS, ids=[e[0] for e in ERRORS])
def test_function_error(src, extra):
    call_error(src, ctx_of(**V, **extra))


def test_abs_overflow():
    err = call_error("abs(inputs.min)", ctx_of(min=I64_MIN))
    assert "overflow" in err.message


@pytest.mark.parametrize(
    "src",
    [
        "int(1e19)",
        "int(-1e19)",
        "int('99999999999999999999')",
        "int('-9223372036854775809')",
        "round(1e19)",
        "round(-1e19)",
        "fromJSON('99999999999999999999')",
        "fromJSON('[1, 9223372036854775808]')",
    ],
)
def test_int_results_out_of_range_mention_overflow(src):
    # spec: any int result outside [-2**63, 2**63 - 1] is an error mentioning overflow
    err = call_error(src, {})
    assert "overflow" in err.message


def test_range_limit_mentions_limit():
    err = call_error("range(inputs.n)", ctx_of(n=10001))
    assert "10000" in err.message or "10,000" in err.message


def test_format_missing_index_error():
    err = call_error("format('{0} {1}', inputs.a)", ctx_of(a=1))
    assert "1" in err.message


# ---- purity


@pytest.mark.parametrize(
    "src",
    [
        "now()",
        "time()",
        "random()",
        "rand()",
        "env('HOME')",
        "getenv('HOME')",
        "open('x')",
        "read('x')",
        "uuid()",
        "exec('1')",
        "eval('1')",
        "__import__('os')",
    ],
)
def test_no_impure_functions(src):
    with pytest.raises(ExpressionCompileError):
        compile_expression(src)
