"""The gRPC control plane against the dispatcher it wraps and the raw Temporal SDK, in one run.

Run:  .venv/bin/pytest tests/benchmarks/test_control_plane_bench.py --benchmark-only -s
Under ``--benchmark-disable`` (``make test``) every way of every operation runs once (a smoke
test that still checks each answer) and the report skips.

The stack is the engine's own, as ``engined serve`` builds it (see ``tests/tenancy/orgkit.py``):
a :class:`PrefixResolver` with a prefix of this module's own, a worker pool, and the stack's
control plane on a free port, started in this process and called over a real ``grpc.aio``
channel with a bearer token.

Each operation is done three ways in the same rounds:

1. gRPC: the generated stub over the channel (client serialization, HTTP/2 over loopback, the
   error and auth interceptors, JWT verification, the servicer's conversions);
2. dispatcher: ``TemporalDispatcher`` called directly, as the servicer calls it;
3. raw: the Temporal SDK doing the nearest equivalent with nothing of the engine around it:
   ``client.start_workflow`` of the same workflow type with the input built once by
   ``WorkflowFactory().prepare``, ``handle.query("get_status")``, and
   ``handle.execute_update("submit_result", ...)``.

Operations: StartWorkflow (by registered name and explicit version, so both the servicer and
the dispatcher find the definition in the registry's cache), GetWorkflow of a run waiting on a
prompt, and SubmitResult that answers the prompt and gets the next one back. The definition's
first step is a prompt; the runs an operation needs (a waiting run for GetWorkflow, one per way
for SubmitResult) are prepared fresh in each round, untimed.

Then the two ways a client gets a new run's first action: StartWorkflow with
``wait_for_suspension`` (update-with-start, one round trip) against StartWorkflow followed by
GetWorkflow polled every millisecond until the action shows, with ``start_and_wait`` of the
dispatcher and both forms on the raw SDK (``execute_update_with_start_workflow`` of
``await_suspension``; ``start_workflow`` then ``query`` polling) beside them.

Interleaving: pytest-benchmark times the gRPC way; the other ways are timed with
``perf_counter`` around the very same cross-thread call, in the ``setup`` (before it) or the
``teardown`` (after it) of the same round. The order of the ways changes every round (every
way in every position equally often, each pair in both orders) because the first call of a
back-to-back series is measurably slower. Every started run is run by the worker pool in this
process: before each timed call the harness waits (untimed) until the runs started so far have
reached their prompt, so the worker never competes with a timed call for the CPU.
pytest-benchmark is synchronous, so it runs in a helper thread and each call is a coroutine
handed to the session event loop; that hop (reported) is charged to every way.

The figure that matters is what gRPC adds over the dispatcher: reported as the difference of
the medians and as the median of the per-round differences (the two calls of a round ran back
to back, so that one is far less noisy; it is the one the gate checks). Every answer of every
call is asserted; the targets (``targets.toml``) are checked by ``scripts/bench_gate.py``.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from engine.api.v1 import (
    definition_service_pb2,
    definition_service_pb2_grpc,
    resources_pb2,
    workflow_service_pb2,
    workflow_service_pb2_grpc,
)
from engine.context import OrgContext
from engine.definition import WorkflowDefinition
from engine.dispatcher import DefinitionRef, DefinitionRegistry, StartedRun, TemporalDispatcher
from engine.identity import TokenVerifier, issue_token
from engine.server import ControlPlane
from engine.tenancy import Endpoint, PrefixResolver
from engine.workflow import RunStart, WorkflowFactory
from tests.benchmarks import _gate as gate
from tests.helpers.devserver import DevServer
from tests.helpers.runs import unique_id
from tests.tenancy.orgkit import TASK_QUEUE, Tenancy, eventually, open_tenancy, unique_prefix

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TIMEOUT = 60.0
PAUSE = 0.05  # seconds of quiet before a timed call that schedules a workflow task
POLL_INTERVAL = 0.001  # seconds between two polls of a run that has not suspended yet
SECRET = "bench-control-plane-secret-of-32-bytes-or-more"
ORG_ID = "bench"

# --------------------------------------------------------------------------- definition

NAME = "bench-control-plane"
VERSION = 1
WORKFLOW_TYPE = f"{NAME}:{VERSION}"
YAML = f"""
name: {NAME}
version: {VERSION}
inputs:
  who: {{type: string, default: world}}
steps:
  - {{id: ask1, type: prompt, prompt_type: confirm, message: "Greet ${{{{ inputs.who }}}}?",
     output_to: first}}
  - {{id: ask2, type: prompt, prompt_type: confirm, message: "Sure?", output_to: second}}
  - {{id: done, type: return, value: "${{{{ state }}}}"}}
