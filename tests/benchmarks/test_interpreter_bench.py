"""The interpreter against the raw Temporal SDK, on a real dev server, in the same run.

Run:  .venv/bin/pytest tests/benchmarks/test_interpreter_bench.py --benchmark-only -s
Under ``--benchmark-disable`` (``make test``) every benchmark runs its engine and raw operation
once (a smoke test that still checks their results) and the report skips.

Each server benchmark times the engine's operation and the nearest hand-written equivalent
(the ``Raw*`` workflows below, on their own worker of the same client and event loop) in
alternating rounds, so that noise of a shared machine hits both: pytest-benchmark times the
engine operation, and the ``setup`` of each of its rounds first runs and times the raw one
(``perf_counter`` around the very same cross-thread call). The order is therefore
raw, engine, raw, engine, ... Only the operation itself is timed: the preconditions (a run
waiting on its first action) are prepared, untimed, in the same setup.

The raw worker runs the default sandbox with this module passed through (see
:func:`_raw_runner`); the engine's worker is the session ``worker``, as ``build_worker`` makes it.

The benchmarks are ``async`` tests on the session event loop that runs the session ``client``
and ``worker``; pytest-benchmark is synchronous, so it runs in a helper thread
(``asyncio.to_thread``) and every timed operation is a coroutine handed back to that loop with
``run_coroutine_threadsafe``. The hop costs tens of microseconds and is charged to both sides.

What is timed:

- suspension: start a run whose first step is a prompt and get its pending action back in the
  same call (update-with-start of ``await_suspension``, what ``StartWorkflow`` with
  ``wait_for_suspension`` does): what a client waiting for work sees. It includes the start
  RPC and the run's first workflow task (sandbox and definition load), a superset of "the run
  reaches the step -> the action is visible"; the in-run suspension alone is inside the
  resumption figure. Raw: update-with-start of a workflow that sets a field and waits on
  ``wait_condition``, the update returning once the field is set.
- suspension (start + poll): the same, as a client without update-with-start does it: start,
  then ``get_status`` every millisecond until the action shows (raw: query until set).
- resumption: the ``submit_result`` update on a run waiting at the first of two prompts, until
  it returns the second pending action. Raw: an update that sets a value and waits until the
  workflow reaches its next wait point, returning its state.

  For these three figures the raw workflow also publishes each wait as the engine does, so that an
  executor fleet finds it with one visibility listing instead of a query per run (the step in
  a search attribute, the pending entry in the memo): on the dev server those two commands
  alone cost about 3 ms per workflow task, 25-30% of a bare update, so without them the
  ratio would measure Temporal's visibility store, not the interpreter. The same operation
  against the bare workflow (no publishing) is reported beside it, ungated, as
  ``<operation> (bare SDK)``.
- status query: ``get_status`` on a waiting run vs a plain query returning a small dict.
- 10 inline steps: start -> result of a run of 10 ``set_state`` (with ``when``) and a
  ``return``, vs a workflow doing the same dict updates in Python.
- foreach spawn: start -> result of a foreach over 100 items (``max_parallel: 100``, each item
  a zero ``wait`` and a ``return``, so that each is a child run as items with actions are),
  reported per child, vs a parent starting 100 trivial children concurrently
  (``asyncio.gather`` of ``execute_child_workflow``, the idiomatic SDK form). Three rounds of
  each, no warm-up (a round takes seconds); 10 items when benchmarks are off.
- foreach of 10 inline items: start -> result of a foreach over 10 items of one inline
  ``return`` (they run inside the run), vs a workflow running 10 trivial local activities at
  once (``asyncio.gather`` of ``execute_local_activity``).
- parallel of 10 inline branches: start -> result of a ``parallel`` of 10 branches of one
  ``set_state`` each, vs the engine running the same 10 steps in sequence (the 10-inline-steps
  definition): what running them as branches adds.
- state serialization per MiB: Temporal's default payload converter to and from payloads of a
  1 MiB JSON state plus the interpreter's size check (``_json_size``), vs the converter alone.
  Two states: step outputs (shell results with a few KiB of log text each: what makes a real
  state large; gated) and ten thousand small records (the worst case for any Python JSON
  codec, which spends its time making objects; reported). The size check alone is a row of its
  own: the interpreter sizes what changed after every step.
- standard action: ``render_params`` of the largest action step of deploy-service.yaml (the
  ``canary`` mcp_call) vs the same dictionary built by hand-written Python.
- inline step: ``evaluate_when`` + rendering of a ``set_state`` + the state update and size
  check, vs the same in plain Python.

Targets come from DESIGN.md. Every benchmark records its rows for the CI gate
(``tests/benchmarks/_gate.py``; targets in ``targets.toml``, checked by
``scripts/bench_gate.py`` under ``make bench``); the report below only prints them. What each
benchmark ran *is* asserted.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import statistics
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio import activity, workflow

# What the raw workflows' module imports is shared with the sandbox, as the SDK recommends.
with workflow.unsafe.imports_passed_through():
    import pytest
    from temporalio.client import Client, WithStartWorkflowOperation, WorkflowHandle
    from temporalio.common import WorkflowIDConflictPolicy
    from temporalio.converter import DataConverter
    from temporalio.worker import Worker
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

    from engine.definition import StepBase, WorkflowDefinition, load_definition
    from engine.workflow import ACTION_STEP_TYPES, ENGINE_STEP, WorkflowFactory
    from engine.workflow._budget import json_size as _json_size
    from tests.benchmarks import _gate as gate
    from tests.helpers.runs import ORG, TASK_QUEUE, start, submit, unique_id

RAW_QUEUE = "bench-raw"
TIMEOUT = 60.0
PAUSE = 0.05  # seconds of quiet before each timed call that makes the worker take a task
FANOUT = 100
INLINE_STEPS = 10
MIB = 1024 * 1024

# --------------------------------------------------------------------------- definitions

# Definitions are loaded on first use, outside any workflow.
PROMPTS_YAML = """
name: bench-prompts
version: 1
steps:
  - {id: ask1, type: prompt, prompt_type: confirm, message: "First?", output_to: first}
  - {id: ask2, type: prompt, prompt_type: confirm, message: "Second?", output_to: second}
  - {id: done, type: return, value: "${{ state }}"}
