"""Compile expression text into closures.

The text is parsed once by an LALR parser (``grammar.lark``) and the tree is turned into nested
closures that read a context mapping and return a JSON value. Nothing here ever hands user text
to Python's ``eval``; every operator goes through the strict helpers of :mod:`._values`.

Speed matters because conditions run inside workflow tasks: the common shapes (a root followed
by constant keys, a comparison with a constant, a two-operand ``&&``) get closures of their own,
and sub-expressions whose operands are all constants are folded when they are compiled.

Why one long module: the grammar's every rule has its builder here, and the builders share
the specialised closures above; split by rule, each part would import most of the others.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NoReturn

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from engine.expr._errors import (
    ExpressionCompileError,
    ExpressionEvaluationError,
    ExpressionSyntaxError,
)
from engine.expr._functions import (
    FUNCTIONS,
    SIGNATURES,
    compile_pattern,
    search_compiled,
)
from engine.expr._values import (
    INT_MAX,
    INT_MIN,
    MAX_DEPTH,
    MAX_SIZE,
    MAX_SOURCE,
    EvaluationFailure,
    check_float,
    check_size,
    json_equal,
    kind,
    to_text,
)

__all__ = [
    "DEFAULT_ROOTS",
    "Expression",
    "Reference",
    "Template",
    "compile_expression",
    "compile_template",
]

Context = Mapping[str, Any]
Evaluator = Callable[[Context], Any]

DEFAULT_ROOTS: Final = ("inputs", "state", "steps", "workflow", "org")
"""The names every expression may read; a foreach adds its ``as`` name and ``index``."""

# Built once at import. A Lark LALR parser keeps no state between parses, so sharing it is safe
# (and it is what lets the workflow sandbox pass this module through instead of re-importing it).
_PARSER: Final = Lark(
    (Path(__file__).with_name("grammar.lark")).read_text(encoding="utf-8"),
    parser="lalr",
    lexer="contextual",
    maybe_placeholders=True,
)

_NESTING: Final = frozenset({"group", "list_", "map_", "call", "index", "not_", "neg", "cond"})
_EMPTY: Final[Mapping[str, Any]] = {}
_NoneType: Final = type(None)


@dataclass(frozen=True, slots=True)
class Reference:
    """A root name an expression reads, with the first key under it when it is a constant.

    ``steps.build.output`` reads ``Reference("steps", "build", column)``; ``state[k]`` reads
    ``Reference("state", None, column)``. Columns are 1-based in the compiled text.
    """

    root: str
    key: str | None
    column: int


class _Const:
    """A compile-time constant: folded sub-expressions and literals."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


_Compiled = Evaluator | _Const


def _copy(value: Any) -> Any:
    # Constant lists and maps are handed out as fresh copies, so a caller that stores a result
    # in workflow state and later changes it can never change the expression.
    t = type(value)
    if t is list:
        return [_copy(item) for item in value]
    if t is dict:
        return {key: _copy(item) for key, item in value.items()}
    return value


def _evaluator(compiled: _Compiled) -> Evaluator:
    if not isinstance(compiled, _Const):
        return compiled
    value = compiled.value
    if type(value) in (list, dict):
        return lambda _ctx: _copy(value)
    return lambda _ctx: value


def _unforeseen(error: Exception, source: str) -> ExpressionEvaluationError:
    """An evaluation error for an exception that escaped the language's own checks."""
    detail = str(error)[:200] or type(error).__name__
    return ExpressionEvaluationError(f"expression failed: {detail}", source, 1)


class Expression:
    """A compiled expression.

    Attributes:
        source: The text as written (including a ``${{ }}`` wrapper, if any).
        names: The root names it reads.
        references: Every root it reads, with the first constant key and its column.
    """

    __slots__ = ("_evaluate", "names", "references", "source")

    def __init__(
        self,
        source: str,
        evaluate: Evaluator,
        names: frozenset[str],
        references: tuple[Reference, ...],
    ) -> None:
        self.source = source
        self._evaluate = evaluate
        self.names = names
        self.references = references

    def evaluate(self, context: Context) -> Any:
        """Evaluate against a mapping of root names to JSON values (a missing root is null).

        Raises:
            ExpressionEvaluationError: On a type error, overflow, limit or failed function.
        """
        try:
            return self._evaluate(context)
        except ExpressionEvaluationError:
            raise
        except RecursionError:
            raise ExpressionEvaluationError(
                "expression nests too deeply to evaluate", self.source, 1
            ) from None
        except Exception as error:  # a failure no function foresaw still fails the expression
            raise _unforeseen(error, self.source) from None

    def evaluate_condition(self, context: Context) -> bool:
        """Evaluate as a condition: true, false, or null (which counts as false).

        Raises:
            ExpressionEvaluationError: If the value is anything but a boolean or null.
        """
        value = self.evaluate(context)
        if value is True or value is False:
            return value
        if value is None:
            return False
        raise ExpressionEvaluationError(
            f"a condition must be a boolean or null, got {kind(value)}; "
            "compare explicitly (for example size(x) > 0 or x != '') or default it with ??",
            self.source,
            1,
        )

    # Two compilations of one text behave identically (roots only decide what compiles), so
    # expressions compare and hash by their text, which keeps models holding them comparable.
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expression) and other.source == self.source

    def __hash__(self) -> int:
        return hash((Expression, self.source))

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


