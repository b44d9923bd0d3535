"""foreach: child workflows, max_parallel, item order, item errors, nesting, return in items."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowUpdateFailedError,
)
from temporalio.worker import Worker

from tests.helpers.runs import (
    assert_replays,
    history_length,
    list_workflow_ids,
    start,
    status,
    submit,
    update_error_message,
    wait_until,
)

PARALLEL = """
name: foreach-parallel
version: 1
state:
  prefix: item
  hidden: secret
steps:
  - id: each
    type: foreach
    items: range(6)
    as: n
    max_parallel: 2
    needs_state: [prefix]
    steps:
      - id: ask
        type: prompt
        prompt_type: text
        message: "${{ state.prefix }} ${{ n }} of index ${{ index }}"
        output_to: answer
      - {id: seen, type: set_state, set: {keys: "${{ keys(state) }}"}}
      - {id: item_done, type: return, value: "${{ state.answer }}"}
    output_to: answers
  - {id: done, type: return, value: "${{ state.answers }}"}
"""


async def test_max_parallel_is_never_exceeded_and_results_keep_item_order(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, PARALLEL)
    running_children = f"ParentWorkflowId = '{handle.id}' AND ExecutionStatus = 'Running'"
    answered: set[str] = set()
    most_visible = 0
    for _ in range(6):
        current = await wait_until(
            client,
            handle,
            lambda s: (
                any(a["action_id"] not in answered for a in s["pending_actions"])
                or s["status"] != "running"
            ),
        )
        pending = [a for a in current["pending_actions"] if a["action_id"] not in answered]
        assert len(current["pending_actions"]) <= 2
        visible = await list_workflow_ids(client, running_children)
        most_visible = max(most_visible, len(visible))
        assert len(visible) <= 2, visible
        # Answer the highest item first: results must still come back in item order.
        action = max(pending, key=lambda a: int(a["workflow_id"].rsplit("/", 1)[1]))
        index = int(action["workflow_id"].rsplit("/", 1)[1])
        assert action["workflow_id"] == f"{handle.id}/each/{index}"
        assert action["parameters"]["message"] == f"item {index} of index {index}"
        answered.add(action["action_id"])
        await submit(client, action, f"answer-{index}")
    assert most_visible >= 1
    assert await handle.result() == [f"answer-{i}" for i in range(6)]
    # The children saw only the state the foreach names (needs_state), plus their own.
    child = await status(client, f"{handle.id}/each/3")
    assert child["state"] == {"prefix": "item", "answer": "answer-3", "keys": ["prefix", "answer"]}
    assert child["result"] == "answer-3"
    described = await client.get_workflow_handle(f"{handle.id}/each/3").describe()
    assert described.workflow_type == "foreach-parallel:1"
    assert described.parent_id == handle.id


async def test_max_parallel_under_concurrent_answers(client: Client, worker: Worker) -> None:
    handle = await start(client, PARALLEL.replace("max_parallel: 2", "max_parallel: 3"))
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            current = await status(client, handle)
            peak = max(peak, len(current["pending_actions"]))
            assert len(current["pending_actions"]) <= 3
            if current["status"] == "completed":
                return
            await asyncio.sleep(0.01)

    async def answer() -> None:
        nonlocal peak
        done: set[str] = set()
        while len(done) < 6:
            current = await status(client, handle)
            pending = current["pending_actions"]
            peak = max(peak, len(pending))
            if not done and len(pending) < 3:  # the first wave: all three items at once
                await asyncio.sleep(0.01)
                continue
            fresh = [a for a in pending if a["action_id"] not in done]
            for action in fresh:
                done.add(action["action_id"])
            await asyncio.gather(*(submit(client, a, a["workflow_id"][-1]) for a in fresh))
            await asyncio.sleep(0.02)

    await asyncio.wait_for(asyncio.gather(watch(), answer()), 30)
    assert peak == 3
    assert await handle.result() == [str(i) for i in range(6)]


ITEM_ERRORS = """
name: foreach-item-errors
version: 1
inputs:
  policy: {type: string, default: continue}
steps:
  - id: each
    type: foreach
    items: '["a", "b", "c"]'
    as: letter
    max_parallel: 3
    on_item_error: continue
    steps:
      - {id: work, type: mcp_call, tool: work, params: {letter: "${{ letter }}"},
         output_to: out}
      - {id: item_done, type: return, value: "${{ letter + ':' + state.out }}"}
    output_to: results
  - id: done
    type: return
    value: {results: "${{ state.results }}", errors: "${{ steps.each.errors }}"}