"""

INLINE_YAML = (
    "name: bench-inline\nversion: 1\nstate: {count: 0}\nsteps:\n"
    + "".join(
        f"  - {{id: s{i}, type: set_state, when: 'state.count < 100',"
        f" set: {{count: '${{{{ state.count + 1 }}}}', last: s{i}}}}}\n"
        for i in range(1, INLINE_STEPS + 1)
    )
    + "  - {id: done, type: return, value: '${{ state }}'}\n"
)
INLINE_RESULT = {"count": INLINE_STEPS, "last": f"s{INLINE_STEPS}"}

FOREACH_YAML = """
name: bench-foreach
version: 1
inputs:
  items: {type: list, required: true}
steps:
  - id: fan
    type: foreach
    items: inputs.items
    as: item
    max_parallel: 100
    steps:
      # A wait (of nothing) makes each item a child run, as items with actions are.
      - {id: settle, type: wait, duration: 0s}
      - {id: one, type: return, value: "${{ item * 2 }}"}
    output_to: doubled
  - {id: done, type: return, value: "${{ state.doubled }}"}
"""

SMALL_FANOUT = 10
INLINE_FOREACH_YAML = """
name: bench-foreach-inline
version: 1
inputs:
  items: {type: list, required: true}
steps:
  - id: fan
    type: foreach
    items: inputs.items
    as: item
    max_parallel: 10
    steps:
      - {id: one, type: return, value: "${{ item * 2 }}"}
    output_to: doubled
  - {id: done, type: return, value: "${{ state.doubled }}"}