"""
INPUTS = {"who": "bench"}
MESSAGE = "Greet bench?"

# --------------------------------------------------------------------------- report

GRPC, DISPATCHER, RAW = "gRPC", "dispatcher", "raw SDK"


@dataclass
class ThreeWays:
    """The medians of one operation done three ways, and the per-round gRPC - dispatcher."""

    grpc: float
    dispatcher: float
    raw: float
    paired_added: float
    rounds: int


@dataclass
class FirstAction:
    """One way of getting a new run's first action."""

    median: float
    polls: float | None = None  # mean calls of GetWorkflow / query per start, for the polling ways


THREE_WAYS: dict[str, ThreeWays] = {}
FIRST_ACTION: dict[str, FirstAction] = {}
INFO: dict[str, str] = {}
ORDER = ("StartWorkflow", "GetWorkflow", "SubmitResult")
FIRST_ORDER = (
    "gRPC StartWorkflow(wait_for_suspension)",
    "gRPC StartWorkflow + poll GetWorkflow",
    "dispatcher.start_and_wait",
    "raw execute_update_with_start",
    "raw start_workflow + poll query",
)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.3f} ms"


def _rounds(benchmark: Any, wanted: int) -> int:
    return 1 if benchmark.disabled else wanted


def _warmup(benchmark: Any, wanted: int) -> int:
    return 0 if benchmark.disabled else wanted


def _pause(benchmark: Any) -> float:
    """Quiet before each timed call that makes the worker take a task (see ``_interleaved``)."""
    return 0.0 if benchmark.disabled else PAUSE


# --------------------------------------------------------------------------- harness


