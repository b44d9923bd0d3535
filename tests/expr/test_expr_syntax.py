"""Lexing and parsing: literals, strings and escapes, lists, maps, paths, precedence,
associativity and every syntax / compile error with its message and column.

Written from the spec, not from the implementation.
"""

from __future__ import annotations

import pytest

from engine.expr import (
    ExpressionCompileError,
    ExpressionError,
    ExpressionSyntaxError,
    compile_expression,
)


def ev(src, ctx=None, **kw):
    return compile_expression(src, **kw).evaluate({} if ctx is None else ctx)


def identical(actual, expected) -> bool:
    """Equality that also checks JSON types (bool vs int vs float) recursively."""
    if expected is None or isinstance(expected, bool):
        return actual is expected
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, list):
        return len(actual) == len(expected) and all(map(identical, actual, expected))
    if isinstance(expected, dict):
        return list(actual) == list(expected) and all(
            identical(actual[k], expected[k]) for k in expected
        )
    return actual == expected


def check_rendering(err: ExpressionError) -> None:
    lines = str(err).split("\n")
    assert len(lines) == 2, str(err)
    prefix = f"{err.message} at column {err.column}: "
    assert lines[0] == prefix + err.source
    assert lines[1].rstrip() == " " * (len(prefix) + err.column - 1) + "^"


def syntax_error(src) -> ExpressionSyntaxError:
    with pytest.raises(ExpressionSyntaxError) as ei:
        compile_expression(src)
    err = ei.value
    assert err.source == src
    check_rendering(err)
    return err


# ---- literals


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("null", None),
        ("true", True),
        ("false", False),
        ("0", 0),
        ("42", 42),
        ("9223372036854775807", 2**63 - 1),
        ("1.5", 1.5),
        ("0.25", 0.25),
        ("1e3", 1000.0),
        ("2.5e-3", 0.0025),
        ("1.5e2", 150.0),
        ("-1", -1),
        ("-1.5", -1.5),
        ("'abc'", "abc"),
        ('"abc"', "abc"),
        ("''", ""),
        ('""', ""),
        ("'say \"hi\"'", 'say "hi"'),
        ('"it\'s"', "it's"),
        ("'${{ not nested }}'", "${{ not nested }}"),
        ("'é ü 日本'", "é ü 日本"),
    ],
)
def test_literals(src, expected):
    assert identical(ev(src), expected), ev(src)


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        (r"'a\\b'", "a\\b"),
        (r"'a\'b'", "a'b"),
        (r'"a\"b"', 'a"b'),
        (r"'a\"b'", 'a"b'),
        (r'"a\'b"', "a'b"),
        (r"'a\nb'", "a\nb"),
        (r"'a\tb'", "a\tb"),
        (r"'a\rb'", "a\rb"),
        (r"'a\/b'", "a/b"),
        (r"'a\bb'", "a\bb"),
        (r"'a\fb'", "a\fb"),
        (r"'\u00e9'", "é"),
        (r"'\u00E9'", "é"),
        (r"'x\u0041y'", "xAy"),
        (r"'\\n'", "\\n"),
    ],
)
def test_string_escapes(src, expected):
    assert ev(src) == expected


@pytest.mark.parametrize("src", [r"'\q'", r"'ab\x41'", r"'\a'", r"'\0'", r"'\u12'", r"'\uZZZZ'"])
def test_unknown_or_bad_escape_is_syntax_error(src):
    err = syntax_error(src)
    assert 1 <= err.column <= len(src)


def test_unknown_escape_column_is_string_start_or_backslash():
    src = r"inputs.a == 'ab\q'"
    err = syntax_error(src)
    assert err.column in (src.index("'") + 1, src.index("\\") + 1)
    assert "escape" in err.message


def test_literal_types():
    assert type(ev("1")) is int
    assert type(ev("1.0")) is float
    assert type(ev("1e3")) is float


