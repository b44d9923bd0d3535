"""The call step over a real channel: a registered definition runs another as a child run,
with its version pinned at registration, its inputs checked at registration and at start, its
pending actions in the caller's status, and its failure and cancellation propagating."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2

from engine.api.v1 import definition_service_pb2 as definitions_pb
from engine.api.v1 import definition_service_pb2_grpc as definitions_grpc
from engine.api.v1 import resources_pb2
from engine.api.v1 import workflow_service_pb2 as workflows_pb
from engine.api.v1 import workflow_service_pb2_grpc as workflows_grpc
from tests.server.harness import ControlPlaneKit, eventually, refused, rich_status, unique

COMPLETED = resources_pb2.RUN_STATUS_COMPLETED
FAILED = resources_pb2.RUN_STATUS_FAILED
CANCELLED = resources_pb2.RUN_STATUS_CANCELLED


def _callee(name: str, version: int, *, greeting: str) -> str:
    return f"""\
name: {name}
version: {version}
inputs:
  who: {{type: string, required: true}}
  loud: {{type: boolean, default: false}}
steps:
  - {{id: ask, type: prompt, prompt_type: text, message: "Name for ${{{{ inputs.who }}}}?",
     output_to: answer}}
  - {{id: done, type: return, value: "{greeting} ${{{{ inputs.who }}}}: ${{{{ state.answer }}}}"}}
"""


def _caller(name: str, callee: str, *, inputs: str = '{who: "${{ inputs.who }}"}') -> str:
    return f"""\
name: {name}
version: 1
inputs:
  who: {{type: string, default: ada}}
steps:
  - {{id: sub, type: call, definition: {callee}, inputs: {inputs}, output_to: greeting}}
  - {{id: done, type: return, value: "${{{{ state.greeting }}}}"}}
"""


class Calls:
    def __init__(self, kit: ControlPlaneKit, stub: workflows_grpc.WorkflowServiceStub) -> None:
        self.kit = kit
        self.stub = stub
        self.definitions = definitions_grpc.DefinitionServiceStub(kit.channel())

    async def register(self, text: str) -> resources_pb2.Definition:
        answer = await self.definitions.RegisterDefinition(
            definitions_pb.RegisterDefinitionRequest(yaml=text), metadata=self.kit.auth()
        )
        return answer.definition

    async def start(self, **fields: Any) -> workflows_pb.StartWorkflowResponse:
        return await self.stub.StartWorkflow(
            workflows_pb.StartWorkflowRequest(wait_for_suspension=True, **fields),
            metadata=self.kit.auth(),
        )

    async def get(self, workflow_id: str) -> resources_pb2.Workflow:
        answer = await self.stub.GetWorkflow(
            workflows_pb.GetWorkflowRequest(workflow_id=workflow_id), metadata=self.kit.auth()
        )
        return answer.workflow

    async def until(self, workflow_id: str, statuses: tuple[int, ...]) -> resources_pb2.Workflow:
        return await eventually(
            lambda: self.get(workflow_id),
            lambda w: w.status in statuses,
            what=f"{workflow_id} in {statuses}",
        )

    async def action_of(self, workflow_id: str) -> resources_pb2.PendingAction:
        """The one pending action of the run's tree, once the called run has reported it."""
        status = await eventually(
            lambda: self.get(workflow_id),
            lambda w: len(w.pending_actions) == 1,
            what=f"{workflow_id} waiting on its called run's action",
        )
        return status.pending_actions[0]

    async def answer(self, action: resources_pb2.PendingAction, text: str) -> None:
        value = struct_pb2.Value(string_value=text)
        await self.stub.SubmitResult(
            workflows_pb.SubmitResultRequest(
                workflow_id=action.workflow_id, action_id=action.action_id, result=value
            ),
            metadata=self.kit.auth(),
        )


