"""Each test module of the HTTP faces gets its own control plane (orgs ``north`` and ``south``)
and an HTTP API server in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from engine.gateway import HttpApiServer
from tests.helpers.devserver import DevServer
from tests.server.harness import ControlPlaneKit, open_control_plane


@pytest.fixture(scope="module")
async def kit(temporal_server: DevServer) -> AsyncIterator[ControlPlaneKit]:
    opened = await open_control_plane(temporal_server.address, tag="http", orgs=("north", "south"))
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(scope="module")
async def api(kit: ControlPlaneKit) -> AsyncIterator[HttpApiServer]:
    server = HttpApiServer(kit.address, host="127.0.0.1", port=0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
