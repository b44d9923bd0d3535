"""Following a run live: each step as it ends, each action it waits for, fan-out progress."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from typing import Any, Final, TextIO

from engine.api.v1 import definition_service_pb2, resources_pb2, workflow_service_pb2
from engine.cli.enginectl._client import CliError, EngineClient
from engine.cli.enginectl._common import EXIT_INVALID, EXIT_OK, PAGE, json_output
from engine.cli.enginectl._output import (
    TERMINAL,
    action_line,
    elapsed,
    emit,
    error_text,
    local_time,
    outcome,
    print_json,
    run_status,
    value_json,
)
from engine.errors import EngineError
from engine.wire import from_struct

__all__ = ["ForeachProgress", "RunFollower", "follow"]


def follow(
    args: argparse.Namespace, client: EngineClient, workflow_id: str, inputs: Mapping[str, Any]
) -> int:
    """Watch the run until it ends; 0 when it completed, 1 when it failed or was cancelled."""
    follower = RunFollower(sys.stdout, _ItemsDone(client, inputs))
    last: resources_pb2.Workflow | None = None
    request = workflow_service_pb2.WatchWorkflowRequest(workflow_id=workflow_id)
    try:
        for response in client.stream(client.workflows.WatchWorkflow, request):
            last = response.workflow
            if json_output(args):
                print_json(response, sys.stdout, compact=True)
                sys.stdout.flush()
            else:
                follower.update(response.workflow)
    except KeyboardInterrupt:
        print(f"stopped following; the run goes on (enginectl get {workflow_id})", file=sys.stderr)
        raise
    if last is None or last.status not in TERMINAL:
        raise CliError(
            f"the watch of run {workflow_id} ended before the run did; "
            f"see 'enginectl get {workflow_id}'"
        )
    return EXIT_OK if last.status == resources_pb2.RUN_STATUS_COMPLETED else EXIT_INVALID


class _ItemsDone:
    """How many items of a running foreach are done, out of how many.

    The API's status does not carry this, so it is pieced together: the items done are the
    item runs (children ``{run}/{step}/{index}``) that visibility lists as closed; the total
    is the definition's ``items`` evaluated with the run's inputs and state when that works,
    else the number of item runs started so far.
    """

    def __init__(self, client: EngineClient, inputs: Mapping[str, Any]) -> None:
        self.client = client
        self.inputs = dict(inputs)
        self._totals: dict[tuple[str, str], int | None] = {}

    def __call__(self, workflow: resources_pb2.Workflow, step_id: str) -> tuple[int, int] | None:
        try:
            items = self._items(workflow.workflow_id, step_id)
        except CliError:
            return None
        key = (workflow.workflow_id, step_id)
        if key not in self._totals:
            self._totals[key] = self._total(workflow, step_id)
        total = max(self._totals[key] or 0, len(items))
        if total == 0:
            return None
        return sum(items.values()), total

    def _items(self, workflow_id: str, step_id: str) -> dict[str, bool]:
        """Item index -> whether its latest attempt has ended."""
        prefix = f"{workflow_id}/{step_id}/"
        quoted = workflow_id.replace("\\", "\\\\").replace("'", "\\'")
        request = workflow_service_pb2.ListWorkflowsRequest(
            include_children=True, query=f"ParentWorkflowId = '{quoted}'", page_size=PAGE
        )
        page = self.client.call(self.client.workflows.ListWorkflows, request)
        latest: dict[str, tuple[int, bool]] = {}
        for run in page.workflows:
            if not run.workflow_id.startswith(prefix):
                continue
            index, _, suffix = run.workflow_id[len(prefix) :].partition("/")
            attempt = int(suffix.removeprefix("attempt-")) if suffix.startswith("attempt-") else 1
            ended = run.status in TERMINAL
            if index not in latest or attempt > latest[index][0]:
                latest[index] = (attempt, ended)
        return {index: ended for index, (_, ended) in latest.items()}

    def _total(self, workflow: resources_pb2.Workflow, step_id: str) -> int | None:
        if not workflow.definition_name:
            return None
        # The definition language, loaded only when a run with a fan-out is followed.
        from engine.definition import ForeachStep, load_definition

        request = definition_service_pb2.GetDefinitionRequest(
            name=workflow.definition_name, version=workflow.definition_version
        )
        try:
            record = self.client.call(self.client.definitions.GetDefinition, request)
            definition = load_definition(record.definition.yaml)
            step = definition.step(step_id)
            if not isinstance(step, ForeachStep):
                return None
            context = {
                "inputs": definition.validate_inputs(self.inputs),
                "state": from_struct(workflow.state),
                "steps": {},
                "workflow": {"id": workflow.workflow_id},
                "org": {"id": workflow.org_id},
            }
            return len(step.evaluate_items(context))
        except (CliError, EngineError, KeyError, ValueError, TypeError):
            # Items that read steps, foreach variables or hidden state: count the runs instead.
            return None


_STEP_WIDTH: Final = 20
_TYPE_WIDTH: Final = 10

ForeachProgress = Callable[[resources_pb2.Workflow, str], "tuple[int, int] | None"]
"""``(done, total)`` items of a running foreach step of a run, when they can be found."""


class RunFollower:
    """Prints a run as it moves: each step as it ends, each action it waits for, the end.

    Feed it every status of the run (``WatchWorkflow``'s stream) through :meth:`update`.

    Args:
        out: Where to print.
        progress: Finds the items done and the total of a running foreach step.
    """

    def __init__(self, out: TextIO, progress: ForeachProgress | None = None) -> None:
        self.out = out
        self.progress = progress
        self._steps_done: set[tuple[str, str]] = set()
        self._running: set[tuple[str, str]] = set()
        self._actions: set[str] = set()
        self._waits: set[tuple[str, str]] = set()
        self._progress: dict[str, tuple[int, int]] = {}
        self.status: int = resources_pb2.RUN_STATUS_UNSPECIFIED

    def _print(self, line: str) -> None:
        emit(line, self.out)
        self.out.flush()

    def update(self, workflow: resources_pb2.Workflow) -> None:
        """Print what changed since the last status."""
        for record in workflow.history:
            key = (record.step_id, record.start_time.ToJsonString())
            if record.outcome != resources_pb2.STEP_OUTCOME_UNSPECIFIED:
                if key not in self._steps_done:
                    self._steps_done.add(key)
                    self._print(self.step_line(record))
            elif record.type == "foreach":
                self._foreach(workflow, record, key)
        for action in workflow.pending_actions:
            if action.action_id not in self._actions:
                self._actions.add(action.action_id)
                self._print(self.action_line(action, workflow.workflow_id))
        if workflow.HasField("waiting"):
            wait = workflow.waiting
            key = (wait.step_id, wait.until.ToJsonString())
            if key not in self._waits:
                self._waits.add(key)
                line = f"waiting: timer {wait.step_id} until {local_time(wait, 'until')}"
                self._print(line + (f": {wait.message}" if wait.message else ""))
        self.status = workflow.status
        if workflow.status in TERMINAL:
            self._print(self.end_line(workflow))

    def _foreach(
        self,
        workflow: resources_pb2.Workflow,
        record: resources_pb2.StepRecord,
        key: tuple[str, str],
    ) -> None:
        if key not in self._running:
            self._running.add(key)
            self._print(f"running: {record.step_id} (foreach)")
        found = self.progress(workflow, record.step_id) if self.progress else None
        if found is not None and found != self._progress.get(record.step_id):
            self._progress[record.step_id] = found
            done, total = found
            self._print(f"{record.step_id}: {done}/{total} items")

    @staticmethod
    def step_line(record: resources_pb2.StepRecord) -> str:
        """``  build               shell      completed  1.25s`` (and the error of a failure)."""
        parts = [
            "  " + record.step_id.ljust(_STEP_WIDTH),
            (record.type or "").ljust(_TYPE_WIDTH),
            outcome(record.outcome),
        ]
        took = elapsed(record, "start_time", "finish_time")
        if took and record.outcome != resources_pb2.STEP_OUTCOME_SKIPPED:
            parts.append(took)
        if record.attempts > 1:
            parts.append(f"({record.attempts} attempts)")
        line = " ".join(parts[:2]) + " " + "  ".join(parts[2:])
        if record.error:
            line += f": {record.error}"
        return line

    action_line = staticmethod(action_line)

    @staticmethod
    def end_line(workflow: resources_pb2.Workflow) -> str:
        """``completed: result <json>``, ``failed: <error>`` or ``cancelled: <error>``."""
        status = run_status(workflow.status)
        if workflow.status == resources_pb2.RUN_STATUS_COMPLETED:
            return f"{status}: result {value_json(workflow.result)}"
        return f"{status}: {error_text(status, workflow.error)}"
