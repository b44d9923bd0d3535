"""The interpreter: one dynamic Temporal workflow that runs every definition.

A run's input carries the definition's canonical JSON, so one workflow class serves every
definition and version (the workflow type is ``"{name}:{version}"``) and a new definition never
needs a worker restart.

Determinism. Everything here is replayed from history: time comes from ``workflow.now()``, ids
from ``workflow.uuid4()``, and waiting from ``workflow.wait_condition`` (durable timers). Workers
pass this module through the sandbox (it is imported once per process, so it keeps no mutable
module state); the replay tests re-import it inside the sandbox, whose restrictions then catch
any non-deterministic call. Steps of type condition, set_state and return are
evaluated inline: the expression language is pure and deterministic, so re-evaluating them on
replay gives the same result without an activity or a history event.

Position. Step ids are unique in a definition, so the set of finished step ids (plus the branch
each condition took and the items each foreach finished) says exactly where a run is. That set
is what continue-as-new carries: the next run walks the definition from the top and skips
what is done, resuming where the previous one stopped with its state intact.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ApplicationError, CancelledError, ChildWorkflowError

from engine.definition import (
    ConditionStep,
    ForeachStep,
    PromptStep,
    ReturnStep,
    SetStateStep,
    StepBase,
    WaitStep,
    WorkflowDefinition,
    format_duration,
    load_definition,
)
from engine.definition import RetryPolicy as StepRetryPolicy
from engine.expr import ExpressionError, Reference
from engine.workflow._actions import Action, ResultRejectedError, check_result
from engine.workflow._search import ENGINE_STATUS, ENGINE_STEP
from engine.workflow._types import ACTION_STEP_TYPES, LOAD_DEFINITION, PAYLOAD_LIMIT, RunInput

__all__ = ["EngineWorkflow"]

_HISTORY_KEPT: Final = 500
"""Step history entries kept in the status (the oldest are dropped beyond this)."""
_LONGEST_DELAY: Final = 100 * 365 * 24 * 3600.0
"""update_timeout moves a deadline at most this many seconds ahead (about a century)."""
_ANSWERED_KEPT: Final = 500
"""Answered action ids remembered, to tell a duplicate from an unknown id."""


class StepFailedError(Exception):
    """A step failed; ``on_error`` decides what happens next."""

    def __init__(self, message: str, *, retryable: bool = False, output: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.output = output


class RunFailedError(Exception):
    """A step failed and its ``on_error`` is ``fail``: the run fails (after compensation)."""


class RunCancelledError(Exception):
    """The ``cancel_workflow`` signal arrived."""


class _Returned:
    """A ``return`` step ran: the value ends the enclosing run (or foreach item)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


@dataclass
class _Scope:
    """The variables of enclosing foreach steps (``as`` names and ``index``).

    A compensation handed back by a foreach item also brings what it reads of the item's own
    state and step records (``state`` and ``steps``): it runs in the parent, which has neither.
    """

    variables: dict[str, Any]
    state: dict[str, Any] | None = None
    steps: dict[str, Any] | None = None


