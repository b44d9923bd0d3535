"""Traces and run-tagged logs, end to end: a gRPC call, the run, its executor, its result.

A real stack (control plane and worker pool) on the session's Temporal, traced into an
in-memory exporter on a tracer provider of the test's own (OpenTelemetry's global provider is
left alone), and an executor of ``engine.executor`` that claims and completes a shell action.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx2
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from engine.api.v1 import workflow_service_pb2 as workflows_pb
from engine.api.v1 import workflow_service_pb2_grpc
from engine.cli import enginectl_main
from engine.config import ClientSettings
from engine.executor import Executor
from engine.gateway import HttpApiServer
from engine.identity import TokenVerifier, issue_token
from engine.server import _app as server_app
from engine.server._tracing import TracingInterceptor as ServerTracing
from engine.telemetry.logs import JsonFormatter, TextFormatter
from engine.telemetry.tracing import current_trace, setup_tracing, tracing_settings
from engine.tenancy import ClientPool, Endpoint, PrefixResolver
from tests.helpers.devserver import DevServer
from tests.server.harness import SECRET, ServingStack, unique
from tests.tenancy.orgkit import TASK_QUEUE, eventually, unique_prefix, worker_options

ORG = "traced"


def shell_yaml(name: str) -> str:
    return f"""\
name: {name}
version: 1
steps:
  - {{id: build, type: shell, command: "make build", output_to: built}}
  - {{id: done, type: return, value: "${{{{ state.built.stdout }}}}"}}
