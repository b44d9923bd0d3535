"""Compiled expressions and templates, and rendering of compiled values.

A definition is compiled once, when it is loaded. Every string of a templated field becomes
either a :class:`~engine.expr.Template` (when it has ``${{ }}`` parts) or the plain string it
renders to (when it has none), inside the same nesting of dicts and lists as the field's value.
The interpreter renders such a *compiled value* with :func:`render_value`, which never parses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.expr import Template

__all__ = ["render_value"]


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Render a compiled value: every template in it, at any depth, against ``context``.

    Args:
        value: A compiled value: a :class:`~engine.expr.Template`, or dicts and lists holding
            templates and plain JSON values (plain values are returned as they are, containers
            are copied).
        context: The root names in scope (``inputs``, ``state``, ``steps``, ``workflow``,
            ``org``, and the variables of enclosing foreach steps) mapped to their values.

    Returns:
        The rendered JSON value: a single-part template (``"${{ expr }}"``) yields its value
        with its type; other templates yield strings.

    Raises:
        engine.expr.ExpressionEvaluationError: An expression failed.
    """
    kind = type(value)
    if kind is Template:
        return value.render(context)
    if kind is dict:
        return {key: render_value(item, context) for key, item in value.items()}
    if kind is list:
        return [render_value(item, context) for item in value]
    return value