Executor = Callable[["EngineWorkflow", Any, _Scope, int], Coroutine[Any, Any, Any]]


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
        scope = run_input.scope or {}
        self.scope = _Scope(dict(scope.get("vars", {})))
        self.parent_id: str | None = info.parent.workflow_id if info.parent else None
        progress = run_input.progress or {}
        self.inputs: dict[str, Any] = run_input.inputs
        # A continued run carries its own state; a foreach child starts from its parent's.
        carried = progress["state"] if "state" in progress else scope.get("state")
        self.state: dict[str, Any] = dict(carried or {})
        self.steps: dict[str, Any] = progress.get("steps", {})
        # Each record's size as JSON, taken once: the status is measured after every step,
        # and the outputs of all the steps so far need not be serialized again each time.
        self.record_sizes = {key: _entry_size(key, value) for key, value in self.steps.items()}
        # The same for state keys, remembered with the value they measured: state values are
        # replaced, never changed in place, so an identical object has an unchanged size.
        self.state_sizes: dict[str, tuple[Any, int]] = {}
        self.history: list[dict[str, Any]] = progress.get("history", [])
        self.done: set[str] = set(progress.get("done", []))
        self.branches: dict[str, str] = progress.get("branches", {})
        self.fanouts: dict[str, Any] = progress.get("fanouts", {})
        self.compensations: list[dict[str, Any]] = progress.get("compensations", [])
        self.answered: dict[str, str] = progress.get("answered", {})
        self.continued = int(progress.get("continued", 0))
        self.started_at: str = progress.get("started_at") or workflow.now().isoformat()
        self.status = "running"
        self.current_step: str | None = None
        self.waiting: dict[str, Any] | None = None
        self.actions: dict[str, Action] = {}
        self.child_actions: dict[str, list[dict[str, Any]]] = {}
        # Running foreach children -> the number of the last report taken from each. Signals
        # from one sender may arrive out of order, and late ones from a finished child at all.
        self.children: dict[str, int] = {}
        self.reports = int(progress.get("reports", 0))
        self.cancel_reason: str | None = None
        self.result: Any = None
        self.error: str | None = None
        self.epoch = 0
        self.compensating = False
        self.searchable: tuple[str, str | None] = ("running", None)

    # -- the run ----------------------------------------------------------------------------

    @workflow.run
    async def run(self, args: Sequence[RawValue]) -> Any:
        """Run the definition (or, for a foreach child, one item's steps)."""
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
                await self.compensate()
            except asyncio.CancelledError:
                return await self.finish_cancelled(None)
            return await self.finish_failed(str(failure))
        except RunCancelledError:
            return await self.finish_cancelled(self.cancel_reason or "cancelled by request")
        except asyncio.CancelledError:
            return await self.finish_cancelled(None)
        value = returned.value if returned is not None else self.last_output(block)
        return await self.finish_completed(value)

    async def run_block(self, block: Sequence[StepBase], scope: _Scope) -> _Returned | None:
        """Run steps in order; a ``return`` ends the block (and its enclosing blocks)."""
        for step in block:
            # Only the normal flow skips what a previous run finished (before continuing as
            # new): a compensate block may run once per foreach item, so none of its steps is
            # ever "done".
            if not self.compensating:
                if step.id in self.done:
                    continue
                await self.continue_as_new_if_suggested()
            returned = await self.run_step(step, scope)
            if returned is not None:
                return returned
        return None

    async def run_step(self, step: StepBase, scope: _Scope) -> _Returned | None:
        """Run one step: ``when``, the executor of its type, retries and ``on_error``."""
        # A condition or foreach that a previous run started (before continuing as new) is
        # resumed, not started again: its `when` held then, and what its own block did since
        # may have changed the answer.
        resumed = not self.compensating and (step.id in self.branches or step.id in self.fanouts)
        entry = self.begin(step, resumed)
        try:
            runs = resumed or step.evaluate_when(self.context(step, scope))
        except ExpressionError as error:
            self.step_failed(step, entry, StepFailedError(str(error)))
            return None
        if not runs:
            self.finish_step(step, entry, "skipped", None)
            return None
        policy = step.retry or self.definition.defaults.retry
        attempt = 1
        executor = _EXECUTORS[step.step_type]
        while True:
            entry["attempts"] = attempt
            try:
                outcome = await executor(self, step, scope, attempt)
            except ExpressionError as error:
                self.step_failed(step, entry, StepFailedError(str(error)))
                return None
            except RunFailedError as failure:
                self.finish_step(step, entry, "failed", None, error=str(failure))
                raise
            except (RunCancelledError, asyncio.CancelledError):
                self.finish_step(step, entry, "cancelled", None)
                raise
            except StepFailedError as failure:
                if (
                    failure.retryable
                    and step.on_error == "retry"
                    and attempt < policy.max_attempts
                    and not self.cancel_reason
                ):
                    entry.setdefault("errors", []).append(failure.message)
                    self.upsert_search()  # visibility shows "running" during the backoff
                    await self.sleep(_backoff(policy, attempt))
                    attempt += 1
                    continue
                self.step_failed(step, entry, failure)
                return None
            break
        returned = outcome if isinstance(outcome, _Returned) else None
        output = returned.value if returned is not None else outcome
        updates: dict[str, Any] = dict(output) if isinstance(step, SetStateStep) else {}
        if step.output_to is not None and not isinstance(step, ReturnStep):
            updates[step.output_to] = output
        previous = {key: self.state[key] for key in updates if key in self.state}
        self.state.update(updates)
        self.finish_step(step, entry, "completed", output)
        what = "the state after step" if updates else "the output of step"
        try:
            # A return value is carried once more, as the run's result.
            self.check_status(
                f"{what} '{step.id}'", _json_size(output) if returned is not None else 0
            )
        except StepFailedError as failure:
            for key in updates:
                if key in previous:
                    self.state[key] = previous[key]
                else:
                    self.state.pop(key, None)
            self.step_failed(step, entry, failure)
            return None
        if step.compensate and not self.compensating:
            self.compensations.append({"step_id": step.id, "vars": scope.variables})
        return returned

    def step_failed(self, step: StepBase, entry: dict[str, Any], failure: StepFailedError) -> None:
        """Record a failure; with ``on_error: continue`` the run goes on, else it fails."""
        self.finish_step(step, entry, "failed", failure.output, error=failure.message)
        if step.on_error == "continue" and not self.cancel_reason:
            # What a failed step produced (a shell step's exit code and output) is what the
            # steps after it need to react to, so it lands in `output_to` as a success would.
            if step.output_to is not None and failure.output is not None:
                self.state[step.output_to] = failure.output
            return None
        raise RunFailedError(f"step '{step.id}' failed: {failure.message}")

    # -- executors: one per step type -------------------------------------------------------

    async def run_condition(self, step: ConditionStep, scope: _Scope, attempt: int) -> Any:
        branch = None if self.compensating else self.branches.get(step.id)
        if branch is None:
            branch = "then" if step.evaluate_if(self.context(step, scope)) else "else"
            if not self.compensating:
                self.branches[step.id] = branch
        returned = await self.run_block(step.then if branch == "then" else step.else_, scope)
        return returned if returned is not None else branch == "then"

    async def run_set_state(self, step: SetStateStep, scope: _Scope, attempt: int) -> Any:
        values: dict[str, Any] = step.render("set", self.context(step, scope))
        return values  # run_step applies them, once it knows they fit

    async def run_return(self, step: ReturnStep, scope: _Scope, attempt: int) -> Any:
        value = step.render("value", self.context(step, scope))
        self.check_size(f"the value of return step '{step.id}'", value)
        return _Returned(value)

    async def run_action(self, step: StepBase, scope: _Scope, attempt: int) -> Any:
        context = self.context(step, scope)
        parameters = step.render_params(context)
        if isinstance(step, PromptStep):
            parameters["prompt_type"] = step.prompt_type
        now = workflow.now()
        timeout = step.timeout or self.definition.defaults.timeout
        action = Action(
            action_id=str(workflow.uuid4()),
            type=step.step_type,
            step_id=step.id,
            parameters=parameters,
            attempt=attempt,
            created_at=now,
            deadline=now + timeout if timeout else None,
            state=context["state"] if step.needs_state is not None else None,
            workflow_id=self.workflow_id,
            run_id=self.run_id,
        )
        self.actions[action.action_id] = action
        try:
            self.check_status(f"the pending action of step '{step.id}'")
        except StepFailedError:
            del self.actions[action.action_id]
            raise
        try:
            await self.suspend("waiting", step.id)
            await self.publish_actions()
            while not action.resolved:
                remaining = _seconds_until(action.deadline)
                if remaining is not None and remaining <= 0:
                    break
                action.deadline_changed = False
                await self.wait_for(lambda: action.resolved or action.deadline_changed, remaining)
        finally:
            del self.actions[action.action_id]
        # A timed-out action leaves the status too: during a retry's backoff nothing waits.
        await self.publish_actions()
        await self.resume(step.id)
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

    async def run_wait(self, step: WaitStep, scope: _Scope, attempt: int) -> Any:
        now = workflow.now()
        if step.until is not None:
            text = step.render("until", self.context(step, scope))
            until = _parse_instant(text, step.id)
        else:
            until = now + (step.duration or timedelta(0))
        message = step.render("message", self.context(step, scope))
        self.waiting = {"step_id": step.id, "message": message, "until": until.isoformat()}
        await self.suspend("running", step.id)
        try:
            while (remaining := _seconds_until(until)) and remaining > 0:
                seen = self.waiting

                def moved(seen: dict[str, Any] | None = seen) -> bool:
                    return self.waiting is not seen  # update_timeout replaced it

                await self.wait_for(moved, remaining)
                if self.waiting is not seen and self.waiting is not None:
                    until = datetime.fromisoformat(self.waiting["until"])
        finally:
            self.waiting = None
        await self.resume(step.id)
        return None

    async def run_foreach(self, step: ForeachStep, scope: _Scope, attempt: int) -> Any:
        items = step.evaluate_items(self.context(step, scope))
        fanout = self.fanouts.setdefault(step.id, {"results": {}, "errors": []})
        if attempt > 1:
            fanout["errors"] = []  # a retry re-runs the items that failed, not the others
        results: dict[str, Any] = fanout["results"]
        errors: list[dict[str, Any]] = fanout["errors"]
        finished = set(results) | {str(e["index"]) for e in errors}
        todo = [i for i in range(len(items)) if str(i) not in finished]
        running: dict[Any, int] = {}
        failure: StepFailedError | None = None
        stopping = False
        # A foreach's own timeout bounds the whole fan-out. `defaults.timeout` is not applied
        # here: it is meant for actions, which the items' steps still get.
        deadline = workflow.now() + step.timeout if step.timeout else None
        await self.suspend("running", step.id)
        try:
            while todo or running:
                # When Temporal suggests continuing as new, start no more items; once the
                # running ones are done, the next run picks up the rest (children cannot
                # outlive a continue-as-new of their parent).
                draining = workflow.info().is_continue_as_new_suggested()
                batch: list[int] = []
                while todo and len(running) + len(batch) < step.max_parallel and not stopping:
                    if draining:
                        break
                    batch.append(todo.pop(0))
                # Started together, their start commands leave in one workflow task instead
                # of one round trip to the server per child (gather keeps the order).
                handles = await asyncio.gather(
                    *(self.start_child(step, scope, items[i], i, attempt) for i in batch)
                )
                running.update(zip(handles, batch, strict=True))
                if not running:
                    if draining and todo and not stopping and not self.compensating:
                        await self.continue_as_new_if_suggested()
                    break

                def settled(stopped: bool = stopping) -> bool:
                    return any(task.done() for task in running) or (
                        self.cancel_reason is not None and not stopped
                    )

                # Once stopping, the children were asked to end: wait for them, with no timeout
                # (a deadline already passed would make this a zero timeout, and the loop would
                # spin inside one workflow task, never letting their results arrive).
                remaining = None if stopping else _seconds_until(deadline)
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        settled, timeout=max(remaining, 0.0) if remaining is not None else None
                    )
                if self.cancel_reason is not None and not stopping:
                    stopping = True
                    await self.stop_children(running, self.cancel_reason)
                elif step.timeout and (_seconds_until(deadline) or 0.0) <= 0 and not stopping:
                    # The fan-out's own timeout: stop what still runs and fail the step (its
                    # on_error decides; a retry re-runs only the unfinished items).
                    stopping = True
                    failure = StepFailedError(
                        f"timed out after {format_duration(step.timeout)} with "
                        f"{len(running) + len(todo)} item(s) unfinished",
                        retryable=True,
                    )
                    await self.stop_children(running, "the foreach timed out")
                # In start order, not in the order of a set: replay must see the same order.
                for task in [task for task in running if task.done()]:
                    index = running.pop(task)
                    self.child_actions.pop(self.child_id(step, index, attempt), None)
                    self.children.pop(self.child_id(step, index, attempt), None)
                    try:
                        outcome = task.result()
                    except ChildWorkflowError as error:
                        message = _cause(error)
                        errors.append({"index": index, "item": items[index], "error": message})
                        self.compensations.extend(_handed_over(error))
                        if step.on_item_error == "fail" and not stopping:
                            failure = StepFailedError(
                                f"item {index} failed: {message}", retryable=True
                            )
                            stopping = True
                            await self.stop_children(running, f"item {index} failed")
                        continue
                    results[str(index)] = outcome["result"]
                    self.compensations.extend(outcome.get("compensations", []))
                await self.publish_actions()
            if self.cancel_reason is not None:
                raise RunCancelledError
            errors.sort(key=lambda error: int(error["index"]))
            self.steps[step.id] = {"errors": errors}
            if failure is not None:
                raise failure
        finally:
            for task in running:
                task.cancel()
        await self.resume(step.id)
        del self.fanouts[step.id]
        return [results.get(str(i)) for i in range(len(items))]

    async def start_child(
        self, step: ForeachStep, scope: _Scope, item: Any, index: int, attempt: int
    ) -> Any:
        variables = dict(scope.variables)
        variables[step.as_] = item
        variables["index"] = index
        state = self.state
        if step.needs_state is not None:
            state = {k: v for k, v in state.items() if k in step.needs_state}
        child_input = RunInput(
            definition=self.input.definition,
            definition_hash=self.input.definition_hash,
            inputs=self.inputs,
            org=self.input.org,
            scope={"foreach": step.id, "vars": variables, "state": state},
        )
        child_id = self.child_id(step, index, attempt)
        # Known before it starts: its first report may come with the news that it started.
        self.children[child_id] = 0
        return await workflow.start_child_workflow(
            workflow.info().workflow_type,
            child_input,
            id=child_id,
            task_queue=workflow.info().task_queue,
            parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
            cancellation_type=workflow.ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
            search_attributes=workflow.info().typed_search_attributes,
            retry_policy=RetryPolicy(maximum_attempts=1),
        )

    def child_id(self, step: ForeachStep, index: int, attempt: int) -> str:
        suffix = f"/attempt-{attempt}" if attempt > 1 else ""
        return f"{self.workflow_id}/{step.id}/{index}{suffix}"

    async def stop_children(self, running: dict[Any, int], reason: str) -> None:
        """Ask running foreach children to stop; the caller still waits for each to end.

        The ``cancel_workflow`` signal, unlike a Temporal cancellation, lets a child end on its
        own terms and hand back the compensations of the steps it completed: a sibling of a
        failed item may already have changed the world, and the parent must be able to undo it.
        """

        async def stop(handle: Any) -> None:
            # A child may end before the signal reaches it; then there is nothing to stop.
            with contextlib.suppress(Exception):
                await handle.signal("cancel_workflow", reason)

        await asyncio.gather(*(stop(handle) for handle in running))

    # -- endings ----------------------------------------------------------------------------

    async def compensate(self) -> None:
        """Run the ``compensate`` steps of completed steps, most recent first.

        A compensation that fails is recorded in the step history and the next one still runs:
        undoing as much as possible matters more than stopping at the first problem.
        """
        pending, self.compensations = self.compensations, []
        self.compensating = True
        for entry in reversed(pending):
            step = self.definition.step(entry["step_id"])
            seen = entry.get("context") or {}
            scope = _Scope(dict(entry.get("vars", {})), seen.get("state"), seen.get("steps"))
            try:
                await self.run_block(step.compensate, scope)
            except (RunFailedError, StepFailedError, RunCancelledError) as failure:
                workflow.logger.warning("compensation of step %s failed: %s", step.id, failure)

    async def finish_completed(self, value: Any) -> Any:
        self.check_size_or_fail("the run's result", value)
        self.result = value
        await self.settle("completed")
        if self.input.scope:
            return {"result": value, "compensations": self.handed_over()}
        return value

    async def finish_failed(self, message: str) -> Any:
        self.error = message
        await self.settle("failed")
        raise ApplicationError(message, type="StepFailedError", non_retryable=True)

    async def finish_cancelled(self, reason: str | None) -> Any:
        shown = reason if reason is not None else workflow.cancellation_reason()
        self.error = f"cancelled: {shown}" if shown else "cancelled"
        await self.settle("cancelled")
        if reason is None:
            raise asyncio.CancelledError
        # A foreach child stopped by its parent hands back what the parent may have to undo.
        details = [{"compensations": self.handed_over()}] if self.input.scope else []
        raise CancelledError(reason, *details)

    def handed_over(self) -> list[dict[str, Any]]:
        """This item's compensations for its parent, each with the context it reads here."""
        entries = []
        for entry in self.compensations:
            if "context" not in entry:  # a grandchild's entries already carry theirs
                block = self.definition.step(entry["step_id"]).compensate
                entry = {**entry, "context": self.read_by(block)}
            entries.append(entry)
        return entries

    def read_by(self, block: Sequence[StepBase]) -> dict[str, Any]:
        """The part of the state and step records that a block's expressions read."""
        wanted: dict[str, set[str] | None] = {"state": set(), "steps": set()}
        for reference in _references(block):
            keys = wanted.get(reference.root)
            if reference.root not in wanted or keys is None:
                continue
            if reference.key is None:
                wanted[reference.root] = None  # read by a computed key: keep all of it
            else:
                keys.add(reference.key)
        return {
            "state": _pick(self.state, wanted["state"]),
            "steps": _pick(self.steps, wanted["steps"]),
        }

    async def settle(self, status: str) -> None:
        self.status = status
        self.current_step = None
        self.waiting = None
        # Children stopped along with this run report nothing more: nothing waits any longer.
        self.child_actions.clear()
        self.upsert_search()
        self.epoch += 1
        # Let update handlers waiting for this moment return their answer before the run ends.
        await workflow.wait_condition(workflow.all_handlers_finished)

    # -- continue-as-new --------------------------------------------------------------------

    async def continue_as_new_if_suggested(self) -> None:
        if self.compensating or self.actions or not workflow.info().is_continue_as_new_suggested():
            return
        self.epoch += 1
        await workflow.wait_condition(workflow.all_handlers_finished)
        progress = {
            "state": self.state,
            "steps": self.steps,
            "history": self.history[-_HISTORY_KEPT:],
            "done": sorted(self.done),
            "branches": self.branches,
            "fanouts": self.fanouts,
            "compensations": self.compensations,
            "answered": self.answered,
            "reports": self.reports,
            "continued": self.continued + 1,
            "started_at": self.started_at,
        }
        next_input = RunInput(
            definition=self.input.definition,
            definition_hash=self.input.definition_hash,
            inputs=self.inputs,
            org=self.input.org,
            scope=self.input.scope,
            progress=progress,
        )
        self.check_size_or_fail("the state carried to the next run", progress)
        workflow.continue_as_new(next_input)

    # -- status, suspension and the search attributes ---------------------------------------

    async def suspend(self, status: str, step_id: str) -> None:
        self.status = status
        self.current_step = step_id
        self.upsert_search()
        self.epoch += 1

    async def resume(self, step_id: str) -> None:
        self.status = "running"
        self.current_step = step_id

    def upsert_search(self) -> None:
        wanted = (self.status, self.current_step)
        if wanted == self.searchable:
            return
        self.searchable = wanted
        workflow.upsert_search_attributes(
            [
                ENGINE_STATUS.value_set(self.status),
                ENGINE_STEP.value_set(self.current_step)
                if self.current_step
                else ENGINE_STEP.value_unset(),
            ]
        )

    async def publish_actions(self) -> None:
        """Tell the parent (for a foreach child) which actions wait in this subtree."""
        if self.parent_id is None:
            return
        self.reports += 1
        await workflow.get_external_workflow_handle(self.parent_id).signal(
            "report_actions",
            {
                "workflow_id": self.workflow_id,
                "actions": self.pending_actions(),
                "report": self.reports,
            },
        )

    def pending_actions(self) -> list[dict[str, Any]]:
        now = workflow.now()
        own = [action.to_json(now) for action in self.actions.values() if not action.resolved]
        for reported in self.child_actions.values():
            own.extend(reported)
        return own

    def begin(self, step: StepBase, resumed: bool = False) -> dict[str, Any]:
        if resumed:
            unfinished = [
                e for e in self.history if e["step_id"] == step.id and e["finished_at"] is None
            ]
            if unfinished:
                return unfinished[-1]  # one entry per step, however many runs it spans
        entry: dict[str, Any] = {
            "step_id": step.id,
            "type": step.step_type,
            "started_at": workflow.now().isoformat(),
            "finished_at": None,
            "outcome": None,
            "attempts": 0,
        }
        self.history.append(entry)
        if len(self.history) > _HISTORY_KEPT:
            del self.history[: len(self.history) - _HISTORY_KEPT]
        return entry

    def finish_step(
        self,
        step: StepBase,
        entry: dict[str, Any],
        outcome: str,
        output: Any,
        *,
        error: str | None = None,
    ) -> None:
        entry["finished_at"] = workflow.now().isoformat()
        entry["outcome"] = outcome
        record: dict[str, Any] = {"status": outcome, "output": output}
        if error is not None:
            entry["error"] = error
            record["error"] = error
        previous = self.steps.get(step.id)
        if isinstance(previous, dict) and "errors" in previous:
            record["errors"] = previous["errors"]
        self.steps[step.id] = record
        self.record_sizes[step.id] = _entry_size(step.id, record)
        self.done.add(step.id)

    def last_output(self, block: Sequence[StepBase]) -> Any:
        for step in reversed(block):
            record = self.steps.get(step.id)
            if record is not None and record["status"] == "completed":
                return record["output"]
        return None

    # -- expression context -----------------------------------------------------------------

    def workflow_info(self) -> dict[str, Any]:
        return {
            "id": self.workflow_id,
            "name": self.definition.name,
            "version": self.definition.version,
            "now": workflow.now().isoformat(),
        }

    def org(self) -> dict[str, Any]:
        return {"id": self.org_id}

    def context(self, step: StepBase, scope: _Scope) -> dict[str, Any]:
        state = self.state if scope.state is None else {**self.state, **scope.state}
        steps = self.steps if scope.steps is None else {**self.steps, **scope.steps}
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

    # -- waiting ----------------------------------------------------------------------------

    async def wait_for(self, condition: Callable[[], bool], timeout: float | None) -> None:
        """Wait for a condition, a cancellation or the timeout (a durable timer)."""
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: condition() or self.cancel_reason is not None, timeout=timeout
            )
        if self.cancel_reason is not None:
            raise RunCancelledError

    async def sleep(self, seconds: float) -> None:
        await self.wait_for(lambda: False, seconds)

    # -- payload limits ---------------------------------------------------------------------

    def check_size(self, what: str, value: Any) -> None:
        """Fail the step before Temporal would reject an oversized payload."""
        size = _json_size(value)
        if size > PAYLOAD_LIMIT:
            raise StepFailedError(
                f"{what} is {size:,} bytes as JSON, over Temporal's payload limit of "
                f"{PAYLOAD_LIMIT:,} bytes"
            )

    def check_status(self, what: str, extra: int = 0) -> None:
        """Fail the step unless the status, hence what continue-as-new carries, still fits.

        The state, every step's output and the pending actions all travel in the one payload
        that answers ``get_status``: an output kept in the state is in it twice.
        """
        status = self.get_status()
        status["steps"] = {}
        status["state"] = {}
        size = _json_size(status) + self.state_size() + sum(self.record_sizes.values()) + extra
        if size > PAYLOAD_LIMIT:
            raise StepFailedError(
                f"{what} would make the run's status {size:,} bytes as JSON, over Temporal's "
                f"payload limit of {PAYLOAD_LIMIT:,} bytes"
            )

    def state_size(self) -> int:
        """The state's size as JSON, measuring only the keys whose value changed."""
        sizes: dict[str, tuple[Any, int]] = {}
        for key, value in self.state.items():
            known = self.state_sizes.get(key)
            sizes[key] = known if known and known[0] is value else (value, _entry_size(key, value))
        self.state_sizes = sizes
        return sum(size for _, size in sizes.values())

    def check_size_or_fail(self, what: str, value: Any) -> None:
        size = _json_size(value)
        if size > PAYLOAD_LIMIT:
            raise ApplicationError(
                f"{what} is {size:,} bytes as JSON, over Temporal's payload limit of "
                f"{PAYLOAD_LIMIT:,} bytes",
                type="PayloadTooLarge",
                non_retryable=True,
            )

    # -- handlers ---------------------------------------------------------------------------

    @workflow.query(name="get_status")
    def get_status(self) -> dict[str, Any]:
        """Status, current step, pending actions (whole tree), step history and state."""
        return {
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "workflow_type": workflow.info().workflow_type,
            "definition": {
                "name": self.definition.name,
                "version": self.definition.version,
                "hash": self.input.definition_hash,
            },
            "org_id": self.org_id,
            "status": self.status,
            "current_step": self.current_step,
            "pending_actions": self.pending_actions(),
            "waiting": self.waiting,
            "history": self.history,
            "state": self.state,
            "steps": self.steps,
            "result": self.result,
            "error": self.error,
            "started_at": self.started_at,
            "continued": self.continued,
        }

    @workflow.update(name="submit_result")
    async def submit_result(self, submission: Any) -> dict[str, Any]:
        """Resume the step an action belongs to; answer with where the run went next."""
        action = self.find_action(submission)
        epoch = self.epoch
        self.accept(action, submission)
        await workflow.wait_condition(lambda: self.epoch > epoch)
        return self.advance()

    @workflow.update(name="await_suspension")
    async def await_suspension(self) -> dict[str, Any]:
        """Answer once the run first suspends (on actions, a timer, a fan-out) or ends.

        Sent with the start (update-with-start), it lets a client start a run and get its
        first pending actions, or its result, in one round trip.
        """
        await workflow.wait_condition(lambda: self.epoch > 0)
        return self.advance()

    @submit_result.validator
    def validate_submit_result(self, submission: Any) -> None:
        """Reject, without touching history, a result for no waiting step or of the wrong shape."""
        action = self.find_action(submission)
        if "error" not in submission or submission.get("error") is None:
            check_result(action, submission.get("result"))

    @workflow.signal(name="submit_result")
    def submit_result_signal(self, submission: Any) -> None:
        """Fire-and-forget form of :meth:`submit_result` (a bad result is logged and dropped)."""
        try:
            self.accept(self.find_action(submission), submission)
        except ResultRejectedError as rejected:
            workflow.logger.warning("submit_result signal rejected: %s", rejected)

    def find_action(self, submission: Any) -> Action:
        if not isinstance(submission, dict):
            raise ResultRejectedError("a submission is a map with action_id or step_id and result")
        action_id = submission.get("action_id")
        step_id = submission.get("step_id")
        if not action_id and not step_id:
            raise ResultRejectedError("name the action: give action_id or step_id")
        for action in self.actions.values():
            if (action_id and action.action_id == action_id) or (
                not action_id and action.step_id == step_id
            ):
                if action.resolved:
                    raise ResultRejectedError(
                        f"a result for step '{action.step_id}' was already submitted"
                    )
                return action
        if isinstance(action_id, str) and action_id in self.answered:
            raise ResultRejectedError(
                f"a result for step '{self.answered[action_id]}' was already submitted"
            )
        for reported in self.child_actions.values():
            for pending in reported:
                if (action_id and pending.get("action_id") == action_id) or (
                    not action_id and pending.get("step_id") == step_id
                ):
                    # Shown in this run's status, but a foreach item's run owns it.
                    raise ResultRejectedError(
                        f"step '{pending.get('step_id')}' waits in the foreach item "
                        f"'{pending.get('workflow_id')}': submit its result there"
                    )
        if step_id and not action_id:
            raise ResultRejectedError(f"step '{step_id}' is not waiting for a result")
        raise ResultRejectedError(f"no pending action '{action_id}' in this run")

    def accept(self, action: Action, submission: dict[str, Any]) -> None:
        error = submission.get("error")
        if error is not None:
            action.error = str(error)
        else:
            action.result = check_result(action, submission.get("result"))
        action.resolved = True
        self.answered[action.action_id] = action.step_id
        if len(self.answered) > _ANSWERED_KEPT:
            del self.answered[next(iter(self.answered))]

    def advance(self) -> dict[str, Any]:
        return {
            "workflow_id": self.workflow_id,
            "status": self.status,
            "current_step": self.current_step,
            "pending_actions": self.pending_actions(),
            "result": self.result,
            "error": self.error,
        }

    @workflow.signal(name="cancel_workflow")
    def cancel_workflow(self, reason: str | None = None) -> None:
        """Cancel the run at its current step (the reason shows in its status)."""
        self.cancel_reason = reason or "cancelled by request"

    @workflow.signal(name="update_timeout")
    def update_timeout(self, step_id: str, seconds: float) -> None:
        """Move the deadline of a waiting action, or the end of a ``wait``, to now + seconds."""
        # Clamped, so that no value (NaN, 1e300) can make the handler raise and the run stall.
        delay = float(seconds) if float(seconds) >= 0 else 0.0
        instant = workflow.now() + timedelta(seconds=min(delay, _LONGEST_DELAY))
        for action in self.actions.values():
            if action.step_id == step_id:
                action.deadline = instant
                action.deadline_changed = True
        if self.waiting is not None and self.waiting["step_id"] == step_id:
            self.waiting = {**self.waiting, "until": instant.isoformat()}

    @workflow.signal(name="report_actions")
    async def report_actions(self, report: dict[str, Any]) -> None:
        """A foreach child's pending actions (its whole subtree), kept for the tree's status."""
        child = str(report.get("workflow_id", ""))
        number = report.get("report")
        actions = report.get("actions")
        if not isinstance(actions, list) or not isinstance(number, int):
            return  # not from a child of this engine: a bad signal must not break the run
        if number <= self.children.get(child, number):
            return  # older than one already taken, or from a child no longer running
        self.children[child] = number
        if actions:
            self.child_actions[child] = actions
        else:
            self.child_actions.pop(child, None)
        await self.publish_actions()