# ---- lists and maps


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("[]", []),
        ("[1]", [1]),
        ("[1, 'a', null, true, 1.5]", [1, "a", None, True, 1.5]),
        ("[1, 2,]", [1, 2]),
        ("[[1], [2, [3]]]", [[1], [2, [3]]]),
        ("[1 + 1, inputs.n]", [2, 5]),
        ("{}", {}),
        ("{'a': 1}", {"a": 1}),
        ('{"a": 1}', {"a": 1}),
        ("{a: 1}", {"a": 1}),
        ("{a: 1, 'b-c': [2], \"d\": {e: null},}", {"a": 1, "b-c": [2], "d": {"e": None}}),
        ("{inputs: 1}", {"inputs": 1}),
        ("{size: 1, true_: 2}", {"size": 1, "true_": 2}),
        ("{n: inputs.n * 2}", {"n": 10}),
        ("{'x': 1, 'y': 2}", {"x": 1, "y": 2}),
    ],
)
def test_collections(src, expected):
    got = ev(src, {"inputs": {"n": 5}})
    assert identical(got, expected), got


def test_bare_key_equals_quoted_key():
    assert ev("{a: 1} == {'a': 1}") is True


def test_map_literal_preserves_order():
    assert list(ev("{b: 1, a: 2, c: 3}")) == ["b", "a", "c"]


@pytest.mark.parametrize("src", ["{1: 2}", "{[1]: 2}", "{'a' 1}", "{'a': }", "[1 2]"])
def test_bad_collection_syntax(src):
    syntax_error(src)


# ---- identifiers / paths


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("inputs.a", 1),
        ("inputs.nested.deep.x", "y"),
        ("inputs['a']", 1),
        ('inputs["a"]', 1),
        ("inputs['b-c']", 2),
        ("inputs['with space']", 3),
        ("inputs.list[0]", 10),
        ("inputs.list[2]", 30),
        ("inputs.list[-1]", 30),
        ("inputs.list[-3]", 10),
        ("inputs.list[1 + 1]", 30),
        ("inputs.list[inputs.i]", 20),
        ("inputs[inputs.k]", 1),
        ("inputs.nested['deep'].x", "y"),
        ("inputs.rows[1].name", "b"),
        ("inputs.rows[-1]['name']", "b"),
        ("inputs._under_score", 4),
        ("inputs.camelCase9", 5),
        ("[1, 2, 3][1]", 2),
        ("{'a': {'b': 7}}.a.b", 7),
        ("{'a': 1}['a']", 1),
        ("(inputs).a", 1),
    ],
)
def test_paths(src, expected):
    ctx = {
        "inputs": {
            "a": 1,
            "b-c": 2,
            "with space": 3,
            "list": [10, 20, 30],
            "i": 1,
            "k": "a",
            "nested": {"deep": {"x": "y"}},
            "rows": [{"name": "a"}, {"name": "b"}],
            "_under_score": 4,
            "camelCase9": 5,
        }
    }
    assert ev(src, ctx) == expected


def test_whitespace_is_insignificant():
    assert ev("  inputs . a  +\n\t1 ", {"inputs": {"a": 1}}) == 2
    assert ev("inputs [ 'a' ]", {"inputs": {"a": 1}}) == 1


# ---- precedence


