"""Nothing a user sends wedges a run: what fails inside a run fails its step (under its
``on_error``), never the workflow task, and what could never be taken is refused at the door.

A workflow task that raises is retried by Temporal for ever: the run would never end, a cancel
would never be taken, and its org's inbox would carry it. Each case here used to do that.
"""

from __future__ import annotations

import pytest
from temporalio.client import Client, WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.worker import Worker

from engine.protocol import ERROR_KEPT, MAX_RESULT_BYTES
from tests.helpers.runs import (
    history_length,
    start,
    status,
    submit,
    update_error_message,
    wait_for_action,
)

HUGE_NUMBER = "1" * 5000

RAISING = """
name: untrusted-raising
version: 1
inputs: {text: {type: string}}
steps:
  - {id: parse, type: set_state, set: {n: "${{ int(inputs.text) }}"}, on_error: ON_ERROR}
  - {id: rounded, type: set_state, set: {r: "${{ round(1e300) }}"}, on_error: ON_ERROR}
  - {id: placeholder, type: set_state, set: {f: "${{ format('{²}') }}"}, on_error: ON_ERROR}
  - {id: done, type: return, value: "${{ state.n ?? 'none' }}"}
"""

ASK = """
name: untrusted-ask
version: 1
steps:
  - {id: fetch, type: mcp_call, tool: fetch, output_to: got}
  - {id: done, type: return, value: "${{ state.got }}"}
"""


async def test_an_expression_that_raises_when_it_runs_fails_its_step(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, RAISING.replace("ON_ERROR", "fail"), {"text": HUGE_NUMBER})
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    message = str(failed.value.cause)
    assert "step 'parse' failed" in message
    assert "does not fit in 64 bits" in message
    assert len(message) < 1000  # the 5,000 digits are not echoed
    final = await status(client, handle)
    assert final["status"] == "failed"


async def test_with_on_error_continue_the_run_goes_on_past_each_failure(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, RAISING.replace("ON_ERROR", "continue"), {"text": HUGE_NUMBER})
    assert await handle.result() == "none"
    final = await status(client, handle)
    outcomes = {step: record["status"] for step, record in final["steps"].items()}
    assert outcomes == {
        "parse": "failed",
        "rounded": "failed",
        "placeholder": "failed",
        "done": "completed",
    }
    assert "bad placeholder" in final["steps"]["placeholder"]["error"]


async def test_a_result_over_the_limit_is_refused_and_the_run_still_waits(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, ASK)
    action = await wait_for_action(client, handle, "fetch")
    before = await history_length(handle)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await submit(client, action, "x" * (MAX_RESULT_BYTES + 1))
    assert f"over the limit of {MAX_RESULT_BYTES:,}" in update_error_message(refused.value)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await submit(client, action, error="e" * (MAX_RESULT_BYTES + 1))
    assert f"over the limit of {MAX_RESULT_BYTES:,}" in update_error_message(refused.value)
    assert await history_length(handle) == before  # nothing was written
    advance = await submit(client, action, {"ok": True})
    assert advance["status"] == "completed"
    assert advance["result"] == {"ok": True}


async def test_a_long_error_is_kept_cut_with_a_marker_and_the_run_stays_readable(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, ASK)
    action = await wait_for_action(client, handle, "fetch")
    advance = await submit(client, action, error="E" * (MAX_RESULT_BYTES // 2))
    assert advance["status"] == "failed"
    final = await status(client, handle)
    error = final["steps"]["fetch"]["error"]
    assert error.startswith("E" * 100)
    assert error.endswith(f"[cut: {MAX_RESULT_BYTES // 2:,} characters in all]")
    assert len(error) < ERROR_KEPT + 100
    assert len(final["error"]) < ERROR_KEPT + 100
    with pytest.raises(WorkflowFailureError):
        await handle.result()
