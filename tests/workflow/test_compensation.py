"""Compensation: ``compensate`` blocks of completed steps run in reverse completion order."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.worker import Worker

from tests.helpers.runs import (
    assert_replays,
    start,
    status,
    submit,
    wait_for_action,
    wait_until,
)

SEQUENCE = """
name: compensate-sequence
version: 1
state:
  order: unset
steps:
  - id: reserve
    type: mcp_call
    tool: reserve
    params: {what: seat}
    output_to: seat
    compensate:
      - {id: release, type: mcp_call, tool: release, params: {seat: "${{ state.seat.id }}"}}
  - id: note
    type: set_state
    set: {order: placed}
    compensate:
      - {id: unnote, type: mcp_call, tool: unnote, params: {order: "${{ state.order }}"}}
  - id: optional
    type: set_state
    when: "false"
    set: {x: 1}
    compensate:
      - {id: never_skipped, type: mcp_call, tool: never, params: {}}
  - id: soft
    type: mcp_call
    tool: soft
    on_error: continue
    compensate:
      - {id: never_failed, type: mcp_call, tool: never, params: {}}
  - id: charge
    type: mcp_call
    tool: charge
    compensate:
      - {id: refund, type: mcp_call, tool: refund, params: {}}
      - {id: refund_mail, type: mcp_call, tool: mail, params: {about: refund}}
  - {id: ship, type: mcp_call, tool: ship}
"""


async def _answer_compensations(
    client: Client, handle: Any, expected: list[str]
) -> list[dict[str, Any]]:
    """Answer compensation actions one by one, in the order the run issues them."""
    answered = []
    for _ in expected:
        current = await wait_until(
            client,
            handle,
            lambda s: bool(s["pending_actions"]) or s["status"] in ("completed", "failed"),
        )
        assert current["pending_actions"], f"expected more compensations, got {current}"
        [action] = current["pending_actions"]
        answered.append(action)
        await submit(client, action, {"undone": action["step_id"]})
    return answered


async def test_compensations_run_in_reverse_completion_order(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, SEQUENCE)
    reserve = await wait_for_action(client, handle, "reserve")
    [soft] = (await submit(client, reserve, {"id": "12A"}))["pending_actions"]
    [charge] = (await submit(client, soft, error="soft failure"))["pending_actions"]
    [ship] = (await submit(client, charge, {"charged": 10}))["pending_actions"]
    advance = await submit(client, ship, error="no courier")
    # The run does not fail yet: it is compensating, and the update answers with the first
    # compensation action.
    assert advance["status"] == "waiting"
    assert advance["current_step"] == "refund"

    order = ["refund", "refund_mail", "unnote", "release"]
    answered = await _answer_compensations(client, handle, order)
    assert [a["step_id"] for a in answered] == order
    assert answered[2]["parameters"]["params"] == {"order": "placed"}
    assert answered[3]["parameters"]["params"] == {"seat": "12A"}

    with pytest.raises(WorkflowFailureError) as raised:
        await handle.result()
    assert "step 'ship' failed: no courier" in str(raised.value.cause)
    final = await status(client, handle)
    assert final["status"] == "failed"
    assert final["error"] == "step 'ship' failed: no courier"
    steps = [e["step_id"] for e in final["history"]]
    assert steps[-4:] == order
    assert "never_skipped" not in steps and "never_failed" not in steps
    assert final["steps"]["release"]["status"] == "completed"


async def test_failed_compensation_does_not_stop_the_others(client: Client, worker: Worker) -> None:
    handle = await start(client, SEQUENCE)
    reserve = await wait_for_action(client, handle, "reserve")
    [soft] = (await submit(client, reserve, {"id": "1B"}))["pending_actions"]
    [charge] = (await submit(client, soft, error="soft"))["pending_actions"]
    [ship] = (await submit(client, charge, {}))["pending_actions"]
    [refund] = (await submit(client, ship, error="lost"))["pending_actions"]
    [unnote] = (await submit(client, refund, error="refund api down"))["pending_actions"]
    # refund failed, so the rest of its block (refund_mail) is skipped, but unnote still runs
    assert unnote["step_id"] == "unnote"
    [release] = (await submit(client, unnote, {}))["pending_actions"]
    advance = await submit(client, release, {})
    assert advance["status"] == "failed"
    assert advance["error"] == "step 'ship' failed: lost"
    final = await status(client, handle)
    assert final["steps"]["refund"]["status"] == "failed"
    assert final["steps"]["refund"]["error"] == "refund api down"
    assert "refund_mail" not in final["steps"]


FOREACH_THEN_FAIL = """
name: compensate-foreach
version: 1
steps:
  - id: prepare
    type: mcp_call
    tool: prepare
    compensate:
      - {id: unprepare, type: mcp_call, tool: unprepare, params: {}}
  - id: rollout
    type: foreach
    items: '["us", "eu", "ap"]'
    as: region
    max_parallel: 1
    steps:
      - {id: revision, type: set_state, set: {note: "rev-${{ region }}"}}
      - id: apply
        type: mcp_call
        tool: apply
        params: {region: "${{ region }}"}
        output_to: applied
        compensate:
          - id: rollback
            type: mcp_call
            tool: rollback
            params:
              region: "${{ region }}"
              index: "${{ index }}"
              note: "${{ state.note }}"
              revision: "${{ steps.revision.output.note }}"
              applied: "${{ state.applied }}"
      - {id: region_done, type: return, value: "${{ region }}"}
    output_to: regions
  - {id: verify, type: mcp_call, tool: verify, params: {regions: "${{ state.regions }}"}}
