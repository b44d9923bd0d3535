"""SendEvent and the wait_for step over a real channel: to one run, to every waiting run of the
org, correlation, idempotency, timeouts, and the errors of bad requests."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2

from engine.api.v1 import resources_pb2
from engine.api.v1 import workflow_service_pb2 as workflows_pb
from engine.api.v1 import workflow_service_pb2_grpc as workflows_grpc
from tests.server.harness import ControlPlaneKit, eventually, refused, unique

RUNNING = resources_pb2.RUN_STATUS_RUNNING
COMPLETED = resources_pb2.RUN_STATUS_COMPLETED
FAILED = resources_pb2.RUN_STATUS_FAILED


def _merge_yaml(name: str, *, timeout: str = "1h") -> str:
    return f"""\
name: {name}
version: 1
inputs:
  pr: {{type: integer, required: true}}
steps:
  - id: merged
    type: wait_for
    event: pr_merged
    correlate: "event.pr == inputs.pr"
    timeout: {timeout}
    output_to: merge
  - {{id: done, type: return, value: "${{{{ state.merge }}}}"}}
"""


def _value(data: Any) -> struct_pb2.Value:
    value = struct_pb2.Value()
    json_format.ParseDict(data, value)
    return value


class Events:
    def __init__(self, kit: ControlPlaneKit, stub: workflows_grpc.WorkflowServiceStub) -> None:
        self.kit = kit
        self.stub = stub

    async def start(self, text: str, pr: int) -> str:
        inputs = struct_pb2.Struct()
        inputs.update({"pr": pr})
        started = await self.stub.StartWorkflow(
            workflows_pb.StartWorkflowRequest(
                definition_yaml=text, inputs=inputs, wait_for_suspension=True
            ),
            metadata=self.kit.auth(),
        )
        return started.workflow_id

    async def send(self, name: str, payload: Any, **fields: Any) -> list[str]:
        answer = await self.stub.SendEvent(
            workflows_pb.SendEventRequest(name=name, payload=_value(payload), **fields),
            metadata=self.kit.auth(),
        )
        return list(answer.workflow_ids)

    async def get(self, workflow_id: str) -> resources_pb2.Workflow:
        answer = await self.stub.GetWorkflow(
            workflows_pb.GetWorkflowRequest(workflow_id=workflow_id), metadata=self.kit.auth()
        )
        return answer.workflow

    async def ended(self, workflow_id: str) -> resources_pb2.Workflow:
        return await eventually(
            lambda: self.get(workflow_id),
            lambda w: w.status in (COMPLETED, FAILED),
            what=f"{workflow_id} ended",
        )


async def test_an_event_to_one_run_completes_its_wait_for_with_the_payload(
    kit: ControlPlaneKit, workflows: workflows_grpc.WorkflowServiceStub
) -> None:
    events = Events(kit, workflows)
    workflow_id = await events.start(_merge_yaml(unique("merge")), pr=7)
    waiting = await events.get(workflow_id)
    assert waiting.status == RUNNING
    assert waiting.waiting.step_id == "merged"
    assert waiting.waiting.message == "waiting for event 'pr_merged'"

    # Another PR's event does not correlate: the run keeps waiting (and keeps the event).
    assert await events.send("pr_merged", {"pr": 8}, workflow_id=workflow_id) == [workflow_id]
    assert await events.send("pr_merged", {"pr": 7, "sha": "abc"}, workflow_id=workflow_id) == [
        workflow_id
    ]
    ended = await events.ended(workflow_id)
    assert ended.status == COMPLETED
    assert json_format.MessageToDict(ended.result) == {"pr": 7, "sha": "abc"}
    assert [(h.step_id, h.outcome) for h in ended.history] == [
        ("merged", resources_pb2.STEP_OUTCOME_COMPLETED),
        ("done", resources_pb2.STEP_OUTCOME_COMPLETED),
    ]


async def test_a_broadcast_reaches_every_run_waiting_for_the_name_and_each_correlates(
    kit: ControlPlaneKit, workflows: workflows_grpc.WorkflowServiceStub
) -> None:
    events = Events(kit, workflows)
    name = unique("fleet")
    first = await events.start(_merge_yaml(name), pr=1)
    second = await events.start(_merge_yaml(name), pr=2)

    async def both_listed() -> list[str]:
        # Visibility lags a little behind a run that has just begun to wait; an event that
        # correlates with neither run is harmless, and shows who is listed.
        return await events.send("pr_merged", {"pr": -1})

    listed = await eventually(
        both_listed, lambda ids: {first, second} <= set(ids), what="both runs listed"
    )
    assert {first, second} <= set(listed)
    await events.send("pr_merged", {"pr": 2}, request_id="merge-2")
    done = await events.ended(second)
    assert json_format.MessageToDict(done.result) == {"pr": 2}
    # The broadcast that correlated with nothing was dropped by the first run, not kept.
    still = await events.get(first)
    assert still.status == RUNNING
    await events.send("pr_merged", {"pr": 1}, workflow_id=first)
    assert json_format.MessageToDict((await events.ended(first)).result) == {"pr": 1}


async def test_an_event_sent_before_the_step_waits_is_kept_and_a_repeat_is_ignored(
    kit: ControlPlaneKit, workflows: workflows_grpc.WorkflowServiceStub
) -> None:
    events = Events(kit, workflows)
    text = f"""\
name: {unique("early")}
version: 1
steps:
  - {{id: settle, type: wait, duration: 1s}}
  - {{id: first, type: wait_for, event: ping, output_to: a, timeout: 1m}}
  - {{id: second, type: wait_for, event: ping, output_to: b, timeout: 2s, on_error: continue}}
  - {{id: done, type: return, value: "${{{{ [state.a, state.b] }}}}"}}
"""
    started = await workflows.StartWorkflow(
        workflows_pb.StartWorkflowRequest(definition_yaml=text), metadata=kit.auth()
    )
    workflow_id = started.workflow_id
    # Sent twice with one request id, while the run is still in its wait step.
    await events.send("ping", "one", workflow_id=workflow_id, request_id="once")
    await events.send("ping", "one", workflow_id=workflow_id, request_id="once")
    ended = await events.ended(workflow_id)
    # The first wait_for took the event; its repeat was ignored, so the second timed out.
    assert ended.status == COMPLETED
    assert json_format.MessageToDict(ended.result) == ["one", None]
    outcomes = {h.step_id: h.outcome for h in ended.history}
    assert outcomes["second"] == resources_pb2.STEP_OUTCOME_FAILED
    second = next(h for h in ended.history if h.step_id == "second")
    assert second.error == "no event 'ping' arrived within 2s"


async def test_bad_event_requests_name_the_field(
    kit: ControlPlaneKit, workflows: workflows_grpc.WorkflowServiceStub
) -> None:
    events = Events(kit, workflows)
    error, _ = await refused(events.send("", None))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "name: is required",
    )
    error, _ = await refused(events.send("bad name!", None))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "invalid event name 'bad name!'" in error.details()
    error, _ = await refused(events.send("ping", None, workflow_id="no-such-run"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    # A broadcast nobody waits for reaches no run, and is no error.
    assert await events.send(unique("nobody"), {"x": 1}) == []
