"""Query load never stops a worker from taking workflow tasks, and SIGTERM always ends it.

The wedge, reproduced here first: a worker whose cache is smaller than the runs being queried
must evict one run to load another for each query. Concurrent queries of runs it does not hold
(a query that waits too long on a run's sticky queue is sent again on the shared one, so one
run soon has several tasks waiting for a cache slot) hit a fault of the Temporal SDK's core
(``workflow_stream.rs``, 1.35 and still so upstream): when the slot frees it drops an
activation ("Extra buffered run should not have produced an activation"). That run never
finishes its task, so it holds a task slot for good and the worker's shutdown waits for it
forever; a few such runs and the worker takes no workflow task at all.

The fix is in two places. The control plane asks each query once however many callers want
it, and at most a few at a time per namespace (``ClientPool.query``), so no load on it queues
tasks behind a worker's cache. And a stop is bounded whatever the SDK does: the worker pool
abandons a worker that has not stopped within its grace and margin, and ``engined`` exits on
its own watchdog at the latest.

The worker is a real ``engined worker`` subprocess with a cache of 10 runs (so that 40 waiting
runs exercise eviction on every query) and a grace of 2 seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from temporalio.client import Client

from engine.context import OrgContext
from engine.tenancy import Endpoint, PrefixResolver
from engine.worker import STOP_MARGIN
from tests.helpers.devserver import DevServer
from tests.helpers.processes import WorkerProcess
from tests.tenancy.orgkit import ASK, TASK_QUEUE, Tenancy, open_tenancy, unique_prefix

CACHED_RUNS = 10
WAITING_RUNS = 40
GRACE = 2.0
SDK_FAULT = "Extra buffered run should not have produced an activation"
# How long SIGTERM may take: the pool's bound (grace + margin), or engined's watchdog a little
# later; plus slack for a loaded machine.
EXIT_WITHIN = GRACE + STOP_MARGIN + 10.0 + 10.0


@dataclass
class Crowded:
    """An org whose only worker is a subprocess with a small cache, and runs waiting in it."""

    tenancy: Tenancy
    org: OrgContext
    worker: WorkerProcess
    waiting: list[str] = field(default_factory=list)


@pytest.fixture
async def crowded(temporal_server: DevServer) -> AsyncIterator[Crowded]:
    prefix = unique_prefix("wedge")
    resolver = PrefixResolver(Endpoint(temporal_server.address), prefix)
    provisioning = await open_tenancy(resolver, orgs=("w",))
    await provisioning.close()  # its in-process worker goes; the subprocess is the only one
    tenancy = await open_tenancy(resolver, workers=False)
    worker = WorkerProcess(
        temporal_server.address,
        TASK_QUEUE,
        namespace=None,
        orgs="w",
        env={
            "ENGINE_NAMESPACE_PREFIX": prefix,
            "ENGINE_WORKER_CACHED_RUNS": str(CACHED_RUNS),
            "ENGINE_WORKER_GRACE": str(GRACE),
        },
    )
    try:
        await worker.ready()
        crowded = Crowded(tenancy, tenancy.org("w"), worker)
        gate = asyncio.Semaphore(8)

        async def wait_one(number: int) -> str:
            async with gate:
                who = {"who": f"{number}"}
                run, _ = await tenancy.dispatcher.start_and_wait(crowded.org, ASK, who)
                return run.workflow_id

        crowded.waiting = list(await asyncio.gather(*(wait_one(n) for n in range(WAITING_RUNS))))
        yield crowded
    finally:
        worker.stop()
        await tenancy.close()


async def _probe(crowded: Crowded, timeout: float = 20.0) -> bool:
    """Can a new run start and suspend (a workflow task taken and completed) in time?"""
    try:
        _, advance = await asyncio.wait_for(
            crowded.tenancy.dispatcher.start_and_wait(crowded.org, ASK, {"who": "probe"}), timeout
        )
    except Exception:  # a timeout or an error: no
        return False
    return advance["status"] == "waiting"


async def _raw_storm(client: Client, waiting: list[str], lanes: int, same_run: int) -> None:
    """Queries as the old inbox asked them: straight to Temporal, ``same_run`` at once of each
    run, ``lanes`` runs at once."""

    async def ask(workflow_id: str) -> None:
        with contextlib.suppress(Exception):
            handle = client.get_workflow_handle(workflow_id)
            await handle.query("get_status", rpc_timeout=timedelta(seconds=5))

    async def lane(first: int) -> None:
        for turn in range(first, 1_000_000, lanes):
            await asyncio.gather(*(ask(waiting[turn % len(waiting)]) for _ in range(same_run)))

    await asyncio.gather(*(lane(first) for first in range(lanes)))


async def test_a_raw_query_storm_wedges_the_sdk_worker_and_sigterm_still_ends_it(
    crowded: Crowded,
) -> None:
    client = await crowded.tenancy.client("w")
    storm = asyncio.create_task(_raw_storm(client, crowded.waiting, lanes=16, same_run=4))
    try:
        deadline = time.monotonic() + 90
        while SDK_FAULT not in crowded.worker.output and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
    finally:
        storm.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await storm
    assert SDK_FAULT in crowded.worker.output, (
        "the raw query storm no longer trips the SDK worker's fault in 90 s: if a new "
        "temporalio fixed it, ClientPool.query's bound may be relaxed (and this test with it)"
    )

    took = await crowded.worker.terminate(timeout=EXIT_WITHIN)
    assert took is not None, (
        f"engined worker still running {EXIT_WITHIN}s after SIGTERM:\n"
        + crowded.worker.output[-3000:]
    )
    # 0: the pool abandoned the stuck worker and the process exited; 1: engined's watchdog.
    assert crowded.worker.process.returncode in (0, 1)


async def test_control_plane_load_leaves_the_worker_taking_tasks(crowded: Crowded) -> None:
    dispatcher = crowded.tenancy.dispatcher
    org = crowded.org
    answered = 0
    stop = asyncio.Event()

    async def reader(first: int) -> None:  # GetWorkflow, many callers, many runs
        nonlocal answered
        turn = first
        while not stop.is_set():
            with contextlib.suppress(Exception):
                await dispatcher.status(org, crowded.waiting[turn % len(crowded.waiting)])
                answered += 1
            turn += 7

    async def lister() -> None:  # ListPendingActions, page after page
        while not stop.is_set():
            with contextlib.suppress(Exception):
                await dispatcher.pending_actions(org, page_size=10)
            await asyncio.sleep(0)

    async def watcher(workflow_id: str) -> None:  # WatchWorkflow of waiting runs
        with contextlib.suppress(Exception):
            async for _ in dispatcher.watch(org, workflow_id):
                if stop.is_set():
                    return

    load = [asyncio.create_task(reader(first)) for first in range(128)]
    load += [asyncio.create_task(lister()) for _ in range(8)]
    load += [asyncio.create_task(watcher(w)) for w in crowded.waiting[:16]]
    probes: list[bool] = []
    try:
        until = time.monotonic() + 30
        while time.monotonic() < until:
            probes.append(await _probe(crowded))
            await asyncio.sleep(1)
    finally:
        stop.set()
        for task in load:
            task.cancel()
        await asyncio.gather(*load, return_exceptions=True)

    assert answered > 0
    assert probes and all(probes), f"probes {probes}:\n{crowded.worker.output[-3000:]}"
    assert SDK_FAULT not in crowded.worker.output
    took = await crowded.worker.terminate(timeout=EXIT_WITHIN)
    assert took is not None and crowded.worker.process.returncode == 0, crowded.worker.output
