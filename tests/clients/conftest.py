"""Fixtures of the client tests: a control plane for clients written in other languages."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.helpers.devserver import DevServer
from tests.server.harness import ControlPlaneKit, open_control_plane


@pytest.fixture(scope="module")
async def plane(temporal_server: DevServer) -> AsyncIterator[ControlPlaneKit]:
    """A control plane serving one org, ``acme``."""
    running = await open_control_plane(temporal_server.address, tag="cli", orgs=("acme",))
    try:
        yield running
    finally:
        await running.close()
