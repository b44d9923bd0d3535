"""``wait``: a durable Temporal timer, for a duration or until a time; its message shows in the
run's status while it waits, and ``update_timeout`` moves its end."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow

from engine.definition import WaitStep
from engine.protocol import WaitingInfo
from engine.workflow._flow import Scope, StepFailedError, seconds_until
from engine.workflow._steps._run import Run

__all__ = ["run_wait"]


async def run_wait(run: Run, step: WaitStep, scope: Scope, attempt: int) -> Any:
    """Wait until the step's end (``duration`` from now, or ``until``); returns None.

    Raises:
        StepFailedError: ``until`` is not an ISO-8601 time with a zone.
    """
    now = workflow.now()
    if step.until is not None:
        text = step.render("until", run.context(step, scope))
        until = _parse_instant(text, step.id)
    else:
        until = now + (step.duration or timedelta(0))
    message = step.render("message", run.context(step, scope))
    waits = run.record.waits
    run.record.start_wait({"step_id": step.id, "message": message, "until": until.isoformat()})
    run.suspend("running", step.id)
    try:
        while (remaining := seconds_until(until)) and remaining > 0:
            seen = waits.get(step.id)

            def moved(seen: WaitingInfo | None = seen) -> bool:
                return waits.get(step.id) is not seen  # update_timeout replaced it

            await run.wait_for(moved, remaining)
            now_waiting = waits.get(step.id)
            if now_waiting is not None and now_waiting["until"] is not None:
                until = datetime.fromisoformat(now_waiting["until"])
    finally:
        run.record.end_wait(step.id)
    run.resume(step.id)
    return None


def _parse_instant(text: Any, step_id: str) -> datetime:
    if not isinstance(text, str):
        raise StepFailedError(f"'until' of step '{step_id}' must be an ISO-8601 time, got {text!r}")
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise StepFailedError(
            f"'until' of step '{step_id}' is not an ISO-8601 time: {text!r}"
        ) from None
    if instant.tzinfo is None:
        raise StepFailedError(f"'until' of step '{step_id}' needs a time zone: {text!r}")
    return instant