@pytest.mark.parametrize(
    ("src", "ctx", "expected"),
    [
        ("1 + 2 * 3", {}, 7),
        ("(1 + 2) * 3", {}, 9),
        ("10 - 2 - 3", {}, 5),
        ("100 / 10 / 5", {}, 2),
        ("2 * 3 % 4", {}, 2),
        ("2 * (3 % 4)", {}, 6),
        ("7 - 2 * 3", {}, 1),
        ("-2 * 3", {}, -6),
        ("2 * -3", {}, -6),
        ("-(2 + 3)", {}, -5),
        ("- -3", {}, 3),
        ("-inputs.l[0]", {"inputs": {"l": [5]}}, -5),
        ("1 + 2 == 3", {}, True),
        ("1 + 2 in [3]", {}, True),
        ("'a' + 'b' in ['ab']", {}, True),
        ("1 < 2 && 2 < 3", {}, True),
        ("true || false && false", {}, True),
        ("false && true || true", {}, True),
        ("false && false || true", {}, True),
        ("true or false and false", {}, True),
        ("false and true or true", {}, True),
        ("not true or true", {}, True),
        ("not (true or true)", {}, False),
        ("!true || true", {}, True),
        ("!(true || true)", {}, False),
        ("!null == false", {}, False),
        ("!inputs.f && true", {"inputs": {"f": False}}, True),
        # ?? binds tighter than comparisons, looser than + -
        ("state.n ?? 0 > 3", {"state": {}}, False),
        ("state.n ?? 0 > 3", {"state": {"n": 5}}, True),
        ("state.n ?? 0 > 3", {"state": {"n": 2}}, False),
        ("inputs.a ?? 1 + 2", {}, 3),
        ("inputs.a ?? 1 + 2", {"inputs": {"a": 10}}, 10),
        ("inputs.a ?? 'x' == 'x'", {}, True),
        ("inputs.a ?? 'x' == 'x'", {"inputs": {"a": "y"}}, False),
        ("null ?? null ?? 3", {}, 3),
        ("null ?? 2 ?? 3", {}, 2),
        ("inputs.a ?? 0 in [0]", {}, True),
        # ?: is lowest and right-associative
        ("true ? 1 : 2 + 3", {}, 1),
        ("false ? 1 : 2 + 3", {}, 5),
        ("true || false ? 1 : 2", {}, 1),
        ("false && true ? 1 : 2", {}, 2),
        ("false ? 1 : true ? 2 : 3", {}, 2),
        ("false ? 1 : false ? 2 : 3", {}, 3),
        ("true ? false ? 1 : 2 : 3", {}, 2),
        ("true ? 'a' : 'b' == 'b'", {}, "a"),
        ("1 == 1 ? 'y' : 'n'", {}, "y"),
        ("inputs.a ?? 1 > 0 ? 'pos' : 'neg'", {}, "pos"),
        # unary word and symbol forms at the same level
        ("not false and not false", {}, True),
        ("!false && !false", {}, True),
        ("true and !false", {}, True),
        ("true && not false", {}, True),
        ("false or not false", {}, True),
    ],
)
def test_precedence(src, ctx, expected):
    assert identical(ev(src, ctx), expected), ev(src, ctx)


@pytest.mark.parametrize(
    ("words", "symbols"),
    [
        ("a and b or c", "a && b || c"),
        ("a or b and c", "a || b && c"),
        ("not a or b", "!a || b"),
        ("not a and b", "!a && b"),
        ("a and not b", "a && !b"),
        ("a or b and c", "a || (b && c)"),
    ],
)
@pytest.mark.parametrize("a", [True, False, None])
@pytest.mark.parametrize("b", [True, False])
@pytest.mark.parametrize("c", [True, False])
def test_word_operators_match_symbols(words, symbols, a, b, c):
    ctx = {"inputs": {"a": a, "b": b, "c": c}}

    def prefix(s):
        return " ".join(f"inputs.{t}" if t in "abc" else t for t in s.split(" "))

    w = prefix(words)
    s = prefix(symbols.replace("!", "! ").replace("(", "( ").replace(")", " )"))
    assert ev(w, ctx) is ev(s, ctx)


# ---- syntax errors


def test_unexpected_close_paren():
    src = "(inputs.a + inputs.b))"
    err = syntax_error(src)
    assert err.message == "unexpected ')'"
    assert err.column == 22


def test_lone_close_paren():
    err = syntax_error(")")
    assert err.message == "unexpected ')'"
    assert err.column == 1


