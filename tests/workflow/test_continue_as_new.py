"""Continue-as-new at step boundaries: state, step records and position survive it.

This module runs its own dev server, on which Temporal suggests continuing as new after 40
history events, so that short definitions cross several runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Replayer

from engine.workflow import EngineWorkflow, build_worker, ensure_search_attributes, sandbox_runner
from tests.helpers.devserver import start_dev_server
from tests.helpers.runs import TASK_QUEUE, start, status, submit, wait_for_action, wait_until

SUGGEST_AFTER = 40


@pytest.fixture(scope="module")
async def short_client() -> AsyncIterator[Client]:
    """A dev server that suggests continue-as-new early, with its own interpreter worker."""
    server = await start_dev_server(
        dynamic_config=[f"limit.historyCount.suggestContinueAsNew={SUGGEST_AFTER}"]
    )
    try:
        client = await server.connect()
        await ensure_search_attributes(client)
        async with build_worker(client, task_queue=TASK_QUEUE):
            yield client
    finally:
        server.stop()


async def _runs(client: Client, handle: WorkflowHandle[Any, Any]) -> list[list[int]]:
    """Event types of each run of the chain, first run first; each run replays cleanly."""
    replayer = Replayer(workflows=[EngineWorkflow], workflow_runner=sandbox_runner(strict=True))
    runs: list[list[int]] = []
    run_id: str | None = (await status(client, handle))["run_id"]
    # Walk back from the current run through each run's first event (continued from).
    while run_id:
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        await replayer.replay_workflow(history)
        runs.insert(0, [event.event_type for event in history.events])
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id or None
    return runs


FANOUT = """
name: can-fanout
version: 1
state:
  label: squares
steps:
  - {id: before, type: set_state, set: {started: true}}
  - id: each
    type: foreach
    items: range(30)
    as: n
    max_parallel: 3
    steps:
      # A wait (of nothing) makes each item a child run: inline steps alone would run inline.
      - {id: pause, type: wait, duration: 0s}
      - {id: square, type: return, value: "${{ n * n }}"}
    output_to: squares
  - {id: after, type: set_state, set: {count: "${{ size(state.squares) }}"}}
  - id: done
    type: return
    value:
      label: "${{ state.label }}"
      started: "${{ state.started }}"
      count: "${{ state.count }}"
      squares: "${{ state.squares }}"
"""


async def test_foreach_continues_as_new_and_finishes_with_every_item(
    short_client: Client,
) -> None:
    handle = await start(short_client, FANOUT)
    result = await handle.result()
    assert result == {
        "label": "squares",
        "started": True,
        "count": 30,
        "squares": [n * n for n in range(30)],
    }
    final = await status(short_client, handle)
    assert final["continued"] >= 1
    runs = await _runs(short_client, handle)
    assert len(runs) == final["continued"] + 1
    for earlier in runs[:-1]:
        assert earlier[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    # No item ran twice: one child per item over the whole chain.
    started = sum(
        run.count(EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED) for run in runs
    )
    assert started == 30
    # One history entry per step, however many runs the step spanned.
    assert [(e["step_id"], e["outcome"]) for e in final["history"]] == [
        ("before", "completed"),
        ("each", "completed"),
        ("after", "completed"),
        ("done", "completed"),
    ]


SHELLS = 14


def _sequence() -> str:
    shells = "\n".join(
        f"      - {{id: s{i}, type: shell, command: ./step.sh, env: {{N: '{i}'}}, output_to: r{i}}}"
        for i in range(SHELLS)
    )
    results = ", ".join(f"state.r{i}.stdout" for i in range(SHELLS))
    return f"""
name: can-sequence
version: 1
state:
  finished: false
steps:
  - id: block
    type: condition
    when: "!state.finished"
    if: "true"
    then:
      - {{id: mark, type: set_state, set: {{finished: true}}}}
{shells}
  - {{id: done, type: return, value: "${{{{ [{results}] }}}}"}}
"""


async def test_actions_across_runs_keep_state_and_position(short_client: Client) -> None:
    handle = await start(short_client, _sequence())
    run_ids = set()
    for i in range(SHELLS):
        action = await wait_for_action(short_client, handle, f"s{i}")
        assert action["parameters"]["env"] == {"N": str(i)}
        run_ids.add(action["run_id"])
        advance = await submit(short_client, action, {"exit_code": 0, "stdout": f"out{i}"})
        if i < SHELLS - 1 and not advance["pending_actions"]:
            # The update ended with the run that continued as new; the next run has the action.
            assert advance["status"] == "running"
    assert await handle.result() == [f"out{i}" for i in range(SHELLS)]
    final = await status(short_client, handle)
    assert final["continued"] >= 1
    assert len(run_ids) >= 2  # the actions themselves came from more than one run
    # the `when` of the condition was evaluated once: later runs resumed inside its block
    assert [e["step_id"] for e in final["history"]] == [
        "block",
        "mark",
        *(f"s{i}" for i in range(SHELLS)),
        "done",
    ]
    assert all(e["outcome"] == "completed" for e in final["history"])
    assert final["steps"]["block"] == {"status": "completed", "output": True}
    assert final["state"]["r0"] == {"exit_code": 0, "stdout": "out0", "stderr": ""}
    described = await handle.describe()
    assert described.run_id == final["run_id"]
    runs = await _runs(short_client, handle)
    assert len(runs) == final["continued"] + 1


async def test_foreach_children_with_actions_across_runs(short_client: Client) -> None:
    definition = """
name: can-foreach-actions
version: 1
steps:
  - id: each
    type: foreach
    items: range(8)
    max_parallel: 2
    steps:
      - {id: ask, type: prompt, prompt_type: text, message: "item ${{ item }}", output_to: said}
      - {id: echo, type: return, value: "${{ state.said }}"}
    output_to: said
"""
    handle = await start(short_client, definition)
    answered: set[str] = set()
    while len(answered) < 8:
        current = await wait_until(
            short_client,
            handle,
            lambda s: any(a["action_id"] not in answered for a in s["pending_actions"]),
        )
        assert len(current["pending_actions"]) <= 2
        for action in current["pending_actions"]:
            if action["action_id"] not in answered:
                answered.add(action["action_id"])
                await submit(short_client, action, "said " + action["parameters"]["message"])
    assert await handle.result() == [f"said item {i}" for i in range(8)]
    assert (await status(short_client, handle))["continued"] >= 1
