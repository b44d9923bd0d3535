"""``call``: run another definition of the organization as a child run; its result is the
step's output.

The definition comes with the run (``RunInput.called``, resolved and pinned when the run
started), so the step needs no registry. The child reports its pending actions to this run, as
a foreach item does, so they show in this run's status and its org's inbox. Its failure fails
the step (retryable: a retry starts a new child run); a cancelled run stops its child first.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError

from engine.definition import CallStep
from engine.workflow._flow import RunCancelledError, Scope, StepFailedError
from engine.workflow._steps._run import Run
from engine.workflow._steps.foreach import cause_of

__all__ = ["run_call"]


async def run_call(run: Run, step: CallStep, scope: Scope, attempt: int) -> Any:
    """Start the called run, wait for its end; returns its result.

    Raises:
        StepFailedError: The called run failed (retryable), or its inputs do not fit.
        RunCancelledError: This run was cancelled (the called run was stopped first).
    """
    inputs = step.render("inputs", run.context(step, scope)) or {}
    handle = await run.items.call(run.input, step, inputs, attempt)
    run.suspend("running", step.id)
    try:
        await run.wait_for(handle.done, None)
    except RunCancelledError:
        await run.items.stop([handle], run.cancel_reason or "cancelled")
        await workflow.wait_condition(handle.done)  # it ends on its own terms
        raise
    finally:
        run.items.ended(handle.id)
        await run.publish_actions()
    run.resume(step.id)
    try:
        return handle.result()
    except ChildWorkflowError as error:
        raise StepFailedError(
            f"definition '{step.definition}' failed: {cause_of(error)}", retryable=True
        ) from None
