"""OrganizationService: provision (idempotently), read and list orgs, as an admin."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2

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
from tests.server.harness import (
    ControlPlaneKit,
    detail,
    error_info,
    eventually,
    quick_yaml,
    refused,
    unique,
)


def _admin(kit: ControlPlaneKit) -> Any:
    return kit.auth("acme", roles=["platform"])


async def test_create_provisions_once_then_returns_the_org_as_it_is(
    kit: ControlPlaneKit,
    organizations: organizations_grpc.OrganizationServiceStub,
    workflows: workflows_grpc.WorkflowServiceStub,
) -> None:
    request = organizations_pb.CreateOrganizationRequest(
        org_id="initech", retention=duration_pb2.Duration(seconds=2 * 86400)
    )
    first = await organizations.CreateOrganization(request, metadata=_admin(kit))

    assert first.created is True
    assert first.organization.org_id == "initech"
    assert first.organization.namespace == f"{kit.prefix}initech"
    assert first.organization.address == kit.stack.resolver.endpoint.address
    assert first.organization.retention.ToTimedelta() == timedelta(days=2)

    # Idempotent: the same call again (even asking for another retention) changes nothing.
    again = await organizations.CreateOrganization(
        organizations_pb.CreateOrganizationRequest(org_id="initech"), metadata=_admin(kit)
    )
    assert again.created is False
    assert again.organization == first.organization

    # Served at once, without a restart: a token of the new org runs a workflow there.
    started = await workflows.StartWorkflow(
        workflows_pb.StartWorkflowRequest(
            definition_yaml=quick_yaml(unique("initech-quick")),
            inputs={"n": 21},
            wait_for_suspension=False,
        ),
        metadata=kit.auth("initech"),
    )
    status = await _until_ended(kit, workflows, started.workflow_id, "initech")
    assert status.result.number_value == 42
    assert status.org_id == "initech"


async def _until_ended(
    kit: ControlPlaneKit, workflows: workflows_grpc.WorkflowServiceStub, run: str, org: str
) -> Any:
    answer = await eventually(
        lambda: workflows.GetWorkflow(
            workflows_pb.GetWorkflowRequest(workflow_id=run), metadata=kit.auth(org)
        ),
        lambda r: r.workflow.status == resources_pb2.RUN_STATUS_COMPLETED,
        what=f"run {run} completed",
    )
    return answer.workflow


async def test_create_uses_the_default_retention_when_none_is_given(
    kit: ControlPlaneKit, organizations: organizations_grpc.OrganizationServiceStub
) -> None:
    answer = await organizations.GetOrganization(
        organizations_pb.GetOrganizationRequest(org_id="acme"), metadata=_admin(kit)
    )
    assert answer.organization.org_id == "acme"
    assert answer.organization.namespace == kit.namespace("acme")
    assert answer.organization.retention.ToTimedelta() == kit.stack.provisioner.retention


@pytest.mark.parametrize("org_id", ["Bad_Org", "-leading-dash", "x" * 64, "a.b"])
async def test_an_invalid_org_id_is_invalid_argument_before_temporal_is_asked(
    kit: ControlPlaneKit, organizations: organizations_grpc.OrganizationServiceStub, org_id: str
) -> None:
    for call in (
        organizations.CreateOrganization(
            organizations_pb.CreateOrganizationRequest(org_id=org_id), metadata=_admin(kit)
        ),
        organizations.GetOrganization(
            organizations_pb.GetOrganizationRequest(org_id=org_id), metadata=_admin(kit)
        ),
    ):
        error, status = await refused(call)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == (
            f"invalid org id {org_id!r}: use 1 to 63 lowercase letters, digits and '-', "
            "starting with a letter or digit"
        )
        assert error_info(status).reason == "INVALID_ORG_ID"


async def test_a_missing_org_id_or_a_short_retention_names_the_field(
    kit: ControlPlaneKit, organizations: organizations_grpc.OrganizationServiceStub
) -> None:
    cases = [
        (organizations_pb.CreateOrganizationRequest(), "org_id", "is required"),
        (
            organizations_pb.CreateOrganizationRequest(
                org_id="shortlived", retention=duration_pb2.Duration(seconds=3600)
            ),
            "retention",
            "must be at least 1 day",
        ),
        (
            organizations_pb.CreateOrganizationRequest(
                org_id="forever", retention=duration_pb2.Duration(seconds=9 * 10**18)
            ),
            "retention",
            "is not a valid duration (at most 10,000 years)",
        ),
    ]
    for request, field, description in cases:
        error, status = await refused(
            organizations.CreateOrganization(request, metadata=_admin(kit))
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.details() == f"{field}: {description}"
        violations = detail(status, error_details_pb2.BadRequest).field_violations
        assert [(v.field, v.description) for v in violations] == [(field, description)]
        assert error_info(status).reason == "INVALID_FIELD"


async def test_get_of_an_unknown_org_is_not_found_with_its_resource(
    kit: ControlPlaneKit, organizations: organizations_grpc.OrganizationServiceStub
) -> None:
    error, status = await refused(
        organizations.GetOrganization(
            organizations_pb.GetOrganizationRequest(org_id="umbrella"), metadata=_admin(kit)
        )
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert error.details() == (
        f"org 'umbrella' not found (no engine namespace '{kit.namespace('umbrella')}' "
        f"at {kit.stack.resolver.endpoint.address})"
    )
    resource = detail(status, error_details_pb2.ResourceInfo)
    assert (resource.resource_type, resource.resource_name) == (
        "engine.api.v1.Organization",
        "umbrella",
    )
    assert resource.description == error.details()
    assert error_info(status).reason == "ORG_NOT_FOUND"


async def test_list_pages_through_the_orgs_sorted_by_id(
    kit: ControlPlaneKit, organizations: organizations_grpc.OrganizationServiceStub
) -> None:
    everything = await organizations.ListOrganizations(
        organizations_pb.ListOrganizationsRequest(), metadata=_admin(kit)
    )
    ids = [o.org_id for o in everything.organizations]
    assert everything.next_page_token == ""
    assert {"acme", "globex", "inbox"} <= set(ids)
    assert ids == sorted(ids)
    # Only this server's orgs: the resolver's prefix hides every other module's namespaces.
    assert all(o.namespace == f"{kit.prefix}{o.org_id}" for o in everything.organizations)

    paged: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await organizations.ListOrganizations(
            organizations_pb.ListOrganizationsRequest(page_size=2, page_token=token),
            metadata=_admin(kit),
        )
        assert len(page.organizations) <= 2
        paged += [o.org_id for o in page.organizations]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert paged == ids
    assert pages == (len(ids) + 1) // 2


@pytest.mark.parametrize(
    ("request_message", "field", "description"),
    [
        (
            organizations_pb.ListOrganizationsRequest(page_size=1001),
            "page_size",
            "must be between 1 and 1000, got 1001",
        ),
        (
            organizations_pb.ListOrganizationsRequest(page_size=-1),
            "page_size",
            "must be between 1 and 1000, got -1",
        ),
        (
            organizations_pb.ListOrganizationsRequest(page_token="not a token"),
            "page_token",
            "is not a token this server issued",
        ),
        (  # base64 of "-1": a negative offset is not a token this server issues
            organizations_pb.ListOrganizationsRequest(page_token="LTE="),
            "page_token",
            "is not a token this server issued",
        ),
        (  # base64 of "x": nor is anything but a decimal offset
            organizations_pb.ListOrganizationsRequest(page_token="eA=="),
            "page_token",
            "is not a token this server issued",
        ),
    ],
)
async def test_list_refuses_a_bad_page_size_or_token(
    kit: ControlPlaneKit,
    organizations: organizations_grpc.OrganizationServiceStub,
    request_message: organizations_pb.ListOrganizationsRequest,
    field: str,
    description: str,
) -> None:
    error, status = await refused(
        organizations.ListOrganizations(request_message, metadata=_admin(kit))
    )
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == f"{field}: {description}"
    violations = detail(status, error_details_pb2.BadRequest).field_violations
    assert [(v.field, v.description) for v in violations] == [(field, description)]
