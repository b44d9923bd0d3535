"""Authentication and tenancy at the door: who may call what, over a real gRPC channel.

A bearer token pins a caller to one org; every failure is UNAUTHENTICATED with a message that
says what is wrong, the admin role guards OrganizationService, and a run id of another org is
NOT_FOUND for every rpc that names a run. Health and reflection need no token.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import grpc
import jwt
import pytest
from google.protobuf import duration_pb2, struct_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from engine.api.v1 import (
    definition_service_pb2 as definitions_pb,
)
from engine.api.v1 import (
    definition_service_pb2_grpc as definitions_grpc,
)
from engine.api.v1 import (
    organization_service_pb2 as organizations_pb,
)
from engine.api.v1 import (
    organization_service_pb2_grpc as organizations_grpc,
)
from engine.api.v1 import resources_pb2
from engine.api.v1 import (
    workflow_service_pb2 as workflows_pb,
)
from engine.api.v1 import (
    workflow_service_pb2_grpc as workflows_grpc,
)
from engine.server import SERVICE_NAMES
from tests.server.harness import (
    SECRET,
    ControlPlaneKit,
    ask_yaml,
    bearer,
    detail,
    drain,
    error_info,
    expired_token,
    refused,
    rich_status,
    unique,
)

VALIDATE = definitions_pb.ValidateDefinitionRequest(yaml=ask_yaml("auth-probe"))


def _token(payload: dict[str, Any], key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(payload, key, algorithm=algorithm)


def _now() -> int:
    return int(time.time())


# -- unauthenticated ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        pytest.param((), "missing 'authorization: Bearer <token>' metadata", id="no-token"),
        pytest.param(
            (("authorization", "Token abc"),),
            "the authorization metadata must be 'Bearer <token>'",
            id="not-bearer",
        ),
        pytest.param(
            (("authorization", "Bearer "),),
            "the authorization metadata must be 'Bearer <token>'",
            id="empty-bearer",
        ),
        pytest.param(bearer("not-a-jwt"), "invalid token: Not enough segments", id="malformed-jwt"),
        pytest.param(
            bearer(
                _token(
                    {"org": "acme", "exp": _now() + 600},
                    key="another-secret-of-the-same-length-as-ours",
                )
            ),
            "invalid token: Signature verification failed",
            id="wrong-signature",
        ),
        pytest.param(bearer(expired_token("acme")), "the token has expired", id="expired"),
        pytest.param(
            bearer(_token({"org": "acme"})), "the token lacks the 'exp' claim", id="no-exp"
        ),
        pytest.param(
            bearer(_token({"exp": _now() + 600})), "the token lacks the 'org' claim", id="no-org"
        ),
        pytest.param(
            bearer(jwt.encode({"org": "acme", "exp": _now() + 600}, None, algorithm="none")),
            "invalid token: The specified alg value is not allowed",
            id="alg-none",
        ),
        pytest.param(
            bearer(_token({"org": "acme", "roles": "admin", "exp": _now() + 600})),
            "the token's 'roles' claim must be a list of strings",
            id="roles-not-a-list",
        ),
        pytest.param(
            bearer(_token({"org": "Not An Org", "exp": _now() + 600})),
            "the token's 'org' claim is invalid: ",
            id="bad-org-claim",
        ),
    ],
)
async def test_a_call_without_a_valid_token_is_unauthenticated(
    definitions: definitions_grpc.DefinitionServiceStub,
    metadata: tuple[tuple[str, str], ...],
    message: str,
) -> None:
    error, status = await refused(definitions.ValidateDefinition(VALIDATE, metadata=metadata))

    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details().startswith(message)
    assert status.message == error.details()
    info = error_info(status)
    assert (info.reason, info.domain) == ("UNAUTHENTICATED", "engine")
    assert "Traceback" not in error.details()


async def test_a_token_that_expires_is_refused_once_it_has(
    kit: ControlPlaneKit, definitions: definitions_grpc.DefinitionServiceStub
) -> None:
    token = kit.token("acme", ttl=1)
    assert (await definitions.ValidateDefinition(VALIDATE, metadata=bearer(token))).valid

    await asyncio.sleep(2)  # PyJWT allows no leeway: one second past `exp` the token is dead

    error, _ = await refused(definitions.ValidateDefinition(VALIDATE, metadata=bearer(token)))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error.details() == "the token has expired"


async def test_a_streaming_call_is_authenticated_too(
    workflows: workflows_grpc.WorkflowServiceStub,
) -> None:
    stream = workflows.WatchWorkflow(
        workflows_pb.WatchWorkflowRequest(workflow_id="anything"),
        metadata=bearer(expired_token("acme")),
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await drain(stream)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.details() == "the token has expired"
    assert error_info(rich_status(caught.value)).reason == "UNAUTHENTICATED"


async def test_the_scheme_is_case_insensitive(
    kit: ControlPlaneKit, definitions: definitions_grpc.DefinitionServiceStub
) -> None:
    metadata = (("authorization", f"bearer {kit.token('acme')}"),)
    assert (await definitions.ValidateDefinition(VALIDATE, metadata=metadata)).valid


# -- the admin role -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "request_message"),
    [
        ("CreateOrganization", organizations_pb.CreateOrganizationRequest(org_id="hooli")),
        ("GetOrganization", organizations_pb.GetOrganizationRequest(org_id="acme")),
        ("ListOrganizations", organizations_pb.ListOrganizationsRequest()),
    ],
)
async def test_organization_service_needs_the_admin_role(
    kit: ControlPlaneKit,
    organizations: organizations_grpc.OrganizationServiceStub,
    method: str,
    request_message: Any,
) -> None:
    call = getattr(organizations, method)
    # An org's admin administers its org: organizations are the platform's.
    for roles in (["operator"], ["admin"]):
        error, status = await refused(call(request_message, metadata=kit.auth("acme", roles=roles)))
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED
        assert error.details() == (
            f"{method} needs the platform role (an org's admin administers only its org); the "
            f"token of org 'acme' has roles {roles}"
        )
        assert error_info(status).reason == "PERMISSION_DENIED"

    # Without a token at all it is UNAUTHENTICATED, not PERMISSION_DENIED: who, before what.
    error, _ = await refused(call(request_message))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_a_refused_create_provisions_nothing(
    kit: ControlPlaneKit, organizations: organizations_grpc.OrganizationServiceStub
) -> None:
    await refused(
        organizations.CreateOrganization(
            organizations_pb.CreateOrganizationRequest(org_id="hooli"), metadata=kit.auth("acme")
        )
    )
    error, _ = await refused(
        organizations.GetOrganization(
            organizations_pb.GetOrganizationRequest(org_id="hooli"),
            metadata=kit.auth("acme", roles=["platform"]),
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND


# -- another org's runs and definitions -----------------------------------------------------


async def test_another_orgs_run_is_not_found_for_every_rpc(
    kit: ControlPlaneKit,
    workflows: workflows_grpc.WorkflowServiceStub,
    definitions: definitions_grpc.DefinitionServiceStub,
) -> None:
    name = unique("secret-plan")
    acme, globex = kit.auth("acme"), kit.auth("globex")
    await definitions.RegisterDefinition(
        definitions_pb.RegisterDefinitionRequest(yaml=ask_yaml(name)), metadata=acme
    )
    started = await workflows.StartWorkflow(
        workflows_pb.StartWorkflowRequest(definition_name=name, workflow_id=unique("acme-run")),
        metadata=acme,
    )
    run_id = started.workflow_id
    globex_ns = kit.namespace("globex")

    attempts: dict[str, Any] = {
        "GetWorkflow": workflows.GetWorkflow(
            workflows_pb.GetWorkflowRequest(workflow_id=run_id), metadata=globex
        ),
        "SubmitResult": workflows.SubmitResult(
            workflows_pb.SubmitResultRequest(
                workflow_id=run_id, step_id="ask", result=struct_pb2.Value(bool_value=True)
            ),
            metadata=globex,
        ),
        "CancelWorkflow": workflows.CancelWorkflow(
            workflows_pb.CancelWorkflowRequest(workflow_id=run_id, reason="hostile"),
            metadata=globex,
        ),
        "UpdateTimeout": workflows.UpdateTimeout(
            workflows_pb.UpdateTimeoutRequest(
                workflow_id=run_id, step_id="ask", timeout=duration_pb2.Duration(seconds=1)
            ),
            metadata=globex,
        ),
        "RetryWorkflow": workflows.RetryWorkflow(
            workflows_pb.RetryWorkflowRequest(workflow_id=run_id), metadata=globex
        ),
    }
    for method, call in attempts.items():
        error, status = await refused(call)
        assert error.code() == grpc.StatusCode.NOT_FOUND, method
        # The message names the caller's own namespace, and nothing of acme's.
        assert error.details() == (
            f"run '{run_id}' not found in org 'globex' (namespace '{globex_ns}')"
        ), method
        assert kit.namespace("acme") not in error.details()
        resource = detail(status, error_details_pb2.ResourceInfo)
        assert (resource.resource_type, resource.resource_name) == (
            "engine.api.v1.Workflow",
            run_id,
        ), method
        assert error_info(status).reason == "WORKFLOW_NOT_FOUND", method

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await drain(
            workflows.WatchWorkflow(
                workflows_pb.WatchWorkflowRequest(workflow_id=run_id), metadata=globex
            )
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND

    error, _ = await refused(
        definitions.GetDefinition(definitions_pb.GetDefinitionRequest(name=name), metadata=globex)
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == f"definition '{name}' is not registered in org 'globex'"

    error, _ = await refused(
        workflows.StartWorkflow(
            workflows_pb.StartWorkflowRequest(definition_name=name), metadata=globex
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND

    listed = await workflows.ListWorkflows(workflows_pb.ListWorkflowsRequest(), metadata=globex)
    assert run_id not in {w.workflow_id for w in listed.workflows}
    # Not even a visibility query that names acme, or tries to break out of its parentheses:
    # the query runs in globex's namespace, where acme's runs do not exist.
    for query in (f"WorkflowId = '{run_id}'", f"WorkflowId != '' OR WorkflowId = '{run_id}'"):
        listed = await workflows.ListWorkflows(
            workflows_pb.ListWorkflowsRequest(query=query, include_children=True),
            metadata=globex,
        )
        assert list(listed.workflows) == [], query
    inbox = await workflows.ListPendingActions(
        workflows_pb.ListPendingActionsRequest(), metadata=globex
    )
    assert run_id not in {a.workflow_id for a in inbox.pending_actions}

    # Untouched: acme's run still waits on its prompt, uncancelled.
    mine = await workflows.GetWorkflow(
        workflows_pb.GetWorkflowRequest(workflow_id=run_id), metadata=acme
    )
    assert mine.workflow.status == resources_pb2.RUN_STATUS_WAITING
    assert [a.step_id for a in mine.workflow.pending_actions] == ["ask"]
    assert mine.workflow.org_id == "acme"
    await workflows.CancelWorkflow(
        workflows_pb.CancelWorkflowRequest(workflow_id=run_id), metadata=acme
    )


async def test_a_token_of_an_unprovisioned_org_finds_nothing(
    kit: ControlPlaneKit, workflows: workflows_grpc.WorkflowServiceStub
) -> None:
    error, status = await refused(
        workflows.ListWorkflows(workflows_pb.ListWorkflowsRequest(), metadata=kit.auth("nobody"))
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details().startswith(
        f"org 'nobody' (namespace '{kit.namespace('nobody')}') is not provisioned"
    )
    assert error_info(status).reason == "ORG_NOT_FOUND"
    resource = detail(status, error_details_pb2.ResourceInfo)
    assert resource.resource_type == "engine.api.v1.Organization"


# -- public services ------------------------------------------------------------------------


async def test_health_answers_without_a_token(kit: ControlPlaneKit) -> None:
    health = health_pb2_grpc.HealthStub(kit.channel())

    for service in ("", *SERVICE_NAMES):
        answer = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert answer.status == health_pb2.HealthCheckResponse.SERVING, service

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await health.Check(health_pb2.HealthCheckRequest(service="engine.api.v1.Nope"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert {
        "engine.api.v1.OrganizationService",
        "engine.api.v1.DefinitionService",
        "engine.api.v1.WorkflowService",
    } <= set(SERVICE_NAMES)
