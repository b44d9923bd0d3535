#!/usr/bin/env python3
"""Record the histories the replay tests replay: ``.venv/bin/python tests/replay/record.py``.

Starts its own Temporal dev server and interpreter worker, runs the scripted main path of every
example in ``examples/`` (``tests/helpers/example_scripts.py``) with the end-to-end tests'
driver, and writes each run's history (``WorkflowHistory.to_json()``) under ``claimed/``:
``<example>.json`` for the run, ``<example>.<foreach step>.<index>[...].json`` for each foreach
child. A run's workflow id is ``replay-<example>``, so the replay test can derive every id from
the file name (a child's id, ``{parent}/{step}/{index}``, is part of its parent's commands).
Shell, MCP and delegate actions are performed as executors do (claimed from their task queues);
prompts are answered by id, as people do.

The histories directly in this directory were recorded before actions were activity tasks
(every action answered by id); they are kept as they are, so that runs started then keep
replaying. Re-record (``make replay-record``) after a change to the interpreter that is *meant*
to change the commands a run issues, behind ``workflow.patched``; the replay tests exist to
catch the changes that are not.

Besides the examples, ``--scenarios`` records runs of behaviour no example shows (see
:data:`SCENARIOS`): a prompt answered under rules by several people, a retry backoff long enough
for a submitted error to be answered at once. Their files are named after the scenario.

Usage: record.py [EXAMPLE ...]   (default: every example)
       record.py --scenarios [SCENARIO ...]   (only the scenarios; default: every one)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine.context import OrgContext  # noqa: E402
from engine.definition import load_definition  # noqa: E402
from engine.protocol import (  # noqa: E402
    CLAIMED_ACTION_TYPES,
    GET_STATUS,
    SEND_EVENT,
    SUBMIT_RESULT,
)
from engine.workflow import (  # noqa: E402
    WorkflowFactory,
    build_worker,
    ensure_search_attributes,
    resolve_calls,
    start_workflow,
)
from tests.helpers.devserver import start_dev_server  # noqa: E402
from tests.helpers.drive import drive  # noqa: E402
from tests.helpers.example_scripts import example_names, load_example, script  # noqa: E402
from tests.helpers.runs import start  # noqa: E402

HERE = Path(__file__).resolve().parent / "claimed"
TASK_QUEUE = "replay-recorder"
ID_PREFIX = "replay-"


def history_path(workflow_id: str) -> Path:
    """``replay-deploy-service/rollout/0`` -> ``deploy-service.rollout.0.json``."""
    return HERE / f"{workflow_id.removeprefix(ID_PREFIX).replace('/', '.')}.json"


async def record(examples: list[str]) -> int:
    server = await start_dev_server()
    try:
        client = await server.connect()
        await ensure_search_attributes(client)
        async with build_worker(client, task_queue=TASK_QUEUE):
            for example in examples:
                definition = load_example(example)
                run_script = script(example)
                handle = await start(
                    client,
                    definition,
                    run_script.inputs,
                    workflow_id=f"{ID_PREFIX}{example}",
                    task_queue=TASK_QUEUE,
                )
                run = await drive(
                    client,
                    handle,
                    definition,
                    run_script.answers,
                    timeout=60,
                    claimed_types=CLAIMED_ACTION_TYPES,
                    task_queue=TASK_QUEUE,
                )
                if run.failure is not None:
                    print(f"{example}: the run failed: {run.failure_message}", file=sys.stderr)
                    return 1
                HERE.mkdir(exist_ok=True)
                for stale in HERE.glob(f"{example}.*json"):
                    stale.unlink()
                for workflow_id in run.workflows:
                    history = await client.get_workflow_handle(workflow_id).fetch_history()
                    # Indented: a reviewer can read what changed when a history is re-recorded.
                    text = json.dumps(json.loads(history.to_json()), indent=1) + "\n"
                    path = history_path(workflow_id)
                    path.write_text(text)
                    events = len(history.events)
                    print(f"{path.relative_to(ROOT)}: {events} events, {len(text):,} bytes")
    finally:
        server.stop()
    return 0


GOVERNED = """
name: governed
version: 1
steps:
  - id: approve
    type: prompt
    prompt_type: confirm
    message: Ship it?
    approvers: {roles: [release], subjects: [dana]}
    approvals: 2
    allow_starter: false
    output_to: ok
  - {id: done, type: return, value: "${{ state.ok }}"}
