"""A worker per served namespace, over the shared connections, in one process."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from temporalio.client import Client
from temporalio.worker import Worker

from engine.workflow import build_worker, ensure_search_attributes

__all__ = ["STOP_MARGIN", "ServedNamespace", "WorkerOptions", "WorkerPool"]

log = logging.getLogger("engine.worker")

STOP_MARGIN: Final = 5.0
"""Seconds a worker gets, beyond its graceful shutdown, to report that it stopped."""


@dataclass(frozen=True)
class WorkerOptions:
    """Options applied to every worker of a pool.

    Attributes:
        task_queue: The interpreter's task queue in every namespace.
        workflow_task_threads: Size of the ONE thread pool that runs workflow tasks for every
            worker of the pool (each Worker would otherwise make its own, of up to 500 threads).
        max_cached_workflows: Runs kept in memory between tasks, per namespace (the SDK's own
            default). A run not in the cache is replayed from its history for its next task
            or query; a small cache under many waiting runs makes every answer a replay.
        max_concurrent_workflow_tasks: Workflow tasks processed at once, per namespace.
        graceful_shutdown_seconds: How long in-flight tasks get to finish on shutdown; a
            worker that has not stopped :data:`STOP_MARGIN` seconds later is abandoned (see
            :meth:`WorkerPool.stop`).
        extra: Any other :class:`temporalio.worker.Worker` option (e.g. poller behaviour).
    """

    task_queue: str = "engine"
    workflow_task_threads: int = 16
    max_cached_workflows: int = 1000
    max_concurrent_workflow_tasks: int = 16
    graceful_shutdown_seconds: float = 10.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def stop_deadline(self) -> float:
        """Seconds :meth:`WorkerPool.stop` takes at most."""
        return self.graceful_shutdown_seconds + STOP_MARGIN


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
        served = self._served.get(key)
        if served is not None and not served.task.done():
            return
        # An org provisioned by an older engine may lack attributes that runs now set (a run
        # that sets an unknown one fails its workflow task): add them before serving it.
        await ensure_search_attributes(target.client, target.namespace)
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
        """Stop every worker gracefully (in-flight tasks finish first), then the thread pool.

        Bounded: it returns within ``options.stop_deadline`` seconds whatever the workers do. A
        worker whose SDK core does not finish its shutdown by then (as a wedged one does not)
        is abandoned with an error in the log; the process can still exit, and the runs it
        held go to another worker when their tasks time out.
        """
        self._stopped = True
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        async with self._lock:  # no serve() is half-way through starting a worker
            served = list(self._served.values())
            self._served.clear()
        running = [s for s in served if not s.task.done()]
        pending: list[asyncio.Task[None]] = [
            *(asyncio.create_task(s.worker.shutdown()) for s in running),
            *(s.task for s in served),
        ]
        late: set[asyncio.Task[None]] = set()
        if pending:
            done, late = await asyncio.wait(pending, timeout=self.options.stop_deadline)
            for task in done:  # a worker that failed to stop has said so in the log
                if not task.cancelled():
                    task.exception()
        for s in served:
            if s.task in late:
                log.error(
                    "the worker of org %s did not stop within %ss of shutdown; abandoning it",
                    s.target.org_id,
                    self.options.stop_deadline,
                )
        for task in late:
            task.cancel()
        # Joining the threads blocks; do it off the event loop (not at all if a worker is
        # stuck, as one of its threads may be).
        await asyncio.to_thread(self._executor.shutdown, wait=not late, cancel_futures=True)

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
