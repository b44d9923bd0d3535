"""The HTTP/JSON API against the gRPC API: every RPC reachable over HTTP, with the same outcomes
and the same error reasons (one table, both transports), and the OpenAPI document."""

from __future__ import annotations

import json
import re
from typing import Any

import grpc
import httpx2
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from openapi_spec_validator import validate

from engine.gateway import SERVICE_MODULES, HttpApiServer, Route, routes
from tests.server.harness import ControlPlaneKit, expired_token

HELLO = """\
name: http-hello
version: 1
steps:
  - {id: ask, type: prompt, prompt_type: confirm, message: "Go?", output_to: go}
  - {id: done, type: return, value: "${{ state.go }}"}
"""
ROUTES = {f"{r.service.rsplit('.', 1)[-1]}.{r.method}": r for r in routes()}


@pytest.fixture(scope="module", autouse=True)
async def hello(kit: ControlPlaneKit) -> None:
    await kit.register(HELLO, "north")


class Both:
    """Makes one call over gRPC and over HTTP; returns both outcomes as (code, reason, body)."""

    def __init__(self, kit: ControlPlaneKit, api: HttpApiServer) -> None:
        self.kit = kit
        self.api = api

    async def grpc(self, route: Route, request: dict[str, Any], token: str | None) -> Any:
        message = json_format.ParseDict(request, route.request())
        method: Any = self.kit.channel().unary_unary(
            route.grpc_path,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=route.response.FromString,
        )
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        try:
            response = await method(message, metadata=metadata, timeout=60)
        except grpc.aio.AioRpcError as error:
            return error.code().name, _reason(error), None
        return "OK", "", json_format.MessageToDict(response, preserving_proto_field_name=True)

    async def http(self, route: Route, request: dict[str, Any], token: str | None) -> Any:
        remaining = json.loads(json.dumps(request))
        path = route.template
        for name in route.variables:
            value: Any = remaining
            *parents, last = name.split(".")
            for parent in parents:
                value = value[parent]
            path = path.replace("{" + name + "}", str(value.pop(last)))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        kwargs: dict[str, Any] = {"headers": headers}
        if route.body == "*":
            kwargs["json"] = remaining
        else:
            kwargs["params"] = {k: _query(v) for k, v in remaining.items()}
        async with httpx2.AsyncClient(timeout=60) as client:
            response = await client.request(route.verb, self.api.url + path, **kwargs)
        body = response.json()
        if response.status_code != 200:
            error = body["error"]
            assert error["code"] == response.status_code
            reasons = [d.get("reason", "") for d in error["details"] if "reason" in d]
            return error["status"], (reasons[0] if reasons else ""), None
        return "OK", "", body

    async def same(
        self, name: str, request: dict[str, Any], org: str | None = "north", **roles: Any
    ) -> tuple[str, str, Any]:
        route = ROUTES[name]
        token = self.kit.token(org, **roles) if org else None
        over_grpc = await self.grpc(route, request, token)
        over_http = await self.http(route, request, token)
        assert over_http[:2] == over_grpc[:2], (name, over_grpc, over_http)
        return over_http


def _query(value: Any) -> Any:
    return (
        json.dumps(value)
        if isinstance(value, dict | list)
        else str(value).lower()
        if isinstance(value, bool)
        else value
    )


