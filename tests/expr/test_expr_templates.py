"""Templates: static text, typed single expressions, text rendering of every type, the
``$${{`` escape, error columns (offsets into the template text, multi-line too).

Written from the spec, not from the implementation.
"""

from __future__ import annotations

import pytest

from engine.expr import (
    DEFAULT_ROOTS,
    ExpressionCompileError,
    ExpressionError,
    ExpressionEvaluationError,
    ExpressionSyntaxError,
    Template,
    compile_template,
)

CTX = {
    "inputs": {
        "n": 5,
        "f": 1.5,
        "s": "str",
        "t": True,
        "F": False,
        "nil": None,
        "l": [1, "a", None, True],
        "m": {"a": 1, "b": [1, 2]},
        "service": "api",
        "env": "prod",
        "tricky": "${{ inputs.n }}",
    },
    "org": {"name": "acme"},
}


def render(text, ctx=None, **kw):
    return compile_template(text, **kw).render(CTX if ctx is None else ctx)


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


def check_caret(err: ExpressionError, offending: str) -> None:
    """Two lines; the caret sits under the offending character as printed on line one."""
    lines = str(err).split("\n")
    assert len(lines) == 2, str(err)
    assert lines[0].startswith(f"{err.message} at column {err.column}: ")
    caret = lines[1].rstrip()
    assert caret.strip() == "^"
    assert lines[0][caret.index("^")] == offending, str(err)


# ---- static / single


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "a $ b",
        "a $$ b",
        "100%",
        "{{ not an expr }}",
        "${ x }",
        "$ {{ x }}",
        "line1\nline2",
    ],
)
def test_static_templates(text):
    tpl = compile_template(text)
    assert isinstance(tpl, Template)
    assert tpl.is_static is True
    assert tpl.is_single is False
    assert tpl.names == frozenset()
    assert tpl.render({}) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${{ inputs.n }}", 5),
        ("${{inputs.n}}", 5),
        ("${{   inputs.n   }}", 5),
        ("${{ inputs.f }}", 1.5),
        ("${{ inputs.s }}", "str"),
        ("${{ inputs.t }}", True),
        ("${{ inputs.F }}", False),
        ("${{ inputs.nil }}", None),
        ("${{ inputs.missing }}", None),
        ("${{ inputs.l }}", [1, "a", None, True]),
        ("${{ inputs.m }}", {"a": 1, "b": [1, 2]}),
        ("${{ [1, 2] }}", [1, 2]),
        ("${{ 6 / 3 }}", 2),
        ("${{ inputs.n > 3 }}", True),
        ("${{ 'a' + 'b' }}", "ab"),
        ("${{ inputs.tricky }}", "${{ inputs.n }}"),
    ],
)
def test_single_expression_yields_typed_value(text, expected):
    tpl = compile_template(text)
    assert tpl.is_single is True
    assert tpl.is_static is False
    got = tpl.render(CTX)
    assert identical(got, expected), got


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (" ${{ inputs.n }}", " 5"),
        ("${{ inputs.n }} ", "5 "),
        ("\n${{ inputs.n }}", "\n5"),
        ("${{ inputs.n }}${{ inputs.n }}", "55"),
        ("x${{ inputs.t }}", "xtrue"),
    ],
)
def test_not_single_when_anything_else_is_present(text, expected):
    tpl = compile_template(text)
    assert tpl.is_single is False
    assert tpl.is_static is False
    assert tpl.render(CTX) == expected


# ---- text rendering


