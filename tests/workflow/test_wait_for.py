"""wait_for on the dev server: events sent to the run (signal), their correlation, what a bad
event does (nothing), deadlines moved with update_timeout, and cancellation."""

from __future__ import annotations

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.worker import Worker

from engine.protocol import CANCEL_WORKFLOW, SEND_EVENT, UPDATE_TIMEOUT
from tests.helpers.runs import assert_replays, start, status, wait_until

WAIT_FOR = """
name: wait-for
version: 1
state: {pr: 7}
steps:
  - id: merged
    type: wait_for
    event: pr_merged
    correlate: event.pr == state.pr
    timeout: 1h
    output_to: merge
  - {id: done, type: return, value: "${{ state.merge }}"}
"""


def _event(payload: object, event_id: str, name: str = "pr_merged") -> dict[str, object]:
    return {"name": name, "payload": payload, "event_id": event_id, "broadcast": False}


async def test_bad_and_foreign_events_change_nothing_and_the_right_one_is_taken(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, WAIT_FOR)
    await wait_until(client, handle, lambda s: (s["waiting"] or {}).get("step_id") == "merged")
    # Not an event at all, a bad name, a payload the correlation cannot read, another PR.
    await handle.signal(SEND_EVENT, "nonsense")
    await handle.signal(SEND_EVENT, _event({"pr": 7}, "x", name="bad name!"))
    await handle.signal(SEND_EVENT, _event("a string, not a map", "s"))
    await handle.signal(SEND_EVENT, _event({"pr": 8}, "p8"))
    waiting = await status(client, handle)
    assert waiting["status"] == "running"
    assert waiting["waiting"]["message"] == "waiting for event 'pr_merged'"
    await handle.signal(SEND_EVENT, _event({"pr": 7, "sha": "abc"}, "p7"))
    assert await handle.result() == {"pr": 7, "sha": "abc"}
    final = await status(client, handle)
    assert final["waiting"] is None
    await assert_replays(client, handle.id)


async def test_update_timeout_moves_the_deadline_and_the_step_times_out(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, WAIT_FOR)
    first = await wait_until(client, handle, lambda s: s["waiting"] is not None)
    await handle.signal(UPDATE_TIMEOUT, args=["merged", 0])
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    final = await status(client, handle)
    assert final["steps"]["merged"]["error"] == "no event 'pr_merged' arrived within 1h"
    assert first["waiting"]["until"] is not None
    await assert_replays(client, handle.id)


async def test_a_cancelled_run_stops_waiting(client: Client, worker: Worker) -> None:
    handle = await start(client, WAIT_FOR)
    await wait_until(client, handle, lambda s: s["waiting"] is not None)
    await handle.signal(CANCEL_WORKFLOW, "not needed")
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    final = await status(client, handle)
    assert final["status"] == "cancelled"
    assert [(e["step_id"], e["outcome"]) for e in final["history"]] == [("merged", "cancelled")]
    await assert_replays(client, handle.id)
