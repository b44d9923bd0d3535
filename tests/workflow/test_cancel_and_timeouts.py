"""Cancellation (signal and Temporal-native), and update_timeout on actions and waits."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError
from temporalio.service import RPCError
from temporalio.worker import Worker

from tests.helpers.runs import (
    assert_replays,
    start,
    status,
    submit,
    wait_for_action,
    wait_for_visibility,
    wait_until,
)

APPROVAL = """
name: cancel-approval
version: 1
steps:
  - {id: approve, type: prompt, prompt_type: confirm, message: Ship it?, timeout: 1h,
     output_to: ok}
  - {id: settle, type: wait, duration: 1h, message: "Settling (approved: ${{ state.ok }})"}
  - {id: done, type: return, value: "${{ state.ok }}"}
"""


async def test_cancel_signal_while_waiting_for_an_action(client: Client, worker: Worker) -> None:
    handle = await start(client, APPROVAL)
    await wait_for_action(client, handle, "approve")
    await handle.signal("cancel_workflow", "change freeze")
    with pytest.raises(WorkflowFailureError) as raised:
        await handle.result()
    assert isinstance(raised.value.cause, CancelledError)
    assert raised.value.cause.message == "change freeze"
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
    final = await status(client, handle)
    assert final["status"] == "cancelled"
    assert final["error"] == "cancelled: change freeze"
    assert final["pending_actions"] == []
    assert final["steps"]["approve"]["status"] == "cancelled"
    assert final["history"][-1]["outcome"] == "cancelled"
    await wait_for_visibility(
        client, f"WorkflowId = '{handle.id}' AND EngineStatus = 'cancelled'", bool
    )


async def test_temporal_cancel_during_a_wait(client: Client, worker: Worker) -> None:
    handle = await start(client, APPROVAL)
    approve = await wait_for_action(client, handle, "approve")
    advance = await submit(client, approve, True)
    assert advance["status"] == "running"
    assert advance["current_step"] == "settle"
    current = await status(client, handle)
    assert current["waiting"]["step_id"] == "settle"
    assert current["waiting"]["message"] == "Settling (approved: true)"
    await handle.cancel()
    with pytest.raises(WorkflowFailureError) as raised:
        await handle.result()
    assert isinstance(raised.value.cause, CancelledError)
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    final = await status(client, handle)
    assert final["status"] == "cancelled"
    assert final["error"] == "cancelled"
    assert final["waiting"] is None
    assert final["steps"]["settle"]["status"] == "cancelled"


FANOUT = """
name: cancel-fanout
version: 1
steps:
  - id: each
    type: foreach
    items: "[1, 2, 3]"
    max_parallel: 2
    steps:
      - {id: ask, type: prompt, prompt_type: confirm, message: "Item ${{ item }}?"}
"""


async def _fanout_waiting(client: Client) -> tuple[WorkflowHandle[Any, Any], list[str]]:
    handle = await start(client, FANOUT)
    current = await wait_until(client, handle, lambda s: len(s["pending_actions"]) == 2)
    children = sorted(a["workflow_id"] for a in current["pending_actions"])
    assert children == [f"{handle.id}/each/0", f"{handle.id}/each/1"]
    return handle, children


async def test_cancel_signal_stops_foreach_children(client: Client, worker: Worker) -> None:
    handle, children = await _fanout_waiting(client)
    started = time.monotonic()
    await handle.signal("cancel_workflow", "operator said so")
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    assert time.monotonic() - started < 10
    final = await status(client, handle.id)
    assert final["status"] == "cancelled"
    assert final["error"] == "cancelled: operator said so"
    assert final["pending_actions"] == []
    for child in children:
        child_status = await wait_until(client, child, lambda s: s["status"] == "cancelled")
        assert child_status["error"] == "cancelled: operator said so"
        described = await client.get_workflow_handle(child).describe()
        assert described.status != WorkflowExecutionStatus.RUNNING
    # the third item never started
    with pytest.raises(RPCError, match="not found"):
        await client.get_workflow_handle(f"{handle.id}/each/2").describe()
    await assert_replays(client, handle.id, *children)


async def test_temporal_cancel_cancels_foreach_children(client: Client, worker: Worker) -> None:
    handle, children = await _fanout_waiting(client)
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    described = await handle.describe()
    assert described.status == WorkflowExecutionStatus.CANCELED
    final = await status(client, handle.id)
    assert final["status"] == "cancelled"
    assert final["pending_actions"] == []
    for child in children:
        await wait_until(client, child, lambda s: s["status"] == "cancelled")
        child_handle = client.get_workflow_handle(child)
        deadline = time.monotonic() + 10
        while (await child_handle.describe()).status == WorkflowExecutionStatus.RUNNING:
            assert time.monotonic() < deadline
        assert (await child_handle.describe()).status == WorkflowExecutionStatus.CANCELED
    await assert_replays(client, handle.id, *children)


async def test_update_timeout_moves_an_action_deadline(client: Client, worker: Worker) -> None:
    definition = """
name: timeout-action
version: 1
defaults:
  timeout: 1h
steps:
  - {id: slow, type: shell, command: sleep 3600, on_error: continue}
  - {id: done, type: return, value: "${{ steps.slow.error }}"}
