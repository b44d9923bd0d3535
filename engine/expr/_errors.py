"""Errors of the expression language, each carrying its source and a 1-based column."""

from __future__ import annotations

from typing import ClassVar

from engine.errors import EngineError

__all__ = [
    "ExpressionCompileError",
    "ExpressionError",
    "ExpressionEvaluationError",
    "ExpressionSyntaxError",
]


class ExpressionError(EngineError):
    """An expression that cannot be compiled or evaluated.

    Attributes:
        message: What is wrong, without the location.
        source: The text the column refers to (an expression, or a whole template).
        column: 1-based position of the offending character in ``source``.
    """

    code: ClassVar[str] = "INVALID_ARGUMENT"
    reason: ClassVar[str] = "INVALID_EXPRESSION"

    def __init__(self, message: str, source: str, column: int) -> None:
        self.message = message
        self.source = source
        self.column = column
        super().__init__(message, source, column)

    def __str__(self) -> str:
        # The source is printed once, after the message, with a caret under the culprit. Line
        # breaks and tabs become spaces so that the caret stays aligned in a terminal.
        shown = self.source.replace("\n", " ").replace("\r", " ").replace("\t", " ")
        head = f"{self.message} at column {self.column}: "
        return f"{head}{shown}\n{' ' * (len(head) + self.column - 1)}^"


class ExpressionCompileError(ExpressionError):
    """An expression rejected when it is compiled: syntax, unknown names, arity, limits."""

    reason: ClassVar[str] = "EXPRESSION_COMPILE_ERROR"


class ExpressionSyntaxError(ExpressionCompileError):
    """An expression whose text does not parse."""

    reason: ClassVar[str] = "EXPRESSION_SYNTAX_ERROR"


class ExpressionEvaluationError(ExpressionError):
    """An expression that failed while it was evaluated (type errors, overflow, limits)."""

    reason: ClassVar[str] = "EXPRESSION_EVALUATION_ERROR"
