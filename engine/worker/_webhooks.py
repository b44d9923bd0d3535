"""Webhook deliverers: an activity worker for each served org that has a webhook, and only
for those.

A run that notifies schedules its deliveries on the org's webhook task queue
(``<task queue>/webhooks``, see :mod:`engine.workflow._notify`). The interpreter's own workers
register no activity: an activity worker keeps long polls open at the server, and one on every
org's worker made the executor closed loop 10-15% slower in the benchmarks for a feature most
orgs do not use. So the pool checks, every ``interval`` seconds, which of its orgs have a
webhook (one DescribeNamespace each, at most ``rate`` a second) and runs a one-poller worker
for each of those. Deliveries scheduled before the check sees a new webhook wait in the task
queue (a delivery may wait up to a day), so setting a webhook starts deliveries within one
interval; clearing it stops the worker at the next check.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Final

from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from engine.workflow import notifier_worker, read_webhook

__all__ = ["WebhookDeliverers"]

log = logging.getLogger(__name__)

_CHECK_TIMEOUT: Final = timedelta(seconds=5)


class WebhookDeliverers:
    """Keeps a delivery worker running for each org (of ``served()``) that has a webhook.

    Args:
        served: The namespaces' clients to look at, by org id (called at every check).
        task_queue: The interpreter's task queue (deliveries go to ``<it>/webhooks``).
        interval: Seconds between two checks.
        rate: Checks a second at most.
    """

    def __init__(
        self,
        served: Callable[[], Iterable[tuple[str, Client]]],
        task_queue: str,
        *,
        interval: float = 30.0,
        rate: float = 50.0,
    ) -> None:
        self.served = served
        self.task_queue = task_queue
        self.interval = interval
        self.rate = rate
        self._running: dict[str, tuple[Worker, asyncio.Task[None]]] = {}

    @property
    def delivering(self) -> list[str]:
        """The org ids with a delivery worker running, sorted."""
        return sorted(self._running)

    async def run(self) -> None:
        """Check, then again every ``interval`` seconds, until cancelled (then stop them all)."""
        try:
            while True:
                await self.check()
                await asyncio.sleep(self.interval)
        finally:
            await self.stop()

    async def check(self) -> None:
        """Start a worker for each org with a webhook, stop those of orgs without one."""
        seen: set[str] = set()
        for org_id, client in list(self.served()):
            seen.add(org_id)
            try:
                async with asyncio.timeout(_CHECK_TIMEOUT.total_seconds()):
                    has = await read_webhook(client) is not None
            except (RPCError, TimeoutError) as error:
                log.debug("webhook check of org %s failed: %s", org_id, error)
                continue
            if has and org_id not in self._running:
                self._start(org_id, client)
            elif not has and org_id in self._running:
                await self._stop(org_id)
            await asyncio.sleep(1 / self.rate)
        for gone in [org_id for org_id in self._running if org_id not in seen]:
            await self._stop(gone)

    async def stop(self) -> None:
        """Stop every delivery worker (each finishes the delivery it is making)."""
        for org_id in list(self._running):
            await self._stop(org_id)

    def _start(self, org_id: str, client: Client) -> None:
        worker = notifier_worker(client, self.task_queue)
        task = asyncio.create_task(self._serve(org_id, worker), name=f"webhooks ({org_id})")
        self._running[org_id] = (worker, task)
        log.info("org %s has a webhook: delivering its events", org_id)

    async def _serve(self, org_id: str, worker: Worker) -> None:
        try:
            await worker.run()
        except Exception:
            log.exception("the webhook worker of org %s stopped", org_id)
            self._running.pop(org_id, None)  # the next check starts another

    async def _stop(self, org_id: str) -> None:
        worker, task = self._running.pop(org_id)
        with contextlib.suppress(Exception):
            await worker.shutdown()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
