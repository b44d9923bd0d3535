"""Public API surface of ``engine.expr``: exports, error hierarchy, error rendering, roots,
``.names`` / ``.references`` / ``.source``, the ``${{ }}`` wrapper, ``evaluate_condition``.

Written from the spec, not from the implementation.
"""

from __future__ import annotations

import pytest

import engine.expr as expr_pkg
from engine.errors import EngineError
from engine.expr import (
    DEFAULT_ROOTS,
    FUNCTIONS,
    Expression,
    ExpressionCompileError,
    ExpressionError,
    ExpressionEvaluationError,
    ExpressionSyntaxError,
    Reference,
    Template,
    compile_expression,
    compile_template,
)

ALL_FUNCTIONS = (
    "size contains startsWith endsWith lower upper trim split join replace matches format keys "
    "values int float string bool type toJSON fromJSON min max abs round sort unique flatten merge "
    "range"
).split()


def ev(src, ctx=None, **kw):
    return compile_expression(src, **kw).evaluate({} if ctx is None else ctx)


def col(src: str, token: str, nth: int = 0) -> int:
    """1-based column of the nth occurrence of token in src."""
    idx = -1
    for _ in range(nth + 1):
        idx = src.index(token, idx + 1)
    return idx + 1


def check_rendering(err: ExpressionError) -> None:
    """str(err) is '{message} at column {column}: {source}' + newline + caret line."""
    text = str(err)
    lines = text.split("\n")
    assert len(lines) == 2, text
    prefix = f"{err.message} at column {err.column}: "
    assert lines[0] == prefix + err.source, text
    assert lines[1].rstrip() == " " * (len(prefix) + err.column - 1) + "^", text


# ---- exports


@pytest.mark.parametrize(
    "name",
    [
        "compile_expression",
        "compile_template",
        "Expression",
        "Template",
        "ExpressionError",
        "ExpressionCompileError",
        "ExpressionSyntaxError",
        "ExpressionEvaluationError",
        "DEFAULT_ROOTS",
        "Reference",
        "FUNCTIONS",
    ],
)
def test_public_name_is_exported(name):
    assert hasattr(expr_pkg, name)


def test_default_roots():
    assert DEFAULT_ROOTS == ("inputs", "state", "steps", "workflow", "org")


def test_compile_returns_expression_and_template_types():
    assert isinstance(compile_expression("1"), Expression)
    assert isinstance(compile_template("x ${{ 1 }}"), Template)


# ---- error hierarchy


@pytest.mark.parametrize(
    ("cls", "parents"),
    [
        (ExpressionError, (EngineError,)),
        (ExpressionCompileError, (ExpressionError, EngineError)),
        (ExpressionSyntaxError, (ExpressionCompileError, ExpressionError, EngineError)),
        (ExpressionEvaluationError, (ExpressionError, EngineError)),
    ],
)
def test_error_hierarchy(cls, parents):
    for parent in parents:
        assert issubclass(cls, parent)


def test_evaluation_error_is_not_compile_error():
    assert not issubclass(ExpressionEvaluationError, ExpressionCompileError)
    assert not issubclass(ExpressionCompileError, ExpressionEvaluationError)


# ---- error rendering


def test_spec_example_unexpected_close_paren():
    src = "(inputs.a + inputs.b))"
    with pytest.raises(ExpressionSyntaxError) as ei:
        compile_expression(src)
    err = ei.value
    assert err.message == "unexpected ')'"
    assert err.column == 22
    assert err.source == src
    check_rendering(err)
    assert str(err) == (
        "unexpected ')' at column 22: (inputs.a + inputs.b))\n"
        + " " * (len("unexpected ')' at column 22: ") + 21)
        + "^"
    )


def test_spec_example_compare_number_with_string():
    src = 'state.count > "3"'
    expr = compile_expression(src)
    with pytest.raises(ExpressionEvaluationError) as ei:
        expr.evaluate({"state": {"count": 1}})
    err = ei.value
    assert err.message == "cannot compare number with string"
    assert err.column == 13
    assert err.source == src
    check_rendering(err)
    first, caret = str(err).split("\n")
    assert first[caret.index("^")] == ">"


def test_message_has_no_location():
    with pytest.raises(ExpressionSyntaxError) as ei:
        compile_expression("1 + #")
    assert "column" not in ei.value.message
    assert "1 + #" not in ei.value.message


