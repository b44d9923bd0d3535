"""The run's record: where it is, the history of its steps, what each produced.

This is what ``get_status`` shows of a run (with its state and pending actions), what the
``EngineStatus`` and ``EngineStep`` search attributes mirror, and, with the state, what a run
carries to its next run when it continues as new.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from temporalio import workflow
from temporalio.common import SearchAttributeKey

from engine.definition import StepBase
from engine.protocol import (
    BranchError,
    HistoryEntry,
    ItemError,
    RunState,
    StepOutcome,
    StepRecord,
    WaitingInfo,
)
from engine.workflow._budget import PayloadBudget
from engine.workflow._search import ENGINE_ACTION_TYPE, ENGINE_AGENT, ENGINE_STATUS, ENGINE_STEP
from engine.workflow._types import Progress

__all__ = ["HISTORY_KEPT", "RunRecord", "last_output", "new_entry"]

HISTORY_KEPT: Final = 500
"""Step history entries kept (the oldest are dropped beyond this)."""


class RunRecord:
    """Where a run is and what it did.

    Args:
        progress: What the previous run carried over ({} for a new run).
        budget: Told the size of every new step record.
        changed: Called after every change of where the run is or of its history.

    Attributes:
        status: Where the run is (the ``EngineStatus`` search attribute follows it).
        current_step: The step it is at (``EngineStep``).
        waiting: The wait the status shows: the latest of :attr:`waits`.
        history: Its steps so far, one entry per step however many runs it spans.
        steps: ``steps.<id>`` of every finished step.
        done: The ids of the finished steps: with the branches and fan-outs in progress, the
            run's position (what continue-as-new carries to resume from).
        result: What the run returned, once completed.
        error: Why it failed or was cancelled.
        started_at: When its first run started.
        continued: How many times it continued as new.
    """

    def __init__(
        self, progress: Progress, budget: PayloadBudget, changed: Callable[[], None]
    ) -> None:
        self.budget = budget
        self.changed = changed
        self.status: RunState = "running"
        self.current_step: str | None = None
        self.waits: dict[str, WaitingInfo] = {}
        """The steps waiting out a time (wait, wait_for, a retry's backoff), by id: several
        while parallel branches wait at once."""
        self.history: list[HistoryEntry] = progress.get("history", [])
        self.steps: dict[str, StepRecord] = progress.get("steps", {})
        self.done: set[str] = set(progress.get("done", []))
        self.result: Any = None
        self.error: str | None = None
        self.started_at: str = progress.get("started_at") or workflow.now().isoformat()
        self.finished_at: str | None = None
        self.continued = int(progress.get("continued", 0))
        # What the search attributes say now: an upsert that changes nothing is not sent.
        self._searchable: dict[SearchAttributeKey[str], str | None] = {
            ENGINE_STATUS: "running",
            ENGINE_STEP: None,
        }
        # The type and agent of the action the run waits for (the inbox's filters); None until
        # an action is delivered on a task queue, so the upserts of runs that never do are the
        # ones their recorded histories hold.
        self._action: tuple[str | None, str | None] | None = None
        # A foreach's failed items, kept for its record until the step finishes.
        self._item_errors: dict[str, list[ItemError] | list[BranchError]] = {}

    # -- where the run is -------------------------------------------------------------------

    def suspend(self, status: RunState, step_id: str) -> None:
        """The run waits at ``step_id``: on actions (``waiting``), a timer or a fan-out."""
        self.status = status
        self.current_step = step_id
        self.upsert_search()
        self.changed()

    def resume(self, step_id: str) -> None:
        """The run goes on after waiting at ``step_id``."""
        self.status = "running"
        self.current_step = step_id
        self.changed()

    def end(self, status: RunState) -> None:
        """The run ended: completed, failed or cancelled."""
        self.status = status
        self.finished_at = workflow.now().isoformat()
        self.current_step = None
        self.waits.clear()
        self.upsert_search()
        self.changed()

    @property
    def waiting(self) -> WaitingInfo | None:
        """The wait the status shows: the one that began last, if any."""
        return next(reversed(self.waits.values()), None)

    def start_wait(self, info: WaitingInfo) -> None:
        """A step starts waiting out a time (or its wait changed)."""
        self.waits.pop(info["step_id"], None)
        self.waits[info["step_id"]] = info

    def end_wait(self, step_id: str) -> None:
        """A step's wait ended."""
        self.waits.pop(step_id, None)

    def waiting_on(self, action_type: str | None, agent: str | None) -> None:
        """The action the run waits for (None when none): sent with the next upsert."""
        self._action = (action_type, agent)

    def upsert_search(self) -> None:
        """Bring the engine's search attributes up to date (no command when unchanged)."""
        wanted: dict[SearchAttributeKey[str], str | None] = {
            ENGINE_STATUS: self.status,
            ENGINE_STEP: self.current_step,
        }
        if self._action is not None:
            wanted[ENGINE_ACTION_TYPE], wanted[ENGINE_AGENT] = self._action
        changed = {
            key: value
            for key, value in wanted.items()
            if key not in self._searchable or self._searchable[key] != value
        }
        if not changed:
            return
        self._searchable.update(wanted)
        # Runs that deliver actions on task queues send what changed; the others send all, as
        # their recorded histories hold.
        sent = changed if self._action is not None else wanted
        workflow.upsert_search_attributes(
            [key.value_set(value) if value else key.value_unset() for key, value in sent.items()]
        )

    # -- steps ------------------------------------------------------------------------------

    def begin(self, step: StepBase, resumed: bool = False) -> HistoryEntry:
        """The history entry of a step that starts (or, resumed, the one it already has)."""
        if resumed:
            unfinished = [
                e for e in self.history if e["step_id"] == step.id and e["finished_at"] is None
            ]
            if unfinished:
                return unfinished[-1]  # one entry per step, however many runs it spans
        entry = new_entry(step)
        self.history.append(entry)
        if len(self.history) > HISTORY_KEPT:
            del self.history[: len(self.history) - HISTORY_KEPT]
        self.changed()
        return entry

    def answered(self, step_id: str, answers: list[dict[str, Any]]) -> None:
        """Who answered the step's action and when (kept with its open history entry)."""
        for entry in reversed(self.history):
            if entry["step_id"] == step_id and entry["finished_at"] is None:
                # No change of its own: the step resumes next, and that is the change.
                entry.setdefault("answers", []).extend(answers)
                return

    def item_errors(self, step_id: str, errors: list[ItemError] | list[BranchError]) -> None:
        """The failed items of a foreach (branches of a parallel), for its record
        (``steps.<id>.errors``)."""
        self._item_errors[step_id] = errors

    def finish(
        self,
        step: StepBase,
        entry: HistoryEntry,
        outcome: StepOutcome,
        output: Any,
        *,
        error: str | None = None,
    ) -> None:
        """Close a step's history entry and write its record (``steps.<id>``)."""
        entry["finished_at"] = workflow.now().isoformat()
        entry["outcome"] = outcome
        record: StepRecord = {"status": outcome, "output": output}
        if error is not None:
            entry["error"] = error
            record["error"] = error
        errors = self._item_errors.pop(step.id, None)
        if errors is None:
            previous = self.steps.get(step.id)
            errors = previous.get("errors") if previous is not None else None
        if errors is not None:
            record["errors"] = errors
        self.steps[step.id] = record
        self.budget.record_changed(step.id, record)
        self.done.add(step.id)
        self.changed()

    def last_output(self, block: Sequence[StepBase]) -> Any:
        """The output of the block's last completed step: a block's value without ``return``."""
        return last_output(block, self.steps)


def new_entry(step: StepBase) -> HistoryEntry:
    """The history entry of a step that starts now."""
    return {
        "step_id": step.id,
        "type": step.step_type,
        "started_at": workflow.now().isoformat(),
        "finished_at": None,
        "outcome": None,
        "attempts": 0,
    }


def last_output(block: Sequence[StepBase], steps: Mapping[str, Any]) -> Any:
    """The output of the block's last completed step in ``steps`` (step records by id)."""
    for step in reversed(block):
        record = steps.get(step.id)
        if record is not None and record["status"] == "completed":
            return record["output"]
    return None
