"""Driving one test's run on Temporal: answer its actions, move its clocks, send its events.

The run is a real run of the interpreter, on a real (throwaway) Temporal server. The driver
reads its status (``get_status``) and, for runs with ``foreach`` steps, that of every item run
still going (found through Temporal's pending children), and acts on what it sees:

- a new pending action gets the step's next scripted answer: a result or an error through the
  ``submit_result`` update, a timeout through ``update_timeout`` (the action's deadline moves to
  now), a cancellation through ``cancel_workflow``;
- a ``wait`` step ends at once (``update_timeout`` to now);
- a ``wait_for`` step gets the next scripted payload of its event (``send_event``); with none
  left it times out.

So no test waits for real time: an hour's ``wait`` ends in milliseconds. A retry's backoff
cannot be moved that way (the interpreter's ``update_timeout`` does not reach it), so the run
executes a copy of the definition whose retry intervals are a millisecond
(:func:`fast_retries`); nothing else of it changes.

Why a deadline is only moved when it is more than :data:`_MARGIN` away: ``update_timeout`` names
a step, not one wait of it. A backoff (or a ``wait_for`` timeout) about to end on its own may end
before the signal lands, and the signal would then time out the step's *next* action. Letting
the last fraction of a second pass is harmless; timing out an action the test answers is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateStage,
)
from temporalio.exceptions import TemporalError
from temporalio.service import RPCError

from engine.cli.workflowtest._spec import Answer, Problem, TestCase, TestFile, TestFileError
from engine.cli.workflowtest._values import contains, show
from engine.context import OrgContext
from engine.definition import (
    CallStep,
    DefinitionError,
    ForeachStep,
    WaitForStep,
    WaitStep,
    WorkflowDefinition,
    load_definition,
)
from engine.errors import EngineError
from engine.protocol import (
    AWAIT_SUSPENSION,
    CANCEL_WORKFLOW,
    GET_STATUS,
    SEND_EVENT,
    SUBMIT_RESULT,
    UPDATE_TIMEOUT,
    Advance,
    HistoryEntry,
    PendingAction,
    RunStatus,
)
from engine.workflow import Called, resolve_calls, start_workflow

__all__ = ["Drive", "Runnable", "drive", "fast_retries", "runnable"]

FINAL: Final = frozenset({"completed", "failed", "cancelled"})
_MARGIN: Final = 0.25
"""Seconds: a deadline closer than this is left to pass on its own (see the module docstring)."""
_IDLE: Final = 0.005
_IDLE_MAX: Final = 0.04
"""Seconds between two looks at a run that gave the driver nothing to do: from the first to
the second, doubling while it keeps working on its own (every look costs the worker, in this
process, a query)."""
_AGAIN: Final = 1.0
"""Seconds after which a wait that is still there is shortened again."""
_BACKOFF: Final = "1ms"
"""Every retry interval of the definitions tests run (see :func:`fast_retries`)."""


@dataclass(frozen=True)
class Runnable:
    """What a test file's runs execute.

    Attributes:
        definition: The tested definition, with fast retries.
        called: The definitions its call steps run (as the run's input carries them), with
            fast retries.
        by_name: Every one of them by name (to look up the steps of a called run).
    """

    definition: WorkflowDefinition
    called: dict[str, Called]
    by_name: Mapping[str, WorkflowDefinition]


class _NotInTestFileError(EngineError):
    code: ClassVar[str] = "NOT_FOUND"
    reason: ClassVar[str] = "DEFINITION_NOT_FOUND"


class _Callees:
    """The definitions the test file's call steps run, as an org's registry would give them."""

    def __init__(self, test_file: TestFile) -> None:
        self.callees = test_file.callees

    async def get(self, org: OrgContext, name: str, version: int | None) -> WorkflowDefinition:
        found = self.callees.get(name)
        if found is None:
            raise _NotInTestFileError(f"definition '{name}' was not found")
        if version is not None and found.version != version:
            raise _NotInTestFileError(
                f"the test runs version {found.version} of definition '{name}', not {version}"
            )
        return found

    async def pins(self, org: OrgContext, name: str, version: int) -> Mapping[str, int]:
        return {}


async def runnable(test_file: TestFile) -> Runnable:
    """The definitions a test file's runs execute: checked (its call steps and the definitions
    they call), with fast retries.

    Raises:
        TestFileError: A call step does not fit the definition it calls (located in the
            caller's file).
    """
    org = OrgContext(org_id=test_file.org, namespace="default")
    try:
        called = await resolve_calls(_Callees(test_file), org, test_file.definition)
    except DefinitionError as error:
        raise TestFileError(
            Problem(p.source, p.line, p.column, p.message) for p in error.errors
        ) from None
    fast = fast_retries(test_file.definition)
    by_name = {name: fast_retries(d) for name, d in test_file.callees.items()}
    by_name[fast.name] = fast
    return Runnable(fast, _fast_called(called), by_name)


def _fast_called(called: dict[str, Called]) -> dict[str, Called]:
    fast: dict[str, Called] = {}
    for step_id, entry in called.items():
        definition = fast_retries(load_definition(entry["definition"]))
        fast[step_id] = {
            "definition": definition.canonical_json(),
            "hash": definition.content_hash,
            "called": _fast_called(entry["called"]),
        }
    return fast


def fast_retries(definition: WorkflowDefinition) -> WorkflowDefinition:
    """The definition with every retry's ``initial_interval`` and ``max_interval`` (its
    defaults' and its steps') set to a millisecond: the same run, without the backoffs."""
    data = json.loads(definition.canonical_json())

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key == "retry" and isinstance(item, dict):
                    item["initial_interval"] = item["max_interval"] = _BACKOFF
                else:
                    visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    visit(data)
    return load_definition(json.dumps(data), definition.source)


@dataclass
class Drive:
    """How a test's run went.

    Attributes:
        status: The run's last ``get_status`` (its final one, unless the driver stopped it).
        asked: Step id -> the parameters of each action it issued, in the order seen.
        problems: What went wrong with the script itself (an action with no result left, a
            result the run refused, results never asked for, a run that did not end); the
            run was terminated when one made it impossible to go on.
    """

    status: RunStatus | None = None
    asked: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


async def drive(
    client: Client,
    runs: Runnable,
    case: TestCase,
    *,
    org: str,
    task_queue: str,
    timeout: float,
) -> Drive:
    """Run one test: start the run, drive it to its end (or ``timeout`` seconds), report."""
    driver = _Driver(client, runs, case)
    handle = await start_workflow(
        client,
        runs.definition,
        dict(case.inputs),
        org=OrgContext(org_id=org, namespace=client.namespace),
        workflow_id=case.workflow_id,
        task_queue=task_queue,
        called=runs.called or None,
    )
    return await driver.run(handle, timeout)


class _ScriptStopError(Exception):
    """The script cannot go on (its message is the problem)."""


@dataclass
class _Seen:
    """A wait the driver acted on: how many events it sent it, and when it last acted."""

    events: int = 0
    at: float = 0.0
    timed_out: bool = False


class _Driver:
    def __init__(self, client: Client, runs: Runnable, case: TestCase) -> None:
        self.client = client
        self.definitions = runs.by_name
        self.case = case
        self.answers: dict[str, list[Answer]] = {k: list(v) for k, v in case.answers.items()}
        self.given: dict[str, int] = {k: len(v) for k, v in case.answers.items()}
        self.events: dict[str, list[Any]] = {k: list(v) for k, v in case.events.items()}
        self.has_items = any(
            isinstance(step, ForeachStep | CallStep)
            for definition in runs.by_name.values()
            for step in definition.iter_steps()
        )
        self.handled: set[str] = set()
        self.waits: dict[tuple[str, str, int, int], _Seen] = {}
        self.outcome = Drive()

    async def run(self, handle: WorkflowHandle[Any, Any], timeout: float) -> Drive:
        self.last: RunStatus | None = None
        try:
            async with asyncio.timeout(timeout):
                await self.drive_to_end(handle)
        except _ScriptStopError as stop:
            self.outcome.problems.append(str(stop))
            await _terminate(handle, str(stop))
            self.last = await self.status(handle.id) or self.last
        except TimeoutError:
            self.outcome.problems.append(_stuck(self.last, timeout))
            await _terminate(handle, "the test timed out")
        self.outcome.status = self.last
        if not self.outcome.problems:
            self.outcome.problems.extend(self.leftovers())
        return self.outcome

    async def drive_to_end(self, handle: WorkflowHandle[Any, Any]) -> None:
        """Act on what the run shows until it ends (``self.last`` is its last status)."""
        first: Advance = await handle.execute_update(AWAIT_SUSPENSION)
        await self.answer(first["pending_actions"])
        idle = _IDLE
        while True:
            root = await self.status(handle.id)
            if root is not None:
                self.last = root
                if root["status"] in FINAL:
                    return
            acted = False
            if root is not None:
                acted = await self.move_clock(root) | await self.answer(root["pending_actions"])
                if not acted and self.has_items:
                    # Only when the run gave nothing to do: an item's action also reaches the
                    # run's own status, a moment later; an item's wait never does.
                    for item in await self.items(handle.id):
                        acted |= await self.move_clock(item)
                        acted |= await self.answer(item["pending_actions"])
            # Look again at once after acting; back off while the run works on its own.
            idle = _IDLE if acted else min(idle * 2, _IDLE_MAX)
            if not acted:
                await asyncio.sleep(idle)

    # -- reading ----------------------------------------------------------------------------

    async def status(self, workflow_id: str) -> RunStatus | None:
        try:
            status: RunStatus = await self.client.get_workflow_handle(workflow_id).query(GET_STATUS)
        except (RPCError, TemporalError):  # not started yet, or gone
            return None
        return status

    async def items(self, workflow_id: str) -> list[RunStatus]:
        """The statuses of the foreach item runs going on under ``workflow_id``, depth first."""
        if not self.has_items:
            return []
        try:
            described = await self.client.get_workflow_handle(workflow_id).describe()
        except (RPCError, TemporalError):
            return []
        found: list[RunStatus] = []
        for child in described.raw_description.pending_children:
            status = await self.status(child.workflow_id)
            if status is not None and status["status"] not in FINAL:
                found.append(status)
                found.extend(await self.items(child.workflow_id))
        return found

    # -- clocks: wait, wait_for, backoff ----------------------------------------------------

    async def move_clock(self, status: RunStatus) -> bool:
        waiting = status.get("waiting")
        if not waiting:
            return False
        step_id = waiting["step_id"]
        entry = _open_entry(status["history"], step_id)
        count = sum(1 for e in status["history"] if e["step_id"] == step_id)
        attempts = entry["attempts"] if entry is not None else 0
        key = (status["workflow_id"], step_id, count, attempts)
        seen = self.waits.setdefault(key, _Seen())
        step = self.definitions[status["definition"]["name"]].step(step_id)
        handle = self.client.get_workflow_handle(status["workflow_id"])
        if entry is not None and len(entry.get("errors", [])) >= attempts > 0:
            # A retry's backoff: the test's copy of the definition makes it last a millisecond
            # (see _definition), and update_timeout cannot shorten one.
            return False
        if isinstance(step, WaitForStep):
            payloads = self.events.get(step.event)
            if payloads:
                seen.events += 1
                payload = payloads.pop(0)
                event_id = f"{self.case.workflow_id}/{step.event}/{self.given_events(step.event)}"
                await handle.signal(
                    SEND_EVENT,
                    {
                        "name": step.event,
                        "payload": payload,
                        "event_id": event_id,
                        "broadcast": False,
                    },
                )
                return True
        if not isinstance(step, WaitStep) and not _far(waiting.get("until")):
            return False  # about to end on its own (see _MARGIN)
        now = time.monotonic()
        if seen.timed_out and now - seen.at < _AGAIN:
            return False
        seen.timed_out, seen.at = True, now
        await handle.signal(UPDATE_TIMEOUT, args=[step_id, 0])
        return True

    def given_events(self, name: str) -> int:
        return len(self.case.events.get(name, ())) - len(self.events.get(name, ()))

    # -- actions ----------------------------------------------------------------------------

    async def answer(self, pending: Sequence[PendingAction]) -> bool:
        """Answer every action not answered yet, then follow the item and called runs that
        were answered (see :meth:`follow`)."""
        answered = await self.answer_only(pending)
        for workflow_id in dict.fromkeys(answered):
            if workflow_id != self.case.workflow_id:
                await self.follow(workflow_id)
        return bool(answered)

    async def answer_only(self, pending: Sequence[PendingAction]) -> list[str]:
        """Answer every action not answered yet; returns the runs they belong to."""
        answered: list[str] = []
        for action in pending:
            if action["action_id"] in self.handled:
                continue
            self.handled.add(action["action_id"])
            step_id = action["step_id"]
            self.outcome.asked.setdefault(step_id, []).append(action["parameters"])
            await self.perform(action, self.take(step_id, action))
            answered.append(action["workflow_id"])
        return answered

    async def follow(self, workflow_id: str) -> None:
        """Drive an item's (or a called) run on from where the driver just moved it, for as
        long as it has something to act on.

        Its next action reaches the top run's status only after it was reported up, a
        workflow task at each level; its own status has it at once (a query answers after
        the signal or accepted update that moved it on).
        """
        while True:
            status = await self.status(workflow_id)
            if status is None or status["status"] in FINAL:
                return
            moved = await self.move_clock(status)
            answered = await self.answer_only(status["pending_actions"])
            for other in dict.fromkeys(answered):
                if other not in (workflow_id, self.case.workflow_id):
                    await self.follow(other)
            if not (moved or answered):
                return

    def take(self, step_id: str, action: Mapping[str, Any]) -> Answer:
        """The step's next scripted answer that fits the action (removed from the script)."""
        remaining = self.answers.get(step_id, [])
        for index, answer in enumerate(remaining):
            if answer.match is None or contains(action["parameters"], answer.match):
                return remaining.pop(index)
        asked = len(self.outcome.asked[step_id])
        given = self.given.get(step_id, 0)
        where = f"{action['type']}, attempt {action['attempt']}"
        if given == 0:
            raise _ScriptStopError(
                f"step '{step_id}' asked for a result ({where}) but the test gives none"
            )
        if remaining:
            raise _ScriptStopError(
                f"step '{step_id}' asked for a result ({where}) but none of the "
                f"{len(remaining)} left matches its parameters {show(action['parameters'])}"
            )
        times = "once" if given == 1 else f"{given} times"
        raise _ScriptStopError(
            f"step '{step_id}' asked for a result (the {_ordinal(asked)} time; {where}) but "
            f"the test answers it only {times}"
        )

    async def perform(self, action: Mapping[str, Any], answer: Answer) -> None:
        """Answer one action.

        A result goes through the ``submit_result`` update, awaited until the run *accepted*
        it, not until it completed: the update completes when the run next suspends, and a run
        whose parallel branch already waits (for an event, say) may not suspend again until
        the driver acts on that branch. Once accepted, the run's status shows where it went.
        """
        handle = self.client.get_workflow_handle(action["workflow_id"])
        step_id = action["step_id"]
        if answer.kind == "timeout":
            await handle.signal(UPDATE_TIMEOUT, args=[step_id, 0])
            return
        if answer.kind == "cancel":
            root = self.client.get_workflow_handle(self.case.workflow_id)
            await root.signal(CANCEL_WORKFLOW, answer.value)
            return
        submission: dict[str, Any] = {"action_id": action["action_id"]}
        if answer.kind == "error":
            submission["error"] = answer.value
        else:
            submission["result"] = answer.value
        if answer.actor is not None:
            submission["actor"] = dict(answer.actor)
        try:
            await handle.start_update(
                SUBMIT_RESULT, submission, wait_for_stage=WorkflowUpdateStage.ACCEPTED
            )
        except WorkflowUpdateFailedError as refused:
            cause = refused.cause
            message = getattr(cause, "message", None) or str(cause)
            raise _ScriptStopError(
                f"step '{step_id}' refused the test's {answer.kind} (line {answer.line}): {message}"
            ) from None

    # -- the end ----------------------------------------------------------------------------

    def leftovers(self) -> list[str]:
        """Answers and events the test itself gave that the run never asked for."""
        problems: list[str] = []
        for step_id in sorted(self.case.own_answers):
            left = self.answers.get(step_id, [])
            if left:
                used = self.given[step_id] - len(left)
                problems.append(
                    f"step '{step_id}' was given {self.given[step_id]} result(s) but asked for "
                    f"{used} (the first unused is at line {left[0].line})"
                )
        for name in sorted(self.case.own_events):
            left_events = self.events.get(name, [])
            if left_events:
                problems.append(
                    f"event '{name}': {len(left_events)} of {len(self.case.events[name])} "
                    "payload(s) were never taken by a wait_for step"
                )
        return problems


