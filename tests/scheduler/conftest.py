"""Fixtures of the schedule tests: the stack of ``stack.py`` on the session's dev server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.helpers.devserver import DevServer
from tests.scheduler.stack import Stack, open_stack


@pytest.fixture(scope="module")
async def stack(temporal_server: DevServer) -> AsyncIterator[Stack]:
    """Two orgs with ``tick`` and ``hold``, a Scheduler and a control plane, per module."""
    async with open_stack(temporal_server.address) as running:
        yield running


@pytest.fixture
async def made(stack: Stack) -> AsyncIterator[Stack]:
    """The stack; the schedules a test tracks (``stack.track``) are deleted after it."""
    yield stack
    await stack.delete_created()
