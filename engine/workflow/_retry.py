"""A step's retries: how long its backoff is, and what the run shows and refuses meanwhile.

While a step waits out its backoff it has no pending action: the run's status says which
attempt failed, why, and when the next one starts (``waiting``), and a result sent for the step
is refused with that reason rather than taken as an answer to an attempt that does not exist.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from temporalio import workflow

from engine.definition import RetryPolicy
from engine.protocol import clipped
from engine.workflow._actions import ResultRejectedError
from engine.workflow._record import RunRecord

__all__ = ["ANSWER_DURING_BACKOFF", "SHORT_BACKOFF", "Backoff", "backoff_delay"]

SHORT_BACKOFF: Final = 2.0
"""Seconds of backoff a submission's answer waits through (see EngineWorkflow.back_off)."""
ANSWER_DURING_BACKOFF: Final = "answer-during-backoff"
"""Patch: a submission that fails a step is answered as a long backoff begins (runs recorded
before it answered when the next attempt began)."""


def backoff_delay(policy: RetryPolicy, attempt: int) -> float:
    """Seconds to wait after ``attempt`` failed (capped at ``max_interval``, never overflowing)."""
    longest = policy.max_interval.total_seconds()
    try:
        delay = policy.initial_interval.total_seconds() * policy.backoff ** (attempt - 1)
    except OverflowError:
        return longest
    return min(delay, longest)


class Backoff:
    """The retry backoff a run waits out, if any (its steps run one at a time)."""

    def __init__(self) -> None:
        self.step_id: str | None = None

    def begin(
        self, record: RunRecord, step_id: str, attempt: int, error: str, delay: float
    ) -> None:
        """The step's attempt failed with ``error``; the next starts in ``delay`` seconds."""
        until = workflow.now() + timedelta(seconds=delay)
        record.start_wait(
            {
                "step_id": step_id,
                "message": f"attempt {attempt} failed: {clipped(error, 500)}; attempt "
                f"{attempt + 1} at {until.isoformat()}",
                "until": until.isoformat(),
            }
        )
        self.step_id = step_id

    def end(self, record: RunRecord) -> None:
        if self.step_id is not None:
            record.end_wait(self.step_id)
        self.step_id = None

    def refuse(self, record: RunRecord, submission: Any) -> None:
        """Refuse a result sent for the step while it waits to retry.

        Raises:
            ResultRejectedError: Saying which attempt failed and when the next one starts.
        """
        waiting = record.waits.get(self.step_id) if self.step_id is not None else None
        if (
            self.step_id is not None
            and waiting is not None
            and isinstance(submission, dict)
            and submission.get("step_id") == self.step_id
            and not submission.get("action_id")
        ):
            raise ResultRejectedError(
                f"step '{self.step_id}' has no pending action: it waits to retry "
                f"({waiting['message']})"
            )
