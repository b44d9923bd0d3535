"""loop, break, parallel and try/catch/finally on a real Temporal dev server: the normal paths,
the failure paths, actions inside each, cancellation, and a clean replay of every run."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError
from temporalio.worker import Worker

from tests.helpers.runs import (
    assert_replays,
    run_to_end,
    start,
    status,
    submit,
    wait_for_action,
    wait_until,
)

Handle = WorkflowHandle[Any, Any]


async def failed(client: Client, handle: Handle) -> dict[str, Any]:
    """Wait for the run to fail; its final status (the error is in ``error``)."""
    result, error = await run_to_end(handle)
    assert isinstance(error, WorkflowFailureError), f"the run did not fail: {result!r}"
    final = await status(client, handle)
    assert final["status"] == "failed"
    assert final["pending_actions"] == []
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
    return final


def entries(final: dict[str, Any], step_id: str) -> list[dict[str, Any]]:
    """The history entries of one step (one per run of it: a loop's steps have several)."""
    return [entry for entry in final["history"] if entry["step_id"] == step_id]


async def pending(client: Client, handle: Handle, *step_ids: str) -> dict[str, dict[str, Any]]:
    """Wait until the run has a pending action of each step; those actions, by step id."""
    current = await wait_until(
        client,
        handle,
        lambda s: set(step_ids) <= {a["step_id"] for a in s["pending_actions"]},
    )
    return {a["step_id"]: a for a in current["pending_actions"]}


# -- loop -------------------------------------------------------------------------------------

WHILE = """
name: loop-while
version: 1
inputs:
  limit: {type: integer, default: 3}
state:
  n: 0
  trace: []
steps:
  - id: count
    type: loop
    while: state.n < inputs.limit
    max_iterations: 5
    output_to: counted
    steps:
      - id: bump
        type: set_state
        set:
          n: "${{ state.n + 1 }}"
          trace: "${{ state.trace + [[loop.id, loop.iteration, state.n]] }}"
  - id: done
    type: return
    value:
      n: "${{ state.n }}"
      trace: "${{ state.trace }}"
      counted: "${{ state.counted }}"
      record: "${{ steps.count }}"
      bump: "${{ steps.bump.output }}"
"""


async def test_while_loop_checks_before_each_iteration_and_carries_state(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, WHILE)
    result = await handle.result()
    assert result["n"] == 3
    assert result["trace"] == [["count", 0, 0], ["count", 1, 1], ["count", 2, 2]]
    assert result["counted"] == {"iterations": 3, "broke": False}
    assert result["record"] == {"status": "completed", "output": {"iterations": 3, "broke": False}}
    # A step's record is its last iteration's.
    assert result["bump"] == {"n": 3, "trace": result["trace"]}
    final = await status(client, handle)
    assert [e["step_id"] for e in final["history"]] == ["count", "bump", "bump", "bump", "done"]
    assert all(e["outcome"] == "completed" for e in final["history"])
    assert entries(final, "count")[0]["attempts"] == 1
    await assert_replays(client, handle.id)


async def test_while_loop_that_never_runs(client: Client, worker: Worker) -> None:
    handle = await start(client, WHILE, {"limit": 0})
    result = await handle.result()
    assert result["n"] == 0
    assert result["counted"] == {"iterations": 0, "broke": False}
    assert result["bump"] is None
    final = await status(client, handle)
    assert "bump" not in final["steps"]
    assert [e["step_id"] for e in final["history"]] == ["count", "done"]
    await assert_replays(client, handle.id)


UNTIL = """
name: loop-until
version: 1
inputs:
  target: {type: integer, default: 3}
state:
  n: 0
  seen: []
steps:
  - id: grow
    type: loop
    until: state.n >= inputs.target
    max_iterations: 5
    steps:
      - {id: bump, type: set_state, set: {n: "${{ state.n + 1 }}"}}
      - id: skipped_first
        type: set_state
        when: loop.iteration > 0
        set: {seen: "${{ state.seen + [loop.iteration] }}"}
    output_to: grown
  - {id: done, type: return, value: {n: "${{ state.n }}", seen: "${{ state.seen }}",
     grown: "${{ state.grown }}"}}
"""


async def test_until_loop_checks_after_each_iteration(client: Client, worker: Worker) -> None:
    handle = await start(client, UNTIL)
    assert await handle.result() == {
        "n": 3,
        "seen": [1, 2],
        "grown": {"iterations": 3, "broke": False},
    }
    final = await status(client, handle)
    # A step skipped in one iteration runs in the next: its position is forgotten each time.
    assert [e["outcome"] for e in entries(final, "skipped_first")] == [
        "skipped",
        "completed",
        "completed",
    ]
    await assert_replays(client, handle.id)


async def test_until_loop_runs_at_least_once(client: Client, worker: Worker) -> None:
    handle = await start(client, UNTIL, {"target": 0})
    assert await handle.result() == {
        "n": 1,
        "seen": [],
        "grown": {"iterations": 1, "broke": False},
    }
    await assert_replays(client, handle.id)


async def test_counted_loop_runs_exactly_max_iterations(client: Client, worker: Worker) -> None:
    definition = """
name: loop-counted
version: 1
state:
  seen: []
steps:
  - id: four
    type: loop
    max_iterations: 4
    steps:
      - {id: note, type: set_state, set: {seen: "${{ state.seen + [loop.iteration] }}"}}
  - {id: done, type: return, value: {seen: "${{ state.seen }}", four: "${{ steps.four }}"}}
"""
    handle = await start(client, definition)
    assert await handle.result() == {
        "seen": [0, 1, 2, 3],
        "four": {"status": "completed", "output": {"iterations": 4, "broke": False}},
    }
    await assert_replays(client, handle.id)


BREAK = """
name: loop-break
version: 1
state:
  seen: []
steps:
  - id: scan
    type: loop
    max_iterations: 10
    output_to: scanned
    steps:
      - {id: note, type: set_state, set: {seen: "${{ state.seen + [loop.iteration] }}"}}
      - id: check
        type: condition
        if: loop.iteration == 2
        then:
          - {id: mark, type: set_state, set: {marked: "${{ loop.iteration }}"}}
          - {id: stop, type: break}
      - {id: after, type: set_state, set: {last_after: "${{ loop.iteration }}"}}
  - id: done
    type: return
    value:
      seen: "${{ state.seen }}"
      scanned: "${{ state.scanned }}"
      marked: "${{ state.marked }}"
      last_after: "${{ state.last_after }}"
"""


async def test_break_ends_the_loop_and_the_rest_of_its_iteration(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, BREAK)
    assert await handle.result() == {
        "seen": [0, 1, 2],
        "scanned": {"iterations": 3, "broke": True},
        "marked": 2,
        "last_after": 1,  # the breaking iteration never reached `after`
    }
    final = await status(client, handle)
    assert final["steps"]["scan"]["status"] == "completed"
    assert final["steps"]["stop"]["status"] == "completed"
    assert len(entries(final, "after")) == 2
    await assert_replays(client, handle.id)


EXHAUSTED = """
name: loop-exhausted
version: 1
state:
  n: 0
steps:
  - id: forever
    type: loop
    while: "true"
    max_iterations: 3
    steps:
      - {id: bump, type: set_state, set: {n: "${{ state.n + 1 }}"}}
  - {id: never, type: return, value: unreachable}
"""


async def test_exhausted_loop_fails_the_run(client: Client, worker: Worker) -> None:
    handle = await start(client, EXHAUSTED)
    final = await failed(client, handle)
    message = "loop 'forever' ran max_iterations (3) and its while still asks for another"
    assert final["error"] == f"step 'forever' failed: {message}"
    assert final["steps"]["forever"] == {
        "status": "failed",
        "output": {"iterations": 3, "broke": False},
        "error": message,
    }
    assert final["state"]["n"] == 3
    assert "never" not in final["steps"]
    await assert_replays(client, handle.id)


async def test_exhausted_until_loop_with_on_error_continue(client: Client, worker: Worker) -> None:
    definition = """
name: loop-exhausted-continue
version: 1
state:
  n: 0
steps:
  - id: wait_for_ten
    type: loop
    until: state.n >= 10
    max_iterations: 2
    on_error: continue
    output_to: outcome
    steps:
      - {id: bump, type: set_state, set: {n: "${{ state.n + 1 }}"}}
  - id: done
    type: return
    value:
      outcome: "${{ state.outcome }}"
      status: "${{ steps.wait_for_ten.status }}"
      error: "${{ steps.wait_for_ten.error }}"
      n: "${{ state.n }}"
"""
    handle = await start(client, definition)
    assert await handle.result() == {
        "outcome": {"iterations": 2, "broke": False},
        "status": "failed",
        "error": "loop 'wait_for_ten' ran max_iterations (2) and its until still asks for another",
        "n": 2,
    }
    await assert_replays(client, handle.id)


async def test_exhausted_loop_with_on_error_retry_runs_again_from_the_start(
    client: Client, worker: Worker
) -> None:
    definition = """
name: loop-exhausted-retry
version: 1
state:
  n: 0
  seen: []
steps:
  - id: again
    type: loop
    while: "true"
    max_iterations: 2
    retry: {max_attempts: 2, initial_interval: 10ms}
    steps:
      - id: bump
        type: set_state
        set: {n: "${{ state.n + 1 }}", seen: "${{ state.seen + [loop.iteration] }}"}
"""
    handle = await start(client, definition)
    final = await failed(client, handle)
    # The retry ran the loop again from iteration 0; the state went on from where it was.
    assert final["state"] == {"n": 4, "seen": [0, 1, 0, 1]}
    [entry] = entries(final, "again")
    assert entry["attempts"] == 2
    assert entry["outcome"] == "failed"
    await assert_replays(client, handle.id)


FIX_UNTIL_GREEN = """
name: loop-fix-until-green
version: 1
state:
  check: {exit_code: 1}
steps:
  - id: rounds
    type: loop
    until: state.check.exit_code == 0
    max_iterations: 3
    output_to: rounds
    steps:
      - id: fix
        type: delegate
        agent: "@task"
        instruction: "Fix the failing tests (round ${{ loop.iteration + 1 }} of 3)"
        context: {last: "${{ state.check }}"}
        output_to: fixed
      - {id: test, type: shell, command: make test, on_error: continue, output_to: check}
  - id: report
    type: return
    value: {rounds: "${{ state.rounds }}", fixed: "${{ state.fixed }}"}
"""


async def _fix_round(client: Client, handle: Handle, round_: int, exit_code: int) -> dict[str, Any]:
    """One round: the agent's fix (its instruction names the round), then the tests."""
    fix = await wait_for_action(client, handle, "fix")
    assert fix["attempt"] == 1
    assert fix["parameters"]["instruction"] == f"Fix the failing tests (round {round_} of 3)"
    last = (
        {"exit_code": 1}
        if round_ == 1
        else {"exit_code": 1, "stdout": f"run {round_ - 1}", "stderr": ""}
    )
    assert fix["parameters"]["context"] == {"last": last}
    [test] = (await submit(client, fix, {"patch": f"p{round_}"}))["pending_actions"]
    assert test["step_id"] == "test"
    result = {"exit_code": exit_code, "stdout": f"run {round_}", "stderr": ""}
    return await submit(client, test, result)


async def test_loop_with_actions_each_round_fix_until_green(client: Client, worker: Worker) -> None:
    handle = await start(client, FIX_UNTIL_GREEN)
    for round_, exit_code in ((1, 1), (2, 1)):
        advance = await _fix_round(client, handle, round_, exit_code)
        # The next round's action comes with the answer: the loop went on at once.
        assert [a["step_id"] for a in advance["pending_actions"]] == ["fix"]
    advance = await _fix_round(client, handle, 3, 0)
    assert advance["status"] == "completed"
    result = await handle.result()
    assert result == {"rounds": {"iterations": 3, "broke": False}, "fixed": {"patch": "p3"}}
    final = await status(client, handle)
    assert [e["outcome"] for e in entries(final, "test")] == ["failed", "failed", "completed"]
    assert [e["outcome"] for e in entries(final, "fix")] == ["completed"] * 3
    assert final["state"]["check"]["stdout"] == "run 3"
    await assert_replays(client, handle.id)


async def test_loop_with_actions_gives_up_after_max_rounds(client: Client, worker: Worker) -> None:
    handle = await start(client, FIX_UNTIL_GREEN)
    for round_ in (1, 2):
        await _fix_round(client, handle, round_, 1)
    advance = await _fix_round(client, handle, 3, 2)
    assert advance["status"] == "failed"
    final = await failed(client, handle)
    assert final["error"] == (
        "step 'rounds' failed: loop 'rounds' ran max_iterations (3) and its until still "
        "asks for another"
    )
    assert final["state"]["check"]["exit_code"] == 2
    await assert_replays(client, handle.id)


NESTED = """
name: loop-nested
version: 1
state:
  pairs: []
steps:
  - id: outer
    type: loop
    max_iterations: 3
    steps:
      - {id: remember, type: set_state, set: {o: "${{ loop.iteration }}"}}
      - id: inner
        type: loop
        while: loop.iteration < 3
        max_iterations: 5
        steps:
          - {id: stop_early, type: break, when: state.o == 1 && loop.iteration == 1}
          - id: pair
            type: set_state
            set: {pairs: "${{ state.pairs + [[state.o, loop.iteration, loop.id]] }}"}
      - {id: outer_seen, type: set_state, set: {last_outer: "${{ [loop.id, loop.iteration] }}"}}
  - id: done
    type: return
    value:
      pairs: "${{ state.pairs }}"
      last_outer: "${{ state.last_outer }}"
      outer: "${{ steps.outer.output }}"
      inner: "${{ steps.inner.output }}"
"""


async def test_nested_loops_see_the_inner_iteration_and_break_ends_the_inner_only(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, NESTED)
    assert await handle.result() == {
        "pairs": [
            [0, 0, "inner"],
            [0, 1, "inner"],
            [0, 2, "inner"],
            [1, 0, "inner"],
            [2, 0, "inner"],
            [2, 1, "inner"],
            [2, 2, "inner"],
        ],
        "last_outer": ["outer", 2],
        "outer": {"iterations": 3, "broke": False},
        "inner": {"iterations": 3, "broke": False},
    }
    final = await status(client, handle)
    assert [e["outcome"] for e in entries(final, "inner")] == ["completed"] * 3
    # The inner loop's steps ran 3 + 1 + 3 times; the break's `when` held once.
    assert len(entries(final, "pair")) == 7
    assert [e["outcome"] for e in entries(final, "stop_early")].count("completed") == 1
    await assert_replays(client, handle.id)


async def test_foreach_inside_a_loop_runs_its_items_each_iteration(
    client: Client, worker: Worker
) -> None:
    definition = """
name: loop-foreach
version: 1
state:
  all: []
steps:
  - id: twice
    type: loop
    max_iterations: 2
    steps:
      - id: each
        type: foreach
        items: "[1, 2]"
        max_parallel: 2
        steps:
          - {id: item_value, type: return, value: "${{ item * 10 + loop.iteration }}"}
        output_to: values
      - {id: collect, type: set_state, set: {all: "${{ state.all + state.values }}"}}
  - {id: done, type: return, value: "${{ state.all }}"}
"""
    handle = await start(client, definition)
    assert await handle.result() == [10, 20, 11, 21]
    await assert_replays(client, handle.id)


# -- parallel ---------------------------------------------------------------------------------

INLINE_BRANCHES = """
name: parallel-inline
version: 1
state:
  base: 10
steps:
  - id: fan
    type: parallel
    output_to: fanned
    branches:
      add:
        - {id: plus, type: set_state, set: {sum: "${{ state.base + 1 }}"}}
      multiply:
        - {id: times, type: set_state, set: {product: "${{ state.base * 3 }}"}}
        - {id: times_skipped, type: set_state, when: "state.base < 0", set: {never: true}}
      pick:
        - id: gate
          type: condition
          if: state.base > 5
          then: [{id: big, type: set_state, set: {size: big}}]
          else: [{id: small, type: set_state, set: {size: small}}]
  - id: done
    type: return
    value:
      add: "${{ steps.fan.output.add }}"
      product: "${{ steps.fan.output.multiply.product }}"
      state: "${{ [state.sum, state.product, state.size] }}"
      fanned: "${{ state.fanned }}"
"""


async def test_parallel_inline_branches_outputs_by_branch_name(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, INLINE_BRANCHES)
    result = await handle.result()
    assert result == {
        "add": {"sum": 11},
        "product": 30,
        "state": [11, 30, "big"],
        "fanned": {"add": {"sum": 11}, "multiply": {"product": 30}, "pick": True},
    }
    final = await status(client, handle)
    assert final["steps"]["fan"]["status"] == "completed"
    assert not final["steps"]["fan"].get("errors")
    assert final["steps"]["times_skipped"]["status"] == "skipped"
    await assert_replays(client, handle.id)


TWO_ACTIONS = """
name: parallel-actions
version: 1
steps:
  - id: both
    type: parallel
    on_branch_error: fail_fast
    branches:
      review:
        - {id: ask, type: prompt, prompt_type: text, message: "Review notes?"}
        - {id: echo, type: set_state, set: {notes: "${{ steps.ask.output }}"}}
      build:
        - {id: compile, type: mcp_call, tool: build, params: {target: app}}
  - {id: done, type: return, value: "${{ steps.both.output }}"}
"""


@pytest.mark.parametrize("first", ["ask", "compile"])
async def test_parallel_actions_pending_at_once_answered_in_either_order(
    client: Client, worker: Worker, first: str
) -> None:
    handle = await start(client, TWO_ACTIONS)
    actions = await pending(client, handle, "ask", "compile")
    current = await status(client, handle)
    assert current["status"] == "waiting"
    assert len(current["pending_actions"]) == 2
    assert current["current_step"] in ("ask", "compile")
    answers = {"ask": "looks good", "compile": {"artifact": "app.tar"}}
    second = "compile" if first == "ask" else "ask"
    advance = await submit(client, actions[first], answers[first])
    # The other branch still waits: the run says so, with the other action.
    assert advance["status"] == "waiting"
    assert advance["current_step"] == second
    assert [a["step_id"] for a in advance["pending_actions"]] == [second]
    advance = await submit(client, actions[second], answers[second])
    assert advance["status"] == "completed"
    assert await handle.result() == {
        "review": {"notes": "looks good"},
        "build": {"artifact": "app.tar"},
    }
    await assert_replays(client, handle.id)


@pytest.mark.parametrize(
    ("failing", "branch", "stopped", "other"),
    [("compile", "build", "ask", "review"), ("ask", "review", "compile", "build")],
)
async def test_parallel_fail_fast_stops_the_other_branch(
    client: Client, worker: Worker, failing: str, branch: str, stopped: str, other: str
) -> None:
    handle = await start(client, TWO_ACTIONS)
    actions = await pending(client, handle, "ask", "compile")
    await submit(client, actions[failing], error="it broke")
    final = await failed(client, handle)
    assert final["error"] == (
        f"step 'both' failed: branch '{branch}' failed: step '{failing}' failed: it broke "
        "(and 1 more)"
    )
    assert final["steps"]["both"]["errors"] == [
        {"branch": branch, "error": f"step '{failing}' failed: it broke"},
        {"branch": other, "error": "stopped: another branch failed"},
    ]
    assert final["steps"]["both"]["output"] == {"review": None, "build": None}
    assert final["steps"][stopped]["status"] == "cancelled"
    assert final["steps"][failing]["status"] == "failed"
    assert "echo" not in final["steps"]
    if stopped == "compile":
        # An executor may hold the mcp_call's delivery (an activity): it is cancelled too.
        events = [event async for event in handle.fetch_history_events()]
        assert any(e.HasField("activity_task_cancel_requested_event_attributes") for e in events)
    await assert_replays(client, handle.id)


async def test_fail_fast_compensates_what_the_stopped_branch_completed(
    client: Client, worker: Worker
) -> None:
    definition = """
name: parallel-compensate
version: 1
steps:
  - id: both
    type: parallel
    branches:
      booking:
        - id: reserve
          type: mcp_call
          tool: reserve
          compensate:
            - {id: release, type: mcp_call, tool: release}
        - {id: confirm, type: prompt, prompt_type: confirm, message: Book it?}
      payment:
        - {id: pay_setup, type: set_state, set: {ready: true}}
        - {id: charge, type: mcp_call, tool: charge}
"""
    handle = await start(client, definition)
    actions = await pending(client, handle, "reserve", "charge")
    await submit(client, actions["reserve"], {"seat": "2C"})
    await pending(client, handle, "confirm")
    await submit(client, actions["charge"], error="card declined")
    # The run fails: first it undoes what the stopped branch did.
    current = await wait_until(
        client, handle, lambda s: [a["step_id"] for a in s["pending_actions"]] == ["release"]
    )
    assert current["steps"]["confirm"]["status"] == "cancelled"
    await submit(client, current["pending_actions"][0], {})
    final = await failed(client, handle)
    assert final["error"].startswith(
        "step 'both' failed: branch 'payment' failed: step 'charge' failed: card declined"
    )
    assert final["steps"]["confirm"]["status"] == "cancelled"
    assert final["steps"]["release"]["status"] == "completed"
    await assert_replays(client, handle.id)


async def test_the_answer_that_fails_a_branch_reports_the_run_failing(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, TWO_ACTIONS)
    actions = await pending(client, handle, "ask", "compile")
    advance = await submit(client, actions["compile"], error="compiler crashed")
    await failed(client, handle)
    await assert_replays(client, handle.id)
    assert [a["step_id"] for a in advance["pending_actions"]] == []
    assert advance["status"] == "failed"


WAIT_ALL = """
name: parallel-wait-all
version: 1
steps:
  - id: both
    type: parallel
    on_branch_error: wait_all
    on_error: continue
    branches:
      review:
        - {id: ask, type: prompt, prompt_type: text, message: "Review notes?"}
      build:
        - {id: compile, type: mcp_call, tool: build}
      lint:
        - {id: lint_it, type: set_state, when: "false", set: {linted: true}}
        - {id: lint_fail, type: set_state, set: {x: "${{ 1 / 0 }}"}}
  - id: done
    type: return
    value:
      status: "${{ steps.both.status }}"
      output: "${{ steps.both.output }}"
      errors: "${{ steps.both.errors }}"
      error: "${{ steps.both.error }}"
"""


async def test_parallel_wait_all_lets_the_others_finish(client: Client, worker: Worker) -> None:
    handle = await start(client, WAIT_ALL)
    actions = await pending(client, handle, "ask", "compile")
    await submit(client, actions["compile"], error="compiler crashed")
    # The failures so far do not stop the review: it still waits for its answer.
    current = await wait_until(
        client, handle, lambda s: s["steps"].get("compile", {}).get("status") == "failed"
    )
    assert [a["step_id"] for a in current["pending_actions"]] == ["ask"]
    await submit(client, actions["ask"], "ship it")
    result = await handle.result()
    assert result["status"] == "failed"
    assert result["output"] == {"review": "ship it", "build": None, "lint": None}
    errors = result["errors"]
    assert [e["branch"] for e in errors] == ["lint", "build"]
    assert errors[0]["error"].startswith("step 'lint_fail' failed: ")
    assert errors[1] == {"branch": "build", "error": "step 'compile' failed: compiler crashed"}
    assert result["error"] == (f"branch 'lint' failed: {errors[0]['error']} (and 1 more)")
    await assert_replays(client, handle.id)


RETRY_BRANCH = """
name: parallel-retry
version: 1
state:
  calls: 0
steps:
  - id: both
    type: parallel
    on_branch_error: wait_all
    retry: {max_attempts: 3, initial_interval: 10ms}
    branches:
      steady:
        - {id: ask, type: prompt, prompt_type: text, message: "Name?"}
      flaky:
        - {id: count, type: set_state, set: {calls: "${{ state.calls + 1 }}"}}
        - {id: call, type: mcp_call, tool: flaky, params: {call: "${{ state.calls }}"}}
  - {id: done, type: return, value: {both: "${{ steps.both.output }}", calls: "${{ state.calls }}"}}
"""


async def test_parallel_retry_runs_only_the_failed_branch_again(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, RETRY_BRANCH)
    actions = await pending(client, handle, "ask", "call")
    assert actions["call"]["parameters"]["params"] == {"call": 1}
    await submit(client, actions["ask"], "Ada")
    await submit(client, actions["call"], error="flaked")
    second = await wait_until(
        client,
        handle,
        lambda s: any(
            a["step_id"] == "call" and a["action_id"] != actions["call"]["action_id"]
            for a in s["pending_actions"]
        ),
    )
    [call] = second["pending_actions"]
    assert call["parameters"]["params"] == {"call": 2}
    assert call["attempt"] == 1  # the branch's step starts afresh: the retry is the parallel's
    await submit(client, call, {"ok": True})
    assert await handle.result() == {"both": {"steady": "Ada", "flaky": {"ok": True}}, "calls": 2}
    final = await status(client, handle)
    [both] = entries(final, "both")
    assert both["attempts"] == 2
    assert both["errors"] == ["branch 'flaky' failed: step 'call' failed: flaked"]
    assert len(entries(final, "ask")) == 1  # the steady branch ran once
    assert len(entries(final, "call")) == 2
    assert not final["steps"]["both"].get("errors")  # the last attempt's: none
    await assert_replays(client, handle.id)


@pytest.mark.parametrize("how", ["signal", "temporal"])
async def test_cancelling_a_run_while_two_branches_wait(
    client: Client, worker: Worker, how: str
) -> None:
    handle = await start(client, TWO_ACTIONS)
    await pending(client, handle, "ask", "compile")
    if how == "signal":
        await handle.signal("cancel_workflow", "change freeze")
    else:
        await handle.cancel()
    with pytest.raises(WorkflowFailureError) as raised:
        await handle.result()
    assert isinstance(raised.value.cause, CancelledError)
    final = await wait_until(
        client,
        handle,
        lambda s: (
            s["steps"].get("ask", {}).get("status") == "cancelled"
            and s["steps"].get("compile", {}).get("status") == "cancelled"
        ),
    )
    assert final["status"] == "cancelled"
    assert final["error"] == ("cancelled: change freeze" if how == "signal" else "cancelled")
    assert final["pending_actions"] == []
    assert final["steps"]["both"]["status"] == "cancelled"
    expected = (
        WorkflowExecutionStatus.FAILED if how == "signal" else WorkflowExecutionStatus.CANCELED
    )
    assert (await handle.describe()).status == expected
    await assert_replays(client, handle.id)


async def test_parallel_inside_a_loop_and_loops_inside_branches(
    client: Client, worker: Worker
) -> None:
    definition = """
name: parallel-loops
version: 1
state:
  left: 0
  right: 0
steps:
  - id: rounds
    type: loop
    max_iterations: 2
    steps:
      - id: fan
        type: parallel
        branches:
          left:
            - id: count_left
              type: loop
              until: state.left % 3 == 0
              max_iterations: 5
              steps:
                - {id: inc_left, type: set_state, set: {left: "${{ state.left + 1 }}"}}
          right:
            - {id: inc_right, type: set_state, set: {right: "${{ state.right + 10 }}"}}
      - {id: keep, type: set_state, set: {last: "${{ steps.fan.output }}"}}
  - {id: done, type: return, value: {last: "${{ state.last }}", right: "${{ state.right }}"}}
"""
    handle = await start(client, definition)
    assert await handle.result() == {
        "last": {
            "left": {"iterations": 3, "broke": False},
            "right": {"right": 20},
        },
        "right": 20,
    }
    final = await status(client, handle)
    assert final["state"]["left"] == 6
    assert len(entries(final, "fan")) == 2
    assert len(entries(final, "inc_left")) == 6
    await assert_replays(client, handle.id)


def _took(entry: dict[str, Any]) -> float:
    """How long a step took, in workflow time (its history entry's start and end)."""
    finished = datetime.fromisoformat(entry["finished_at"])
    return (finished - datetime.fromisoformat(entry["started_at"])).total_seconds()


async def test_waits_in_parallel_branches_each_keep_their_own_end(
    client: Client, worker: Worker
) -> None:
    definition = """
name: parallel-waits
version: 1
steps:
  - id: both
    type: parallel
    branches:
      slow:
        - {id: slow_wait, type: wait, duration: 1h, message: slow}
        - {id: slow_done, type: set_state, set: {slow: true}}
      fast:
        - {id: fast_wait, type: wait, duration: 10ms, message: fast}
        - {id: fast_done, type: set_state, set: {fast: true}}
"""
    handle = await start(client, definition)
    # The short wait ends on its own time, not the other's hour; the hour is still ahead.
    current = await wait_until(client, handle, lambda s: "fast_done" in s["steps"])
    assert current["status"] == "running"
    assert current["waiting"]["step_id"] == "slow_wait"
    assert "slow_wait" not in current["steps"]
    [fast] = entries(current, "fast_wait")
    assert _took(fast) < 30
    # Each wait's end is its own to move.
    await handle.execute_update("move_deadline", args=["slow_wait", 0.05])
    await handle.result()
    final = await status(client, handle)
    assert final["state"] == {"slow": True, "fast": True}
    [slow] = entries(final, "slow_wait")
    assert _took(slow) < 30
    await assert_replays(client, handle.id)


# -- try --------------------------------------------------------------------------------------

CATCH = """
name: try-catch
version: 1
steps:
  - id: guarded
    type: try
    output_to: guarded_output
    steps:
      - {id: prepare, type: set_state, set: {prepared: true}}
      - id: deploy
        type: mcp_call
        tool: deploy
        retry: {max_attempts: 2, initial_interval: 10ms}
        on_error: "fail"
      - {id: not_reached, type: set_state, set: {reached: true}}
    catch:
      - {id: caught, type: set_state, set: {caught: "${{ error }}"}}
    finally:
      - {id: cleanup, type: set_state, set: {cleaned: true}}
  - id: done
    type: return
    value:
      caught: "${{ state.caught }}"
      cleaned: "${{ state.cleaned }}"
      reached: "${{ 'reached' in state }}"
      guarded_output: "${{ state.guarded_output }}"
      guarded: "${{ steps.guarded.status }}"
      deploy: "${{ steps.deploy.status }}"
"""


async def test_try_catches_a_failed_action_with_the_error_in_scope(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, CATCH)
    deploy = await wait_for_action(client, handle, "deploy")
    await submit(client, deploy, error="cluster unreachable")
    assert await handle.result() == {
        "caught": {
            "step": "deploy",
            "type": "mcp_call",
            "message": "cluster unreachable",
            "attempts": 1,
        },
        "cleaned": True,
        "reached": False,
        "guarded_output": {
            "caught": {
                "step": "deploy",
                "type": "mcp_call",
                "message": "cluster unreachable",
                "attempts": 1,
            }
        },
        "guarded": "completed",
        "deploy": "failed",
    }
    final = await status(client, handle)
    assert [e["step_id"] for e in final["history"]] == [
        "guarded",
        "prepare",
        "deploy",
        "caught",
        "cleanup",
        "done",
    ]
    assert final["error"] is None
    await assert_replays(client, handle.id)


async def test_try_catches_after_the_failed_steps_retries(client: Client, worker: Worker) -> None:
    definition = CATCH.replace('on_error: "fail"', "on_error: retry")
    handle = await start(client, definition)
    first = await wait_for_action(client, handle, "deploy")
    await submit(client, first, error="timeout 1")
    second = await wait_until(
        client,
        handle,
        lambda s: any(
            a["step_id"] == "deploy" and a["action_id"] != first["action_id"]
            for a in s["pending_actions"]
        ),
    )
    [action] = second["pending_actions"]
    assert action["attempt"] == 2
    await submit(client, action, error="timeout 2")
    result = await handle.result()
    assert result["caught"] == {
        "step": "deploy",
        "type": "mcp_call",
        "message": "timeout 2",
        "attempts": 2,
    }
    await assert_replays(client, handle.id)


async def test_try_without_catch_reraises_after_finally(client: Client, worker: Worker) -> None:
    definition = """
name: try-finally
version: 1
steps:
  - id: guarded
    type: try
    steps:
      - {id: deploy, type: mcp_call, tool: deploy}
    finally:
      - {id: unlock, type: prompt, prompt_type: confirm, message: Unlock the environment?}
  - {id: after, type: set_state, set: {after: true}}
"""
    handle = await start(client, definition)
    deploy = await wait_for_action(client, handle, "deploy")
    advance = await submit(client, deploy, error="quota exceeded")
    # The run waits in finally before it fails.
    assert advance["status"] == "waiting"
    [unlock] = advance["pending_actions"]
    assert unlock["step_id"] == "unlock"
    assert (await status(client, handle))["steps"]["deploy"]["status"] == "failed"
    await submit(client, unlock, True)
    final = await failed(client, handle)
    assert final["error"] == "step 'deploy' failed: quota exceeded"
    assert final["steps"]["unlock"] == {"status": "completed", "output": True}
    assert final["steps"]["guarded"]["status"] == "failed"
    assert "after" not in final["steps"]
    await assert_replays(client, handle.id)


async def test_failing_catch_fails_the_run_after_finally(client: Client, worker: Worker) -> None:
    definition = """
name: try-failing-catch
version: 1
steps:
  - id: guarded
    type: try
    steps:
      - {id: deploy, type: mcp_call, tool: deploy}
    catch:
      - {id: rollback, type: mcp_call, tool: rollback, params: {why: "${{ error.message }}"}}
      - {id: rolled_back, type: set_state, set: {rolled_back: true}}
    finally:
      - {id: cleanup, type: set_state, set: {cleaned: true}}
"""
    handle = await start(client, definition)
    deploy = await wait_for_action(client, handle, "deploy")
    [rollback] = (await submit(client, deploy, error="bad image"))["pending_actions"]
    assert rollback["parameters"]["params"] == {"why": "bad image"}
    await submit(client, rollback, error="rollback refused")
    final = await failed(client, handle)
    assert final["error"] == "step 'rollback' failed: rollback refused"
    assert final["state"] == {"cleaned": True}
    assert final["steps"]["guarded"]["status"] == "failed"
    await assert_replays(client, handle.id)


async def test_failing_finally_fails_a_run_that_succeeded(client: Client, worker: Worker) -> None:
    definition = """
name: try-failing-finally
version: 1
steps:
  - id: guarded
    type: try
    steps:
      - {id: work, type: set_state, set: {worked: true}}
    finally:
      - {id: cleanup, type: set_state, set: {x: "${{ 1 / 0 }}"}}
  - {id: after, type: set_state, set: {after: true}}
"""
    handle = await start(client, definition)
    final = await failed(client, handle)
    assert final["error"].startswith("step 'cleanup' failed: ")
    assert final["state"] == {"worked": True}
    await assert_replays(client, handle.id)


async def test_return_inside_try_still_runs_finally(client: Client, worker: Worker) -> None:
    definition = """
name: try-return
version: 1
steps:
  - id: guarded
    type: try
    steps:
      - {id: early, type: return, value: {answer: 42}}
    finally:
      - {id: notify, type: mcp_call, tool: notify, params: {what: finished}}
  - {id: never, type: return, value: late}
"""
    handle = await start(client, definition)
    notify = await wait_for_action(client, handle, "notify")
    assert notify["parameters"]["params"] == {"what": "finished"}
    assert (await status(client, handle))["steps"]["early"]["status"] == "completed"
    advance = await submit(client, notify, {"sent": True})
    assert advance["status"] == "completed"
    assert advance["result"] == {"answer": 42}
    assert await handle.result() == {"answer": 42}
    final = await status(client, handle)
    assert "never" not in final["steps"]
    assert final["steps"]["notify"]["status"] == "completed"
    await assert_replays(client, handle.id)


async def test_break_in_catch_ends_the_loop_after_finally(client: Client, worker: Worker) -> None:
    definition = """
name: try-break
version: 1
state:
  cleanups: 0
steps:
  - id: attempts
    type: loop
    max_iterations: 5
    output_to: looped
    steps:
      - id: guarded
        type: try
        steps:
          - {id: call, type: mcp_call, tool: call, params: {round: "${{ loop.iteration }}"}}
        catch:
          - {id: give_up, type: break, when: error.message == "fatal"}
        finally:
          - {id: cleanup, type: set_state, set: {cleanups: "${{ state.cleanups + 1 }}"}}
  - {id: done, type: return, value: {looped: "${{ state.looped }}",
     cleanups: "${{ state.cleanups }}"}}
"""
    handle = await start(client, definition)
    first = await wait_for_action(client, handle, "call")
    [second] = (await submit(client, first, error="transient"))["pending_actions"]
    assert second["parameters"]["params"] == {"round": 1}
    await submit(client, second, error="fatal")
    assert await handle.result() == {
        "looped": {"iterations": 2, "broke": True},
        "cleanups": 2,
    }
    await assert_replays(client, handle.id)


COMPENSATE_IN_TRY = """
name: try-compensate
version: 1
steps:
  - id: guarded
    type: try
    steps:
      - id: reserve
        type: mcp_call
        tool: reserve
        compensate:
          - {id: release, type: mcp_call, tool: release}
      - {id: charge, type: mcp_call, tool: charge}
    catch:
      - {id: note, type: set_state, set: {charge_failed: "${{ error.message }}"}}
  - {id: ship, type: mcp_call, tool: ship}
"""


async def test_compensation_inside_try_runs_when_the_run_later_fails(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, COMPENSATE_IN_TRY)
    reserve = await wait_for_action(client, handle, "reserve")
    [charge] = (await submit(client, reserve, {"seat": "1A"}))["pending_actions"]
    [ship] = (await submit(client, charge, error="card declined"))["pending_actions"]
    assert ship["step_id"] == "ship"
    # Caught: the compensation stays recorded, and runs when the run fails later.
    [release] = (await submit(client, ship, error="no courier"))["pending_actions"]
    assert release["step_id"] == "release"
    await submit(client, release, {})
    final = await failed(client, handle)
    assert final["error"] == "step 'ship' failed: no courier"
    assert final["state"] == {"charge_failed": "card declined"}
    assert final["steps"]["release"]["status"] == "completed"
    assert [e["step_id"] for e in final["history"]][-2:] == ["ship", "release"]
    await assert_replays(client, handle.id)


async def test_cancelling_inside_try_runs_neither_catch_nor_finally(
    client: Client, worker: Worker
) -> None:
    definition = """
name: try-cancel
version: 1
steps:
  - id: guarded
    type: try
    steps:
      - {id: approve, type: prompt, prompt_type: confirm, message: Go?}
    catch:
      - {id: caught, type: set_state, set: {caught: true}}
    finally:
      - {id: cleanup, type: set_state, set: {cleaned: true}}
"""
    handle = await start(client, definition)
    await wait_for_action(client, handle, "approve")
    await handle.signal("cancel_workflow", "not today")
    with pytest.raises(WorkflowFailureError) as raised:
        await handle.result()
    assert isinstance(raised.value.cause, CancelledError)
    final = await status(client, handle)
    assert final["status"] == "cancelled"
    assert final["error"] == "cancelled: not today"
    assert final["pending_actions"] == []
    assert final["state"] == {}
    assert final["steps"]["approve"]["status"] == "cancelled"
    assert final["steps"]["guarded"]["status"] == "cancelled"
    assert "cleanup" not in final["steps"]
    assert "caught" not in final["steps"]
    await assert_replays(client, handle.id)


async def test_try_inside_a_parallel_branch_keeps_the_branch_alive(
    client: Client, worker: Worker
) -> None:
    definition = """
name: try-in-branch
version: 1
steps:
  - id: both
    type: parallel
    branches:
      risky:
        - id: guarded
          type: try
          steps:
            - {id: call, type: mcp_call, tool: risky}
          catch:
            - {id: fallback, type: set_state, set: {fallback: true}}
      safe:
        - {id: ask, type: prompt, prompt_type: text, message: Name?}
  - {id: done, type: return, value: "${{ steps.both.output }}"}
"""
    handle = await start(client, definition)
    actions = await pending(client, handle, "call", "ask")
    await submit(client, actions["call"], error="nope")
    current = await wait_until(
        client, handle, lambda s: s["steps"].get("guarded", {}).get("status") == "completed"
    )
    assert [a["step_id"] for a in current["pending_actions"]] == ["ask"]
    await submit(client, actions["ask"], "Grace")
    assert await asyncio.wait_for(handle.result(), 20) == {
        "risky": {"fallback": True},
        "safe": "Grace",
    }
    await assert_replays(client, handle.id)
