"""The expression language of workflow definitions.

A small, safe and deterministic language with the syntax of GitHub Actions and CEL, parsed once
by a Lark LALR parser and compiled into closures. Values are JSON values; there is no clock,
randomness, environment or I/O (the workflow supplies time as ``workflow.now``).

Example:
    >>> compile_expression("state.count > 3 && inputs.env == 'prod'").evaluate(
    ...     {"state": {"count": 4}, "inputs": {"env": "prod"}}
    ... )
    True
    >>> compile_template("Deploy ${{ inputs.service }}").render({"inputs": {"service": "api"}})
    'Deploy api'
"""

from __future__ import annotations

from engine.expr._compiler import (
    DEFAULT_ROOTS,
    Expression,
    Reference,
    Template,
    compile_expression,
    compile_template,
)
from engine.expr._errors import (
    ExpressionCompileError,
    ExpressionError,
    ExpressionEvaluationError,
    ExpressionSyntaxError,
)
from engine.expr._functions import FUNCTIONS
from engine.expr._values import MAX_DEPTH, MAX_RANGE, MAX_SIZE, MAX_SOURCE, json_equal, to_text

__all__ = [
    "DEFAULT_ROOTS",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_RANGE",
    "MAX_SIZE",
    "MAX_SOURCE",
    "Expression",
    "ExpressionCompileError",
    "ExpressionError",
    "ExpressionEvaluationError",
    "ExpressionSyntaxError",
    "Reference",
    "Template",
    "compile_expression",
    "compile_template",
    "json_equal",
    "to_text",
]
