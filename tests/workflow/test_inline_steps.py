"""Inline steps (condition, set_state, return), ``when``, ``output_to`` and run inputs."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.service import RPCError
from temporalio.worker import Worker

from engine.definition import InputError, load_definition
from engine.workflow import WorkflowFactory, start_workflow
from tests.helpers.runs import ORG, TASK_QUEUE, start, status, unique_id

BRANCHES = """
name: inline-branches
version: 1
inputs:
  env: {type: string, enum: [staging, prod], default: staging}
  replicas: {type: integer, default: 2}
  labels: {type: map, default: {team: platform}}
state:
  greeting: "run for ${{ inputs.env }}"
  count: 0
steps:
  - id: bump
    type: set_state
    set: {count: "${{ state.count + inputs.replicas }}", tag: "${{ inputs.labels.team }}"}
    output_to: last_set
  - id: gate
    type: condition
    if: inputs.env == "prod"
    then:
      - {id: strict, type: set_state, set: {mode: strict}}
    else:
      - {id: relaxed, type: set_state, set: {mode: relaxed}}
    output_to: went_then
  - {id: prod_only, type: set_state, when: inputs.env == "prod", set: {paged: true}}
  - {id: staging_only, type: set_state, when: "inputs.env != 'prod'", set: {paged: false}}
  - id: done
    type: return
    value:
      greeting: "${{ state.greeting }}"
      count: "${{ state.count }}"
      tag: "${{ state.tag }}"
      mode: "${{ state.mode }}"
      paged: "${{ state.paged }}"
      went_then: "${{ state.went_then }}"
      last_set: "${{ state.last_set }}"
      skipped: "${{ steps.prod_only.status }}"
"""


async def test_defaults_condition_set_state_and_return(client: Client, worker: Worker) -> None:
    handle = await start(client, BRANCHES)
    assert await handle.result() == {
        "greeting": "run for staging",
        "count": 2,
        "tag": "platform",
        "mode": "relaxed",
        "paged": False,
        "went_then": False,
        "last_set": {"count": 2, "tag": "platform"},
        "skipped": "skipped",
    }
    final = await status(client, handle)
    assert final["status"] == "completed"
    assert final["error"] is None
    outcomes = {entry["step_id"]: entry["outcome"] for entry in final["history"]}
    assert outcomes == {
        "bump": "completed",
        "gate": "completed",
        "relaxed": "completed",
        "prod_only": "skipped",
        "staging_only": "completed",
        "done": "completed",
    }
    assert final["steps"]["prod_only"] == {"status": "skipped", "output": None}
    # Inline steps write nothing to history of their own: no activity, no marker, no timer.
    events = [event async for event in handle.fetch_history_events()]
    assert not any(event.HasField("activity_task_scheduled_event_attributes") for event in events)
    assert not any(event.HasField("timer_started_event_attributes") for event in events)


async def test_then_branch_and_given_inputs(client: Client, worker: Worker) -> None:
    handle = await start(client, BRANCHES, {"env": "prod", "replicas": 5})
    result = await handle.result()
    assert result["mode"] == "strict"
    assert result["count"] == 5
    assert result["paged"] is True
    assert result["went_then"] is True
    assert result["skipped"] == "completed"
    final = await status(client, handle)
    assert final["steps"]["staging_only"]["status"] == "skipped"
    assert final["history"][-1]["step_id"] == "done"


async def test_return_inside_condition_ends_the_run(client: Client, worker: Worker) -> None:
    definition = """
name: inline-early-return
version: 1
inputs:
  stop: {type: boolean, default: true}
steps:
  - id: check
    type: condition
    if: inputs.stop
    then:
      - {id: early, type: return, value: {stopped: "${{ inputs.stop }}"}}
  - {id: late, type: return, value: late}
"""
    handle = await start(client, definition)
    assert await handle.result() == {"stopped": True}
    final = await status(client, handle)
    assert "late" not in final["steps"]
    assert final["result"] == {"stopped": True}
    assert await (await start(client, definition, {"stop": False})).result() == "late"


async def test_run_without_return_yields_last_completed_output(
    client: Client, worker: Worker
) -> None:
    definition = """
