"""DefinitionService: validate (every problem, located), register (immutable versions), read.

Definitions live in Temporal, not in the server: a new server process (new registry,
dispatcher and client pool) finds what an earlier one registered, and two servers at once
see each other's registrations.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from temporalio.client import WorkflowExecutionStatus

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
from engine.tenancy import Endpoint, PrefixResolver
from tests.server.harness import (
    ControlPlaneKit,
    ask_yaml,
    detail,
    error_info,
    eventually,
    open_stack,
    refused,
    unique,
)

# Two problems at known places: a bad workflow name (line 1) and an unknown step type (line 8).
INVALID = """\
name: Not_Valid
version: 1
steps:
  - id: ok
    type: set_state
    set: {x: 1}
  - id: broken
    type: teleport
"""
NAME_PROBLEM = (
    "invalid workflow name 'Not_Valid': use lowercase letters, digits and '-', starting with "
    "a letter or digit (at most 63 characters)"
)
TYPE_PROBLEM = (
    "unknown step type 'teleport'; expected one of condition, set_state, foreach, return, "
    "shell, mcp_call, prompt, wait, delegate, loop, break, parallel, try, wait_for, call"
)

# Valid, but the loader warns: a step that never runs (line 10, column 11).
WITH_WARNING = """\
name: {name}
version: 1
inputs:
  branch: {{type: string, required: true}}
steps:
  - id: checkout
    type: shell
    command: git checkout "$BRANCH"
    env: {{BRANCH: "${{{{ inputs.branch }}}}"}}
    when: false