@pytest.mark.parametrize(
    ("expr", "text"),
    [
        ("null", ""),
        ("inputs.nil", ""),
        ("inputs.missing", ""),
        ("true", "true"),
        ("false", "false"),
        ("0", "0"),
        ("5", "5"),
        ("-3", "-3"),
        ("9223372036854775807", "9223372036854775807"),
        ("1.5", "1.5"),
        ("0.1", "0.1"),
        ("2.0", "2.0"),
        ("-0.5", "-0.5"),
        ("1e3", "1000.0"),
        ("1e20", "1e+20"),
        ("2.5e-7", "2.5e-07"),
        ("1 / 3", repr(1 / 3)),
        ("'plain'", "plain"),
        ("''", ""),
        ("'quo\"te'", 'quo"te'),
        ("[]", "[]"),
        ("{}", "{}"),
        ("[1, 2]", "[1,2]"),
        ("inputs.l", '[1,"a",null,true]'),
        ("inputs.m", '{"a":1,"b":[1,2]}'),
        ("{'a': 1, 'b': [1, 2]}", '{"a":1,"b":[1,2]}'),
        ("[1.5, 2.0, 'x\"y']", '[1.5,2.0,"x\\"y"]'),
        ("[{'k': null}]", '[{"k":null}]'),
        ("inputs.tricky", "${{ inputs.n }}"),
    ],
)
def test_text_rendering_of_each_type(expr, text):
    assert render(f"<${{{{ {expr} }}}}>") == f"<{text}>"


def test_spec_example_two_parts():
    tpl = compile_template("Deploy ${{ inputs.service }} to ${{ inputs.env }}")
    assert tpl.render(CTX) == "Deploy api to prod"
    assert tpl.is_single is False
    assert tpl.is_static is False
    assert tpl.names == frozenset({"inputs"})


def test_names_union():
    tpl = compile_template("${{ inputs.a }} ${{ org.name }} ${{ state.x ?? steps.y }}")
    assert tpl.names == frozenset({"inputs", "org", "state", "steps"})


def test_multiline_template_renders():
    text = "line1\n  svc: ${{ inputs.service }}\n  n: ${{ inputs.n + 1 }}\nend"
    assert render(text) == "line1\n  svc: api\n  n: 6\nend"


def test_template_is_reusable_and_deterministic():
    tpl = compile_template("${{ inputs.m }}|${{ keys(inputs.m) }}")
    outs = {tpl.render(CTX) for _ in range(5)}
    assert outs == {'{"a":1,"b":[1,2]}|["a","b"]'}


def test_template_roots_argument():
    roots = DEFAULT_ROOTS + ("item", "index")
    tpl = compile_template("${{ index }}: ${{ item.name }}", roots=roots)
    assert tpl.render({"item": {"name": "x"}, "index": 0}) == "0: x"
    assert tpl.names == frozenset({"item", "index"})


# ---- escapes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$${{ inputs.n }}", "${{ inputs.n }}"),
        ("$${{ not an expression at all", "${{ not an expression at all"),
        ("a $${{ x }} b", "a ${{ x }} b"),
        ("$${{", "${{"),
        ("$${{ x }} and $${{ y }}", "${{ x }} and ${{ y }}"),
    ],
)
def test_escape_static(text, expected):
    tpl = compile_template(text)
    assert tpl.is_static is True
    assert tpl.names == frozenset()
    assert tpl.render({}) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$${{ x }} ${{ inputs.n }}", "${{ x }} 5"),
        ("${{ inputs.n }}$${{ inputs.n }}", "5${{ inputs.n }}"),
        ("$${{ inputs.n }}${{ inputs.n }}", "${{ inputs.n }}5"),
    ],
)
def test_escape_mixed(text, expected):
    tpl = compile_template(text)
    assert tpl.is_static is False
    assert tpl.is_single is False
    assert tpl.render(CTX) == expected


def test_escaped_only_template_is_not_single():
    tpl = compile_template("$${{ inputs.n }}")
    assert tpl.is_single is False
    assert tpl.render(CTX) == "${{ inputs.n }}"


# ---- errors


def test_template_syntax_error_column_is_offset_in_text():
    text = "Hello ${{ (1 + 2)) }}"
    with pytest.raises(ExpressionSyntaxError) as ei:
        compile_template(text)
    err = ei.value
    assert err.message == "unexpected ')'"
    assert err.column == text.rindex(")") + 1
    assert err.source == text
    check_caret(err, ")")