class Template:
    """A compiled string template with ``${{ expr }}`` parts.

    Attributes:
        text: The template as written.
        names: The root names its expressions read.
        references: Every root its expressions read (columns are offsets into ``text``).
        expressions: The compiled expressions of its parts, in order.
        is_static: True when it has no expression parts.
        is_single: True when it is exactly one ``${{ expr }}``: rendering yields the typed value.
    """

    __slots__ = (
        "_parts",
        "expressions",
        "is_single",
        "is_static",
        "names",
        "references",
        "text",
    )

    def __init__(self, text: str, parts: list[str | Expression], single: bool) -> None:
        self.text = text
        self._parts: tuple[str | Evaluator, ...] = tuple(
            part if isinstance(part, str) else part._evaluate for part in parts
        )
        self.expressions = tuple(part for part in parts if isinstance(part, Expression))
        self.is_static = not self.expressions
        self.is_single = single
        self.names = frozenset().union(*(e.names for e in self.expressions))
        self.references = tuple(r for e in self.expressions for r in e.references)

    def render(self, context: Context) -> Any:
        """Render against a context: the typed value for a single part, else text.

        Raises:
            ExpressionEvaluationError: When an expression part fails, or the text is too large.
        """
        try:
            if self.is_single:
                return self._parts[0](context)  # type: ignore[operator]
            if self.is_static:
                return self._parts[0] if self._parts else ""
            text = "".join(
                [part if type(part) is str else to_text(part(context)) for part in self._parts]  # type: ignore[operator]
            )
        except ExpressionEvaluationError:
            raise
        except RecursionError:
            raise ExpressionEvaluationError(
                "expression nests too deeply to evaluate", self.text, 1
            ) from None
        except Exception as error:
            raise _unforeseen(error, self.text) from None
        if len(text) > MAX_SIZE:
            raise ExpressionEvaluationError(
                f"rendered text too large: {len(text)} characters, the limit is {MAX_SIZE}",
                self.text,
                1,
            )
        return text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Template) and other.text == self.text

    def __hash__(self) -> int:
        return hash((Template, self.text))

    def __repr__(self) -> str:
        return f"Template({self.text!r})"


def compile_expression(source: str, *, roots: Iterable[str] = DEFAULT_ROOTS) -> Expression:
    """Compile a bare expression (a whole-string ``${{ expr }}`` wrapper is accepted too).

    Args:
        source: The expression text.
        roots: The root names in scope; reading any other name is a compile error.

    Raises:
        ExpressionCompileError: With the column of the problem (ExpressionSyntaxError for text
            that does not parse).
    """
    if not isinstance(source, str):
        raise ExpressionCompileError(f"expected an expression string, got {kind(source)}", "", 1)
    roots = tuple(roots)
    stripped = source.strip()
    if stripped.startswith("${{"):
        parts = _split_template(source)
        expressions = [p for p in parts if not isinstance(p, str)]
        literal = "".join(p for p in parts if isinstance(p, str))
        if len(expressions) == 1 and not literal.strip():
            text, offset = expressions[0]
            return _compile(text, roots, source, offset)
    try:
        return _compile(source, roots, source, 0)
    except ExpressionSyntaxError:
        if "${{" not in source:
            raise
        raise ExpressionSyntaxError(
            "an expression field takes one bare expression, or one ${{ }} around all of it",
            source,
            source.index("${{") + 1,
        ) from None


def compile_template(text: str, *, roots: Iterable[str] = DEFAULT_ROOTS) -> Template:
    """Compile a string that may hold ``${{ expr }}`` parts (``$${{`` is a literal ``${{``).

    Args:
        text: The template text.
        roots: The root names in scope for its expressions.

    Raises:
        ExpressionCompileError: With the column, counted in ``text``, of the problem.
    """
    if not isinstance(text, str):
        raise ExpressionCompileError(f"expected a template string, got {kind(text)}", "", 1)
    roots = tuple(roots)
    parts: list[str | Expression] = []
    for part in _split_template(text):
        if isinstance(part, str):
            if parts and isinstance(parts[-1], str):
                parts[-1] += part
            elif part:
                parts.append(part)
        else:
            parts.append(_compile(part[0], roots, text, part[1]))
    single = len(parts) == 1 and isinstance(parts[0], Expression)
    return Template(text, parts, single)


