"""Orgs without work cost no Temporal worker: at most max_active orgs are active in a process,
the others wake when a call reaches them or when a probe finds their work."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from engine.tenancy import Endpoint, PrefixResolver
from engine.worker import WorkerOptions
from tests.helpers.devserver import DevServer
from tests.tenancy.orgkit import QUICK, TASK_QUEUE, Tenancy, open_tenancy, unique_prefix

ORGS = ("d1", "d2", "d3", "d4", "d5", "d6")
PLACES = 2


def _core_workers() -> int:
    """Threads of SDK workers in this process (each has one 'workflow-processing' thread)."""
    names = []
    for task in Path("/proc/self/task").iterdir():
        try:
            names.append((task / "comm").read_text().strip())
        except OSError:  # the thread ended while we looked
            continue
    return sum(1 for name in names if name.startswith("workflow-proces"))


async def _until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds}s: {what}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def crowded(temporal_server: DevServer) -> AsyncIterator[tuple[Tenancy, Tenancy]]:
    """Six orgs, a pool with two places, and a control plane of its own (no wake-up calls)."""
    resolver = PrefixResolver(Endpoint(temporal_server.address), unique_prefix("dorm"))
    control = await open_tenancy(resolver, orgs=ORGS, workers=False)
    pool = Tenancy(
        resolver,
        task_queue=TASK_QUEUE,
        workers=WorkerOptions(
            workflow_task_threads=4,
            graceful_shutdown_seconds=2,
            max_active=PLACES,
            keep_active=PLACES,
        ),
        refresh_interval=None,
    )
    await pool.start()
    try:
        yield control, pool
    finally:
        await pool.close()
        await control.close()


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads threads from /proc")
async def test_six_orgs_share_two_places_and_every_run_completes(
    crowded: tuple[Tenancy, Tenancy],
) -> None:
    control, stack = crowded
    pool = stack.pool
    assert pool is not None
    assert pool.served_orgs == sorted(ORGS)
    await _until(lambda: len(pool.active_orgs) == PLACES, 10, "the first orgs take the places")

    most: list[int] = []

    async def watch() -> None:
        while True:
            most.append(len(pool.active_orgs))
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    try:
        # Through the pool's own stack: each call wakes its org at once.
        runs = [
            await stack.dispatcher.start(stack.org(o), QUICK, {"n": i}) for i, o in enumerate(ORGS)
        ]
        results = await asyncio.wait_for(
            asyncio.gather(
                *(
                    stack.dispatcher.result(stack.org(o), r.workflow_id)
                    for o, r in zip(ORGS, runs, strict=True)
                )
            ),
            60,
        )
        assert results == [2 * i for i in range(len(ORGS))]

        # Through another process's control plane: nothing wakes the dormant org but the probe
        # that finds its run's task waiting.
        dormant = next(o for o in ORGS if o not in pool.active_orgs)
        began = time.monotonic()
        run = await control.dispatcher.start(control.org(dormant), QUICK, {"n": 21})
        client = await control.client(dormant)
        assert (
            await asyncio.wait_for(client.get_workflow_handle(run.workflow_id).result(), 30) == 42
        )
        woken_in = time.monotonic() - began
    finally:
        watcher.cancel()
    assert max(most) <= PLACES
    assert woken_in < 15, woken_in
    # The SDK workers of the orgs that gave their place up are gone. (Their native threads
    # too: the capacity benchmark counts them in a process of its own; here other tests'
    # pools share the process, so a count of threads would measure them as well.)
    held = [o for o in pool._orgs.values() if o.worker is not None]
    assert len(held) <= PLACES
    assert _core_workers() >= len(held)  # each running SDK worker has its processing thread


async def test_an_org_used_lately_is_probed_often_and_one_long_idle_rarely(
    crowded: tuple[Tenancy, Tenancy],
) -> None:
    _, stack = crowded
    pool = stack.pool
    assert pool is not None
    await asyncio.sleep(5)  # the dormant orgs find nothing, probe after probe
    dormant = [o for o in pool._orgs.values() if not o.active]
    assert dormant
    assert all(o.probe_every >= 2 * pool.options.probe_interval for o in dormant)
    pool.wake(dormant[0].target.org_id)
    assert dormant[0].probe_every == 0
    assert all(o.probe_every <= pool.options.probe_max_interval for o in dormant)


async def test_a_burst_takes_more_places_and_gives_them_back_when_idle(
    temporal_server: DevServer,
) -> None:
    resolver = PrefixResolver(Endpoint(temporal_server.address), unique_prefix("burst"))
    stack = Tenancy(
        resolver,
        task_queue=TASK_QUEUE,
        workers=WorkerOptions(
            workflow_task_threads=4,
            graceful_shutdown_seconds=2,
            max_active=4,
            keep_active=1,
            idle_after=1.0,
        ),
        refresh_interval=None,
    )
    await stack.start()
    try:
        orgs = ("b1", "b2", "b3")
        await asyncio.gather(*(stack.provisioner.provision(o) for o in orgs))
        pool = stack.pool
        assert pool is not None
        runs = [await stack.dispatcher.start(stack.org(o), QUICK, {"n": 1}) for o in orgs]
        for org_id, run in zip(orgs, runs, strict=True):
            assert await stack.dispatcher.result(stack.org(org_id), run.workflow_id) == 2
        assert len(pool.active_orgs) == 3  # the burst: beyond keep_active, within max_active
        await _until(lambda: len(pool.active_orgs) == 1, 10, "back to keep_active when idle")
        assert pool.served_orgs == sorted(orgs)
    finally:
        await stack.close()