@pytest.mark.parametrize(
    "src",
    [
        "1 +",
        "'abc",
        "inputs.a # 1",
        "(1))",
        "stat.x",
        "lenght(inputs.a)",
        "size(1, 2)",
    ],
)
def test_compile_errors_render_with_caret(src):
    with pytest.raises(ExpressionCompileError) as ei:
        compile_expression(src)
    err = ei.value
    assert err.source == src
    assert isinstance(err.column, int) and 1 <= err.column <= len(src) + 1
    check_rendering(err)


@pytest.mark.parametrize(
    ("src", "ctx"),
    [
        ("inputs.a + 1", {"inputs": {"a": "x"}}),
        ("inputs.a / 0", {"inputs": {"a": 1}}),
        ("inputs.a.b", {"inputs": {"a": "str"}}),
        ("int(inputs.a)", {"inputs": {"a": "4x"}}),
    ],
)
def test_evaluation_errors_render_with_caret(src, ctx):
    expr = compile_expression(src)
    with pytest.raises(ExpressionEvaluationError) as ei:
        expr.evaluate(ctx)
    err = ei.value
    assert err.source == src
    assert 1 <= err.column <= len(src)
    check_rendering(err)


# ---- .source, wrapper


def test_source_attribute():
    src = "inputs.a + 1"
    assert compile_expression(src).source == src


@pytest.mark.parametrize(
    "src",
    ["${{ inputs.n + 1 }}", "${{inputs.n + 1}}", "${{   inputs.n + 1   }}"],
)
def test_whole_string_wrapper_is_accepted(src):
    expr = compile_expression(src)
    assert expr.evaluate({"inputs": {"n": 4}}) == 5
    assert expr.names == frozenset({"inputs"})


# ---- roots


def test_missing_root_in_context_is_null():
    assert ev("state.x") is None
    assert ev("state") is None
    assert ev("steps.build.outputs.x", {"inputs": {}}) is None


def test_root_alone_returns_whole_map():
    assert ev("inputs", {"inputs": {"a": 1}}) == {"a": 1}


@pytest.mark.parametrize("root", DEFAULT_ROOTS)
def test_every_default_root_is_readable(root):
    assert ev(f"{root}.k", {root: {"k": 7}}) == 7


def test_unknown_root_is_compile_error_with_did_you_mean():
    with pytest.raises(ExpressionCompileError) as ei:
        compile_expression("stat.x")
    err = ei.value
    assert "did you mean 'state'?" in err.message
    assert "stat" in err.message
    assert err.column == 1


def test_unknown_root_column_points_at_the_name():
    src = "inputs.a == 1 && inputz.b"
    with pytest.raises(ExpressionCompileError) as ei:
        compile_expression(src)
    assert ei.value.column == col(src, "inputz")
    assert "did you mean 'inputs'?" in ei.value.message


def test_extra_roots():
    roots = DEFAULT_ROOTS + ("item", "index")
    expr = compile_expression("item.name + string(index)", roots=roots)
    assert expr.evaluate({"item": {"name": "n"}, "index": 3}) == "n3"
    assert expr.names == frozenset({"item", "index"})


def test_extra_roots_take_part_in_did_you_mean():
    roots = DEFAULT_ROOTS + ("item", "index")
    with pytest.raises(ExpressionCompileError) as ei:
        compile_expression("itme.name", roots=roots)
    assert "did you mean 'item'?" in ei.value.message
    assert ei.value.column == 1


def test_extra_root_not_known_without_roots_argument():
    with pytest.raises(ExpressionCompileError):
        compile_expression("item.name")


def test_extra_root_missing_from_context_is_null():
    roots = DEFAULT_ROOTS + ("item",)
    assert compile_expression("item", roots=roots).evaluate({}) is None


def test_roots_argument_on_template():
    roots = DEFAULT_ROOTS + ("item",)
    tpl = compile_template("x=${{ item }}", roots=roots)
    assert tpl.render({"item": 5}) == "x=5"
    with pytest.raises(ExpressionCompileError):
        compile_template("x=${{ item }}")


# ---- .names / .references


@pytest.mark.parametrize(
    ("src", "names"),
    [
        ("1 + 2", frozenset()),
        ('state.count > 3 && inputs.env == "prod"', frozenset({"state", "inputs"})),
        ("size(steps.build.outputs)", frozenset({"steps"})),
        ("false && workflow.x", frozenset({"workflow"})),
        ("org", frozenset({"org"})),
        ("{inputs: 1}", frozenset()),
        ("inputs.a ?? state.b ?? org.c", frozenset({"inputs", "state", "org"})),
        ("inputs[state.k]", frozenset({"inputs", "state"})),
        ("'inputs.a'", frozenset()),
    ],
)
def test_names(src, names):
    got = compile_expression(src).names
    assert isinstance(got, frozenset)
    assert got == names