"""


def _rollback(region: str, index: int) -> dict[str, Any]:
    return {
        "region": region,
        "index": index,
        "note": f"rev-{region}",
        "revision": f"rev-{region}",
        "applied": {"applied": region},
    }


async def test_completed_foreach_items_are_compensated_when_the_parent_fails(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, FOREACH_THEN_FAIL)
    prepare = await wait_for_action(client, handle, "prepare")
    await submit(client, prepare, {})
    for region in ("us", "eu", "ap"):

        def applying(s: dict[str, Any], r: str = region) -> bool:
            return any(
                a["step_id"] == "apply" and a["parameters"]["params"]["region"] == r
                for a in s["pending_actions"]
            )

        current = await wait_until(client, handle, applying)
        [apply] = current["pending_actions"]
        assert apply["workflow_id"] != handle.id  # the item's child workflow answers it
        await submit(client, apply, {"applied": region})
    verify = await wait_for_action(client, handle, "verify")
    assert verify["parameters"]["params"] == {"regions": ["us", "eu", "ap"]}
    advance = await submit(client, verify, error="canary unhealthy")
    assert advance["current_step"] == "rollback"

    answered = await _answer_compensations(
        client, handle, ["rollback", "rollback", "rollback", "unprepare"]
    )
    # Each rollback renders with its item's variables, state and step records, although it
    # runs in the parent, long after the item ended.
    assert [(a["step_id"], a["parameters"]["params"]) for a in answered] == [
        ("rollback", _rollback("ap", 2)),
        ("rollback", _rollback("eu", 1)),
        ("rollback", _rollback("us", 0)),
        ("unprepare", {}),
    ]
    # The parent runs the items' compensations itself: the items are long finished.
    assert all(a["workflow_id"] == handle.id for a in answered)
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    final = await status(client, handle)
    assert final["error"] == "step 'verify' failed: canary unhealthy"
    await assert_replays(client, handle.id, f"{handle.id}/rollout/2")


async def test_failing_foreach_item_compensates_itself(client: Client, worker: Worker) -> None:
    definition = """
name: compensate-failing-item
version: 1
steps:
  - id: rollout
    type: foreach
    items: '["us"]'
    as: region
    steps:
      - id: apply
        type: mcp_call
        tool: apply
        params: {region: "${{ region }}"}
        compensate:
          - {id: rollback, type: mcp_call, tool: rollback, params: {region: "${{ region }}"}}
      - {id: check, type: mcp_call, tool: check}
