"""The gRPC servicers: parse the request, call the dispatcher or registry, convert the answer.

Every method reads the caller's organization from ``context.org`` (set by the auth
interceptor from the token); nothing in a request body selects an organization.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

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
from engine.definition import DefinitionError, Problem
from engine.dispatcher import (
    DefinitionRef,
    DefinitionRegistry,
    RegisteredDefinition,
    TemporalDispatcher,
    check_off_loop,
    load_off_loop,
)
from engine.server._convert import (
    action_to_proto,
    advance_to_proto,
    duration,
    run_status,
    status_name,
    timestamp,
    workflow_to_proto,
)
from engine.server._errors import FieldError
from engine.server._requests import (
    json_object,
    json_value,
    org_of,
    page,
    page_size,
    required,
    seconds,
    token_bytes,
)
from engine.tenancy import Organization, OrgDirectory, Provisioner
from engine.wire import enum_name, to_value

__all__ = ["DefinitionServicer", "OrganizationServicer", "WorkflowServicer"]


def _token_text(token: bytes | None) -> str:
    """A visibility page token as the API's (URL-safe base64; "" at the end)."""
    return base64.urlsafe_b64encode(token).decode() if token else ""


def _problem(problem: Problem) -> resources_pb2.DefinitionProblem:
    return resources_pb2.DefinitionProblem(
        line=problem.line,
        column=problem.column,
        path=problem.path,
        message=problem.message,
        warning=problem.severity == "warning",
    )


def _definition(record: RegisteredDefinition) -> resources_pb2.Definition:
    message = resources_pb2.Definition(
        name=record.name,
        version=record.version,
        description=record.description,
        content_hash=record.content_hash,
        yaml=record.yaml,
        workflow_type=record.workflow_type,
    )
    if record.create_time:
        message.create_time.CopyFrom(timestamp(record.create_time))
    return message


def _organization(org: Organization) -> resources_pb2.Organization:
    return resources_pb2.Organization(
        org_id=org.org_id,
        namespace=org.namespace,
        address=org.address,
        retention=duration(org.retention),
    )


class OrganizationServicer(organizations_grpc.OrganizationServiceServicer):
    """Provisions and lists organizations (admin only, enforced by the auth interceptor)."""

    def __init__(self, provisioner: Provisioner, directory: OrgDirectory) -> None:
        self.provisioner = provisioner
        self.directory = directory

    async def CreateOrganization(  # noqa: N802 - gRPC method name
        self, request: organizations_pb.CreateOrganizationRequest, context: Any
    ) -> organizations_pb.CreateOrganizationResponse:
        retention = None
        if request.HasField("retention"):
            retention = timedelta(seconds=seconds(request.retention, "retention"))
            if retention < timedelta(days=1):
                raise FieldError("retention", "must be at least 1 day")
        org = await self.provisioner.provision(required(request.org_id, "org_id"), retention)
        return organizations_pb.CreateOrganizationResponse(
            organization=_organization(org), created=org.created
        )

    async def GetOrganization(  # noqa: N802
        self, request: organizations_pb.GetOrganizationRequest, context: Any
    ) -> organizations_pb.GetOrganizationResponse:
        org = await self.directory.get(required(request.org_id, "org_id"))
        return organizations_pb.GetOrganizationResponse(organization=_organization(org))

    async def ListOrganizations(  # noqa: N802
        self, request: organizations_pb.ListOrganizationsRequest, context: Any
    ) -> organizations_pb.ListOrganizationsResponse:
        orgs, token = page(await self.directory.list_orgs(), request.page_size, request.page_token)
        return organizations_pb.ListOrganizationsResponse(
            organizations=[_organization(o) for o in orgs], next_page_token=token
        )