"""
WARNING = "step 'checkout' never runs: its 'when' is always false"
HASH = re.compile(r"^sha256:[0-9a-f]{64}$")


def _problems(response: definitions_pb.ValidateDefinitionResponse) -> list[tuple[Any, ...]]:
    return [(p.line, p.column, p.path, p.message, p.warning) for p in response.problems]


# -- validate -------------------------------------------------------------------------------


async def test_validate_a_valid_definition_returns_its_name_version_and_hash(
    kit: ControlPlaneKit, definitions: definitions_grpc.DefinitionServiceStub
) -> None:
    answer = await definitions.ValidateDefinition(
        definitions_pb.ValidateDefinitionRequest(yaml=ask_yaml("greeter", 3)),
        metadata=kit.auth(),
    )
    assert answer.valid is True
    assert (answer.name, answer.version) == ("greeter", 3)
    assert HASH.match(answer.content_hash)
    assert list(answer.problems) == []


async def test_validate_returns_every_problem_with_its_line_and_column(
    kit: ControlPlaneKit, definitions: definitions_grpc.DefinitionServiceStub
) -> None:
    answer = await definitions.ValidateDefinition(
        definitions_pb.ValidateDefinitionRequest(yaml=INVALID, source="broken.yaml"),
        metadata=kit.auth(),
    )
    assert answer.valid is False
    assert _problems(answer) == [
        (1, 7, "name", NAME_PROBLEM, False),
        (8, 11, "steps[1]", TYPE_PROBLEM, False),
    ]
    assert (answer.name, answer.version, answer.content_hash) == ("", 0, "")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param(
            "name: x\nsteps: [\n",
            (
                3,
                1,
                "",
                "YAML syntax error: did not find expected node content "
                "(while parsing a flow node at line 3)",
                False,
            ),
            id="yaml-syntax",
        ),
        pytest.param("", (1, 1, "", "the definition is empty", False), id="empty"),
        pytest.param(
            "- a\n- b\n",
            (
                1,
                1,
                "",
                "expected a mapping with name, version and steps at the top level, got a list",
                False,
            ),
            id="not-a-mapping",
        ),
    ],
)
async def test_validate_reports_text_that_is_not_a_definition_as_invalid(
    kit: ControlPlaneKit,
    definitions: definitions_grpc.DefinitionServiceStub,
    text: str,
    problem: tuple[Any, ...],
) -> None:
    answer = await definitions.ValidateDefinition(
        definitions_pb.ValidateDefinitionRequest(yaml=text), metadata=kit.auth()
    )
    assert answer.valid is False
    assert _problems(answer) == [problem]


async def test_validate_returns_warnings_of_a_valid_definition(
    kit: ControlPlaneKit, definitions: definitions_grpc.DefinitionServiceStub
) -> None:
    answer = await definitions.ValidateDefinition(
        definitions_pb.ValidateDefinitionRequest(yaml=WITH_WARNING.format(name="warned")),
        metadata=kit.auth(),
    )
    assert answer.valid is True
    assert _problems(answer) == [(10, 11, "steps[0].when", WARNING, True)]


# -- register -------------------------------------------------------------------------------


async def test_register_creates_once_and_the_same_content_again_is_a_no_op(
    kit: ControlPlaneKit, definitions: definitions_grpc.DefinitionServiceStub
) -> None:
    name = unique("reg")
    text = ask_yaml(name)
    validated = await definitions.ValidateDefinition(
        definitions_pb.ValidateDefinitionRequest(yaml=text), metadata=kit.auth()
    )
    before = datetime.now(UTC)

    first = await definitions.RegisterDefinition(
        definitions_pb.RegisterDefinitionRequest(yaml=text), metadata=kit.auth()
    )

    assert first.created is True
    registered = first.definition
    assert (registered.name, registered.version) == (name, 1)
    assert registered.workflow_type == f"{name}:1"
    assert registered.description == "Ask before greeting (v1)"
    assert registered.content_hash == validated.content_hash
    assert registered.yaml == text
    created_at = registered.create_time.ToDatetime(tzinfo=UTC)
    assert before - timedelta(seconds=5) <= created_at <= datetime.now(UTC) + timedelta(seconds=5)
    assert list(first.warnings) == []

    again = await definitions.RegisterDefinition(
        definitions_pb.RegisterDefinitionRequest(yaml=text), metadata=kit.auth()
    )
    assert again.created is False
    assert again.definition == registered  # the first registration, create time included


async def test_other_content_under_a_registered_version_names_both_hashes(
    kit: ControlPlaneKit, definitions: definitions_grpc.DefinitionServiceStub
) -> None:
    name = unique("conflict")
    first = await definitions.RegisterDefinition(
        definitions_pb.RegisterDefinitionRequest(yaml=ask_yaml(name)), metadata=kit.auth()
    )
    other = ask_yaml(name, timeout="1h")  # same name and version, other content
    other_hash = (
        await definitions.ValidateDefinition(
            definitions_pb.ValidateDefinitionRequest(yaml=other), metadata=kit.auth()
        )
    ).content_hash
    assert other_hash != first.definition.content_hash

    error, status = await refused(
        definitions.RegisterDefinition(
            definitions_pb.RegisterDefinitionRequest(yaml=other), metadata=kit.auth()
        )
    )

    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error.details() == (
        f"version 1 of definition '{name}' is already registered with hash "
        f"{first.definition.content_hash}; this content has hash {other_hash}: "
        "register it under a new version"
    )
    assert error_info(status).reason == "DEFINITION_VERSION_CONFLICT"
    # Nothing changed: the registered version is still the first content.
    kept = await definitions.GetDefinition(
        definitions_pb.GetDefinitionRequest(name=name, version=1), metadata=kit.auth()
    )
    assert kept.definition.content_hash == first.definition.content_hash


async def test_register_refuses_an_invalid_definition_with_located_field_violations(
    kit: ControlPlaneKit, definitions: definitions_grpc.DefinitionServiceStub
) -> None:
    error, status = await refused(
        definitions.RegisterDefinition(
            definitions_pb.RegisterDefinitionRequest(yaml=INVALID), metadata=kit.auth()
        )
    )

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == f"<request>:1:7: {NAME_PROBLEM}\n<request>:8:11: {TYPE_PROBLEM}"
    violations = detail(status, error_details_pb2.BadRequest).field_violations
    assert [(v.field, v.description) for v in violations] == [
        ("name", f"1:7: {NAME_PROBLEM}"),
        ("steps[1]", f"8:11: {TYPE_PROBLEM}"),
    ]
    assert error_info(status).reason == "INVALID_DEFINITION"


async def test_register_refuses_broken_yaml_and_an_empty_request(
    kit: ControlPlaneKit, definitions: definitions_grpc.DefinitionServiceStub
) -> None:
    error, status = await refused(
        definitions.RegisterDefinition(
            definitions_pb.RegisterDefinitionRequest(yaml="name: x\nsteps: [\n"),
            metadata=kit.auth(),
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = detail(status, error_details_pb2.BadRequest).field_violations
    assert [(v.field, v.description.split(": ", 1)[0]) for v in violations] == [("yaml", "3:1")]

    error, status = await refused(
        definitions.RegisterDefinition(
            definitions_pb.RegisterDefinitionRequest(), metadata=kit.auth()
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "yaml: is required"
    violations = detail(status, error_details_pb2.BadRequest).field_violations
    assert [(v.field, v.description) for v in violations] == [("yaml", "is required")]


async def test_register_returns_the_warnings(
    kit: ControlPlaneKit, definitions: definitions_grpc.DefinitionServiceStub
) -> None:
    answer = await definitions.RegisterDefinition(
        definitions_pb.RegisterDefinitionRequest(yaml=WITH_WARNING.format(name=unique("warn"))),
        metadata=kit.auth(),
    )
    assert answer.created is True
    assert [(w.line, w.column, w.message, w.warning) for w in answer.warnings] == [
        (10, 11, WARNING, True)
    ]


# -- get and list ---------------------------------------------------------------------------


async def _register(
    definitions: definitions_grpc.DefinitionServiceStub, kit: ControlPlaneKit, text: str
) -> resources_pb2.Definition:
    answer = await definitions.RegisterDefinition(
        definitions_pb.RegisterDefinitionRequest(yaml=text), metadata=kit.auth()
    )
    return answer.definition


async def test_get_returns_the_latest_or_the_version_asked_for(
    kit: ControlPlaneKit, definitions: definitions_grpc.DefinitionServiceStub
) -> None:
    name = unique("get")
    v1 = await _register(definitions, kit, ask_yaml(name, 1))
    v2 = await _register(definitions, kit, ask_yaml(name, 2))

    latest = await definitions.GetDefinition(
        definitions_pb.GetDefinitionRequest(name=name), metadata=kit.auth()
    )
    assert latest.definition == v2
    assert latest.definition.yaml == ask_yaml(name, 2)

    first = await definitions.GetDefinition(
        definitions_pb.GetDefinitionRequest(name=name, version=1), metadata=kit.auth()
    )
    assert first.definition == v1
    assert first.definition.workflow_type == f"{name}:1"


async def test_get_of_an_unknown_definition_or_version_is_not_found_with_its_resource(
    kit: ControlPlaneKit, definitions: definitions_grpc.DefinitionServiceStub
) -> None:
    name = unique("get")
    await _register(definitions, kit, ask_yaml(name))
    cases = [
        (
            definitions_pb.GetDefinitionRequest(name="never-registered"),
            "definition 'never-registered' is not registered in org 'acme'",
            "never-registered",
        ),
        (
            definitions_pb.GetDefinitionRequest(name=name, version=7),
            f"version 7 of definition '{name}' is not registered in org 'acme'",
            f"{name}:7",
        ),
    ]
    for request, message, resource_name in cases:
        error, status = await refused(definitions.GetDefinition(request, metadata=kit.auth()))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert error.details() == message
        resource = detail(status, error_details_pb2.ResourceInfo)
        assert (resource.resource_type, resource.resource_name, resource.description) == (
            "engine.api.v1.Definition",
            resource_name,
            message,
        )
        assert error_info(status).reason == "DEFINITION_NOT_FOUND"


async def test_get_refuses_a_missing_or_malformed_name(
    kit: ControlPlaneKit, definitions: definitions_grpc.DefinitionServiceStub
) -> None:
    error, status = await refused(
        definitions.GetDefinition(definitions_pb.GetDefinitionRequest(), metadata=kit.auth())
    )
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "name: is required",
    )

    error, status = await refused(
        definitions.GetDefinition(
            definitions_pb.GetDefinitionRequest(name="Not A Name"), metadata=kit.auth()
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (
        "invalid definition name 'Not A Name': use lowercase letters, digits and '-', "
        "starting with a letter or digit (at most 63 characters)"
    )
    assert error_info(status).reason == "INVALID_REQUEST"


async def test_list_returns_the_latest_of_each_name_and_every_version_of_one(
    kit: ControlPlaneKit, definitions: definitions_grpc.DefinitionServiceStub
) -> None:
    alpha, beta = unique("list-a"), unique("list-b")
    await _register(definitions, kit, ask_yaml(alpha, 1))
    a2 = await _register(definitions, kit, ask_yaml(alpha, 2))
    b1 = await _register(definitions, kit, ask_yaml(beta, 1))

    # The latest of each name: one visibility call, so wait for visibility to catch up.
    async def listed() -> list[resources_pb2.Definition]:
        answer = await definitions.ListDefinitions(
            definitions_pb.ListDefinitionsRequest(page_size=1000), metadata=kit.auth()
        )
        return list(answer.definitions)

    everything = await eventually(
        listed,
        lambda found: {(d.name, d.version) for d in found} >= {(alpha, 2), (beta, 1)},
        what="both definitions listed at their latest version",
    )
    names = [d.name for d in everything]
    assert names == sorted(names) and len(names) == len(set(names))
    mine = {d.name: d for d in everything if d.name in (alpha, beta)}
    assert (mine[alpha].content_hash, mine[alpha].workflow_type) == (
        a2.content_hash,
        f"{alpha}:2",
    )
    assert mine[alpha].description == "Ask before greeting (v2)"
    assert mine[beta].content_hash == b1.content_hash
    assert mine[alpha].create_time == a2.create_time  # when the latest was registered
    assert all(d.yaml == "" for d in everything)  # listings leave the text out

    versions = await definitions.ListDefinitions(
        definitions_pb.ListDefinitionsRequest(name=alpha), metadata=kit.auth()
    )
    assert [(d.name, d.version) for d in versions.definitions] == [(alpha, 1), (alpha, 2)]
    assert versions.definitions[1].content_hash == a2.content_hash
    assert all(d.yaml == "" and d.HasField("create_time") for d in versions.definitions)
    assert versions.next_page_token == ""

    first = await definitions.ListDefinitions(
        definitions_pb.ListDefinitionsRequest(name=alpha, page_size=1), metadata=kit.auth()
    )
    second = await definitions.ListDefinitions(
        definitions_pb.ListDefinitionsRequest(
            name=alpha, page_size=1, page_token=first.next_page_token
        ),
        metadata=kit.auth(),
    )
    assert [d.version for d in first.definitions] == [1]
    assert [d.version for d in second.definitions] == [2]
    assert first.next_page_token and second.next_page_token == ""


async def test_list_of_an_unknown_name_is_not_found(
    kit: ControlPlaneKit, definitions: definitions_grpc.DefinitionServiceStub
) -> None:
    error, status = await refused(
        definitions.ListDefinitions(
            definitions_pb.ListDefinitionsRequest(name="never-registered"), metadata=kit.auth()
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == "definition 'never-registered' is not registered in org 'acme'"
    resource = detail(status, error_details_pb2.ResourceInfo)
    assert resource.resource_name == "never-registered"


# -- state lives in Temporal ----------------------------------------------------------------


async def test_definitions_survive_a_restart_and_every_replica_sees_them(
    kit: ControlPlaneKit,
    definitions: definitions_grpc.DefinitionServiceStub,
    workflows: workflows_grpc.WorkflowServiceStub,
) -> None:
    name = unique("durable")
    text = ask_yaml(name)
    endpoint = Endpoint(kit.stack.resolver.endpoint.address)

    # A second server: its own resolver, client pool, dispatcher and registry (no workers:
    # the session server's pool serves the namespaces, like `engined serve --no-worker`).
    first = await open_stack(PrefixResolver(endpoint, kit.prefix), workers=False)
    try:
        channel = grpc.aio.insecure_channel(first.address)
        registered = await definitions_grpc.DefinitionServiceStub(channel).RegisterDefinition(
            definitions_pb.RegisterDefinitionRequest(yaml=text), metadata=kit.auth()
        )
        await channel.close()
        assert registered.created is True

        # The session server, a replica running at the same time, sees it at once.
        seen = await definitions.GetDefinition(
            definitions_pb.GetDefinitionRequest(name=name), metadata=kit.auth()
        )
        assert seen.definition == registered.definition
    finally:
        await first.close()

    # A server started afterwards, with nothing cached, still finds it.
    restarted = await open_stack(PrefixResolver(endpoint, kit.prefix), workers=False)
    try:
        channel = grpc.aio.insecure_channel(restarted.address)
        stub = definitions_grpc.DefinitionServiceStub(channel)
        found = await stub.GetDefinition(
            definitions_pb.GetDefinitionRequest(name=name, version=1), metadata=kit.auth()
        )
        assert found.definition == registered.definition
        again = await stub.RegisterDefinition(
            definitions_pb.RegisterDefinitionRequest(yaml=text), metadata=kit.auth()
        )
        assert again.created is False
        started = await workflows_grpc.WorkflowServiceStub(channel).StartWorkflow(
            workflows_pb.StartWorkflowRequest(definition_name=name), metadata=kit.auth()
        )
        assert started.workflow_type == f"{name}:1"
        await channel.close()
    finally:
        await restarted.close()
    await workflows.CancelWorkflow(
        workflows_pb.CancelWorkflowRequest(workflow_id=started.workflow_id), metadata=kit.auth()
    )


# -- the registry is the engine's own: unreachable by run RPCs, and immutable by construction


async def test_the_registry_workflows_are_no_runs_to_any_run_rpc(
    kit: ControlPlaneKit,
    definitions: definitions_grpc.DefinitionServiceStub,
    workflows: workflows_grpc.WorkflowServiceStub,
) -> None:
    name = unique("internal")
    await definitions.RegisterDefinition(
        definitions_pb.RegisterDefinitionRequest(yaml=ask_yaml(name)), metadata=kit.auth()
    )
    registry_id = f"definition/{name}"
    for call in (
        workflows.GetWorkflow(
            workflows_pb.GetWorkflowRequest(workflow_id=registry_id), metadata=kit.auth()
        ),
        workflows.CancelWorkflow(
            workflows_pb.CancelWorkflowRequest(workflow_id=registry_id), metadata=kit.auth()
        ),
    ):
        error, status = await refused(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND
        assert error_info(status).reason == "WORKFLOW_NOT_FOUND"
    # A new run may not take such an id either.
    error, _ = await refused(
        workflows.StartWorkflow(
            workflows_pb.StartWorkflowRequest(definition_name=name, workflow_id=registry_id + "x"),
            metadata=kit.auth(),
        )
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    listed = await workflows.ListWorkflows(
        workflows_pb.ListWorkflowsRequest(page_size=1000), metadata=kit.auth()
    )
    assert not [w for w in listed.workflows if w.workflow_id.startswith("definition/")]


async def test_a_version_keeps_its_content_after_its_registry_is_ended_from_outside(
    kit: ControlPlaneKit, definitions: definitions_grpc.DefinitionServiceStub
) -> None:
    name = unique("ended")
    first = await definitions.RegisterDefinition(
        definitions_pb.RegisterDefinitionRequest(yaml=ask_yaml(name)), metadata=kit.auth()
    )
    client = await kit.stack.client("acme")
    registry = client.get_workflow_handle(f"definition/{name}")
    # A cancel is not obeyed: the registry goes on as a new run with its versions.
    first_run = (await registry.describe()).run_id
    await registry.cancel()
    await eventually(
        registry.describe,
        lambda described: (
            described.run_id != first_run and described.status == WorkflowExecutionStatus.RUNNING
        ),
        what="the registry going on as a new run",
    )
    # Terminated (only Temporal's own tools can): the next registration brings it back.
    await registry.terminate("ended from outside the engine")

    other = ask_yaml(name, timeout="1h")
    error, status = await refused(
        definitions.RegisterDefinition(
            definitions_pb.RegisterDefinitionRequest(yaml=other), metadata=kit.auth()
        )
    )
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_info(status).reason == "DEFINITION_VERSION_CONFLICT"
    again = await definitions.RegisterDefinition(
        definitions_pb.RegisterDefinitionRequest(yaml=ask_yaml(name)), metadata=kit.auth()
    )
    assert again.created is False
    assert again.definition.content_hash == first.definition.content_hash
    newer = await definitions.RegisterDefinition(
        definitions_pb.RegisterDefinitionRequest(yaml=ask_yaml(name, 2)), metadata=kit.auth()
    )
    assert newer.created is True
    versions = await definitions.ListDefinitions(
        definitions_pb.ListDefinitionsRequest(name=name), metadata=kit.auth()
    )
    assert [v.version for v in versions.definitions] == [1, 2]
