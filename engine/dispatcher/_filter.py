"""Run filters: a caller's ``query`` parsed and rebuilt, never spliced into a visibility query.

The language is a small subset of Temporal's visibility queries, over the fields a run's
listing may be filtered by::

    filter  := or
    or      := and ("OR" and)*
    and     := unary ("AND" unary)*
    unary   := "(" or ")" | clause
    clause  := FIELD OP value | FIELD ["NOT"] "IN" "(" value ("," value)* ")"
             | FIELD "STARTS_WITH" STRING | FIELD "IS" ["NOT"] "NULL"
    OP      := "=" | "!=" | ">" | ">=" | "<" | "<="
    value   := STRING ('single' or "double" quoted, a quote doubled or backslashed) | NUMBER

Keywords are case-insensitive; fields are spelled as listed in :data:`FIELDS`. The parsed
filter is written back with every value quoted by the engine, inside parentheses that the
caller's text cannot close, so it can only narrow the engine's own clauses (org, type, children).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, NoReturn

from engine.dispatcher._errors import InvalidRequestError

__all__ = ["FIELDS", "visibility_filter"]

FIELDS: Final = (
    "WorkflowId",
    "RunId",
    "WorkflowType",
    "ParentWorkflowId",
    "StartTime",
    "CloseTime",
    "ExecutionTime",
    "ExecutionStatus",
    "TemporalScheduledById",
    "TemporalScheduledStartTime",
    "EngineStatus",
    "EngineStep",
    "EngineDefinition",
)
"""What a run filter may name (the engine's own ``EngineOrg`` is not among them)."""
_LONGEST: Final = 2000
_TOKEN: Final = re.compile(
    r"""\s*(?:
      (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<op>!=|>=|<=|=|>|<)
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS: Final = frozenset({"AND", "OR", "NOT", "IN", "STARTS_WITH", "IS", "NULL"})


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    column: int


def visibility_filter(text: str) -> str:
    """The visibility query for a caller's filter, rebuilt from its parse.

    Raises:
        InvalidRequestError: Naming what is wrong and its column (1-based).
    """
    if len(text) > _LONGEST:
        raise InvalidRequestError(f"query: longer than {_LONGEST} characters")
    parser = _Parser(_tokens(text))
    built = parser.disjunction()
    if parser.peek() is not None:
        parser.fail("expected AND, OR or the end")
    return built


def _tokens(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            start = position + len(text[position:]) - len(text[position:].lstrip())
            raise InvalidRequestError(
                f"query: unexpected character {text[start]!r} at column {start + 1}"
            )
        kind = match.lastgroup or ""
        value = match.group(kind)
        column = match.start(kind) + 1
        if kind == "word" and value.upper() in _KEYWORDS:
            kind, value = "keyword", value.upper()
        tokens.append(_Token(kind, value, column))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.index = 0
        self.depth = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            self.fail("unexpected end")
        self.index += 1
        return token

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "keyword" and token.text in words:
            self.index += 1
            return True
        return False

    def punct(self, mark: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "punct" and token.text == mark:
            self.index += 1
            return True
        return False

    def expect(self, mark: str) -> None:
        if not self.punct(mark):
            self.fail(f"expected '{mark}'")

    def fail(self, message: str) -> NoReturn:
        token = self.peek()
        where = f"at column {token.column}" if token is not None else "at the end"
        raise InvalidRequestError(f"query: {message} {where}")

    def disjunction(self) -> str:
        parts = [self.conjunction()]
        while self.keyword("OR"):
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def conjunction(self) -> str:
        parts = [self.unary()]
        while self.keyword("AND"):
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def unary(self) -> str:
        if self.punct("("):
            self.depth += 1
            if self.depth > 16:
                self.fail("parentheses nest too deeply")
            inner = self.disjunction()
            self.expect(")")
            self.depth -= 1
            return f"({inner})"
        return self.clause()

    def clause(self) -> str:
        token = self.take()
        if token.kind != "word" or token.text not in FIELDS:
            self.index -= 1
            self.fail(f"expected a field ({', '.join(FIELDS)})")
        field = token.text
        if self.keyword("IS"):
            negated = self.keyword("NOT")
            if not self.keyword("NULL"):
                self.fail("expected NULL")
            return f"{field} IS {'NOT ' if negated else ''}NULL"
        if self.keyword("STARTS_WITH"):
            return f"{field} STARTS_WITH {self.value(strings_only=True)}"
        negated = self.keyword("NOT")
        if self.keyword("IN"):
            self.expect("(")
            values = [self.value()]
            while self.punct(","):
                values.append(self.value())
            self.expect(")")
            return f"{field} {'NOT IN' if negated else 'IN'} ({', '.join(values)})"
        if negated:
            self.fail("expected IN")
        operator = self.take()
        if operator.kind != "op":
            self.index -= 1
            self.fail("expected a comparison (=, !=, >, >=, <, <=), IN, STARTS_WITH or IS")
        return f"{field} {operator.text} {self.value()}"

    def value(self, *, strings_only: bool = False) -> str:
        token = self.take()
        if token.kind == "number" and not strings_only:
            return token.text
        if token.kind != "string":
            self.index -= 1
            self.fail("expected a quoted string" if strings_only else "expected a value")
        return _quote(_unquote(token.text))


def _unquote(literal: str) -> str:
    quote, body = literal[0], literal[1:-1]
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            out.append(body[index + 1])
            index += 2
        elif char == quote and body[index + 1 : index + 2] == quote:
            out.append(quote)
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
