"""A run whose query timed out is not asked again at once, and its slot stays taken a while.

The query may still be buffered in a worker waiting for a cache slot; a second one of the same
run is what trips the SDK fault ``ClientPool.query`` guards against. The run here has no worker
at all (a task queue nobody polls), so its queries time out for real on the dev server.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import pytest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from engine.tenancy import ClientPool, Endpoint, NamespaceTarget
from tests.helpers.devserver import DevServer

TIMEOUT = timedelta(seconds=1)


async def test_a_timed_out_query_cools_its_run_and_keeps_its_slot(
    temporal_server: DevServer, client: Client
) -> None:
    handle = await client.start_workflow(
        "nobody-runs-this", id=f"cool-{uuid.uuid4().hex}", task_queue=f"idle-{uuid.uuid4().hex}"
    )
    pool = ClientPool(queries_per_namespace=2)
    target = NamespaceTarget("default", "default", Endpoint(temporal_server.address))
    try:
        with pytest.raises(RPCError) as first:
            await pool.query(target, handle, "get_status", rpc_timeout=TIMEOUT)
        assert first.value.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED)
        slots = pool._query_slots[(target.endpoint, target.namespace)]
        assert slots._value == 1  # the timed-out query's slot is still taken

        began = time.monotonic()
        with pytest.raises(RPCError) as second:
            await pool.query(target, handle, "get_status", rpc_timeout=TIMEOUT)
        assert second.value.status in (RPCStatusCode.CANCELLED, RPCStatusCode.DEADLINE_EXCEEDED)
        waited = time.monotonic() - began
        # It waited out the first one's cooldown (1 s), then was asked and timed out (1 s).
        assert waited >= 1.5
        assert slots._value == 1  # the first gave its slot back after its cooldown; not the second
    finally:
        await handle.terminate()


async def test_two_queries_of_one_run_are_never_in_flight_at_once(
    temporal_server: DevServer, client: Client
) -> None:
    handle = await client.start_workflow(
        "nobody-runs-this", id=f"turns-{uuid.uuid4().hex}", task_queue=f"idle-{uuid.uuid4().hex}"
    )
    pool = ClientPool(queries_per_namespace=4)
    target = NamespaceTarget("default", "default", Endpoint(temporal_server.address))
    ended: dict[str, float] = {}

    async def ask(name: str, *args: object) -> None:
        with pytest.raises(RPCError):
            await pool.query(target, handle, name, *args, rpc_timeout=TIMEOUT)
        ended[name] = time.monotonic()

    try:
        began = time.monotonic()
        await asyncio.gather(ask("get_status"), ask("get_changes", 0))
        # Different queries of one run (not coalesced): the second waited for the first to
        # end, then for its cooldown; it was never queued for the worker beside it.
        first, second = sorted(ended.values())
        assert first - began >= 0.9
        assert second - first >= 0.9
        assert pool._run_turns == {} and pool._run_askers == {}  # nothing kept per run
    finally:
        await handle.terminate()