"""


@dataclass
class Traced:
    """A traced, serving stack, and what its spans were exported to."""

    stack: ServingStack
    provider: TracerProvider
    exporter: InMemorySpanExporter

    def token(self) -> str:
        return issue_token(SECRET, ORG, ttl_seconds=600)

    def spans(self) -> list[ReadableSpan]:
        self.provider.force_flush()
        return list(self.exporter.get_finished_spans())


@pytest.fixture(scope="module")
async def traced(temporal_server: DevServer) -> AsyncIterator[Traced]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    resolver = PrefixResolver(Endpoint(temporal_server.address), unique_prefix("otel"))
    stack = ServingStack(
        resolver,
        task_queue=TASK_QUEUE,
        workers=worker_options(),
        refresh_interval=None,
        tracer_provider=provider,
    )
    try:
        await stack.start()
        await stack.provisioner.provision(ORG)
        stack.plane = stack.control_plane(TokenVerifier(SECRET), address="127.0.0.1:0")
        await stack.plane.start()
        yield Traced(stack, provider, exporter)
    finally:
        await stack.close()
        provider.shutdown()


async def _register(traced: Traced, name: str) -> None:
    org = traced.stack.org(ORG)

    async def register() -> Any:
        return await traced.stack.registry.register(org, shell_yaml(name))

    await eventually(register, lambda _: True, what="registering a definition")


async def _run_to_completion(
    traced: Traced, name: str, metadata: tuple[tuple[str, str], ...] = ()
) -> str:
    """Start a run over gRPC, let an executor claim and complete its shell action, wait for
    its end; returns the workflow id."""
    async with grpc.aio.insecure_channel(traced.stack.address) as channel:
        stub = workflow_service_pb2_grpc.WorkflowServiceStub(channel)
        auth = (("authorization", f"Bearer {traced.token()}"), *metadata)
        started = await stub.StartWorkflow(
            workflows_pb.StartWorkflowRequest(definition_name=name), metadata=auth
        )
        settings = ClientSettings(address=traced.stack.address, token=traced.token())
        async with Executor(settings, tracer_provider=traced.provider) as executor:
            claimed = await executor.claim("shell", wait=20)
            assert claimed is not None, "no shell action came"
            assert claimed.action["workflow_id"] == started.workflow_id
            assert claimed.action["trace"]["traceparent"].startswith("00-")
            await claimed.complete({"exit_code": 0, "stdout": "built", "stderr": ""})
        org = traced.stack.org(ORG)
        await eventually(
            lambda: traced.stack.dispatcher.status(org, started.workflow_id),
            lambda status: status["status"] == "completed",
            what="the run's completion",
        )
        return started.workflow_id


def _one(spans: list[ReadableSpan], name: str, **attributes: Any) -> ReadableSpan:
    found = [
        span
        for span in spans
        if span.name == name
        and all((span.attributes or {}).get(k) == v for k, v in attributes.items())
    ]
    assert len(found) == 1, f"{len(found)} spans named {name!r} {attributes}: " + ", ".join(
        sorted({s.name for s in spans})
    )
    return found[0]


def _parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_one_trace_from_the_grpc_call_through_the_run_to_the_executors_result(
    traced: Traced,
) -> None:
    name = unique("traced")
    await _register(traced, name)
    # The caller's own span: the control plane continues its trace (W3C traceparent).
    caller = traced.provider.get_tracer("test").start_span("caller")
    carrier = current_trace(trace.set_span_in_context(caller))
    assert carrier is not None
    workflow_id = await _run_to_completion(traced, name, tuple(carrier.items()))
    caller.end()

    spans = traced.spans()
    trace_id = caller.get_span_context().trace_id
    start = _one(spans, "/engine.api.v1.WorkflowService/StartWorkflow")
    client = _one(spans, f"StartWorkflow:{name}:1", temporalWorkflowID=workflow_id)
    run = _one(spans, f"RunWorkflow:{name}:1", temporalWorkflowID=workflow_id)
    offer = _one(spans, "StartActivity:engine.action", temporalWorkflowID=workflow_id)
    perform = _one(spans, "PerformAction:shell", **{"engine.workflow_id": workflow_id})
    complete = _one(spans, "/engine.api.v1.ExecutorService/CompleteAction")
    chain = [start, client, run, offer, perform, complete]
    assert {span.context.trace_id for span in chain} == {trace_id}, [s.name for s in chain]

    # Parents: the caller -> the gRPC call -> Temporal's start -> the run and its offer of
    # the action -> the executor's span -> the control plane's span of its result.
    assert _parent_id(start) == caller.get_span_context().span_id
    assert _parent_id(client) == start.context.span_id
    assert _parent_id(run) == client.context.span_id
    assert _parent_id(offer) == client.context.span_id
    assert _parent_id(perform) == offer.context.span_id
    assert _parent_id(complete) == perform.context.span_id

    assert start.kind is SpanKind.SERVER and complete.kind is SpanKind.SERVER
    assert perform.kind is SpanKind.CONSUMER
    assert dict(start.attributes or {}) == {
        "rpc.system": "grpc",
        "rpc.service": "engine.api.v1.WorkflowService",
        "rpc.method": "StartWorkflow",
        "rpc.grpc.status_code": 0,
        "org": ORG,
    }
    assert (perform.attributes or {})["engine.step_id"] == "build"
    assert (complete.attributes or {})["org"] == ORG


async def test_an_answer_by_id_from_enginectl_joins_the_runs_trace(traced: Traced) -> None:
    """A person's answer (``enginectl submit``, by run and step) carries the trace context the
    action shows, so the control plane's span of SubmitResult is in the run's trace."""
    name = unique("asked")
    org = traced.stack.org(ORG)

    async def register() -> Any:
        return await traced.stack.registry.register(
            org,
            f"name: {name}\nversion: 1\nsteps:\n"
            "  - {id: approve, type: prompt, prompt_type: confirm, message: Ship it?}\n",
        )

    await eventually(register, lambda _: True, what="registering a definition")
    caller = traced.provider.get_tracer("test").start_span("person's tool")
    carrier = current_trace(trace.set_span_in_context(caller))
    assert carrier is not None
    async with grpc.aio.insecure_channel(traced.stack.address) as channel:
        stub = workflow_service_pb2_grpc.WorkflowServiceStub(channel)
        started = await stub.StartWorkflow(
            workflows_pb.StartWorkflowRequest(definition_name=name, wait_for_suspension=True),
            metadata=(("authorization", f"Bearer {traced.token()}"), *carrier.items()),
        )
    caller.end()
    [action] = started.pending_actions
    assert action.trace["traceparent"].split("-")[1] == format(
        caller.get_span_context().trace_id, "032x"
    )
    argv = ["submit", started.workflow_id, "approve", "true"]
    argv += ["--address", traced.stack.address, "--token", traced.token()]
    assert await asyncio.to_thread(enginectl_main, argv) == 0
    await eventually(
        lambda: traced.stack.dispatcher.status(org, started.workflow_id),
        lambda status: status["status"] == "completed",
        what="the run's completion",
    )
    spans = traced.spans()
    start = _one(
        [s for s in spans if s.context.trace_id == caller.get_span_context().trace_id],
        "/engine.api.v1.WorkflowService/StartWorkflow",
    )
    answer = _one(
        [s for s in spans if s.context.trace_id == caller.get_span_context().trace_id],
        "/engine.api.v1.WorkflowService/SubmitResult",
    )
    assert _parent_id(answer) == start.context.span_id


async def test_a_refused_call_has_a_span_with_its_status(traced: Traced) -> None:
    async with grpc.aio.insecure_channel(traced.stack.address) as channel:
        stub = workflow_service_pb2_grpc.WorkflowServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetWorkflow(workflows_pb.GetWorkflowRequest(workflow_id="nope"))
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED
    span = [s for s in traced.spans() if s.name == "/engine.api.v1.WorkflowService/GetWorkflow"]
    assert span and span[-1].parent is None  # no traceparent: a trace of its own
    assert (span[-1].attributes or {})["rpc.grpc.status_code"] == 16
    assert span[-1].status.status_code is trace.StatusCode.ERROR


async def test_the_http_gateway_forwards_the_callers_trace_context(traced: Traced) -> None:
    caller = traced.provider.get_tracer("test").start_span("http caller")
    carrier = current_trace(trace.set_span_in_context(caller))
    assert carrier is not None
    api = HttpApiServer(traced.stack.address, host="127.0.0.1", port=0)
    await api.start()
    try:
        headers = {"Authorization": f"Bearer {traced.token()}", **carrier}
        async with httpx2.AsyncClient(base_url=api.url, headers=headers, timeout=60) as http:
            listed = await http.get("/v1/workflows")
        assert listed.status_code == 200, listed.text
    finally:
        await api.stop()
        caller.end()
    span = _one(
        [s for s in traced.spans() if s.context.trace_id == caller.get_span_context().trace_id],
        "/engine.api.v1.WorkflowService/ListWorkflows",
    )
    assert _parent_id(span) == caller.get_span_context().span_id


@pytest.fixture
def run_logs() -> Iterator[io.StringIO]:
    """Every log line of the engine and of its runs' interpreter (DEBUG), as JSON."""
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    loggers = [logging.getLogger(name) for name in ("temporalio.workflow", "engine")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
        logger.addHandler(handler)
    try:
        yield lines
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


async def test_a_runs_log_lines_carry_its_org_run_step_and_trace(
    traced: Traced, run_logs: io.StringIO
) -> None:
    name = unique("logged")
    await _register(traced, name)
    workflow_id = await _run_to_completion(traced, name)
    await asyncio.sleep(0)
    entries = [json.loads(line) for line in run_logs.getvalue().splitlines()]
    started = [
        entry
        for entry in entries
        if entry.get("workflow_id") == workflow_id and entry.get("step") == "build"
    ]
    assert started, entries[-10:]
    entry = started[0]
    assert entry["org"] == ORG
    assert entry["logger"] == "temporalio.workflow"
    assert entry["run_id"]
    spans = traced.spans()
    start = [
        s
        for s in spans
        if s.name == f"StartWorkflow:{name}:1"
        and (s.attributes or {}).get("temporalWorkflowID") == workflow_id
    ]
    assert entry["trace_id"] == format(start[0].context.trace_id, "032x")


def test_the_text_format_appends_the_run_fields() -> None:
    record = logging.LogRecord("engine.x", logging.INFO, __file__, 1, "hello", (), None)
    record.temporal_workflow = {"workflow_id": "w-1", "run_id": "r-1"}
    record.step = "build"
    record.org = "acme"
    line = TextFormatter().format(record)
    assert line.endswith("hello org=acme workflow_id=w-1 run_id=r-1 step=build")


async def test_with_tracing_off_nothing_is_installed(
    temporal_server: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert tracing_settings({}) is None
    assert tracing_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://x:4317"}) is not None
    assert tracing_settings({"OTEL_TRACES_EXPORTER": "none"}) is None
    assert tracing_settings({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}) is None
    before = trace.get_tracer_provider()
    assert setup_tracing({}) is None
    assert trace.get_tracer_provider() is before
    assert ClientPool().interceptors == []

    built: list[Any] = []
    server = grpc.aio.server

    def recording(*args: Any, **kwargs: Any) -> Any:
        built.append(kwargs.get("interceptors"))
        return server(*args, **kwargs)

    monkeypatch.setattr(server_app.grpc.aio, "server", recording)
    resolver = PrefixResolver(Endpoint(temporal_server.address), unique_prefix("otel-off"))
    stack = ServingStack(resolver, task_queue=TASK_QUEUE, workers=None)
    plane = stack.control_plane(TokenVerifier(SECRET), address="127.0.0.1:0")
    try:
        assert stack.clients.interceptors == []
        (interceptors,) = built
        assert not any(isinstance(i, ServerTracing) for i in interceptors)
        client = await stack.clients.client(resolver.resolve(ORG))
        assert list(client.config()["interceptors"]) == []
    finally:
        await plane.server.stop(None)
        await stack.close()
