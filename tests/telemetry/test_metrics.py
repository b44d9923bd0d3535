"""Prometheus ``/metrics`` of a real running stack: a worker pool, the gRPC control plane and
the HTTP gateway, with :class:`~engine.telemetry.metrics.EngineMetrics` on, scraped over HTTP.

The stack gets a Temporal SDK runtime of its own (``EngineMetrics().runtime``): the session's
default runtime, which the other tests use, records nothing and is left alone.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx2 as httpx
import pytest
from google.protobuf import struct_pb2
from prometheus_client.parser import text_string_to_metric_families

from engine.api.v1 import workflow_service_pb2 as workflows_pb
from engine.api.v1 import workflow_service_pb2_grpc
from engine.gateway import HttpApiServer
from engine.identity import LinkSigner, TokenVerifier
from engine.telemetry.metrics import EngineMetrics, MetricsEndpoint
from engine.tenancy import Endpoint, PrefixResolver
from tests.helpers.devserver import DevServer
from tests.server.harness import (
    LINK_SECRET,
    SECRET,
    ControlPlaneKit,
    ServingStack,
    ask_yaml,
    unique,
)
from tests.tenancy.orgkit import TASK_QUEUE, unique_prefix, worker_options

ORGS = ("alpha", "beta")
DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"
START = "/engine.api.v1.WorkflowService/StartWorkflow"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class Served:
    kit: ControlPlaneKit
    metrics: EngineMetrics
    endpoint: MetricsEndpoint
    http: HttpApiServer

    async def scrape(self) -> Samples:
        """Every sample of ``/metrics``, by name and labels."""
        async with httpx.AsyncClient() as client:
            response = await client.get(self.endpoint.url)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        samples: Samples = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return samples

    async def until(
        self, predicate: Callable[[Samples], bool], what: str, timeout: float = 30.0
    ) -> Samples:
        deadline = time.monotonic() + timeout
        while True:
            samples = await self.scrape()
            if predicate(samples):
                return samples
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not seen within {timeout}s")
            await asyncio.sleep(0.2)


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels`` (0 if none)."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= got)


def series(samples: Samples, name: str, **labels: str) -> int:
    """How many samples named ``name`` have ``labels``."""
    wanted = set(labels.items())
    return sum(1 for (n, got) in samples if n == name and wanted <= got)


@pytest.fixture(scope="module")
async def served(temporal_server: DevServer) -> AsyncIterator[Served]:
    metrics = EngineMetrics()
    resolver = PrefixResolver(Endpoint(temporal_server.address), unique_prefix("met"))
    stack = ServingStack(
        resolver,
        task_queue=TASK_QUEUE,
        workers=worker_options(),
        refresh_interval=None,
        metrics=metrics,
    )
    endpoint = MetricsEndpoint(metrics, host="127.0.0.1", port=0)
    http: HttpApiServer | None = None
    kit: ControlPlaneKit | None = None
    try:
        await stack.start()
        stack.plane = stack.control_plane(
            TokenVerifier(SECRET), address="127.0.0.1:0", links=LinkSigner(LINK_SECRET)
        )
        await stack.plane.start()
        await asyncio.gather(*(stack.provisioner.provision(org_id) for org_id in ORGS))
        assert metrics.actions is not None
        metrics.actions.ttl = 0.2  # the test waits for changes: no caching to speak of
        await endpoint.start()
        http = HttpApiServer(
            stack.address, host="127.0.0.1", port=0, middleware=metrics.http_middleware
        )
        await http.start()
        kit = ControlPlaneKit(stack, ORGS)
        yield Served(kit, metrics, endpoint, http)
    finally:
        for channel in kit.channels if kit is not None else ():
            await channel.close()
        if http is not None:
            await http.stop()
        await endpoint.stop()
        await stack.close()


def _true() -> struct_pb2.Value:
    answer = struct_pb2.Value()
    answer.bool_value = True
    return answer


async def test_a_run_in_one_org_shows_in_its_series_and_no_other(served: Served) -> None:
    kit = served.kit
    workflows = workflow_service_pb2_grpc.WorkflowServiceStub(kit.channel())
    name = unique("metrics-ask")

    started = await workflows.StartWorkflow(
        workflows_pb.StartWorkflowRequest(definition_yaml=ask_yaml(name)),
        metadata=kit.auth("alpha"),
    )

    waiting = await served.until(
        lambda s: value(s, "engine_actions_waiting", org="alpha", action_type="prompt") == 1,
        "alpha's prompt waiting",
    )
    oldest = ("engine_actions_oldest_waiting_seconds", {"org": "alpha", "action_type": "prompt"})
    assert series(waiting, oldest[0], **oldest[1]) == 1
    assert 0 < value(waiting, oldest[0], **oldest[1]) < 300
    assert series(waiting, "engine_actions_waiting", org="beta") == 0
    assert value(waiting, "engine_runs_started_total", org="alpha", definition=name) == 1

    await workflows.SubmitResult(
        workflows_pb.SubmitResultRequest(
            workflow_id=started.workflow_id, step_id="ask", result=_true()
        ),
        metadata=kit.auth("alpha"),
    )

    done = await served.until(
        lambda s: (
            value(s, "engine_runs_completed_total", org="alpha", definition=name) == 1
            and value(s, "engine_actions_waiting", org="alpha", action_type="prompt") == 0
        ),
        "alpha's run completed and its prompt no longer waiting",
    )
    # The answer time, once, in a bucket at least as long as it waited (about no time here).
    answered = {"org": "alpha", "action_type": "prompt", "workflow_type": f"{name}:1"}
    assert value(done, "engine_action_answer_seconds_count", **answered) == 1
    assert value(done, "engine_action_answer_seconds_bucket", le="+Inf", **answered) == 1
    assert value(done, "engine_action_answer_seconds_sum", **answered) < 30
    # The run's series say which namespace and definition version ran it.
    assert series(
        done,
        "engine_runs_started_total",
        org="alpha",
        workflow_type=f"{name}:1",
        namespace=kit.namespace("alpha"),
    )
    assert value(done, "engine_runs_failed_total", org="alpha", definition=name) == 0
    # Nothing of it in the other org.
    for counted in ("engine_runs_started_total", "engine_runs_completed_total"):
        assert series(done, counted, org="beta") == 0
    # The gRPC calls, by method, code and org.
    assert value(done, "engine_grpc_requests_total", method=START, code="OK", org="alpha") == 1
    submit = "/engine.api.v1.WorkflowService/SubmitResult"
    assert value(done, "engine_grpc_requests_total", method=submit, code="OK", org="alpha") == 1
    assert value(done, "engine_grpc_request_seconds_count", method=START, org="alpha") == 1
    # The Temporal SDK's own metrics come through the same buffer.
    assert value(done, "temporal_workflow_completed_total", namespace=kit.namespace("alpha")) >= 1
    assert any(n.startswith("temporal_") and "poll" in n for n, _ in done)


async def test_a_refused_call_is_counted_with_its_code(served: Served) -> None:
    workflows = workflow_service_pb2_grpc.WorkflowServiceStub(served.kit.channel())
    request = workflows_pb.StartWorkflowRequest(definition_name="nothing")

    anonymous = {"method": START, "code": "UNAUTHENTICATED", "org": ""}
    before = value(await served.scrape(), "engine_grpc_requests_total", **anonymous)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await workflows.StartWorkflow(request)  # no token
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await workflows.StartWorkflow(request, metadata=served.kit.auth("beta"))

    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    samples = await served.scrape()
    assert value(samples, "engine_grpc_requests_total", **anonymous) == before + 1
    beta = {"method": START, "code": "NOT_FOUND", "org": "beta"}
    assert value(samples, "engine_grpc_requests_total", **beta) == 1


async def test_gateway_requests_are_counted_by_route_template_and_status(served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.http.url) as client:
        document = await client.get("/openapi.json")
        listed = await client.get(
            "/v1/definitions", headers={"Authorization": f"Bearer {served.kit.token('alpha')}"}
        )
        unknown = await client.get("/v1/workflows/nope-123")  # no token: 401

    assert (document.status_code, listed.status_code, unknown.status_code) == (200, 200, 401)
    samples = await served.scrape()
    assert value(samples, "engine_http_requests_total", route="/openapi.json", status="200") == 1
    assert value(samples, "engine_http_requests_total", route="/v1/definitions", method="GET") == 1
    assert (
        value(
            samples, "engine_http_requests_total", route="/v1/workflows/{workflow_id}", status="401"
        )
        == 1
    )


async def test_the_endpoint_answers_only_metrics(served: Served) -> None:
    async with httpx.AsyncClient() as client:
        other = await client.get(served.endpoint.url.replace("/metrics", "/other"))
        posted = await client.post(served.endpoint.url)

    assert (other.status_code, posted.status_code) == (404, 405)


async def test_the_dashboard_charts_the_series_the_engine_exposes(served: Served) -> None:
    kit = served.kit
    workflows = workflow_service_pb2_grpc.WorkflowServiceStub(kit.channel())
    name = unique("metrics-end")
    # One run fails (its prompt times out), one is cancelled.
    await workflows.StartWorkflow(
        workflows_pb.StartWorkflowRequest(definition_yaml=ask_yaml(name, timeout="1s")),
        metadata=kit.auth("beta"),
    )
    cancelled = await workflows.StartWorkflow(
        workflows_pb.StartWorkflowRequest(definition_yaml=ask_yaml(name)),
        metadata=kit.auth("beta"),
    )
    await workflows.CancelWorkflow(
        workflows_pb.CancelWorkflowRequest(workflow_id=cancelled.workflow_id, reason="enough"),
        metadata=kit.auth("beta"),
    )
    samples = await served.until(
        lambda s: (
            value(s, "engine_runs_failed_total", org="beta", definition=name) == 1
            and value(s, "engine_runs_cancelled_total", org="beta", definition=name) == 1
        ),
        "beta's runs failed and cancelled",
    )
    assert value(samples, "engine_runs_completed_total", org="beta", definition=name) == 0

    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["org"]["includeAll"] and variables["org"]["multi"]
    exprs = [
        target["expr"]
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]
    assert all(
        panel["datasource"]["uid"] == "${datasource}"
        for panel in dashboard["panels"]
        if panel["type"] != "row"
    )
    charted = {name for expr in exprs for name in re.findall(r"\bengine_[a-z_]+", expr)}
    exposed = {sample_name for sample_name, _ in samples}
    assert charted <= exposed, f"charted but not exposed: {sorted(charted - exposed)}"
    assert {
        "engine_runs_started_total",
        "engine_actions_waiting",
        "engine_action_answer_seconds_bucket",
        "engine_grpc_requests_total",
        "engine_http_requests_total",
    } <= charted
    assert any("temporal_workflow_task_schedule_to_start_latency_bucket" in e for e in exprs)
    # Every panel of run and action series can be narrowed to the chosen orgs.
    assert all('org=~"$org"' in e for e in exprs if "engine_runs" in e or "engine_action" in e)
