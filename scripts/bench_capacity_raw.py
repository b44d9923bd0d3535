#!/usr/bin/env python3
"""The raw-SDK fleet of ``scripts/bench_capacity.py``: one Temporal worker per namespace.

``bench_capacity.py`` starts this as a subprocess, so that the RSS, threads and CPU it reads from
``/proc/<pid>`` are the raw SDK's alone. It is what a team would write with the Temporal Python
SDK and nothing else: one :class:`~temporalio.client.Client` connection, a client per namespace
over it (``Client(connection.service_client, namespace=...)``), and in every namespace a
:class:`~temporalio.worker.Worker` with the SDK's default options (its own sandbox runner and
workflow-task thread pool) running one trivial workflow on a task queue of its own. It imports
only the standard library and ``temporalio``: nothing of the engine, gRPC's Python API or the
benchmark weighs on what is measured.

    python scripts/bench_capacity_raw.py --address 127.0.0.1:7233 --task-queue raw-fleet \
        --namespaces cap-org-000,cap-org-001

It talks to its parent in lines: JSON events on stdout, commands on stdin.

- ``{"event": "started", "workers": N}`` once every worker runs (the parent then waits until
  the server sees a poller in every namespace, and measures this process idle);
- on ``run``: one workflow per namespace, all at once, each with ``client.execute_workflow``
  (bounded by ``--budget`` seconds), then ``{"event": "ran", ...}`` with the wall time, how many
  returned the expected result, every failure's kind, and each run's start-to-result seconds;
- on ``stop`` (or end of input): the workers shut down, ``{"event": "stopped"}``, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from temporalio import workflow
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

__all__ = ["TrivialWorkflow", "main"]

MESSAGES_KEPT = 5
"""Distinct failure messages reported (the kinds are all counted)."""


@workflow.defn(name="raw-trivial")
class TrivialWorkflow:
    """The raw counterpart of the engine's tiny definition: double a number, return it."""

    @workflow.run
    async def run(self, n: int) -> dict[str, int]:
        return {"doubled": n * 2}


@dataclass
class _Fleet:
    clients: list[Client]
    workers: list[Worker]
    tasks: list[asyncio.Task[None]]


def _emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def _kind(error: BaseException) -> str:
    """A failure's kind: the RPC status for a refused call, else the exception's type."""
    if isinstance(error, RPCError):
        return f"RPCError {error.status.name}"
    return type(error).__name__


async def _start(address: str, namespaces: Sequence[str], task_queue: str) -> _Fleet:
    connection = await Client.connect(address)
    clients = [Client(connection.service_client, namespace=n) for n in namespaces]
    workers = [Worker(c, task_queue=task_queue, workflows=[TrivialWorkflow]) for c in clients]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    await asyncio.sleep(0)  # let every worker begin to poll
    return _Fleet(clients, workers, tasks)


async def _one_each(fleet: _Fleet, task_queue: str, budget: float) -> dict[str, Any]:
    """One workflow in every namespace at once; how it went."""
    seconds: list[float] = []
    failures: Counter[str] = Counter()
    messages: dict[str, str] = {}

    async def one(index: int, client: Client) -> bool:
        began = time.perf_counter()
        try:
            result = await asyncio.wait_for(
                client.execute_workflow(
                    TrivialWorkflow.run, index, id=f"raw-{uuid.uuid4().hex}", task_queue=task_queue
                ),
                budget,
            )
        except Exception as error:
            kind = _kind(error)
            failures[kind] += 1
            if len(messages) < MESSAGES_KEPT:
                messages.setdefault(kind, str(error)[:300])
            return False
        seconds.append(time.perf_counter() - began)
        return result == {"doubled": index * 2}

    began = time.perf_counter()
    outcomes = await asyncio.gather(*(one(i, c) for i, c in enumerate(fleet.clients)))
    return {
        "seconds": time.perf_counter() - began,
        "succeeded": sum(outcomes),
        "failures": dict(failures),
        "messages": messages,
        "run_seconds": sorted(seconds),
    }


async def _serve(arguments: argparse.Namespace) -> int:
    namespaces = [n for n in arguments.namespaces.split(",") if n]
    fleet = await _start(arguments.address, namespaces, arguments.task_queue)
    _emit("started", workers=len(fleet.workers))
    # Read commands on the event loop itself: a reader thread would count as the SDK's.
    commands = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(commands), sys.stdin
    )
    try:
        while True:
            command = (await commands.readline()).decode().strip()
            if command == "run":
                _emit("ran", **await _one_each(fleet, arguments.task_queue, arguments.budget))
            elif command in ("stop", ""):
                break
    finally:
        await asyncio.gather(*(w.shutdown() for w in fleet.workers), return_exceptions=True)
        await asyncio.gather(*fleet.tasks, return_exceptions=True)
    _emit("stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the fleet until told to stop; the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--address", required=True, help="Temporal frontend host:port")
    parser.add_argument("--namespaces", required=True, help="comma-separated namespaces")
    parser.add_argument("--task-queue", default="raw-fleet")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds for each run")
    return asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
