"""``shell``, ``mcp_call``, ``prompt``, ``delegate``: suspend with a pending action until an
external executor submits its result, the action times out, or the run is cancelled."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

from engine.definition import PromptStep, StepBase, format_duration
from engine.workflow._actions import Action
from engine.workflow._flow import Scope, StepFailedError, seconds_until
from engine.workflow._steps._run import Run

__all__ = ["run_action"]


async def run_action(run: Run, step: StepBase, scope: Scope, attempt: int) -> Any:
    """Issue the step's action and wait for its result.

    Returns:
        The submitted result (checked against the action's shape when it was submitted).

    Raises:
        StepFailedError: Retryable: the action timed out, the executor reported an error, or
            a shell command exited non-zero (its result is the failure's output). Not
            retryable: the action would not fit in the run's status.
    """
    context = run.context(step, scope)
    parameters = step.render_params(context)
    if isinstance(step, PromptStep):
        parameters["prompt_type"] = step.prompt_type
    now = workflow.now()
    timeout = step.timeout or run.definition.defaults.timeout
    action = Action(
        action_id=str(workflow.uuid4()),
        type=step.step_type,
        step_id=step.id,
        parameters=parameters,
        attempt=attempt,
        created_at=now,
        deadline=now + timeout if timeout else None,
        state=context["state"] if step.needs_state is not None else None,
        workflow_id=run.workflow_id,
        run_id=run.run_id,
    )
    run.actions.add(action)
    try:
        run.check_status(f"the pending action of step '{step.id}'")
    except StepFailedError:
        run.actions.remove(action)
        raise
    try:
        run.suspend("waiting", step.id)
        await run.publish_actions()
        while not action.resolved:
            remaining = seconds_until(action.deadline)
            if remaining is not None and remaining <= 0:
                break
            action.deadline_changed = False
            await run.wait_for(lambda: action.resolved or action.deadline_changed, remaining)
    finally:
        run.actions.remove(action)
    # A timed-out action leaves the status too: during a retry's backoff nothing waits.
    await run.publish_actions()
    run.resume(step.id)
    if not action.resolved:
        raise StepFailedError(_timed_out(action, timeout), retryable=True)
    if action.error is not None:
        raise StepFailedError(action.error, retryable=True)
    result = action.result
    if step.step_type == "shell" and result["exit_code"] != 0:
        stderr = result["stderr"][-500:].strip()
        raise StepFailedError(
            f"exit code {result['exit_code']}: {stderr}"
            if stderr
            else f"exit code {result['exit_code']}",
            retryable=True,
            output=result,
        )
    return result


def _timed_out(action: Action, timeout: timedelta | None) -> str:
    if timeout is not None and action.deadline == action.created_at + timeout:
        return f"timed out after {format_duration(timeout)}"
    # update_timeout moved the deadline: the step's own timeout would mislead.
    assert action.deadline is not None
    return f"timed out at {action.deadline.isoformat()} (deadline set by update_timeout)"