def _split_template(text: str) -> list[str | tuple[str, int]]:
    """Split template text into literal strings and (expression text, offset) pairs."""
    out: list[str | tuple[str, int]] = []
    i = 0
    n = len(text)
    while True:
        j = text.find("${{", i)
        if j == -1:
            out.append(text[i:])
            return out
        if j > i and text[j - 1] == "$":
            out.append(text[i : j - 1] + "${{")
            i = j + 3
            continue
        out.append(text[i:j])
        k = j + 3
        depth = 0
        quote = ""
        end = -1
        while k < n:
            ch = text[k]
            if quote:
                if ch == "\\":
                    k += 2
                    continue
                if ch == quote:
                    quote = ""
            elif ch in "\"'":
                quote = ch
            elif ch == "{":
                depth += 1
            elif ch == "}":
                if depth == 0 and text.startswith("}}", k):
                    end = k
                    break
                depth = max(depth - 1, 0)
            k += 1
        if end == -1:
            raise ExpressionSyntaxError("unterminated '${{': missing '}}'", text, j + 1)
        inner = text[j + 3 : end]
        if not inner.strip():
            raise ExpressionSyntaxError("empty expression in '${{ }}'", text, j + 1)
        out.append((inner, j + 3))
        i = end + 2


def _compile(text: str, roots: tuple[str, ...], origin: str, offset: int) -> Expression:
    if len(text) > MAX_SOURCE:
        raise ExpressionCompileError(
            f"expression too long: {len(text)} characters, the limit is {MAX_SOURCE}",
            origin,
            offset + 1,
        )
    if not text.strip():
        raise ExpressionSyntaxError("empty expression", origin, offset + 1)
    tree = _parse(text, origin, offset)
    compiler = _Compiler(roots, origin, offset)
    compiler.check_depth(tree)
    try:
        compiled = compiler.compile(tree)
    except RecursionError:
        raise ExpressionCompileError("expression nests too deeply", origin, offset + 1) from None
    return Expression(
        origin,
        _evaluator(compiled),
        frozenset(r.root for r in compiler.references),
        tuple(compiler.references),
    )


def _parse(text: str, origin: str, offset: int) -> Tree[Token]:
    try:
        return _PARSER.parse(text)
    except UnexpectedInput as error:
        message, position = _describe_parse_error(error, text)
    raise ExpressionSyntaxError(message, origin, offset + position + 1)


def _describe_parse_error(error: UnexpectedInput, text: str) -> tuple[str, int]:
    """A person's wording of a parse error, and its 0-based position in ``text``."""
    if isinstance(error, UnexpectedCharacters):
        position: int = getattr(error, "pos_in_stream", 0)  # typed None on the base class
        char = text[position]
        if char in "\"'":
            return "unterminated string", position
        return f"unexpected character {char!r}", position
    if isinstance(error, UnexpectedToken):
        token = error.token
        if token.type == "$END":
            return "unexpected end of expression", len(text.rstrip())
        position = token.start_pos if token.start_pos is not None else 0
        return f"unexpected '{token.value}'", position
    if isinstance(error, UnexpectedEOF):
        return "unexpected end of expression", len(text.rstrip())
    return "invalid expression", 0  # pragma: no cover - lark raises only the kinds above


_ESCAPES: Final = {
    "\\": "\\",
    "'": "'",
    '"': '"',
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "/": "/",
    "b": "\b",
    "f": "\f",
}


def _not_boolean(operator: str, value: Any) -> str:
    return (
        f"'{operator}' expects booleans or null, got {kind(value)}; "
        "compare explicitly (for example x != '' or size(x) > 0) or default it with ??"
    )


