"""What a run counts in the engine's metrics, through Temporal's workflow meter.

Recorded here, by the run itself, so that every run is counted whoever started it (the API, a
schedule, a foreach item, a ``call`` step). Determinism: ``workflow.metric_meter()`` records
nothing while the run replays and emits no command, so histories are unchanged and a replayed
run is never counted twice; durations are differences of ``workflow.now()``. The meter adds
the run's ``namespace``, ``task_queue`` and ``workflow_type``; the worker's runtime decides
where the values go (``engine.telemetry.metrics`` exposes them; with the SDK's default
runtime the meter is a no-op).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final, Literal

from temporalio import workflow

__all__ = ["RUNS_STARTED", "action_answered", "run_ended", "run_started"]

RUNS_STARTED: Final = "engine_runs_started"
"""Counter (``org``, ``definition``): runs started; a continue-as-new is the same run."""
_RUNS_ENDED: Final = {
    "completed": "engine_runs_completed",
    "failed": "engine_runs_failed",
    "cancelled": "engine_runs_cancelled",
}
ANSWER_TIME: Final = "engine_action_answer_seconds"
"""Histogram (``org``, ``action_type``): from an action's issue to its answer (or an
executor's error), in seconds."""


def run_started(org_id: str, definition: str) -> None:
    """Count a run that starts (not one continued as new: it was counted when it started)."""
    if workflow.info().continued_run_id is not None:
        return
    workflow.metric_meter().create_counter(RUNS_STARTED, "Runs started.").add(
        1, {"org": org_id, "definition": definition}
    )


def run_ended(
    org_id: str, definition: str, outcome: Literal["completed", "failed", "cancelled"]
) -> None:
    """Count a run that ends."""
    name = _RUNS_ENDED[outcome]
    workflow.metric_meter().create_counter(name, f"Runs {outcome}.").add(
        1, {"org": org_id, "definition": definition}
    )


def action_answered(org_id: str, action_type: str, waited: timedelta) -> None:
    """Record how long an answered action waited for its answer."""
    workflow.metric_meter().create_histogram_timedelta(
        ANSWER_TIME, "Time from an action's issue to its answer."
    ).record(max(waited, timedelta(0)), {"org": org_id, "action_type": action_type})
