"""WorkflowService over a real channel: start, read, list, drive, watch and retry runs.

Each test starts runs of its own (unique definition names and workflow ids) in org ``acme``
and looks only at those; the inbox test has org ``inbox`` to itself, so its inbox is exact.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, json_format, struct_pb2
from google.rpc import error_details_pb2

from engine.api.v1 import (
    definition_service_pb2 as definitions_pb,
)
from engine.api.v1 import (
    definition_service_pb2_grpc as definitions_grpc,
)
from engine.api.v1 import resources_pb2
from engine.api.v1 import (
    workflow_service_pb2 as workflows_pb,
)
from engine.api.v1 import (
    workflow_service_pb2_grpc as workflows_grpc,
)
from engine.workflow import EngineWorkflow
from tests.server.harness import (
    ControlPlaneKit,
    ask_yaml,
    detail,
    drain,
    error_info,
    eventually,
    quick_yaml,
    refused,
    rich_status,
    unique,
)

RUNNING = resources_pb2.RUN_STATUS_RUNNING
WAITING = resources_pb2.RUN_STATUS_WAITING
COMPLETED = resources_pb2.RUN_STATUS_COMPLETED
FAILED = resources_pb2.RUN_STATUS_FAILED
CANCELLED = resources_pb2.RUN_STATUS_CANCELLED

needs_await_suspension = pytest.mark.skipif(
    not hasattr(EngineWorkflow, "await_suspension"),
    reason="StartWorkflow(wait_for_suspension) needs the interpreter's `await_suspension` "
    "update handler, which is being added to engine/workflow/_interpreter.py",
)


def _two_prompts(name: str) -> str:
    """A confirm, then a text prompt; the result is both answers."""
    return f"""\
name: {name}
version: 1
steps:
  - {{id: approve, type: prompt, prompt_type: confirm, message: Go on?, output_to: approved}}
  - {{id: label, type: prompt, prompt_type: text, message: Name it, output_to: label}}
  - {{id: done, type: return, value: "${{{{ [state.approved, state.label] }}}}"}}
"""


def _wait_then_prompt(name: str) -> str:
    return f"""\
name: {name}
version: 1
inputs:
  who: {{type: string, required: true}}
steps:
  - {{id: settle, type: wait, duration: 1s, message: settling}}
  - {{id: label, type: prompt, prompt_type: text, message: "Name ${{{{ inputs.who }}}}",
     output_to: label}}
  - {{id: done, type: return, value: "${{{{ state.label }}}}"}}
"""


def _fanout(name: str) -> str:
    return f"""\
name: {name}
version: 1
steps:
  - id: each
    type: foreach
    items: '["x", "y", "z"]'
    as: item
    max_parallel: 3
    steps:
      - {{id: name_item, type: prompt, prompt_type: text, message: "Name ${{{{ item }}}}",
         output_to: name}}
    output_to: names
  - {{id: done, type: return, value: "${{{{ state.names }}}}"}}