def test_references_basic():
    src = 'state.count > 3 && inputs.env == "prod"'
    refs = compile_expression(src).references
    assert isinstance(refs, tuple)
    assert refs == (Reference("state", "count", 1), Reference("inputs", "env", col(src, "inputs")))


def test_reference_fields():
    (ref,) = compile_expression("  steps.build.outputs.x").references
    assert ref.root == "steps"
    assert ref.key == "build"
    assert ref.column == 3


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("inputs", [("inputs", None, 1)]),
        ("inputs['a-b']", [("inputs", "a-b", 1)]),
        ('inputs["x"].y', [("inputs", "x", 1)]),
        ("1 + org.tier", [("org", "tier", 5)]),
        ("size(workflow.name)", [("workflow", "name", 6)]),
        ("[inputs.a, state.b]", [("inputs", "a", 2), ("state", "b", 12)]),
        ("{k: inputs.v}", [("inputs", "v", 5)]),
        ("'state.x'", []),
    ],
)
def test_references(src, expected):
    refs = compile_expression(src).references
    assert [(r.root, r.key, r.column) for r in refs] == expected


def test_reference_with_dynamic_index_has_no_key():
    refs = compile_expression("inputs[state.k]").references
    by_root = {r.root: r for r in refs}
    assert by_root["inputs"].key is None
    assert by_root["inputs"].column == 1
    assert by_root["state"].key == "k"
    assert by_root["state"].column == 8


def test_references_with_extra_roots():
    refs = compile_expression("item.id", roots=DEFAULT_ROOTS + ("item",)).references
    assert refs == (Reference("item", "id", 1),)


# ---- evaluate_condition


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("true", True),
        ("false", False),
        ("null", False),
        ("inputs.missing", False),
        ("1 < 2", True),
        ("inputs.flag", True),
    ],
)
def test_evaluate_condition_accepts_bool_and_null(src, expected):
    result = compile_expression(src).evaluate_condition({"inputs": {"flag": True}})
    assert result is expected


@pytest.mark.parametrize(
    ("src", "ctx"),
    [
        ("1", {}),
        ("0", {}),
        ("'true'", {}),
        ("''", {}),
        ("[]", {}),
        ("{}", {}),
        ("1.5", {}),
        ("inputs.n", {"inputs": {"n": 3}}),
    ],
)
def test_evaluate_condition_rejects_non_boolean(src, ctx):
    expr = compile_expression(src)
    with pytest.raises(ExpressionEvaluationError) as ei:
        expr.evaluate_condition(ctx)
    err = ei.value
    assert "??" in err.message or "compar" in err.message
    assert err.column == 1
    check_rendering(err)


def test_evaluate_condition_propagates_evaluation_errors():
    with pytest.raises(ExpressionEvaluationError):
        compile_expression("inputs.a > 1").evaluate_condition({"inputs": {"a": "x"}})


# ---- FUNCTIONS registry


def test_functions_registry_has_exactly_the_spec_functions():
    assert set(FUNCTIONS) == set(ALL_FUNCTIONS)


@pytest.mark.parametrize("name", ALL_FUNCTIONS)
def test_every_function_has_a_docstring_with_an_example(name):
    doc = FUNCTIONS[name].__doc__
    assert doc and doc.strip()
    assert name + "(" in doc, f"docstring of {name} has no example call"


# ---- context handling


def test_evaluate_does_not_mutate_context():
    ctx = {"inputs": {"a": [3, 1, 2], "m": {"x": 1}}}
    snapshot = repr(ctx)
    ev("sort(inputs.a)", ctx)
    ev("merge(inputs.m, {'y': 2})", ctx)
    ev("inputs.a + [4]", ctx)
    assert repr(ctx) == snapshot


def test_expression_is_reusable_across_contexts():
    expr = compile_expression("inputs.n * 2")
    assert [expr.evaluate({"inputs": {"n": i}}) for i in range(5)] == [0, 2, 4, 6, 8]


def test_no_python_attribute_access():
    ctx = {"state": {}}
    for key in ("items", "keys", "values", "get", "__class__", "__dict__", "copy", "upper"):
        assert ev(f"state.{key}", ctx) is None, key
    assert ev("state.items", {"state": {"items": [1, 2]}}) == [1, 2]
    assert ev("state.keys", {"state": {"keys": "k"}}) == "k"
    assert ev("state['__class__']", ctx) is None
    assert ev("inputs.s.__class__ ?? 1", {"inputs": {"s": None}}) == 1
