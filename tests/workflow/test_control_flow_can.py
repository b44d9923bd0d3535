"""Continue-as-new inside loop, parallel and try: a run that crosses several runs resumes each
construct where it stopped (the loop's iteration, the branches still running and each one's
position, the try's block) and ends with exactly the result of an uninterrupted run.

This module runs its own dev server, on which Temporal suggests continuing as new after 40
history events (so that short definitions cross several runs) and fires timers without the
server's default second of lateness (so that a loop of short waits stays short).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.worker import Replayer

from engine.protocol import SEND_EVENT
from engine.workflow import EngineWorkflow, build_worker, ensure_search_attributes, sandbox_runner
from tests.helpers.devserver import start_dev_server
from tests.helpers.runs import TASK_QUEUE, start, status, submit, wait_until

SUGGEST_AFTER = 40

Handle = WorkflowHandle[Any, Any]


@pytest.fixture(scope="module")
async def short_client() -> AsyncIterator[Client]:
    """A dev server that suggests continue-as-new early, with its own interpreter worker."""
    server = await start_dev_server(
        dynamic_config=[
            f"limit.historyCount.suggestContinueAsNew={SUGGEST_AFTER}",
            'history.timerProcessorMaxTimeShift="1ms"',
        ]
    )
    try:
        client = await server.connect()
        await ensure_search_attributes(client)
        async with build_worker(client, task_queue=TASK_QUEUE):
            yield client
    finally:
        server.stop()


class Chain:
    """The runs of one workflow id, first run first: each one's event types, and the progress
    (the position) each run after the first started from."""

    def __init__(self) -> None:
        self.events: list[list[int]] = []
        self.progress: list[dict[str, Any]] = []

    def __len__(self) -> int:
        return len(self.events)

    def count(self, event_type: int) -> int:
        return sum(run.count(event_type) for run in self.events)

    def carried(self, key: str) -> list[dict[str, Any]]:
        """What each continued run carried under ``key`` (loops, parallels, tries)."""
        return [progress[key] for progress in self.progress if key in progress]


async def _chain(client: Client, handle: Handle, *, completed: bool = True) -> Chain:
    """The run chain of ``handle``: every run replays cleanly, and every run but the last
    ended by continuing as new."""
    replayer = Replayer(workflows=[EngineWorkflow], workflow_runner=sandbox_runner(strict=True))
    chain = Chain()
    run_id: str | None = (await status(client, handle))["run_id"]
    while run_id:
        history = await client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        await replayer.replay_workflow(history)
        chain.events.insert(0, [event.event_type for event in history.events])
        started = history.events[0].workflow_execution_started_event_attributes
        run_input = json.loads(started.input.payloads[0].data)
        if run_input.get("progress"):
            chain.progress.insert(0, run_input["progress"])
        run_id = started.continued_execution_run_id or None
    for earlier in chain.events[:-1]:
        assert earlier[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    last = (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
        if completed
        else EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
    )
    assert chain.events[-1][-1] == last
    assert len(chain.progress) == len(chain.events) - 1
    return chain


def _entries(final: dict[str, Any], step_id: str) -> list[dict[str, Any]]:
    return [entry for entry in final["history"] if entry["step_id"] == step_id]


TIMER_STARTED = EventType.EVENT_TYPE_TIMER_STARTED


# -- loop -------------------------------------------------------------------------------------

ACTION_LOOP = """
name: can-loop-actions
version: 1
state:
  answers: []
steps:
  - {id: before, type: set_state, set: {started: true}}
  - id: ask_each
    type: loop
    until: size(state.answers) >= 30
    max_iterations: 40
    output_to: asked
    steps:
      - id: ask
        type: prompt
        prompt_type: text
        message: "question ${{ loop.iteration }}"
        output_to: said
      - {id: keep, type: set_state, set: {answers: "${{ state.answers + [state.said] }}"}}
  - id: done
    type: return
    value: {answers: "${{ state.answers }}", asked: "${{ state.asked }}",
            started: "${{ state.started }}"}