"""

BACKOFF = """
name: backoff
version: 1
steps:
  - id: build
    type: mcp_call
    tool: build
    retry: {max_attempts: 2, initial_interval: 3s}
    output_to: built
  - {id: done, type: return, value: "${{ state.built }}"}
"""


CONTROL_FLOW = """
name: control-flow
version: 1
state: {green: false, rounds: []}
steps:
  - id: fix_rounds
    type: loop
    until: state.green
    max_iterations: 3
    steps:
      - {id: fix, type: delegate, agent: "@fixer", instruction: "round ${{ loop.iteration }}",
         output_to: fixed}
      - {id: note, type: set_state, set: {rounds: "${{ state.rounds + [loop.iteration] }}",
         green: "${{ state.fixed == 'green' }}"}}
      - {id: enough, type: break, when: "loop.iteration >= 2"}
  - id: checks
    type: parallel
    branches:
      lint: [{id: lint, type: shell, command: make lint}]
      review: [{id: review, type: prompt, prompt_type: confirm, message: Looks good?}]
  - id: guarded
    type: try
    steps:
      - {id: deploy, type: mcp_call, tool: deploy}
    catch:
      - {id: noted, type: set_state, set: {failed_step: "${{ error.step }}"}}
    finally:
      - {id: pause, type: wait, duration: 1s}
  - id: merged
    type: wait_for
    event: pr_merged
    correlate: "event.pr == 7"
    timeout: 1h
    output_to: merge
  - id: squares
    type: foreach
    items: "[1, 2, 3]"
    as: n
    steps:
      - {id: square, type: set_state, set: {sq: "${{ n * n }}"}}
      - {id: item_done, type: return, value: "${{ state.sq }}"}
    output_to: squared
  - id: done
    type: return
    value:
      squared: "${{ state.squared }}"
      rounds: "${{ state.rounds }}"
      checks: "${{ steps.checks.output }}"
      failed_step: "${{ state.failed_step }}"
      merge: "${{ state.merge }}"
"""


async def _control_flow(client: Any, workflow_id: str) -> None:
    handle = await start(client, CONTROL_FLOW, workflow_id=workflow_id, task_queue=TASK_QUEUE)
    answers: dict[str, list[Any]] = {
        "fix": ["red", "green"],
        "lint": [{"exit_code": 0, "stdout": "ok", "stderr": ""}],
        "review": [True],
    }
    while any(answers.values()):
        for action in await _pending(handle):
            result = answers[action["step_id"]].pop(0)
            await handle.execute_update(
                SUBMIT_RESULT, {"action_id": action["action_id"], "result": result}
            )
    deploy = (await _pending(handle))[0]
    await handle.execute_update(
        SUBMIT_RESULT, {"action_id": deploy["action_id"], "error": "the cluster is down"}
    )
    for pr in (8, 7):
        await handle.signal(
            SEND_EVENT, {"name": "pr_merged", "payload": {"pr": pr}, "event_id": f"e{pr}"}
        )
    assert await handle.result() == {
        "squared": [1, 4, 9],
        "rounds": [0, 1],
        "checks": {"lint": {"exit_code": 0, "stdout": "ok", "stderr": ""}, "review": True},
        "failed_step": "deploy",
        "merge": {"pr": 7},
    }


CALLEE = """
name: callee
version: 1
inputs:
  who: {type: string, required: true}
steps:
  - {id: ask, type: prompt, prompt_type: text, message: "Name ${{ inputs.who }}", output_to: n}
  - {id: done, type: return, value: "${{ inputs.who + ' ' + state.n }}"}
"""

CALLER = """
name: caller
version: 1
steps:
  - {id: sub, type: call, definition: callee, inputs: {who: ada}, output_to: named}
  - {id: done, type: return, value: "${{ state.named }}"}
