"""A second worker process for the discovery test: a WorkerPool of its own, refreshing often.

Usage: ``python tests/worker/pool_process.py ADDRESS PREFIX REFRESH_SECONDS``

It shares nothing with the test process but the Temporal server: its own ClientPool, resolver,
stack with its worker pool, as a second ``engined worker`` would have. It prints one JSON line each
time the set of served orgs changes (``{"pid": ..., "served": [...]}``), and when its stdin
closes it stops the pool and prints what is left running (``{"stopped": true, ...}``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading

from engine.stack import Stack
from engine.tenancy import Endpoint, PrefixResolver
from engine.worker import WorkerOptions


def _say(**fields: object) -> None:
    print(json.dumps({"pid": os.getpid(), **fields}), flush=True)


async def main(address: str, prefix: str, refresh: float) -> None:
    stack = Stack(
        PrefixResolver(Endpoint(address), prefix),
        workers=WorkerOptions(workflow_task_threads=2, graceful_shutdown_seconds=2),
        refresh_interval=refresh,
    )
    pool = stack.pool
    assert pool is not None
    await stack.start()
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    reported: list[str] | None = None
    while not stdin_closed.done():
        if pool.served_orgs != reported:
            reported = pool.served_orgs
            _say(served=reported)
        await asyncio.wait({stdin_closed}, timeout=0.05)
    await stack.close()
    threads = sorted(t.name for t in threading.enumerate() if t.name.startswith("engine-"))
    _say(stopped=True, served=pool.served_orgs, threads=threads)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3])))