"""


async def test_loop_of_30_actions_continues_as_new_and_asks_each_once(
    short_client: Client,
) -> None:
    handle = await start(short_client, ACTION_LOOP)
    run_ids: set[str] = set()
    answered: set[str] = set()
    next_actions: list[dict[str, Any]] = []
    for i in range(30):
        if not next_actions:
            # The update that answered the last one ended with a run that continued as new:
            # the next run has the next action.
            current = await wait_until(
                short_client,
                handle,
                lambda s: any(a["action_id"] not in answered for a in s["pending_actions"]),
            )
            next_actions = current["pending_actions"]
        [action] = next_actions
        assert action["parameters"]["message"] == f"question {i}"
        answered.add(action["action_id"])
        run_ids.add(action["run_id"])
        advance = await submit(short_client, action, f"answer {i}")
        next_actions = advance["pending_actions"]
    assert await handle.result() == {
        "answers": [f"answer {i}" for i in range(30)],
        "asked": {"iterations": 30, "broke": False},
        "started": True,
    }
    final = await status(short_client, handle)
    assert final["continued"] >= 2
    assert len(run_ids) >= 3  # the actions themselves came from several runs
    chain = await _chain(short_client, handle)
    assert len(chain) == final["continued"] + 1
    # Each run after the first resumed the loop at the iteration where the previous stopped.
    iterations = [carried["ask_each"] for carried in chain.carried("loops")]
    assert iterations == sorted(iterations)
    assert len(iterations) >= 2
    assert all(0 < iteration < 30 for iteration in iterations)
    # The loop keeps one history entry, however many runs it spans; its steps one per round.
    assert [(e["step_id"], e["outcome"]) for e in _entries(final, "ask_each")] == [
        ("ask_each", "completed")
    ]
    assert len(_entries(final, "ask")) == 30
    assert len(_entries(final, "before")) == 1


WAIT_LOOP = """
name: can-loop-waits
version: 1
state:
  count: 0
  seen: []
steps:
  - id: rounds
    type: loop
    while: state.count < 12
    max_iterations: 20
    output_to: rounds
    steps:
      - {id: nap, type: wait, duration: 10ms, message: "round ${{ loop.iteration }}"}
      - id: tally
        type: set_state
        set: {count: "${{ state.count + 1 }}", seen: "${{ state.seen + [loop.iteration] }}"}
  - id: done
    type: return
    value: {count: "${{ state.count }}", seen: "${{ state.seen }}", rounds: "${{ state.rounds }}"}
"""


async def test_loop_of_waits_continues_as_new_and_runs_every_iteration_once(
    short_client: Client,
) -> None:
    handle = await start(short_client, WAIT_LOOP)
    assert await handle.result() == {
        "count": 12,
        "seen": list(range(12)),
        "rounds": {"iterations": 12, "broke": False},
    }
    final = await status(short_client, handle)
    assert final["continued"] >= 1
    chain = await _chain(short_client, handle)
    # Every wait ran exactly once over the whole chain: no iteration repeated, none skipped
    # (a resumed iteration does not evaluate `while` again, nor run its finished steps).
    assert chain.count(TIMER_STARTED) == 12
    assert chain.carried("loops")
    assert len(_entries(final, "nap")) == 12
    assert len(_entries(final, "rounds")) == 1


async def test_nested_loops_with_a_break_resume_both_positions(short_client: Client) -> None:
    definition = """
name: can-nested-loops
version: 1
state:
  pairs: []
steps:
  - id: outer
    type: loop
    max_iterations: 4
    steps:
      - {id: remember, type: set_state, set: {o: "${{ loop.iteration }}"}}
      - id: inner
        type: loop
        max_iterations: 10
        steps:
          - {id: nap, type: wait, duration: 10ms}
          - id: pair
            type: set_state
            set: {pairs: "${{ state.pairs + [[state.o, loop.iteration]] }}"}
          - {id: enough, type: break, when: loop.iteration == state.o}
  - {id: done, type: return, value: "${{ state.pairs }}"}
