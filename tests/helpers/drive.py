"""A generic driver: run a workflow (and its foreach tree) to its end with scripted answers.

Tests and the replay recorder (``tests/replay/record.py``) script a run as a map from step id
to an answer. The driver loops: it reads the run's status and the status of every foreach child
it can find; answers each pending action it has not answered yet (through the ``submit_result``
update, or the signal when the answer is wrapped in :class:`Signal`); shortens every ``wait`` it
sees with ``update_timeout``; and stops when the run is completed, failed or cancelled.

An answer is a value (the result), :class:`Fail` (submit an error instead), :class:`Signal`
(submit through the signal), :data:`LATER` (not yet: ask again on the next round), or a callable
that takes the pending action (a dict) and returns any of those.

With ``claimed_types``, actions of those types are performed as an executor does instead: the
driver polls the action's task queue (``engine.protocol.action_queue``) and completes (or fails)
the activity task, the way the control plane does for executors.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from temporalio.api.common.v1 import Payloads
from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    PollActivityTaskQueueRequest,
    PollActivityTaskQueueResponse,
    RespondActivityTaskCompletedRequest,
    RespondActivityTaskFailedRequest,
)
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle

from engine.definition import CallStep, WaitForStep, WorkflowDefinition
from engine.protocol import ACTION_FAILED, SEND_EVENT, action_queue
from tests.helpers.runs import status as query_status

__all__ = [
    "FINAL_STATUSES",
    "LATER",
    "Answered",
    "Drive",
    "Event",
    "Fail",
    "Signal",
    "drive",
]

FINAL_STATUSES: Final = frozenset({"completed", "failed", "cancelled"})


class _Later:
    def __repr__(self) -> str:
        return "LATER"


LATER: Final = _Later()
"""An answer that means "not yet": the action stays pending and is offered again next round."""


@dataclass(frozen=True)
class Fail:
    """Submit ``{"action_id", "error": message}``: the executor could not perform the action."""

    message: str


@dataclass(frozen=True)
class Event:
    """Send ``payload`` as the event a ``wait_for`` step waits for (``send_event``), once the
    run waits at that step."""

    payload: Any


@dataclass(frozen=True)
class Signal:
    """Submit ``answer`` (a value or :class:`Fail`) through the ``submit_result`` signal."""

    answer: Any


Answer = Any
"""A value, :class:`Fail`, :class:`Signal`, :data:`LATER`, or a callable of the action."""


@dataclass
class Answered:
    """One action the driver answered, in the order it answered them.

    Attributes:
        action: The pending action as the status showed it.
        result: The result submitted (``None`` when an error was).
        error: The error submitted, if any.
        via: ``"update"``, ``"signal"`` or ``"claim"`` (performed as an executor).
        advance: What the update answered (where that workflow went next); ``None`` for signals.
    """

    action: dict[str, Any]
    result: Any
    error: str | None
    via: str
    advance: dict[str, Any] | None = None

    @property
    def step_id(self) -> str:
        step_id: str = self.action["step_id"]
        return step_id

    @property
    def workflow_id(self) -> str:
        workflow_id: str = self.action["workflow_id"]
        return workflow_id

    @property
    def params(self) -> dict[str, Any]:
        """The ``params`` of an mcp_call action (``{}`` for other types)."""
        params: dict[str, Any] = self.action["parameters"].get("params") or {}
        return params


@dataclass
class Drive:
    """How a driven run ended.

    Attributes:
        status: The root run's final ``get_status``.
        answered: Every action answered, in order.
        workflows: Every workflow of the tree the driver saw: the root first, then foreach
            children in the order they were found.
        result: The run's result (``None`` if it did not complete).
        failure: The error :meth:`WorkflowHandle.result` raised, if the run did not complete.
        shortened: ``(workflow_id, step_id)`` of every ``wait`` shortened, in order.
    """

    status: dict[str, Any]
    answered: list[Answered]
    workflows: list[str]
    result: Any = None
    failure: WorkflowFailureError | None = None
    shortened: list[tuple[str, str]] = field(default_factory=list)

    def steps(self) -> list[str]:
        """The step ids answered, in order."""
        return [a.step_id for a in self.answered]

    def of(self, step_id: str) -> list[Answered]:
        """The answered actions of one step, in order."""
        return [a for a in self.answered if a.step_id == step_id]

    @property
    def failure_message(self) -> str:
        """The message of the failure that ended the run (its innermost cause)."""
        assert self.failure is not None, f"the run did not fail: {self.status}"
        error: BaseException | None = self.failure
        while error is not None and error.__cause__ is not None:
            error = error.__cause__
        return str(getattr(error, "message", error))


async def drive(
    client: Client,
    handle: WorkflowHandle[Any, Any],
    definition: WorkflowDefinition,
    answers: Mapping[str, Answer],
    *,
    timeout: float = 30.0,
    log: list[Answered] | None = None,
    claimed_types: frozenset[str] = frozenset(),
    task_queue: str = "",
) -> Drive:
    """Answer every pending action of the run's tree with ``answers`` until the run ends.

    Args:
        client: A client of the run's namespace.
        handle: The root run.
        definition: Its definition (to know which steps are foreach steps).
        answers: Step id -> answer (see the module docstring).
        timeout: Seconds until the driver gives up and fails with the last status it saw.
        log: A list the driver appends each :class:`Answered` to as it goes, so that callable
            answers can look at what was answered before them.
        claimed_types: Action types performed as an executor (claimed from their queues).
        task_queue: The runs' task queue (with ``claimed_types``: the queues derive from it).

    Raises:
        AssertionError: A pending action has no scripted answer, or the run did not end in time.
    """
    driver = _Driver(client, handle, definition, answers, log if log is not None else [])
    driver.claimed_types = claimed_types
    driver.task_queue = task_queue
    return await driver.run(timeout)


class _Driver:
    def __init__(
        self,
        client: Client,
        handle: WorkflowHandle[Any, Any],
        definition: WorkflowDefinition,
        answers: Mapping[str, Answer],
        log: list[Answered],
    ) -> None:
        self.client = client
        self.handle = handle
        self.answers = answers
        self.log = log
        self.foreach_steps: set[str] = set()
        self.call_steps: set[str] = set()
        self.events: dict[str, str] = {}  # wait_for step id -> the event it waits for
        self._learn(definition)
        self.handled: set[str] = set()  # action ids answered (or being answered)
        self.finished: set[str] = set()  # children seen in a final status: not asked again
        self.workflows: list[str] = [handle.id]
        self.shortened: list[tuple[str, str]] = []
        self.claimed_types: frozenset[str] = frozenset()
        self.task_queue = ""
        self.polled: dict[str, PollActivityTaskQueueResponse] = {}

    def _learn(self, definition: WorkflowDefinition, seen: frozenset[str] = frozenset()) -> None:
        """Note the foreach and call steps of a definition and of those it calls (examples)."""
        from tests.helpers.example_scripts import load_example  # it imports this module

        for step in definition.iter_steps():
            if step.step_type == "foreach":
                self.foreach_steps.add(step.id)
            elif isinstance(step, WaitForStep):
                self.events[step.id] = step.event
            elif isinstance(step, CallStep):
                self.call_steps.add(step.id)
                if step.definition not in seen:
                    called = load_example(step.definition)
                    self._learn(called, seen | {definition.name, step.definition})

    async def run(self, timeout: float) -> Drive:
        deadline = time.monotonic() + timeout
        root: dict[str, Any] = {}
        while True:
            try:
                root = await query_status(self.client, self.handle.id)
            except Exception:  # the run has not had its first workflow task yet
                root = {}
            if root.get("status") in FINAL_STATUSES:
                break
            acted = False
            if root:
                tree = [root, *await self.children(root)]
                acted |= await self.shorten_waits(tree)
                acted |= await self.answer_actions(tree)
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"run {self.handle.id} did not end within {timeout}s; answered "
                    f"{[a.step_id for a in self.log]}; last status: {root}"
                )
            if not acted:
                await asyncio.sleep(0.02)
        ended = Drive(
            status=root, answered=list(self.log), workflows=self.workflows, shortened=self.shortened
        )
        try:
            ended.result = await self.handle.result()
        except WorkflowFailureError as failure:
            ended.failure = failure
        return ended

    async def children(self, parent: dict[str, Any]) -> list[dict[str, Any]]:
        """The statuses of the running foreach children under ``parent``, recursively.

        Children of a foreach step are ``{parent}/{step}/{index}``, started in index order, so
        the first index with no workflow (or none that answers yet) ends the search.
        """
        step_id = parent.get("current_step")
        if parent.get("status") in FINAL_STATUSES:
            return []
        if step_id in self.call_steps:
            return await self.called(f"{parent['workflow_id']}/{step_id}")
        if step_id not in self.foreach_steps:
            return []
        found: list[dict[str, Any]] = []
        index = 0
        while True:
            child_id = f"{parent['workflow_id']}/{step_id}/{index}"
            index += 1
            if child_id in self.finished:
                continue
            try:
                child = await query_status(self.client, child_id)
            except Exception:
                return found
            if child_id not in self.workflows:
                self.workflows.append(child_id)
            if child["status"] in FINAL_STATUSES:
                self.finished.add(child_id)
                continue
            found.append(child)
            found.extend(await self.children(child))

    async def called(self, child_id: str) -> list[dict[str, Any]]:
        """The status of the run a call step started, and of its own children."""
        if child_id in self.finished:
            return []
        try:
            child = await query_status(self.client, child_id)
        except Exception:
            return []
        if child_id not in self.workflows:
            self.workflows.append(child_id)
        if child["status"] in FINAL_STATUSES:
            self.finished.add(child_id)
            return []
        return [child, *await self.children(child)]

    async def shorten_waits(self, tree: list[dict[str, Any]]) -> bool:
        """Shorten each wait to nothing; send a wait_for step its scripted event."""
        acted = False
        for status in tree:
            waiting = status.get("waiting")
            if not waiting:
                continue
            key = (status["workflow_id"], waiting["step_id"])
            if key in self.shortened:
                continue
            self.shortened.append(key)
            handle = self.client.get_workflow_handle(status["workflow_id"])
            answer = self.answers.get(waiting["step_id"])
            if isinstance(answer, Event):
                event = {
                    "name": self.events[waiting["step_id"]],
                    "payload": answer.payload,
                    "event_id": f"{status['workflow_id']}/{waiting['step_id']}",
                    "broadcast": False,
                }
                await handle.signal(SEND_EVENT, event)
            else:
                await handle.signal("update_timeout", args=[waiting["step_id"], 0])
            acted = True
        return acted

    async def answer_actions(self, tree: list[dict[str, Any]]) -> bool:
        acted = False
        pending: dict[str, dict[str, Any]] = {}
        for status in tree:
            for action in status["pending_actions"]:
                pending.setdefault(action["action_id"], action)
        for action in pending.values():
            if action["action_id"] in self.handled:
                continue
            if action["workflow_id"] not in self.workflows:
                self.workflows.append(action["workflow_id"])
            step_id = action["step_id"]
            if step_id not in self.answers:
                raise AssertionError(
                    f"no scripted answer for step '{step_id}' ({action['type']}) of "
                    f"{action['workflow_id']}: {action['parameters']}"
                )
            answer = self.answers[step_id]
            if callable(answer):
                answer = answer(action)
            if answer is LATER:
                continue
            self.handled.add(action["action_id"])
            await self.submit(action, answer)
            acted = True
        return acted

    async def submit(self, action: dict[str, Any], answer: Any) -> None:
        via = "update"
        if isinstance(answer, Signal):
            via, answer = "signal", answer.answer
        elif action["type"] in self.claimed_types:
            await self.claim(action, answer)
            return
        submission: dict[str, Any] = {"action_id": action["action_id"]}
        if isinstance(answer, Fail):
            submission["error"] = answer.message
        else:
            submission["result"] = answer
        record = Answered(
            action=action,
            result=submission.get("result"),
            error=submission.get("error"),
            via=via,
        )
        self.log.append(record)
        handle = self.client.get_workflow_handle(action["workflow_id"])
        if via == "signal":
            await handle.signal("submit_result", submission)
        else:
            record.advance = await handle.execute_update("submit_result", submission)

    async def claim(self, action: dict[str, Any], answer: Any) -> None:
        """Perform the action as an executor: claim its task, complete or fail it."""
        polled = await self._poll_for(action)
        record = Answered(
            action=action,
            result=None if isinstance(answer, Fail) else answer,
            error=answer.message if isinstance(answer, Fail) else None,
            via="claim",
        )
        self.log.append(record)
        service = self.client.workflow_service
        namespace = self.client.namespace
        if isinstance(answer, Fail):
            await service.respond_activity_task_failed(
                RespondActivityTaskFailedRequest(
                    namespace=namespace,
                    task_token=polled.task_token,
                    identity="drive",
                    failure=Failure(
                        message=answer.message,
                        application_failure_info=ApplicationFailureInfo(
                            type=ACTION_FAILED, non_retryable=True
                        ),
                    ),
                )
            )
            return
        payloads = await self.client.data_converter.encode([{"result": answer}])
        await service.respond_activity_task_completed(
            RespondActivityTaskCompletedRequest(
                namespace=namespace,
                task_token=polled.task_token,
                identity="drive",
                result=Payloads(payloads=payloads),
            )
        )

    async def _poll_for(self, action: dict[str, Any]) -> PollActivityTaskQueueResponse:
        """The action's task: polled from its queue (others polled meanwhile are kept)."""
        agent = action["parameters"].get("agent") if action["type"] == "delegate" else None
        queue = action_queue(self.task_queue, action["type"], agent or None)
        while action["action_id"] not in self.polled:
            response = await self.client.workflow_service.poll_activity_task_queue(
                PollActivityTaskQueueRequest(
                    namespace=self.client.namespace,
                    task_queue=TaskQueue(name=queue),
                    identity="drive",
                ),
                timeout=timedelta(seconds=10),
            )
            if response.task_token:
                self.polled[response.activity_id] = response
        return self.polled.pop(action["action_id"])