"""


async def _answer_items(client: Client, handle: Any, answers: dict[str, str | None]) -> None:
    current = await wait_until(client, handle, lambda s: len(s["pending_actions"]) == 3)
    for action in sorted(current["pending_actions"], key=lambda a: a["workflow_id"]):
        letter = action["parameters"]["params"]["letter"]
        answer = answers[letter]
        if answer is None:
            await submit(client, action, error=f"{letter} broke")
        else:
            await submit(client, action, answer)


async def test_on_item_error_continue_collects_errors(client: Client, worker: Worker) -> None:
    handle = await start(client, ITEM_ERRORS)
    await _answer_items(client, handle, {"a": "1", "b": None, "c": "3"})
    assert await handle.result() == {
        "results": ["a:1", None, "c:3"],
        "errors": [{"index": 1, "item": "b", "error": "step 'work' failed: b broke"}],
    }
    final = await status(client, handle)
    assert final["steps"]["each"]["status"] == "completed"
    assert final["steps"]["each"]["errors"] == [
        {"index": 1, "item": "b", "error": "step 'work' failed: b broke"}
    ]


async def test_on_item_error_fail_cancels_the_rest(client: Client, worker: Worker) -> None:
    handle = await start(client, ITEM_ERRORS.replace("on_item_error: continue", ""))
    current = await wait_until(client, handle, lambda s: len(s["pending_actions"]) == 3)
    by_letter = {a["parameters"]["params"]["letter"]: a for a in current["pending_actions"]}
    await submit(client, by_letter["a"], "1")
    await submit(client, by_letter["b"], error="b broke")
    with pytest.raises(WorkflowFailureError) as raised:
        await handle.result()
    message = "step 'each' failed: item 1 failed: step 'work' failed: b broke"
    assert getattr(raised.value.cause, "message", None) == message
    final = await status(client, handle)
    assert final["status"] == "failed"
    assert final["error"] == message
    assert final["pending_actions"] == []
    c = await wait_until(client, by_letter["c"]["workflow_id"], lambda s: s["status"] != "waiting")
    assert c["status"] == "cancelled"
    described = await client.get_workflow_handle(by_letter["c"]["workflow_id"]).describe()
    assert described.status != WorkflowExecutionStatus.RUNNING
    a = await status(client, by_letter["a"]["workflow_id"])
    assert a["status"] == "completed"
    await assert_replays(client, handle.id, by_letter["c"]["workflow_id"])


NESTED = """
name: foreach-nested
version: 1
steps:
  - id: outer
    type: foreach
    items: '["x", "y"]'
    as: group
    max_parallel: 2
    steps:
      - id: inner
        type: foreach
        items: "[1, 2]"
        as: n
        max_parallel: 2
        steps:
          - {id: leaf, type: mcp_call, tool: leaf, params: {group: "${{ group }}", n: "${{ n }}"}}
          - id: leaf_done
            type: return
            value: "${{ group + string(n) + '=' + string(state.leaf ?? steps.leaf.output) }}"
        output_to: inner_results
      - {id: group_done, type: return, value: {group: "${{ group }}",
                                               leaves: "${{ state.inner_results }}"}}
    output_to: groups
"""


async def test_nested_foreach_actions_are_visible_and_answerable_from_the_top(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, NESTED)
    current = await wait_until(client, handle, lambda s: len(s["pending_actions"]) == 4)
    ids = sorted(a["workflow_id"] for a in current["pending_actions"])
    assert ids == [
        f"{handle.id}/outer/0/inner/0",
        f"{handle.id}/outer/0/inner/1",
        f"{handle.id}/outer/1/inner/0",
        f"{handle.id}/outer/1/inner/1",
    ]
    # The middle level sees its own subtree only.
    middle = await status(client, f"{handle.id}/outer/1")
    assert sorted(a["workflow_id"] for a in middle["pending_actions"]) == ids[2:]
    # Submitted to the top, an item's action is rejected with where it belongs.
    leaf = next(a for a in current["pending_actions"] if a["workflow_id"] == ids[3])
    before = await history_length(handle)
    with pytest.raises(WorkflowUpdateFailedError) as raised:
        await handle.execute_update("submit_result", {"action_id": leaf["action_id"], "result": 1})
    assert update_error_message(raised.value) == (
        f"step 'leaf' waits in the foreach item '{ids[3]}': submit its result there"
    )
    assert await history_length(handle) == before
    for action in current["pending_actions"]:
        params = action["parameters"]["params"]
        await submit(client, action, params["n"] * 10)
    assert await handle.result() == [
        {"group": "x", "leaves": ["x1=10", "x2=20"]},
        {"group": "y", "leaves": ["y1=10", "y2=20"]},
    ]
    final = await status(client, handle)
    assert final["pending_actions"] == []
    assert final["state"]["groups"][1]["leaves"] == ["y1=10", "y2=20"]
    await assert_replays(client, handle.id, f"{handle.id}/outer/0", ids[0])


async def test_return_inside_an_item_and_last_output_as_result(
    client: Client, worker: Worker
) -> None:
    definition = """
