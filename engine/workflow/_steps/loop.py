"""``loop``: run a block again and again, ``while`` a condition holds or ``until`` one does, at
most ``max_iterations`` times; ``break`` ends it early.

The iteration a loop is at is part of the run's position (``run.loops``): a run that continues
as new in the middle of an iteration resumes that iteration, skipping the steps it finished,
without evaluating ``while`` again. Each iteration starts by forgetting the position of the
loop's steps, so that they run again (their records, ``steps.<id>``, keep the last iteration's).
"""

from __future__ import annotations

from typing import Any

from engine.definition import LoopStep
from engine.workflow._flow import Broken, Scope, StepFailedError
from engine.workflow._steps._run import Run

__all__ = ["run_loop"]


async def run_loop(run: Run, step: LoopStep, scope: Scope, attempt: int) -> Any:
    """Run the iterations.

    Returns:
        ``{"iterations": n, "broke": bool}``, or what a ``return`` inside returned.

    Raises:
        StepFailedError: Retryable: ``max_iterations`` iterations ran and the condition still
            asked for another (the output says how many ran).
    """
    resumed_at = run.loops.get(step.id) if scope.tracked and attempt == 1 else None
    iteration = resumed_at if resumed_at is not None else 0
    conditional = step.while_ is not None or step.until is not None
    nested = list(step.nested_steps())
    while True:
        inner = _scope(scope, step, iteration)
        if iteration != resumed_at:
            if step.while_ is not None and not step.evaluate_condition(
                "while", run.context(step, inner)
            ):
                break
            if iteration >= step.max_iterations:
                if not conditional:
                    break
                run.loops.pop(step.id, None)
                raise StepFailedError(
                    f"loop '{step.id}' ran max_iterations ({step.max_iterations}) and its "
                    f"{'while' if step.while_ is not None else 'until'} still asks for another",
                    retryable=True,
                    output={"iterations": iteration, "broke": False},
                )
            if scope.tracked:
                run.forget(nested)
                run.loops[step.id] = iteration
        returned = await run.run_block(step.steps, inner)
        iteration += 1
        if isinstance(returned, Broken):
            run.loops.pop(step.id, None)
            return {"iterations": iteration, "broke": True}
        if returned is not None:  # a return inside: the run ends
            run.loops.pop(step.id, None)
            return returned
        if step.until is not None and step.evaluate_condition(
            "until", run.context(step, _scope(scope, step, iteration - 1))
        ):
            break
        resumed_at = None
    run.loops.pop(step.id, None)
    return {"iterations": iteration, "broke": False}


def _scope(scope: Scope, step: LoopStep, iteration: int) -> Scope:
    """The loop's steps' scope: the enclosing one, with ``loop`` (its id and iteration)."""
    variables = {**scope.variables, "loop": {"id": step.id, "iteration": iteration}}
    return Scope(variables, scope.state, scope.steps, scope.tracked)
