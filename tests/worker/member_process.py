"""A worker process that shares the orgs with others, for the membership tests.

Usage: ``python tests/worker/member_process.py ADDRESS PREFIX HEARTBEAT TTL FENCE``

The stack ``engined worker`` builds (a worker pool, a member of the group of ``PREFIX``), with
the membership's timings shortened. It prints a JSON line whenever the orgs with a running
worker change (``{"pid": ..., "t": monotonic seconds, "active": [...]}``; the monotonic clock
is the machine's, so lines of several processes compare), and stops when its stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

from engine.stack import Stack
from engine.tenancy import Endpoint, PrefixResolver
from engine.worker import MembershipOptions, WorkerOptions


def _say(**fields: object) -> None:
    print(json.dumps({"pid": os.getpid(), "t": time.monotonic(), **fields}), flush=True)


async def main(address: str, prefix: str, heartbeat: float, ttl: float, fence: float) -> None:
    stack = Stack(
        PrefixResolver(Endpoint(address), prefix),
        task_queue="engine",
        workers=WorkerOptions(workflow_task_threads=2, graceful_shutdown_seconds=2),
        refresh_interval=1.0,
        membership=MembershipOptions(heartbeat=heartbeat, ttl=ttl, fence=fence),
        group=prefix,
    )
    pool = stack.pool
    assert pool is not None
    await stack.start()
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    reported: list[str] | None = None
    while not stdin_closed.done():
        if pool.active_orgs != reported:
            reported = pool.active_orgs
            _say(active=reported)
        await asyncio.wait({stdin_closed}, timeout=0.01)
    await stack.close()
    _say(stopped=True, active=pool.active_orgs)


if __name__ == "__main__":
    address, prefix, heartbeat, ttl, fence = sys.argv[1:6]
    asyncio.run(main(address, prefix, float(heartbeat), float(ttl), float(fence)))