"""
    handle = await start(short_client, definition)
    expected = [[o, i] for o in range(4) for i in range(o + 1)]
    assert await handle.result() == expected
    final = await status(short_client, handle)
    assert final["continued"] >= 1
    chain = await _chain(short_client, handle)
    assert chain.count(TIMER_STARTED) == len(expected)
    assert any("inner" in loops for loops in chain.carried("loops"))
    assert final["steps"]["inner"]["output"] == {"iterations": 4, "broke": True}
    assert final["steps"]["outer"]["output"] == {"iterations": 4, "broke": False}


# -- try --------------------------------------------------------------------------------------

TRY_LOOP = """
name: can-loop-try
version: 1
state:
  ok: 0
  caught: []
  cleanups: 0
steps:
  - id: rounds
    type: loop
    max_iterations: 9
    steps:
      - id: guarded
        type: try
        steps:
          - {id: risky, type: set_state, set: {ok: "${{ state.ok + 12 / (loop.iteration % 4) }}"}}
          - {id: nap, type: wait, duration: 10ms}
        catch:
          - {id: catch_nap, type: wait, duration: 10ms}
          - id: note
            type: set_state
            set: {caught: "${{ state.caught + [[loop.iteration, error.step]] }}"}
        finally:
          - {id: cleanup, type: set_state, set: {cleanups: "${{ state.cleanups + 1 }}"}}
  - id: done
    type: return
    value: {ok: "${{ state.ok }}", caught: "${{ state.caught }}", cleanups: "${{ state.cleanups }}"}
"""


async def test_try_inside_a_loop_resumes_its_block_across_runs(short_client: Client) -> None:
    handle = await start(short_client, TRY_LOOP)
    failing = [i for i in range(9) if i % 4 == 0]
    assert await handle.result() == {
        "ok": sum(12 // (i % 4) for i in range(9) if i % 4),
        "caught": [[i, "risky"] for i in failing],
        "cleanups": 9,
    }
    final = await status(short_client, handle)
    assert final["continued"] >= 1
    chain = await _chain(short_client, handle)
    # One wait per round (in steps, or in catch when risky failed before it).
    assert chain.count(TIMER_STARTED) == 9
    # The waits end the try's blocks: the run continued as new inside the try, which resumed.
    phases = [tries["guarded"]["phase"] for tries in chain.carried("tries")]
    assert phases
    assert set(phases) <= {"catch", "finally"}


FINALLY_NAPS = """
      - id: naps
        type: loop
        max_iterations: 10
        steps:
          - {id: nap, type: wait, duration: 10ms}
"""

TRY_ENDINGS = {
    "failure": (
        """
name: can-finally-failure
version: 1
state:
  zero: 0
steps:
  - id: guarded
    type: try
    steps:
      - {id: explode, type: set_state, set: {x: "${{ 1 / state.zero }}"}}
    finally:"""
        + FINALLY_NAPS
        + """  - {id: after, type: set_state, set: {after: true}}
"""
    ),
    "return": (
        """
name: can-finally-return
version: 1
steps:
  - id: guarded
    type: try
    steps:
      - {id: early, type: return, value: {early: true}}
    finally:"""
        + FINALLY_NAPS
        + """  - {id: after, type: return, value: late}
"""
    ),
    "break": (
        """
name: can-finally-break
version: 1
steps:
  - id: outer
    type: loop
    max_iterations: 3
    output_to: outer
    steps:
      - id: guarded
        type: try
        steps:
          - {id: stop, type: break}
        finally:"""
        + FINALLY_NAPS.replace("\n      ", "\n          ")
        + """  - {id: after, type: return, value: "${{ state.outer }}"}
