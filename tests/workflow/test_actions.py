"""External actions: shell, mcp_call, prompt, delegate; needs_state; the update and the signal."""

from __future__ import annotations

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.worker import Worker

from tests.helpers.runs import (
    history_length,
    start,
    status,
    submit,
    submit_signal,
    update_error_message,
    wait_for_action,
    wait_until,
)

EVERY_ACTION = """
name: actions-every-type
version: 1
inputs:
  service: {type: string, default: api}
state:
  secret: s3cr3t
  region: eu
  image: "img:1"
steps:
  - id: build
    type: shell
    command: make build SERVICE="$SERVICE"
    workdir: /src/${{ inputs.service }}
    env: {SERVICE: "${{ inputs.service }}", REGION: "${{ state.region }}", PORT: 8080}
    needs_state: [region]
    output_to: build
  - id: deploy
    type: mcp_call
    server: k8s
    tool: apply
    params: {image: "${{ state.image }}", replicas: 3, build: "${{ state.build.stdout }}"}
    needs_state: [image, build]
    output_to: deployed
  - id: pick
    type: prompt
    prompt_type: choice
    message: Which channel for ${{ inputs.service }}?
    options: [stable, beta]
    default: stable
    output_to: channel
  - id: describe
    type: delegate
    agent: "@writer"
    instruction: Describe the ${{ state.channel }} release of ${{ inputs.service }}
    context: {deployed: "${{ state.deployed }}"}
    output_to: notes
  - id: done
    type: return
    value:
      build: "${{ state.build }}"
      deployed: "${{ state.deployed }}"
      channel: "${{ state.channel }}"
      notes: "${{ state.notes }}"
"""


async def test_every_action_type_round_trip(client: Client, worker: Worker) -> None:
    handle = await start(client, EVERY_ACTION)

    build = await wait_for_action(client, handle, "build")
    assert build["type"] == "shell"
    assert build["parameters"] == {
        "command": 'make build SERVICE="$SERVICE"',
        "workdir": "/src/api",
        "env": {"SERVICE": "api", "REGION": "eu", "PORT": "8080"},
    }
    # needs_state: the action carries only the listed keys, never the secret.
    assert build["state"] == {"region": "eu"}
    assert build["attempt"] == 1
    assert build["workflow_id"] == handle.id
    assert build["run_id"]
    assert build["timeout"] is None and build["deadline"] is None
    waiting = await status(client, handle)
    assert waiting["status"] == "waiting"
    assert waiting["current_step"] == "build"
    assert [a["action_id"] for a in waiting["pending_actions"]] == [build["action_id"]]

    advance = await submit(client, build, {"exit_code": 0, "stdout": "built"})
    assert advance["status"] == "waiting"
    assert advance["current_step"] == "deploy"
    [deploy] = advance["pending_actions"]
    assert deploy["type"] == "mcp_call"
    assert deploy["parameters"] == {
        "server": "k8s",
        "tool": "apply",
        "params": {"image": "img:1", "replicas": 3, "build": "built"},
    }
    assert deploy["state"] == {
        "image": "img:1",
        "build": {"exit_code": 0, "stdout": "built", "stderr": ""},
    }

    advance = await submit(client, deploy, {"pods": 3})
    [pick] = advance["pending_actions"]
    assert pick["type"] == "prompt"
    assert pick["parameters"] == {
        "prompt_type": "choice",
        "message": "Which channel for api?",
        "options": ["stable", "beta"],
        "default": "stable",
    }
    assert "state" not in pick  # no needs_state: the action carries no state at all

    advance = await submit(client, pick, "beta")
    [describe] = advance["pending_actions"]
    assert describe["type"] == "delegate"
    assert describe["parameters"] == {
        "agent": "@writer",
        "instruction": "Describe the beta release of api",
        "context": {"deployed": {"pods": 3}},
    }

    advance = await submit(client, describe, {"text": "all good"})
    expected = {
        "build": {"exit_code": 0, "stdout": "built", "stderr": ""},
        "deployed": {"pods": 3},
        "channel": "beta",
        "notes": {"text": "all good"},
    }
    assert advance == {
        "workflow_id": handle.id,
        "status": "completed",
        "current_step": None,
        "pending_actions": [],
        "result": expected,
        "error": None,
    }
    assert await handle.result() == expected
    final = await status(client, handle)
    assert final["state"]["channel"] == "beta"
    assert final["steps"]["deploy"] == {"status": "completed", "output": {"pods": 3}}
    assert [(e["step_id"], e["type"], e["attempts"]) for e in final["history"]] == [
        ("build", "shell", 1),
        ("deploy", "mcp_call", 1),
        ("pick", "prompt", 1),
        ("describe", "delegate", 1),
        ("done", "return", 1),
    ]


PROMPTS = """
name: actions-prompts
version: 1
steps:
  - {id: info, type: prompt, prompt_type: info, message: FYI}
  - {id: confirm, type: prompt, prompt_type: confirm, message: Sure?, output_to: sure}
  - {id: text, type: prompt, prompt_type: text, message: Name?, output_to: name}
  - {id: choice, type: prompt, prompt_type: choice, message: Size?, options: [1, 2, 3],
     output_to: size}
  - {id: build, type: shell, command: "true", output_to: build}
  - id: done
    type: return
    value: ["${{ state.sure }}", "${{ state.name }}", "${{ state.size }}"]
"""


