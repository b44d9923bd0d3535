"""Retries with backoff, on_error fail/continue/retry, timeouts and shell exit codes."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from tests.helpers.runs import (
    assert_replays,
    start,
    status,
    submit,
    wait_for_action,
    wait_until,
)

RETRY_ON_TIMEOUT = """
name: retry-timeout
version: 1
steps:
  - id: flaky
    type: mcp_call
    tool: ping
    timeout: 1s
    retry: {max_attempts: 3, initial_interval: 1s, backoff: 2.0, max_interval: 10s}
"""


async def test_timeouts_are_retried_with_backoff_then_fail(client: Client, worker: Worker) -> None:
    handle = await start(client, RETRY_ON_TIMEOUT)
    seen: list[dict[str, Any]] = []
    for attempt in (1, 2, 3):

        def issued(s: dict[str, Any], n: int = attempt) -> bool:
            return any(a["attempt"] == n for a in s["pending_actions"])

        current = await wait_until(client, handle, issued)
        action = current["pending_actions"][0]
        assert action["attempt"] == attempt
        assert action["timeout"] is not None and 0 < action["timeout"] <= 1
        seen.append(action)
        if attempt < 3:
            # Between attempts (the backoff) the run waits for nothing: no stale action.
            backoff = await wait_until(client, handle, lambda s: not s["pending_actions"])
            assert backoff["status"] == "running"
    assert len({a["action_id"] for a in seen}) == 3
    created = [datetime.fromisoformat(str(a["created_at"])) for a in seen]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(created)]
    # timeout (1 s) + backoff 1 s, then timeout (1 s) + backoff 2 s
    assert gaps[0] == pytest.approx(2.0, abs=0.6)
    assert gaps[1] == pytest.approx(3.0, abs=0.6)
    assert gaps[1] > gaps[0]

    with pytest.raises(WorkflowFailureError) as raised:
        await handle.result()
    cause = raised.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.message == "step 'flaky' failed: timed out after 1s"
    final = await status(client, handle)
    assert final["status"] == "failed"
    assert final["pending_actions"] == []
    [entry] = final["history"]
    assert entry["attempts"] == 3
    assert entry["outcome"] == "failed"
    assert entry["error"] == "timed out after 1s"
    assert entry["errors"] == ["timed out after 1s", "timed out after 1s"]
    await assert_replays(client, handle.id)
    assert final["steps"]["flaky"]["error"] == "timed out after 1s"


RETRY_ON_ERROR = """
name: retry-error
version: 1
defaults:
  retry: {max_attempts: 2, initial_interval: 1s}
steps:
  - id: fetch
    type: delegate
    agent: "@fetcher"
    instruction: fetch it
    on_error: retry
    output_to: fetched
  - {id: done, type: return, value: "${{ state.fetched }}"}
"""


async def test_error_submission_is_retried_with_a_new_action(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, RETRY_ON_ERROR)
    first = await wait_for_action(client, handle, "fetch")
    advance = await submit(client, first, error="rate limited")
    # The update answers once the run is suspended again: on the second attempt.
    [second] = advance["pending_actions"]
    assert advance["status"] == "waiting"
    assert second["attempt"] == 2
    assert second["action_id"] != first["action_id"]
    gap = datetime.fromisoformat(second["created_at"]) - datetime.fromisoformat(first["created_at"])
    assert gap.total_seconds() >= 1.0
    advance = await submit(client, second, {"data": 42})
    assert advance["status"] == "completed"
    assert advance["result"] == {"data": 42}
    final = await status(client, handle)
    fetch = final["history"][0]
    assert fetch["attempts"] == 2
    assert fetch["outcome"] == "completed"
    assert final["steps"]["fetch"] == {"status": "completed", "output": {"data": 42}}


async def test_exhausted_retries_fail_the_run(client: Client, worker: Worker) -> None:
    handle = await start(client, RETRY_ON_ERROR)
    first = await wait_for_action(client, handle, "fetch")
    [second] = (await submit(client, first, error="down"))["pending_actions"]
    advance = await submit(client, second, error="still down")
    assert advance["status"] == "failed"
    assert advance["error"] == "step 'fetch' failed: still down"
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED


SHELL_EXIT = """
name: shell-exit
version: 1
steps:
  - {id: lint, type: shell, command: make lint, on_error: continue, output_to: lint}
  - {id: test, type: shell, command: make test}
  - {id: never, type: return, value: unreachable}
"""


async def test_shell_nonzero_exit_is_a_step_failure(client: Client, worker: Worker) -> None:
    handle = await start(client, SHELL_EXIT)
    lint = await wait_for_action(client, handle, "lint")
    advance = await submit(client, lint, {"exit_code": 1, "stdout": "", "stderr": "E501 line\n"})
    # on_error: continue records the failure (with the shell's output) and goes on.
    [test] = advance["pending_actions"]
    current = await status(client, handle)
    assert current["steps"]["lint"] == {
        "status": "failed",
        "output": {"exit_code": 1, "stdout": "", "stderr": "E501 line\n"},
        "error": "exit code 1: E501 line",
    }
    # ... and what the failed step produced lands in output_to, for the next steps to read.
    assert current["state"]["lint"] == {"exit_code": 1, "stdout": "", "stderr": "E501 line\n"}
    advance = await submit(client, test, {"exit_code": 2})
    assert advance["status"] == "failed"
    assert advance["error"] == "step 'test' failed: exit code 2"
    with pytest.raises(WorkflowFailureError) as raised:
        await handle.result()
    assert isinstance(raised.value.cause, ApplicationError)
    assert raised.value.cause.message == "step 'test' failed: exit code 2"
    final = await status(client, handle)
    assert "never" not in final["steps"]
    assert [(e["step_id"], e["outcome"]) for e in final["history"]] == [
        ("lint", "failed"),
        ("test", "failed"),
    ]


async def test_on_error_continue_after_timeout_and_retry_capped(
    client: Client, worker: Worker
) -> None:
    definition = """
name: on-error-mix
version: 1
steps:
  - {id: ask, type: prompt, prompt_type: confirm, message: Go?, timeout: 1s,
     on_error: continue}
  - id: build
    type: shell
    command: make
    retry: {max_attempts: 3, initial_interval: 1s, backoff: 10.0, max_interval: 1s}
    output_to: build
  - {id: done, type: return,
     value: {ask: "${{ steps.ask.status }}", why: "${{ steps.ask.error }}",
             build: "${{ state.build.stdout }}"}}
"""
    handle = await start(client, definition)
    first = await wait_for_action(client, handle, "build", timeout=10)
    current = await status(client, handle)
    assert current["steps"]["ask"]["status"] == "failed"
    assert [a["step_id"] for a in current["pending_actions"]] == ["build"]
    [second] = (await submit(client, first, {"exit_code": 3}))["pending_actions"]
    [third] = (await submit(client, second, {"exit_code": 3}))["pending_actions"]
    created = [datetime.fromisoformat(a["created_at"]) for a in (first, second, third)]
    # backoff 10x but capped at max_interval (1 s): both waits are about one second
    assert (created[2] - created[1]).total_seconds() < 2.5
    advance = await submit(client, third, {"exit_code": 0, "stdout": "ok"})
    assert advance["result"] == {"ask": "failed", "why": "timed out after 1s", "build": "ok"}
    final = await status(client, handle)
    assert final["history"][1]["attempts"] == 3
