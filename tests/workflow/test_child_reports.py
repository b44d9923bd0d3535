"""A child run's reports to its parent travel in the background: the child takes its next step
in the workflow task that accepted an answer, instead of a round trip through the server later,
and its parent's status still follows every action of the tree."""

from __future__ import annotations

from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

from tests.helpers.runs import (
    assert_replays,
    run_to_end,
    start,
    submit,
    wait_for_action,
    wait_until,
)

ITEMS = """
name: child-reports
version: 1
steps:
  - id: each
    type: foreach
    items: range(2)
    as: n
    steps:
      - {id: first, type: prompt, prompt_type: text, message: "first ${{ n }}", output_to: a}
      - {id: second, type: prompt, prompt_type: text, message: "second ${{ n }}", output_to: b}
      - {id: item_done, type: return, value: "${{ state.a + state.b }}"}
    output_to: joined
  - {id: done, type: return, value: "${{ state.joined }}"}
"""


def _written_with_first_answer(events: list[Any]) -> list[int]:
    """The kinds of the events written with a history's first accepted update (up to the next
    workflow task)."""
    written: list[int] = []
    accepted = False
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            accepted = True
        elif accepted and event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            break
        elif accepted:
            written.append(event.event_type)
    return written


async def test_a_child_takes_its_next_step_with_the_answer_and_the_parent_follows(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, ITEMS)
    child = f"{handle.id}/each/0"
    first = await wait_for_action(client, child, "first")
    await submit(client, first, "x")
    # The parent's status (the whole tree's actions) moves on with the child's report.
    await wait_until(
        client,
        handle,
        lambda s: (
            [(a["workflow_id"], a["step_id"]) for a in s["pending_actions"]] == [(child, "second")]
        ),
    )
    history = await client.get_workflow_handle(child).fetch_history()
    # The answer's workflow task already asked the next question (its inbox entry): it did not
    # stop to wait for a report to be delivered first.
    with_answer = _written_with_first_answer(list(history.events))
    assert EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED in with_answer, with_answer

    for workflow_id in (child, f"{handle.id}/each/1"):
        for step_id, value in (("first", "x"), ("second", "y")):
            if workflow_id == child and step_id == "first":
                continue
            await submit(client, await wait_for_action(client, workflow_id, step_id), value)
    result, error = await run_to_end(handle)
    assert error is None and result == ["xy", "xy"]
    final = await wait_until(client, handle, lambda s: s["status"] == "completed")
    assert final["pending_actions"] == []
    await assert_replays(client, handle.id, child, f"{handle.id}/each/1")