class _Compiler:
    """Turns one parse tree into closures, recording the roots it reads."""

    def __init__(self, roots: tuple[str, ...], origin: str, offset: int) -> None:
        self.roots = roots
        self.origin = origin
        self.offset = offset
        self.references: list[Reference] = []

    # -- locations and errors -------------------------------------------------------------

    def column(self, token: Token) -> int:
        return self.offset + (token.start_pos or 0) + 1

    def fail(self, message: str, column: int) -> NoReturn:
        raise ExpressionCompileError(message, self.origin, column)

    def runtime(self, message: str, column: int) -> ExpressionEvaluationError:
        return ExpressionEvaluationError(message, self.origin, column)

    def first_token(self, tree: Tree[Token]) -> Token:
        """The leftmost token under a tree, found iteratively."""
        stack: list[Tree[Token] | Token | None] = [tree]
        while stack:
            node = stack.pop()
            if isinstance(node, Token):
                return node
            if isinstance(node, Tree):
                stack.extend(reversed(node.children))
        raise AssertionError("a parse tree always holds a token")  # pragma: no cover

    def check_depth(self, tree: Tree[Token]) -> None:
        """Reject nesting deeper than MAX_DEPTH, walking iteratively (no recursion limit).

        The base of a member or index chain stays at its chain's level: ``a[0][1][2]`` is a
        long path, not three levels of nesting; only what sits inside the brackets nests.
        """
        stack: list[tuple[Tree[Token], int]] = [(tree, 0)]
        while stack:
            node, depth = stack.pop()
            children = node.children
            if node.data in ("member", "index"):
                base = children[0]
                assert isinstance(base, Tree)
                stack.append((base, depth))
                children = children[1:]
            if node.data in _NESTING:
                depth += 1
                if depth > MAX_DEPTH:
                    self.fail(
                        f"expression nests more than {MAX_DEPTH} levels deep",
                        self.column(self.first_token(node)),
                    )
            stack.extend((c, depth) for c in children if isinstance(c, Tree))

    # -- dispatch -------------------------------------------------------------------------

    def compile(self, tree: Tree[Token]) -> _Compiled:
        method: Callable[[Tree[Token]], _Compiled] = getattr(self, f"_rule_{tree.data}")
        return method(tree)

    def fold(self, evaluate: Evaluator, operands: Iterable[_Compiled]) -> _Compiled:
        """Evaluate now when every operand is a constant; keep the closure if that fails."""
        if all(isinstance(o, _Const) for o in operands):
            try:
                return _Const(evaluate(_EMPTY))
            except Exception:  # it fails when it runs, with the error it gives then
                return evaluate
        return evaluate

    # -- literals -------------------------------------------------------------------------

    def _rule_int_(self, tree: Tree[Token]) -> _Compiled:
        token = tree.children[0]
        assert isinstance(token, Token)
        value = int(token.value)
        if value > INT_MAX:
            self.fail("integer literal out of range (64-bit)", self.column(token))
        return _Const(value)

    def _rule_float_(self, tree: Tree[Token]) -> _Compiled:
        token = tree.children[0]
        assert isinstance(token, Token)
        try:
            return _Const(check_float(float(token.value)))
        except EvaluationFailure:
            self.fail("number literal out of range", self.column(token))

    def _rule_string(self, tree: Tree[Token]) -> _Compiled:
        token = tree.children[0]
        assert isinstance(token, Token)
        return _Const(self.decode_string(token))

    def decode_string(self, token: Token) -> str:
        raw = token.value[1:-1]
        if "\\" not in raw:
            return str(raw)
        out: list[str] = []
        i = 0
        while i < len(raw):
            ch = raw[i]
            if ch != "\\":
                out.append(ch)
                i += 1
                continue
            code = raw[i + 1]
            if code in _ESCAPES:
                out.append(_ESCAPES[code])
                i += 2
            elif (
                code == "u"
                and len(raw[i + 2 : i + 6]) == 4
                and all(c in "0123456789abcdefABCDEF" for c in raw[i + 2 : i + 6])
            ):
                code_point = int(raw[i + 2 : i + 6], 16)
                if 0xD800 <= code_point <= 0xDFFF:
                    raise ExpressionSyntaxError(
                        f"'\\u{raw[i + 2 : i + 6]}' is half of a surrogate pair, not a character",
                        self.origin,
                        self.column(token) + 1 + i,
                    )
                out.append(chr(code_point))
                i += 6
            else:
                raise ExpressionSyntaxError(
                    f"unknown escape '\\{code}' in string", self.origin, self.column(token) + 1 + i
                )
        return "".join(out)

    def _rule_true(self, tree: Tree[Token]) -> _Compiled:
        return _Const(True)

    def _rule_false(self, tree: Tree[Token]) -> _Compiled:
        return _Const(False)

    def _rule_null(self, tree: Tree[Token]) -> _Compiled:
        return _Const(None)

    def _rule_group(self, tree: Tree[Token]) -> _Compiled:
        inner = tree.children[1]
        assert isinstance(inner, Tree)
        return self.compile(inner)

    def _rule_list_(self, tree: Tree[Token]) -> _Compiled:
        arguments = tree.children[1]
        items = [self.compile(c) for c in arguments.children] if isinstance(arguments, Tree) else []  # type: ignore[arg-type]
        evaluators = [_evaluator(i) for i in items]

        def build_list(ctx: Context) -> Any:
            return [e(ctx) for e in evaluators]

        return self.fold(build_list, items)

    def _rule_map_(self, tree: Tree[Token]) -> _Compiled:
        pairs = tree.children[1]
        entries: list[tuple[str, _Compiled]] = []
        seen: set[str] = set()
        for pair in pairs.children if isinstance(pairs, Tree) else []:
            assert isinstance(pair, Tree)
            key_token, _colon, value = pair.children
            assert isinstance(key_token, Token)
            assert isinstance(value, Tree)
            key = self.decode_string(key_token) if key_token.type == "STRING" else key_token.value
            if key in seen:
                self.fail(f"duplicate key {key!r} in map", self.column(key_token))
            seen.add(key)
            entries.append((key, self.compile(value)))
        evaluators = [(k, _evaluator(v)) for k, v in entries]

        def build_map(ctx: Context) -> Any:
            return {k: e(ctx) for k, e in evaluators}

        return self.fold(build_map, [v for _, v in entries])

    # -- names, member access and indexing ------------------------------------------------

    def _rule_name(self, tree: Tree[Token]) -> _Compiled:
        token = tree.children[0]
        assert isinstance(token, Token)
        root = self.root(token)
        self.references.append(Reference(root, None, self.column(token)))
        return lambda ctx: ctx.get(root)

    def root(self, token: Token) -> str:
        name = str(token.value)
        if name in self.roots:
            return name
        column = self.column(token)
        if name in FUNCTIONS:
            self.fail(f"'{name}' is a function: call it as {name}(...)", column)
        close = difflib.get_close_matches(name, self.roots, n=1, cutoff=0.6)
        if close:
            self.fail(f"unknown name '{name}'; did you mean '{close[0]}'?", column)
        self.fail(f"unknown name '{name}'; the names in scope are {', '.join(self.roots)}", column)

    def _rule_member(self, tree: Tree[Token]) -> _Compiled:
        return self.access(tree)

    def _rule_index(self, tree: Tree[Token]) -> _Compiled:
        return self.access(tree)

    def access(self, tree: Tree[Token]) -> _Compiled:
        # Unwind the left-recursive chain a.b[c].d iteratively: paths may be long, and their
        # length is not nesting.
        segments: list[tuple[str | _Compiled, int]] = []
        node: Tree[Token] = tree
        while node.data in ("member", "index"):
            if node.data == "member":
                name_tree = node.children[2]
                assert isinstance(name_tree, Tree)
                name = name_tree.children[0]
                assert isinstance(name, Token)
                segments.append((str(name.value), self.column(name)))
            else:
                bracket, subscript = node.children[1], node.children[2]
                assert isinstance(bracket, Token)
                assert isinstance(subscript, Tree)
                segments.append((self.compile(subscript), self.column(bracket)))
            base = node.children[0]
            assert isinstance(base, Tree)
            node = base
        segments.reverse()

        if node.data == "name":
            token = node.children[0]
            assert isinstance(token, Token)
            root = self.root(token)
            first = segments[0][0]
            key: str | None = None
            if isinstance(first, str):
                key = first
            elif isinstance(first, _Const) and type(first.value) is str:
                key = first.value
            self.references.append(Reference(root, key, self.column(token)))
            base_eval: Evaluator | None = None
        else:
            root = ""
            base_compiled = self.compile(node)
            base_eval = _evaluator(base_compiled)

        # Normalise: constant string subscripts are keys; constant ints stay indexes.
        steps: list[tuple[int, Any, int]] = []  # (kind, key-or-evaluator, column)
        for segment, column in segments:
            if isinstance(segment, str):
                steps.append((_KEY, segment, column))
            elif isinstance(segment, _Const):
                value = segment.value
                if type(value) is str:
                    steps.append((_KEY, value, column))
                elif type(value) is int:
                    steps.append((_INDEX, value, column))
                else:
                    self.fail(f"an index must be a string or an integer, got {kind(value)}", column)
            else:
                steps.append((_DYNAMIC, segment, column))

        if base_eval is None and all(s[0] == _KEY for s in steps):
            return self.key_path(root, steps)
        return self.general_path(root, base_eval, steps)

    def key_path(self, root: str, steps: list[tuple[int, Any, int]]) -> Evaluator:
        runtime = self.runtime
        if len(steps) == 1:
            ((_, k1, c1),) = steps

            def read_1(ctx: Context) -> Any:
                v = ctx.get(root)
                if type(v) is dict:
                    return v.get(k1)
                if v is None:
                    return None
                raise runtime(_field_error(v, k1), c1)

            return read_1
        if len(steps) == 2:
            (_, k1, c1), (_, k2, c2) = steps

            def read_2(ctx: Context) -> Any:
                v = ctx.get(root)
                if type(v) is dict:
                    v = v.get(k1)
                    if type(v) is dict:
                        return v.get(k2)
                    if v is None:
                        return None
                    raise runtime(_field_error(v, k2), c2)
                if v is None:
                    return None
                raise runtime(_field_error(v, k1), c1)

            return read_2
        keys = tuple((k, c) for _, k, c in steps)

        def read_n(ctx: Context) -> Any:
            v = ctx.get(root)
            for k, c in keys:
                if type(v) is dict:
                    v = v.get(k)
                elif v is None:
                    return None
                else:
                    raise runtime(_field_error(v, k), c)
            return v

        return read_n

    def general_path(
        self, root: str, base: Evaluator | None, steps: list[tuple[int, Any, int]]
    ) -> Evaluator:
        runtime = self.runtime
        frozen = tuple(steps)

        def read(ctx: Context) -> Any:
            v = ctx.get(root) if base is None else base(ctx)
            for step_kind, key, column in frozen:
                if v is None:
                    return None
                if step_kind == _DYNAMIC:
                    key = key(ctx)
                try:
                    v = _lookup(v, key)
                except EvaluationFailure as failure:
                    raise runtime(failure.message, column) from None
            return v

        return read

    # -- operators ------------------------------------------------------------------------

    def operands(self, tree: Tree[Token]) -> tuple[list[_Compiled], list[Token]]:
        children = tree.children
        operands = []
        for child in children[0::2]:
            assert isinstance(child, Tree)
            operands.append(self.compile(child))
        operators = [t for t in children[1::2] if isinstance(t, Token)]
        return operands, operators

    def _rule_or_expr(self, tree: Tree[Token]) -> _Compiled:
        return self.logical(tree, conjunction=False)

    def _rule_and_expr(self, tree: Tree[Token]) -> _Compiled:
        return self.logical(tree, conjunction=True)

    def logical(self, tree: Tree[Token], *, conjunction: bool) -> _Compiled:
        operands, operators = self.operands(tree)
        runtime = self.runtime
        # An operand's type error points at the operator beside it (the first at its right).
        checks = tuple(
            (_evaluator(o), operators[max(i - 1, 0)].value, self.column(operators[max(i - 1, 0)]))
            for i, o in enumerate(operands)
        )
        if len(checks) == 2:
            return self.fold(self.logical_pair(checks, conjunction=conjunction), operands)
        if conjunction:

            def all_true(ctx: Context) -> Any:
                for evaluate, op, column in checks:
                    v = evaluate(ctx)
                    if v is True:
                        continue
                    if v is False or v is None:
                        return False
                    raise runtime(_not_boolean(op, v), column)
                return True

            return self.fold(all_true, operands)

        def any_true(ctx: Context) -> Any:
            for evaluate, op, column in checks:
                v = evaluate(ctx)
                if v is True:
                    return True
                if v is False or v is None:
                    continue
                raise runtime(_not_boolean(op, v), column)
            return False

        return self.fold(any_true, operands)

    def logical_pair(
        self, checks: tuple[tuple[Evaluator, str, int], ...], *, conjunction: bool
    ) -> Evaluator:
        """``a && b`` and ``a || b``: the commonest conditions, without a loop."""
        (a, op_a, col_a), (b, op_b, col_b) = checks
        runtime = self.runtime
        if conjunction:

            def both(ctx: Context) -> Any:
                v = a(ctx)
                if v is not True:
                    if v is False or v is None:
                        return False
                    raise runtime(_not_boolean(op_a, v), col_a)
                v = b(ctx)
                if v is True or v is False:
                    return v
                if v is None:
                    return False
                raise runtime(_not_boolean(op_b, v), col_b)

            return both

        def either(ctx: Context) -> Any:
            v = a(ctx)
            if v is not False and v is not None:
                if v is True:
                    return True
                raise runtime(_not_boolean(op_a, v), col_a)
            v = b(ctx)
            if v is True or v is False:
                return v
            if v is None:
                return False
            raise runtime(_not_boolean(op_b, v), col_b)

        return either

    def _rule_not_(self, tree: Tree[Token]) -> _Compiled:
        operator, operand_tree = tree.children
        assert isinstance(operator, Token)
        assert isinstance(operand_tree, Tree)
        operand = self.compile(operand_tree)
        evaluate = _evaluator(operand)
        runtime = self.runtime
        column = self.column(operator)
        op = operator.value

        def negate(ctx: Context) -> Any:
            v = evaluate(ctx)
            if v is True:
                return False
            if v is False or v is None:
                return True
            raise runtime(_not_boolean(op, v), column)

        return self.fold(negate, [operand])

    def _rule_neg(self, tree: Tree[Token]) -> _Compiled:
        operator, operand_tree = tree.children
        assert isinstance(operator, Token)
        assert isinstance(operand_tree, Tree)
        operand = self.compile(operand_tree)
        evaluate = _evaluator(operand)
        runtime = self.runtime
        column = self.column(operator)

        def minus(ctx: Context) -> Any:
            v = evaluate(ctx)
            t = type(v)
            if t is int:
                if v == INT_MIN:
                    raise runtime("integer overflow: the result does not fit in 64 bits", column)
                return -v
            if t is float:
                return -v
            raise runtime(f"cannot negate {kind(v)}", column)

        return self.fold(minus, [operand])

    def _rule_cond(self, tree: Tree[Token]) -> _Compiled:
        test_tree, question, yes_tree, _colon, no_tree = tree.children
        assert isinstance(question, Token)
        test = self.compile(test_tree)  # type: ignore[arg-type]
        yes = self.compile(yes_tree)  # type: ignore[arg-type]
        no = self.compile(no_tree)  # type: ignore[arg-type]
        test_eval, yes_eval, no_eval = _evaluator(test), _evaluator(yes), _evaluator(no)
        runtime = self.runtime
        column = self.column(question)

        def choose(ctx: Context) -> Any:
            v = test_eval(ctx)
            if v is True:
                return yes_eval(ctx)
            if v is False or v is None:
                return no_eval(ctx)
            raise runtime(_not_boolean("?", v), column)

        if isinstance(test, _Const) and test.value in (True, False, None):
            return yes if test.value is True else no
        return choose

    def _rule_coalesce(self, tree: Tree[Token]) -> _Compiled:
        operands, _ = self.operands(tree)
        evaluators = [_evaluator(o) for o in operands]
        if len(evaluators) == 2:
            a, b = evaluators

            def coalesce_2(ctx: Context) -> Any:
                v = a(ctx)
                return b(ctx) if v is None else v

            return self.fold(coalesce_2, operands)
        head, last = tuple(evaluators[:-1]), evaluators[-1]

        def coalesce_n(ctx: Context) -> Any:
            for evaluate in head:
                v = evaluate(ctx)
                if v is not None:
                    return v
            return last(ctx)

        return self.fold(coalesce_n, operands)

    def _rule_compare(self, tree: Tree[Token]) -> _Compiled:
        return self.chain(tree, _COMPARISONS)

    def _rule_sum(self, tree: Tree[Token]) -> _Compiled:
        return self.chain(tree, _ARITHMETIC)

    def _rule_product(self, tree: Tree[Token]) -> _Compiled:
        return self.chain(tree, _ARITHMETIC)

    def chain(self, tree: Tree[Token], table: Mapping[str, Callable[[Any, Any], Any]]) -> _Compiled:
        """Left-to-right binary operators of one precedence level, evaluated iteratively."""
        operands, operators = self.operands(tree)
        runtime = self.runtime
        if len(operands) == 2:
            return self.binary(operators[0], operands[0], operands[1], table)
        first = _evaluator(operands[0])
        rest = tuple(
            (table[op.value], _evaluator(o), self.column(op))
            for op, o in zip(operators, operands[1:], strict=True)
        )

        def chained(ctx: Context) -> Any:
            acc = first(ctx)
            for apply, evaluate, column in rest:
                try:
                    acc = apply(acc, evaluate(ctx))
                except EvaluationFailure as failure:
                    raise runtime(failure.message, column) from None
            return acc

        return self.fold(chained, operands)

    def binary(
        self,
        operator: Token,
        left: _Compiled,
        right: _Compiled,
        table: Mapping[str, Callable[[Any, Any], Any]],
    ) -> _Compiled:
        op = operator.value
        column = self.column(operator)
        runtime = self.runtime
        a = _evaluator(left)
        fast = self.constant_right(op, a, right, column)
        if fast is not None:
            return fast
        b = _evaluator(right)
        apply = table[op]

        def binary_op(ctx: Context) -> Any:
            try:
                return apply(a(ctx), b(ctx))
            except EvaluationFailure as failure:
                raise runtime(failure.message, column) from None

        return self.fold(binary_op, [left, right])

    def constant_right(
        self, op: str, a: Evaluator, right: _Compiled, column: int
    ) -> Evaluator | None:
        """Closures for the commonest shape: a path compared with a constant."""
        if not isinstance(right, _Const):
            return None
        c = right.value
        tc = type(c)
        runtime = self.runtime
        if op in ("==", "!=") and tc in (str, int, bool, _NoneType):
            equal = op == "=="

            def equals_constant(ctx: Context) -> Any:
                v = a(ctx)
                if type(v) is tc:
                    return (v == c) is equal
                return json_equal(v, c) is equal

            return equals_constant
        if op in _ORDERING and tc in (int, float):
            compare = _ORDERING[op]

            def order_constant(ctx: Context) -> Any:
                v = a(ctx)
                t = type(v)
                if t is int or t is float:
                    return compare(v, c)
                raise runtime(_compare_error(v, c), column)

            return order_constant
        if op == "in" and tc is list and c and all(type(x) is str for x in c):
            members = frozenset(c)

            def in_constant(ctx: Context) -> Any:
                v = a(ctx)
                if type(v) is str:
                    return v in members
                return False

            return in_constant
        return None

    # -- calls ----------------------------------------------------------------------------

    def _rule_call(self, tree: Tree[Token]) -> _Compiled:
        name_token, _lpar, arguments, _rpar = tree.children
        assert isinstance(name_token, Token)
        name = str(name_token.value)
        column = self.column(name_token)
        implementation = FUNCTIONS.get(name)
        if implementation is None:
            if name in self.roots:
                self.fail(f"'{name}' is not a function", column)
            lowered = {n.lower(): n for n in FUNCTIONS}
            close = (
                [lowered[name.lower()]]
                if name.lower() in lowered
                else (difflib.get_close_matches(name, list(FUNCTIONS), n=1, cutoff=0.5))
            )
            hint = f"; did you mean '{close[0]}'?" if close else ""
            self.fail(f"unknown function '{name}'{hint}", column)
        args = (
            [self.compile(c) for c in arguments.children]  # type: ignore[arg-type]
            if isinstance(arguments, Tree)
            else []
        )
        signature = SIGNATURES[name]
        if not signature.accepts(len(args)):
            self.fail(f"{name}() takes {signature.describe()}, got {len(args)}", column)
        runtime = self.runtime
        if name == "matches" and isinstance(args[1], _Const) and type(args[1].value) is str:
            try:
                pattern = compile_pattern(args[1].value)
            except EvaluationFailure as failure:
                assert isinstance(arguments, Tree)
                self.fail(failure.message, self.column(self.first_token(arguments.children[1])))  # type: ignore[arg-type]
            text = _evaluator(args[0])

            def matches_compiled(ctx: Context) -> Any:
                try:
                    return search_compiled(pattern, text(ctx))
                except EvaluationFailure as failure:
                    raise runtime(failure.message, column) from None

            return self.fold(matches_compiled, args[:1])
        evaluators = [_evaluator(a) for a in args]
        if len(evaluators) == 1:
            (only,) = evaluators

            def call_1(ctx: Context) -> Any:
                try:
                    return implementation(only(ctx))
                except EvaluationFailure as failure:
                    raise runtime(failure.message, column) from None

            return self.fold(call_1, args)

        def call_n(ctx: Context) -> Any:
            try:
                return implementation(*[e(ctx) for e in evaluators])
            except EvaluationFailure as failure:
                raise runtime(failure.message, column) from None

        return self.fold(call_n, args)


