"""CreateSchedule and TriggerSchedule through the control plane, next to the raw SDK calls.

Run:  .venv/bin/pytest tests/benchmarks/test_scheduler_bench.py --benchmark-only -s
Under ``--benchmark-disable`` (``make test``) every way of every operation runs once (a smoke
test that still checks each answer) and the report skips.

The stack is the one of the schedule tests (``tests/scheduler/stack.py``): two orgs under a
prefix of this module's own, a worker pool that runs what the schedules start, the definition
registry, and ``build_server`` started in this process, called over a real ``grpc.aio`` channel
with a bearer token. Only org ``north`` is used.

Each operation is done in the same rounds several ways:

1. gRPC: the generated stub over the channel (client serialization, HTTP/2 over loopback, the
   error and auth interceptors, JWT verification, the servicer's conversions);
2. scheduler: :class:`engine.scheduler.Scheduler` called directly, as the servicer calls it;
3. raw SDK: the Temporal SDK doing the nearest equivalent with nothing of the engine around it.

CreateSchedule (a paused schedule of ``tick`` with a yearly cron): the Scheduler looks up the
definition (cached for an explicit version, as here), validates the spec and the inputs, builds
the start action, calls ``create_schedule`` and then ``describe`` (the API answers with the
schedule as created: next firing times included). So the raw side is shown both as the bare
``client.create_schedule`` (the action prepared once, untimed) and as ``create_schedule`` +
``describe``, the same two round trips the Scheduler makes.

TriggerSchedule: every call triggers a fresh paused schedule (made untimed, just before), so
that every trigger starts a run (two triggers of one schedule in the same second would get the
same workflow id). The Scheduler and the raw SDK each make one call (``handle.trigger()``). After
each call, untimed, the harness polls the schedule's ``describe`` until the run shows and waits
for the run to complete (every trigger is checked, and the worker never competes with a timed
call); the time from the call to the run showing is reported too.

Interleaving and timing work as in ``test_control_plane_bench.py``: pytest-benchmark times the
gRPC way from a helper thread (each call is a coroutine handed to the session loop; that hop is
charged to every way), the other ways are timed with ``perf_counter`` around the very same
cross-thread call in the same round, and the order of the ways rotates every round. Figures are
reported, not asserted; every answer of every call is asserted.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
)

from engine.api.v1 import schedule_service_pb2 as pb
from engine.scheduler import ScheduleRequest, ScheduleView, Spec
from engine.workflow import RunStart, WorkflowFactory
from tests.benchmarks import _gate as gate
from tests.helpers.devserver import DevServer
from tests.scheduler.stack import Stack, open_stack

TIMEOUT = 60.0
POLL_INTERVAL = 0.002  # seconds between two describes of a triggered schedule
FAR = "0 0 1 1 *"  # once a year, at new year: never during a run
INPUTS = {"n": 2}
GRPC, SCHEDULER, RAW, RAW_DESCRIBE = "gRPC", "scheduler", "raw SDK", "raw SDK + describe"


# --------------------------------------------------------------------------- report


@dataclass
class Row:
    """The medians of one operation's ways, and the per-round gRPC - scheduler difference."""

    medians: dict[str, float]
    paired_added: float
    rounds: int


ROWS: dict[str, Row] = {}
INFO: dict[str, str] = {}
COLUMNS = (GRPC, SCHEDULER, RAW_DESCRIBE, RAW)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.3f} ms"


# --------------------------------------------------------------------------- harness


@dataclass
class Way:
    """One way of doing an operation.

    Attributes:
        label: Its name in the report.
        op: The timed call; takes what ``prepare`` returned.
        prepare: Untimed, just before ``op``.
        settle: Untimed, right after ``op``: takes what ``prepare`` and ``op`` returned; checks
            the outcome and waits until the worker is done with it.
    """

    label: str
    op: Callable[[Any], Coroutine[Any, Any, Any]]
    prepare: Callable[[], Coroutine[Any, Any, Any]]
    settle: Callable[[Any, Any], Coroutine[Any, Any, Any]] | None = None


def _orders(labels: Sequence[str]) -> list[tuple[str, ...]]:
    """Rotations of one order and of its reverse; the first puts ``labels[0]`` (timed by
    pytest-benchmark) last, so that a single round (benchmarks disabled) runs every way."""
    base = (*reversed(labels[1:]), labels[0])
    backwards = base[::-1]
    count = len(base)
    return [base[i:] + base[:i] for i in range(count)] + [
        backwards[i:] + backwards[:i] for i in range(1, count + 1)
    ]


