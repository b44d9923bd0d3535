"""Session fixtures: one real Temporal dev server, a client, and an interpreter worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from engine.workflow import build_worker, ensure_search_attributes
from tests.helpers.devserver import DevServer, start_dev_server
from tests.helpers.runs import TASK_QUEUE


@pytest.fixture(scope="session")
async def temporal_server() -> AsyncIterator[DevServer]:
    """``temporal server start-dev`` (in memory) on free ports, for the whole session."""
    server = await start_dev_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def client(temporal_server: DevServer) -> Client:
    """A client of the dev server's ``default`` namespace, with the search attributes."""
    connected = await temporal_server.connect()
    await ensure_search_attributes(connected)
    return connected


@pytest.fixture(scope="session")
async def worker(client: Client) -> AsyncIterator[Worker]:
    """An interpreter worker polling the tests' task queue for the whole session."""
    async with build_worker(client, task_queue=TASK_QUEUE) as running:
        yield running