_EXECUTORS: Final[dict[str, Executor]] = {
    "condition": EngineWorkflow.run_condition,
    "set_state": EngineWorkflow.run_set_state,
    "return": EngineWorkflow.run_return,
    "wait": EngineWorkflow.run_wait,
    "foreach": EngineWorkflow.run_foreach,
    **dict.fromkeys(ACTION_STEP_TYPES, EngineWorkflow.run_action),
}


def _backoff(policy: StepRetryPolicy, attempt: int) -> float:
    delay = policy.initial_interval.total_seconds() * policy.backoff ** (attempt - 1)
    return min(delay, policy.max_interval.total_seconds())


def _seconds_until(instant: datetime | None) -> float | None:
    if instant is None:
        return None
    return (instant - workflow.now()).total_seconds()


def _timed_out(action: Action, timeout: timedelta | None) -> str:
    if timeout is not None and action.deadline == action.created_at + timeout:
        return f"timed out after {format_duration(timeout)}"
    # update_timeout moved the deadline: the step's own timeout would mislead.
    assert action.deadline is not None
    return f"timed out at {action.deadline.isoformat()} (deadline set by update_timeout)"


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


def _cause(error: ChildWorkflowError) -> str:
    cause = error.cause
    while isinstance(cause, ChildWorkflowError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, CancelledError):
        return f"cancelled: {cause.message}"
    return str(cause.message if hasattr(cause, "message") else cause) if cause else str(error)


def _references(block: Sequence[StepBase]) -> Iterator[Reference]:
    """What the expressions of a block's steps read, nested blocks included."""
    for step in block:
        yield from step.references
        for name in ("then", "else_", "steps", "compensate"):
            nested = getattr(step, name, None)
            if isinstance(nested, list):
                yield from _references(nested)


def _pick(values: dict[str, Any], keys: set[str] | None) -> dict[str, Any]:
    return dict(values) if keys is None else {k: v for k, v in values.items() if k in keys}


def _handed_over(error: ChildWorkflowError) -> list[dict[str, Any]]:
    """The compensations a foreach child handed back when it was stopped."""
    cause = error.cause
    if isinstance(cause, CancelledError) and cause.details:
        detail = cause.details[0]
        if isinstance(detail, dict):
            return list(detail.get("compensations", []))
    return []


def _entry_size(key: str, value: Any) -> int:
    """The size of ``"key":value,`` in a JSON object."""
    return _json_size(key) + _json_size(value) + 2


def _json_size(value: Any) -> int:
    # As Temporal's JSON converter writes it: ASCII, so a non-ASCII character can take 6 bytes.
    return len(json.dumps(value, separators=(",", ":")))
