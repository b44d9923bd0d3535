"""The executor protocol against a real dev server: claims, leases, heartbeats, reports.

Every run here is cleaned up by the test that starts it: executors of one org share its
queues, and an action left behind would be claimed by the next test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from temporalio.client import WorkflowFailureError

from engine.api.v1 import executor_service_pb2 as pb
from engine.dispatcher import WorkflowAlreadyFinishedError
from engine.executor import ClaimedAction, Executor, ExecutorError
from engine.wire import to_value
from tests.executor.kit import LEASE, ok, start
from tests.server.harness import ControlPlaneKit, eventually
from tests.tenancy.orgkit import wait_for_action

Executors = Callable[..., Executor]


async def _cancel(kit: ControlPlaneKit, org_id: str, *workflow_ids: str) -> None:
    for workflow_id in workflow_ids:
        with contextlib.suppress(WorkflowAlreadyFinishedError):
            await kit.dispatcher.cancel(kit.org(org_id), workflow_id)


async def _claim(executor: Executor, action_type: str = "shell", **kwargs: Any) -> ClaimedAction:
    claimed = await executor.claim(action_type, wait=20, **kwargs)
    assert claimed is not None, f"no {action_type} action within 20s"
    return claimed


async def test_two_executors_never_get_the_same_action(
    kit: ControlPlaneKit, executors: Executors
) -> None:
    org = kit.org("north")
    runs = [await start(kit, org, "one-shell", n=i) for i in range(8)]
    claimed: list[ClaimedAction] = []

    async def drain(executor: Executor) -> None:
        while len(claimed) < len(runs):
            action = await executor.claim("shell", wait=3)
            if action is not None:
                claimed.append(action)

    try:
        await asyncio.wait_for(asyncio.gather(drain(executors()), drain(executors())), 60)
        ids = [action.action_id for action in claimed]
        assert len(ids) == len(set(ids)) == len(runs)
        assert {action.action["workflow_id"] for action in claimed} == set(runs)
        assert all(action.delivery == 1 for action in claimed)
        for action in claimed:
            await action.complete(ok(f"n={action.parameters['env']['N']}"))
        results = [await kit.dispatcher.result(org, run) for run in runs]
        assert sorted(results) == sorted(f"n={i}" for i in range(len(runs)))
    finally:
        await _cancel(kit, "north", *runs)


async def test_a_lost_lease_gives_the_action_to_another_and_refuses_the_late_result(
    kit: ControlPlaneKit, executors: Executors
) -> None:
    org = kit.org("north")
    run = await start(kit, org, "one-shell", n=1)
    try:
        first = await _claim(executors(identity="dies"))
        await first.abandon()  # no more heartbeats, as if the process were killed
        second = await _claim(executors(identity="lives"))

        assert second.action_id == first.action_id
        assert (first.delivery, second.delivery) == (1, 2)
        with pytest.raises(ExecutorError) as late:
            await first.complete(ok("late"))
        assert late.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert late.value.reason == "LEASE_EXPIRED"
        assert "no longer held" in late.value.message

        await second.complete(ok("on time"))
        assert await kit.dispatcher.result(org, run) == "on time"
    finally:
        await _cancel(kit, "north", run)


async def test_leases_lost_on_every_delivery_use_up_the_steps_retries_once(
    kit: ControlPlaneKit, executors: Executors
) -> None:
    org = kit.org("north")
    run = await start(kit, org, "one-shell", n=2)  # retry: max_attempts 3
    try:
        deliveries = []
        for _ in range(3):
            held = await _claim(executors(identity="dies"))
            deliveries.append(held.delivery)
            await held.abandon()
        assert deliveries == [1, 2, 3]
        with pytest.raises(WorkflowFailureError) as failed:
            await kit.dispatcher.result(org, run)
        assert "its lease expired on every delivery" in str(failed.value.cause)
        # The step's retries were the deliveries: no fourth one, no new action.
        assert await executors().claim("shell", wait=1) is None
    finally:
        await _cancel(kit, "north", run)


async def test_an_action_polled_for_an_executor_that_left_is_offered_again(
    kit: ControlPlaneKit, executors: Executors
) -> None:
    # A step with one delivery only: giving the action back must not use it up.
    org = kit.org("north")
    leaving = asyncio.create_task(executors(identity="leaves").claim("mcp_call", wait=10))
    await asyncio.sleep(0.5)  # its poll is out on Temporal
    leaving.cancel()  # the executor goes before anything comes; the poll stays out
    run = await start(kit, org, "once-tool")
    try:
        await asyncio.sleep(LEASE)  # polled for nobody, held a moment, then given back
        claimed = await _claim(executors(identity="stays"), "mcp_call")
        assert claimed.action["workflow_id"] == run
        assert claimed.parameters["tool"] == "db.migrate"
        assert claimed.delivery == 1  # a fresh offer, not a retry
        await claimed.complete({"migrated": 7})
        assert await kit.dispatcher.result(org, run) == {"migrated": 7}
        client = await kit.dispatcher.client(org)
        history = await client.get_workflow_handle(run).fetch_history()
        failed = [
            e.activity_task_failed_event_attributes.failure.application_failure_info.type
            for e in history.events
            if e.HasField("activity_task_failed_event_attributes")
        ]
        scheduled = [
            e for e in history.events if e.HasField("activity_task_scheduled_event_attributes")
        ]
        assert (failed, len(scheduled)) == (["ActionReleased"], 2)
    finally:
        await _cancel(kit, "north", run)


async def test_heartbeats_keep_a_long_action(kit: ControlPlaneKit, executors: Executors) -> None:
    org = kit.org("north")
    run = await start(kit, org, "one-shell", n=2)
    try:
        held = await _claim(executors())
        # Three leases long: the library heartbeats every third of one, and nobody else gets it.
        assert await executors().claim("shell", wait=LEASE * 3) is None
        assert not held.stopped.is_set()
        await held.complete(ok("long"))
        assert await kit.dispatcher.result(org, run) == "long"
        status = await kit.dispatcher.status(org, run)
        assert status["history"][0]["attempts"] == 1
    finally:
        await _cancel(kit, "north", run)


async def test_a_cancelled_run_tells_its_holder_to_stop(
    kit: ControlPlaneKit, executors: Executors
) -> None:
    org = kit.org("north")
    run = await start(kit, org, "one-shell", n=3)
    held = await _claim(executors())
    await kit.dispatcher.cancel(org, run)

    await asyncio.wait_for(held.stopped.wait(), LEASE * 5)
    with pytest.raises(ExecutorError) as refused:
        await held.complete(ok())
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.value.reason == "ACTION_CLOSED"


async def test_an_answer_by_id_wins_and_tells_the_holder(
    kit: ControlPlaneKit, executors: Executors
) -> None:
    org = kit.org("north")
    run = await start(kit, org, "one-shell", n=7)
    try:
        held = await _claim(executors())
        advance = await kit.dispatcher.submit_result(org, run, step_id="build", result=ok("hand"))
        assert advance["status"] == "completed"

        await asyncio.wait_for(held.stopped.wait(), LEASE * 5)
        with pytest.raises(ExecutorError) as refused:
            await held.complete(ok("late"))
        assert refused.value.reason == "ACTION_CLOSED"
        assert await kit.dispatcher.result(org, run) == "hand"
    finally:
        await _cancel(kit, "north", run)


async def test_a_prompt_is_answered_by_id_and_never_claimed(
    kit: ControlPlaneKit, executors: Executors
) -> None:
    org = kit.org("north")
    run = await start(kit, org, "ask-cli")
    try:
        with pytest.raises(ExecutorError) as refused:
            await executors().claim("prompt", wait=1)
        assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.message.startswith(
            "action_type: prompt actions are not claimed: a person answers them by id"
        )
        listed = await eventually(
            lambda: kit.dispatcher.pending_actions(org, workflow_id=run),
            lambda page: len(page.actions) == 1,
            what="the prompt in the inbox",
        )
        assert listed.actions[0]["type"] == "prompt"
        advance = await kit.dispatcher.submit_result(
            org, run, action_id=listed.actions[0]["action_id"], result="a"
        )
        assert (advance["status"], advance["result"]) == ("completed", "a")
    finally:
        await _cancel(kit, "north", run)


async def test_actions_are_routed_by_type_and_agent(
    kit: ControlPlaneKit, executors: Executors
) -> None:
    org = kit.org("north")
    run = await start(kit, org, "routed")
    executor = executors()
    try:
        assert await executor.claim("delegate", "@other", wait=1) is None
        review = await _claim(executor, "delegate", agent="@reviewer")
        assert (review.action["step_id"], review.parameters["agent"]) == ("review", "@reviewer")
        await review.complete("looks good")
        assert await executor.claim("shell", wait=1) is None
        other = await _claim(executor, "delegate", agent="@other")
        assert other.action["step_id"] == "other"
        await other.complete({"seen": True})
        tool = await _claim(executor, "mcp_call")
        assert tool.parameters["params"] == {"replicas": 2}
        await tool.complete([1, 2])
        assert await kit.dispatcher.result(org, run) == ["looks good", {"seen": True}, [1, 2]]
    finally:
        await _cancel(kit, "north", run)


async def test_another_org_neither_claims_nor_completes_an_action(
    kit: ControlPlaneKit, executors: Executors
) -> None:
    org = kit.org("north")
    run = await start(kit, org, "one-shell", n=4)
    south = executors("south")
    try:
        assert await south.claim("shell", wait=2) is None
        held = await _claim(executors("north"))
        token = held._token
        head, _, task = token.partition(".")
        claims = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
        forged_head = {**claims, "o": "south", "n": kit.namespace("south")}
        forged = (
            base64.urlsafe_b64encode(json.dumps(forged_head).encode()).decode().rstrip("=")
            + "."
            + task
        )
        for stolen in (token, forged):
            for call, request in (
                (south._stub.HeartbeatAction, pb.HeartbeatActionRequest(claim_token=stolen)),
                (
                    south._stub.CompleteAction,
                    pb.CompleteActionRequest(claim_token=stolen, result=to_value(ok())),
                ),
            ):
                with pytest.raises(ExecutorError) as refused:
                    await south._call(call, request)
                assert refused.value.code == grpc.StatusCode.NOT_FOUND
                assert refused.value.reason == "CLAIM_NOT_FOUND"
        await held.complete(ok("mine"))
        assert await kit.dispatcher.result(org, run) == "mine"
    finally:
        await _cancel(kit, "north", run)


async def test_a_result_of_the_wrong_shape_is_refused_before_anything_is_written(
    kit: ControlPlaneKit, executors: Executors
) -> None:
    org = kit.org("north")
    run = await start(kit, org, "one-shell", n=5)
    try:
        held = await _claim(executors())
        with pytest.raises(ExecutorError) as refused:
            await held.complete({"exit_code": "0", "stdout": "x"})
        assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert refused.value.message == "result: a shell result needs an integer exit_code"
        assert not held.finished  # still held: the executor can send a result that fits
        await held.complete(ok("fixed"))
        assert await kit.dispatcher.result(org, run) == "fixed"
    finally:
        await _cancel(kit, "north", run)


async def test_a_report_retried_with_its_request_id_is_taken_once(
    kit: ControlPlaneKit, executors: Executors
) -> None:
    org = kit.org("north")
    run = await start(kit, org, "one-shell", n=6)
    executor = executors()
    try:
        held = await _claim(executor)
        request = pb.CompleteActionRequest(
            claim_token=held._token, result=to_value(ok("once")), request_id="req-1"
        )
        await executor._call(executor._stub.CompleteAction, request)
        await executor._call(executor._stub.CompleteAction, request)  # the answer was lost
        other = pb.CompleteActionRequest(
            claim_token=held._token, result=to_value(ok("twice")), request_id="req-2"
        )
        with pytest.raises(ExecutorError) as refused:
            await executor._call(executor._stub.CompleteAction, other)
        assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
        await held.abandon()
        assert await kit.dispatcher.result(org, run) == "once"
    finally:
        await _cancel(kit, "north", run)


async def test_an_executor_failure_goes_to_the_steps_retry(
    kit: ControlPlaneKit, executors: Executors
) -> None:
    org = kit.org("north")
    run = await start(kit, org, "one-shell", n=7)
    executor = executors()
    try:
        first = await _claim(executor)
        await first.fail("the runner lost its disk")
        second = await _claim(executor)  # the step's retry: a new action, a new attempt
        assert second.action_id != first.action_id
        assert second.action["attempt"] == 2
        await second.complete(ok("second try"))
        assert await kit.dispatcher.result(org, run) == "second try"
        history = (await kit.dispatcher.status(org, run))["history"]
        assert history[0]["errors"] == ["the runner lost its disk"]
    finally:
        await _cancel(kit, "north", run)


async def test_the_watch_sees_every_state_of_a_run_answered_at_once(
    kit: ControlPlaneKit, executors: Executors
) -> None:
    org = kit.org("north")
    run = await start(kit, org, "five")
    waited: list[str] = []

    async def watch() -> None:
        async for status in kit.dispatcher.watch(org, run):
            for action in status["pending_actions"]:
                if action["step_id"] not in waited:
                    waited.append(action["step_id"])

    async def work() -> None:
        executor = executors()
        for _ in range(5):
            held = await _claim(executor)
            await held.complete(ok(held.action["step_id"]))  # within milliseconds

    try:
        watching = asyncio.create_task(watch())
        await asyncio.wait_for(work(), 60)
        await asyncio.wait_for(watching, 30)
        assert waited == ["s1", "s2", "s3", "s4", "s5"]
    finally:
        await _cancel(kit, "north", run)


async def test_a_submission_retried_with_its_request_id_answers_the_first_outcome(
    kit: ControlPlaneKit,
) -> None:
    org = kit.org("north")
    run = await start(kit, org, "five")
    try:
        await wait_for_action(kit.dispatcher, org, run, "s1")
        first = await kit.dispatcher.submit_result(
            org, run, step_id="s1", result=ok(), request_id="answer-1"
        )
        again = await kit.dispatcher.submit_result(
            org, run, step_id="s1", result=ok(), request_id="answer-1"
        )
        assert first["current_step"] == "s2"
        assert again == first
    finally:
        await _cancel(kit, "north", run)


async def test_poll_refuses_what_is_not_a_queue(kit: ControlPlaneKit) -> None:
    channel = kit.channel()
    from engine.api.v1 import executor_service_pb2_grpc, resources_pb2

    stub = executor_service_pb2_grpc.ExecutorServiceStub(channel)
    cases: dict[str, tuple[pb.PollActionRequest, str]] = {
        "no type": (pb.PollActionRequest(), "action_type"),
        "agent of a shell": (
            pb.PollActionRequest(action_type=resources_pb2.ACTION_TYPE_SHELL, agent="@x"),
            "agent",
        ),
        "agent of an mcp_call": (
            pb.PollActionRequest(action_type=resources_pb2.ACTION_TYPE_MCP_CALL, agent="gpu"),
            "agent",
        ),
    }
    for name, (request, field) in cases.items():
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.PollAction(request, metadata=kit.auth("north"))
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
        assert refused.value.details().startswith(f"{field}: "), name
    # A shell runner's label is a queue of its own (see tests/runners for the routing).
    labelled = pb.PollActionRequest(
        action_type=resources_pb2.ACTION_TYPE_SHELL, agent="gpu", wait={"seconds": 0}
    )
    answer = await stub.PollAction(labelled, metadata=kit.auth("north"), timeout=30)
    assert not answer.HasField("action")
