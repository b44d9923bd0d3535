"""Temporal goes away and comes back: bounded failures, then recovery without a restart.

This module runs its own dev server, persisted to a SQLite file on a fixed port, so that it can
be stopped and started again with its state: the same ClientPool, dispatcher and WorkerPool
must fail fast while it is down and work again, unchanged, once it is back.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.dispatcher import TemporalDispatcher
from engine.tenancy import ClientPool, Endpoint, PrefixResolver, TemporalUnavailableError
from tests.helpers.devserver import DevServer, free_port, start_dev_server
from tests.tenancy.orgkit import (
    ASK,
    QUICK,
    Tenancy,
    eventually,
    open_tenancy,
    unique_prefix,
    wait_for_action,
)

BOUND = 15.0
"""Seconds within which any call must give up while Temporal is down."""


@dataclass
class _Outage:
    database: Path
    port: int
    server: DevServer
    tenancy: Tenancy | None = None

    @property
    def engine(self) -> Tenancy:
        assert self.tenancy is not None
        return self.tenancy

    async def restart(self) -> None:
        self.server = await start_dev_server(db_filename=str(self.database), port=self.port)


@pytest.fixture(scope="module")
async def outage(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[_Outage]:
    database = tmp_path_factory.mktemp("outage") / "temporal.db"
    port = free_port()
    state = _Outage(database, port, await start_dev_server(db_filename=str(database), port=port))
    try:
        resolver = PrefixResolver(Endpoint(state.server.address), unique_prefix("down"))
        state.tenancy = await open_tenancy(resolver, orgs=("o",), refresh_interval=1.0)
        try:
            yield state
        finally:
            await state.engine.close()
    finally:
        state.server.stop()


Call = Callable[[], Awaitable[Any]]


async def _timed(call: Call) -> tuple[BaseException | None, float]:
    started = time.monotonic()
    try:
        await call()
    except Exception as error:
        return error, time.monotonic() - started
    return None, time.monotonic() - started


async def test_calls_fail_fast_while_temporal_is_down_and_work_once_it_is_back(
    outage: _Outage,
) -> None:
    tenancy = outage.engine
    dispatcher, org = tenancy.dispatcher, tenancy.org("o")
    before = await dispatcher.start(org, ASK, {"who": "kim"})
    action = await wait_for_action(dispatcher, org, before.workflow_id, "ask")

    outage.server.stop()

    # A dispatcher that never connected (a replica started during the outage) fails as fast.
    fresh = TemporalDispatcher(tenancy.resolver, ClientPool())
    calls: dict[str, Call] = {
        "status": lambda: dispatcher.status(org, before.workflow_id),
        "start": lambda: dispatcher.start(org, QUICK),
        "list": lambda: dispatcher.list(org),
        "pending_actions": lambda: dispatcher.pending_actions(org),
        "submit_result": lambda: dispatcher.submit_result(
            org, before.workflow_id, action_id=action["action_id"], result=True
        ),
        "signal": lambda: dispatcher.signal(org, before.workflow_id, "cancel_workflow", "x"),
        "cancel": lambda: dispatcher.cancel(org, before.workflow_id),
        "update_timeout": lambda: dispatcher.update_timeout(org, before.workflow_id, "ask", 5),
        "a fresh connection": lambda: fresh.status(org, before.workflow_id),
    }
    outcomes = dict(
        zip(calls, await asyncio.gather(*(_timed(c) for c in calls.values())), strict=True)
    )
    for name, (error, elapsed) in outcomes.items():
        assert isinstance(error, TemporalUnavailableError), (name, error)
        assert error.code == "UNAVAILABLE"
        assert elapsed < BOUND, (name, elapsed)
        if name == "a fresh connection":
            assert str(error).startswith(f"cannot reach Temporal at {outage.server.address}")
        else:
            assert str(error).startswith(
                f"Temporal did not answer for org 'o' (namespace '{org.namespace}')"
            ), name

    await outage.restart()

    # The same objects recover: the run kept its state, its action, and takes its result.
    status = await eventually(
        lambda: dispatcher.status(org, before.workflow_id),
        lambda s: True,
        timeout=30,
        what="the dispatcher answering again",
    )
    assert status["status"] == "waiting"
    assert [a["action_id"] for a in status["pending_actions"]] == [action["action_id"]]
    advance = await dispatcher.submit_result(
        org, before.workflow_id, action_id=action["action_id"], result=True
    )
    assert advance["result"] == "hello kim"
    # The worker pool is back at work: a new run completes.
    after = await dispatcher.start(org, QUICK, {"n": 7})
    assert await asyncio.wait_for(dispatcher.result(org, after.workflow_id), 20) == 14
    assert tenancy.pool.served_orgs == ["o"]
    assert tenancy.clients.connection_count == 1
    assert await fresh.status(org, before.workflow_id)  # the fresh one connects now


async def test_shutdown_leaves_nothing_running(outage: _Outage) -> None:
    pool = outage.engine.pool
    prefix = outage.engine.org("o").namespace
    ours = [
        t
        for t in asyncio.all_tasks()
        if t.get_name().startswith("worker (") and prefix in t.get_name()
    ]
    assert ours and pool.served_orgs == ["o"]

    await pool.stop()

    assert pool.served_orgs == []
    assert all(task.done() for task in ours)
    assert [
        t.name for t in threading.enumerate() if t.name.startswith("engine-workflow-task")
    ] == []