async def _rejected(client: Client, action: dict[str, object], submission: object) -> str:
    handle = client.get_workflow_handle(str(action["workflow_id"]))
    with pytest.raises(WorkflowUpdateFailedError) as raised:
        await handle.execute_update("submit_result", submission)
    return update_error_message(raised.value)


async def test_rejected_updates_leave_history_untouched(client: Client, worker: Worker) -> None:
    handle = await start(client, PROMPTS)
    info = await wait_for_action(client, handle, "info")
    advance = await submit(client, info, {"seen": True})  # info takes any acknowledgement
    [confirm] = advance["pending_actions"]
    before = await history_length(handle)

    message = await _rejected(client, confirm, {"action_id": confirm["action_id"], "result": 1})
    assert message == "a confirm prompt takes true or false, got 1"
    message = await _rejected(client, confirm, {"step_id": "text", "result": "x"})
    assert message == "step 'text' is not waiting for a result"
    message = await _rejected(client, confirm, {"action_id": "nope", "result": True})
    assert message == "no pending action 'nope' in this run"
    message = await _rejected(client, confirm, {"action_id": info["action_id"], "result": True})
    assert message == "a result for step 'info' was already submitted"
    message = await _rejected(client, confirm, {"result": True})
    assert message == "name the action: give action_id or step_id"
    message = await _rejected(client, confirm, "yes")
    assert message == "a submission is a map with action_id or step_id and result"
    assert await history_length(handle) == before

    # By step id, not action id.
    advance = await handle.execute_update("submit_result", {"step_id": "confirm", "result": True})
    [text] = advance["pending_actions"]
    before = await history_length(handle)
    message = await _rejected(client, text, {"action_id": text["action_id"], "result": 5})
    assert message == "a text prompt takes a string, got 5"
    assert await history_length(handle) == before

    [choice] = (await submit(client, text, "ada"))["pending_actions"]
    before = await history_length(handle)
    message = await _rejected(client, choice, {"action_id": choice["action_id"], "result": 4})
    assert message == "4 is not one of the options: 1, 2, 3"
    message = await _rejected(client, choice, {"action_id": choice["action_id"], "result": "2"})
    assert message == "'2' is not one of the options: 1, 2, 3"
    assert await history_length(handle) == before

    [build] = (await submit(client, choice, 2))["pending_actions"]
    message = await _rejected(client, build, {"action_id": choice["action_id"], "result": 2})
    assert message == "a result for step 'choice' was already submitted"
    before = await history_length(handle)
    for bad, expected in [
        ("ok", "a shell result must be a map {exit_code, stdout, stderr}, got str"),
        ({"stdout": "x"}, "a shell result needs an integer exit_code"),
        ({"exit_code": "0"}, "a shell result needs an integer exit_code"),
        ({"exit_code": True}, "a shell result needs an integer exit_code"),
        ({"exit_code": 0, "stdout": 1}, "shell result field stdout must be a string"),
        (
            {"exit_code": 0, "output": ""},
            "unknown field(s) output in shell result: expected exit_code, stdout, stderr",
        ),
    ]:
        message = await _rejected(client, build, {"action_id": build["action_id"], "result": bad})
        assert message == expected
    assert await history_length(handle) == before
    final = await status(client, handle)
    assert final["status"] == "waiting"
    assert final["pending_actions"][0]["action_id"] == build["action_id"]

    advance = await submit(client, build, {"exit_code": 0})
    assert advance["status"] == "completed"
    assert advance["result"] == [True, "ada", 2]


async def test_signal_submission_and_dropped_bad_signals(client: Client, worker: Worker) -> None:
    handle = await start(client, PROMPTS)
    info = await wait_for_action(client, handle, "info")
    await submit_signal(client, info, None)
    confirm = await wait_for_action(client, handle, "confirm")
    await submit_signal(client, confirm, "not a bool")  # logged and dropped
    await submit_signal(client, {**confirm, "action_id": "unknown"}, True)
    current = await status(client, handle)
    assert current["current_step"] == "confirm"
    assert current["pending_actions"][0]["action_id"] == confirm["action_id"]
    await submit_signal(client, confirm, False)
    await wait_for_action(client, handle, "text")
    final = await status(client, handle)
    assert final["state"]["sure"] is False
    await handle.terminate("done with the test")


async def test_error_submission_fails_the_step(client: Client, worker: Worker) -> None:
    definition = """
name: actions-error
version: 1
steps:
  - {id: call, type: mcp_call, tool: lookup, params: {}}
"""
    handle = await start(client, definition)
    call = await wait_for_action(client, handle, "call")
    advance = await submit(client, call, error="tool lookup is down")
    assert advance["status"] == "failed"
    assert advance["error"] == "step 'call' failed: tool lookup is down"
    final = await wait_until(client, handle, lambda s: s["status"] == "failed")
    assert final["steps"]["call"] == {
        "status": "failed",
        "output": None,
        "error": "tool lookup is down",
    }
    assert final["history"][-1]["outcome"] == "failed"
    assert final["history"][-1]["error"] == "tool lookup is down"
    assert final["pending_actions"] == []
