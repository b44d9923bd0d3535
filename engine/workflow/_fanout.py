"""Child runs (foreach items, called definitions): starting and stopping them, and the actions
they report.

A foreach step runs each item as a child workflow in the same namespace (``{run}/{step}/{index}``,
``/attempt-N`` after a retry); a call step runs the definition it calls as one
(``{run}/{step}``). A child tells its parent which actions wait in its subtree with numbered
``report_actions`` signals, so that the parent's status lists the actions of the whole tree, and
the inbox is complete.

An item's run carries only what its steps need (behind :data:`LIGHTER_ITEMS`): the definition
cut down to the foreach step (the steps outside it reduced to placeholders that keep their ids,
so that the item's references to them still check), the inputs its steps read, and the called
definitions of the call steps inside it. A fan-out's history used to repeat the whole definition
and every input, the list being fanned out included, once per item.

A report is sent in the background (behind :data:`REPORTS_IN_BACKGROUND`): the child goes on
while its signal travels, instead of waiting a round trip through the server at every action,
and the changes made meanwhile go up as one report, the latest, once the signal in flight is
delivered. Before the child continues as new or ends it waits for its last report to be
delivered, so that its parent never keeps actions the child no longer has.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Final

from temporalio import workflow
from temporalio.common import RetryPolicy, TypedSearchAttributes

from engine.definition import (
    CallStep,
    ForeachStep,
    InputError,
    StepBase,
    WorkflowDefinition,
    load_definition,
)
from engine.protocol import CANCEL_WORKFLOW, REPORT_ACTIONS, PendingAction
from engine.workflow._flow import Scope, StepFailedError
from engine.workflow._search import search_attributes
from engine.workflow._types import Called, ChildReport, RunInput

__all__ = ["LIGHTER_ITEMS", "REPORTS_IN_BACKGROUND", "ItemRuns", "item_definition"]

LIGHTER_ITEMS: Final = "lighter-items"
"""The patch under which an item's run carries only what its steps need."""

REPORTS_IN_BACKGROUND: Final = "reports-in-background"
"""The patch under which a child's reports to its parent no longer hold the child up."""


