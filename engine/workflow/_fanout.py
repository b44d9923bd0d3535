"""Child runs (foreach items, called definitions): starting and stopping them, and the actions
they report.

A foreach step runs each item as a child workflow in the same namespace (``{run}/{step}/{index}``,
``/attempt-N`` after a retry); a call step runs the definition it calls as one
(``{run}/{step}``). A child tells its parent which actions wait in its subtree with numbered
``report_actions`` signals, so that the parent's status lists the actions of the whole tree, and
the inbox is complete.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, TypedSearchAttributes

from engine.definition import CallStep, ForeachStep, InputError, load_definition
from engine.protocol import CANCEL_WORKFLOW, REPORT_ACTIONS, PendingAction
from engine.workflow._flow import Scope, StepFailedError
from engine.workflow._search import search_attributes
from engine.workflow._types import ChildReport, RunInput

__all__ = ["ItemRuns"]


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

    def child_id(self, step: ForeachStep, index: int, attempt: int) -> str:
        """The workflow id of an item's run (a retry of the step gets new ids)."""
        suffix = f"/attempt-{attempt}" if attempt > 1 else ""
        return f"{self.workflow_id}/{step.id}/{index}{suffix}"

    async def start(
        self,
        parent: RunInput,
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
        child_input = RunInput(
            definition=parent.definition,
            definition_hash=parent.definition_hash,
            inputs=parent.inputs,
            org=parent.org,
            scope={"foreach": step.id, "vars": variables, "state": state},
            lease=parent.lease,
            called=parent.called,
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
        """Tell the parent (when this run is a foreach item) which actions wait in it."""
        if self.parent_id is None:
            return
        self.reports += 1
        report: ChildReport = {
            "workflow_id": self.workflow_id,
            "actions": actions,
            "report": self.reports,
        }
        await workflow.get_external_workflow_handle(self.parent_id).signal(REPORT_ACTIONS, report)
