"""``foreach``: the step's block once per item, results in item order.

Items whose block runs entirely in the workflow task (only ``set_state``, ``condition``,
``return``, ``loop``, ``break`` and ``try`` steps, no ``compensate``), up to
:data:`INLINE_ITEMS` of them, run *inline*: inside the run, each with its own copy of the state
and its own step records (a :class:`~engine.workflow._flow.Frame`), exactly as an item's own run
would, but with no child workflow, no history event and no round trip to the server; the whole
fan-out takes one workflow task. Other items run as child runs, at most ``max_parallel`` at
once: their block waits on actions, timers or fan-outs of its own.

The child items that finished are part of the run's position (``run.fanouts``): a run that
continues as new in the middle of a fan-out, or a retry of the step, starts only the items not
finished. (An inline fan-out never spans a continue-as-new: it ends in the task it started in.)
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import Sequence
from typing import Any, Final

from temporalio import workflow
from temporalio.exceptions import CancelledError, ChildWorkflowError

from engine.definition import ForeachStep, StepBase, format_duration
from engine.protocol import ItemError
from engine.workflow._compensation import handed_back
from engine.workflow._flow import (
    Frame,
    RunCancelledError,
    RunFailedError,
    Scope,
    StepFailedError,
    seconds_until,
)
from engine.workflow._record import last_output
from engine.workflow._steps._run import Run

__all__ = ["INLINE_ITEMS", "INLINE_ITEMS_PATCH", "cause_of", "run_foreach", "runs_inline"]

INLINE_ITEMS: Final = 200
"""Most items a foreach runs inline (more run as child runs, whatever their steps)."""
INLINE_ITEMS_PATCH: Final = "foreach-inline-items"
"""The patch under which items that can run inline do (runs before it started children)."""
_INLINE_TYPES: Final = frozenset({"set_state", "condition", "return", "loop", "break", "try"})


async def run_foreach(run: Run, step: ForeachStep, scope: Scope, attempt: int) -> Any:
    """Run the items and collect their results.

    Returns:
        The results in item order (None for an item that failed, with ``on_item_error:
        continue``; the failures are in ``steps.<id>.errors``).

    Raises:
        StepFailedError: Retryable: an item failed (``on_item_error: fail``; the others are
            stopped) or the step's own timeout passed (the items still running are stopped).
        RunCancelledError: The run was cancelled; the items were stopped first.
    """
    items = step.evaluate_items(run.context(step, scope))
    if (
        step.id not in run.fanouts  # a fan-out of children in progress stays one
        and len(items) <= INLINE_ITEMS
        and runs_inline(step.steps)
        and workflow.patched(INLINE_ITEMS_PATCH)
    ):
        return await _inline(run, step, scope, items)
    fanout = run.fanouts.setdefault(step.id, {"results": {}, "errors": []})
    if attempt > 1:
        fanout["errors"] = []  # a retry re-runs the items that failed, not the others
    results: dict[str, Any] = fanout["results"]
    errors: list[ItemError] = fanout["errors"]
    finished = set(results) | {str(e["index"]) for e in errors}
    todo = [i for i in range(len(items)) if str(i) not in finished]
    running: dict[Any, int] = {}
    failure: StepFailedError | None = None
    stopping = False
    # A foreach's own timeout bounds the whole fan-out. `defaults.timeout` is not applied
    # here: it is meant for actions, which the items' steps still get.
    deadline = workflow.now() + step.timeout if step.timeout else None
    run.suspend("running", step.id)
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
                *(
                    run.items.start(
                        run.input, run.definition, step, scope, run.state, items[i], i, attempt
                    )
                    for i in batch
                )
            )
            running.update(zip(handles, batch, strict=True))
            if not running:
                if draining and todo and not stopping and scope.tracked:
                    await run.continue_as_new_if_suggested()
                break

            def settled(stopped: bool = stopping) -> bool:
                return any(task.done() for task in running) or (
                    run.cancel_reason is not None and not stopped
                )

            # Once stopping, the children were asked to end: wait for them, with no timeout
            # (a deadline already passed would make this a zero timeout, and the loop would
            # spin inside one workflow task, never letting their results arrive).
            remaining = None if stopping else seconds_until(deadline)
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    settled, timeout=max(remaining, 0.0) if remaining is not None else None
                )
            if run.cancel_reason is not None and not stopping:
                stopping = True
                await run.items.stop(running, run.cancel_reason)
            elif step.timeout and (seconds_until(deadline) or 0.0) <= 0 and not stopping:
                # The fan-out's own timeout: stop what still runs and fail the step (its
                # on_error decides; a retry re-runs only the unfinished items).
                stopping = True
                failure = StepFailedError(
                    f"timed out after {format_duration(step.timeout)} with "
                    f"{len(running) + len(todo)} item(s) unfinished",
                    retryable=True,
                )
                await run.items.stop(running, "the foreach timed out")
            # In start order, not in the order of a set: replay must see the same order.
            for task in [task for task in running if task.done()]:
                index = running.pop(task)
                run.items.ended(run.items.child_id(step, index, attempt))
                try:
                    outcome = task.result()
                except ChildWorkflowError as error:
                    message = cause_of(error)
                    errors.append({"index": index, "item": items[index], "error": message})
                    run.compensations.extend(handed_back(error))
                    if step.on_item_error == "fail" and not stopping:
                        failure = StepFailedError(f"item {index} failed: {message}", retryable=True)
                        stopping = True
                        await run.items.stop(running, f"item {index} failed")
                    continue
                results[str(index)] = outcome["result"]
                run.compensations.extend(outcome.get("compensations", []))
            await run.publish_actions()
        if run.cancel_reason is not None:
            raise RunCancelledError
        errors.sort(key=lambda error: int(error["index"]))
        run.record.item_errors(step.id, errors)
        if failure is not None:
            raise failure
    finally:
        for task in running:
            task.cancel()
    run.resume(step.id)
    del run.fanouts[step.id]
    return [results.get(str(i)) for i in range(len(items))]


def runs_inline(block: Sequence[StepBase]) -> bool:
    """Whether a block runs entirely in the workflow task (so its items may run inline)."""
    return all(
        step.step_type in _INLINE_TYPES
        and not step.compensate
        and all(runs_inline(inner) for _, inner in step.blocks())
        for step in block
    )


async def _inline(run: Run, step: ForeachStep, scope: Scope, items: list[Any]) -> Any:
    """Run every item inside the run, in order (nothing they do waits, so order is all that
    concurrency would change), each with its own state and step records."""
    results: list[Any] = []
    errors: list[ItemError] = []
    seen = run.state if scope.state is None else {**run.state, **scope.state}
    if step.needs_state is not None:
        seen = {k: v for k, v in seen.items() if k in step.needs_state}
    for index, item in enumerate(items):
        frame = Frame(copy.deepcopy(seen))
        variables = {**scope.variables, step.as_: item, "index": index}
        inner = Scope(variables, scope.state, scope.steps, tracked=False, frame=frame)
        try:
            returned = await run.run_block(step.steps, inner)
        except RunFailedError as failure:
            errors.append({"index": index, "item": item, "error": str(failure)})
            results.append(None)
            if step.on_item_error == "fail":
                run.record.item_errors(step.id, errors)
                raise StepFailedError(f"item {index} failed: {failure}", retryable=True) from None
            continue
        results.append(
            returned.value if returned is not None else last_output(step.steps, frame.steps)
        )
    run.record.item_errors(step.id, errors)
    return results


def cause_of(error: ChildWorkflowError) -> str:
    """Why an item's run failed: the innermost cause's message."""
    cause = error.cause
    while isinstance(cause, ChildWorkflowError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, CancelledError):
        return f"cancelled: {cause.message}"
    return str(cause.message if hasattr(cause, "message") else cause) if cause else str(error)
