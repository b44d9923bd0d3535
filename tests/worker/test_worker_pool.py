"""The worker pool in one process: shards, one worker per org, and a clean shutdown."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from temporalio.client import WorkflowExecutionStatus

from engine.dispatcher import TemporalDispatcher
from engine.tenancy import Endpoint, PrefixResolver, TemporalUnavailableError
from tests.helpers.devserver import DevServer
from tests.tenancy.orgkit import ASK, QUICK, Tenancy, open_tenancy, unique_prefix, wait_for_action


def _worker_tasks() -> list[asyncio.Task[object]]:
    """The pool's worker tasks still running (each is named ``worker (org, namespace)``)."""
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("worker (") and not t.done()]


async def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the pool did not get there in time"
        await asyncio.sleep(0.05)


def _pool_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("engine-workflow-task")]


async def test_a_shard_serves_only_its_orgs(sharded: Tenancy) -> None:
    await sharded.provisioner.provision("outside")
    assert sharded.pool.served_orgs == ["first"]

    # Serving an org twice (provisioned again, refreshed) keeps one worker.
    await sharded.provisioner.provision("first")
    await sharded.pool.refresh()
    await _until(lambda: sharded.pool.active_orgs == ["first"])
    namespace = sharded.org("first").namespace
    assert len([t for t in _worker_tasks() if namespace in t.get_name()]) == 1
    assert sharded.pool.served_orgs == ["first"]


async def test_stop_leaves_no_worker_task_or_thread(temporal_server: DevServer) -> None:
    resolver = PrefixResolver(Endpoint(temporal_server.address), unique_prefix("stop"))
    tenancy = await open_tenancy(resolver, orgs=("s1", "s2"), refresh_interval=0.2)
    pool, dispatcher = tenancy.pool, tenancy.dispatcher
    try:
        s1, s2 = tenancy.org("s1"), tenancy.org("s2")
        done = await dispatcher.start(s1, QUICK, {"n": 3})
        assert await dispatcher.result(s1, done.workflow_id) == 6
        waiting = await dispatcher.start(s2, ASK)
        await wait_for_action(dispatcher, s2, waiting.workflow_id, "ask")
        assert pool.served_orgs == ["s1", "s2"]
        assert len(_worker_tasks()) >= 2
        assert _pool_threads(), "the runs above ran on the pool's threads"
        ours = {t for t in _worker_tasks() if resolver.prefix in t.get_name()}

        started = time.monotonic()
        await pool.stop()

        assert time.monotonic() - started < 5  # a run waiting on an action does not hold it
        assert pool.served_orgs == []
        assert all(task.done() for task in ours)
        assert _pool_threads() == []
        # Stopped for good: neither provisioning nor the (cancelled) refresh starts a worker.
        await tenancy.provisioner.provision("s3")
        await asyncio.sleep(0.5)
        assert pool.served_orgs == []
        assert not {t for t in _worker_tasks() if resolver.prefix in t.get_name()}
        await pool.stop()  # a second stop is harmless
        # The waiting run is Temporal's, not the pool's: it is still there, running. Its status
        # query, with no worker left to answer, fails in bounded time as unavailable.
        client = await tenancy.client("s2")
        described = await client.get_workflow_handle(waiting.workflow_id).describe()
        assert described.status == WorkflowExecutionStatus.RUNNING
        impatient = TemporalDispatcher(resolver, tenancy.clients, rpc_timeout=timedelta(seconds=1))
        started = time.monotonic()
        silent = "Temporal did not answer in time for org 's2'"
        with pytest.raises(TemporalUnavailableError, match=silent):
            await impatient.status(s2, waiting.workflow_id)
        assert time.monotonic() - started < 5
        await dispatcher.cancel(s2, waiting.workflow_id)
    finally:
        await tenancy.close()