"""

PARALLEL_YAML = (
    "name: bench-parallel\nversion: 1\nstate: {count: 0}\nsteps:\n"
    "  - id: fan\n    type: parallel\n    branches:\n"
    + "".join(
        f"      b{i:02}: [{{id: s{i}, type: set_state, when: 'state.count < 100',"
        f" set: {{count: '${{{{ state.count + 1 }}}}', last: s{i}}}}}]\n"
        for i in range(1, INLINE_STEPS + 1)
    )
    + "  - {id: done, type: return, value: '${{ state }}'}\n"
)
PARALLEL_RESULT = {"count": INLINE_STEPS, "last": f"s{INLINE_STEPS}"}


@functools.cache
def _definition(text: str) -> WorkflowDefinition:
    return load_definition(text)


def _example(name: str) -> WorkflowDefinition:
    path = Path(__file__).resolve().parents[2] / "examples" / name
    return load_definition(path.read_text(encoding="utf-8"), name)


# --------------------------------------------------------------------------- raw SDK workflows


@workflow.defn(name="bench-raw-wait")
class RawWaitWorkflow:
    """Waits for a result per step name, exposing the one it waits for, like a prompt.

    With ``publish``, it also does what makes a wait discoverable by an executor fleet in one
    visibility listing, as the engine does at every suspension: the step it waits at goes to a
    search attribute and its pending entry to the memo.
    """

    def __init__(self) -> None:
        self.status = "running"
        self.pending: str | None = None
        self.results: dict[str, Any] = {}
        self.epoch = 0

    @workflow.run
    async def run(self, steps: list[str], publish: bool = False) -> dict[str, Any]:
        for step in steps:
            self.status, self.pending = "waiting", step
            if publish:
                workflow.upsert_search_attributes([ENGINE_STEP.value_set(step)])
                entry = {"step_id": step, "action_id": str(workflow.uuid4()), "type": "prompt"}
                workflow.upsert_memo({"pending": [entry]})
            self.epoch += 1
            await workflow.wait_condition(lambda step=step: step in self.results)
            self.status, self.pending = "running", None
        self.status = "completed"
        self.epoch += 1
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.results

    @workflow.query(name="status")
    def get_status(self) -> dict[str, Any]:
        return {"status": self.status, "pending": self.pending, "results": self.results}

    @workflow.update(name="await_pending")
    async def await_pending(self) -> dict[str, Any]:
        await workflow.wait_condition(lambda: self.pending is not None)
        return {"status": self.status, "pending": self.pending}

    @workflow.update(name="submit")
    async def submit(self, submission: dict[str, Any]) -> dict[str, Any]:
        epoch = self.epoch
        self.results[submission["step_id"]] = submission["result"]
        await workflow.wait_condition(lambda: self.epoch > epoch)
        return {"status": self.status, "pending": self.pending}

    @submit.validator
    def validate_submit(self, submission: dict[str, Any]) -> None:
        if submission.get("step_id") != self.pending:
            raise ValueError(f"step {submission.get('step_id')!r} is not waiting")


@workflow.defn(name="bench-raw-steps")
class RawStepsWorkflow:
    """The 10 inline steps in Python: the same conditional dict updates, then return."""

    @workflow.run
    async def run(self, steps: int) -> dict[str, Any]:
        state: dict[str, Any] = {"count": 0}
        for i in range(1, steps + 1):
            if state["count"] < 100:
                state.update({"count": state["count"] + 1, "last": f"s{i}"})
        return state


@activity.defn(name="bench-double")
async def raw_double(item: int) -> int:
    """A trivial activity: what a raw-SDK fan-out of local activities runs per item."""
    return item * 2


@workflow.defn(name="bench-raw-local-fanout")
class RawLocalFanoutWorkflow:
    """Runs one trivial local activity per item, all at once, results in item order."""

    @workflow.run
    async def run(self, items: list[int]) -> list[int]:
        timeout = timedelta(seconds=10)
        return list(
            await asyncio.gather(
                *(
                    workflow.execute_local_activity(
                        raw_double, item, start_to_close_timeout=timeout
                    )
                    for item in items
                )
            )
        )


@workflow.defn(name="bench-raw-child")
class RawChildWorkflow:
    @workflow.run
    async def run(self, item: int) -> int:
        return item * 2


@workflow.defn(name="bench-raw-parent")
class RawParentWorkflow:
    """Starts one child per item, all at once, and gathers their results in item order."""

    @workflow.run
    async def run(self, items: list[int]) -> list[int]:
        prefix = workflow.info().workflow_id
        return list(
            await asyncio.gather(
                *(
                    workflow.execute_child_workflow(
                        RawChildWorkflow.run, item, id=f"{prefix}/{index}"
                    )
                    for index, item in enumerate(items)
                )
            )
        )


# --------------------------------------------------------------------------- harness


@dataclass
class Row:
    """One line of the final report."""

    operation: str
    engine: float  # seconds (median), already divided by ``per``
    raw: float | None


REPORT: dict[str, Row] = {}
SIZES: dict[str, tuple[float, float]] = {}
"""Sizes (bytes) for the report: engine, raw."""
ORDER = (
    "suspension",
    "suspension (bare SDK)",
    "suspension (start + poll)",
    "suspension (start + poll) (bare SDK)",
    "resumption",
    "resumption (bare SDK)",
    "status query",
    "10 inline steps (run)",
    "step dispatch",
    "foreach spawn / child",
    "foreach of 10 inline items",
    "parallel of 10 inline branches",
    "state serialization / MiB",
    "state serialization / MiB (small records)",
    "size check / MiB",
    "standard action",
    "inline step",
)


def _record(
    benchmark: Any,
    operation: str,
    raw_times: list[float],
    bare_times: list[float] | None = None,
    *,
    per: float = 1,
) -> None:
    """Keep the medians for the report (and the raw samples in the benchmark's JSON).

    ``bare_times``, the leaner baseline of :func:`_interleaved`, make a row of their own,
    ``<operation> (bare SDK)``, shown beside the gated one without a target.
    """
    if benchmark.disabled or benchmark.stats is None:
        return
    if bare_times:
        bare = f"{operation} (bare SDK)"
        engine_median = benchmark.stats.stats.median / per
        REPORT[bare] = Row(bare, engine_median, statistics.median(bare_times) / per)
        gate.record(
            benchmark,
            bare,
            gate.engine_times(benchmark),
            raw=bare_times,
            per=per,
            note="the raw workflow without publishing its wait (search attribute, memo)",
        )
    engine = benchmark.stats.stats.median / per
    raw = statistics.median(raw_times) / per if raw_times else None
    benchmark.extra_info["raw_median_s"] = raw
    benchmark.extra_info["raw_rounds"] = len(raw_times)
    benchmark.extra_info["per"] = per
    if raw:
        benchmark.extra_info["ratio"] = engine / raw
    REPORT[operation] = Row(operation, engine, raw)
    gate.record(benchmark, operation, gate.engine_times(benchmark), raw=raw_times, per=per)


async def _interleaved(
    benchmark: Any,
    *,
    engine: Callable[[Any], Coroutine[Any, Any, Any]],
    raw: Callable[[Any], Coroutine[Any, Any, Any]],
    engine_setup: Callable[[], Coroutine[Any, Any, Any]] | None = None,
    raw_setup: Callable[[], Coroutine[Any, Any, Any]] | None = None,
    bare: Callable[[Any], Coroutine[Any, Any, Any]] | None = None,
    bare_setup: Callable[[], Coroutine[Any, Any, Any]] | None = None,
    bare_times: list[float] | None = None,
    rounds: int,
    warmup: int = 1,
    pause: float = PAUSE,
) -> tuple[list[Any], list[Any], list[float]]:
    """Time ``engine`` with pytest-benchmark and ``raw`` by hand, in alternating rounds.

    Each timed call follows ``pause`` seconds of quiet (untimed). On the dev server a workflow
    task scheduled within about 35 ms of the previous one waits that long for a poller, for
    the raw SDK and the engine alike; back to back, each side would pay for how long the
    other side's call took.

    A second raw operation, ``bare`` (a leaner baseline shown for information), is timed
    before ``raw`` in each round; its durations go to ``bare_times``.

    Returns the engine results, the raw results and the raw durations (warm-up excluded).
    """
    loop = asyncio.get_running_loop()

    def call(coroutine: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result(TIMEOUT)

    engine_results: list[Any] = []
    raw_results: list[Any] = []
    raw_times: list[float] = []

    def setup() -> tuple[tuple[Any, ...], dict[str, Any]]:
        if bare is not None and bare_times is not None:
            argument = call(bare_setup()) if bare_setup else None
            time.sleep(pause)
            began = time.perf_counter()
            call(bare(argument))
            bare_times.append(time.perf_counter() - began)
        argument = call(raw_setup()) if raw_setup else None
        time.sleep(pause)
        began = time.perf_counter()
        outcome = call(raw(argument))
        raw_times.append(time.perf_counter() - began)
        raw_results.append(outcome)
        argument = call(engine_setup()) if engine_setup else None
        time.sleep(pause)
        return (argument,), {}

    def target(argument: Any) -> Any:
        outcome = call(engine(argument))
        engine_results.append(outcome)
        return outcome

    await asyncio.to_thread(
        benchmark.pedantic, target, setup=setup, rounds=rounds, warmup_rounds=warmup
    )
    if not benchmark.disabled:
        del raw_times[:warmup]
        if bare_times is not None:
            del bare_times[:warmup]
    return engine_results, raw_results, raw_times


def _sync_interleaved(
    benchmark: Any,
    *,
    engine: Callable[[], Any],
    raw: Callable[[], Any],
    rounds: int,
    batch: int,
) -> tuple[Any, Any, list[float]]:
    """Like :func:`_interleaved` for pure-Python work: each round runs ``batch`` calls."""
    raw_times: list[float] = []
    raw_out: list[Any] = [None]  # the last result only: a growing heap would slow the GC

    def setup() -> None:
        began = time.perf_counter()
        for _ in range(batch):
            outcome = raw()
        raw_times.append(time.perf_counter() - began)
        raw_out[0] = outcome

    def target() -> Any:
        for _ in range(batch):
            outcome = engine()
        return outcome

    engine_out = benchmark.pedantic(target, setup=setup, rounds=rounds, warmup_rounds=2)
    if not benchmark.disabled:
        del raw_times[:2]
    return engine_out, raw_out[0], raw_times


def _rounds(benchmark: Any, wanted: int) -> int:
    return 1 if benchmark.disabled else wanted


# --------------------------------------------------------------------------- fixtures


def _raw_runner() -> SandboxedWorkflowRunner:
    """The default sandbox, with this module passed through instead of reloaded for each run.

    The sandbox reloads a workflow's module for every run. A real raw-SDK module holding only
    workflows reloads in about 0.5 ms; this one is a test module (pytest marks, fixtures) whose
    reload takes tens of milliseconds and would flatter the engine. Passing it through makes
    the baseline about 0.5 ms per run cheaper than such a lean module, i.e. slightly strict.
    """
    restrictions = SandboxRestrictions.default.with_passthrough_modules(__name__)
    return SandboxedWorkflowRunner(restrictions=restrictions)


@pytest.fixture(scope="module")
async def raw_worker(client: Client) -> Any:
    """The raw workflows' worker: same client and event loop, the default sandbox."""
    async with Worker(
        client,
        task_queue=RAW_QUEUE,
        workflows=[
            RawWaitWorkflow,
            RawStepsWorkflow,
            RawChildWorkflow,
            RawParentWorkflow,
            RawLocalFanoutWorkflow,
        ],
        activities=[raw_double],
        workflow_runner=_raw_runner(),
    ) as running:
        yield running


@pytest.fixture
async def cleanup(client: Client) -> Any:
    """Handles of runs left waiting; terminated after the test."""
    handles: list[WorkflowHandle[Any, Any]] = []
    yield handles
    await asyncio.gather(*(h.terminate("benchmark done") for h in handles), return_exceptions=True)


# --------------------------------------------------------------------------- helpers


async def _poll(handle: WorkflowHandle[Any, Any], query: str, ready: Callable[[Any], bool]) -> Any:
    """Query until ``ready`` holds (a query before the first workflow task fails: retry)."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        try:
            answer = await handle.query(query)
        except Exception:
            answer = None
        if answer is not None and ready(answer):
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"{query} never became ready: {answer}")
        await asyncio.sleep(0.001)


def _engine_waits_at(step_id: str) -> Callable[[Any], bool]:
    return lambda s: any(a["step_id"] == step_id for a in s["pending_actions"])


def _raw_waits_at(step_id: str) -> Callable[[Any], bool]:
    return lambda s: s["pending"] == step_id


async def _start_raw_wait(
    client: Client, steps: list[str], *, publish: bool = False
) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        RawWaitWorkflow.run,
        args=[steps, publish],
        id=unique_id("raw-wait"),
        task_queue=RAW_QUEUE,
    )


# --------------------------------------------------------------------------- server benchmarks


@pytest.mark.benchmark(group="interpreter/suspension")
async def test_suspension(
    benchmark: Any, client: Client, worker: Worker, raw_worker: Worker, cleanup: list[Any]
) -> None:
    async def engine(_: Any) -> Any:
        handle = await start(client, _definition(PROMPTS_YAML))
        cleanup.append(handle)
        status = await _poll(handle, "get_status", _engine_waits_at("ask1"))
        return status["pending_actions"][0]["parameters"]["message"]

    async def raw(publish: bool) -> Any:
        handle = await _start_raw_wait(client, ["ask1", "ask2"], publish=publish)
        cleanup.append(handle)
        return (await _poll(handle, "status", _raw_waits_at("ask1")))["pending"]

    bare_times: list[float] = []
    engine_out, raw_out, raw_times = await _interleaved(
        benchmark,
        engine=engine,
        raw=lambda _: raw(publish=True),
        bare=lambda _: raw(publish=False),
        bare_times=bare_times,
        rounds=_rounds(benchmark, 50),
    )
    assert engine_out and all(message == "First?" for message in engine_out)
    assert raw_out and all(step == "ask1" for step in raw_out)
    _record(benchmark, "suspension (start + poll)", raw_times, bare_times)


@pytest.mark.benchmark(group="interpreter/suspension")
async def test_suspension_with_start(
    benchmark: Any, client: Client, worker: Worker, raw_worker: Worker, cleanup: list[Any]
) -> None:
    factory = WorkflowFactory(TASK_QUEUE)

    async def engine(_: Any) -> Any:
        definition = _definition(PROMPTS_YAML)
        run = factory.prepare(definition, {}, ORG, unique_id(definition.name))
        operation: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
            run.workflow_type,
            run.input,
            id=run.workflow_id,
            task_queue=run.task_queue,
            search_attributes=run.search_attributes,
            memo=run.memo,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
        advance = await client.execute_update_with_start_workflow(
            "await_suspension", start_workflow_operation=operation
        )
        cleanup.append(await operation.workflow_handle())
        return advance["pending_actions"][0]["parameters"]["message"]

    async def raw_run(publish: bool) -> Any:
        operation: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
            RawWaitWorkflow.run,
            args=[["ask1", "ask2"], publish],
            id=unique_id("raw-wait"),
            task_queue=RAW_QUEUE,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
        )
        advance = await client.execute_update_with_start_workflow(
            RawWaitWorkflow.await_pending, start_workflow_operation=operation
        )
        cleanup.append(await operation.workflow_handle())
        return advance["pending"]

    bare_times: list[float] = []
    engine_out, raw_out, raw_times = await _interleaved(
        benchmark,
        engine=engine,
        raw=lambda _: raw_run(publish=True),
        bare=lambda _: raw_run(publish=False),
        bare_times=bare_times,
        rounds=_rounds(benchmark, 50),
    )
    assert engine_out and all(message == "First?" for message in engine_out)
    assert raw_out and all(step == "ask1" for step in raw_out)
    _record(benchmark, "suspension", raw_times, bare_times)


@pytest.mark.benchmark(group="interpreter/resumption")
async def test_resumption(
    benchmark: Any, client: Client, worker: Worker, raw_worker: Worker, cleanup: list[Any]
) -> None:
    async def engine_setup() -> Any:
        handle = await start(client, _definition(PROMPTS_YAML))
        cleanup.append(handle)
        status = await _poll(handle, "get_status", _engine_waits_at("ask1"))
        return status["pending_actions"][0]

    async def engine(action: Any) -> Any:
        return await submit(client, action, True)

    async def raw_setup(publish: bool) -> Any:
        handle = await _start_raw_wait(client, ["ask1", "ask2"], publish=publish)
        cleanup.append(handle)
        await _poll(handle, "status", _raw_waits_at("ask1"))
        return handle

    async def raw(handle: Any) -> Any:
        return await handle.execute_update("submit", {"step_id": "ask1", "result": True})

    bare_times: list[float] = []
    engine_out, raw_out, raw_times = await _interleaved(
        benchmark,
        engine=engine,
        raw=raw,
        engine_setup=engine_setup,
        raw_setup=lambda: raw_setup(publish=True),
        bare=raw,
        bare_setup=lambda: raw_setup(publish=False),
        bare_times=bare_times,
        rounds=_rounds(benchmark, 50),
    )
    for advance in engine_out:
        assert advance["status"] == "waiting"
        assert [a["step_id"] for a in advance["pending_actions"]] == ["ask2"]
    assert raw_out and all(a == {"status": "waiting", "pending": "ask2"} for a in raw_out)
    _record(benchmark, "resumption", raw_times, bare_times)


@pytest.mark.benchmark(group="interpreter/status-query")
async def test_status_query(
    benchmark: Any, client: Client, worker: Worker, raw_worker: Worker, cleanup: list[Any]
) -> None:
    engine_handle = await start(client, _definition(PROMPTS_YAML))
    raw_handle = await _start_raw_wait(client, ["ask1", "ask2"])
    cleanup.extend([engine_handle, raw_handle])
    await _poll(engine_handle, "get_status", _engine_waits_at("ask1"))
    await _poll(raw_handle, "status", _raw_waits_at("ask1"))

    async def engine(_: Any) -> Any:
        return await engine_handle.query("get_status")

    async def raw(_: Any) -> Any:
        return await raw_handle.query("status")

    engine_out, raw_out, raw_times = await _interleaved(
        benchmark, engine=engine, raw=raw, rounds=_rounds(benchmark, 100), warmup=3, pause=0
    )
    for status in engine_out:
        assert status["status"] == "waiting" and status["current_step"] == "ask1"
    assert raw_out and all(s["status"] == "waiting" and s["pending"] == "ask1" for s in raw_out)
    if not benchmark.disabled:
        benchmark.extra_info["engine_status_bytes"] = len(json.dumps(engine_out[-1]))
        benchmark.extra_info["raw_status_bytes"] = len(json.dumps(raw_out[-1]))
    _record(benchmark, "status query", raw_times)


@pytest.mark.benchmark(group="interpreter/inline-run")
async def test_inline_run(
    benchmark: Any, client: Client, worker: Worker, raw_worker: Worker
) -> None:
    async def engine(_: Any) -> Any:
        handle = await start(client, _definition(INLINE_YAML))
        return await handle.result()

    async def raw(_: Any) -> Any:
        return await client.execute_workflow(
            RawStepsWorkflow.run, INLINE_STEPS, id=unique_id("raw-steps"), task_queue=RAW_QUEUE
        )

    engine_out, raw_out, raw_times = await _interleaved(
        benchmark, engine=engine, raw=raw, rounds=_rounds(benchmark, 25)
    )
    assert engine_out and all(result == INLINE_RESULT for result in engine_out)
    assert raw_out and all(result == INLINE_RESULT for result in raw_out)
    _record(benchmark, "10 inline steps (run)", raw_times)
    if benchmark.disabled:
        return
    # An upper bound on step dispatch: the whole run's overhead over raw (sandbox, definition
    # load, ...) charged to its steps, from each round's pair.
    pairs = zip(gate.engine_times(benchmark), raw_times, strict=True)
    dispatch = gate.record(
        benchmark,
        "step dispatch",
        [engine - raw for engine, raw in pairs],
        per=INLINE_STEPS,
        unit="per step",
        note="(engine - raw) of a 10-step inline run per round, / 10 (a bound: per-run costs"
        " are charged to the steps)",
    )
    assert dispatch is not None
    REPORT["step dispatch"] = Row("step dispatch", dispatch["median_s"], None)


@pytest.mark.benchmark(group="interpreter/foreach")
async def test_foreach_spawn(
    benchmark: Any, client: Client, worker: Worker, raw_worker: Worker
) -> None:
    # A smoke run (benchmarks disabled) fans out over 10 items only, to stay quick.
    items = list(range(10 if benchmark.disabled else FANOUT))
    expected = [2 * item for item in items]

    parents: dict[str, str] = {}

    async def engine(_: Any) -> Any:
        handle = await start(client, _definition(FOREACH_YAML), {"items": items})
        parents["engine"] = handle.id
        return await handle.result()

    async def raw(_: Any) -> Any:
        parents["raw"] = unique_id("raw-parent")
        return await client.execute_workflow(
            RawParentWorkflow.run, items, id=parents["raw"], task_queue=RAW_QUEUE
        )

    # No warm-up round: one engine round takes seconds, and the earlier tests warmed the workers.
    engine_out, raw_out, raw_times = await _interleaved(
        benchmark, engine=engine, raw=raw, rounds=_rounds(benchmark, 3), warmup=0
    )
    assert engine_out and all(result == expected for result in engine_out)
    assert raw_out and all(result == expected for result in raw_out)
    _record(benchmark, "foreach spawn / child", raw_times, per=len(items))
    if not benchmark.disabled:
        engine_bytes = await _history_bytes(client, parents["engine"])
        raw_bytes = await _history_bytes(client, parents["raw"])
        benchmark.extra_info["parent_history_bytes"] = engine_bytes
        benchmark.extra_info["raw_parent_history_bytes"] = raw_bytes
        SIZES["foreach parent history / child"] = (engine_bytes / FANOUT, raw_bytes / FANOUT)


async def _history_bytes(client: Client, workflow_id: str) -> int:
    """The size of a run's history, through every continue-as-new (the protobuf events)."""
    first = await client.get_workflow_handle(workflow_id).describe()
    run_id: str | None = first.raw_description.workflow_execution_info.first_run_id or None
    total = 0
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        total += sum(event.ByteSize() for event in history.events)
        last = history.events[-1]
        attributes = last.workflow_execution_continued_as_new_event_attributes
        run_id = attributes.new_execution_run_id or None
    return total


@pytest.mark.benchmark(group="interpreter/foreach-inline")
async def test_foreach_inline(
    benchmark: Any, client: Client, worker: Worker, raw_worker: Worker
) -> None:
    """A foreach of 10 items of one inline step (they run inside the run) vs a raw-SDK workflow
    running 10 trivial local activities at once."""
    items = list(range(SMALL_FANOUT))
    expected = [2 * item for item in items]

    async def engine(_: Any) -> Any:
        handle = await start(client, _definition(INLINE_FOREACH_YAML), {"items": items})
        return await handle.result()

    async def raw(_: Any) -> Any:
        return await client.execute_workflow(
            RawLocalFanoutWorkflow.run, items, id=unique_id("raw-local"), task_queue=RAW_QUEUE
        )

    engine_out, raw_out, raw_times = await _interleaved(
        benchmark, engine=engine, raw=raw, rounds=_rounds(benchmark, 25)
    )
    assert engine_out and all(result == expected for result in engine_out)
    assert raw_out and all(result == expected for result in raw_out)
    _record(benchmark, "foreach of 10 inline items", raw_times)


@pytest.mark.benchmark(group="interpreter/parallel")
async def test_parallel_branches(benchmark: Any, client: Client, worker: Worker) -> None:
    """A parallel of 10 branches of one inline step each vs the same 10 steps in sequence (the
    engine both times): the branches must cost no more than the steps plus a workflow task."""

    async def engine(_: Any) -> Any:
        handle = await start(client, _definition(PARALLEL_YAML))
        return await handle.result()

    async def sequential(_: Any) -> Any:
        handle = await start(client, _definition(INLINE_YAML))
        return await handle.result()

    engine_out, raw_out, raw_times = await _interleaved(
        benchmark, engine=engine, raw=sequential, rounds=_rounds(benchmark, 25)
    )
    assert engine_out and all(result == PARALLEL_RESULT for result in engine_out)
    assert raw_out and all(result == INLINE_RESULT for result in raw_out)
    if benchmark.disabled or benchmark.stats is None:
        return
    times = gate.engine_times(benchmark)
    REPORT["parallel of 10 inline branches"] = Row(
        "parallel of 10 inline branches",
        benchmark.stats.stats.median,
        statistics.median(raw_times),
    )
    gate.record(
        benchmark,
        "parallel of 10 inline branches",
        times,
        raw=raw_times,
        added=gate.paired_added(times, raw_times),
        note="baseline: the engine running the same 10 steps in sequence",
    )


# --------------------------------------------------------------------------- pure-Python benchmarks


@functools.cache
def _records_state(size: int) -> dict[str, Any]:
    """A state of about ``size`` bytes of small records (many tiny maps: the worst case)."""
    records: list[dict[str, Any]] = []
    state: dict[str, Any] = {"approved": True, "records": records}
    total = _json_size(state)
    while total < size:
        index = len(records)
        record = {
            "id": index,
            "name": f"record-{index:06d}",
            "region": ("us-east-1", "eu-west-1", "ap-southeast-2")[index % 3],
            "weight": index * 0.5,
            "tags": ["alpha", "beta", str(index)],
            "ok": index % 2 == 0,
        }
        records.append(record)
        total += _json_size(record) + (1 if index else 0)  # the comma between records
    return state


def _log_text(rng: random.Random, size: int) -> str:
    words = "deploy service region canary rollback error warning latency retry ok failed".split()
    lines: list[str] = []
    total = 0
    while total < size:
        line = " ".join(rng.choice(words) for _ in range(10)) + f" {rng.randint(0, 99999)}\n"
        lines.append(line)
        total += len(line)
    return "".join(lines)


@functools.cache
def _outputs_state(size: int) -> dict[str, Any]:
    """A state of about ``size`` bytes of step outputs: shell results with their logs.

    What makes a run's state large: the outputs steps store with ``output_to`` (command logs,
    an agent's answers), a few kilobytes of text each, beside small flags and counters.
    """
    rng = random.Random(7)
    outputs: list[dict[str, Any]] = []
    state: dict[str, Any] = {"approved": True, "attempt": 2, "outputs": outputs}
    while _json_size(state) < size:
        index = len(outputs)
        outputs.append(
            {
                "step": f"build_{index}",
                "exit_code": index % 7 == 3,
                "stdout": _log_text(rng, 8000),
                "stderr": _log_text(rng, 300) if index % 3 == 0 else "",
                "duration_ms": 1000 + index,
                "tags": ["shell", "build"],
            }
        )
    return state


def _serialization(benchmark: Any, operation: str, state: dict[str, Any]) -> None:
    """The state to and from its payload with the interpreter's size check, vs the converter."""
    converter = DataConverter.default.payload_converter
    mib = _json_size(state) / MIB

    def engine() -> Any:
        _json_size(state)
        return converter.from_payloads(converter.to_payloads([state]))[0]

    def raw() -> Any:
        return converter.from_payloads(converter.to_payloads([state]))[0]

    engine_out, raw_out, raw_times = _sync_interleaved(
        benchmark, engine=engine, raw=raw, rounds=_rounds(benchmark, 30), batch=1
    )
    assert engine_out == state and raw_out == state
    if not benchmark.disabled:
        benchmark.extra_info["state_mib"] = mib
    _record(benchmark, operation, raw_times, per=mib)


@pytest.mark.benchmark(group="interpreter/serialization")
def test_state_serialization(benchmark: Any) -> None:
    _serialization(benchmark, "state serialization / MiB", _outputs_state(MIB))


@pytest.mark.benchmark(group="interpreter/serialization")
def test_state_serialization_small_records(benchmark: Any) -> None:
    _serialization(benchmark, "state serialization / MiB (small records)", _records_state(MIB))


@pytest.mark.benchmark(group="interpreter/serialization")
def test_size_check(benchmark: Any) -> None:
    state = _records_state(MIB)
    mib = _json_size(state) / MIB
    size = benchmark.pedantic(_json_size, args=(state,), rounds=_rounds(benchmark, 30))
    assert size == len(json.dumps(state, separators=(",", ":")).encode())
    if not benchmark.disabled:
        benchmark.extra_info["state_mib"] = mib
    _record(benchmark, "size check / MiB", [], per=mib)


def _largest_action_step(definition: WorkflowDefinition) -> StepBase:
    """The action step with the most to render (its fields as JSON, nested steps left out)."""
    return max(
        (s for s in definition.iter_steps() if s.step_type in ACTION_STEP_TYPES),
        key=lambda s: len(json.dumps(s.model_dump(mode="json", exclude={"compensate"}))),
    )


@pytest.mark.benchmark(group="interpreter/dispatch")
def test_standard_action(benchmark: Any) -> None:
    definition = _example("deploy-service.yaml")
    step = _largest_action_step(definition)
    assert step.id == "canary"  # the hand-written equivalent below is of this step
    inputs = definition.validate_inputs({"service": "api", "git_ref": "abc123", "env": "prod"})
    # The interpreter's context for the step: state cut to needs_state, plus foreach variables.
    context = {
        "inputs": inputs,
        "state": {"build": {"image": "registry/api:abc123"}},
        "steps": {"current": {"status": "completed", "output": {"revision": 7}}},
        "workflow": {"id": "wf", "name": "deploy-service", "version": 3, "now": "2025-01-01"},
        "org": {"id": "default"},
        "region": "eu-west-1",
        "index": 1,
    }

    def raw() -> Any:
        build = context["state"].get("build")
        image = build.get("image") if isinstance(build, dict) else None
        if image is None:
            image = inputs["service"] + ":" + inputs["git_ref"]
        region = context["region"]
        return {
            "server": "k8s",
            "tool": "apply_canary",
            "params": {
                "region": region,
                "name": inputs["service"],
                "image": image,
                "weight": inputs["canary_weight"],
                "labels": {**inputs["labels"], "region": region, "wave": str(context["index"])},
                "dry_run": inputs["dry_run"],
            },
        }

    engine_out, raw_out, raw_times = _sync_interleaved(
        benchmark,
        engine=lambda: step.render_params(context),
        raw=raw,
        rounds=_rounds(benchmark, 200),
        batch=1 if benchmark.disabled else 20,
    )
    assert engine_out == raw_out
    assert engine_out["params"]["labels"] == {
        "team": "platform",
        "region": "eu-west-1",
        "wave": "1",
    }
    _record(benchmark, "standard action", raw_times, per=20)


@pytest.mark.benchmark(group="interpreter/dispatch")
def test_inline_step(benchmark: Any) -> None:
    step = _definition(INLINE_YAML).step("s1")
    inputs: dict[str, Any] = {}
    state: dict[str, Any] = {"count": 0}

    def engine() -> Any:
        context = {"inputs": inputs, "state": state, "steps": {}, "workflow": {}, "org": {}}
        if step.evaluate_when(context):
            values = step.render("set", context)
            state.update(values)
            _json_size(state)
            state["count"] = 0  # same input every call
            return values
        return None

    raw_state: dict[str, Any] = {"count": 0}

    def raw() -> Any:
        if raw_state["count"] < 100:
            values = {"count": raw_state["count"] + 1, "last": "s1"}
            raw_state.update(values)
            len(json.dumps(raw_state, separators=(",", ":"), ensure_ascii=False).encode())
            raw_state["count"] = 0
            return values
        return None

    engine_out, raw_out, raw_times = _sync_interleaved(
        benchmark,
        engine=engine,
        raw=raw,
        rounds=_rounds(benchmark, 200),
        batch=1 if benchmark.disabled else 20,
    )
    assert engine_out == raw_out == {"count": 1, "last": "s1"}
    _record(benchmark, "inline step", raw_times, per=20)


# --------------------------------------------------------------------------- report (runs last)


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.3f} ms"


