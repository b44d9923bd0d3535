"""Identity: who may answer a prompt, who did, and what a read-only token may do.

Tokens carry a subject (``sub``); every answer, cancel and retry records it. A prompt may name
who can answer it (roles, subjects), how many distinct approvals it needs, and that the run's
starter may not approve it; a refused answer is PERMISSION_DENIED naming the rule, and leaves
the run as it was.
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import struct_pb2

from engine.api.v1 import resources_pb2
from engine.api.v1 import workflow_service_pb2 as workflows_pb
from engine.api.v1 import workflow_service_pb2_grpc as workflows_grpc
from tests.server.harness import ControlPlaneKit, ask_yaml, error_info, refused, unique

GOVERNED = """\
name: {name}
version: 1
steps:
  - id: approve
    type: prompt
    prompt_type: confirm
    message: Ship it?
    approvers: {{roles: [release], subjects: [dana]}}
    approvals: 2
    allow_starter: false
    output_to: ok
  - {{id: done, type: return, value: "${{{{ state.ok }}}}"}}
"""


def _confirm(workflow_id: str, value: bool) -> workflows_pb.SubmitResultRequest:
    return workflows_pb.SubmitResultRequest(
        workflow_id=workflow_id, step_id="approve", result=struct_pb2.Value(bool_value=value)
    )


async def test_a_governed_prompt_takes_only_allowed_distinct_approvers_and_records_them(
    kit: ControlPlaneKit, workflows: workflows_grpc.WorkflowServiceStub
) -> None:
    name = unique("governed")
    await kit.register(GOVERNED.format(name=name))
    started = await workflows.StartWorkflow(
        workflows_pb.StartWorkflowRequest(definition_name=name, wait_for_suspension=True),
        metadata=kit.auth(roles=["release"], subject="alice"),
    )
    run = started.workflow_id
    [action] = started.pending_actions
    rules = dict(action.parameters["answer_rules"])
    assert rules["approvals"] == 2 and rules["allow_starter"] is False

    async def answer_refused(metadata: Any, reason: str) -> None:
        error, status = await refused(
            workflows.SubmitResult(_confirm(run, True), metadata=metadata)
        )
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error_info(status).reason == "ANSWER_REFUSED"
        assert reason in error.details(), error.details()

    # Not an approver; the starter; no subject at all.
    await answer_refused(
        kit.auth(subject="mallory"),
        "step 'approve' may be answered by roles ['release'] or subjects ['dana']; 'mallory' "
        "has roles []",
    )
    await answer_refused(
        kit.auth(roles=["release"], subject="alice"),
        "may not be answered by the run's starter (allow_starter: false): 'alice' started the run",
    )
    await answer_refused(kit.auth(roles=["release"]), "a caller without a subject")

    # The first approval counts; the run still waits, and says who approved.
    first = await workflows.SubmitResult(
        _confirm(run, True), metadata=kit.auth(roles=["release"], subject="bob")
    )
    assert first.status == resources_pb2.RUN_STATUS_WAITING
    [still] = first.pending_actions
    assert [a.subject for a in still.answers] == ["bob"]
    await answer_refused(kit.auth(roles=["release"], subject="bob"), "'bob' has already answered")

    # A second, distinct approver (by subject) decides.
    done = await workflows.SubmitResult(_confirm(run, True), metadata=kit.auth(subject="dana"))
    assert done.status == resources_pb2.RUN_STATUS_COMPLETED
    assert done.result.bool_value is True
    got = await workflows.GetWorkflow(
        workflows_pb.GetWorkflowRequest(workflow_id=run), metadata=kit.auth()
    )
    assert got.workflow.started_by == "alice"
    [record] = [r for r in got.workflow.history if r.step_id == "approve"]
    assert [(a.subject, a.answer.bool_value) for a in record.answers] == [
        ("bob", True),
        ("dana", True),
    ]
    assert all(a.time.seconds > 0 for a in record.answers)


async def test_one_refusal_from_an_approver_decides_at_once(
    kit: ControlPlaneKit, workflows: workflows_grpc.WorkflowServiceStub
) -> None:
    name = unique("vetoed")
    await kit.register(GOVERNED.format(name=name))
    started = await workflows.StartWorkflow(
        workflows_pb.StartWorkflowRequest(definition_name=name, wait_for_suspension=True),
        metadata=kit.auth(subject="alice"),
    )
    answer = await workflows.SubmitResult(
        _confirm(started.workflow_id, False), metadata=kit.auth(subject="dana")
    )
    assert answer.status == resources_pb2.RUN_STATUS_COMPLETED
    assert answer.result.bool_value is False


async def test_answers_and_cancels_record_who_and_when(
    kit: ControlPlaneKit, workflows: workflows_grpc.WorkflowServiceStub
) -> None:
    name = unique("who")
    await kit.register(ask_yaml(name))
    answered = await workflows.StartWorkflow(
        workflows_pb.StartWorkflowRequest(definition_name=name, wait_for_suspension=True),
        metadata=kit.auth(subject="erin"),
    )
    await workflows.SubmitResult(
        workflows_pb.SubmitResultRequest(
            workflow_id=answered.workflow_id,
            step_id="ask",
            result=struct_pb2.Value(bool_value=True),
        ),
        metadata=kit.auth(subject="frank"),
    )
    got = await workflows.GetWorkflow(
        workflows_pb.GetWorkflowRequest(workflow_id=answered.workflow_id), metadata=kit.auth()
    )
    [record] = [r for r in got.workflow.history if r.step_id == "ask"]
    assert [a.subject for a in record.answers] == ["frank"]
    assert got.workflow.started_by == "erin"

    cancelled = await workflows.StartWorkflow(
        workflows_pb.StartWorkflowRequest(definition_name=name, wait_for_suspension=True),
        metadata=kit.auth(subject="erin"),
    )
    await workflows.CancelWorkflow(
        workflows_pb.CancelWorkflowRequest(workflow_id=cancelled.workflow_id, reason="not today"),
        metadata=kit.auth(subject="grace"),
    )
    client = await kit.stack.client("acme")
    handle = client.get_workflow_handle(cancelled.workflow_id)
    [requested] = [
        event.workflow_execution_cancel_requested_event_attributes
        async for event in handle.fetch_history_events()
        if event.HasField("workflow_execution_cancel_requested_event_attributes")
    ]
    assert requested.cause == "by grace: not today"


async def test_a_read_only_token_reads_and_changes_nothing(
    kit: ControlPlaneKit, workflows: workflows_grpc.WorkflowServiceStub
) -> None:
    name = unique("viewer")
    await kit.register(ask_yaml(name))
    started = await workflows.StartWorkflow(
        workflows_pb.StartWorkflowRequest(definition_name=name, wait_for_suspension=True),
        metadata=kit.auth(),
    )
    viewer = kit.auth(roles=["viewer"], subject="vic")
    got = await workflows.GetWorkflow(
        workflows_pb.GetWorkflowRequest(workflow_id=started.workflow_id), metadata=viewer
    )
    assert got.workflow.status == resources_pb2.RUN_STATUS_WAITING
    await workflows.ListPendingActions(workflows_pb.ListPendingActionsRequest(), metadata=viewer)
    for call in (
        workflows.StartWorkflow(
            workflows_pb.StartWorkflowRequest(definition_name=name), metadata=viewer
        ),
        workflows.SubmitResult(
            workflows_pb.SubmitResultRequest(
                workflow_id=started.workflow_id,
                step_id="ask",
                result=struct_pb2.Value(bool_value=True),
            ),
            metadata=viewer,
        ),
        workflows.CancelWorkflow(
            workflows_pb.CancelWorkflowRequest(workflow_id=started.workflow_id), metadata=viewer
        ),
    ):
        error, _ = await refused(call)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "is read only" in error.details()
    again = await workflows.GetWorkflow(
        workflows_pb.GetWorkflowRequest(workflow_id=started.workflow_id), metadata=viewer
    )
    assert again.workflow.status == resources_pb2.RUN_STATUS_WAITING
    assert again.workflow.status_version == got.workflow.status_version
    await workflows.CancelWorkflow(
        workflows_pb.CancelWorkflowRequest(workflow_id=started.workflow_id), metadata=kit.auth()
    )