def _reason(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""


def test_every_rpc_has_an_http_route() -> None:
    methods = {
        f"{service.name}.{method.name}"
        for module in SERVICE_MODULES
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }
    assert methods == set(ROUTES)
    for route in ROUTES.values():
        assert re.fullmatch(r"/v1/[a-z]+(/\{[a-z_.]+\})?(:[a-z][A-Za-z]+)?", route.template), route


CASES: list[tuple[str, dict[str, Any], str, dict[str, Any]]] = [
    ("DefinitionService.ListDefinitions", {}, "OK", {}),
    ("DefinitionService.GetDefinition", {"name": "http-hello"}, "OK", {}),
    ("DefinitionService.GetDefinition", {"name": "nope"}, "NOT_FOUND", {}),
    (
        "DefinitionService.ValidateDefinition",
        {"yaml": "name: x\nversion: 1\nsteps: [{id: a}]"},
        "OK",
        {},
    ),
    ("DefinitionService.RegisterDefinition", {"yaml": "steps: ["}, "INVALID_ARGUMENT", {}),
    ("WorkflowService.StartWorkflow", {"definition_name": "nope"}, "NOT_FOUND", {}),
    ("WorkflowService.StartWorkflow", {}, "INVALID_ARGUMENT", {}),
    ("WorkflowService.GetWorkflow", {"workflow_id": "no-such-run"}, "NOT_FOUND", {}),
    ("WorkflowService.ListWorkflows", {"status": "RUN_STATUS_WAITING"}, "OK", {}),
    ("WorkflowService.ListWorkflows", {"query": "WorkflowId = "}, "INVALID_ARGUMENT", {}),
    ("WorkflowService.ListPendingActions", {"action_type": "ACTION_TYPE_PROMPT"}, "OK", {}),
    (
        "WorkflowService.SubmitResult",
        {"workflow_id": "no-such-run", "step_id": "ask"},
        "NOT_FOUND",
        {},
    ),
    ("WorkflowService.CancelWorkflow", {"workflow_id": "no-such-run"}, "NOT_FOUND", {}),
    (
        "WorkflowService.UpdateTimeout",
        {"workflow_id": "no-such-run", "step_id": "ask", "timeout": "5s"},
        "NOT_FOUND",
        {},
    ),
    ("WorkflowService.RetryWorkflow", {"workflow_id": "no-such-run"}, "NOT_FOUND", {}),
    ("WorkflowService.SendEvent", {"name": "bad name!"}, "INVALID_ARGUMENT", {}),
    ("ScheduleService.ListSchedules", {}, "OK", {}),
    ("ScheduleService.GetSchedule", {"schedule_id": "nope"}, "NOT_FOUND", {}),
    ("ScheduleService.CreateSchedule", {}, "INVALID_ARGUMENT", {}),
    ("ScheduleService.UpdateSchedule", {"schedule": {"schedule_id": "nope"}}, "NOT_FOUND", {}),
    ("ScheduleService.PauseSchedule", {"schedule_id": "nope"}, "NOT_FOUND", {}),
    ("ScheduleService.UnpauseSchedule", {"schedule_id": "nope"}, "NOT_FOUND", {}),
    ("ScheduleService.TriggerSchedule", {"schedule_id": "nope"}, "NOT_FOUND", {}),
    ("ScheduleService.BackfillSchedule", {"schedule_id": "nope"}, "INVALID_ARGUMENT", {}),
    ("ScheduleService.DeleteSchedule", {"schedule_id": "nope"}, "NOT_FOUND", {}),
    ("ExecutorService.PollAction", {}, "INVALID_ARGUMENT", {}),
    ("ExecutorService.PollAction", {"action_type": "ACTION_TYPE_SHELL", "wait": "0s"}, "OK", {}),
    ("ExecutorService.HeartbeatAction", {"claim_token": "forged"}, "NOT_FOUND", {}),
    ("ExecutorService.CompleteAction", {"claim_token": "forged", "result": 1}, "NOT_FOUND", {}),
    ("ExecutorService.FailAction", {"claim_token": "forged", "error": "x"}, "NOT_FOUND", {}),
    (
        "LinkService.CreateAnswerLink",
        {"workflow_id": "no-such-run", "action_id": "a"},
        "NOT_FOUND",
        {},
    ),
    ("LinkService.GetAnswerLink", {"link": "not-a-link"}, "PERMISSION_DENIED", {}),
    ("LinkService.AnswerWithLink", {"link": "not-a-link", "result": True}, "PERMISSION_DENIED", {}),
    ("LinkService.GetWebhook", {}, "OK", {"roles": ["viewer"]}),
    ("LinkService.SetWebhook", {"url": ""}, "PERMISSION_DENIED", {}),
    (
        "LinkService.SetWebhook",
        {"url": "ftp://example.com/hook"},
        "INVALID_ARGUMENT",
        {"roles": ["admin"]},
    ),
    (
        "LinkService.SetWebhook",
        {"url": "https://example.com/hook", "secret": "short"},
        "INVALID_ARGUMENT",
        {"roles": ["admin"]},
    ),
    ("LinkService.SetWebhook", {"url": ""}, "OK", {"roles": ["admin"]}),
    ("OrganizationService.ListOrganizations", {}, "PERMISSION_DENIED", {}),
    ("OrganizationService.GetOrganization", {"org_id": "north"}, "PERMISSION_DENIED", {}),
    ("OrganizationService.GetOrganization", {"org_id": "north"}, "OK", {"roles": ["platform"]}),
    ("OrganizationService.ListOrganizations", {}, "OK", {"roles": ["platform"]}),
    ("OrganizationService.CreateOrganization", {"org_id": "west"}, "PERMISSION_DENIED", {}),
]


@pytest.mark.parametrize(
    ("name", "request_json", "code", "roles"),
    CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)],
)
async def test_the_same_call_has_the_same_outcome_over_both_transports(
    kit: ControlPlaneKit,
    api: HttpApiServer,
    name: str,
    request_json: dict[str, Any],
    code: str,
    roles: dict[str, Any],
) -> None:
    outcome = await Both(kit, api).same(name, request_json, **roles)
    assert outcome[0] == code, outcome