class DefinitionServicer(definitions_grpc.DefinitionServiceServicer):
    """Validates, registers and reads the definitions of the caller's organization."""

    def __init__(self, registry: DefinitionRegistry) -> None:
        self.registry = registry

    async def ValidateDefinition(  # noqa: N802
        self, request: definitions_pb.ValidateDefinitionRequest, context: Any
    ) -> definitions_pb.ValidateDefinitionResponse:
        source = request.source or "<request>"
        try:
            definition = await check_off_loop(request.yaml, source)
        except DefinitionError as error:
            return definitions_pb.ValidateDefinitionResponse(
                valid=False, problems=[_problem(p) for p in error.problems]
            )
        return definitions_pb.ValidateDefinitionResponse(
            valid=True,
            problems=[_problem(p) for p in definition.warnings],
            name=definition.name,
            version=definition.version,
            content_hash=definition.content_hash,
        )

    async def RegisterDefinition(  # noqa: N802
        self, request: definitions_pb.RegisterDefinitionRequest, context: Any
    ) -> definitions_pb.RegisterDefinitionResponse:
        record, created, warnings = await self.registry.register(
            org_of(context), required(request.yaml, "yaml")
        )
        return definitions_pb.RegisterDefinitionResponse(
            definition=_definition(record),
            created=created,
            warnings=[_problem(w) for w in warnings],
        )

    async def GetDefinition(  # noqa: N802
        self, request: definitions_pb.GetDefinitionRequest, context: Any
    ) -> definitions_pb.GetDefinitionResponse:
        record = await self.registry.get_registered(
            org_of(context), required(request.name, "name"), request.version or None
        )
        return definitions_pb.GetDefinitionResponse(definition=_definition(record))

    async def ListDefinitions(  # noqa: N802
        self, request: definitions_pb.ListDefinitionsRequest, context: Any
    ) -> definitions_pb.ListDefinitionsResponse:
        org = org_of(context)
        records = (
            await self.registry.versions(org, request.name)
            if request.name
            else await self.registry.latest(org)
        )
        found, token = page(records, request.page_size, request.page_token)
        return definitions_pb.ListDefinitionsResponse(
            definitions=[_definition(r) for r in found], next_page_token=token
        )


