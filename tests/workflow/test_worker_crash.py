"""A worker killed with SIGKILL loses nothing: a new worker resumes its runs from history.

The worker runs as a real ``engined worker`` subprocess (``cmd/engined``) on a task queue of its
own, against the session's dev server. Each test brings a run to a point where it is suspended,
kills the worker with ``kill -9`` (no graceful shutdown, no chance to flush anything), starts a
new worker process, submits the outstanding results and checks that the run completes with
everything it had computed before the crash.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from temporalio.client import Client

from tests.helpers.devserver import DevServer
from tests.helpers.processes import WorkerProcess
from tests.helpers.runs import start, status, submit, unique_id, wait_for_action, wait_until


@pytest.fixture
def workers(temporal_server: DevServer) -> Iterator[list[WorkerProcess]]:
    """Starts worker processes on demand; none survives the test, whatever happens."""
    started: list[WorkerProcess] = []
    try:
        yield started
    finally:
        for process in started:
            process.stop()
        assert all(p.process.poll() is not None for p in started)


async def spawn(workers: list[WorkerProcess], server: DevServer, task_queue: str) -> WorkerProcess:
    process = WorkerProcess(server.address, task_queue)
    workers.append(process)
    await process.ready()
    return process


SINGLE = """
name: crash-single
version: 1
inputs:
  ticket: {type: string, required: true}
state:
  ticket: "${{ inputs.ticket }}"
  stage: new
steps:
  - {id: mark, type: set_state, set: {stage: built-before-crash}}
  - {id: build, type: shell, command: make build, env: {TICKET: "${{ inputs.ticket }}"},
     output_to: build}
  - {id: approve, type: prompt, prompt_type: confirm, message: "Ship ${{ inputs.ticket }}?",
     output_to: approved}
  - id: done
    type: return
    value:
      ticket: "${{ state.ticket }}"
      stage: "${{ state.stage }}"
      build: "${{ state.build.stdout }}"
      approved: "${{ state.approved }}"
"""


async def test_run_waiting_on_an_action_survives_kill_9(
    client: Client, temporal_server: DevServer, workers: list[WorkerProcess]
) -> None:
    task_queue = unique_id("crash-single")
    first = await spawn(workers, temporal_server, task_queue)
    handle = await start(client, SINGLE, {"ticket": "OPS-7"}, task_queue=task_queue)
    build = await wait_for_action(client, handle, "build")
    advance = await submit(client, build, {"exit_code": 0, "stdout": "image:42", "stderr": ""})
    assert advance["current_step"] == "approve"
    before = await status(client, handle)
    assert before["state"]["build"]["stdout"] == "image:42"

    first.kill9()
    await spawn(workers, temporal_server, task_queue)

    # The run's next task first waits out the dead worker's sticky queue (10 s), as it would in
    # production, then goes to the new worker, which rebuilds the run from its history.
    after = await wait_until(client, handle, lambda s: s["status"] == "waiting", timeout=60)
    # Same action (only the seconds left have changed), same state, same step history.
    assert after["pending_actions"] == [
        {**before["pending_actions"][0], "timeout": after["pending_actions"][0]["timeout"]}
    ]
    assert after["state"] == before["state"]
    assert after["history"] == before["history"]
    advance = await submit(client, after["pending_actions"][0], True)
    assert advance["status"] == "completed"
    assert await handle.result() == {
        "ticket": "OPS-7",
        "stage": "built-before-crash",
        "build": "image:42",
        "approved": True,
    }


FANOUT = """
name: crash-fanout
version: 1
state: {}
steps:
  - {id: prepare, type: set_state, set: {batch: b-7}}
  - id: each
    type: foreach
    items: '["a", "b", "c"]'
    as: part
    max_parallel: 3
    steps:
      - {id: work, type: shell, command: ./work.sh, env: {PART: "${{ part }}"}, output_to: out}
      - id: part_done
        type: return
        value: {part: "${{ part }}", out: "${{ state.out.stdout }}", batch: "${{ state.batch }}"}
    output_to: parts
  - {id: done, type: return, value: {batch: "${{ state.batch }}", parts: "${{ state.parts }}"}}
"""


def _work_actions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["workflow_id"]: a for a in status["pending_actions"] if a["step_id"] == "work"}


async def test_run_in_the_middle_of_a_foreach_survives_kill_9(
    client: Client, temporal_server: DevServer, workers: list[WorkerProcess]
) -> None:
    task_queue = unique_id("crash-fanout")
    first = await spawn(workers, temporal_server, task_queue)
    handle = await start(client, FANOUT, task_queue=task_queue)
    children = [f"{handle.id}/each/{index}" for index in range(3)]
    fanned = await wait_until(client, handle, lambda s: len(_work_actions(s)) == 3, timeout=30)
    # Item 0 finishes before the crash; items 1 and 2 are waiting on their actions.
    await submit(client, _work_actions(fanned)[children[0]], {"exit_code": 0, "stdout": "A"})
    await wait_until(client, children[0], lambda s: s["status"] == "completed")
    await wait_until(client, handle, lambda s: sorted(_work_actions(s)) == children[1:])

    first.kill9()
    await spawn(workers, temporal_server, task_queue)

    # As above, the first task after the crash waits out the dead worker's sticky queue.
    after = await wait_until(
        client, handle, lambda s: sorted(_work_actions(s)) == children[1:], timeout=60
    )
    assert after["status"] == "running" and after["current_step"] == "each"
    assert after["state"] == {"batch": "b-7"}
    for child_id, stdout in zip(children[1:], ["B", "C"], strict=True):
        action = _work_actions(after)[child_id]
        assert action["parameters"]["env"] == {"PART": stdout.lower()}
        await submit(client, action, {"exit_code": 0, "stdout": stdout})
    assert await handle.result() == {
        "batch": "b-7",
        "parts": [
            {"part": "a", "out": "A", "batch": "b-7"},
            {"part": "b", "out": "B", "batch": "b-7"},
            {"part": "c", "out": "C", "batch": "b-7"},
        ],
    }
    final = await status(client, handle)
    assert [(h["step_id"], h["outcome"]) for h in final["history"]] == [
        ("prepare", "completed"),
        ("each", "completed"),
        ("done", "completed"),
    ]