"""


class _Definitions:
    """The registry of the call scenario: the callee, version 1 (no pins)."""

    async def get(self, org: Any, name: str, version: int | None) -> Any:
        assert name == "callee"
        return load_definition(CALLEE)

    async def pins(self, org: Any, name: str, version: int) -> dict[str, int]:
        return {}


async def _call(client: Any, workflow_id: str) -> list[str]:
    caller = load_definition(CALLER)
    org = OrgContext("default", "default")
    start = WorkflowFactory(TASK_QUEUE).prepare(
        caller, {}, org, workflow_id, called=await resolve_calls(_Definitions(), org, caller)
    )
    handle = await client.start_workflow(
        start.workflow_type,
        start.input,
        id=workflow_id,
        task_queue=TASK_QUEUE,
        search_attributes=start.search_attributes,
    )
    [action] = await _pending(handle)
    child = client.get_workflow_handle(action["workflow_id"])
    await child.execute_update(SUBMIT_RESULT, {"action_id": action["action_id"], "result": "L"})
    assert await handle.result() == "ada L"
    return [action["workflow_id"]]


async def _pending(handle: Any) -> list[dict[str, Any]]:
    await _until_pending(handle)
    actions: list[dict[str, Any]] = (await handle.query(GET_STATUS))["pending_actions"]
    return actions


async def _governed(client: Any, workflow_id: str) -> None:
    org = OrgContext("default", "default", ("release",), "alice")
    handle = await start_workflow(
        client,
        load_definition(GOVERNED),
        {},
        org=org,
        workflow_id=workflow_id,
        task_queue=TASK_QUEUE,
    )
    for subject, roles in (("bob", ["release"]), ("dana", [])):
        await _until_pending(handle)
        await handle.execute_update(
            SUBMIT_RESULT,
            {"step_id": "approve", "result": True, "actor": {"subject": subject, "roles": roles}},
        )
    assert await handle.result() is True


async def _backoff(client: Any, workflow_id: str) -> None:
    handle = await start(client, BACKOFF, workflow_id=workflow_id, task_queue=TASK_QUEUE)
    actor = {"subject": "ci", "roles": []}
    await _until_pending(handle)
    advance = await handle.execute_update(
        SUBMIT_RESULT, {"step_id": "build", "error": "flaky", "actor": actor}
    )
    assert advance["status"] == "running", advance  # answered as the backoff began
    await _until_pending(handle)
    await handle.execute_update(
        SUBMIT_RESULT, {"step_id": "build", "result": {"ok": True}, "actor": actor}
    )
    assert await handle.result() == {"ok": True}


async def _until_pending(handle: Any) -> None:
    for _ in range(200):
        status = await handle.query(GET_STATUS)
        if status["pending_actions"]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no pending action")


SCENARIOS: dict[str, Callable[[Any, str], Awaitable[list[str] | None]]] = {
    "governed": _governed,
    "backoff": _backoff,
    "control-flow": _control_flow,
    "call": _call,
}
"""Behaviour no example shows, each a scripted run: its history is ``<name>.json``."""


async def record_scenarios(names: list[str]) -> int:
    server = await start_dev_server()
    try:
        client = await server.connect()
        await ensure_search_attributes(client)
        async with build_worker(client, task_queue=TASK_QUEUE):
            for name in names:
                scenario = SCENARIOS[name]
                workflow_id = f"{ID_PREFIX}{name}"
                children = await scenario(client, workflow_id) or []
                for recorded in (workflow_id, *children):
                    history = await client.get_workflow_handle(recorded).fetch_history()
                    text = json.dumps(json.loads(history.to_json()), indent=1) + "\n"
                    path = history_path(recorded)
                    path.write_text(text)
                    print(f"{path.relative_to(ROOT)}: {len(history.events)} events")
    finally:
        server.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("examples", nargs="*", metavar="EXAMPLE", help="default: every example")
    parser.add_argument("--scenarios", action="store_true", help="record only the scenarios")
    arguments = parser.parse_args()
    if arguments.scenarios:
        unknown = sorted(set(arguments.examples) - set(SCENARIOS))
        if unknown:
            parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
        return asyncio.run(record_scenarios(arguments.examples or list(SCENARIOS)))
    known = example_names()
    unknown = sorted(set(arguments.examples) - set(known))
    if unknown:
        parser.error(f"unknown example(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return asyncio.run(record(arguments.examples or known))


if __name__ == "__main__":
    sys.exit(main())