"""
    handle = await start(client, definition)
    action = await wait_for_action(client, handle, "slow")
    assert action["timeout"] == pytest.approx(3600, abs=5)
    # An absurd value is clamped (to about a century), it does not break the run.
    await handle.signal("update_timeout", args=["slow", 1e300])
    await wait_until(
        client, handle, lambda s: s["pending_actions"] and s["pending_actions"][0]["timeout"] > 1e9
    )
    await handle.signal("update_timeout", args=["slow", 30])
    current = await wait_until(
        client, handle, lambda s: s["pending_actions"] and s["pending_actions"][0]["timeout"] < 60
    )
    moved = current["pending_actions"][0]
    assert moved["action_id"] == action["action_id"]  # same action, new deadline
    assert moved["timeout"] == pytest.approx(30, abs=3)
    started = time.monotonic()
    await handle.signal("update_timeout", args=["slow", 0.5])
    result = await handle.result()
    assert time.monotonic() - started < 5
    assert result.startswith("timed out at ")
    assert result.endswith("(deadline set by update_timeout)")


async def test_update_timeout_shortens_a_wait(client: Client, worker: Worker) -> None:
    handle = await start(client, APPROVAL)
    approve = await wait_for_action(client, handle, "approve")
    await submit(client, approve, False)
    current = await wait_until(client, handle, lambda s: s["waiting"] is not None)
    until = datetime.fromisoformat(current["waiting"]["until"])
    assert until - datetime.fromisoformat(current["history"][-1]["started_at"]) == timedelta(
        hours=1
    )
    await handle.signal("update_timeout", args=["elsewhere", 0])  # names no waiting step
    await handle.signal("update_timeout", args=["settle", 600])
    current = await wait_until(
        client, handle, lambda s: s["waiting"] and s["waiting"]["until"] != until.isoformat()
    )
    moved = datetime.fromisoformat(current["waiting"]["until"])
    assert timedelta(minutes=9) < moved - datetime.now(moved.tzinfo) <= timedelta(minutes=10)
    started = time.monotonic()
    await handle.signal("update_timeout", args=["settle", 0.2])
    assert await handle.result() is False
    assert time.monotonic() - started < 5
    final = await status(client, handle)
    assert final["steps"]["settle"]["status"] == "completed"
    assert final["waiting"] is None


async def test_wait_step_runs_on_a_durable_timer(client: Client, worker: Worker) -> None:
    definition = """
name: timeout-wait
version: 1
steps:
  - {id: pause, type: wait, duration: 1s, message: one second}
  - {id: done, type: return, value: "${{ steps.pause.status }}"}
"""
    handle = await start(client, definition)
    current = await wait_until(client, handle, lambda s: s["waiting"] is not None)
    assert current["status"] == "running"
    assert current["current_step"] == "pause"
    assert current["waiting"]["message"] == "one second"
    assert await handle.result() == "completed"
    events = [event async for event in handle.fetch_history_events()]
    assert sum(event.HasField("timer_fired_event_attributes") for event in events) == 1


async def test_wait_until_a_time_and_a_bad_time(client: Client, worker: Worker) -> None:
    definition = """
name: timeout-wait-until
version: 1
inputs:
  at: {type: string, required: true}
steps:
  - {id: hold, type: wait, until: "${{ inputs.at }}", message: "until ${{ inputs.at }}"}
  - {id: done, type: return, value: "${{ workflow.now >= inputs.at }}"}
"""
    at = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    handle = await start(client, definition, {"at": at})
    current = await wait_until(client, handle, lambda s: s["waiting"] is not None)
    assert datetime.fromisoformat(current["waiting"]["until"]) == datetime.fromisoformat(at)
    assert await handle.result() is True

    handle = await start(client, definition, {"at": "2030-01-01T00:00:00"})
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    final = await status(client, handle)
    assert final["error"] == (
        "step 'hold' failed: 'until' of step 'hold' needs a time zone: '2030-01-01T00:00:00'"
    )
    # a time in the past does not wait at all
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert await (await start(client, definition, {"at": past})).result() is True


async def test_timed_out_item_action_leaves_the_parent_status(
    client: Client, worker: Worker
) -> None:
    definition = """
name: timeout-in-item
version: 1
steps:
  - id: each
    type: foreach
    items: "[1]"
    steps:
      - {id: quick, type: prompt, prompt_type: confirm, message: Quick?, timeout: 1s,
         on_error: continue}
      - {id: hold, type: wait, duration: 1h}
      - {id: item_done, type: return, value: "${{ steps.quick.error }}"}
"""
    handle = await start(client, definition)
    await wait_for_action(client, handle, "quick")
    child = f"{handle.id}/each/0"
    await wait_until(client, child, lambda s: s["waiting"] is not None)
    # The item moved on to its wait: its timed-out action is gone from the parent too.
    parent = await wait_until(client, handle, lambda s: not s["pending_actions"], timeout=5)
    assert parent["status"] == "running"
    await client.get_workflow_handle(child).signal("update_timeout", args=["hold", 0])
    assert await handle.result() == ["timed out after 1s"]