"""
    ),
}


@pytest.mark.parametrize("ending", TRY_ENDINGS.keys())
async def test_how_a_try_ended_survives_continuing_as_new_in_finally(
    short_client: Client, ending: str
) -> None:
    handle = await start(short_client, TRY_ENDINGS[ending])
    result, error = await asyncio.wait_for(_outcome(handle), 30)
    final = await status(short_client, handle)
    assert final["continued"] >= 1
    chain = await _chain(short_client, handle, completed=ending != "failure")
    assert all(tries["guarded"]["phase"] == "finally" for tries in chain.carried("tries"))
    assert chain.count(TIMER_STARTED) == 10
    if ending == "failure":
        assert error is not None
        assert final["status"] == "failed"
        assert final["error"].startswith("step 'explode' failed: division by zero")
        assert "after" not in final["steps"]
    elif ending == "return":
        assert result == {"early": True}
        assert "after" not in final["steps"]
    else:
        assert result == {"iterations": 1, "broke": True}


async def _outcome(handle: Handle) -> tuple[Any, BaseException | None]:
    try:
        return await handle.result(), None
    except WorkflowFailureError as error:
        return None, error


# -- parallel ---------------------------------------------------------------------------------

PARALLEL_LOOPS = """
name: can-parallel-loops
version: 1
state:
  left: 0
  right: 0
steps:
  - {id: before, type: set_state, set: {started: true}}
  - id: both
    type: parallel
    output_to: both
    branches:
      left:
        - id: left_loop
          type: loop
          until: state.left >= 8
          max_iterations: 20
          steps:
            - {id: left_nap, type: wait, duration: 10ms}
            - {id: left_tally, type: set_state, set: {left: "${{ state.left + 1 }}"}}
      right:
        - id: right_loop
          type: loop
          max_iterations: 6
          steps:
            - {id: right_nap, type: wait, duration: 20ms}
            - {id: right_tally, type: set_state, set: {right: "${{ state.right + 2 }}"}}
        - {id: right_end, type: set_state, set: {right_done: "${{ state.right }}"}}
  - id: done
    type: return
    value:
      both: "${{ state.both }}"
      left: "${{ state.left }}"
      right: "${{ state.right }}"
      started: "${{ state.started }}"
"""


async def test_parallel_branches_looping_with_waits_continue_as_new_together(
    short_client: Client,
) -> None:
    handle = await start(short_client, PARALLEL_LOOPS)
    assert await handle.result() == {
        "both": {
            "left": {"iterations": 8, "broke": False},
            "right": {"right_done": 12},
        },
        "left": 8,
        "right": 12,
        "started": True,
    }
    final = await status(short_client, handle)
    assert final["continued"] >= 1
    chain = await _chain(short_client, handle)
    assert len(chain) == final["continued"] + 1
    # The parallel was in progress when the run continued, each branch in its own loop.
    assert chain.carried("parallels")
    assert any({"left_loop", "right_loop"} & set(loops) for loops in chain.carried("loops"))
    # Each branch's steps ran once per iteration, over all the runs.
    assert len(_entries(final, "left_tally")) == 8
    assert len(_entries(final, "right_tally")) == 6
    assert [(e["step_id"], e["outcome"]) for e in _entries(final, "both")] == [
        ("both", "completed")
    ]


PARALLEL_ACTIONS = """
name: can-parallel-actions
version: 1
state:
  left: []
  right: []
steps:
  - id: both
    type: parallel
    branches:
      left:
        - id: left_loop
          type: loop
          max_iterations: 10
          steps:
            - {id: left_ask, type: prompt, prompt_type: text,
               message: "left ${{ size(state.left) }}", output_to: left_said}
            - {id: left_keep, type: set_state, set: {left: "${{ state.left + [state.left_said] }}"}}
      right:
        - id: right_loop
          type: loop
          max_iterations: 7
          steps:
            - {id: right_ask, type: prompt, prompt_type: text,
               message: "right ${{ size(state.right) }}", output_to: right_said}
            - id: right_keep
              type: set_state
              set: {right: "${{ state.right + [state.right_said] }}"}
  - {id: done, type: return, value: {left: "${{ state.left }}", right: "${{ state.right }}"}}