@pytest.mark.filterwarnings("ignore::pytest_benchmark.logger.PytestBenchmarkWarning")
def test_zz_report(benchmark: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Not a benchmark: requests the fixture only so that --benchmark-only keeps it."""
    if benchmark.disabled:
        pytest.skip("benchmarks disabled: no timings to report")
    if not REPORT:
        pytest.skip("no interpreter timings were collected in this run")
    lines = [
        "",
        "== interpreter vs raw Temporal SDK (medians; engine/raw ratio) ==",
        f"{'operation':<42}{'engine':>13}{'raw':>13}{'ratio':>9}",
    ]
    for name in ORDER:
        row = REPORT.get(name)
        if row is None:
            continue
        ratio = f"{row.engine / row.raw:.2f}x" if row.raw else "-"
        lines.append(f"{name:<42}{_ms(row.engine):>13}{_ms(row.raw):>13}{ratio:>9}")
    for name, (engine_size, raw_size) in SIZES.items():
        ratio = f"{engine_size / raw_size:.2f}x"
        lines.append(f"{name:<42}{engine_size:>11,.0f} B{raw_size:>11,.0f} B{ratio:>9}")
    lines += [
        "",
        "step dispatch: median of (engine - raw) / 10 per round of the 10-step run (a bound).",
        "size check / MiB: the interpreter's _json_size of the state, run after every step.",
        "standard action, inline step: raw = the same dict built by hand-written Python.",
        "Targets (targets.toml) are checked by scripts/bench_gate.py (make bench).",
    ]
    with capsys.disabled():
        sys.stdout.write("\n".join(lines) + "\n")
