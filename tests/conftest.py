"""Session fixtures: one real Temporal dev server, a client, and an interpreter worker."""

from __future__ import annotations

import ast
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from engine.workflow import build_worker, ensure_search_attributes
from tests.helpers.devserver import DevServer, start_dev_server
from tests.helpers.runs import TASK_QUEUE


def _serialize_ast_parse() -> None:
    """Make ``ast.parse`` safe to call from several threads at once.

    CPython 3.11 keeps the AST converter's recursion counter in per-interpreter state, so two
    threads inside ``ast.parse`` at once can upset it, and one of them raises ``SystemError:
    AST constructor recursion depth mismatch`` (see python/cpython#106905 and its reports).
    The worker pool's workflow-task threads parse whenever a run fails (the Temporal SDK
    formats the failure's traceback, and 3.11's ``traceback`` parses each line for its ^~~
    anchors) while pytest parses in the main thread (assertion rewriting, failure reports,
    plugin imports): the session then ends in an INTERNALERROR. One lock around every parse
    removes the race.
    """
    if getattr(ast.parse, "_serialized", False):
        return
    lock = threading.RLock()
    original = ast.parse

    def parse(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(*args, **kwargs)

    parse._serialized = True  # type: ignore[attr-defined]
    ast.parse = parse  # type: ignore[assignment]


_serialize_ast_parse()

# Imported now, while no worker thread compiles: hypothesis's pytest plugin imports this at the
# session's end otherwise, and pytest's assertion rewriting of it (a parse outside the lock,
# through compile()) could meet a worker thread's sandbox import compiling a module.
import hypothesis.internal.observability  # noqa: E402, F401


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