@pytest.mark.parametrize(
    "src",
    [
        "1 +",
        "(1 + 2",
        "[1, 2",
        "{'a': 1",
        "inputs.",
        "size(",
        "true ?",
        "true ? 1",
        "true ? 1 :",
        "!",
        "-",
        "inputs[",
        "1 ??",
    ],
)
def test_unexpected_end_of_expression(src):
    err = syntax_error(src)
    assert err.message == "unexpected end of expression"
    # end of input: the caret goes just past the text (or under its last character)
    assert err.column in (len(src) + 1, max(len(src.rstrip()), 1), len(src.rstrip()) + 1)


@pytest.mark.parametrize("src", ["", "   ", "${{ }}"])
def test_empty_source(src):
    # The spec names "unexpected end of expression" for end of input; the lead may also
    # choose the more specific "empty expression" for a source with no tokens at all.
    err = syntax_error(src)
    assert err.message in (
        "unexpected end of expression",
        "empty expression",
    ) or err.message.startswith("empty expression")
    assert 1 <= err.column <= len(src) + 1


@pytest.mark.parametrize(
    ("src", "good"),
    [
        ("inputs.a ininputs.b", "inputs.a in inputs.b"),
        ("true orfalse", "true or false"),
        ("true andfalse", "true and false"),
        ("inputs.x ?? notfalse", "inputs.x ?? not false"),
    ],
)
def test_word_operators_need_a_word_boundary(src, good):
    compile_expression(good)
    with pytest.raises(ExpressionCompileError):
        compile_expression(src)


@pytest.mark.parametrize(
    ("src", "quote_at"),
    [("'abc", 1), ('"abc', 1), ("inputs.a == 'abc", 13), ("'abc\\'", 1), ("'a' + \"b", 7)],
)
def test_unterminated_string(src, quote_at):
    err = syntax_error(src)
    assert err.message == "unterminated string"
    assert err.column == quote_at


@pytest.mark.parametrize(
    ("src", "char"),
    [
        ("inputs.a # 1", "#"),
        ("#", "#"),
        ("1 @ 2", "@"),
        ("1 ^ 2", "^"),
        ("inputs.a ~ 1", "~"),
        ("inputs.a $ 1", "$"),
        ("`x`", "`"),
        ("1 ; 2", ";"),
    ],
)
def test_unexpected_character(src, char):
    err = syntax_error(src)
    assert err.message == f"unexpected character '{char}'"
    assert err.column == src.index(char) + 1


@pytest.mark.parametrize(
    ("src", "bad"),
    [
        ("1 2", "2"),
        ("inputs.a inputs.b", "inputs.b"),
        ("(1))", ")"),
        ("[1]]", "]"),
        ("1 + * 2", "*"),
        ("inputs.a == == 1", "== 1"),
        ("{'a': 1}}", "}"),
        ("1 , 2", ","),
        ("true : 1", ":"),
        ("size(1,, 2)", ", 2"),
        ("inputs..a", ".a"),
    ],
)
def test_unexpected_token(src, bad):
    err = syntax_error(src)
    assert err.message.startswith("unexpected ")
    assert err.message != "unexpected end of expression"
    assert err.column == src.rindex(bad) + 1


@pytest.mark.parametrize("src", ["inputs.a = 1", "inputs.a & 1", "inputs.a | 1"])
def test_single_char_operators_not_in_language(src):
    err = syntax_error(src)
    assert err.column == 10


@pytest.mark.parametrize(
    "src",
    ["inputs.s.lower()", "inputs.list.size()", "'abc'.upper()", "size(inputs.a)(1)"],
)
def test_method_calls_are_rejected(src):
    with pytest.raises(ExpressionCompileError):
        compile_expression(src)


@pytest.mark.parametrize("src", ["inputs(1)", "state.x(1)", "(size)(1)"])
def test_calling_a_non_function_is_rejected(src):
    with pytest.raises(ExpressionCompileError):
        compile_expression(src)


# ---- compile (non-syntax) errors


