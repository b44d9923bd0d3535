"""What a step unit may use of its run: the interface between the units and the interpreter."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Sequence
from datetime import timedelta
from typing import Any, Protocol

from engine.definition import StepBase, WorkflowDefinition
from engine.protocol import PendingAction, RunState
from engine.workflow._actions import OpenActions
from engine.workflow._compensation import Compensations
from engine.workflow._events import Events
from engine.workflow._fanout import ItemRuns
from engine.workflow._flow import Returned, Scope
from engine.workflow._record import RunRecord
from engine.workflow._types import FanoutProgress, ParallelProgress, RunInput, TryProgress

__all__ = ["Run", "StepExecutor"]


class Run(Protocol):
    """A run as its step units see it (:class:`~engine.workflow.EngineWorkflow` is one).

    Attributes:
        input: The run's input (a foreach item's run gets a copy with its scope).
        definition: The definition it executes.
        workflow_id: Its workflow id.
        run_id: Its run id.
        org_id: The org it serves (the label of its metrics).
        state: Its state (step units read it through :meth:`context`; a foreach hands it on).
        record: Where it is, its history and step records.
        actions: The external actions it waits for.
        items: The runs of its foreach items.
        compensations: What completed steps recorded for undoing.
        branches: The branch each condition of the run's position took (``then``/``else``).
        fanouts: The items each foreach of the run's position finished.
        loops: The iteration each loop of the run's position is at.
        parallels: The branches each parallel of the run's position finished.
        tries: Where each try of the run's position is.
        flows: How many flows of steps run at once (a parallel's branches count each).
        events: The events received for ``wait_for`` steps.
        cancel_reason: Set once the ``cancel_workflow`` signal arrived.
    """

    input: RunInput
    definition: WorkflowDefinition
    workflow_id: str
    run_id: str
    org_id: str
    state: dict[str, Any]
    record: RunRecord
    actions: OpenActions
    items: ItemRuns
    compensations: Compensations
    branches: dict[str, str]
    fanouts: dict[str, FanoutProgress]
    loops: dict[str, int]
    parallels: dict[str, ParallelProgress]
    tries: dict[str, TryProgress]
    flows: int
    events: Events
    cancel_reason: str | None

    @property
    def lease(self) -> timedelta:
        """How long an executor may hold one of the run's actions without a heartbeat."""
        ...

    def publish_inbox(self) -> None:
        """The run's own pending actions changed: its memo (what the inbox lists) follows."""
        ...

    def context(self, step: StepBase, scope: Scope) -> dict[str, Any]:
        """What the step's expressions see: inputs, state, steps, workflow, org, variables."""
        ...

    def check_status(self, what: str, extra: int = 0) -> None:
        """Fail the step (StepFailedError) unless the run's status would still fit a payload."""
        ...

    def notify_waiting(self, action: PendingAction) -> None:
        """Send an action that starts waiting to the org's webhook, if the run notifies."""
        ...

    def log_extra(self, step_id: str | None = None) -> dict[str, str]:
        """The ``extra`` of the run's log calls: its org and the step."""
        ...

    async def run_block(self, block: Sequence[StepBase], scope: Scope) -> Returned | None:
        """Run a nested block of steps (a condition's branch)."""
        ...

    def forget(self, steps: Iterable[StepBase]) -> None:
        """Forget the position of these steps (a loop's next iteration runs them again)."""
        ...

    def suspend(self, status: RunState, step_id: str) -> None:
        """The run waits at ``step_id`` (update handlers waiting for that moment answer)."""
        ...

    def resume(self, step_id: str) -> None:
        """The run goes on after waiting at ``step_id``."""
        ...

    async def wait_for(self, condition: Callable[[], bool], timeout: float | None) -> None:
        """Wait for ``condition`` or the timeout (a durable timer); RunCancelledError if the
        ``cancel_workflow`` signal arrives meanwhile."""
        ...

    async def publish_actions(self) -> None:
        """Tell the parent (when the run is a foreach item) which actions wait in it."""
        ...

    async def continue_as_new_if_suggested(self) -> None:
        """Continue as new now if Temporal suggests it (a fan-out draining its items)."""
        ...


StepExecutor = Callable[[Run, Any, Scope, int], Coroutine[Any, Any, Any]]
"""One step unit: ``(run, step, scope, attempt) -> output``.

It returns the step's output (a :class:`~engine.workflow._flow.Returned` ends the enclosing
run), or raises :class:`~engine.workflow._flow.StepFailedError` (its ``on_error`` decides),
:class:`~engine.workflow._flow.RunCancelledError` or an expression error. ``attempt`` is 1, then
+1 for each retry of the step.
"""
