"""A stack for the schedule tests: two orgs, their definitions, a Scheduler and a control plane.

Kept apart from ``conftest.py`` so that test modules (and the scheduler benchmark) can import
its names. Wired like ``engined`` wires it, by the engine's own stack (see
``tests/tenancy/orgkit.py``): a resolver with a prefix of its own, with a worker pool (so
schedule runs are executed), and its control plane on a free port. The tests that drive the
Scheduler directly use the stack's.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import grpc
from temporalio.client import Client, WorkflowExecution
from temporalio.service import RPCError

from engine.api.v1 import schedule_service_pb2_grpc, workflow_service_pb2_grpc
from engine.context import OrgContext
from engine.dispatcher import DefinitionRegistry
from engine.identity import TokenVerifier, issue_token
from engine.scheduler import ScheduleNotFoundError, Scheduler
from engine.server import ControlPlane
from engine.tenancy import Endpoint, PrefixResolver
from tests.tenancy.orgkit import Tenancy, eventually, open_tenancy, unique_prefix

__all__ = [
    "HOLD",
    "ORGS",
    "SECRET",
    "TICK",
    "TICK_V2",
    "Stack",
    "open_stack",
    "register",
    "runs_of",
    "schedule_id",
]

SECRET = "scheduler-secret-" + uuid.uuid4().hex
ORGS = ("north", "south")
"""Two orgs: ``north`` holds the schedules, ``south`` tries to reach them (isolation)."""

TICK = """\
name: tick
version: 1
inputs:
  n: {type: integer, default: 1}
steps:
  - {id: double, type: set_state, set: {twice: "${{ inputs.n * 2 }}"}}
  - {id: done, type: return, value: "${{ state.twice }}"}
"""
"""No external step: a run completes as soon as a worker runs it."""

TICK_V2 = TICK.replace("version: 1", "version: 2").replace("inputs.n * 2", "inputs.n * 3")
"""A second version of ``tick`` (registered by the tests of version pinning)."""

HOLD = """\
name: hold
version: 1
inputs:
  who: {type: string, default: world}
steps:
  - {id: ask, type: prompt, prompt_type: confirm, message: "Go on, ${{ inputs.who }}?",
     output_to: ok}
  - {id: done, type: return, value: "${{ state.ok }}"}
"""
"""Waits on a confirm prompt: a long run, for as long as nobody answers."""


def schedule_id(tag: str) -> str:
    """A schedule id no other test uses."""
    return f"{tag}-{uuid.uuid4().hex[:8]}"


@dataclass
class Stack:
    """Two provisioned orgs, a Scheduler, and a started control plane with a channel to it."""

    tenancy: Tenancy
    registry: DefinitionRegistry
    scheduler: Scheduler
    server: ControlPlane
    channel: grpc.aio.Channel
    created: list[tuple[str, str]] = field(default_factory=list)

    @property
    def schedules(self) -> schedule_service_pb2_grpc.ScheduleServiceStub:
        return schedule_service_pb2_grpc.ScheduleServiceStub(self.channel)

    @property
    def workflows(self) -> workflow_service_pb2_grpc.WorkflowServiceStub:
        return workflow_service_pb2_grpc.WorkflowServiceStub(self.channel)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.port}"

    def org(self, org_id: str = "north") -> OrgContext:
        return self.tenancy.org(org_id)

    def metadata(self, org_id: str = "north") -> tuple[tuple[str, str], ...]:
        """The bearer token of ``org_id``, as call metadata."""
        return (("authorization", f"Bearer {issue_token(SECRET, org_id)}"),)

    async def client(self, org_id: str = "north") -> Client:
        return await self.tenancy.client(org_id)

    def track(self, sid: str, org_id: str = "north") -> str:
        """Remember a schedule to delete at the end (so it stops firing)."""
        self.created.append((org_id, sid))
        return sid

    async def delete_created(self) -> None:
        while self.created:
            org_id, sid = self.created.pop()
            with suppress(ScheduleNotFoundError):
                await self.scheduler.delete(self.org(org_id), sid)


async def runs_of(
    client: Client, sid: str, condition: str = "", *, limit: int = 100
) -> list[WorkflowExecution]:
    """The runs a schedule started, as visibility lists them (eventually consistent)."""
    query = f"TemporalScheduledById = '{sid}'" + (f" AND {condition}" if condition else "")
    found = []
    async for execution in client.list_workflows(query, limit=limit):
        found.append(execution)
    return found


async def register(registry: DefinitionRegistry, org: OrgContext, texts: Iterable[str]) -> None:
    """Register definitions (a new namespace may answer NOT_FOUND for a moment)."""
    for text in texts:

        async def once(text: str = text) -> Any:
            return await registry.register(org, text)

        await eventually(once, lambda _: True, what="registering a definition")


@asynccontextmanager
async def open_stack(temporal_address: str, tag: str = "sched") -> AsyncIterator[Stack]:
    """Provision ``ORGS`` with ``tick`` and ``hold`` registered in each, and start a server."""
    resolver = PrefixResolver(Endpoint(temporal_address), unique_prefix(tag))
    tenancy = await open_tenancy(resolver, orgs=ORGS)
    server: ControlPlane | None = None
    channel: grpc.aio.Channel | None = None
    stack: Stack | None = None
    try:
        for org_id in ORGS:
            await register(tenancy.registry, tenancy.org(org_id), (TICK, HOLD))
        server = tenancy.control_plane(TokenVerifier(SECRET), address="127.0.0.1:0")
        await server.start()
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
        stack = Stack(tenancy, tenancy.registry, tenancy.scheduler, server, channel)
        yield stack
    finally:
        if stack is not None:
            with suppress(RPCError):
                await stack.delete_created()
        if channel is not None:
            await channel.close()
        if server is not None:
            await server.stop(0)
        await tenancy.close()