def _caller(loop: asyncio.AbstractEventLoop) -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """Run a coroutine on ``loop`` from pytest-benchmark's helper thread and wait for it."""

    def call(coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(TIMEOUT)

    return call


async def _hop_cost(rounds: int = 200) -> float:
    """Median cost of handing a no-op coroutine to the loop and waiting for it."""
    call = _caller(asyncio.get_running_loop())

    async def nothing() -> None:
        return None

    def measure() -> list[float]:
        times = []
        for _ in range(rounds):
            began = time.perf_counter()
            call(nothing())
            times.append(time.perf_counter() - began)
        return times

    return statistics.median(await asyncio.to_thread(measure))


async def _health_round_trip(channel: grpc.aio.Channel, rounds: int = 200) -> float:
    """Median Health/Check over the channel: gRPC's own floor (no token, no Temporal call)."""
    health = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest()
    times = []
    for index in range(rounds + 20):
        began = time.perf_counter()
        response = await health.Check(request)
        if index >= 20:  # warm-up
            times.append(time.perf_counter() - began)
        assert response.status == health_pb2.HealthCheckResponse.SERVING
    return statistics.median(times)


@dataclass
class Way:
    """One way of doing an operation.

    Attributes:
        label: Its name in the report.
        op: The timed call; takes what ``prepare`` returned (or the round's shared value).
        prepare: Untimed, just before ``op``: takes the round's shared value.
        settle: Untimed, before the next call of the round (or of the next round): takes what
            ``op`` returned; waits until the worker is done with it and checks it.
    """

    label: str
    op: Callable[[Any], Coroutine[Any, Any, Any]]
    prepare: Callable[[Any], Coroutine[Any, Any, Any]] | None = None
    settle: Callable[[Any], Coroutine[Any, Any, Any]] | None = None


@dataclass
class Outcome:
    """What every way returned (warm-up included) and took (measured rounds only)."""

    results: dict[str, list[Any]]
    times: dict[str, list[float]]


def _orders(labels: Sequence[str]) -> list[tuple[str, ...]]:
    """The orders of the ways, one round each in turn.

    Rotations of one order and of its reverse: every way is in every position equally often
    and every two neighbours meet in both orders. The first order puts ``labels[0]`` (the way
    pytest-benchmark times) last, so that a single round (benchmarks disabled, where
    pytest-benchmark never calls ``teardown``) still runs every way.
    """
    base = (*reversed(labels[1:]), labels[0])
    backwards = base[::-1]
    count = len(base)
    return [base[i:] + base[:i] for i in range(count)] + [
        backwards[i:] + backwards[:i] for i in range(1, count + 1)
    ]


async def _interleaved(
    benchmark: Any,
    ways: Sequence[Way],
    *,
    rounds: int,
    warmup: int,
    round_setup: Callable[[], Coroutine[Any, Any, Any]] | None = None,
    pause: float = 0.0,
) -> Outcome:
    """Do every way once per round, in the round's order; pytest-benchmark times ``ways[0]``.

    ``round_setup`` (untimed) runs first in each round; its value goes to every way. Each timed
    call follows ``pause`` seconds of quiet: on the dev server a workflow task scheduled within
    about 35 ms of the previous one waits that long for a poller, whichever way scheduled it.
    """
    call = _caller(asyncio.get_running_loop())
    timed = ways[0]
    by_label = {way.label: way for way in ways}
    orders = _orders([way.label for way in ways])
    assert not rounds % len(orders) or benchmark.disabled, "rounds: a multiple of the orders"
    results: dict[str, list[Any]] = {way.label: [] for way in ways}
    times: dict[str, list[float]] = {way.label: [] for way in ways}
    settled = dict.fromkeys(by_label, 0)
    current: dict[str, Any] = {"round": -1, "shared": None}

    def settle() -> None:
        for way in ways:
            fresh = results[way.label][settled[way.label] :]
            settled[way.label] += len(fresh)
            if way.settle is not None:
                for outcome in fresh:
                    call(way.settle(outcome))

    def prepared(way: Way) -> Any:
        settle()
        return call(way.prepare(current["shared"])) if way.prepare else current["shared"]

    def run(way: Way) -> None:
        argument = prepared(way)
        time.sleep(pause)
        began = time.perf_counter()
        outcome = call(way.op(argument))
        times[way.label].append(time.perf_counter() - began)
        results[way.label].append(outcome)

    def order() -> tuple[str, ...]:
        index: int = current["round"]
        return orders[index % len(orders)]

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        current["round"] += 1
        settle()
        current["shared"] = call(round_setup()) if round_setup else None
        ways_now = order()
        for label in ways_now[: ways_now.index(timed.label)]:
            run(by_label[label])
        argument = prepared(timed)
        time.sleep(pause)
        return (argument,), {}

    def target(argument: Any) -> Any:
        outcome = call(timed.op(argument))
        results[timed.label].append(outcome)
        return outcome

    def teardown(_: Any) -> None:
        ways_now = order()
        for label in ways_now[ways_now.index(timed.label) + 1 :]:
            run(by_label[label])

    await asyncio.to_thread(
        benchmark.pedantic,
        target,
        setup=setup,
        teardown=teardown,
        rounds=rounds,
        warmup_rounds=warmup,
    )
    await asyncio.to_thread(settle)
    for way in ways:
        assert len(results[way.label]) == current["round"] + 1, way.label
        del times[way.label][:warmup]
    stats = benchmark.stats
    times[timed.label] = list(stats.stats.data) if stats is not None else []
    return Outcome(results, times)


def _record_three(benchmark: Any, operation: str, outcome: Outcome) -> None:
    """Keep the medians for the report (and in the benchmark's JSON)."""
    if benchmark.disabled or benchmark.stats is None:
        return
    grpc_times, dispatcher_times, raw_times = (
        outcome.times[GRPC],
        outcome.times[DISPATCHER],
        outcome.times[RAW],
    )
    row = ThreeWays(
        grpc=statistics.median(grpc_times),
        dispatcher=statistics.median(dispatcher_times),
        raw=statistics.median(raw_times),
        paired_added=gate.paired_added(grpc_times, dispatcher_times),
        rounds=len(grpc_times),
    )
    benchmark.extra_info.update(
        dispatcher_median_s=row.dispatcher,
        raw_median_s=row.raw,
        added_median_s=row.grpc - row.dispatcher,
        added_paired_median_s=row.paired_added,
        ratio_to_raw=row.grpc / row.raw,
        dispatcher_ratio_to_raw=row.dispatcher / row.raw,
        rounds_each=row.rounds,
    )
    THREE_WAYS[operation] = row
    gate.record(
        benchmark,
        f"gRPC {operation}",
        grpc_times,
        raw=raw_times,
        added=row.paired_added,
        note="adds = median of (gRPC - dispatcher) per round; ratio: gRPC / raw SDK",
    )


# --------------------------------------------------------------------------- fixtures


@dataclass
class Plane:
    """A started control plane, a channel to it, and the dispatcher and client it uses."""

    tenancy: Tenancy
    registry: DefinitionRegistry
    server: ControlPlane
    channel: grpc.aio.Channel
    stub: workflow_service_pb2_grpc.WorkflowServiceStub
    definitions: definition_service_pb2_grpc.DefinitionServiceStub
    metadata: tuple[tuple[str, str], ...]
    org: OrgContext
    client: Client
    definition: WorkflowDefinition
    prepared: RunStart  # the raw side's start payload, built once

    @property
    def dispatcher(self) -> TemporalDispatcher:
        return self.tenancy.dispatcher


@pytest.fixture(scope="module")
async def plane(temporal_server: DevServer) -> AsyncIterator[Plane]:
    """One org under a prefix of this module's own, served by a worker pool and a server."""
    resolver = PrefixResolver(Endpoint(temporal_server.address), unique_prefix("cpb"))
    tenancy = await open_tenancy(resolver, orgs=(ORG_ID,))
    channel: grpc.aio.Channel | None = None
    server: ControlPlane | None = None
    try:
        dispatcher = tenancy.dispatcher
        registry = tenancy.registry
        org = tenancy.org(ORG_ID)
        # A new namespace can answer NOT_FOUND for a moment; registering again is a no-op.
        registered, _, _ = await eventually(
            lambda: registry.register(org, YAML), lambda _: True, what="registering"
        )
        assert registered.workflow_type == WORKFLOW_TYPE
        definition = await registry.get(org, NAME, VERSION)
        server = tenancy.control_plane(TokenVerifier(SECRET), address="127.0.0.1:0")
        assert server.port > 0
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        token = issue_token(SECRET, ORG_ID, ttl_seconds=3600)
        yield Plane(
            tenancy=tenancy,
            registry=registry,
            server=server,
            channel=channel,
            stub=workflow_service_pb2_grpc.WorkflowServiceStub(channel),
            definitions=definition_service_pb2_grpc.DefinitionServiceStub(channel),
            metadata=(("authorization", f"Bearer {token}"),),
            org=org,
            client=await dispatcher.client(org),
            definition=definition,
            prepared=WorkflowFactory(TASK_QUEUE).prepare(definition, INPUTS, org, "unused"),
        )
    finally:
        if channel is not None:
            await channel.close()
        if server is not None:
            await server.stop(grace=1.0)
        await tenancy.close()


@pytest.fixture
async def cleanup(plane: Plane) -> AsyncIterator[list[str]]:
    """Ids of the runs a test left waiting; terminated after it."""
    workflow_ids: list[str] = []
    yield workflow_ids
    gate = asyncio.Semaphore(64)

    async def terminate(workflow_id: str) -> None:
        async with gate:
            await plane.client.get_workflow_handle(workflow_id).terminate("benchmark done")

    await asyncio.gather(*(terminate(w) for w in set(workflow_ids)), return_exceptions=True)


# --------------------------------------------------------------------------- calls


def _start_request(*, wait: bool = False) -> workflow_service_pb2.StartWorkflowRequest:
    inputs = struct_pb2.Struct()
    inputs.update(INPUTS)
    return workflow_service_pb2.StartWorkflowRequest(
        definition_name=NAME, definition_version=VERSION, inputs=inputs, wait_for_suspension=wait
    )


async def _raw_start(plane: Plane) -> WorkflowHandle[Any, Any]:
    """What ``dispatcher.start`` sends, as a hand-written SDK call (payload prepared once)."""
    start = plane.prepared
    return await plane.client.start_workflow(
        start.workflow_type,
        start.input,
        id=unique_id(NAME),  # the dispatcher makes its ids in the timed call too
        task_queue=start.task_queue,
        search_attributes=start.search_attributes,
        memo=start.memo,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        rpc_timeout=plane.dispatcher.rpc_timeout,
    )


def _waits_at(step_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda status: any(a["step_id"] == step_id for a in status["pending_actions"])


async def _until_waiting(plane: Plane, workflow_id: str, step_id: str = "ask1") -> dict[str, Any]:
    """Untimed: query the run until it waits on ``step_id`` (checks the action's message)."""
    handle = plane.client.get_workflow_handle(workflow_id)
    status: dict[str, Any] = await eventually(
        lambda: handle.query("get_status"),
        _waits_at(step_id),
        timeout=TIMEOUT,
        interval=POLL_INTERVAL,
        what=f"run {workflow_id} waiting on {step_id}",
    )
    if step_id == "ask1":
        assert status["pending_actions"][0]["parameters"]["message"] == MESSAGE
    return status


async def _fresh_waiting_run(plane: Plane, cleanup: list[str]) -> str:
    """Untimed: a new run, waiting on its first prompt."""
    handle = await _raw_start(plane)
    cleanup.append(handle.id)
    await _until_waiting(plane, handle.id)
    return handle.id


def _check_grpc_action(action: resources_pb2.PendingAction, step_id: str = "ask1") -> None:
    assert action.step_id == step_id
    assert action.type == resources_pb2.ACTION_TYPE_PROMPT
    assert action.action_id and action.workflow_id
    if step_id == "ask1":
        assert action.parameters["message"] == MESSAGE


def _check_action(action: dict[str, Any], step_id: str = "ask1") -> None:
    assert action["step_id"] == step_id and action["type"] == "prompt"
    if step_id == "ask1":
        assert action["parameters"]["message"] == MESSAGE


async def _first_event(handle: WorkflowHandle[Any, Any]) -> Any:
    async for event in handle.fetch_history_events():
        return event.workflow_execution_started_event_attributes
    raise AssertionError(f"run {handle.id} has no history")


# --------------------------------------------------------------------------- three ways


@pytest.mark.benchmark(group="control-plane/start")
async def test_start_workflow(benchmark: Any, plane: Plane, cleanup: list[str]) -> None:
    async def grpc_start(_: Any) -> Any:
        return await plane.stub.StartWorkflow(_start_request(), metadata=plane.metadata)

    async def dispatcher_start(_: Any) -> StartedRun:
        return await plane.dispatcher.start(plane.org, DefinitionRef(NAME, VERSION), INPUTS)

    async def raw_start(_: Any) -> WorkflowHandle[Any, Any]:
        return await _raw_start(plane)

    def settle(workflow_id: Callable[[Any], str]) -> Callable[[Any], Coroutine[Any, Any, Any]]:
        async def started(outcome: Any) -> None:
            cleanup.append(workflow_id(outcome))
            await _until_waiting(plane, workflow_id(outcome))

        return started

    outcome = await _interleaved(
        benchmark,
        [
            Way(GRPC, grpc_start, settle=settle(lambda r: r.workflow_id)),
            Way(DISPATCHER, dispatcher_start, settle=settle(lambda r: r.workflow_id)),
            Way(RAW, raw_start, settle=settle(lambda h: h.id)),
        ],
        rounds=_rounds(benchmark, 90),
        warmup=_warmup(benchmark, 6),
    )
    grpc_out, dispatcher_out, raw_out = (outcome.results[w] for w in (GRPC, DISPATCHER, RAW))
    for response in grpc_out:
        assert response.workflow_type == WORKFLOW_TYPE and response.run_id
        assert response.workflow_id.startswith(f"{NAME}-")
        assert response.status == resources_pb2.RUN_STATUS_UNSPECIFIED  # not waited for
        assert not response.pending_actions
    for run in dispatcher_out:
        assert run.workflow_type == WORKFLOW_TYPE and run.run_id
        assert run.workflow_id.startswith(f"{NAME}-")
    assert all(handle.first_execution_run_id for handle in raw_out)
    # The three ways sent the same start: type, queue, input, search attributes and memo.
    client = plane.client
    events = [
        await _first_event(client.get_workflow_handle(grpc_out[-1].workflow_id)),
        await _first_event(client.get_workflow_handle(dispatcher_out[-1].workflow_id)),
        await _first_event(raw_out[-1]),
    ]
    for name in ("workflow_type", "task_queue", "input", "search_attributes", "memo"):
        assert getattr(events[0], name) == getattr(events[1], name) == getattr(events[2], name)
    _record_three(benchmark, "StartWorkflow", outcome)


@pytest.mark.benchmark(group="control-plane/create")
async def test_workflow_creation(benchmark: Any, plane: Plane) -> None:
    """YAML text to a registered, runnable definition: RegisterDefinition of a new version.

    The largest example (deploy-service.yaml), under a new version number each round, so
    every call validates, compiles and stores it (the same content again would be a no-op).
    """
    text = (EXAMPLES / "deploy-service.yaml").read_text(encoding="utf-8")
    assert "\nversion: 3\n" in text
    call = _caller(asyncio.get_running_loop())
    versions = iter(range(1000, 1_000_000))
    responses: list[Any] = []

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        yaml = text.replace("\nversion: 3\n", f"\nversion: {next(versions)}\n")
        return (definition_service_pb2.RegisterDefinitionRequest(yaml=yaml),), {}

    async def grpc_register(request: Any) -> Any:
        return await plane.definitions.RegisterDefinition(request, metadata=plane.metadata)

    def register(request: Any) -> Any:
        response = call(grpc_register(request))
        responses.append(response)
        return response

    await asyncio.to_thread(
        benchmark.pedantic,
        register,
        setup=setup,
        rounds=_rounds(benchmark, 30),
        warmup_rounds=_warmup(benchmark, 2),
    )
    assert responses and all(r.created for r in responses)
    assert all(r.definition.name == "deploy-service" for r in responses)
    # Runnable: the last version registered starts a run.
    last = responses[-1].definition
    started = await plane.dispatcher.start(
        plane.org, DefinitionRef(last.name, last.version), {"service": "api", "git_ref": "main"}
    )
    await plane.client.get_workflow_handle(started.workflow_id).terminate("benchmark done")
    gate.record(benchmark, "workflow creation", gate.engine_times(benchmark))
    if not benchmark.disabled and benchmark.stats is not None:
        INFO["workflow creation (RegisterDefinition of deploy-service.yaml)"] = _ms(
            benchmark.stats.stats.median
        )


@pytest.mark.benchmark(group="control-plane/get")
async def test_get_workflow(benchmark: Any, plane: Plane, cleanup: list[str]) -> None:
    async def waiting_run() -> str:  # one per round, read by all three ways
        return await _fresh_waiting_run(plane, cleanup)

    async def grpc_get(workflow_id: str) -> Any:
        request = workflow_service_pb2.GetWorkflowRequest(workflow_id=workflow_id)
        return await plane.stub.GetWorkflow(request, metadata=plane.metadata)

    async def dispatcher_get(workflow_id: str) -> dict[str, Any]:
        return await plane.dispatcher.status(plane.org, workflow_id)

    async def raw_get(workflow_id: str) -> dict[str, Any]:
        handle = plane.client.get_workflow_handle(workflow_id)
        status: dict[str, Any] = await handle.query(
            "get_status", rpc_timeout=plane.dispatcher.rpc_timeout
        )
        return status

    outcome = await _interleaved(
        benchmark,
        [Way(GRPC, grpc_get), Way(DISPATCHER, dispatcher_get), Way(RAW, raw_get)],
        rounds=_rounds(benchmark, 120),
        warmup=_warmup(benchmark, 6),
        round_setup=waiting_run,
    )
    grpc_out, dispatcher_out, raw_out = (outcome.results[w] for w in (GRPC, DISPATCHER, RAW))
    for response, status, raw_status in zip(grpc_out, dispatcher_out, raw_out, strict=True):
        assert status == raw_status  # the same run, the same query
        assert status["status"] == "waiting" and status["current_step"] == "ask1"
        [action] = status["pending_actions"]
        _check_action(action)
        run = response.workflow
        assert run.workflow_id == status["workflow_id"] and run.workflow_type == WORKFLOW_TYPE
        assert run.org_id == ORG_ID and run.definition_name == NAME
        assert run.status == resources_pb2.RUN_STATUS_WAITING and run.current_step == "ask1"
        [grpc_action] = run.pending_actions
        _check_grpc_action(grpc_action)
        assert grpc_action.action_id == action["action_id"]
    _record_three(benchmark, "GetWorkflow", outcome)
    if not benchmark.disabled:
        floor = await _health_round_trip(plane.channel)
        INFO["gRPC floor: Health/Check round trip (on the loop)"] = _ms(floor)


@pytest.mark.benchmark(group="control-plane/submit")
async def test_submit_result(benchmark: Any, plane: Plane, cleanup: list[str]) -> None:
    async def waiting_run(_: Any) -> str:  # a fresh one for each way
        return await _fresh_waiting_run(plane, cleanup)

    async def grpc_submit(workflow_id: str) -> Any:
        request = workflow_service_pb2.SubmitResultRequest(
            workflow_id=workflow_id, step_id="ask1", result=struct_pb2.Value(bool_value=True)
        )
        return await plane.stub.SubmitResult(request, metadata=plane.metadata)

    async def dispatcher_submit(workflow_id: str) -> dict[str, Any]:
        return await plane.dispatcher.submit_result(
            plane.org, workflow_id, step_id="ask1", result=True
        )

    async def raw_submit(workflow_id: str) -> dict[str, Any]:
        handle = plane.client.get_workflow_handle(workflow_id)
        advance: dict[str, Any] = await handle.execute_update(
            "submit_result",
            {"step_id": "ask1", "result": True},
            rpc_timeout=plane.dispatcher.rpc_timeout,
        )
        return advance

    outcome = await _interleaved(
        benchmark,
        [
            Way(GRPC, grpc_submit, prepare=waiting_run),
            Way(DISPATCHER, dispatcher_submit, prepare=waiting_run),
            Way(RAW, raw_submit, prepare=waiting_run),
        ],
        rounds=_rounds(benchmark, 90),
        warmup=_warmup(benchmark, 6),
        pause=_pause(benchmark),
    )
    for response in outcome.results[GRPC]:
        assert response.status == resources_pb2.RUN_STATUS_WAITING
        assert response.current_step == "ask2" and not response.error
        [action] = response.pending_actions
        _check_grpc_action(action, "ask2")
    for advance in outcome.results[DISPATCHER] + outcome.results[RAW]:
        assert advance["status"] == "waiting" and advance["current_step"] == "ask2"
        [action] = advance["pending_actions"]
        _check_action(action, "ask2")
    _record_three(benchmark, "SubmitResult", outcome)


# --------------------------------------------------------------------------- first action


@dataclass
class Polled:
    """A start followed by polling until the first action showed."""

    workflow_id: str
    status: Any  # the last GetWorkflow response, or get_status dict
    polls: int
    errors: Counter[str] = field(default_factory=Counter)


@pytest.mark.benchmark(group="control-plane/first-action")
async def test_first_action(benchmark: Any, plane: Plane, cleanup: list[str]) -> None:
    stub, metadata = plane.stub, plane.metadata

    async def grpc_wait(_: Any) -> Any:
        return await stub.StartWorkflow(_start_request(wait=True), metadata=metadata)

    async def grpc_poll(_: Any) -> Polled:
        started = await stub.StartWorkflow(_start_request(), metadata=metadata)
        request = workflow_service_pb2.GetWorkflowRequest(workflow_id=started.workflow_id)
        polled = Polled(started.workflow_id, None, 0)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            polled.polls += 1
            try:
                polled.status = await stub.GetWorkflow(request, metadata=metadata)
            except grpc.aio.AioRpcError as error:  # before the run's first workflow task
                polled.errors[error.code().name] += 1
            else:
                if any(a.step_id == "ask1" for a in polled.status.workflow.pending_actions):
                    return polled
            await asyncio.sleep(POLL_INTERVAL)
        raise AssertionError(f"no first action in {started.workflow_id}: {polled}")

    async def dispatcher_wait(_: Any) -> tuple[StartedRun, dict[str, Any]]:
        return await plane.dispatcher.start_and_wait(
            plane.org, DefinitionRef(NAME, VERSION), INPUTS
        )

    async def raw_wait(_: Any) -> tuple[str, str, dict[str, Any]]:
        start = plane.prepared
        operation: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
            start.workflow_type,
            start.input,
            id=unique_id(NAME),
            task_queue=start.task_queue,
            search_attributes=start.search_attributes,
            memo=start.memo,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
        advance: dict[str, Any] = await plane.client.execute_update_with_start_workflow(
            "await_suspension",
            start_workflow_operation=operation,
            rpc_timeout=plane.dispatcher.rpc_timeout,
        )
        handle = await operation.workflow_handle()
        return handle.id, handle.first_execution_run_id or "", advance

    async def raw_poll(_: Any) -> Polled:
        handle = await _raw_start(plane)
        polled = Polled(handle.id, None, 0)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            polled.polls += 1
            try:
                polled.status = await handle.query("get_status")
            except Exception as error:  # before the run's first workflow task
                polled.errors[type(error).__name__] += 1
            else:
                if _waits_at("ask1")(polled.status):
                    return polled
            await asyncio.sleep(POLL_INTERVAL)
        raise AssertionError(f"no first action in {handle.id}: {polled}")

    def settle(workflow_id: Callable[[Any], str]) -> Callable[[Any], Coroutine[Any, Any, Any]]:
        async def suspended(outcome: Any) -> None:
            cleanup.append(workflow_id(outcome))
            await _until_waiting(plane, workflow_id(outcome))

        return suspended

    labels = FIRST_ORDER
    rounds = _rounds(benchmark, 50)
    outcome = await _interleaved(
        benchmark,
        [
            Way(labels[0], grpc_wait, settle=settle(lambda r: r.workflow_id)),
            Way(labels[1], grpc_poll, settle=settle(lambda p: p.workflow_id)),
            Way(labels[2], dispatcher_wait, settle=settle(lambda r: r[0].workflow_id)),
            Way(labels[3], raw_wait, settle=settle(lambda r: r[0])),
            Way(labels[4], raw_poll, settle=settle(lambda p: p.workflow_id)),
        ],
        rounds=rounds,
        warmup=_warmup(benchmark, 5),
        pause=_pause(benchmark),
    )
    results = outcome.results
    for response in results[labels[0]]:
        assert response.workflow_type == WORKFLOW_TYPE and response.run_id
        assert response.status == resources_pb2.RUN_STATUS_WAITING and not response.error
        [action] = response.pending_actions
        _check_grpc_action(action)
        assert action.workflow_id == response.workflow_id
    for polled in results[labels[1]]:
        run = polled.status.workflow
        assert run.status == resources_pb2.RUN_STATUS_WAITING and run.current_step == "ask1"
        [action] = run.pending_actions
        _check_grpc_action(action)
    for started, advance in results[labels[2]]:
        assert started.workflow_type == WORKFLOW_TYPE and started.run_id
        assert advance["status"] == "waiting" and advance["current_step"] == "ask1"
        [action] = advance["pending_actions"]
        _check_action(action)
    for workflow_id, run_id, advance in results[labels[3]]:
        assert run_id and advance["workflow_id"] == workflow_id
        assert advance["status"] == "waiting" and advance["current_step"] == "ask1"
        [action] = advance["pending_actions"]
        _check_action(action)
    for polled in results[labels[4]]:
        assert polled.status["status"] == "waiting"
        [action] = polled.status["pending_actions"]
        _check_action(action)

    if benchmark.disabled or benchmark.stats is None:
        return
    for label in labels:
        times = outcome.times[label]
        polls = None
        if label in (labels[1], labels[4]):
            measured = results[label][-len(times) :]
            polls = statistics.fmean(p.polls for p in measured)
            errors = sum((p.errors for p in measured), Counter[str]())
            INFO[f"poll errors ({label.split()[0]})"] = (
                ", ".join(f"{k} x{v}" for k, v in errors.most_common()) or "none"
            )
        FIRST_ACTION[label] = FirstAction(statistics.median(times), polls)
        benchmark.extra_info[f"{label} median_s"] = statistics.median(times)
    INFO["first action: rounds per way"] = str(rounds)
    INFO["thread hop (charged to every way)"] = _ms(await _hop_cost())


# --------------------------------------------------------------------------- report (runs last)


@pytest.mark.filterwarnings("ignore::pytest_benchmark.logger.PytestBenchmarkWarning")
def test_zz_report(benchmark: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Not a benchmark: requests the fixture only so that --benchmark-only keeps it."""
    if benchmark.disabled:
        pytest.skip("benchmarks disabled: no timings to report")
    if not THREE_WAYS and not FIRST_ACTION:
        pytest.skip("no control-plane timings were collected in this run")
    lines = [
        "",
        "== control plane: gRPC vs TemporalDispatcher vs raw Temporal SDK (medians) ==",
        f"{'operation':<15}{'gRPC':>11}{'dispatcher':>12}{'raw SDK':>11}"
        f"{'+gRPC':>11}{'+gRPC pair':>12}{'gRPC/raw':>10}{'disp/raw':>10}",
    ]
    for name in ORDER:
        row = THREE_WAYS.get(name)
        if row is None:
            continue
        lines.append(
            f"{name:<15}{_ms(row.grpc):>11}{_ms(row.dispatcher):>12}{_ms(row.raw):>11}"
            f"{_ms(row.grpc - row.dispatcher):>11}{_ms(row.paired_added):>12}"
            f"{row.grpc / row.raw:>9.2f}x{row.dispatcher / row.raw:>9.2f}x"
        )
    if FIRST_ACTION:
        raw = FIRST_ACTION.get("raw execute_update_with_start")
        lines += [
            "",
            "== first action of a new run: update-with-start vs start + polling (medians) ==",
            f"{'way':<42}{'median':>11}{'/raw UwS':>10}{'polls':>7}",
        ]
        for label in FIRST_ORDER:
            way = FIRST_ACTION.get(label)
            if way is None:
                continue
            ratio = f"{way.median / raw.median:.2f}x" if raw else "-"
            polls = "-" if way.polls is None else f"{way.polls:.1f}"
            lines.append(f"{label:<42}{_ms(way.median):>11}{ratio:>10}{polls:>7}")
        wait = FIRST_ACTION.get(FIRST_ORDER[0])
        poll = FIRST_ACTION.get(FIRST_ORDER[1])
        dispatcher = FIRST_ACTION.get(FIRST_ORDER[2])
        if wait and dispatcher:
            lines.append(
                f"{'  +gRPC over dispatcher.start_and_wait':<42}"
                f"{_ms(wait.median - dispatcher.median):>11}"
            )
        if wait and poll:
            lines.append(
                f"{'  start + poll minus wait_for_suspension':<42}"
                f"{_ms(poll.median - wait.median):>11}"
            )
    rounds = sorted({row.rounds for row in THREE_WAYS.values()})
    lines += [
        "",
        *(f"{key}: {value}" for key, value in INFO.items()),
        f"rounds per way: {', '.join(map(str, rounds)) or '-'}; "
        f"polling every {POLL_INTERVAL * 1e3:g} ms",
        "+gRPC = gRPC median - dispatcher median; +gRPC pair = median of the per-round",
        "  differences (the two calls of a round ran back to back: the less noisy figure).",
        "Targets (targets.toml) are checked by scripts/bench_gate.py (make bench).",
    ]
    with capsys.disabled():
        sys.stdout.write("\n".join(lines) + "\n")