"""


async def test_parallel_branches_looping_with_actions_continue_as_new_together(
    short_client: Client,
) -> None:
    # A branch that reaches a step boundary once Temporal suggests continuing as new waits
    # there while the other still waits on its action; once that one is answered and at a
    # boundary too, the run continues with both positions.
    handle = await start(short_client, PARALLEL_ACTIONS)
    answered: set[str] = set()
    run_ids: set[str] = set()
    while len(answered) < 17:
        current = await wait_until(
            short_client,
            handle,
            lambda s: any(a["action_id"] not in answered for a in s["pending_actions"]),
        )
        new = [a for a in current["pending_actions"] if a["action_id"] not in answered]
        answered.update(a["action_id"] for a in new)
        run_ids.update(a["run_id"] for a in new)
        # Both branches' actions at once, when both wait.
        await asyncio.gather(
            *(submit(short_client, a, "said " + a["parameters"]["message"]) for a in new)
        )
    assert await handle.result() == {
        "left": [f"said left {i}" for i in range(10)],
        "right": [f"said right {i}" for i in range(7)],
    }
    final = await status(short_client, handle)
    assert final["continued"] >= 1
    assert len(run_ids) >= 2
    chain = await _chain(short_client, handle)
    assert chain.carried("parallels")
    assert len(_entries(final, "left_ask")) == 10
    assert len(_entries(final, "right_ask")) == 7


WAIT_ALL = """
name: can-wait-all
version: 1
state:
  zero: 0
  count: 0
steps:
  - id: both
    type: parallel
    on_branch_error: wait_all
    on_error: continue
    branches:
      bad:
        - {id: explode, type: set_state, set: {x: "${{ 1 / state.zero }}"}}
        - {id: after_explode, type: set_state, set: {after_explode: true}}
      good:
        - id: spin
          type: loop
          max_iterations: 12
          steps:
            - {id: nap, type: wait, duration: 10ms}
            - {id: tally, type: set_state, set: {count: "${{ state.count + 1 }}"}}
  - id: done
    type: return
    value:
      after_explode: "${{ 'after_explode' in state }}"
      output: "${{ steps.both.output }}"
      errors: "${{ steps.both.errors }}"
      count: "${{ state.count }}"
"""


async def test_wait_all_failed_branch_stays_failed_across_continue_as_new(
    short_client: Client,
) -> None:
    handle = await start(short_client, WAIT_ALL)
    result = await handle.result()
    final = await status(short_client, handle)
    assert final["continued"] >= 1
    chain = await _chain(short_client, handle)
    # The run continued while the good branch ran, with the bad branch's failure carried.
    [carried, *_] = chain.carried("parallels")
    assert [e["branch"] for e in carried["both"]["errors"]] == ["bad"]
    assert result["count"] == 12
    assert [e["branch"] for e in result["errors"]] == ["bad"]
    assert result["output"] == {"bad": None, "good": {"iterations": 12, "broke": False}}
    assert result["after_explode"] is False
    assert "after_explode" not in final["steps"]


EARLY_EVENT = """
name: can-early-event
version: 1
state: {count: 0}
steps:
  - id: rounds
    type: loop
    while: state.count < 12
    max_iterations: 20
    steps:
      - {id: nap, type: wait, duration: 10ms}
      - {id: tally, type: set_state, set: {count: "${{ state.count + 1 }}"}}
  - {id: merged, type: wait_for, event: shipped, timeout: 1m, output_to: shipped}
  - {id: done, type: return, value: "${{ state.shipped }}"}
"""


async def test_an_event_sent_early_is_kept_across_continue_as_new(short_client: Client) -> None:
    handle = await start(short_client, EARLY_EVENT)
    # Sent while the run is still looping, runs before the step that takes it.
    event = {"name": "shipped", "payload": {"v": 1}, "event_id": "e1", "broadcast": False}
    await handle.signal(SEND_EVENT, event)
    await handle.signal(SEND_EVENT, event)  # a repeat: ignored, even by a later run
    assert await handle.result() == {"v": 1}
    final = await status(short_client, handle)
    assert final["continued"] >= 1
    chain = await _chain(short_client, handle)
    assert any(progress.get("events", {}).get("kept") for progress in chain.progress)
