"""``condition``: run ``then`` when ``if`` holds, else ``else``; inline, no history event."""

from __future__ import annotations

from typing import Any

from engine.definition import ConditionStep
from engine.workflow._flow import Scope
from engine.workflow._steps._run import Run

__all__ = ["run_condition"]


async def run_condition(run: Run, step: ConditionStep, scope: Scope, attempt: int) -> Any:
    """Evaluate ``if`` once and run the branch it picks.

    The branch taken is part of the run's position: a run that continues as new inside the
    branch re-enters it without evaluating ``if`` again (what the branch did since may have
    changed the answer).

    Returns:
        What the branch returned (a ``return`` inside it), else whether ``then`` ran.
    """
    branch = run.branches.get(step.id) if scope.tracked else None
    if branch is None:
        branch = "then" if step.evaluate_if(run.context(step, scope)) else "else"
        if scope.tracked:
            run.branches[step.id] = branch
    returned = await run.run_block(step.then if branch == "then" else step.else_, scope)
    return returned if returned is not None else branch == "then"