_KEY: Final = 0
_INDEX: Final = 1
_DYNAMIC: Final = 2


def _field_error(value: Any, key: str) -> str:
    if type(value) is list:
        return f"cannot read field '{key}' of a list; index it with a number, like [0]"
    return f"cannot read field '{key}' of a {kind(value)}"


def _lookup(value: Any, key: Any) -> Any:
    t = type(value)
    tk = type(key)
    if tk is str:
        if t is dict:
            return value.get(key)
        raise EvaluationFailure(_field_error(value, key))
    if tk is int:
        if t is list:
            if -len(value) <= key < len(value):
                return value[key]
            return None
        if t is dict:
            raise EvaluationFailure("cannot index a map with a number: map keys are strings")
        raise EvaluationFailure(f"cannot index a {kind(value)}")
    raise EvaluationFailure(f"an index must be a string or an integer, got {kind(key)}")


# -- operator helpers (raise EvaluationFailure; the closure adds the column) ----------------


def _overflow() -> NoReturn:
    raise EvaluationFailure("integer overflow: the result does not fit in 64 bits")


def _add(a: Any, b: Any) -> Any:
    ta = type(a)
    tb = type(b)
    if ta is int and tb is int:
        r = a + b
        if INT_MIN <= r <= INT_MAX:
            return r
        _overflow()
    if (ta is int or ta is float) and (tb is int or tb is float):
        return check_float(a + b)
    if ta is tb and (ta is str or ta is list):
        return check_size(a + b)
    hint = ""
    if (ta is str) != (tb is str):
        hint = "; convert explicitly, for example 'n = ' + string(n)"
    raise EvaluationFailure(f"cannot add {kind(a)} and {kind(b)}{hint}")


