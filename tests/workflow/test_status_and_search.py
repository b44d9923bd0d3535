"""The get_status query and the engine's search attributes in visibility."""

from __future__ import annotations

from datetime import datetime

from temporalio.client import Client
from temporalio.worker import Worker

from engine.definition import load_definition
from engine.workflow import ENGINE_DEFINITION, ENGINE_ORG, ENGINE_STATUS, ENGINE_STEP
from tests.helpers.runs import (
    run_to_end,
    start,
    status,
    submit,
    wait_for_action,
    wait_for_visibility,
)

STATUS = """
name: status-shape
version: 2
inputs:
  who: {type: string, default: ops}
state:
  owner: "${{ inputs.who }}"
steps:
  - {id: prep, type: set_state, set: {ready: true}}
  - {id: skip, type: set_state, when: "false", set: {never: true}}
  - {id: ask, type: prompt, prompt_type: text, message: "Hi ${{ state.owner }}", output_to: reply}
  - {id: fail, type: mcp_call, tool: broken, when: "state.reply == 'fail'"}
  - {id: done, type: return, value: "${{ state.reply }}"}
"""


async def test_status_shape_while_waiting_and_after(client: Client, worker: Worker) -> None:
    definition = load_definition(STATUS)
    handle = await start(client, definition)
    action = await wait_for_action(client, handle, "ask")
    current = await status(client, handle)
    assert set(current) == {
        "workflow_id",
        "run_id",
        "workflow_type",
        "definition",
        "org_id",
        "started_by",
        "status",
        "current_step",
        "pending_actions",
        "waiting",
        "history",
        "state",
        "steps",
        "result",
        "error",
        "started_at",
        "continued",
        "version",
    }
    assert current["version"] >= 1  # the changes so far (see get_changes)
    assert current["workflow_id"] == handle.id
    assert current["run_id"] == (await handle.describe()).run_id
    assert current["workflow_type"] == "status-shape:2"
    assert current["definition"] == {
        "name": "status-shape",
        "version": 2,
        "hash": definition.content_hash,
    }
    assert current["org_id"] == "default"
    assert current["status"] == "waiting"
    assert current["current_step"] == "ask"
    assert current["waiting"] is None
    assert current["state"] == {"owner": "ops", "ready": True}
    assert current["steps"] == {
        "prep": {"status": "completed", "output": {"ready": True}},
        "skip": {"status": "skipped", "output": None},
    }
    assert current["result"] is None and current["error"] is None
    assert current["continued"] == 0
    datetime.fromisoformat(current["started_at"])
    prep, skip, ask = current["history"]
    assert prep["outcome"] == "completed" and prep["attempts"] == 1
    assert skip["outcome"] == "skipped" and skip["attempts"] == 0
    assert ask == {
        "step_id": "ask",
        "type": "prompt",
        "started_at": ask["started_at"],
        "finished_at": None,
        "outcome": None,
        "attempts": 1,
    }
    assert set(current["pending_actions"][0]) == {
        "action_id",
        "type",
        "step_id",
        "parameters",
        "timeout",
        "deadline",
        "attempt",
        "created_at",
        "workflow_id",
        "run_id",
    }
    assert action["parameters"]["message"] == "Hi ops"

    await submit(client, action, "bye")
    assert await handle.result() == "bye"
    final = await status(client, handle)
    assert final["status"] == "completed"
    assert final["current_step"] is None
    assert final["result"] == "bye"
    assert final["pending_actions"] == []
    assert [e["step_id"] for e in final["history"]] == ["prep", "skip", "ask", "fail", "done"]
    for entry in final["history"]:
        assert datetime.fromisoformat(entry["finished_at"]) >= datetime.fromisoformat(
            entry["started_at"]
        )


async def test_search_attributes_follow_the_run(client: Client, worker: Worker) -> None:
    handle = await start(client, STATUS)
    await wait_for_action(client, handle, "ask")
    waiting = (
        f"WorkflowId = '{handle.id}' AND EngineStatus = 'waiting' AND EngineStep = 'ask'"
        " AND EngineOrg = 'default' AND EngineDefinition = 'status-shape'"
    )
    assert await wait_for_visibility(client, waiting, bool) == [handle.id]
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(ENGINE_STATUS) == "waiting"
    assert attributes.get(ENGINE_STEP) == "ask"
    assert attributes.get(ENGINE_ORG) == "default"
    assert attributes.get(ENGINE_DEFINITION) == "status-shape"

    action = await wait_for_action(client, handle, "ask")
    advance = await submit(client, action, "fail")
    assert advance["current_step"] == "fail"
    fail = advance["pending_actions"][0]
    await wait_for_visibility(client, f"WorkflowId = '{handle.id}' AND EngineStep = 'fail'", bool)
    await submit(client, fail, error="nope")
    _, error = await run_to_end(handle)
    assert error is not None
    await wait_for_visibility(
        client, f"WorkflowId = '{handle.id}' AND EngineStatus = 'failed'", bool
    )
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(ENGINE_STEP) is None
    final = await status(client, handle)
    assert final["status"] == "failed"
    assert final["error"] == "step 'fail' failed: nope"


async def test_completed_runs_and_children_are_searchable(client: Client, worker: Worker) -> None:
    definition = """
name: status-children
version: 1
steps:
  - id: each
    type: foreach
    items: "[1, 2]"
    max_parallel: 2
    steps:
      - {id: ask, type: prompt, prompt_type: confirm, message: "${{ item }}?"}
"""
    handle = await start(client, definition)
    children = f"EngineDefinition = 'status-children' AND ParentWorkflowId = '{handle.id}'"
    found = await wait_for_visibility(
        client, children + " AND EngineStatus = 'waiting'", lambda ids: len(ids) == 2
    )
    assert sorted(found) == [f"{handle.id}/each/0", f"{handle.id}/each/1"]
    parent = await wait_for_visibility(
        client, f"WorkflowId = '{handle.id}' AND EngineStep = 'each'", bool
    )
    assert parent == [handle.id]
    current = await status(client, handle)
    for action in current["pending_actions"]:
        await submit(client, action, True)
    assert await handle.result() == [True, True]
    await wait_for_visibility(
        client,
        f"WorkflowId = '{handle.id}' AND EngineStatus = 'completed' AND EngineOrg = 'default'",
        bool,
    )
    await wait_for_visibility(
        client, children + " AND EngineStatus = 'completed'", lambda ids: len(ids) == 2
    )