"""


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


def _value(value: Any) -> struct_pb2.Value:
    holder = struct_pb2.Value()
    if isinstance(value, bool):
        holder.bool_value = value
    elif isinstance(value, str):
        holder.string_value = value
    elif isinstance(value, int | float):
        holder.number_value = value
    else:
        raise TypeError(value)
    return holder


def _plain(value: struct_pb2.Value) -> Any:
    return json_format.MessageToDict(value)


class Runs:
    """The WorkflowService of org ``org``, with the waits tests need."""

    def __init__(
        self, kit: ControlPlaneKit, stub: workflows_grpc.WorkflowServiceStub, org: str = "acme"
    ) -> None:
        self.kit = kit
        self.stub = stub
        self.org = org

    @property
    def auth(self) -> Any:
        return self.kit.auth(self.org)

    async def start(self, **fields: Any) -> workflows_pb.StartWorkflowResponse:
        return await self.stub.StartWorkflow(
            workflows_pb.StartWorkflowRequest(**fields), metadata=self.auth
        )

    async def get(self, workflow_id: str, run_id: str = "") -> resources_pb2.Workflow:
        answer = await self.stub.GetWorkflow(
            workflows_pb.GetWorkflowRequest(workflow_id=workflow_id, run_id=run_id),
            metadata=self.auth,
        )
        return answer.workflow

    async def until(
        self,
        workflow_id: str,
        predicate: Callable[[resources_pb2.Workflow], bool],
        what: str,
        timeout: float = 20.0,
    ) -> resources_pb2.Workflow:
        return await eventually(
            lambda: self.get(workflow_id),
            predicate,
            what=f"{what} ({workflow_id})",
            timeout=timeout,
        )

    async def waiting_on(self, workflow_id: str, step_id: str) -> resources_pb2.PendingAction:
        status = await self.until(
            workflow_id,
            lambda w: w.status == WAITING and any(a.step_id == step_id for a in w.pending_actions),
            f"waiting on {step_id}",
        )
        return next(a for a in status.pending_actions if a.step_id == step_id)

    async def submit(self, workflow_id: str, **fields: Any) -> workflows_pb.SubmitResultResponse:
        return await self.stub.SubmitResult(
            workflows_pb.SubmitResultRequest(workflow_id=workflow_id, **fields),
            metadata=self.auth,
        )

    async def cancel(self, workflow_id: str, reason: str = "") -> None:
        await self.stub.CancelWorkflow(
            workflows_pb.CancelWorkflowRequest(workflow_id=workflow_id, reason=reason),
            metadata=self.auth,
        )

    async def listed(self, **fields: Any) -> workflows_pb.ListWorkflowsResponse:
        return await self.stub.ListWorkflows(
            workflows_pb.ListWorkflowsRequest(**fields), metadata=self.auth
        )


@pytest.fixture
def runs(kit: ControlPlaneKit, workflows: workflows_grpc.WorkflowServiceStub) -> Runs:
    return Runs(kit, workflows)


async def _register(kit: ControlPlaneKit, text: str) -> resources_pb2.Definition:
    stub = definitions_grpc.DefinitionServiceStub(kit.channel())
    answer = await stub.RegisterDefinition(
        definitions_pb.RegisterDefinitionRequest(yaml=text), metadata=kit.auth()
    )
    return answer.definition


# -- start ----------------------------------------------------------------------------------


async def test_start_by_name_runs_the_latest_version_or_the_one_asked_for(
    kit: ControlPlaneKit, runs: Runs
) -> None:
    name = unique("start")
    v1 = await _register(kit, ask_yaml(name, 1))
    v2 = await _register(kit, ask_yaml(name, 2))

    latest = await runs.start(definition_name=name, inputs=_struct({"who": "ada"}))
    pinned = await runs.start(definition_name=name, definition_version=1)

    assert latest.workflow_type == f"{name}:2"
    assert pinned.workflow_type == f"{name}:1"
    assert latest.workflow_id.startswith(f"{name}-") and latest.run_id
    # Without wait_for_suspension the answer comes at once, before the run has done anything.
    assert latest.status == resources_pb2.RUN_STATUS_UNSPECIFIED
    assert list(latest.pending_actions) == []

    for started, registered in ((latest, v2), (pinned, v1)):
        await runs.waiting_on(started.workflow_id, "ask")
        status = await runs.get(started.workflow_id)
        assert (status.definition_name, status.definition_version) == (
            name,
            registered.version,
        )
        assert status.definition_hash == registered.content_hash
        assert status.run_id == started.run_id
        await runs.cancel(started.workflow_id)
    ask = (await runs.get(latest.workflow_id)).history[0]
    assert ask.step_id == "ask"


async def test_start_inline_yaml_runs_a_definition_that_is_not_registered(
    kit: ControlPlaneKit, runs: Runs
) -> None:
    name = unique("inline")
    started = await runs.start(definition_yaml=quick_yaml(name), inputs=_struct({"n": 21}))

    assert started.workflow_type == f"{name}:1"
    done = await runs.until(started.workflow_id, lambda w: w.status == COMPLETED, "completed")
    assert _plain(done.result) == 42  # a JSON number 21 satisfied `type: integer`
    assert done.state["twice"] == 42
    assert [(h.step_id, h.outcome) for h in done.history] == [
        ("double", resources_pb2.STEP_OUTCOME_COMPLETED),
        ("done", resources_pb2.STEP_OUTCOME_COMPLETED),
    ]

    stub = definitions_grpc.DefinitionServiceStub(kit.channel())
    error, _ = await refused(
        stub.GetDefinition(definitions_pb.GetDefinitionRequest(name=name), metadata=kit.auth())
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND  # validated, never registered


async def test_start_with_a_workflow_id_and_an_idempotent_request_id(runs: Runs) -> None:
    name = unique("ids")
    workflow_id = unique("chosen")
    first = await runs.start(definition_yaml=ask_yaml(name), workflow_id=workflow_id)
    assert first.workflow_id == workflow_id

    error, status = await refused(
        runs.start(definition_yaml=ask_yaml(name), workflow_id=workflow_id)
    )
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error.details() == (
        f"run '{workflow_id}' is already running in org 'acme' "
        f"(namespace '{runs.kit.namespace('acme')}')"
    )
    assert error_info(status).reason == "WORKFLOW_ALREADY_STARTED"

    request_id = unique("request")
    once = await runs.start(definition_yaml=ask_yaml(name), request_id=request_id)
    twice = await runs.start(definition_yaml=ask_yaml(name), request_id=request_id)
    assert (twice.workflow_id, twice.run_id) == (once.workflow_id, once.run_id)

    for run in (workflow_id, once.workflow_id):
        await runs.cancel(run)


async def test_bad_inputs_are_invalid_argument_with_a_violation_each(runs: Runs) -> None:
    name = unique("inputs")
    await _register(runs.kit, ask_yaml(name))

    for definition in ({"definition_name": name}, {"definition_yaml": ask_yaml(name)}):
        error, status = await refused(
            runs.start(**definition, inputs=_struct({"who": 5, "times": 2.5, "whom": "x"}))
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        violations = detail(status, error_details_pb2.BadRequest).field_violations
        assert {v.field for v in violations} == {"inputs"}
        descriptions = sorted(v.description for v in violations)
        assert descriptions == [
            "input 'times' must be of type integer, got 2.5",
            "input 'who' must be of type string, got 5",
            "unknown input 'whom'; did you mean 'who'?",
        ]
        assert sorted(error.details().split("\n")) == descriptions
        assert error_info(status).reason == "INVALID_INPUT"


async def test_start_of_an_unknown_definition_is_not_found(runs: Runs) -> None:
    name = unique("known")
    await _register(runs.kit, ask_yaml(name))
    cases = [
        (
            {"definition_name": "never-registered"},
            "definition 'never-registered' is not registered in org 'acme'",
            "never-registered",
        ),
        (
            {"definition_name": name, "definition_version": 4},
            f"version 4 of definition '{name}' is not registered in org 'acme'",
            f"{name}:4",
        ),
    ]
    for fields, message, resource_name in cases:
        error, status = await refused(runs.start(**fields))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert error.details() == message
        resource = detail(status, error_details_pb2.ResourceInfo)
        assert (resource.resource_type, resource.resource_name) == (
            "engine.api.v1.Definition",
            resource_name,
        )


async def test_start_refuses_invalid_inline_yaml_and_a_missing_definition(runs: Runs) -> None:
    error, status = await refused(
        runs.start(definition_yaml="name: Not_Valid\nversion: 1\nsteps: []\n")
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("<definition_yaml>:1:7: invalid workflow name 'Not_Valid'")
    violations = detail(status, error_details_pb2.BadRequest).field_violations
    assert [(v.field, v.description.split(": ", 1)[0]) for v in violations] == [
        ("name", "1:7"),
        ("steps", "3:8"),
    ]
    assert error_info(status).reason == "INVALID_DEFINITION"

    error, status = await refused(runs.start(inputs=_struct({"who": "x"})))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "definition: give definition_name or definition_yaml"
    violations = detail(status, error_details_pb2.BadRequest).field_violations
    assert [v.field for v in violations] == ["definition"]


@needs_await_suspension
async def test_start_and_wait_answers_with_the_first_pending_action(runs: Runs) -> None:
    name = unique("suspend")
    started = await runs.start(
        definition_yaml=ask_yaml(name), inputs=_struct({"who": "bob"}), wait_for_suspension=True
    )

    assert started.workflow_type == f"{name}:1" and started.run_id
    assert started.status == WAITING
    [action] = started.pending_actions
    assert (action.step_id, action.type) == ("ask", resources_pb2.ACTION_TYPE_PROMPT)
    assert action.parameters["message"] == "Greet bob?"
    assert action.workflow_id == started.workflow_id

    # The action in the answer is the one the run waits on: it takes the result at once.
    advanced = await runs.submit(
        started.workflow_id, action_id=action.action_id, result=_value(True)
    )
    assert advanced.status == COMPLETED
    assert _plain(advanced.result) == "hello bob"


@needs_await_suspension
async def test_start_and_wait_answers_with_the_result_of_an_inline_only_run(runs: Runs) -> None:
    started = await runs.start(
        definition_yaml=quick_yaml(unique("suspend-quick")),
        inputs=_struct({"n": 4}),
        wait_for_suspension=True,
    )
    assert started.status == COMPLETED
    assert _plain(started.result) == 8
    assert list(started.pending_actions) == []
    assert started.error == ""


@needs_await_suspension
async def test_start_and_wait_again_with_its_request_id_answers_where_the_run_is_now(
    runs: Runs,
) -> None:
    text, request_id = ask_yaml(unique("suspend-again")), unique("request")
    first = await runs.start(definition_yaml=text, request_id=request_id, wait_for_suspension=True)
    again = await runs.start(definition_yaml=text, request_id=request_id, wait_for_suspension=True)

    assert (again.workflow_id, again.run_id) == (first.workflow_id, first.run_id)
    assert again.status == WAITING
    assert [a.action_id for a in again.pending_actions] == [
        a.action_id for a in first.pending_actions
    ]

    await runs.submit(first.workflow_id, step_id="ask", result=_value(True))
    late = await runs.start(definition_yaml=text, request_id=request_id, wait_for_suspension=True)
    assert (late.run_id, late.status, _plain(late.result)) == (
        first.run_id,
        COMPLETED,
        "hello world",
    )


@needs_await_suspension
async def test_start_and_wait_refuses_bad_inputs_before_starting_anything(runs: Runs) -> None:
    error, status = await refused(
        runs.start(
            definition_yaml=ask_yaml(unique("suspend-bad")),
            inputs=_struct({"who": False}),
            wait_for_suspension=True,
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "input 'who' must be of type string, got false"
    violations = detail(status, error_details_pb2.BadRequest).field_violations
    assert [v.field for v in violations] == ["inputs"]


# -- get ------------------------------------------------------------------------------------


async def test_get_reports_the_run_its_step_its_action_and_its_history(runs: Runs) -> None:
    name = unique("get")
    before = datetime.now(UTC)
    started = await runs.start(
        definition_yaml=ask_yaml(name, timeout="1h"), inputs=_struct({"who": "eve"})
    )
    await runs.waiting_on(started.workflow_id, "ask")

    status = await runs.get(started.workflow_id)

    assert (status.workflow_id, status.run_id) == (started.workflow_id, started.run_id)
    assert status.workflow_type == f"{name}:1"
    assert (status.definition_name, status.definition_version) == (name, 1)
    assert status.definition_hash.startswith("sha256:")
    assert (status.status, status.current_step, status.org_id) == (WAITING, "ask", "acme")
    assert before - timedelta(seconds=5) <= status.start_time.ToDatetime(tzinfo=UTC)
    [action] = status.pending_actions
    assert (action.type, action.step_id, action.attempt) == (
        resources_pb2.ACTION_TYPE_PROMPT,
        "ask",
        1,
    )
    assert action.parameters["message"] == "Greet eve?"
    assert action.parameters["prompt_type"] == "confirm"
    assert (action.workflow_id, action.run_id) == (started.workflow_id, started.run_id)
    created = action.create_time.ToDatetime(tzinfo=UTC)
    assert action.deadline.ToDatetime(tzinfo=UTC) - created == timedelta(hours=1)
    assert timedelta(minutes=59) < action.timeout.ToTimedelta() <= timedelta(hours=1)
    assert not action.HasField("state")  # the step declared no needs_state
    [entry] = status.history
    assert (entry.step_id, entry.type, entry.outcome) == (
        "ask",
        "prompt",
        resources_pb2.STEP_OUTCOME_UNSPECIFIED,
    )
    assert entry.HasField("start_time") and not entry.HasField("finish_time")
    assert dict(status.state) == {}
    assert status.error == ""
    await runs.cancel(started.workflow_id)


async def test_get_of_an_unknown_or_missing_workflow_id(runs: Runs) -> None:
    error, status = await refused(runs.get("no-such-run"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == (
        f"run 'no-such-run' not found in org 'acme' (namespace '{runs.kit.namespace('acme')}')"
    )
    resource = detail(status, error_details_pb2.ResourceInfo)
    assert (resource.resource_type, resource.resource_name) == (
        "engine.api.v1.Workflow",
        "no-such-run",
    )

    error, status = await refused(runs.get(""))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "workflow_id: is required",
    )
    violations = detail(status, error_details_pb2.BadRequest).field_violations
    assert [(v.field, v.description) for v in violations] == [("workflow_id", "is required")]


# -- list -----------------------------------------------------------------------------------


async def test_list_filters_by_status_and_definition_and_pages(runs: Runs) -> None:
    name = unique("listed")
    ids = {}
    for label in ("done", "cancelled", "waiting"):
        started = await runs.start(definition_yaml=ask_yaml(name), workflow_id=unique(label))
        ids[label] = started.workflow_id
    other = await runs.start(definition_yaml=ask_yaml(unique("unlisted")))
    await runs.waiting_on(ids["done"], "ask")
    await runs.submit(ids["done"], step_id="ask", result=_value(True))
    await runs.waiting_on(ids["cancelled"], "ask")
    await runs.cancel(ids["cancelled"])
    await runs.waiting_on(ids["waiting"], "ask")

    async def listed(**fields: Any) -> dict[str, resources_pb2.WorkflowSummary]:
        answer = await runs.listed(definition_name=name, **fields)
        return {w.workflow_id: w for w in answer.workflows}

    everything = await eventually(
        listed,
        lambda found: {found[i].status for i in found} == {COMPLETED, CANCELLED, WAITING},
        what="three runs of one definition, each in its status",
    )
    assert set(everything) == set(ids.values())  # nothing of another definition
    assert other.workflow_id not in everything
    waiting = everything[ids["waiting"]]
    assert (waiting.workflow_type, waiting.definition_name, waiting.current_step) == (
        f"{name}:1",
        name,
        "ask",
    )
    assert waiting.HasField("start_time") and not waiting.HasField("close_time")
    assert everything[ids["done"]].HasField("close_time")
    assert everything[ids["done"]].current_step == ""

    for status, label in ((WAITING, "waiting"), (COMPLETED, "done"), (CANCELLED, "cancelled")):
        found = await eventually(
            lambda status=status: listed(status=status),
            lambda found, label=label: set(found) == {ids[label]},
            what=f"only the {label} run listed",
        )
        assert found[ids[label]].status == status
    assert await listed(status=FAILED) == {}
    assert await listed(status=RUNNING) == {}

    pages: list[list[str]] = []
    token = ""
    while True:
        page = await runs.listed(definition_name=name, page_size=2, page_token=token)
        pages.append([w.workflow_id for w in page.workflows])
        token = page.next_page_token
        if not token:
            break
    assert [len(p) for p in pages] in ([2, 1], [2, 1, 0])
    assert sorted(i for page in pages for i in page) == sorted(ids.values())

    by_query = await runs.listed(query=f"WorkflowId = '{ids['waiting']}'")
    assert [w.workflow_id for w in by_query.workflows] == [ids["waiting"]]

    await runs.cancel(ids["waiting"])
    await runs.cancel(other.workflow_id)


async def test_list_shows_runs_not_the_registry_of_their_definition(runs: Runs) -> None:
    name = unique("registered")
    await _register(runs.kit, ask_yaml(name))
    started = await runs.start(definition_name=name)
    try:
        found = await eventually(
            lambda: runs.listed(definition_name=name),
            lambda answer: started.workflow_id in {w.workflow_id for w in answer.workflows},
            what="the run listed",
        )
        assert [w.workflow_id for w in found.workflows] == [started.workflow_id]
    finally:
        await runs.cancel(started.workflow_id)


@pytest.mark.parametrize(
    ("fields", "field", "description"),
    [
        ({"page_size": 1001}, "page_size", "must be between 1 and 1000, got 1001"),
        ({"page_size": -3}, "page_size", "must be between 1 and 1000, got -3"),
        # A mangled token must not quietly become the first page again (a client would loop).
        ({"page_token": "***"}, "page_token", "is not a token this server issued"),
        ({"page_token": "ab$c"}, "page_token", "is not a token this server issued"),
        ({"status": 42}, "status", "unknown run status 42"),
    ],
)
async def test_list_refuses_bad_paging_and_an_unknown_status(
    runs: Runs, fields: dict[str, Any], field: str, description: str
) -> None:
    error, status = await refused(runs.listed(**fields))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == f"{field}: {description}"
    violations = detail(status, error_details_pb2.BadRequest).field_violations
    assert [(v.field, v.description) for v in violations] == [(field, description)]
    assert error_info(status).reason == "INVALID_FIELD"


# -- submit ---------------------------------------------------------------------------------


async def test_submit_result_answers_with_the_next_action_then_the_result(runs: Runs) -> None:
    started = await runs.start(definition_yaml=_two_prompts(unique("submit")))
    approve = await runs.waiting_on(started.workflow_id, "approve")

    advanced = await runs.submit(
        started.workflow_id, action_id=approve.action_id, result=_value(True)
    )

    assert (advanced.status, advanced.current_step) == (WAITING, "label")
    [label] = advanced.pending_actions
    assert (label.step_id, label.type) == ("label", resources_pb2.ACTION_TYPE_PROMPT)
    assert label.action_id != approve.action_id
    assert label.parameters["prompt_type"] == "text"

    finished = await runs.submit(started.workflow_id, step_id="label", result=_value("rex"))

    assert finished.status == COMPLETED
    assert _plain(finished.result) == [True, "rex"]
    assert list(finished.pending_actions) == [] and finished.error == ""
    status = await runs.get(started.workflow_id)
    assert status.status == COMPLETED
    assert _plain(status.result) == [True, "rex"]


async def test_submit_result_rejects_what_does_not_fit_without_moving_the_run(
    runs: Runs,
) -> None:
    started = await runs.start(definition_yaml=_two_prompts(unique("reject")))
    approve = await runs.waiting_on(started.workflow_id, "approve")
    cases = [
        (
            {"action_id": approve.action_id, "result": _value("yes")},
            "a confirm prompt takes true or false, got 'yes'",
        ),
        (
            {"step_id": "label", "result": _value("early")},
            "step 'label' is not waiting for a result",
        ),
        (
            {"action_id": "no-such-action", "result": _value(True)},
            "no pending action 'no-such-action' in this run",
        ),
    ]
    for fields, message in cases:
        error, status = await refused(runs.submit(started.workflow_id, **fields))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == message
        assert error_info(status).reason == "RESULT_REJECTED"

    error, status = await refused(runs.submit(started.workflow_id, result=_value(True)))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "target: give action_id or step_id",
    )
    assert [v.field for v in detail(status, error_details_pb2.BadRequest).field_violations] == [
        "target"
    ]

    status_now = await runs.get(started.workflow_id)
    assert [a.action_id for a in status_now.pending_actions] == [approve.action_id]
    await runs.submit(started.workflow_id, action_id=approve.action_id, result=_value(False))
    error, _ = await refused(
        runs.submit(started.workflow_id, action_id=approve.action_id, result=_value(True))
    )
    assert error.details() == "a result for step 'approve' was already submitted"
    await runs.cancel(started.workflow_id)


async def test_submit_result_to_a_finished_run_is_failed_precondition(runs: Runs) -> None:
    started = await runs.start(definition_yaml=ask_yaml(unique("finished")))
    await runs.waiting_on(started.workflow_id, "ask")
    done = await runs.submit(started.workflow_id, step_id="ask", result=_value(False))
    assert (done.status, _plain(done.result)) == (COMPLETED, "no")

    error, status = await refused(
        runs.submit(started.workflow_id, step_id="ask", result=_value(True))
    )

    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details() == (
        f"run '{started.workflow_id}' in org 'acme' "
        f"(namespace '{runs.kit.namespace('acme')}') has already ended"
    )
    assert error_info(status).reason == "WORKFLOW_ALREADY_FINISHED"


async def test_an_error_submission_fails_the_step_and_the_run(runs: Runs) -> None:
    started = await runs.start(definition_yaml=_two_prompts(unique("erred")))
    await runs.waiting_on(started.workflow_id, "approve")

    failed = await runs.submit(started.workflow_id, step_id="approve", error="no approver")

    assert failed.status == FAILED
    assert failed.error == "step 'approve' failed: no approver"
    status = await runs.get(started.workflow_id)
    assert status.status == FAILED
    assert [(h.step_id, h.outcome, h.error) for h in status.history] == [
        ("approve", resources_pb2.STEP_OUTCOME_FAILED, "no approver")
    ]


# -- cancel and timeouts --------------------------------------------------------------------


async def test_cancel_ends_the_run_once(runs: Runs) -> None:
    started = await runs.start(definition_yaml=ask_yaml(unique("cancel")))
    await runs.waiting_on(started.workflow_id, "ask")

    await runs.cancel(started.workflow_id, reason="changed my mind")

    status = await runs.until(started.workflow_id, lambda w: w.status == CANCELLED, "cancelled")
    assert list(status.pending_actions) == []
    assert status.error.startswith("cancelled")
    assert [(h.step_id, h.outcome) for h in status.history] == [
        ("ask", resources_pb2.STEP_OUTCOME_CANCELLED)
    ]

    error, info = await refused(runs.cancel(started.workflow_id))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error.details().endswith("has already ended")
    assert error_info(info).reason == "WORKFLOW_ALREADY_FINISHED"

    error, _ = await refused(runs.cancel("no-such-run"))
    assert error.code() == grpc.StatusCode.NOT_FOUND
    error, _ = await refused(runs.cancel(""))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "workflow_id: is required",
    )


async def test_update_timeout_moves_the_deadline_of_a_waiting_step(runs: Runs) -> None:
    started = await runs.start(definition_yaml=ask_yaml(unique("timeout"), timeout="1h"))
    action = await runs.waiting_on(started.workflow_id, "ask")
    first_deadline = action.deadline.ToDatetime(tzinfo=UTC)

    await runs.stub.UpdateTimeout(
        workflows_pb.UpdateTimeoutRequest(
            workflow_id=started.workflow_id,
            step_id="ask",
            timeout=duration_pb2.Duration(seconds=2 * 3600),
        ),
        metadata=runs.auth,
    )

    moved = await runs.until(
        started.workflow_id,
        lambda w: w.pending_actions[0].deadline.ToDatetime(tzinfo=UTC) > first_deadline,
        "the deadline moved",
    )
    deadline = moved.pending_actions[0].deadline.ToDatetime(tzinfo=UTC)
    assert abs(deadline - (datetime.now(UTC) + timedelta(hours=2))) < timedelta(seconds=30)

    # Now: the step times out at once and the run fails, saying so.
    await runs.stub.UpdateTimeout(
        workflows_pb.UpdateTimeoutRequest(
            workflow_id=started.workflow_id, step_id="ask", timeout=duration_pb2.Duration()
        ),
        metadata=runs.auth,
    )
    failed = await runs.until(started.workflow_id, lambda w: w.status == FAILED, "timed out")
    assert "timed out at" in failed.error and "deadline set by update_timeout" in failed.error


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"step_id": "ask"}, "timeout: is required"),
        ({"timeout": duration_pb2.Duration(seconds=5)}, "step_id: is required"),
        (
            {"step_id": "ask", "timeout": duration_pb2.Duration(seconds=-5)},
            "timeout: must not be negative, got -5s",
        ),
        (  # out of the Duration range: refused, not an overflow inside the server
            {"step_id": "ask", "timeout": duration_pb2.Duration(seconds=9 * 10**18)},
            "timeout: is not a valid duration (at most 10,000 years)",
        ),
        (
            {"step_id": "ask", "timeout": duration_pb2.Duration(seconds=1, nanos=-5)},
            "timeout: is not a valid duration (at most 10,000 years)",
        ),
    ],
)
async def test_update_timeout_refuses_a_missing_or_negative_timeout(
    runs: Runs, fields: dict[str, Any], message: str
) -> None:
    error, _ = await refused(
        runs.stub.UpdateTimeout(
            workflows_pb.UpdateTimeoutRequest(workflow_id="any-run", **fields),
            metadata=runs.auth,
        )
    )
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, message)


# -- the inbox ------------------------------------------------------------------------------


async def test_list_pending_actions_is_the_orgs_inbox_across_runs_and_foreach_children(
    kit: ControlPlaneKit, workflows: workflows_grpc.WorkflowServiceStub
) -> None:
    inbox = Runs(kit, workflows, org="inbox")
    single = await inbox.start(definition_yaml=ask_yaml(unique("inbox-ask")))
    await inbox.waiting_on(single.workflow_id, "ask")
    fanout = await inbox.start(definition_yaml=_fanout(unique("inbox-fanout")))
    await inbox.until(fanout.workflow_id, lambda w: len(w.pending_actions) == 3, "3 children")

    async def actions(**fields: Any) -> workflows_pb.ListPendingActionsResponse:
        return await workflows.ListPendingActions(
            workflows_pb.ListPendingActionsRequest(**fields), metadata=inbox.auth
        )

    listed = await eventually(
        actions, lambda a: len(a.pending_actions) == 4, what="four actions in the inbox"
    )
    pending = list(listed.pending_actions)
    assert listed.next_page_token == ""
    created = [a.create_time.ToDatetime() for a in pending]
    assert created == sorted(created)  # oldest first
    assert pending[0].workflow_id == single.workflow_id
    children = pending[1:]
    assert sorted(a.parameters["message"] for a in children) == ["Name x", "Name y", "Name z"]
    # Each child's action names the child run it waits in (that is where results go).
    assert all(a.workflow_id.startswith(f"{fanout.workflow_id}/each/") for a in children)
    assert len({a.workflow_id for a in children}) == 3

    # A page holds the actions of page_size runs, oldest first; pages go through each once.
    first = await actions(page_size=3)
    rest = await actions(page_size=3, page_token=first.next_page_token)
    paged = [a.action_id for a in [*first.pending_actions, *rest.pending_actions]]
    assert sorted(paged) == sorted(a.action_id for a in pending)
    assert (len(first.pending_actions), len(rest.pending_actions)) == (3, 1)
    for page in (first, rest):
        times = [a.create_time.ToDatetime() for a in page.pending_actions]
        assert times == sorted(times)
    assert rest.next_page_token == ""
    # Filters: by step and by run (its foreach items included).
    by_step = await actions(step_id="name_item")
    assert {a.step_id for a in by_step.pending_actions} == {"name_item"}
    by_run = await actions(workflow_id=fanout.workflow_id)
    assert {a.workflow_id for a in by_run.pending_actions} == {a.workflow_id for a in children}

    x = next(a for a in children if a.parameters["message"] == "Name x")
    answered = await inbox.submit(x.workflow_id, action_id=x.action_id, result=_value("ex"))
    assert answered.status == COMPLETED  # the child run finished
    await eventually(
        actions,
        lambda a: (
            {p.action_id for p in a.pending_actions}
            == {p.action_id for p in pending} - {x.action_id}
        ),
        what="the answered action gone from the inbox",
    )

    # Cancelling the parent cancels its children: the inbox empties.
    await inbox.cancel(fanout.workflow_id)
    await inbox.cancel(single.workflow_id)
    await eventually(actions, lambda a: len(a.pending_actions) == 0, what="an empty inbox")

    error, _ = await refused(actions(page_size=5000))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


# -- watch ----------------------------------------------------------------------------------


async def test_watch_streams_each_status_until_the_run_ends(runs: Runs) -> None:
    started = await runs.start(
        definition_yaml=_two_prompts(unique("watch")), workflow_id=unique("watched")
    )
    seen: list[resources_pb2.Workflow] = []
    stream = runs.stub.WatchWorkflow(
        workflows_pb.WatchWorkflowRequest(workflow_id=started.workflow_id), metadata=runs.auth
    )

    async def follow() -> None:
        async for message in stream:
            seen.append(message.workflow)
            if message.workflow.status == WAITING:
                [action] = message.workflow.pending_actions
                answer = True if action.step_id == "approve" else "done"
                await runs.submit(
                    started.workflow_id, action_id=action.action_id, result=_value(answer)
                )

    await asyncio.wait_for(follow(), timeout=30)

    assert stream.code is not None
    assert await stream.code() == grpc.StatusCode.OK
    waits = [(w.current_step, w.pending_actions[0].step_id) for w in seen if w.status == WAITING]
    assert waits == [("approve", "approve"), ("label", "label")]
    assert seen[-1].status == COMPLETED
    assert _plain(seen[-1].result) == [True, "done"]
    assert all(w.workflow_id == started.workflow_id for w in seen)
    # Each message is a change: no two in a row are the same, and their versions grow.
    assert all(a != b for a, b in itertools.pairwise(seen))
    assert all(a.status_version < b.status_version for a, b in itertools.pairwise(seen))


async def test_watch_of_an_ended_run_sends_its_final_status_once(runs: Runs) -> None:
    started = await runs.start(definition_yaml=quick_yaml(unique("watch-ended")))
    await runs.until(started.workflow_id, lambda w: w.status == COMPLETED, "completed")

    messages = [
        m.workflow
        async for m in runs.stub.WatchWorkflow(
            workflows_pb.WatchWorkflowRequest(workflow_id=started.workflow_id),
            metadata=runs.auth,
        )
    ]
    assert [(m.status, _plain(m.result)) for m in messages] == [(COMPLETED, 2)]


async def test_watch_of_an_unknown_or_missing_run_fails_the_stream(runs: Runs) -> None:
    for workflow_id, code in (
        ("no-such-run", grpc.StatusCode.NOT_FOUND),
        ("", grpc.StatusCode.INVALID_ARGUMENT),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await drain(
                runs.stub.WatchWorkflow(
                    workflows_pb.WatchWorkflowRequest(workflow_id=workflow_id),
                    metadata=runs.auth,
                )
            )
        assert caught.value.code() == code
        assert rich_status(caught.value).message == caught.value.details()


# -- retry ----------------------------------------------------------------------------------


async def _failed_run(runs: Runs, text: str, step_id: str, **fields: Any) -> str:
    started = await runs.start(definition_yaml=text, **fields)
    await runs.waiting_on(started.workflow_id, step_id)
    failed = await runs.submit(started.workflow_id, step_id=step_id, error="flaky executor")
    assert failed.status == FAILED
    return started.workflow_id


async def _retry(runs: Runs, workflow_id: str, mode: Any, run_id: str = "") -> Any:
    return await runs.stub.RetryWorkflow(
        workflows_pb.RetryWorkflowRequest(workflow_id=workflow_id, run_id=run_id, mode=mode),
        metadata=runs.auth,
    )


async def test_retry_from_the_failed_step_waits_on_that_step_again(runs: Runs) -> None:
    workflow_id = await _failed_run(
        runs,
        _wait_then_prompt(unique("retry-step")),
        "label",
        inputs=_struct({"who": "max"}),
    )
    failed_run = (await runs.get(workflow_id)).run_id

    retried = await _retry(runs, workflow_id, workflows_pb.RETRY_MODE_FROM_FAILED_STEP)

    assert retried.workflow_id == workflow_id
    assert retried.run_id and retried.run_id != failed_run
    action = await runs.waiting_on(workflow_id, "label")
    assert action.parameters["message"] == "Name max"
    assert action.run_id == retried.run_id
    done = await runs.submit(workflow_id, action_id=action.action_id, result=_value("maxi"))
    assert (done.status, _plain(done.result)) == (COMPLETED, "maxi")


async def test_retry_from_the_failed_step_keeps_the_results_of_earlier_steps(
    runs: Runs,
) -> None:
    started = await runs.start(definition_yaml=_two_prompts(unique("retry-keep")))
    workflow_id = started.workflow_id
    await runs.waiting_on(workflow_id, "approve")
    await runs.submit(workflow_id, step_id="approve", result=_value(True))
    failed = await runs.submit(workflow_id, step_id="label", error="flaky executor")
    assert failed.status == FAILED

    await _retry(runs, workflow_id, workflows_pb.RETRY_MODE_FROM_FAILED_STEP)

    status = await runs.until(workflow_id, lambda w: w.status == WAITING, "waiting again")
    assert status.current_step == "label"
    assert status.state["approved"] is True
    done = await runs.submit(workflow_id, step_id="label", result=_value("again"))
    assert _plain(done.result) == [True, "again"]


async def test_retry_from_start_runs_the_same_definition_and_inputs_again(runs: Runs) -> None:
    name = unique("retry-start")
    workflow_id = await _failed_run(
        runs, ask_yaml(name), "ask", inputs=_struct({"who": "kim", "times": 3})
    )
    failed = await runs.get(workflow_id)

    retried = await _retry(runs, workflow_id, workflows_pb.RETRY_MODE_FROM_START)

    assert retried.workflow_id == workflow_id and retried.run_id != failed.run_id
    action = await runs.waiting_on(workflow_id, "ask")
    assert action.parameters["message"] == "Greet kim?"  # the same inputs
    fresh = await runs.get(workflow_id)
    assert fresh.run_id == retried.run_id
    assert fresh.definition_hash == failed.definition_hash
    assert [h.step_id for h in fresh.history] == ["ask"]
    # The failed run is still there, by its run id.
    old = await runs.get(workflow_id, run_id=failed.run_id)
    assert (old.status, old.error) == (FAILED, "step 'ask' failed: flaky executor")
    done = await runs.submit(workflow_id, step_id="ask", result=_value(True))
    assert _plain(done.result) == "hello kim"


async def test_a_cancelled_run_can_be_retried_from_the_start(runs: Runs) -> None:
    started = await runs.start(definition_yaml=ask_yaml(unique("retry-cancelled")))
    await runs.waiting_on(started.workflow_id, "ask")
    await runs.cancel(started.workflow_id)
    await runs.until(started.workflow_id, lambda w: w.status == CANCELLED, "cancelled")

    retried = await _retry(runs, started.workflow_id, workflows_pb.RETRY_MODE_FROM_START)

    await runs.waiting_on(started.workflow_id, "ask")
    assert (await runs.get(started.workflow_id)).run_id == retried.run_id
    await runs.cancel(started.workflow_id)


async def test_retry_refuses_a_run_that_did_not_fail(runs: Runs) -> None:
    running = await runs.start(definition_yaml=ask_yaml(unique("retry-running")))
    await runs.waiting_on(running.workflow_id, "ask")
    completed = await runs.start(definition_yaml=quick_yaml(unique("retry-completed")))
    await runs.until(completed.workflow_id, lambda w: w.status == COMPLETED, "completed")

    for workflow_id, state in (
        (running.workflow_id, "running"),
        (completed.workflow_id, "completed"),
    ):
        for mode in (workflows_pb.RETRY_MODE_FROM_FAILED_STEP, workflows_pb.RETRY_MODE_FROM_START):
            error, status = await refused(_retry(runs, workflow_id, mode))
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert error.details() == (
                f"run '{workflow_id}' in org 'acme' is {state}: only a failed, cancelled, "
                "terminated or timed-out run can be retried"
            )
            assert error_info(status).reason == "INVALID_REQUEST"
    # Refused, and untouched: the running run still waits on its step.
    assert (await runs.get(running.workflow_id)).run_id == running.run_id
    await runs.cancel(running.workflow_id)

    error, _ = await refused(_retry(runs, "no-such-run", workflows_pb.RETRY_MODE_FROM_START))
    assert error.code() == grpc.StatusCode.NOT_FOUND
