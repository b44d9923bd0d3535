"""A control plane with a short action lease, two orgs, and executors of either org."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest

from engine.config import ClientSettings
from engine.executor import Executor
from tests.executor.kit import LEASE, register_all
from tests.helpers.devserver import DevServer
from tests.server.harness import ControlPlaneKit, open_control_plane


@pytest.fixture(scope="module")
async def kit(temporal_server: DevServer) -> AsyncIterator[ControlPlaneKit]:
    opened = await open_control_plane(
        temporal_server.address,
        tag="exec",
        orgs=("north", "south"),
        action_lease=timedelta(seconds=LEASE),
    )
    try:
        for org_id in ("north", "south"):
            await register_all(opened, org_id)
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def executors(kit: ControlPlaneKit) -> AsyncIterator[Callable[..., Executor]]:
    """Make executors of an org (closed at the end of the test)."""
    made: list[Executor] = []

    def make(org_id: str = "north", identity: str | None = None) -> Executor:
        executor = Executor(
            ClientSettings(address=kit.address, token=kit.token(org_id)), identity=identity
        )
        made.append(executor)
        return executor

    yield make
    for executor in made:
        await executor.close()
