"""``engined``: the engine's daemon.

Today it runs the interpreter's worker (``engined worker``) against the Temporal server named by
``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE`` and ``TEMPORAL_TASK_QUEUE``. The control plane
(``engined serve``) and the embedded default (``engined dev``) join it with the control-plane
issue.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Final

from temporalio.client import Client

from engine.config import TemporalSettings
from engine.workflow import build_worker, ensure_search_attributes

__all__ = ["engined_main"]

EXIT_OK: Final = 0
EXIT_UNAVAILABLE: Final = 1
EXIT_USAGE: Final = 2

log = logging.getLogger("engined")


def engined_main(argv: Sequence[str] | None = None) -> int:
    """Run ``engined`` with the given arguments and return its exit status."""
    parser = argparse.ArgumentParser(prog="engined", description="The workflow engine daemon.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    worker = commands.add_parser(
        "worker",
        help="run the interpreter's worker",
        description="Run the interpreter's worker until SIGINT or SIGTERM; in-flight tasks "
        "finish first. Reads TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE and TEMPORAL_TASK_QUEUE.",
    )
    worker.add_argument("--address", help="Temporal frontend host:port (TEMPORAL_ADDRESS)")
    worker.add_argument("--namespace", help="Temporal namespace (TEMPORAL_NAMESPACE)")
    worker.add_argument("--task-queue", help="task queue to poll (TEMPORAL_TASK_QUEUE)")
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = TemporalSettings.from_env()
    settings = TemporalSettings(
        address=arguments.address or settings.address,
        namespace=arguments.namespace or settings.namespace,
        task_queue=arguments.task_queue or settings.task_queue,
    )
    try:
        return asyncio.run(_run_worker(settings))
    except KeyboardInterrupt:
        return EXIT_OK


async def _run_worker(settings: TemporalSettings) -> int:
    try:
        client = await Client.connect(settings.address, namespace=settings.namespace)
    except RuntimeError as error:
        print(f"engined: cannot reach Temporal at {settings.address}: {error}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    await ensure_search_attributes(client)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    async with build_worker(client, task_queue=settings.task_queue):
        log.info(
            "worker serving namespace %s, task queue %s at %s",
            settings.namespace,
            settings.task_queue,
            settings.address,
        )
        await stop.wait()
        log.info("stopping: finishing in-flight tasks")
    return EXIT_OK
