"""Watching runs: every change of a run's status reaches every watcher, in order.

No interval polling. One feed per watched run (in this process) long-polls the run's history,
which Temporal answers as soon as an event is added; at each batch of new events the feed asks
the run, with the ``get_changes`` query, for every change of its status since the last one it
saw. A run keeps its recent changes, so a state that lasted a millisecond still reaches the
watchers. Every watcher of a run shares its feed: a thousand watchers of one run cost one long
poll and one query per batch of events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client

from engine.protocol import Changes, RunChange, RunStatus

__all__ = ["RunFeeds"]

_TERMINAL: Final = frozenset({"completed", "failed", "cancelled"})
_LONG_POLL: Final = timedelta(seconds=90)
"""Longer than the server holds a history long poll."""
_CLOSING: Final = frozenset(
    {
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    }
)

AskChanges = Callable[[str, int], Awaitable[Changes]]
"""Ask a run (by run id) for its changes since a version."""
AskStatus = Callable[[], Awaitable[RunStatus]]
"""Ask the latest run of the workflow for its status."""

_END = object()


@dataclass
class _Feed:
    """The watchers of one run, and the task that feeds them."""

    watchers: set[asyncio.Queue[Any]] = field(default_factory=set)
    task: asyncio.Task[None] | None = None


class RunFeeds:
    """The runs watched in this process, each fed by one task shared by its watchers."""

    def __init__(self) -> None:
        self._feeds: dict[tuple[str, str], _Feed] = {}

    async def watch(
        self,
        client: Client,
        workflow_id: str,
        ask_status: AskStatus,
        ask_changes: AskChanges,
    ) -> AsyncIterator[RunStatus]:
        """Every status of the run from now on, in order, until it ends.

        Raises:
            Whatever ``ask_status`` or ``ask_changes`` raise (the run is not found, Temporal
            is unavailable): the watch ends with it.
        """
        first = await ask_status()
        key = (client.namespace, workflow_id)
        feed = self._feeds.get(key)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        if feed is None:
            feed = self._feeds[key] = _Feed()
            feed.watchers.add(queue)
            feed.task = asyncio.get_running_loop().create_task(
                self._feed(key, feed, client, workflow_id, first, ask_status, ask_changes),
                name=f"watch {workflow_id}",
            )
        else:
            feed.watchers.add(queue)
        try:
            yield first
            last = (first["run_id"], int(first.get("version", 0)), _fingerprint(first))
            while first["status"] not in _TERMINAL:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                status: RunStatus = item
                seen = (status["run_id"], int(status.get("version", 0)), _fingerprint(status))
                # A watcher that joined a running feed starts from its own first status: the
                # feed's older states are behind it.
                if seen[0] == last[0] and (seen[1] < last[1] or seen[2] == last[2]):
                    continue
                last = seen
                yield status
                if status["status"] in _TERMINAL:
                    return
        finally:
            feed.watchers.discard(queue)
            if not feed.watchers and feed.task is not None and not feed.task.done():
                feed.task.cancel()

    async def _feed(
        self,
        key: tuple[str, str],
        feed: _Feed,
        client: Client,
        workflow_id: str,
        status: RunStatus,
        ask_status: AskStatus,
        ask_changes: AskChanges,
    ) -> None:
        try:
            while feed.watchers and status["status"] not in _TERMINAL:
                run_id = status["run_id"]
                version = int(status.get("version", 0))
                token = b""
                while feed.watchers:
                    response = await client.workflow_service.get_workflow_execution_history(
                        GetWorkflowExecutionHistoryRequest(
                            namespace=client.namespace,
                            execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
                            next_page_token=token,
                            wait_new_event=True,
                        ),
                        timeout=_LONG_POLL,
                    )
                    events = response.history.events
                    closed = any(event.event_type in _CLOSING for event in events)
                    if events:
                        changes = await ask_changes(run_id, version)
                        for state in _states(changes):
                            self._publish(feed, state)
                        status = changes["status"]
                        version = int(status.get("version", version))
                    token = response.next_page_token
                    if closed or not token:
                        break
                if status["status"] not in _TERMINAL:
                    # Continued as new (or reset): follow the workflow's latest run.
                    status = await ask_status()
                    self._publish(feed, status)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            for queue in feed.watchers:
                queue.put_nowait(error)
        finally:
            for queue in feed.watchers:
                queue.put_nowait(_END)
            if self._feeds.get(key) is feed:
                del self._feeds[key]

    @staticmethod
    def _publish(feed: _Feed, status: RunStatus) -> None:
        for queue in feed.watchers:
            queue.put_nowait(status)


def _states(changes: Changes) -> list[RunStatus]:
    """Each change as a status: the run now, as it was at that change."""
    now = changes["status"]
    states: list[RunStatus] = [_at(now, change) for change in changes["changes"]]
    states.append(now)
    return states


def _at(now: RunStatus, change: RunChange) -> RunStatus:
    return {
        **now,
        "status": change["status"],
        "current_step": change["current_step"],
        "waiting": change["waiting"],
        "pending_actions": change["pending_actions"],
        "history": now["history"][: change["history_length"]],
        "version": change["version"],
    }


def _fingerprint(status: RunStatus) -> tuple[Any, ...]:
    history = status["history"]
    return (
        status["status"],
        status["current_step"],
        tuple(a["action_id"] for a in status["pending_actions"]),
        len(history),
        history[-1]["outcome"] if history else None,
        status["waiting"]["until"] if status["waiting"] else None,
    )