def _open_entry(history: list[HistoryEntry], step_id: str) -> HistoryEntry | None:
    found = [e for e in history if e["step_id"] == step_id and e["finished_at"] is None]
    return found[-1] if found else None


def _far(until: str | None) -> bool:
    """Whether a deadline is more than :data:`_MARGIN` away (or there is none)."""
    if until is None:
        return True
    try:
        moment = datetime.fromisoformat(until)
    except ValueError:
        return True
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - datetime.now(UTC)).total_seconds() > _MARGIN


def _stuck(status: RunStatus | None, timeout: float) -> str:
    if status is None:
        return f"the run did not start within {timeout:g} s"
    where = status.get("current_step")
    waiting = status.get("waiting")
    detail = f" ({waiting['message']})" if waiting and waiting.get("message") else ""
    return f"the run did not end within {timeout:g} s: it is {status['status']}" + (
        f" at step '{where}'{detail}" if where else ""
    )


async def _terminate(handle: WorkflowHandle[Any, Any], reason: str) -> None:
    with contextlib.suppress(RPCError, TemporalError):  # it ended meanwhile
        await handle.terminate(reason=f"enginectl test: {reason}"[:1000])


def _ordinal(number: int) -> str:
    suffix = (
        "th" if 10 <= number % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")
    )
    return f"{number}{suffix}"