"""
    handle = await start(client, definition)
    apply = await wait_for_action(client, handle, "apply")
    [check] = (await submit(client, apply, {}))["pending_actions"]
    advance = await submit(client, check, error="slo breached")
    # The child compensates its own completed step before it fails.
    [rollback] = advance["pending_actions"]
    assert rollback["step_id"] == "rollback"
    assert rollback["workflow_id"] == apply["workflow_id"]
    assert rollback["parameters"]["params"] == {"region": "us"}
    parent = await wait_for_action(client, handle, "rollback")
    assert parent["action_id"] == rollback["action_id"]
    await submit(client, rollback, {})
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    final = await status(client, handle)
    assert (
        final["error"] == "step 'rollout' failed: item 0 failed: step 'check' failed: slo breached"
    )
    assert final["steps"]["rollout"]["status"] == "failed"


async def test_stopped_siblings_hand_back_their_compensations(
    client: Client, worker: Worker
) -> None:
    definition = """
name: compensate-stopped-sibling
version: 1
steps:
  - id: rollout
    type: foreach
    items: '["us", "eu"]'
    as: region
    max_parallel: 2
    on_item_error: fail
    steps:
      - id: apply
        type: mcp_call
        tool: apply
        params: {region: "${{ region }}"}
        compensate:
          - {id: rollback, type: mcp_call, tool: rollback, params: {region: "${{ region }}"}}
      - {id: check, type: mcp_call, tool: check, params: {region: "${{ region }}"}}
"""
    handle = await start(client, definition)
    current = await wait_until(
        client, handle, lambda s: [a["step_id"] for a in s["pending_actions"]] == ["apply"] * 2
    )
    for apply in current["pending_actions"]:
        await submit(client, apply, {})
    current = await wait_until(
        client, handle, lambda s: [a["step_id"] for a in s["pending_actions"]] == ["check"] * 2
    )
    by_region = {a["parameters"]["params"]["region"]: a for a in current["pending_actions"]}
    # us fails: it rolls itself back, then eu (still waiting on its check) is stopped and
    # hands its completed apply back to the parent, which rolls it back too.
    [own_rollback] = (await submit(client, by_region["us"], error="slo"))["pending_actions"]
    assert own_rollback["parameters"]["params"] == {"region": "us"}
    await submit(client, own_rollback, {})
    parent_rollback = await wait_for_action(client, handle, "rollback")
    assert parent_rollback["workflow_id"] == handle.id
    assert parent_rollback["parameters"]["params"] == {"region": "eu"}
    await submit(client, parent_rollback, {})
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    final = await status(client, handle)
    assert final["error"] == "step 'rollout' failed: item 0 failed: step 'check' failed: slo"
    assert final["steps"]["rollout"]["errors"] == [
        {"index": 0, "item": "us", "error": "step 'check' failed: slo"},
        {"index": 1, "item": "eu", "error": "cancelled: item 0 failed"},
    ]
    eu = await status(client, by_region["eu"]["workflow_id"])
    assert eu["status"] == "cancelled"
    assert eu["steps"]["check"]["status"] == "cancelled"
    await assert_replays(
        client, handle.id, by_region["us"]["workflow_id"], by_region["eu"]["workflow_id"]
    )


async def test_cancelling_during_compensation_ends_cancelled(
    client: Client, worker: Worker
) -> None:
    handle = await start(client, SEQUENCE)
    reserve = await wait_for_action(client, handle, "reserve")
    [soft] = (await submit(client, reserve, {"id": "3C"}))["pending_actions"]
    [charge] = (await submit(client, soft, error="soft"))["pending_actions"]
    [ship] = (await submit(client, charge, {}))["pending_actions"]
    [refund] = (await submit(client, ship, error="lost"))["pending_actions"]
    assert refund["step_id"] == "refund"
    await handle.cancel()
    with pytest.raises(WorkflowFailureError):
        await handle.result()
    assert (await handle.describe()).status == WorkflowExecutionStatus.CANCELED
    final = await status(client, handle)
    assert final["status"] == "cancelled"
    assert final["current_step"] is None
    assert final["pending_actions"] == []
    assert final["steps"]["refund"]["status"] == "cancelled"