class ItemRuns:
    """The runs of a run's foreach items, and the run's own reports to its parent.

    Args:
        workflow_id: This run's workflow id (its items' ids derive from it).
        parent_id: The parent's workflow id when this run is itself a foreach item.
        reports: The number of the last report sent to the parent (carried over by
            continue-as-new, so numbers keep growing).
    """

    def __init__(self, workflow_id: str, parent_id: str | None, reports: int) -> None:
        self.workflow_id = workflow_id
        self.parent_id = parent_id
        self.reports = reports
        # Running items -> the number of the last report taken from each. Signals from one
        # sender may arrive out of order, and late ones from a finished item at all.
        self._last_report: dict[str, int] = {}
        self._actions: dict[str, list[PendingAction]] = {}
        # The latest report not sent yet, and the task sending reports (see the module's doc).
        self._unsent: list[PendingAction] | None = None
        self._sender: asyncio.Task[None] | None = None
        # Foreach step id -> what its items' runs carry (the same for every item).
        self._item_parts: dict[str, _ItemParts] = {}

    def child_id(self, step: ForeachStep, index: int, attempt: int) -> str:
        """The workflow id of an item's run (a retry of the step gets new ids)."""
        suffix = f"/attempt-{attempt}" if attempt > 1 else ""
        return f"{self.workflow_id}/{step.id}/{index}{suffix}"

    async def start(
        self,
        parent: RunInput,
        definition: WorkflowDefinition,
        step: ForeachStep,
        scope: Scope,
        state: dict[str, Any],
        item: Any,
        index: int,
        attempt: int,
    ) -> Any:
        """Start an item's run of ``step.steps`` with the item in scope; returns its handle."""
        variables = dict(scope.variables)
        variables[step.as_] = item
        variables["index"] = index
        if step.needs_state is not None:
            state = {k: v for k, v in state.items() if k in step.needs_state}
        text, called, inputs = parent.definition, parent.called, parent.inputs
        if workflow.patched(LIGHTER_ITEMS):
            parts = self._item_parts.get(step.id)
            if parts is None:  # the same for every item of the step: made once
                parts = self._item_parts[step.id] = _item_parts(definition, step, parent)
            text, called, inputs = parts
        child_input = RunInput(
            definition=text,
            definition_hash=parent.definition_hash,
            inputs=inputs,
            org=parent.org,
            scope={"foreach": step.id, "vars": variables, "state": state},
            lease=parent.lease,
            called=called,
            notify=parent.notify,
            trace=parent.trace,
        )
        info = workflow.info()
        return await self._start(
            info.workflow_type,
            child_input,
            self.child_id(step, index, attempt),
            info.typed_search_attributes,
        )

    async def call(
        self, parent: RunInput, step: CallStep, inputs: dict[str, Any], attempt: int
    ) -> Any:
        """Start the run of the definition a ``call`` step calls; returns its handle.

        Its id is ``{run}/{step}`` (``/attempt-N`` after a retry); it reports its pending
        actions here, as a foreach item does.

        Raises:
            StepFailedError: The run carries no definition for the step (a run started before
                its definition could call), or the inputs do not fit the called definition.
        """
        called = (parent.called or {}).get(step.id)
        if called is None:
            raise StepFailedError(
                f"the run carries no definition for call step '{step.id}' (it was started "
                "before the step existed): start a new run"
            )
        callee = load_definition(called["definition"])
        try:
            validated = callee.validate_inputs(inputs)
        except InputError as error:
            raise StepFailedError(
                f"the inputs of definition '{callee.name}' (version {callee.version}) do not "
                f"fit: {error}"
            ) from None
        child_input = RunInput(
            definition=called["definition"],
            definition_hash=called["hash"],
            inputs=validated,
            org=parent.org,
            lease=parent.lease,
            called=called["called"],
            notify=parent.notify,
            trace=parent.trace,
        )
        suffix = f"/attempt-{attempt}" if attempt > 1 else ""
        org_id = str(parent.org.get("org_id", ""))
        return await self._start(
            callee.workflow_type,
            child_input,
            f"{self.workflow_id}/{step.id}{suffix}",
            search_attributes(org_id, callee.name, "running"),
            memo={"definition_hash": called["hash"], "org_id": org_id},
        )

    async def _start(
        self,
        workflow_type: str,
        child_input: RunInput,
        child_id: str,
        attributes: TypedSearchAttributes,
        memo: dict[str, Any] | None = None,
    ) -> Any:
        """Start a child run on this run's task queue: cancelled with its parent (which waits
        for it to end), never retried by Temporal (its steps retry)."""
        # Known before it starts: its first report may come with the news that it started.
        self._last_report[child_id] = 0
        return await workflow.start_child_workflow(
            workflow_type,
            child_input,
            id=child_id,
            task_queue=workflow.info().task_queue,
            parent_close_policy=workflow.ParentClosePolicy.REQUEST_CANCEL,
            cancellation_type=workflow.ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
            search_attributes=attributes,
            memo=memo,
            retry_policy=RetryPolicy(maximum_attempts=1),
        )

    def ended(self, child_id: str) -> None:
        """An item's run ended: its reports no longer count."""
        self._actions.pop(child_id, None)
        self._last_report.pop(child_id, None)

    async def stop(self, handles: Any, reason: str) -> None:
        """Ask running items to stop; the caller still waits for each to end.

        The ``cancel_workflow`` signal, unlike a Temporal cancellation, lets an item end on
        its own terms and hand back the compensations of the steps it completed: a sibling of
        a failed item may already have changed the world, and the parent must be able to undo
        it.
        """

        async def stop(handle: Any) -> None:
            # An item may end before the signal reaches it; then there is nothing to stop.
            with contextlib.suppress(Exception):
                await handle.signal(CANCEL_WORKFLOW, reason)

        await asyncio.gather(*(stop(handle) for handle in handles))

    def take(self, report: dict[str, Any]) -> bool:
        """Keep an item's report of its pending actions, unless it is stale; True if kept."""
        child = str(report.get("workflow_id", ""))
        number = report.get("report")
        actions = report.get("actions")
        if not isinstance(actions, list) or not isinstance(number, int):
            return False  # not from an item of this engine: a bad signal must not break the run
        if number <= self._last_report.get(child, number):
            return False  # older than one already taken, or from an item no longer running
        self._last_report[child] = number
        if actions:
            self._actions[child] = actions
        else:
            self._actions.pop(child, None)
        return True

    def reported(self) -> Iterator[PendingAction]:
        """The pending actions the running items reported, item by item."""
        for actions in self._actions.values():
            yield from actions

    def forget_reports(self) -> None:
        """The run ended: items stopped along with it report nothing more that waits."""
        self._actions.clear()

    async def report_to_parent(self, actions: list[PendingAction]) -> None:
        """Tell the parent (when this run is a foreach item) which actions wait in it: in the
        background, unless the run started before :data:`REPORTS_IN_BACKGROUND`."""
        if self.parent_id is None:
            return
        if not workflow.patched(REPORTS_IN_BACKGROUND):
            await self._send(actions)
            return
        self._unsent = actions
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_unsent())

    async def reports_delivered(self) -> None:
        """Wait until the parent has every report sent so far: before this run continues as
        new or ends (a signal still travelling would make Temporal refuse the ending, and its
        parent would show actions this run no longer has until it saw the run end)."""
        sender = self._sender
        if sender is not None and not sender.done():  # (no await otherwise: replays unchanged)
            await workflow.wait_condition(sender.done)

    async def _send_unsent(self) -> None:
        while self._unsent is not None:
            actions, self._unsent = self._unsent, None
            try:
                await self._send(actions)
            except Exception as error:  # the parent has ended: nobody reads the report
                workflow.logger.warning("report to %s not delivered: %s", self.parent_id, error)

    async def _send(self, actions: list[PendingAction]) -> None:
        assert self.parent_id is not None
        self.reports += 1
        report: ChildReport = {
            "workflow_id": self.workflow_id,
            "actions": actions,
            "report": self.reports,
        }
        await workflow.get_external_workflow_handle(self.parent_id).signal(REPORT_ACTIONS, report)