def _numbers(verb: str, a: Any, b: Any) -> None:
    ta = type(a)
    tb = type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        return
    raise EvaluationFailure(f"cannot {verb} {kind(a)} and {kind(b)}: both must be numbers")


def _subtract(a: Any, b: Any) -> Any:
    _numbers("subtract", a, b)
    if type(a) is int and type(b) is int:
        r = a - b
        return r if INT_MIN <= r <= INT_MAX else _overflow()
    return check_float(a - b)


def _multiply(a: Any, b: Any) -> Any:
    _numbers("multiply", a, b)
    if type(a) is int and type(b) is int:
        r = a * b
        return r if INT_MIN <= r <= INT_MAX else _overflow()
    return check_float(a * b)


def _divide(a: Any, b: Any) -> Any:
    _numbers("divide", a, b)
    if b == 0:
        raise EvaluationFailure("division by zero")
    if type(a) is int and type(b) is int:
        quotient, remainder = divmod(a, b)
        if remainder == 0:
            return quotient if INT_MIN <= quotient <= INT_MAX else _overflow()
    return check_float(a / b)


def _modulo(a: Any, b: Any) -> Any:
    _numbers("take the remainder of", a, b)
    if b == 0:
        raise EvaluationFailure("division by zero")
    if type(a) is int and type(b) is int:
        # Truncated remainder (the sign follows the dividend), as in C, JavaScript and CEL.
        r = abs(a) % abs(b)
        return -r if a < 0 else r
    return check_float(math.fmod(a, b))


