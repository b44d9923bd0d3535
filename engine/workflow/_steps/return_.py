"""``return``: end the run (or the foreach item) with a value; inline, no history event."""

from __future__ import annotations

from typing import Any

from engine.definition import ReturnStep
from engine.workflow._budget import check_size
from engine.workflow._flow import Returned, Scope
from engine.workflow._steps._run import Run

__all__ = ["run_return"]


async def run_return(run: Run, step: ReturnStep, scope: Scope, attempt: int) -> Any:
    """Render ``value`` and end the enclosing run with it."""
    value = step.render("value", run.context(step, scope))
    check_size(f"the value of return step '{step.id}'", value)
    return Returned(value)