async def test_a_run_over_http_start_get_answer_and_watch(
    kit: ControlPlaneKit, api: HttpApiServer
) -> None:
    headers = {"Authorization": f"Bearer {kit.token('north')}"}
    async with httpx2.AsyncClient(base_url=api.url, headers=headers, timeout=60) as http:
        started = await http.post(
            "/v1/workflows", json={"definition_name": "http-hello", "wait_for_suspension": True}
        )
        assert started.status_code == 200, started.text
        run = started.json()
        workflow_id = run["workflow_id"]
        [action] = run["pending_actions"]
        # Lower-case enum names are taken too.
        inbox = await http.get(
            "/v1/actions", params={"action_type": "prompt", "workflow_id": workflow_id}
        )
        assert [a["action_id"] for a in inbox.json()["pending_actions"]] == [action["action_id"]]
        refused = await http.post(
            f"/v1/workflows/{workflow_id}:submitResult",
            json={"action_id": action["action_id"], "result": "yes"},
        )
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert error["status"] == "INVALID_ARGUMENT" and "true or false" in error["message"]
        async with http.stream("GET", f"/v1/workflows/{workflow_id}:watch") as watch:
            assert watch.headers["content-type"].startswith("application/x-ndjson")
            lines = watch.aiter_lines()
            first = json.loads(await anext(lines))
            assert first["workflow"]["status"] == "RUN_STATUS_WAITING"
            answered = await http.post(
                f"/v1/workflows/{workflow_id}:submitResult",
                json={"action_id": action["action_id"], "result": True},
            )
            assert (
                answered.status_code == 200 and answered.json()["status"] == "RUN_STATUS_COMPLETED"
            )
            async for line in lines:
                if json.loads(line)["workflow"]["status"] == "RUN_STATUS_COMPLETED":
                    break
        got = await http.get(f"/v1/workflows/{workflow_id}")
        assert got.json()["workflow"]["result"] is True
        # A browser's EventSource gets server-sent events.
        events = {"Accept": "text/event-stream"}
        async with http.stream("GET", f"/v1/workflows/{workflow_id}:watch", headers=events) as sse:
            assert sse.headers["content-type"].startswith("text/event-stream")
            first_event = await anext(line async for line in sse.aiter_lines() if line)
            assert first_event.startswith("data: ")
            assert json.loads(first_event[6:])["workflow"]["workflow_id"] == workflow_id
        # Another org's token does not see it; no token is 401; a path that is not a resource, 404.
        other = await http.get(
            f"/v1/workflows/{workflow_id}",
            headers={"Authorization": f"Bearer {kit.token('south')}"},
        )
        assert other.status_code == 404 and other.json()["error"]["status"] == "NOT_FOUND"
        anonymous = await http.get(f"/v1/workflows/{workflow_id}", headers={"Authorization": ""})
        assert anonymous.status_code == 401
        expired = await http.get(
            f"/v1/workflows/{workflow_id}",
            headers={"Authorization": f"Bearer {expired_token('north')}"},
        )
        assert expired.status_code == 401
        assert (await http.get("/v1/nothing")).status_code == 404
        assert (await http.delete(f"/v1/workflows/{workflow_id}")).status_code == 405


async def test_a_request_that_does_not_fit_names_the_field(
    kit: ControlPlaneKit, api: HttpApiServer
) -> None:
    headers = {"Authorization": f"Bearer {kit.token('north')}"}
    async with httpx2.AsyncClient(base_url=api.url, headers=headers, timeout=60) as http:
        unknown = await http.post("/v1/workflows", json={"definition_nam": "x"})
        assert unknown.status_code == 400
        [violation] = unknown.json()["error"]["details"][0]["fieldViolations"]
        assert violation["field"] == "definition_nam"
        not_json = await http.post(
            "/v1/workflows", content=b"{", headers={"Content-Type": "application/json"}
        )
        assert not_json.status_code == 400 and "not JSON" in not_json.json()["error"]["message"]
        bad_bool = await http.get("/v1/workflows", params={"include_children": "maybe"})
        assert bad_bool.status_code == 400
        assert (
            bad_bool.json()["error"]["details"][0]["fieldViolations"][0]["field"]
            == "include_children"
        )


async def test_the_openapi_document_validates_and_names_every_route(api: HttpApiServer) -> None:
    async with httpx2.AsyncClient(base_url=api.url, timeout=60) as http:
        document = (await http.get("/openapi.json")).json()
    validate(document)
    operations = {op["operationId"] for path in document["paths"].values() for op in path.values()}
    assert operations == {name.replace(".", "_") for name in ROUTES}