@pytest.mark.parametrize(
    ("src", "suggestion"),
    [
        ("stat.x", "state"),
        ("input.x", "inputs"),
        ("step.a", "steps"),
        ("workflw.id", "workflow"),
        ("orgs.id", "org"),
    ],
)
def test_unknown_root_did_you_mean(src, suggestion):
    with pytest.raises(ExpressionCompileError) as ei:
        compile_expression(src)
    assert f"did you mean '{suggestion}'?" in ei.value.message
    assert ei.value.column == 1
    check_rendering(ei.value)


def test_unknown_bare_name_is_compile_error():
    src = "1 + zzzzzz"
    with pytest.raises(ExpressionCompileError) as ei:
        compile_expression(src)
    assert "zzzzzz" in ei.value.message
    assert ei.value.column == 5


@pytest.mark.parametrize(
    ("src", "suggestion"),
    [
        ("startswith(inputs.s, 'a')", "startsWith"),
        ("endswith(inputs.s, 'a')", "endsWith"),
        ("tojson(inputs)", "toJSON"),
        ("fromjson(inputs.s)", "fromJSON"),
        ("lowr(inputs.s)", "lower"),
        ("flaten(inputs.l)", "flatten"),
        ("uniq(inputs.l)", "unique"),
    ],
)
def test_unknown_function_did_you_mean(src, suggestion):
    with pytest.raises(ExpressionCompileError) as ei:
        compile_expression(src)
    assert suggestion in ei.value.message
    assert "did you mean" in ei.value.message
    assert ei.value.column == 1
    check_rendering(ei.value)


def test_unknown_function_column_in_middle():
    src = "inputs.a && nope(1)"
    with pytest.raises(ExpressionCompileError) as ei:
        compile_expression(src)
    assert ei.value.column == src.index("nope") + 1
    assert "nope" in ei.value.message


@pytest.mark.parametrize(
    ("src", "count_word"),
    [
        ("size()", "1"),
        ("size(1, 2)", "1"),
        ("lower('a', 'b')", "1"),
        ("startsWith('a')", "2"),
        ("endsWith('a', 'b', 'c')", "2"),
        ("contains('a')", "2"),
        ("split('a')", "2"),
        ("replace('a', 'b')", "3"),
        ("matches('a')", "2"),
        ("keys({}, {})", "1"),
        ("values()", "1"),
        ("int()", "1"),
        ("float(1, 2)", "1"),
        ("string()", "1"),
        ("bool(1, 2)", "1"),
        ("type()", "1"),
        ("toJSON()", "1"),
        ("fromJSON('1', '2')", "1"),
        ("abs()", "1"),
        ("sort()", "1"),
        ("unique([], [])", "1"),
        ("flatten()", "1"),
        ("trim()", "1"),
        ("upper()", "1"),
    ],
)
def test_wrong_arity_fixed(src, count_word):
    with pytest.raises(ExpressionCompileError) as ei:
        compile_expression(src)
    err = ei.value
    word = {"1": "one", "2": "two", "3": "three"}[count_word]
    assert count_word in err.message or word in err.message
    assert "argument" in err.message
    assert err.column == 1
    check_rendering(err)


@pytest.mark.parametrize(
    "src",
    [
        "join()",
        "join([], '', '')",
        "round()",
        "round(1, 2, 3)",
        "range()",
        "range(1, 2, 3, 4)",
        "format()",
        "merge()",
        "min()",
        "max()",
    ],
)
def test_wrong_arity_variadic(src):
    with pytest.raises(ExpressionCompileError) as ei:
        compile_expression(src)
    assert "argument" in ei.value.message
    assert ei.value.column == 1


def test_compile_error_subclass_kinds():
    # parse errors are ExpressionSyntaxError, name errors are plain compile errors
    with pytest.raises(ExpressionSyntaxError):
        compile_expression("1 +")
    with pytest.raises(ExpressionCompileError):
        compile_expression("stat.x")
