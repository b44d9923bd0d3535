"""``try``: run ``steps``; when one of them fails the run, run ``catch`` with the ``error``
in scope instead; then ``finally``, whatever happened (a cancelled run runs neither).

Where a try is (the block it runs, the error caught, the failure to raise once ``finally`` has
run) is part of the run's position (``run.tries``), so a run that continues as new inside any
of its blocks resumes there. Compensations recorded inside ``steps`` stay recorded when the
failure is caught: they run if the run fails later.
"""

from __future__ import annotations

from typing import Any

from engine.definition import TryStep
from engine.workflow._flow import Broken, Returned, RunFailedError, Scope
from engine.workflow._steps._run import Run
from engine.workflow._types import TryProgress

__all__ = ["run_try"]


async def run_try(run: Run, step: TryStep, scope: Scope, attempt: int) -> Any:
    """Run the blocks.

    Returns:
        The output of the last step of ``steps`` (or of ``catch``, when it ran), or what a
        ``return`` or ``break`` inside ended with.

    Raises:
        RunFailedError: A step of ``steps`` failed and there is no ``catch``, or a step of
            ``catch`` or ``finally`` failed (after ``finally`` ran, except for the latter).
    """
    fresh: TryProgress = {"phase": "steps"}
    if scope.tracked and attempt == 1:
        progress = run.tries.setdefault(step.id, fresh)
    else:
        progress = fresh
        if scope.tracked:
            run.forget(step.nested_steps())
            run.tries[step.id] = progress
    if progress["phase"] == "steps":
        try:
            _ended(progress, await run.run_block(step.steps, scope), run, step.steps)
            progress["phase"] = "finally"
        except RunFailedError as failure:
            if step.catch:
                progress["phase"] = "catch"
                progress["error"] = failure.error
            else:
                progress["phase"] = "finally"
                progress["failure"] = {"message": str(failure), "error": failure.error}
    if progress["phase"] == "catch":
        variables = {**scope.variables, "error": progress["error"]}
        caught = Scope(variables, scope.state, scope.steps, scope.tracked)
        try:
            _ended(progress, await run.run_block(step.catch, caught), run, step.catch)
        except RunFailedError as failure:
            progress["failure"] = {"message": str(failure), "error": failure.error}
        progress["phase"] = "finally"
    returned = await run.run_block(step.finally_, scope) if step.finally_ else None
    run.tries.pop(step.id, None)
    if returned is not None:  # a return or break in finally wins, as in most languages
        return returned
    pending = progress.get("failure")
    if pending is not None:
        raise RunFailedError(pending["message"], pending["error"])
    ended = progress.get("ended")
    if ended is not None:
        return Broken() if ended["kind"] == "break" else Returned(ended["value"])
    return progress.get("output")


def _ended(progress: TryProgress, returned: Returned | None, run: Run, block: list[Any]) -> None:
    """Note how a block ended: a return or break (kept for after ``finally``), or its output."""
    if isinstance(returned, Broken):
        progress["ended"] = {"kind": "break"}
    elif returned is not None:
        progress["ended"] = {"kind": "return", "value": returned.value}
    else:
        progress["output"] = run.record.last_output(block)
