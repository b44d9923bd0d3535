"""A worker per served namespace, over the shared connections, in one process."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from engine.workflow import build_worker

__all__ = ["ServedNamespace", "WorkerOptions", "WorkerPool"]

log = logging.getLogger("engine.worker")


@dataclass(frozen=True)
class WorkerOptions:
    """Options applied to every worker of a pool.

    Attributes:
        task_queue: The interpreter's task queue in every namespace.
        workflow_task_threads: Size of the ONE thread pool that runs workflow tasks for every
            worker of the pool (each Worker would otherwise make its own, of up to 500 threads).
        max_cached_workflows: Runs kept in memory between tasks, per namespace.
        max_concurrent_workflow_tasks: Workflow tasks processed at once, per namespace.
        graceful_shutdown_seconds: How long in-flight tasks get to finish on shutdown.
        extra: Any other :class:`temporalio.worker.Worker` option (e.g. poller behaviour).
    """

    task_queue: str = "engine"
    workflow_task_threads: int = 16
    max_cached_workflows: int = 100
    max_concurrent_workflow_tasks: int = 16
    graceful_shutdown_seconds: float = 10.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ServedNamespace:
    """A namespace to serve: its org and a client of it (over a shared connection)."""

    org_id: str
    client: Client

    @property
    def namespace(self) -> str:
        """The namespace the client talks to."""
        return self.client.namespace


@dataclass
class _Served:
    target: ServedNamespace
    worker: Worker
    task: asyncio.Task[None]


class WorkerPool:
    """Runs one interpreter worker per served namespace.

    Workers start for every engine namespace found at :meth:`start`, for every org provisioned
    later (:meth:`serve`), and for orgs another process provisioned (a periodic refresh).
    ``orgs`` restricts the pool to a subset, so workers can be sharded across processes.

    Args:
        discover: Lists every namespace to serve (each with a client on a shared connection).
        options: Worker options applied to all.
        orgs: Serve only these org ids (None: all).
        refresh_interval: Seconds between discoveries (None: never refresh).
    """

    def __init__(
        self,
        discover: Callable[[], Awaitable[list[ServedNamespace]]],
        *,
        options: WorkerOptions | None = None,
        orgs: Collection[str] | None = None,
        refresh_interval: float | None = 30.0,
    ) -> None:
        self.discover = discover
        self.options = options or WorkerOptions()
        self.orgs = frozenset(orgs) if orgs is not None else None
        self.refresh_interval = refresh_interval
        self._served: dict[tuple[str, str], _Served] = {}
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.options.workflow_task_threads,
            thread_name_prefix="engine-workflow-task",
        )
        self._refresher: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._stopped = False

    @property
    def served_orgs(self) -> list[str]:
        """The org ids with a running worker, sorted."""
        return sorted(s.target.org_id for s in self._served.values() if not s.task.done())

    async def start(self) -> None:
        """Serve every org found now, then keep looking for new ones."""
        await self.refresh()
        if self.refresh_interval is not None:
            self._refresher = asyncio.create_task(self._refresh_forever(self.refresh_interval))

    async def refresh(self) -> None:
        """Start workers for orgs that have none (e.g. provisioned by another process)."""
        for target in await self.discover():
            await self.serve(target)

    async def serve(self, target: ServedNamespace) -> None:
        """Start the org's worker now, unless it runs already or is not in this shard."""
        if self.orgs is not None and target.org_id not in self.orgs:
            return
        key = (target.org_id, target.namespace)
        async with self._lock:
            if self._stopped:
                return
            served = self._served.get(key)
            if served is not None and not served.task.done():
                return
            worker = build_worker(
                target.client,
                self.options.task_queue,
                workflow_task_executor=self._executor,
                max_cached_workflows=self.options.max_cached_workflows,
                max_concurrent_workflow_tasks=self.options.max_concurrent_workflow_tasks,
                graceful_shutdown_timeout=timedelta(seconds=self.options.graceful_shutdown_seconds),
                **self.options.extra,
            )
            task = asyncio.create_task(self._run(target, worker), name=f"worker {key}")
            self._served[key] = _Served(target, worker, task)
            log.info("serving org %s (namespace %s)", target.org_id, target.namespace)

    async def stop(self) -> None:
        """Stop every worker gracefully (in-flight tasks finish first), then the thread pool."""
        self._stopped = True
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        async with self._lock:  # no serve() is half-way through starting a worker
            served = list(self._served.values())
            self._served.clear()
        await asyncio.gather(
            *(s.worker.shutdown() for s in served if not s.task.done()), return_exceptions=True
        )
        await asyncio.gather(*(s.task for s in served), return_exceptions=True)
        # Joining the threads blocks; do it off the event loop.
        await asyncio.to_thread(self._executor.shutdown, wait=True)

    async def __aenter__(self) -> WorkerPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _run(self, target: ServedNamespace, worker: Worker) -> None:
        try:
            await worker.run()
        except Exception:
            # The refresh starts it again if the namespace still exists.
            log.exception("worker of org %s stopped", target.org_id)

    async def _refresh_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception:
                log.warning("worker pool refresh failed; retrying in %ss", interval, exc_info=True)