def _subtree(step: StepBase) -> Iterator[StepBase]:
    yield step
    yield from step.nested_steps()


_ItemParts = tuple[str, dict[str, Called] | None, dict[str, Any]]


def _item_parts(definition: WorkflowDefinition, step: ForeachStep, parent: RunInput) -> _ItemParts:
    """What every item's run of ``step`` carries: the cut definition, the called definitions of
    the call steps inside it, and the inputs its item steps read (an item does not evaluate
    the foreach's own fields, such as the ``items`` that often read the list fanned out)."""
    inside = {nested.id for nested in _subtree(step)}
    kept = {key: value for key, value in (parent.called or {}).items() if key in inside}
    names = _names(step.nested_steps(), "inputs")
    inputs = parent.inputs
    if names is not None:
        inputs = {k: v for k, v in inputs.items() if k in names}
    return item_definition(definition, step.id), kept or None, inputs


def item_definition(definition: WorkflowDefinition, foreach_id: str) -> str:
    """The definition cut down to what the items of foreach ``foreach_id`` run: the foreach
    step whole, the steps that contain it with their other blocks cut down, placeholders for
    the other steps the kept ones refer to (``steps.<id>``), and only the inputs they read;
    fields at their defaults are left out.

    It loads (the item's references to steps outside, its enclosing foreach's variables and
    loops still check), and its foreach step is the original's.
    """
    foreach = definition.step(foreach_id)
    around = [
        s for s in definition.iter_steps() if any(n.id == foreach_id for n in s.nested_steps())
    ]
    kept = [*_subtree(foreach), *around]
    data = json.loads(definition.canonical_json())
    data["state"] = {}
    data.pop("description", None)
    data["steps"] = _cut(definition.steps, data["steps"], foreach_id, _names(kept, "steps"))
    read = _names(kept, "inputs")
    if read is not None:
        data["inputs"] = {k: v for k, v in data["inputs"].items() if k in read}
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def _names(steps: Iterable[StepBase], root: str) -> set[str] | None:
    """The keys the steps' expressions read under ``root`` (``inputs``, ``steps``); None: any
    (one reads a computed key)."""
    names: set[str] = set()
    for step in steps:
        for reference in step.references:
            if reference.root == root:
                if reference.key is None:
                    return None
                names.add(reference.key)
    return names


def _cut(
    steps: Sequence[StepBase], raw: list[Any], foreach_id: str, wanted: set[str] | None
) -> list[Any]:
    """A block cut down around the foreach (see :func:`item_definition`); empty only if it
    was."""
    kept: list[Any] = []
    for step, raw_step in zip(steps, raw, strict=True):
        if step.id == foreach_id:
            kept.append(_slim(step, raw_step))
        elif any(nested.id == foreach_id for nested in step.nested_steps()):
            _each_block(
                step, raw_step, lambda block, raw_block: _cut(block, raw_block, foreach_id, wanted)
            )
            kept.append(raw_step)
        else:
            kept.extend(
                _placeholder(nested.id)
                for nested in _subtree(step)
                if wanted is None or nested.id in wanted
            )
    return kept if kept or not steps else [_placeholder(steps[0].id)]


def _placeholder(step_id: str) -> dict[str, Any]:
    """A step that stands for one the item never runs (so that references to it check)."""
    return {"id": step_id, "type": "set_state", "set": {"_": None}}


def _slim(step: StepBase, raw_step: dict[str, Any]) -> dict[str, Any]:
    """The step's JSON without the fields that are empty (null, [], {}) by default."""
    for name, field in type(step).model_fields.items():
        key = field.alias or name
        value = raw_step.get(key, ...)
        if (
            value in (None, [], {})
            and not field.is_required()
            and value == field.get_default(call_default_factory=True)
        ):
            del raw_step[key]
    _each_block(step, raw_step, lambda block, raw_block: list(map(_slim, block, raw_block)))
    return raw_step


def _each_block(step: StepBase, raw_step: dict[str, Any], change: Any) -> None:
    """Replace each block of ``raw_step`` (a step's JSON) with ``change(block, raw_block)``."""
    for name, block in step.blocks():
        field, _, branch = name.partition(".")
        holder: Any = raw_step.get(field)
        if branch:
            holder[branch] = change(block, holder[branch])
        elif holder is not None:
            raw_step[field] = change(block, holder)
