"""The interpreter: one dynamic Temporal workflow that runs every definition.

A run's input carries the definition's canonical JSON, so one workflow class serves every
definition and version (the workflow type is ``"{name}:{version}"``) and a new definition never
needs a worker restart.

:class:`EngineWorkflow` is a facade: it keeps the Temporal handlers and the sequencing of steps
(``when``, retries, ``on_error``, endings, continue-as-new) and composes private collaborators,
the way the SDK's worker composes its own:

- one unit per step type (``_steps/``, behind :data:`~engine.workflow._steps.StepExecutor`);
- :class:`~engine.workflow._record.RunRecord`: where the run is, its history and step records;
- :class:`~engine.workflow._actions.OpenActions`: the external actions it waits for;
- :class:`~engine.workflow._fanout.ItemRuns`: the runs of its foreach items;
- :class:`~engine.workflow._compensation.Compensations`: what to undo if it fails;
- :class:`~engine.workflow._budget.PayloadBudget`: the sizes that keep its status under 2 MiB;
- :class:`~engine.workflow._retry.Backoff`: the retry backoff it waits out, if any.

Why the module is over 600 lines: this docstring (its state table) is about 85, and the class,
about 650, is the Temporal handlers and the sequencing (with the continue-as-new barrier of
parallel flows, which the sequencing's step boundaries drive), which must be read together: each
update and validator answers from, or waits for, what the sequencing does next (a submission
waits for the next suspension, a deadline moves only for a step that waits). What a handler can
hand to a collaborator it does (the answer rules to ``Action``, the backoff to ``Backoff``).

Determinism. Everything here is replayed from history: time comes from ``workflow.now()``, ids
from ``workflow.uuid4()``, and waiting from ``workflow.wait_condition`` (durable timers). Workers
pass ``engine.workflow`` through the sandbox (it is imported once per process, so it keeps no
mutable module state); the replay tests re-import it inside the sandbox, whose restrictions then
catch any non-deterministic call. Steps of type condition, set_state and return are evaluated
inline: the expression language is pure and deterministic, so re-evaluating them on replay gives
the same result without an activity or a history event. Commands must leave in the same order
as the recorded histories under ``tests/replay/`` expect: a change that would alter them goes
behind ``workflow.patched``.

Run state. A run's state lives in this object, rebuilt on replay from the input and history;
what survives a continue-as-new travels in :class:`~engine.workflow._types.Progress`:

============================  ====================================================  =========
state                         what it is                                            carried
============================  ====================================================  =========
``state``                     the workflow state expressions read and steps write   yes
``record.steps``, ``.done``   ``steps.<id>`` of finished steps; their ids           yes
``record.history``            one entry per step (the most recent 500)              yes
``record.started_at``,        when the first run started; continue-as-new count     yes
``.continued``
``branches``, ``fanouts``     the branch each condition in progress took; the       yes
                              items each foreach in progress finished
``loops``, ``parallels``,     the iteration each loop in progress is at; the        yes
``tries``                     branches each parallel finished; each try's block,
                              caught error and pending failure
``events``                    events received and not taken yet, ids seen lately    yes
``compensations``             completed steps to undo if the run fails              yes
``actions.answered``          recently answered action ids (duplicate detection)    yes
``items.reports``             number of the last report to the parent               yes
``record.status``,            where the run is, mirrored in the search attributes   no
``.current_step``,
``.waits``                    (``waiting``: the latest of the waits in progress)
``actions``                   the run's own pending actions                         no [1]
``items`` (reports)           the pending actions its running foreach items         no [2]
                              reported
``cancel_reason``             set by the ``cancel_workflow`` signal                 no
``suspensions``               see :attr:`EngineWorkflow.suspensions`                no
``backoff``                   the step waiting out its retry backoff, if any        no [3]
``flows``, ``parked``,        the flows of steps running at once (parallel          no [4]
``continuing``                branches), those parked to continue as new together
============================  ====================================================  =========

[1] A run never continues as new while it waits on an action. [2] Nor while items run: a
fan-out drains first, and its items report again to the next run. [3] Nor during a backoff
(it continues only between steps). [4] Parallel branches continue as new only once every one
of them is parked at a step boundary; the next run starts them again from their positions.

Position. Step ids are unique in a definition, so the finished step ids (plus the branch each
condition took, the items each foreach finished, the iteration of each loop, the branches each
parallel finished and the block each try is in) say exactly where a run is. The next run
walks the definition from the top and skips what is done, resuming where the previous one
stopped with its state intact.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any, Final

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, TemporalError

from engine.definition import (
    ForeachStep,
    ReturnStep,
    SetStateStep,
    StepBase,
    WorkflowDefinition,
    load_definition,
)
from engine.expr import ExpressionError
from engine.protocol import (
    AWAIT_SUSPENSION,
    CANCEL_WORKFLOW,
    DEFAULT_LEASE,
    GET_CHANGES,
    GET_STATUS,
    INBOX_MEMO,
    MAX_RESULT_BYTES,
    MOVE_DEADLINE,
    REPORT_ACTIONS,
    SEND_EVENT,
    SUBMIT_RESULT,
    UPDATE_TIMEOUT,
    Advance,
    Changes,
    HistoryEntry,
    PendingAction,
    RunChange,
    RunState,
    RunStatus,
    StepOutcome,
    clipped,
    submission_problem,
)
from engine.workflow._actions import OpenActions, ResultRejectedError, check_result, inbox_entry
from engine.workflow._budget import PayloadBudget, fail_if_too_large, json_size
from engine.workflow._compensation import Compensations
from engine.workflow._events import Events
from engine.workflow._fanout import ItemRuns
from engine.workflow._flow import (
    Returned,
    RunCancelledError,
    RunFailedError,
    Scope,
    StepFailedError,
)
from engine.workflow._metrics import run_ended, run_started
from engine.workflow._notify import (
    ATTEMPT_TIMEOUT,
    DELIVERY_RETRY,
    DELIVERY_WINDOW,
    NOTIFY_ACTIVITY,
    WEBHOOKS,
    webhook_queue,
)
from engine.workflow._record import HISTORY_KEPT, RunRecord, new_entry
from engine.workflow._retry import ANSWER_DURING_BACKOFF, SHORT_BACKOFF, Backoff, backoff_delay
from engine.workflow._steps import EXECUTORS
from engine.workflow._types import (
    LOAD_DEFINITION,
    Compensation,
    FanoutProgress,
    ParallelProgress,
    Progress,
    RunInput,
    TryProgress,
)

__all__ = ["EngineWorkflow"]

CHANGES_KEPT: Final = 128
"""Recent status changes a run keeps for its watchers (see :meth:`EngineWorkflow.get_changes`)."""
_LONGEST_DELAY: Final = 100 * 365 * 24 * 3600.0
"""update_timeout moves a deadline at most this many seconds ahead (about a century)."""


@workflow.defn(dynamic=True, sandboxed=True)
class EngineWorkflow:
    """Runs one workflow definition (or one foreach item of it) as a Temporal workflow."""

    @workflow.init
    def __init__(self, args: Sequence[RawValue]) -> None:
        # Plain JSON fields: built directly, without the converter's per-call type inspection.
        run_input = RunInput(**workflow.payload_converter().from_payload(args[0].payload))
        self.input: RunInput = run_input
        # The worker's runner caches loaded definitions (see _worker.py); a runner of another
        # kind (a bare Replayer, say) leaves the run to load its own.
        load = workflow.extern_functions().get(LOAD_DEFINITION, load_definition)
        self.definition: WorkflowDefinition = load(run_input.definition)
        info = workflow.info()
        self.workflow_id = info.workflow_id
        self.run_id = info.run_id
        self.org_id = str(run_input.org.get("org_id", ""))
        self.starter = str(run_input.org.get("subject", ""))
        """Who started the run (the token's subject; "" when it had none)."""
        self.inputs: dict[str, Any] = run_input.inputs
        scope: Mapping[str, Any] = run_input.scope or {}
        self.scope = Scope(dict(scope.get("vars", {})))
        progress: Progress = run_input.progress or {}
        # A continued run carries its own state; a foreach item starts from its parent's.
        carried = progress["state"] if "state" in progress else scope.get("state")
        self.state: dict[str, Any] = dict(carried or {})
        self.budget = PayloadBudget(progress.get("steps", {}))
        self.version = 0
        self.inbox_stale = False
        self.changes: collections.deque[RunChange] = collections.deque(maxlen=CHANGES_KEPT)
        self.record = RunRecord(progress, self.budget, self.note_change)
        self.actions = OpenActions(progress.get("answered", {}))
        parent_id = info.parent.workflow_id if info.parent else None
        self.items = ItemRuns(self.workflow_id, parent_id, int(progress.get("reports", 0)))
        self.compensations = Compensations(progress.get("compensations", []))
        self.branches: dict[str, str] = progress.get("branches", {})
        self.fanouts: dict[str, FanoutProgress] = progress.get("fanouts", {})
        self.loops: dict[str, int] = progress.get("loops", {})
        self.parallels: dict[str, ParallelProgress] = progress.get("parallels", {})
        self.tries: dict[str, TryProgress] = progress.get("tries", {})
        self.events = Events(progress.get("events", {}))
        self.flows = 1
        """How many flows of steps run at once: 1, more while parallel branches run."""
        self.parked = 0
        """How many of them wait, at a step boundary, to continue as new together."""
        self.continuing = False
        self.cancel_reason: str | None = None
        self.backoff = Backoff()
        self.suspensions = 0
        """How many times the run stopped making progress on its own: it suspended (on
        actions, a timer or a fan-out), ended, or is about to continue as new. The update
        handlers that answer "where the run went next" wait for this to grow."""
        self.deliveries: set[asyncio.Task[None]] = set()
        """Webhook deliveries under way (see :meth:`notify_waiting`)."""

    # -- the run ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, args: Sequence[RawValue]) -> Any:
        """Run the definition (or, for a foreach item, its foreach's steps)."""
        run_started(self.org_id, self.definition.name)
        block = self.definition.steps
        if self.input.scope:
            foreach = self.definition.step(self.input.scope["foreach"])
            assert isinstance(foreach, ForeachStep)
            block = foreach.steps
        elif not self.input.progress:
            try:
                self.state = self.definition.render_initial_state(
                    {"inputs": self.inputs, "workflow": self.workflow_info(), "org": self.org()}
                )
            except ExpressionError as error:
                # Not raised as is: Temporal would retry the task for ever, the run stuck.
                return await self.finish_failed(f"the initial state failed: {error}")
        try:
            returned = await self.run_block(block, self.scope)
        except (RunFailedError, StepFailedError) as failure:
            try:
                await self.compensations.run(self.definition, self.run_block)
            except asyncio.CancelledError:
                return await self.finish_cancelled(None)
            return await self.finish_failed(str(failure))
        except RunCancelledError:
            return await self.finish_cancelled(self.cancel_reason or "cancelled by request")
        except asyncio.CancelledError:
            return await self.finish_cancelled(None)
        except TemporalError:
            raise
        except Exception as error:  # a failure the run cannot take fails it, never its task
            return await self.finish_failed(_unforeseen(error))
        value = returned.value if returned is not None else self.record.last_output(block)
        return await self.finish_completed(value)

    async def run_block(self, block: Sequence[StepBase], scope: Scope) -> Returned | None:
        """Run steps in order; a ``return`` ends the block (and its enclosing blocks)."""
        for step in block:
            if scope.tracked:
                if step.id in self.record.done:
                    continue
                await self.continue_as_new_if_suggested()
            returned = await self.run_step(step, scope)
            if returned is not None:
                return returned
        return None

    async def run_step(self, step: StepBase, scope: Scope) -> Returned | None:
        """Run one step: ``when``, the unit of its type, retries and ``on_error``."""
        # A condition or foreach that a previous run started (before continuing as new) is
        # resumed, not started again: its `when` held then, and what its own block did since
        # may have changed the answer.
        resumed = scope.tracked and self.in_progress(step.id)
        # An inline foreach item's steps are the item's: recorded in its frame, not the run's
        # history (as an item's own run would keep them in its own).
        entry = self.record.begin(step, resumed) if scope.frame is None else new_entry(step)
        workflow.logger.debug(
            "step %s (%s) %s",
            step.id,
            step.step_type,
            "resumed" if resumed else "started",
            extra=self.log_extra(step.id),
        )
        try:
            runs = resumed or step.evaluate_when(self.context(step, scope))
        except ExpressionError as error:
            self.step_failed(step, entry, StepFailedError(str(error)), scope)
            return None
        if not runs:
            self.finish(step, entry, "skipped", None, scope)
            return None
        policy = step.retry or self.definition.defaults.retry
        attempt = 1
        execute = EXECUTORS[step.step_type]
        while True:
            entry["attempts"] = attempt
            try:
                outcome = await execute(self, step, scope, attempt)
            except ExpressionError as error:
                self.step_failed(step, entry, StepFailedError(str(error)), scope)
                return None
            except RunFailedError as failure:
                self.finish(step, entry, "failed", None, scope, error=str(failure))
                raise
            except (RunCancelledError, asyncio.CancelledError):
                self.finish(step, entry, "cancelled", None, scope)
                raise
            except StepFailedError as failure:
                if (
                    failure.retryable
                    and step.on_error == "retry"
                    and attempt < policy.max_attempts
                    and not self.cancel_reason
                ):
                    entry.setdefault("errors", []).append(failure.message)
                    self.record.upsert_search()  # visibility shows "running" during the backoff
                    await self.back_off(step, attempt, failure, backoff_delay(policy, attempt))
                    attempt += 1
                    continue
                self.step_failed(step, entry, failure, scope)
                return None
            except TemporalError:
                raise
            except Exception as error:  # nothing a step does may fail the workflow task
                self.step_failed(step, entry, StepFailedError(_unforeseen(error)), scope)
                return None
            break
        returned = outcome if isinstance(outcome, Returned) else None
        output = returned.value if returned is not None else outcome
        if not self.keep_output(step, entry, output, returned, scope):
            return None
        if step.compensate and scope.tracked:
            self.compensations.record(step.id, scope.variables)
        return returned

    def in_progress(self, step_id: str) -> bool:
        """Whether a previous run (before continuing as new) left this step in progress."""
        return any(
            step_id in started
            for started in (self.branches, self.fanouts, self.loops, self.parallels, self.tries)
        )

    def forget(self, steps: Iterable[StepBase]) -> None:
        """Forget the position of these steps: a loop's next iteration runs them again."""
        for step in steps:
            self.record.done.discard(step.id)
            for started in (self.branches, self.fanouts, self.loops, self.parallels, self.tries):
                started.pop(step.id, None)

    async def back_off(
        self, step: StepBase, attempt: int, failure: StepFailedError, delay: float
    ) -> None:
        """Wait out a step's retry backoff, saying so in the status (see ``_retry``).

        A caller waiting for the run to settle (a submitted error) gets the next attempt's
        action in the same answer when the backoff is short; after a longer one its call would
        time out, so it is answered as the backoff begins.
        """
        self.backoff.begin(self.record, step.id, attempt, failure.message, delay)
        self.note_change()
        if delay > SHORT_BACKOFF and workflow.patched(ANSWER_DURING_BACKOFF):
            self.suspensions += 1
        try:
            await self.wait_for(lambda: False, delay)
        finally:
            self.backoff.end(self.record)

    def keep_output(
        self,
        step: StepBase,
        entry: HistoryEntry,
        output: Any,
        returned: Returned | None,
        scope: Scope,
    ) -> bool:
        """Apply a completed step's output to the state and record it, unless the status would
        then not fit: the step fails instead (its ``on_error`` decides), and this is False."""
        updates: dict[str, Any] = dict(output) if isinstance(step, SetStateStep) else {}
        if step.output_to is not None and not isinstance(step, ReturnStep):
            updates[step.output_to] = output
        if scope.frame is not None:  # an inline item's: the run's status does not hold it
            scope.frame.state.update(updates)
            self.finish(step, entry, "completed", output, scope)
            return True
        previous = {key: self.state[key] for key in updates if key in self.state}
        self.state.update(updates)
        self.record.finish(step, entry, "completed", output)
        what = "the state after step" if updates else "the output of step"
        try:
            # A return value is carried once more, as the run's result.
            extra = json_size(output) if returned is not None else 0
            self.check_status(f"{what} '{step.id}'", extra)
        except StepFailedError as failure:
            for key in updates:
                if key in previous:
                    self.state[key] = previous[key]
                else:
                    self.state.pop(key, None)
            self.step_failed(step, entry, failure, scope)
            return False
        return True

    def finish(
        self,
        step: StepBase,
        entry: HistoryEntry,
        outcome: StepOutcome,
        output: Any,
        scope: Scope,
        *,
        error: str | None = None,
    ) -> None:
        """Close a step's entry and write its record: the run's, or an inline item's."""
        if scope.frame is None:
            self.record.finish(step, entry, outcome, output, error=error)
            return
        record: dict[str, Any] = {"status": outcome, "output": output}
        if error is not None:
            record["error"] = error
        scope.frame.steps[step.id] = record

    def step_failed(
        self, step: StepBase, entry: HistoryEntry, failure: StepFailedError, scope: Scope
    ) -> None:
        """Record a failure; with ``on_error: continue`` the run goes on, else it fails."""
        self.finish(step, entry, "failed", failure.output, scope, error=failure.message)
        workflow.logger.info(
            "step %s failed: %s",
            step.id,
            clipped(failure.message, 500),
            extra=self.log_extra(step.id),
        )
        if step.on_error == "continue" and not self.cancel_reason:
            # What a failed step produced (a shell step's exit code and output) is what the
            # steps after it need to react to, so it lands in `output_to` as a success would.
            if step.output_to is not None and failure.output is not None:
                target = self.state if scope.frame is None else scope.frame.state
                target[step.output_to] = failure.output
            return
        error = {
            "step": step.id,
            "type": step.step_type,
            "message": failure.message,
            "attempts": entry["attempts"],
        }
        raise RunFailedError(f"step '{step.id}' failed: {failure.message}", error)

    # -- what step units use (the Run protocol of _steps) -----------------------------------

    def log_extra(self, step_id: str | None = None) -> dict[str, str]:
        """The ``extra`` of the run's log calls: its org and the step (``engine.telemetry.logs``
        reads them, and the run ids Temporal's ``workflow.logger`` adds)."""
        extra = {"org": self.org_id}
        if step_id:
            extra["step"] = step_id
        return extra

    def context(self, step: StepBase, scope: Scope) -> dict[str, Any]:
        """What the step's expressions see: inputs, state, steps, workflow, org, variables."""
        state = self.state if scope.state is None else {**self.state, **scope.state}
        steps: Mapping[str, Any] = self.record.steps
        if scope.steps is not None:
            steps = {**steps, **scope.steps}
        if scope.frame is not None:
            state = scope.frame.state
            steps = {**steps, **scope.frame.steps}
        if step.needs_state is not None:
            state = {k: state[k] for k in step.needs_state if k in state}
        context = {
            "inputs": self.inputs,
            "state": state,
            "steps": steps,
            "workflow": self.workflow_info(),
            "org": self.org(),
        }
        context.update(scope.variables)
        return context

    def workflow_info(self) -> dict[str, Any]:
        return {
            "id": self.workflow_id,
            "name": self.definition.name,
            "version": self.definition.version,
            "now": workflow.now().isoformat(),
        }

    def org(self) -> dict[str, Any]:
        return {"id": self.org_id}

    @property
    def lease(self) -> timedelta:
        """How long an executor may hold one of the run's actions without a heartbeat."""
        return timedelta(seconds=self.input.lease or DEFAULT_LEASE)

    def publish_inbox(self) -> None:
        """The run's own pending actions changed: its memo, where the inbox reads them, follows
        at the next suspension (one upsert for an answer and the next action)."""
        self.inbox_stale = True

    def _flush_inbox(self) -> None:
        if self.inbox_stale:
            self.inbox_stale = False
            own = [inbox_entry(action) for action in self.actions.views(workflow.now())]
            workflow.upsert_memo({INBOX_MEMO: own})

    def check_status(self, what: str, extra: int = 0) -> None:
        """Fail the step unless the run's status would still fit in a payload."""
        self.budget.check_status(what, self.get_status(), self.state, extra)

    def suspend(self, status: RunState, step_id: str) -> None:
        """The run waits at ``step_id``: handlers waiting for that moment may answer."""
        self.record.suspend(status, step_id)
        self._flush_inbox()
        self.suspensions += 1

    def resume(self, step_id: str) -> None:
        """The run goes on after waiting at ``step_id`` (while a parallel branch still waits
        on an action, the run waits at that one)."""
        if self.actions:
            # Not a suspension of its own: the branch that resumed goes on, and the run waits
            # again once every flow has stopped (see the parallel unit).
            self.record.suspend("waiting", next(iter(self.actions)).step_id)
            return
        self.record.resume(step_id)

    async def wait_for(self, condition: Callable[[], bool], timeout: float | None) -> None:
        """Wait for a condition, a cancellation or the timeout (a durable timer)."""
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: condition() or self.cancel_reason is not None, timeout=timeout
            )
        if self.cancel_reason is not None:
            raise RunCancelledError

    async def publish_actions(self) -> None:
        """Tell the parent (for a foreach item) which actions wait in this subtree."""
        if self.items.parent_id is not None:
            await self.items.report_to_parent(self.pending_actions())

    def notify_waiting(self, action: PendingAction) -> None:
        """Send an action that starts waiting to the org's webhook, in the background.

        Only in runs started while the org had a webhook (``notify`` in the input), so other
        runs' histories are as they were. The delivery is an activity retried with backoff;
        the run goes on without waiting for it, and logs one that is given up.
        """
        if not self.input.notify or not workflow.patched(WEBHOOKS):
            return
        event = {
            "type": "action.waiting",
            "delivery_id": f"{action['workflow_id']}/{action['action_id']}",
            "org_id": self.org_id,
            "definition": {"name": self.definition.name, "version": self.definition.version},
            "workflow_id": action["workflow_id"],
            "run_id": action["run_id"],
            "action": action,
        }

        async def deliver() -> None:
            try:
                await workflow.execute_activity(
                    NOTIFY_ACTIVITY,
                    event,
                    task_queue=webhook_queue(workflow.info().task_queue),
                    start_to_close_timeout=ATTEMPT_TIMEOUT,
                    schedule_to_close_timeout=DELIVERY_WINDOW,
                    retry_policy=DELIVERY_RETRY,
                )
            except ActivityError as error:
                workflow.logger.warning(
                    "webhook delivery %s given up: %s",
                    event["delivery_id"],
                    error.cause or error,
                    extra=self.log_extra(action["step_id"]),
                )

        task = asyncio.create_task(deliver())
        self.deliveries.add(task)
        task.add_done_callback(self.deliveries.discard)

    def note_change(self) -> None:
        """Keep the run as it is now for watchers: every change reaches them, in order."""
        self.version += 1
        self.changes.append(
            {
                "version": self.version,
                "status": self.record.status,
                "current_step": self.record.current_step,
                "waiting": self.record.waiting,
                "pending_actions": self.pending_actions(),
                "history_length": len(self.record.history),
            }
        )

    def pending_actions(self) -> list[PendingAction]:
        """The run's own pending actions, then those its foreach items reported."""
        return [*self.actions.views(workflow.now()), *self.items.reported()]

    async def continue_as_new_if_suggested(self) -> None:
        """Continue as new between steps once Temporal suggests it (never while actions wait),
        carrying the run's position and record.

        While parallel branches run, each waits here, at its step boundary, until all of them
        are at one (or done): the run then continues as new with every branch's position.
        """
        if not workflow.info().is_continue_as_new_suggested():
            return
        if self.flows > 1:
            self.parked += 1
            # This flow stops here until the others reach a boundary: the run waits (on their
            # actions, if any), and a caller waiting to hear where it went is answered now.
            waiting = next(iter(self.actions), None)
            if waiting is not None:
                self.suspend("waiting", waiting.step_id)
            else:
                self.suspensions += 1
            try:
                await workflow.wait_condition(
                    lambda: self.continuing or (self.parked == self.flows and not self.actions)
                )
            finally:
                self.parked -= 1
            if self.continuing:  # another branch continues the run; this one stops there
                await workflow.wait_condition(lambda: False)
            self.continuing = True
        elif self.actions:
            return
        self.suspensions += 1
        await self.items.reports_delivered()
        await workflow.wait_condition(workflow.all_handlers_finished)
        progress: Progress = {
            "state": self.state,
            "steps": self.record.steps,
            "history": self.record.history[-HISTORY_KEPT:],
            "done": sorted(self.record.done),
            "branches": self.branches,
            "fanouts": self.fanouts,
            "compensations": self.compensations.entries,
            "answered": self.actions.answered,
            "reports": self.items.reports,
            "continued": self.record.continued + 1,
            "started_at": self.record.started_at,
        }
        next_input = RunInput(
            definition=self.input.definition,
            definition_hash=self.input.definition_hash,
            inputs=self.inputs,
            org=self.input.org,
            scope=self.input.scope,
            progress=progress,
            lease=self.input.lease,
            called=self.input.called,
            notify=self.input.notify,
            trace=self.input.trace,
        )
        # Only when in progress, so that the runs recorded before these step types carry what
        # they always did.
        for key, started in (
            ("loops", self.loops),
            ("parallels", self.parallels),
            ("tries", self.tries),
        ):
            if started:
                progress[key] = started  # type: ignore[literal-required]
        if self.events.carried():
            progress["events"] = self.events.carried()
        fail_if_too_large("the state carried to the next run", progress)
        workflow.continue_as_new(next_input)

    # -- endings ----------------------------------------------------------------------------

    async def finish_completed(self, value: Any) -> Any:
        run_ended(self.org_id, self.definition.name, "completed")
        fail_if_too_large("the run's result", value)
        self.record.result = value
        await self.settle("completed")
        if self.input.scope:
            return {"result": value, "compensations": self.handed_over()}
        return value

    async def finish_failed(self, message: str) -> Any:
        run_ended(self.org_id, self.definition.name, "failed")
        message = clipped(message)
        self.record.error = message
        await self.settle("failed")
        raise ApplicationError(message, type="StepFailedError", non_retryable=True)

    async def finish_cancelled(self, reason: str | None) -> Any:
        run_ended(self.org_id, self.definition.name, "cancelled")
        shown = reason if reason is not None else workflow.cancellation_reason()
        self.record.error = f"cancelled: {shown}" if shown else "cancelled"
        await self.settle("cancelled")
        if reason is None:
            raise asyncio.CancelledError
        # A foreach item stopped by its parent hands back what the parent may have to undo.
        details = [{"compensations": self.handed_over()}] if self.input.scope else []
        raise CancelledError(reason, *details)

    def handed_over(self) -> list[Compensation]:
        return self.compensations.handed_over(self.definition, self.state, self.record.steps)

    async def settle(self, status: RunState) -> None:
        # A report still travelling to the parent would arrive while this run completes:
        # Temporal refuses that completion (UnhandledCommand) and aborts an update accepted
        # with it, such as the answer that ended the run.
        await self.items.reports_delivered()
        self.items.forget_reports()
        self.record.end(status)
        # No memo for the inbox: it lists waiting runs only (the memo keeps the last actions).
        self.suspensions += 1
        # Let update handlers waiting for this moment return their answer before the run ends.
        await workflow.wait_condition(workflow.all_handlers_finished)

    # -- handlers ---------------------------------------------------------------------------

    @workflow.query(name=GET_STATUS)
    def get_status(self) -> RunStatus:
        """Status, current step, pending actions (whole tree), step history and state."""
        record = self.record
        status: RunStatus = {
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "workflow_type": workflow.info().workflow_type,
            "definition": {
                "name": self.definition.name,
                "version": self.definition.version,
                "hash": self.input.definition_hash,
            },
            "org_id": self.org_id,
            "started_by": self.starter,
            "status": record.status,
            "current_step": record.current_step,
            "pending_actions": self.pending_actions(),
            "waiting": record.waiting,
            "history": record.history,
            "state": self.state,
            "steps": record.steps,
            "result": record.result,
            "error": record.error,
            "started_at": record.started_at,
            "continued": record.continued,
            "version": self.version,
        }
        if record.finished_at:
            status["finished_at"] = record.finished_at
        return status

    @workflow.query(name=GET_CHANGES)
    def get_changes(self, after: int) -> Changes:
        """The changes of the run's status since version ``after``, then its status now.

        Watchers long-poll the run's history and ask this at each new event, so they see
        every state the run passed through however fast it moved (the recent ones: a watcher
        that falls far behind is told so with ``complete`` False).
        """
        changes = [change for change in self.changes if change["version"] > after]
        oldest = self.changes[0]["version"] if self.changes else self.version + 1
        return {
            "changes": changes,
            "complete": after >= oldest - 1 or after >= self.version,
            "status": self.get_status(),
        }

    # The handlers take what callers send as Any: whatever arrives reaches the validator,
    # which rejects it with a message, instead of failing in the payload converter.

    @workflow.update(name=SUBMIT_RESULT)
    async def submit_result(self, submission: Any) -> Advance:
        """Resume the step an action belongs to; answer with where the run went next."""
        action = self.actions.find(submission, self.items.reported())
        seen = self.suspensions
        self.actions.accept(action, submission, workflow.now())
        if not action.resolved:  # an approval counted: the prompt waits for the others
            self.publish_inbox()
            self._flush_inbox()
            self.note_change()
            return self.advance()
        await workflow.wait_condition(lambda: self.suspensions > seen)
        return self.advance()

    @submit_result.validator
    def validate_submit_result(self, submission: Any) -> None:
        """Reject, without touching history, a result for no waiting step or of the wrong shape."""
        self.backoff.refuse(self.record, submission)
        action = self.actions.find(submission, self.items.reported())
        action.check_answerer(submission.get("actor"), self.starter)
        error = submission.get("error")
        if error is None:
            check_result(action, submission.get("result"))
        elif not isinstance(error, str) or len(error) > MAX_RESULT_BYTES:
            raise ResultRejectedError(submission_problem(None, str(error)) or "error: not text")

    @workflow.update(name=AWAIT_SUSPENSION)
    async def await_suspension(self) -> Advance:
        """Answer once the run first suspends (on actions, a timer, a fan-out) or ends.

        Sent with the start (update-with-start), it lets a client start a run and get its
        first pending actions, or its result, in one round trip.
        """
        await workflow.wait_condition(lambda: self.suspensions > 0)
        return self.advance()

    def advance(self) -> Advance:
        record = self.record
        return {
            "workflow_id": self.workflow_id,
            "status": record.status,
            "current_step": record.current_step,
            "pending_actions": self.pending_actions(),
            "result": record.result,
            "error": record.error,
        }

    @workflow.signal(name=SUBMIT_RESULT)
    def submit_result_signal(self, submission: Any) -> None:
        """Fire-and-forget form of :meth:`submit_result` (a bad result is logged and dropped)."""
        try:
            action = self.actions.find(submission, self.items.reported())
            action.check_answerer(submission.get("actor"), self.starter)
            self.actions.accept(action, submission, workflow.now())
        except ResultRejectedError as rejected:
            workflow.logger.warning(
                "submit_result signal rejected: %s", rejected, extra=self.log_extra()
            )

    @workflow.signal(name=CANCEL_WORKFLOW)
    def cancel_workflow(self, reason: str | None = None) -> None:
        """Cancel the run at its current step (the reason shows in its status)."""
        self.cancel_reason = reason or "cancelled by request"

    @workflow.update(name=MOVE_DEADLINE)
    def move_deadline(self, step_id: str, seconds: float) -> None:
        """:meth:`update_timeout`, answered: refused unless ``step_id`` is waiting."""
        self.update_timeout(step_id, seconds)

    @move_deadline.validator
    def validate_move_deadline(self, step_id: str, seconds: float) -> None:
        if any(action.step_id == step_id for action in self.actions):
            return
        if step_id in self.record.waits and self.backoff.step_id != step_id:
            return
        where = (
            f"the run is at '{self.record.current_step}'"
            if self.record.current_step
            else (f"the run is {self.record.status}")
        )
        raise ResultRejectedError(
            f"step '{step_id}' is not waiting for a result or a time ({where})"
        )

    @workflow.signal(name=UPDATE_TIMEOUT)
    def update_timeout(self, step_id: str, seconds: float) -> None:
        """Move the deadline of a waiting action, or the end of a ``wait``, to now + seconds."""
        # Clamped, so that no value (NaN, 1e300) can make the handler raise and the run stall.
        delay = float(seconds) if float(seconds) >= 0 else 0.0
        instant = workflow.now() + timedelta(seconds=min(delay, _LONGEST_DELAY))
        for action in self.actions:
            if action.step_id == step_id:
                action.deadline = instant
                action.deadline_changed = True
        waiting = self.record.waits.get(step_id)
        if waiting is not None:
            self.record.start_wait({**waiting, "until": instant.isoformat()})

    @workflow.signal(name=SEND_EVENT)
    def send_event(self, event: Any) -> None:
        """An event for the run's ``wait_for`` steps (kept until one takes it; see ``_events``)."""
        self.events.receive(event)

    @workflow.signal(name=REPORT_ACTIONS)
    async def report_actions(self, report: dict[str, Any]) -> None:
        """A foreach item's pending actions (its whole subtree), kept for the tree's status."""
        if self.items.take(report):
            self.note_change()
            await self.publish_actions()


def _unforeseen(error: Exception) -> str:
    """The message of a failure that no check foresaw (it ends the step, or the run)."""
    return f"unexpected {type(error).__name__}: {clipped(str(error), 500)}"
