"""A second worker process discovers an org another process provisioned, and runs its runs.

The second pool runs in a subprocess (``pool_process.py``): its own interpreter, ClientPool and
pool, exactly what a second ``engined worker`` has. Nothing but Temporal connects the two.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest

from engine.tenancy import ENGINE_TAG, ClientPool, OrgDirectory, PrefixResolver
from tests.helpers.devserver import DevServer
from tests.tenancy.orgkit import QUICK, Tenancy

SCRIPT = Path(__file__).with_name("pool_process.py")
ROOT = SCRIPT.parents[2]


class _Process:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.log: list[str] = []

    async def next_report(self, timeout: float = 20.0) -> dict[str, Any]:
        assert self.process.stdout is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:  # Temporal's core logs its warnings to stdout too: skip them
            line = await asyncio.wait_for(
                self.process.stdout.readline(), max(deadline - loop.time(), 0.01)
            )
            assert line, "the worker process exited"
            if line.startswith(b"{"):
                report: dict[str, Any] = json.loads(line)
                return report
            self.log.append(line.decode(errors="replace"))

    async def until_served(self, org_id: str, timeout: float = 20.0) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            report = await self.next_report(max(deadline - loop.time(), 0.01))
            if org_id in report["served"]:
                return report


@pytest.fixture
async def second_process(temporal_server: DevServer, sharded: Tenancy) -> AsyncIterator[_Process]:
    assert isinstance(sharded.resolver, PrefixResolver)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        temporal_server.address,
        sharded.resolver.prefix,
        "0.3",
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": ""},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        yield _Process(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_a_second_pool_discovers_a_new_org_and_runs_its_workflows(
    sharded: Tenancy, second_process: _Process
) -> None:
    # The second process finds the org that exists already.
    first_report = await second_process.until_served("first")
    pid = first_report["pid"]

    # The first process provisions "late" but does not serve it (not in its shard).
    org = await sharded.provisioner.provision("late")
    assert org.created is True
    assert sharded.pool.served_orgs == ["first"]
    report = await second_process.until_served("late", timeout=10)
    assert report["served"] == ["first", "late"]

    # Discovered only once ready: a worker polling a namespace the server does not know yet
    # would back off for seconds, and the org's first runs would wait that long.
    late = sharded.org("late")
    started = time.monotonic()
    run = await sharded.dispatcher.start(late, QUICK, {"n": 4})
    assert await asyncio.wait_for(sharded.dispatcher.result(late, run.workflow_id), 15) == 8
    assert time.monotonic() - started < 5

    # The only worker of "late" is the second process: its identity took the workflow task.
    client = await sharded.client("late")
    identities = {
        event.workflow_task_started_event_attributes.identity
        async for event in client.get_workflow_handle(run.workflow_id).fetch_history_events()
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
    }
    assert identities and all(i.startswith(f"{pid}@") for i in identities)

    # Closing its stdin stops that pool: no worker, no workflow-task thread left behind.
    assert second_process.process.stdin is not None
    second_process.process.stdin.close()
    last = await second_process.next_report()
    while "stopped" not in last:
        last = await second_process.next_report()
    assert last["served"] == []
    assert last["threads"] == []
    assert await asyncio.wait_for(second_process.process.wait(), 15) == 0


async def test_discovery_skips_an_org_whose_provisioning_has_not_finished(
    sharded: Tenancy,
) -> None:
    # Registered with the engine's tag, but its search attributes never added: as if the
    # provisioning process died half-way, or is still at it.
    namespace = sharded.resolver.resolve("half").namespace
    connection = await sharded.clients.connection(sharded.resolver.endpoints()[0])
    await connection.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace,
            workflow_execution_retention_period=Duration(seconds=86400),
            data={ENGINE_TAG: "half"},
        )
    )
    discovery = OrgDirectory(sharded.resolver, ClientPool())

    assert "half" in [o.org_id for o in await discovery.list_orgs()]
    assert "half" not in [s.org_id for s in await discovery.list_served()]

    # Provisioning it again (idempotent) finishes the job; from then on it is served.
    assert (await sharded.provisioner.provision("half")).created is False
    served = {s.org_id: s for s in await discovery.list_served()}
    assert "half" in served
    assert served["half"].namespace == namespace