def _compare_error(a: Any, b: Any) -> str:
    hint = "; default it with ??" if a is None or b is None else ""
    return f"cannot compare {kind(a)} with {kind(b)}{hint}"


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def ordered(a: Any, b: Any) -> bool:
        ta = type(a)
        tb = type(b)
        if ((ta is int or ta is float) and (tb is int or tb is float)) or (ta is str and tb is str):
            return compare(a, b)
        raise EvaluationFailure(_compare_error(a, b))

    return ordered


def _equal(a: Any, b: Any) -> bool:
    t = type(a)
    if t is type(b) and (t is str or t is int or t is bool or t is _NoneType):
        return bool(a == b)
    return json_equal(a, b)


def _contained(needle: Any, haystack: Any) -> bool:
    t = type(haystack)
    if t is list:
        if type(needle) is str:
            return needle in haystack
        return any(json_equal(item, needle) for item in haystack)
    if t is dict or t is str:
        if type(needle) is not str:
            where = "a map's keys" if t is dict else "a string"
            raise EvaluationFailure(
                f"only a string can be looked up in {where}, got {kind(needle)}"
            )
        return needle in haystack
    hint = "; default it with ??, for example x in (y ?? [])" if haystack is None else ""
    raise EvaluationFailure(
        f"'in' needs a list, map or string on its right, got {kind(haystack)}{hint}"
    )


_ORDERING: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}

_COMPARISONS: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "==": _equal,
    "!=": lambda a, b: not _equal(a, b),
    "in": _contained,
    **{op: _ordered(compare) for op, compare in _ORDERING.items()},
}

_ARITHMETIC: Final[dict[str, Callable[[Any, Any], Any]]] = {
    "+": _add,
    "-": _subtract,
    "*": _multiply,
    "/": _divide,
    "%": _modulo,
}