name: foreach-return
version: 1
steps:
  - id: each
    type: foreach
    items: "[1, 2, 3, 4]"
    as: n
    max_parallel: 4
    steps:
      - id: odd
        type: condition
        if: n % 2 == 1
        then:
          - {id: early, type: return, value: "${{ 'odd ' + string(n) }}"}
      - {id: even, type: set_state, set: {half: "${{ n / 2 }}"}}
    output_to: out
  - {id: empty, type: foreach, items: "[]", steps: [{id: none, type: set_state, set: {a: 1}}],
     output_to: nothing}
  - {id: done, type: return, value: {out: "${{ state.out }}", nothing: "${{ state.nothing }}"}}
"""
    handle = await start(client, definition)
    assert await handle.result() == {
        "out": ["odd 1", {"half": 1}, "odd 3", {"half": 2}],
        "nothing": [],
    }
    # Items of inline steps only run inside the run: no child workflow, no event of their own.
    events = [event async for event in handle.fetch_history_events()]
    kinds = {EventType.Name(event.event_type) for event in events}
    assert "EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED" not in kinds
    assert "EVENT_TYPE_MARKER_RECORDED" in kinds  # the patch that made them inline
    final = await status(client, handle)
    assert [entry["step_id"] for entry in final["history"]] == ["each", "empty", "done"]
    await assert_replays(client, handle.id)


async def test_retried_foreach_reruns_only_the_failed_items(client: Client, worker: Worker) -> None:
    definition = """
name: foreach-retry
version: 1
steps:
  - id: each
    type: foreach
    items: '["a", "b", "c"]'
    max_parallel: 3
    retry: {max_attempts: 2, initial_interval: 1s}
    steps:
      - {id: work, type: mcp_call, tool: work, params: {item: "${{ item }}"}, output_to: out}
      - {id: item_done, type: return, value: "${{ state.out }}"}
"""
    handle = await start(client, definition)
    current = await wait_until(client, handle, lambda s: len(s["pending_actions"]) == 3)
    by_item = {a["parameters"]["params"]["item"]: a for a in current["pending_actions"]}
    await submit(client, by_item["a"], "A")
    await submit(client, by_item["b"], error="flaky")
    # c is stopped with the failed attempt; the retry runs b and c again, under new ids
    current = await wait_until(
        client,
        handle,
        lambda s: (
            {a["attempt"] for a in s["pending_actions"]} == {1}
            and {a["workflow_id"] for a in s["pending_actions"]}
            == {f"{handle.id}/each/1/attempt-2", f"{handle.id}/each/2/attempt-2"}
        ),
    )
    for action in current["pending_actions"]:
        await submit(client, action, action["parameters"]["params"]["item"].upper())
    assert await handle.result() == ["A", "B", "C"]
    final = await status(client, handle)
    assert final["history"][0]["attempts"] == 2
    assert final["history"][0]["errors"] == ["item 1 failed: step 'work' failed: flaky"]
    assert final["steps"]["each"] == {
        "status": "completed",
        "output": ["A", "B", "C"],
        "errors": [],
    }
    await assert_replays(client, handle.id)


FOREACH_TIMEOUT = """
name: foreach-timeout
version: 1
steps:
  - id: fan
    type: foreach
    items: '["a", "b", "c"]'
    max_parallel: 2
    timeout: 2s
    on_error: continue
    steps:
      - {id: ask, type: prompt, prompt_type: text, message: "${{ item }}?"}
  - {id: done, type: return, value: "${{ steps.fan.status + ': ' + steps.fan.error }}"}
"""


async def test_foreach_timeout_stops_the_fan_out_and_fails_the_step(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, FOREACH_TIMEOUT)
    # Nobody answers: after 2 s the fan-out stops its items and the step fails.
    result = await asyncio.wait_for(handle.result(), timeout=30)
    assert result == "failed: timed out after 2s with 3 item(s) unfinished"
    final = await status(client, handle)
    assert final["pending_actions"] == []