async def test_a_call_runs_the_pinned_version_and_shows_its_actions_in_the_caller(
    kit: ControlPlaneKit, workflows: workflows_grpc.WorkflowServiceStub
) -> None:
    calls = Calls(kit, workflows)
    callee, caller = unique("greet"), unique("caller")
    await calls.register(_callee(callee, 1, greeting="hello"))
    await calls.register(_caller(caller, callee))
    # A newer version of the callee, registered after the caller: the caller keeps version 1.
    await calls.register(_callee(callee, 2, greeting="bonjour"))

    started = await calls.start(definition_name=caller)
    action = await calls.action_of(started.workflow_id)
    assert (action.step_id, action.workflow_id) == ("ask", f"{started.workflow_id}/sub")
    status = await calls.get(started.workflow_id)
    assert status.current_step == "sub"

    await calls.answer(action, "Lovelace")
    done = await calls.until(started.workflow_id, (COMPLETED, FAILED))
    assert done.status == COMPLETED
    assert json_format.MessageToDict(done.result) == "hello ada: Lovelace"
    child = await calls.get(f"{started.workflow_id}/sub")
    assert child.workflow_type == f"{callee}:1"

    # Unregistered (inline YAML), the caller calls the latest version.
    inline = await calls.start(definition_yaml=_caller(unique("inline"), callee))
    action = await calls.action_of(inline.workflow_id)
    await calls.answer(action, "Byron")
    done = await calls.until(inline.workflow_id, (COMPLETED, FAILED))
    assert json_format.MessageToDict(done.result) == "bonjour ada: Byron"


async def test_registration_checks_what_a_call_asks_of_the_called_definition(
    kit: ControlPlaneKit, workflows: workflows_grpc.WorkflowServiceStub
) -> None:
    calls = Calls(kit, workflows)
    callee = unique("strict")
    await calls.register(_callee(callee, 1, greeting="hi"))

    missing = unique("nobody")
    error, _ = await refused(calls.register(_caller(unique("c"), missing)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"definition '{missing}' is not registered" in error.details()
    assert ":6:" in error.details()  # the line of the call step's `definition`

    text = _caller(unique("c"), callee, inputs="{whom: x, loud: maybe}")
    error, _ = await refused(calls.register(text))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error.details()
    assert f"definition '{callee}' (version 1) has no input 'whom'; did you mean 'who'?" in details
    assert "input 'loud' of" in details and "must be of type boolean" in details
    assert "needs input(s) 'who'" in details
    assert rich_status(error) is not None

    itself = unique("self")
    error, _ = await refused(calls.register(_caller(itself, itself)))
    assert f"definition '{itself}' cannot call itself" in error.details()

    # At start, an inline caller is checked the same way.
    error, _ = await refused(calls.start(definition_yaml=_caller(unique("c"), missing)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"definition '{missing}' is not registered" in error.details()


async def test_a_failed_call_fails_the_step_and_a_cancel_stops_the_called_run(
    kit: ControlPlaneKit, workflows: workflows_grpc.WorkflowServiceStub
) -> None:
    calls = Calls(kit, workflows)
    callee = unique("fails")
    await calls.register(_callee(callee, 1, greeting="x"))
    caller = unique("caller")
    await calls.register(_caller(caller, callee))

    started = await calls.start(definition_name=caller)
    action = await calls.action_of(started.workflow_id)
    await workflows.SubmitResult(
        workflows_pb.SubmitResultRequest(
            workflow_id=action.workflow_id, action_id=action.action_id, error="no name"
        ),
        metadata=kit.auth(),
    )
    failed = await calls.until(started.workflow_id, (COMPLETED, FAILED))
    assert failed.status == FAILED
    assert f"definition '{callee}' failed" in failed.error
    assert "no name" in failed.error

    again = await calls.start(definition_name=caller)
    await calls.action_of(again.workflow_id)
    await workflows.CancelWorkflow(
        workflows_pb.CancelWorkflowRequest(workflow_id=again.workflow_id, reason="enough"),
        metadata=kit.auth(),
    )
    ended = await calls.until(again.workflow_id, (CANCELLED, FAILED, COMPLETED))
    assert ended.status == CANCELLED
    child = await calls.until(f"{again.workflow_id}/sub", (CANCELLED, FAILED, COMPLETED))
    assert child.status == CANCELLED
