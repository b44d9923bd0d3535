"""``shell``, ``mcp_call``, ``prompt``, ``delegate``: suspend with a pending action until an
external executor performs it, the action times out, or the run is cancelled.

A ``shell``, ``mcp_call`` or ``delegate`` action reaches its executor in one of two ways, and the
first answer wins (a ``prompt``, a question for a person, only the second):

- **Claimed from a task queue.** The action is also a Temporal activity (``engine.action``) on
  the task queue of its type (and agent), which no worker of the engine polls: executors claim
  it through the control plane. Temporal gives it to one executor at a time, under a lease (the
  activity's heartbeat timeout); a lease that expires makes it deliverable again, under the
  step's retry policy. The executor's result completes the activity, and the run takes it from
  there.
- **Answered by id.** A person, or the ``@task`` agent that started the run, submits the
  result with the ``submit_result`` update; the run then cancels the activity, which tells an
  executor still holding it (its next heartbeat says so).

Runs started before actions were activities wait for an answer by id only: that path stays,
behind ``workflow.patched``, so their histories keep replaying.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as ActivityTimeoutError

from engine.definition import PromptStep, ShellStep, StepBase, format_duration
from engine.protocol import (
    ACTION_ACTIVITY,
    ACTION_FAILED,
    ACTION_RELEASED,
    CLAIMED_ACTION_TYPES,
    action_queue,
    clipped,
)
from engine.workflow._actions import Action, ResultRejectedError, check_result
from engine.workflow._flow import Scope, StepFailedError, seconds_until
from engine.workflow._metrics import action_answered
from engine.workflow._steps._run import Run

__all__ = ["ON_TASK_QUEUES", "run_action"]

ON_TASK_QUEUES: Final = "actions-on-task-queues"
"""The patch under which actions are also activity tasks that executors claim."""
_NO_TIMEOUT: Final = timedelta(days=3650)
"""How long one delivery may last when the step has no timeout (Temporal needs a bound)."""


async def run_action(run: Run, step: StepBase, scope: Scope, attempt: int) -> Any:
    """Issue the step's action and wait for its result.

    Returns:
        The result (checked against the action's shape).

    Raises:
        StepFailedError: Retryable: the action timed out, the executor reported an error, no
            executor finished it within its deliveries, or a shell command exited non-zero
            (its result is the failure's output). Not retryable: the action would not fit in
            the run's status.
    """
    context = run.context(step, scope)
    parameters = step.render_params(context)
    if isinstance(step, ShellStep) and step.runs_on is not None:
        parameters["runs_on"] = step.runs_on
    if isinstance(step, PromptStep):
        parameters["prompt_type"] = step.prompt_type
        rules = step.answer_rules()
        if rules is not None:
            parameters["answer_rules"] = rules
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
        trace=run.input.trace,
    )
    run.actions.add(action)
    try:
        run.check_status(f"the pending action of step '{step.id}'")
    except StepFailedError:
        run.actions.remove(action)
        raise
    if run.input.notify:  # else no need to render the action for the webhook
        run.notify_waiting(action.to_json(now))
    if not workflow.patched(ON_TASK_QUEUES):
        await _answered(run, step, action)
    elif action.type in CLAIMED_ACTION_TYPES:
        await _delivered(run, step, action, timeout)
    else:
        await _asked(run, step, action)
    if action.resolved:
        action_answered(run.org_id, action.type, workflow.now() - action.created_at)
    # A timed-out action leaves the status too: during a retry's backoff nothing waits.
    await run.publish_actions()
    if action.answers:
        run.record.answered(step.id, action.answers)
    run.resume(step.id)
    if not action.resolved:
        raise StepFailedError(_timed_out(action, timeout), retryable=True)
    if action.error is not None:
        raise StepFailedError(action.error, retryable=action.retries_left)
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


async def _answered(run: Run, step: StepBase, action: Action) -> None:
    """Wait for an answer by id (``submit_result``), the deadline, or a cancellation."""
    try:
        run.suspend("waiting", step.id)
        await run.publish_actions()
        await _until_resolved(run, action, lambda: False)
    finally:
        run.actions.remove(action)


async def _asked(run: Run, step: StepBase, action: Action) -> None:
    """A question for a person: in the inbox until answered by id, the deadline, or a
    cancellation."""
    run.record.waiting_on(action.type, None)
    run.publish_inbox()
    try:
        run.suspend("waiting", step.id)
        await run.publish_actions()
        await _until_resolved(run, action, lambda: False)
    except GeneratorExit:
        raise  # collected after its worker dropped it (the process exits): nothing to tidy
    except BaseException:
        _withdraw(run, action)
        raise
    _withdraw(run, action)


async def _delivered(run: Run, step: StepBase, action: Action, timeout: timedelta | None) -> None:
    """Offer the action on its task queue and wait for an executor's result, an answer by id,
    the deadline, or a cancellation."""
    agent = action.parameters.get("agent") if action.type == "delegate" else None
    agent = agent if isinstance(agent, str) and agent else None
    # A delegate goes to its agent's queue, a shell step with runs_on to its label's.
    route = agent or (step.runs_on if isinstance(step, ShellStep) else None)
    task = _offer(run, step, action, timeout, route)
    run.record.waiting_on(action.type, agent)
    run.publish_inbox()
    try:
        run.suspend("waiting", step.id)
        await run.publish_actions()
        await _until_resolved(run, action, task.done)
        while not action.resolved and task.done() and _released(task):
            # Its last delivery was given back unclaimed (no executor failed it): afresh.
            task = _offer(run, step, action, timeout, route)
            await _until_resolved(run, action, task.done)
    except GeneratorExit:
        raise  # collected after its worker dropped it (the process exits): nothing to tidy
    except BaseException:
        _withdraw(run, action, task)
        raise
    _withdraw(run, action, task)
    if not action.resolved and task.done():
        _take_delivery(action, task)
        run.actions.note_answered(action)


def _offer(
    run: Run, step: StepBase, action: Action, timeout: timedelta | None, route: str | None
) -> Any:
    """Start the action's activity on the task queue of its type (and its agent or runner
    label)."""
    policy = step.retry or run.definition.defaults.retry
    return workflow.start_activity(
        ACTION_ACTIVITY,
        action.to_json(workflow.now()),
        activity_id=action.action_id,
        task_queue=action_queue(workflow.info().task_queue, action.type, route),
        # The run's own deadline (which update_timeout moves) is the authority; the activity's
        # timeouts only bound one delivery, and the lease is its heartbeat timeout.
        start_to_close_timeout=timeout or _NO_TIMEOUT,
        heartbeat_timeout=run.lease,
        retry_policy=RetryPolicy(
            initial_interval=policy.initial_interval,
            backoff_coefficient=policy.backoff,
            maximum_interval=policy.max_interval,
            maximum_attempts=policy.max_attempts,
            non_retryable_error_types=[ACTION_FAILED],
        ),
        cancellation_type=workflow.ActivityCancellationType.TRY_CANCEL,
    )


def _released(task: Any) -> bool:
    """Whether the delivery ended with the control plane giving the action back."""
    if task.cancelled() or task.exception() is None:
        return False
    cause = getattr(task.exception(), "cause", None)
    return isinstance(cause, ApplicationError) and cause.type == ACTION_RELEASED


async def _until_resolved(run: Run, action: Action, delivered: Any) -> None:
    """Wait until the action is answered (or ``delivered()``), or its deadline passes."""
    while not action.resolved and not delivered():
        remaining = seconds_until(action.deadline)
        if remaining is not None and remaining <= 0:
            return
        action.deadline_changed = False
        await run.wait_for(
            lambda: action.resolved or delivered() or action.deadline_changed, remaining
        )


def _withdraw(run: Run, action: Action, task: Any = None) -> None:
    """The action is no longer pending: out of the run's status and inbox, and its delivery
    cancelled if still out (answered by id, timed out or cancelled: a holder should stop)."""
    run.actions.remove(action)
    run.record.waiting_on(None, None)
    run.publish_inbox()
    if task is not None and not task.done():
        task.cancel()
        task.add_done_callback(_retrieved)


def _retrieved(task: Any) -> None:
    """A cancelled delivery's outcome matters to nobody: taken, so asyncio does not log it."""
    if not task.cancelled():
        task.exception()


def _take_delivery(action: Action, task: Any) -> None:
    """Resolve the action with what its executor delivered: a result, or why there is none."""
    try:
        delivered = task.result()
    except ActivityError as error:
        action.error = clipped(_why_undelivered(error))
        # Its deliveries followed the step's retry policy already.
        action.retries_left = not isinstance(error.cause, ActivityTimeoutError)
    else:
        submitted = delivered if isinstance(delivered, dict) else {}
        actor = submitted.get("actor")
        if isinstance(actor, dict):
            answer = {"subject": str(actor.get("subject") or ""), "at": workflow.now().isoformat()}
            action.answers.append(answer)
        try:
            action.result = check_result(action, submitted.get("result"))
        except ResultRejectedError as rejected:
            # The control plane checks a result before it completes the activity; an executor
            # that bypassed it has failed the action.
            action.error = f"the executor's result does not fit the action: {rejected}"
    action.resolved = True


def _why_undelivered(error: ActivityError) -> str:
    cause = error.cause
    if isinstance(cause, ApplicationError) and cause.type == ACTION_FAILED:
        return cause.message
    if isinstance(cause, ActivityTimeoutError):
        return (
            "no executor finished the action: its lease expired on every delivery "
            f"({cause.type.name.lower() if cause.type else 'timeout'})"
        )
    return str(getattr(cause, "message", None) or cause or error)


def _timed_out(action: Action, timeout: timedelta | None) -> str:
    if timeout is not None and action.deadline == action.created_at + timeout:
        return f"timed out after {format_duration(timeout)}"
    # update_timeout moved the deadline: the step's own timeout would mislead.
    assert action.deadline is not None
    return f"timed out at {action.deadline.isoformat()} (deadline set by update_timeout)"
