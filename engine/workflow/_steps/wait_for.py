"""``wait_for``: suspend until an event of the step's name arrives for the run (and its
``correlate`` holds for it), or the timeout passes; the event's payload is the output.

The run's :class:`~engine.workflow._events.Events` keeps events sent to it before the step
waits, so the step first looks there. ``update_timeout`` moves its deadline, as for ``wait``.
A ``correlate`` that fails on an event's payload (a payload of another shape) counts as no
match: an outside sender must not be able to fail the run.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio import workflow

from engine.definition import WaitForStep, format_duration
from engine.expr import ExpressionError
from engine.protocol import WaitingInfo
from engine.workflow._events import NOTHING
from engine.workflow._flow import Scope, StepFailedError, seconds_until
from engine.workflow._steps._run import Run

__all__ = ["run_wait_for"]


async def run_wait_for(run: Run, step: WaitForStep, scope: Scope, attempt: int) -> Any:
    """Wait for the event; returns its payload.

    Raises:
        StepFailedError: Retryable: no matching event arrived before the timeout.
    """
    context = run.context(step, scope)

    def matches(payload: Any) -> bool:
        try:
            return step.evaluate_correlate({**context, "event": payload})
        except ExpressionError as error:
            workflow.logger.info(
                "event for step '%s' does not correlate: %s",
                step.id,
                error,
                extra=run.log_extra(step.id),
            )
            return False

    timeout = step.timeout or run.definition.defaults.timeout
    deadline = workflow.now() + timeout if timeout else None
    message = step.render("message", context) or f"waiting for event '{step.event}'"
    waits = run.record.waits
    run.record.start_wait(
        {
            "step_id": step.id,
            "message": message,
            "until": deadline.isoformat() if deadline else None,
        }
    )
    run.events.wait(step.id, step.event)
    run.suspend("running", step.id)
    try:
        while True:
            payload = run.events.take(step.event, matches)
            if payload is not NOTHING:
                break
            remaining = seconds_until(deadline)
            if remaining is not None and remaining <= 0:
                raise StepFailedError(
                    f"no event '{step.event}' arrived within "
                    f"{format_duration(timeout) if timeout else 'its timeout'}",
                    retryable=True,
                )
            seen_arrivals, seen_waiting = run.events.arrivals, waits.get(step.id)

            def changed(
                arrivals: int = seen_arrivals, waiting: WaitingInfo | None = seen_waiting
            ) -> bool:
                return run.events.arrivals != arrivals or waits.get(step.id) is not waiting

            await run.wait_for(changed, remaining)
            moved = waits.get(step.id)
            if moved is not None and moved["until"] is not None:
                deadline = datetime.fromisoformat(moved["until"])  # update_timeout moves it
    finally:
        run.record.end_wait(step.id)
        run.events.wait(step.id, None)
    run.resume(step.id)
    return payload
