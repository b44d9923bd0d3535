"""Payload limits: a step that would push the run's status over 2 MiB fails, the run stays readable.

The status (what ``get_status`` answers, and what continue-as-new carries) holds the state and
every step's output, so an output kept in the state counts twice: two outputs of 640 KiB are
2.5 MiB of status.
"""

from __future__ import annotations

import re

import pytest
from temporalio.client import Client, WorkflowFailureError
from temporalio.worker import Worker

from engine.workflow import PAYLOAD_LIMIT
from tests.helpers.runs import start, status, submit, wait_for_action

BIG = 640 * 1024

GROW = """
name: limits-grow
version: 1
steps:
  - {id: first, type: mcp_call, tool: fetch, output_to: a}
  - {id: second, type: mcp_call, tool: fetch, output_to: b, on_error: ON_ERROR}
  - {id: double, type: set_state, set: {a: "${{ [state.a, state.a] }}"}, on_error: continue}
  - {id: done, type: return, value: "${{ size(state.a) }}"}
"""

TOO_BIG = (
    r"the state after step '(\w+)' would make the run's status ([\d,]+) bytes as JSON, "
    r"over Temporal's payload limit of 2,097,152 bytes"
)


async def test_state_over_the_payload_limit_fails_the_step(client: Client, worker: Worker) -> None:
    handle = await start(client, GROW.replace("ON_ERROR", "fail"))
    first = await wait_for_action(client, handle, "first")
    advance = await submit(client, first, "x" * BIG)
    [second] = advance["pending_actions"]
    advance = await submit(client, second, "y" * BIG)
    assert advance["status"] == "failed"
    error = advance["error"]
    match = re.fullmatch("step 'second' failed: " + TOO_BIG, error)
    assert match, error
    assert match.group(1) == "second"
    assert int(match.group(2).replace(",", "")) > 4 * BIG > PAYLOAD_LIMIT
    with pytest.raises(WorkflowFailureError) as raised:
        await handle.result()
    assert getattr(raised.value.cause, "message", None) == error
    # The run stays readable: the output that did not fit was dropped.
    final = await status(client, handle)
    assert final["status"] == "failed"
    assert final["error"] == error
    assert final["steps"]["second"]["status"] == "failed"
    assert re.fullmatch(TOO_BIG, final["steps"]["second"]["error"])
    assert final["steps"]["second"]["output"] is None
    assert set(final["state"]) == {"a"}


async def test_oversized_steps_with_continue_keep_the_previous_state(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, GROW.replace("ON_ERROR", "continue"))
    first = await wait_for_action(client, handle, "first")
    [second] = (await submit(client, first, "x" * BIG))["pending_actions"]
    advance = await submit(client, second, "y" * BIG)
    # `double` would grow `a` past the limit too: it fails, and `a` keeps its value.
    assert advance["status"] == "completed"
    assert advance["result"] == BIG
    final = await status(client, handle)
    assert final["steps"]["second"]["status"] == "failed"
    assert final["steps"]["double"]["status"] == "failed"
    assert re.fullmatch(TOO_BIG, final["steps"]["double"]["error"])
    assert final["state"]["a"] == "x" * BIG


async def test_sizes_are_counted_as_temporal_encodes_them(client: Client, worker: Worker) -> None:
    # 100,000 "é" are 200 kB of UTF-8 but 600 kB of the escaped JSON Temporal writes: two of
    # them, each kept in the state and in its step's output, would not fit in one status
    # payload (800 kB of UTF-8 would).
    handle = await start(client, GROW.replace("ON_ERROR", "fail"))
    first = await wait_for_action(client, handle, "first")
    [second] = (await submit(client, first, "é" * 100_000))["pending_actions"]
    advance = await submit(client, second, "é" * 100_000)
    assert advance["status"] == "failed"
    assert re.fullmatch("step 'second' failed: " + TOO_BIG, advance["error"])
    final = await status(client, handle)
    assert set(final["state"]) == {"a"}