def test_template_second_part_error_column():
    text = "${{ inputs.a }} and ${{ inputs.b # }}"
    with pytest.raises(ExpressionSyntaxError) as ei:
        compile_template(text)
    err = ei.value
    assert err.message == "unexpected character '#'"
    assert err.column == text.index("#") + 1
    check_caret(err, "#")


def test_template_error_after_escape_counts_raw_text():
    text = "$${{ x }} ${{ inputs.a # }}"
    with pytest.raises(ExpressionSyntaxError) as ei:
        compile_template(text)
    assert ei.value.column == text.index("#") + 1
    check_caret(ei.value, "#")


def test_multiline_template_syntax_error_column():
    text = "first line\nsecond ${{ inputs.a }}\nthird ${{ inputs.b @ 1 }} end"
    with pytest.raises(ExpressionSyntaxError) as ei:
        compile_template(text)
    err = ei.value
    assert err.message == "unexpected character '@'"
    assert err.column == text.index("@") + 1  # offset into the whole text, newlines included
    check_caret(err, "@")


def test_multiline_template_evaluation_error_column():
    text = "a: ${{ inputs.n }}\nb: ${{ inputs.s > 3 }}\n"
    tpl = compile_template(text)
    with pytest.raises(ExpressionEvaluationError) as ei:
        tpl.render(CTX)
    err = ei.value
    assert err.message == "cannot compare string with number"
    assert err.column == text.index(">") + 1
    check_caret(err, ">")


def test_template_evaluation_error_column():
    text = "n=${{ inputs.s + 1 }}"
    with pytest.raises(ExpressionEvaluationError) as ei:
        compile_template(text).render(CTX)
    err = ei.value
    assert err.column == text.index("+") + 1
    assert err.source == text
    check_caret(err, "+")


def test_single_template_evaluation_error_column():
    text = "${{ inputs.n / 0 }}"
    with pytest.raises(ExpressionEvaluationError) as ei:
        compile_template(text).render(CTX)
    assert ei.value.column == text.index("/") + 1
    check_caret(ei.value, "/")


def test_template_unknown_root_column():
    text = "x ${{ stat.a }}"
    with pytest.raises(ExpressionCompileError) as ei:
        compile_template(text)
    err = ei.value
    assert "did you mean 'state'?" in err.message
    assert err.column == text.index("stat") + 1
    check_caret(err, "s")


def test_template_unknown_function_column():
    text = "x ${{ lenght(inputs.a) }}"
    with pytest.raises(ExpressionCompileError) as ei:
        compile_template(text)
    assert ei.value.column == text.index("lenght") + 1


@pytest.mark.parametrize("text", ["${{ inputs.a", "x ${{ inputs.a }", "x ${{", "${{ 'a' + }} ${{"])
def test_unterminated_template_expression(text):
    with pytest.raises(ExpressionSyntaxError) as ei:
        compile_template(text)
    assert 1 <= ei.value.column <= len(text) + 1


@pytest.mark.parametrize("text", ["${{ }}", "${{}}", "x ${{   }} y"])
def test_empty_template_expression(text):
    with pytest.raises(ExpressionSyntaxError) as ei:
        compile_template(text)
    # spec: end of input is "unexpected end of expression"; "empty expression ..." is accepted
    msg = ei.value.message
    assert msg == "unexpected end of expression" or msg.startswith("empty expression")
    assert 1 <= ei.value.column <= len(text)


def test_template_unterminated_string_column():
    text = "ab ${{ 'oops }}"
    with pytest.raises(ExpressionSyntaxError) as ei:
        compile_template(text)
    err = ei.value
    if err.message == "unterminated string":
        assert err.column == text.index("'") + 1
    else:
        # a string-aware scanner sees the '}}' inside the string: the '${{' is unterminated
        assert "${{" in err.message
        assert err.column == text.index("${{") + 1