@dataclass
class Outcome:
    results: dict[str, list[Any]]
    times: dict[str, list[float]]


async def _interleaved(benchmark: Any, ways: Sequence[Way], *, rounds: int, warmup: int) -> Outcome:
    """Do every way once per round, in the round's order; pytest-benchmark times ``ways[0]``."""
    loop = asyncio.get_running_loop()

    def call(coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(TIMEOUT)

    timed = ways[0]
    by_label = {way.label: way for way in ways}
    orders = _orders([way.label for way in ways])
    assert benchmark.disabled or not rounds % len(orders), "rounds: a multiple of the orders"
    results: dict[str, list[Any]] = {way.label: [] for way in ways}
    times: dict[str, list[float]] = {way.label: [] for way in ways}
    current: dict[str, Any] = {"round": -1}

    def finish(way: Way, argument: Any, outcome: Any) -> None:
        results[way.label].append(outcome)
        if way.settle is not None:
            call(way.settle(argument, outcome))

    def run(way: Way) -> None:
        argument = call(way.prepare())
        began = time.perf_counter()
        outcome = call(way.op(argument))
        times[way.label].append(time.perf_counter() - began)
        finish(way, argument, outcome)

    def order() -> tuple[str, ...]:
        index: int = current["round"]
        return orders[index % len(orders)]

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        current["round"] += 1
        now = order()
        for label in now[: now.index(timed.label)]:
            run(by_label[label])
        current["argument"] = call(timed.prepare())
        return (current["argument"],), {}

    def target(argument: Any) -> Any:
        current["outcome"] = call(timed.op(argument))
        return current["outcome"]

    def teardown(argument: Any) -> None:
        finish(timed, argument, current["outcome"])
        now = order()
        for label in now[now.index(timed.label) + 1 :]:
            run(by_label[label])

    await asyncio.to_thread(
        benchmark.pedantic,
        target,
        setup=setup,
        teardown=teardown,
        rounds=rounds,
        warmup_rounds=warmup,
    )
    if benchmark.disabled:  # pytest-benchmark called setup and target, not teardown
        await asyncio.to_thread(finish, timed, current["argument"], current["outcome"])
    for way in ways:
        assert len(results[way.label]) == current["round"] + 1, way.label
        del times[way.label][:warmup]
    stats = benchmark.stats
    times[timed.label] = list(stats.stats.data) if stats is not None else []
    return Outcome(results, times)


def _record(benchmark: Any, operation: str, outcome: Outcome) -> None:
    if benchmark.disabled or benchmark.stats is None:
        return
    grpc_times, scheduler_times = outcome.times[GRPC], outcome.times[SCHEDULER]
    row = Row(
        medians={label: statistics.median(t) for label, t in outcome.times.items()},
        paired_added=gate.paired_added(grpc_times, scheduler_times),
        rounds=len(grpc_times),
    )
    for label, median in row.medians.items():
        benchmark.extra_info[f"{label} median_s"] = median
    benchmark.extra_info["added_paired_median_s"] = row.paired_added
    ROWS[operation] = row


def _rounds(benchmark: Any, wanted: int) -> int:
    return 1 if benchmark.disabled else wanted


def _warmup(benchmark: Any, wanted: int) -> int:
    return 0 if benchmark.disabled else wanted


# --------------------------------------------------------------------------- fixtures


@dataclass
class Bench:
    stack: Stack
    client: Client
    metadata: tuple[tuple[str, str], ...]
    start: RunStart  # the raw side's start action, built once
    made: list[str] = field(default_factory=list)

    def fresh(self, tag: str) -> str:
        sid = f"{tag}-{uuid.uuid4().hex[:10]}"
        self.made.append(sid)
        return sid

    def raw_schedule(self, sid: str, *, overlap: ScheduleOverlapPolicy | None = None) -> Schedule:
        """What the Scheduler sends, written by hand: a paused yearly start of ``tick``."""
        start = self.start
        return Schedule(
            action=ScheduleActionStartWorkflow(
                start.workflow_type,
                start.input,
                id=sid,
                task_queue=start.task_queue,
                memo={
                    **start.memo,
                    "schedule_id": sid,
                    "engine_schedule": {
                        "spec": {"cron": [FAR]},
                        "definition_name": "tick",
                        "definition_version": 1,
                    },
                },
                typed_search_attributes=start.search_attributes,
            ),
            spec=ScheduleSpec(cron_expressions=[FAR]),
            policy=SchedulePolicy(overlap=overlap or ScheduleOverlapPolicy.SKIP),
            state=ScheduleState(paused=True),
        )


@pytest.fixture(scope="module")
async def bench(temporal_server: DevServer) -> AsyncIterator[Bench]:
    async with open_stack(temporal_server.address, tag="schedb") as stack:
        org = stack.org()
        definition = await stack.registry.get(org, "tick", 1)
        task_queue = stack.tenancy.dispatcher.factory.task_queue
        start = WorkflowFactory(task_queue).prepare(definition, INPUTS, org, "unused")
        made = Bench(stack, await stack.client(), stack.metadata(), start)
        try:
            yield made
        finally:
            gate = asyncio.Semaphore(32)

            async def delete(sid: str) -> None:
                async with gate:
                    await made.client.get_schedule_handle(sid).delete()

            await asyncio.gather(*(delete(sid) for sid in made.made), return_exceptions=True)


def _create_request(sid: str) -> pb.CreateScheduleRequest:
    request = pb.CreateScheduleRequest(
        schedule_id=sid,
        definition_name="tick",
        definition_version=1,
        spec=pb.ScheduleSpec(cron=[FAR]),
        paused=True,
    )
    request.inputs.update(INPUTS)
    return request


def _schedule_request(sid: str) -> ScheduleRequest:
    return ScheduleRequest(
        sid, "tick", definition_version=1, inputs=INPUTS, spec=Spec(cron=(FAR,)), paused=True
    )


# --------------------------------------------------------------------------- CreateSchedule


@pytest.mark.benchmark(group="schedules/create")
async def test_create_schedule(benchmark: Any, bench: Bench) -> None:
    stub, org = bench.stack.schedules, bench.stack.org()

    async def new_id() -> str:
        return bench.fresh("create")

    async def new_raw() -> tuple[str, Schedule]:
        sid = bench.fresh("create-raw")
        return sid, bench.raw_schedule(sid)

    async def grpc_create(sid: str) -> pb.CreateScheduleResponse:
        response: pb.CreateScheduleResponse = await stub.CreateSchedule(
            _create_request(sid), metadata=bench.metadata
        )
        return response

    async def scheduler_create(sid: str) -> ScheduleView:
        return await bench.stack.scheduler.create(org, _schedule_request(sid))

    async def raw_create_describe(prepared: tuple[str, Schedule]) -> ScheduleDescription:
        handle = await bench.client.create_schedule(*prepared)
        return await handle.describe()

    async def raw_create(prepared: tuple[str, Schedule]) -> ScheduleHandle:
        return await bench.client.create_schedule(*prepared)

    outcome = await _interleaved(
        benchmark,
        [
            Way(GRPC, grpc_create, new_id),
            Way(SCHEDULER, scheduler_create, new_id),
            Way(RAW_DESCRIBE, raw_create_describe, new_raw),
            Way(RAW, raw_create, new_raw),
        ],
        rounds=_rounds(benchmark, 64),
        warmup=_warmup(benchmark, 8),
    )
    for response in outcome.results[GRPC]:
        schedule = response.schedule
        assert schedule.schedule_id.startswith("create-") and schedule.paused
        assert (schedule.definition_name, schedule.definition_version) == ("tick", 1)
        assert dict(schedule.inputs) == INPUTS and len(schedule.next_fire_times) == 5
    for view in outcome.results[SCHEDULER]:
        assert view.schedule_id.startswith("create-") and view.paused
        assert (view.definition_version, view.inputs) == (1, INPUTS)
        assert len(view.next_fire_times) == 5
    for description in outcome.results[RAW_DESCRIBE]:
        assert description.id.startswith("create-raw-") and description.schedule.state.paused
        assert len(description.info.next_action_times) >= 5
    for handle in outcome.results[RAW]:
        assert handle.id.startswith("create-raw-")
    _record(benchmark, "CreateSchedule", outcome)


# --------------------------------------------------------------------------- TriggerSchedule


@dataclass
class Triggered:
    """A fresh schedule to trigger, and when its trigger call began."""

    sid: str
    began: float = 0.0


VISIBLE: list[float] = []


@pytest.mark.benchmark(group="schedules/trigger")
async def test_trigger_schedule(benchmark: Any, bench: Bench) -> None:
    stub, org = bench.stack.schedules, bench.stack.org()

    async def fresh_schedule() -> Triggered:
        sid = bench.fresh("trigger")
        schedule = bench.raw_schedule(sid, overlap=ScheduleOverlapPolicy.ALLOW_ALL)
        await bench.client.create_schedule(sid, schedule)
        return Triggered(sid)

    async def grpc_trigger(target: Triggered) -> Any:
        target.began = time.perf_counter()
        return await stub.TriggerSchedule(
            pb.TriggerScheduleRequest(schedule_id=target.sid), metadata=bench.metadata
        )

    async def scheduler_trigger(target: Triggered) -> None:
        target.began = time.perf_counter()
        await bench.stack.scheduler.trigger(org, target.sid)

    async def raw_trigger(target: Triggered) -> None:
        target.began = time.perf_counter()
        await bench.client.get_schedule_handle(target.sid).trigger()

    async def ran(target: Triggered, _: Any) -> None:
        """Untimed: the run shows in the schedule, then completes with the right result."""
        handle = bench.client.get_schedule_handle(target.sid)
        deadline = time.monotonic() + TIMEOUT
        while True:
            description = await handle.describe()
            if description.info.recent_actions:
                VISIBLE.append(time.perf_counter() - target.began)
                break
            assert time.monotonic() < deadline, f"no run of {target.sid}"
            await asyncio.sleep(POLL_INTERVAL)
        [action] = description.info.recent_actions
        run = action.action
        assert run.workflow_id.startswith(f"{target.sid}-")  # type: ignore[attr-defined]
        workflow = bench.client.get_workflow_handle(
            run.workflow_id,  # type: ignore[attr-defined]
            run_id=run.first_execution_run_id,  # type: ignore[attr-defined]
        )
        assert await workflow.result() == INPUTS["n"] * 2

    VISIBLE.clear()
    outcome = await _interleaved(
        benchmark,
        [
            Way(GRPC, grpc_trigger, fresh_schedule, ran),
            Way(SCHEDULER, scheduler_trigger, fresh_schedule, ran),
            Way(RAW, raw_trigger, fresh_schedule, ran),
        ],
        rounds=_rounds(benchmark, 60),
        warmup=_warmup(benchmark, 6),
    )
    assert len(VISIBLE) == sum(len(r) for r in outcome.results.values())
    _record(benchmark, "TriggerSchedule", outcome)
    if not benchmark.disabled:
        measured = VISIBLE[_warmup(benchmark, 6) * 3 :]
        INFO["TriggerSchedule call -> run shows in describe (median, all ways)"] = _ms(
            statistics.median(measured)
        )


# --------------------------------------------------------------------------- report (runs last)


@pytest.mark.filterwarnings("ignore::pytest_benchmark.logger.PytestBenchmarkWarning")
def test_zz_report(benchmark: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Not a benchmark: requests the fixture only so that --benchmark-only keeps it."""
    if benchmark.disabled:
        pytest.skip("benchmarks disabled: no timings to report")
    if not ROWS:
        pytest.skip("no schedule timings were collected in this run")
    header = f"{'operation':<17}" + "".join(f"{c:>20}" for c in COLUMNS)
    lines = [
        "",
        "== schedules: gRPC vs Scheduler vs raw Temporal SDK (medians) ==",
        header + f"{'+gRPC':>11}{'+gRPC pair':>12}{'gRPC/raw':>10}",
    ]
    for name, row in ROWS.items():
        cells = "".join(f"{_ms(row.medians.get(c)):>20}" for c in COLUMNS)
        added = row.medians[GRPC] - row.medians[SCHEDULER]
        lines.append(
            f"{name:<17}{cells}{_ms(added):>11}{_ms(row.paired_added):>12}"
            f"{row.medians[GRPC] / row.medians[RAW]:>9.2f}x"
        )
    lines += [
        "",
        *(f"{key}: {value}" for key, value in INFO.items()),
        "rounds per way: " + ", ".join(f"{n} {r.rounds}" for n, r in ROWS.items()),
        "+gRPC = gRPC median - scheduler median; +gRPC pair = median of the per-round",
        "  differences (the two calls of a round ran back to back: the less noisy figure).",
        "raw SDK + describe: the two round trips Scheduler.create makes (it answers with the",
        "  schedule as created); raw SDK: create_schedule alone / handle.trigger().",
        "Every way pays the same thread hop (pytest-benchmark runs in a helper thread).",
    ]
    with capsys.disabled():
        sys.stdout.write("\n".join(lines) + "\n")
