"""``set_state``: render values for state keys; inline, no history event."""

from __future__ import annotations

from typing import Any

from engine.definition import SetStateStep
from engine.workflow._flow import Scope
from engine.workflow._steps._run import Run

__all__ = ["run_set_state"]


async def run_set_state(run: Run, step: SetStateStep, scope: Scope, attempt: int) -> Any:
    """Render ``set``; the sequencer applies the values to the state once it knows they fit."""
    values: dict[str, Any] = step.render("set", run.context(step, scope))
    return values
