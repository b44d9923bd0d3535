"""Typed errors where INTERNAL (or a silent OK) used to be: each names what happened, and the
caller can tell whether its call took effect."""

from __future__ import annotations

import math

import grpc
import pytest
from google.protobuf import duration_pb2, struct_pb2

from engine.api.v1 import resources_pb2
from engine.api.v1 import schedule_service_pb2 as schedules_pb
from engine.api.v1 import schedule_service_pb2_grpc as schedules_grpc
from engine.api.v1 import workflow_service_pb2 as workflows_pb
from engine.api.v1 import workflow_service_pb2_grpc as workflows_grpc
from tests.server.harness import ControlPlaneKit, ask_yaml, error_info, refused, unique
from tests.tenancy.orgkit import eventually

BACKING_OFF = """\
name: {name}
version: 1
steps:
  - id: build
    type: mcp_call
    tool: build
    retry: {{max_attempts: 2, initial_interval: 30s}}
  - {{id: done, type: return, value: ok}}
"""


async def test_an_error_submitted_during_a_long_backoff_is_answered_at_once_and_shown(
    kit: ControlPlaneKit, workflows: workflows_grpc.WorkflowServiceStub
) -> None:
    name = unique("backoff")
    await kit.register(BACKING_OFF.format(name=name))
    started = await workflows.StartWorkflow(
        workflows_pb.StartWorkflowRequest(definition_name=name, wait_for_suspension=True),
        metadata=kit.auth(),
    )
    [action] = started.pending_actions

    # The step retries in 30 s: the answer does not wait for that (it used to time out).
    answer = await workflows.SubmitResult(
        workflows_pb.SubmitResultRequest(
            workflow_id=started.workflow_id, action_id=action.action_id, error="tool crashed"
        ),
        metadata=kit.auth(),
        timeout=10,
    )
    assert answer.status == resources_pb2.RUN_STATUS_RUNNING
    assert list(answer.pending_actions) == []

    got = await workflows.GetWorkflow(
        workflows_pb.GetWorkflowRequest(workflow_id=started.workflow_id), metadata=kit.auth()
    )
    waiting = got.workflow.waiting
    assert waiting.step_id == "build"
    assert waiting.message.startswith("attempt 1 failed: tool crashed; attempt 2 at ")
    assert waiting.until.seconds > 0
    [record] = [r for r in got.workflow.history if r.step_id == "build"]
    assert record.attempts == 1

    # Nothing to answer until the next attempt: refused with the reason, not burnt.
    error, _ = await refused(
        workflows.SubmitResult(
            workflows_pb.SubmitResultRequest(
                workflow_id=started.workflow_id, step_id="build", error="again"
            ),
            metadata=kit.auth(),
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "it waits to retry (attempt 1 failed: tool crashed; attempt 2 at" in error.details()
    await workflows.CancelWorkflow(
        workflows_pb.CancelWorkflowRequest(workflow_id=started.workflow_id), metadata=kit.auth()
    )


async def test_update_timeout_of_a_step_that_is_not_waiting_isrefused(
    kit: ControlPlaneKit, workflows: workflows_grpc.WorkflowServiceStub
) -> None:
    name = unique("deadline")
    await kit.register(ask_yaml(name))
    started = await workflows.StartWorkflow(
        workflows_pb.StartWorkflowRequest(definition_name=name, wait_for_suspension=True),
        metadata=kit.auth(),
    )
    error, status = await refused(
        workflows.UpdateTimeout(
            workflows_pb.UpdateTimeoutRequest(
                workflow_id=started.workflow_id,
                step_id="done",
                timeout=duration_pb2.Duration(seconds=60),
            ),
            metadata=kit.auth(),
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(status).reason == "STEP_NOT_WAITING"
    assert (
        error.details() == "step 'done' is not waiting for a result or a time (the run is at 'ask')"
    )
    # The waiting step's deadline moves, and says so.
    await workflows.UpdateTimeout(
        workflows_pb.UpdateTimeoutRequest(
            workflow_id=started.workflow_id,
            step_id="ask",
            timeout=duration_pb2.Duration(seconds=600),
        ),
        metadata=kit.auth(),
    )
    got = await eventually(
        lambda: workflows.GetWorkflow(
            workflows_pb.GetWorkflowRequest(workflow_id=started.workflow_id), metadata=kit.auth()
        ),
        lambda answer: answer.workflow.pending_actions[0].deadline.seconds > 0,
    )
    assert got.workflow.pending_actions[0].step_id == "ask"
    await workflows.CancelWorkflow(
        workflows_pb.CancelWorkflowRequest(workflow_id=started.workflow_id), metadata=kit.auth()
    )


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
async def test_numbers_json_cannot_hold_are_refused_naming_the_field(
    kit: ControlPlaneKit, workflows: workflows_grpc.WorkflowServiceStub, number: float
) -> None:
    inputs = struct_pb2.Struct()
    inputs.get_or_create_struct("nested")["x"] = number
    error, _ = await refused(
        workflows.StartWorkflow(
            workflows_pb.StartWorkflowRequest(definition_name="anything", inputs=inputs),
            metadata=kit.auth(),
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (
        "inputs: holds a number that is not finite (NaN or Infinity): JSON has neither"
    )


async def test_schedules_of_an_org_never_provisioned_are_not_found(kit: ControlPlaneKit) -> None:
    stub = schedules_grpc.ScheduleServiceStub(kit.channel())
    error, status = await refused(
        stub.ListSchedules(schedules_pb.ListSchedulesRequest(), metadata=kit.auth(unique("never")))
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(status).reason == "ORG_NOT_FOUND"


async def test_a_workflow_id_no_run_can_have_is_refused_without_echoing_it(
    kit: ControlPlaneKit, workflows: workflows_grpc.WorkflowServiceStub
) -> None:
    for bad in ("a\u202eb", "nul\x00", "../../etc/passwd", "x" * 10_000, " spaced"):
        error, _ = await refused(
            workflows.StartWorkflow(
                workflows_pb.StartWorkflowRequest(definition_name="anything", workflow_id=bad),
                metadata=kit.auth(),
            )
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, bad
        assert len(error.details()) < 400
        error, _ = await refused(
            workflows.GetWorkflow(
                workflows_pb.GetWorkflowRequest(workflow_id=bad), metadata=kit.auth()
            )
        )
        assert error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT)
        assert len(error.details()) < 400