name: inline-last-output
version: 1
steps:
  - {id: first, type: set_state, set: {a: 1}}
  - {id: second, type: set_state, set: {b: "${{ state.a + 1 }}"}}
  - {id: skipped, type: set_state, when: "false", set: {c: 3}}
"""
    handle = await start(client, definition)
    assert await handle.result() == {"b": 2}


async def test_expression_error_fails_the_run_with_its_message(
    client: Client, worker: Worker
) -> None:
    definition = """
name: inline-bad-expression
version: 1
inputs:
  n: {type: integer, default: 0}
steps:
  - {id: divide, type: set_state, set: {x: "${{ 10 / inputs.n }}"}}
"""
    handle = await start(client, definition)
    with pytest.raises(WorkflowFailureError) as raised:
        await handle.result()
    assert "step 'divide' failed" in str(raised.value.cause)
    final = await status(client, handle)
    assert final["status"] == "failed"
    assert final["steps"]["divide"]["status"] == "failed"
    assert "division by zero" in final["steps"]["divide"]["error"]
    assert final["error"].startswith("step 'divide' failed: ")
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED


async def test_when_error_with_continue_records_failure(client: Client, worker: Worker) -> None:
    definition = """
name: inline-when-error
version: 1
steps:
  - {id: odd, type: set_state, when: "10 / size(state) > 1", on_error: continue, set: {a: 1}}
  - {id: done, type: return, value: "${{ steps.odd.status }}"}
"""
    handle = await start(client, definition)
    assert await handle.result() == "failed"
    final = await status(client, handle)
    assert final["steps"]["odd"]["error"]


async def test_bad_inputs_are_rejected_before_any_run_exists(
    client: Client, worker: Worker
) -> None:
    definition = load_definition(BRANCHES)
    workflow_id = unique_id("bad-input")
    with pytest.raises(InputError) as raised:
        WorkflowFactory(TASK_QUEUE).prepare(
            definition, {"env": "qa", "replicas": "3", "colour": 1}, ORG, workflow_id
        )
    messages = raised.value.messages
    assert any("unknown input 'colour'" in m for m in messages)
    assert any("input 'env' must be one of" in m for m in messages)
    assert any("input 'replicas' must be of type integer" in m for m in messages)
    with pytest.raises(InputError):
        await start_workflow(
            client,
            definition,
            {"env": "qa"},
            org=ORG,
            workflow_id=workflow_id,
            task_queue=TASK_QUEUE,
        )
    with pytest.raises(RPCError):
        await client.get_workflow_handle(workflow_id).describe()


async def test_required_input_and_defaults_in_status(client: Client, worker: Worker) -> None:
    definition = """
name: inline-required
version: 1
inputs:
  service: {type: string, required: true}
  regions: {type: list, default: [us, eu]}
steps:
  - {id: done, type: return, value: "${{ inputs.service + ':' + join(inputs.regions, ',') }}"}
"""
    with pytest.raises(InputError, match="missing required input 'service'"):
        await start(client, definition, {})
    handle = await start(client, definition, {"service": "api", "regions": None})
    assert await handle.result() == "api:us,eu"
    final = await status(client, handle)
    assert final["definition"]["name"] == "inline-required"
    assert final["definition"]["version"] == 1
    assert final["definition"]["hash"] == load_definition(definition).content_hash
    assert final["workflow_type"] == "inline-required:1"


async def test_initial_state_that_fails_fails_the_run(client: Client, worker: Worker) -> None:
    definition = """
name: inline-bad-state
version: 1
inputs:
  n: {type: integer, default: 0}
state:
  ratio: "${{ 10 / inputs.n }}"
steps:
  - {id: done, type: return, value: "${{ state.ratio }}"}
"""
    assert await (await start(client, definition, {"n": 5})).result() == 2
    handle = await start(client, definition)
    with pytest.raises(WorkflowFailureError) as raised:
        await asyncio.wait_for(handle.result(), 10)
    message = getattr(raised.value.cause, "message", "")
    assert message.startswith("the initial state failed: division by zero")
    final = await status(client, handle)
    assert final["status"] == "failed"
    assert final["error"] == message