class WorkflowServicer(workflows_grpc.WorkflowServiceServicer):
    """Starts, reads, lists and drives the runs of the caller's organization."""

    def __init__(self, dispatcher: TemporalDispatcher, registry: DefinitionRegistry) -> None:
        self.dispatcher = dispatcher
        self.registry = registry

    async def StartWorkflow(  # noqa: N802
        self, request: workflows_pb.StartWorkflowRequest, context: Any
    ) -> workflows_pb.StartWorkflowResponse:
        org = org_of(context)
        which = request.WhichOneof("definition")
        if which == "definition_yaml":
            definition: Any = await load_off_loop(request.definition_yaml, "<definition_yaml>")
        elif which == "definition_name":
            definition = DefinitionRef(request.definition_name, request.definition_version or None)
        else:
            raise FieldError("definition", "give definition_name or definition_yaml")
        inputs = json_object(request.inputs, "inputs")
        if request.wait_for_suspension:
            first = await self.dispatcher.start_and_wait(
                org,
                definition,
                inputs,
                workflow_id=request.workflow_id or None,
                request_id=request.request_id or None,
            )
            run, advance = first
            return workflows_pb.StartWorkflowResponse(
                workflow_id=run.workflow_id,
                run_id=run.run_id,
                workflow_type=run.workflow_type,
                status=run_status(advance.get("status")),
                pending_actions=[action_to_proto(a) for a in advance.get("pending_actions", [])],
                result=to_value(advance.get("result")),
                error=advance.get("error") or "",
            )
        run = await self.dispatcher.start(
            org,
            definition,
            inputs,
            workflow_id=request.workflow_id or None,
            request_id=request.request_id or None,
        )
        return workflows_pb.StartWorkflowResponse(
            workflow_id=run.workflow_id, run_id=run.run_id, workflow_type=run.workflow_type
        )

    async def GetWorkflow(  # noqa: N802
        self, request: workflows_pb.GetWorkflowRequest, context: Any
    ) -> workflows_pb.GetWorkflowResponse:
        status = await self.dispatcher.status(
            org_of(context), required(request.workflow_id, "workflow_id"), request.run_id or None
        )
        return workflows_pb.GetWorkflowResponse(workflow=workflow_to_proto(status))

    async def ListWorkflows(  # noqa: N802
        self, request: workflows_pb.ListWorkflowsRequest, context: Any
    ) -> workflows_pb.ListWorkflowsResponse:
        token = token_bytes(request.page_token) if request.page_token else None
        status = status_name(request.status)
        if status is None and request.status != resources_pb2.RUN_STATUS_UNSPECIFIED:
            raise FieldError("status", f"unknown run status {request.status}")
        listed = await self.dispatcher.list(
            org_of(context),
            status=status,
            definition=request.definition_name or None,
            query=request.query or None,
            include_children=request.include_children,
            page_size=page_size(request.page_size),
            page_token=token,
        )
        workflows = []
        for run in listed.runs:
            summary = resources_pb2.WorkflowSummary(
                workflow_id=run.workflow_id,
                run_id=run.run_id,
                workflow_type=run.workflow_type,
                definition_name=run.definition or "",
                status=run_status(run.status),
                current_step=run.current_step or "",
                parent_workflow_id=run.parent_workflow_id or "",
            )
            if run.start_time:
                summary.start_time.CopyFrom(timestamp(run.start_time))
            if run.close_time:
                summary.close_time.CopyFrom(timestamp(run.close_time))
            workflows.append(summary)
        return workflows_pb.ListWorkflowsResponse(
            workflows=workflows, next_page_token=_token_text(listed.next_page_token)
        )

    async def SubmitResult(  # noqa: N802
        self, request: workflows_pb.SubmitResultRequest, context: Any
    ) -> workflows_pb.SubmitResultResponse:
        target = request.WhichOneof("target")
        if target is None:
            raise FieldError("target", "give action_id or step_id")
        advance = await self.dispatcher.submit_result(
            org_of(context),
            required(request.workflow_id, "workflow_id"),
            action_id=request.action_id or None,
            step_id=request.step_id or None,
            result=json_value(request.result, "result"),
            error=request.error or None,
            request_id=request.request_id or None,
        )
        return advance_to_proto(advance)

    async def SendEvent(  # noqa: N802
        self, request: workflows_pb.SendEventRequest, context: Any
    ) -> workflows_pb.SendEventResponse:
        delivered = await self.dispatcher.send_event(
            org_of(context),
            required(request.name, "name"),
            json_value(request.payload, "payload"),
            workflow_id=request.workflow_id or None,
            request_id=request.request_id or None,
        )
        return workflows_pb.SendEventResponse(workflow_ids=delivered)

    async def CancelWorkflow(  # noqa: N802
        self, request: workflows_pb.CancelWorkflowRequest, context: Any
    ) -> workflows_pb.CancelWorkflowResponse:
        await self.dispatcher.cancel(
            org_of(context), required(request.workflow_id, "workflow_id"), request.reason
        )
        return workflows_pb.CancelWorkflowResponse()

    async def UpdateTimeout(  # noqa: N802
        self, request: workflows_pb.UpdateTimeoutRequest, context: Any
    ) -> workflows_pb.UpdateTimeoutResponse:
        if not request.HasField("timeout"):
            raise FieldError("timeout", "is required")
        delay = seconds(request.timeout, "timeout")
        if delay < 0:
            raise FieldError("timeout", f"must not be negative, got {delay:g}s")
        await self.dispatcher.update_timeout(
            org_of(context),
            required(request.workflow_id, "workflow_id"),
            required(request.step_id, "step_id"),
            delay,
        )
        return workflows_pb.UpdateTimeoutResponse()

    async def ListPendingActions(  # noqa: N802
        self, request: workflows_pb.ListPendingActionsRequest, context: Any
    ) -> workflows_pb.ListPendingActionsResponse:
        action_type = None
        if request.action_type != resources_pb2.ACTION_TYPE_UNSPECIFIED:
            action_type = enum_name(resources_pb2.ActionType, request.action_type)
            if not action_type:
                raise FieldError("action_type", f"unknown action type {request.action_type}")
        found = await self.dispatcher.pending_actions(
            org_of(context),
            page_size=page_size(request.page_size),
            page_token=token_bytes(request.page_token) if request.page_token else None,
            action_type=action_type,
            agent=request.agent or None,
            definition=request.definition_name or None,
            step_id=request.step_id or None,
            workflow_id=request.workflow_id or None,
        )
        return workflows_pb.ListPendingActionsResponse(
            pending_actions=[action_to_proto(a) for a in found.actions],
            next_page_token=_token_text(found.next_page_token),
        )

    async def WatchWorkflow(  # noqa: N802
        self, request: workflows_pb.WatchWorkflowRequest, context: Any
    ) -> AsyncIterator[workflows_pb.WatchWorkflowResponse]:
        workflow_id = required(request.workflow_id, "workflow_id")
        async for status in self.dispatcher.watch(org_of(context), workflow_id):
            yield workflows_pb.WatchWorkflowResponse(workflow=workflow_to_proto(status))

    async def RetryWorkflow(  # noqa: N802
        self, request: workflows_pb.RetryWorkflowRequest, context: Any
    ) -> workflows_pb.RetryWorkflowResponse:
        from_start = request.mode == workflows_pb.RETRY_MODE_FROM_START
        run = await self.dispatcher.retry(
            org_of(context),
            required(request.workflow_id, "workflow_id"),
            run_id=request.run_id or None,
            from_start=from_start,
        )
        return workflows_pb.RetryWorkflowResponse(workflow_id=run.workflow_id, run_id=run.run_id)
