"""The organizations one process serves: an SDK worker for each that has work, none for the rest.

An SDK worker costs the same whether its namespace is busy or idle: two native threads of the
Temporal core (its workflow-processing and system-info threads), its long polls and its run
cache. A process that kept one for every organization would grow by that much per organization,
so the pool keeps one only for an org with work (*active*), and none for the others (*dormant*):

- an org becomes active when it is *woken*: a caller's call reaches it through the engine
  (:meth:`WorkerPool.wake`, which the stack's routed calls make), or its task queue has work
  waiting (a timer fired, a schedule started a run, an executor answered through another
  process), which a low-rate *probe* of dormant orgs finds (``DescribeTaskQueue`` with stats:
  an org used lately every :attr:`WorkerOptions.probe_interval` seconds, one long idle every
  :attr:`WorkerOptions.probe_max_interval`, at most :attr:`WorkerOptions.probe_rate` calls a
  second in all);
- the :attr:`WorkerOptions.keep_active` orgs used most recently stay active however idle they
  are; any other goes dormant after :attr:`WorkerOptions.idle_after` seconds without a workflow
  task or a call (its worker stops gracefully; its runs' next tasks wait in the org's queue);
- at most :attr:`WorkerOptions.max_active` orgs are active at once, a burst of work included: a
  woken org beyond that takes the place of the active org idle the longest, once that one has
  been idle for :attr:`WorkerOptions.min_active` seconds.

So a process holds at most ``keep_active`` SDK workers when it is quiet and ``max_active`` in a
burst, whatever the number of its orgs, and a dormant org costs a probe call now and then. While
a process has no more orgs than ``keep_active``, every org keeps its worker, as if there were no
dormancy. The price is latency for the first task of a dormant org that nobody called through
this process: up to one probe period plus the server's stats lag (a few seconds). A query (a
run's status) of a dormant org asked through another process finds no worker until the org has a
task: with the control plane in its own process (``engined serve --no-worker``), keep the orgs
per worker process within ``keep_active``.

Which orgs a pool serves: every org found (discovery, provisioning), narrowed by ``orgs``
(pinning) and by :meth:`WorkerPool.assign` (the share a membership gives this process).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.worker import Worker

from engine.worker._webhooks import WebhookDeliverers
from engine.workflow import build_worker, ensure_search_attributes, sandbox_runner

__all__ = ["STOP_MARGIN", "ServedNamespace", "WorkerOptions", "WorkerPool"]

log = logging.getLogger("engine.worker")

STOP_MARGIN: Final = 5.0
"""Seconds a worker gets, beyond its graceful shutdown, to report that it stopped."""

_KEEP_EVERY: Final = 0.5
"""Seconds between the pool's looks at its active orgs (dormancy, the queue of woken orgs)."""
_PROBES_AT_ONCE: Final = 8


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
        max_active: Orgs with a running SDK worker at once, at most (each costs two native
            threads).
        keep_active: Orgs kept active however idle (the most recently used).
        idle_after: Seconds without a workflow task or a call before an org beyond the
            ``keep_active`` most recently used goes dormant.
        min_active: Seconds an org stays active at least before another takes its place.
        probe_interval: Seconds between two probes of an org that had work lately, at least.
        probe_max_interval: Seconds between two probes of an org that has long had none: the
            period doubles from ``probe_interval`` with every probe that finds nothing.
        probe_rate: Probes a second at most, over all dormant orgs.
        webhook_check: Seconds between two looks at which orgs have a webhook (each gets a
            delivery worker, see :mod:`engine.worker._webhooks`); None: deliver none.
        extra: Any other :class:`temporalio.worker.Worker` option (e.g. poller behaviour).
    """

    task_queue: str = "engine"
    workflow_task_threads: int = 16
    max_cached_workflows: int = 1000
    max_concurrent_workflow_tasks: int = 16
    graceful_shutdown_seconds: float = 10.0
    max_active: int = 200
    keep_active: int = 50
    idle_after: float = 10.0
    min_active: float = 1.0
    probe_interval: float = 2.0
    probe_max_interval: float = 30.0
    probe_rate: float = 50.0
    webhook_check: float | None = 30.0
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
class _Org:
    target: ServedNamespace
    prepared: bool = False
    woken: float = 0.0
    """When a call last reached the org (monotonic)."""
    wanted: bool = False
    """Woken while dormant: waits for a place among the active (since ``wanted_since``)."""
    wanted_since: float = 0.0
    probed: float = 0.0
    probe_every: float = 0.0
    """Seconds until its next probe (0: the pool's shortest)."""
    worker: Worker | None = None
    task: asyncio.Task[None] | None = None
    started: float = 0.0

    @property
    def active(self) -> bool:
        return self.task is not None and not self.task.done()


class WorkerPool:
    """Serves the engine's orgs of this process: SDK workers for those with work.

    Orgs are found at :meth:`start`, when provisioned (:meth:`serve`) and by a periodic refresh
    (orgs another process provisioned). ``orgs`` pins the pool to a subset; :meth:`assign`
    narrows it to a share (see :mod:`engine.worker._membership`).

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
        self._orgs: dict[str, _Org] = {}
        self._share: Callable[[str], bool] | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.options.workflow_task_threads,
            thread_name_prefix="engine-workflow-task",
        )
        self._runner = sandbox_runner()
        self.webhooks = WebhookDeliverers(
            lambda: [
                (org_id, org.target.client)
                for org_id, org in self._orgs.items()
                if self._mine(org_id)
            ],
            self.options.task_queue,
            interval=self.options.webhook_check or 0.0,
            rate=self.options.probe_rate,
        )
        self._loops: list[asyncio.Task[None]] = []
        self._stopping: set[asyncio.Task[Any]] = set()
        self._kick = asyncio.Event()
        self._lock = asyncio.Lock()
        self._stopped = False

    @property
    def served_orgs(self) -> list[str]:
        """The org ids this pool serves (active or dormant), sorted."""
        return sorted(org_id for org_id in self._orgs if self._mine(org_id))

    @property
    def active_orgs(self) -> list[str]:
        """The org ids with a running SDK worker, sorted."""
        return sorted(org_id for org_id, org in self._orgs.items() if org.active)

    async def start(self) -> None:
        """Serve every org found now, then keep looking for new ones and for work."""
        await self.refresh()
        self._loops.append(asyncio.create_task(self._keep_forever(), name="pool keeper"))
        self._loops.append(asyncio.create_task(self._probe_forever(), name="pool prober"))
        if self.options.webhook_check is not None:
            self._loops.append(asyncio.create_task(self.webhooks.run(), name="pool webhooks"))
        if self.refresh_interval is not None:
            self._loops.append(
                asyncio.create_task(self._refresh_forever(self.refresh_interval), name="refresh")
            )

    async def refresh(self) -> None:
        """Learn orgs not known yet (e.g. provisioned by another process); while there are
        places among the active, they take them, else they start dormant."""
        for target in await self.discover():
            await self.serve(target, wake=self._has_room())

    def _has_room(self) -> bool:
        """Whether another org may take a place without waking: within ``keep_active``."""
        taken = sum(1 for o in self._orgs.values() if o.active or o.wanted)
        return taken + len(self._stopping) < self.options.keep_active

    async def serve(self, target: ServedNamespace, *, wake: bool = True) -> None:
        """Serve the org from now on (unless it is not in this pool's pin or share).

        Args:
            wake: Start its worker at once (a just-provisioned org), rather than when it has
                work.
        """
        if self._stopped or (self.orgs is not None and target.org_id not in self.orgs):
            return
        org = self._orgs.get(target.org_id)
        if org is None or org.target.namespace != target.namespace:
            org = self._orgs[target.org_id] = _Org(target)
        if not org.prepared:
            # An org provisioned by an older engine may lack attributes that runs now set (a
            # run that sets an unknown one fails its workflow task): add them before serving.
            await ensure_search_attributes(target.client, target.namespace)
            org.prepared = True
        if wake:
            self.wake(target.org_id)

    def wake(self, org_id: str) -> None:
        """Someone uses the org: keep it active, or make it active soon (cheap; never blocks)."""
        org = self._orgs.get(org_id)
        if org is None or self._stopped or not self._mine(org_id):
            return
        org.woken = time.monotonic()
        org.probe_every = 0.0  # used again: watch it closely when it goes dormant
        if not org.active and not org.wanted:
            org.wanted, org.wanted_since = True, org.woken
            self._kick.set()

    async def assign(self, share: Callable[[str], bool] | None) -> None:
        """Serve only the orgs found for which ``share`` holds, from now on (None: all).

        Returns once the workers of the orgs taken away have stopped polling, so that another
        process may serve them without two serving one org at once.
        """
        async with self._lock:
            self._share = share
            leaving = [
                o for o in self._orgs.values() if o.active and not self._mine(o.target.org_id)
            ]
            for org in self._orgs.values():
                if org.wanted and not self._mine(org.target.org_id):
                    org.wanted = False
            await self._stop_workers(leaving)
        self._kick.set()

    async def stop(self) -> None:
        """Stop every worker gracefully (in-flight tasks finish first), then the thread pool.

        Bounded: it returns within ``options.stop_deadline`` seconds whatever the workers do. A
        worker whose SDK core does not finish its shutdown by then (as a wedged one does not)
        is abandoned with an error in the log; the process can still exit, and the runs it
        held go to another worker when their tasks time out.
        """
        self._stopped = True
        for loop in self._loops:
            loop.cancel()
        for loop in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        async with self._lock:  # no worker is half-way through starting
            late = await self._stop_workers([o for o in self._orgs.values() if o.task])
            late |= await self._join_stopping()
            self._orgs.clear()
        # Joining the threads blocks; do it off the event loop (not at all if a worker is
        # stuck, as one of its threads may be).
        await asyncio.to_thread(self._executor.shutdown, wait=not late, cancel_futures=True)

    async def __aenter__(self) -> WorkerPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _mine(self, org_id: str) -> bool:
        return self._share is None or self._share(org_id)

    def _last_used(self, org: _Org) -> float:
        return max(org.woken, org.started, self._runner.last_activation(org.target.namespace))

    async def _keep(self) -> None:
        """Let idle orgs go dormant, and give woken ones a place among the active."""
        async with self._lock:
            if self._stopped:
                return
            now = time.monotonic()
            options = self.options
            recent_first = sorted(
                (o for o in self._orgs.values() if o.active), key=self._last_used, reverse=True
            )
            idle = [
                o
                for o in recent_first[options.keep_active :]
                if now - self._last_used(o) > options.idle_after
            ]
            active = recent_first
            for org in idle:
                self._stop_later(org, "idle")
            active = [o for o in active if o not in idle]
            taken = len(active) + len(self._stopping)
            wanted = sorted(
                (o for o in self._orgs.values() if o.wanted and not o.active),
                key=lambda o: o.wanted_since,
            )
            by_idleness = sorted(active, key=self._last_used)
            for org in wanted:
                if taken >= options.max_active:
                    if (
                        not by_idleness
                        or now - self._last_used(by_idleness[0]) < options.min_active
                    ):
                        break
                    self._stop_later(by_idleness.pop(0), "its place was wanted")
                    continue  # the place is free once that worker has stopped
                self._start(org)
                taken += 1

    def _start(self, org: _Org) -> None:
        target = org.target
        org.wanted = False
        org.started = time.monotonic()
        options = self.options
        worker = build_worker(
            target.client,
            options.task_queue,
            workflow_task_executor=self._executor,
            workflow_runner=self._runner,
            max_cached_workflows=options.max_cached_workflows,
            max_concurrent_workflow_tasks=options.max_concurrent_workflow_tasks,
            graceful_shutdown_timeout=timedelta(seconds=options.graceful_shutdown_seconds),
            **options.extra,
        )
        org.worker = worker
        org.task = asyncio.create_task(
            self._run(target, worker), name=f"worker ({target.org_id}, {target.namespace})"
        )
        log.debug("org %s active (namespace %s)", target.org_id, target.namespace)

    def _stop_later(self, org: _Org, why: str) -> None:
        """Stop the org's worker in the background (its place frees when it has stopped)."""
        log.debug("org %s dormant: %s", org.target.org_id, why)
        stopping = asyncio.create_task(self._stop_workers([org]), name="stop worker")
        self._stopping.add(stopping)
        stopping.add_done_callback(self._stopped_one)

    def _stopped_one(self, task: asyncio.Task[Any]) -> None:
        self._stopping.discard(task)
        self._kick.set()

    async def _join_stopping(self) -> set[asyncio.Task[Any]]:
        if not self._stopping:
            return set()
        _, late = await asyncio.wait(list(self._stopping), timeout=self.options.stop_deadline)
        return late

    async def _stop_workers(self, orgs: list[_Org]) -> set[asyncio.Task[Any]]:
        """Stop these orgs' workers, bounded by ``stop_deadline``; the late ones (abandoned)."""
        served = [(o, o.worker, o.task) for o in orgs if o.worker is not None and o.task]
        for org in orgs:
            org.worker, org.task = None, None
        if not served:
            return set()
        pending: list[asyncio.Task[None]] = [
            *(asyncio.create_task(w.shutdown()) for _, w, t in served if not t.done()),
            *(t for _, _, t in served),
        ]
        done, late = await asyncio.wait(pending, timeout=self.options.stop_deadline)
        for task in done:  # a worker that failed to stop has said so in the log
            if not task.cancelled():
                task.exception()
        for org, _, task in served:
            if task in late:
                log.error(
                    "the worker of org %s did not stop within %ss of shutdown; abandoning it",
                    org.target.org_id,
                    self.options.stop_deadline,
                )
        for task in late:
            task.cancel()
        return late

    async def _run(self, target: ServedNamespace, worker: Worker) -> None:
        try:
            await worker.run()
        except Exception:
            # The org is dormant now; the probe or the next call wakes it again.
            log.exception("worker of org %s stopped", target.org_id)

    async def _probe(self, org: _Org) -> None:
        """Wake a dormant org whose task queue has work waiting."""
        org.probed = time.monotonic()
        target = org.target
        try:
            described = await target.client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=target.namespace,
                    task_queue=TaskQueue(name=self.options.task_queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                    report_stats=True,
                ),
                timeout=timedelta(seconds=5),
            )
        except RPCError as error:
            log.debug("probe of org %s failed: %s", target.org_id, error.message)
            return
        if described.stats.approximate_backlog_count > 0:
            org.probe_every = 0.0
            self.wake(target.org_id)
        else:
            shortest = self.options.probe_interval
            org.probe_every = min(
                max(2 * org.probe_every, shortest), self.options.probe_max_interval
            )

    async def _keep_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_KEEP_EVERY):
                    await self._kick.wait()
            self._kick.clear()
            try:
                await self._keep()
            except Exception:  # pragma: no cover - a bug; the next round tries again
                log.exception("worker pool upkeep failed")

    async def _probe_forever(self) -> None:
        options = self.options
        gap = 1.0 / options.probe_rate
        gate = asyncio.Semaphore(_PROBES_AT_ONCE)
        running: set[asyncio.Task[None]] = set()

        async def probe(org: _Org) -> None:
            async with gate:
                await self._probe(org)

        while True:
            now = time.monotonic()
            due = sorted(
                (
                    o
                    for org_id, o in self._orgs.items()
                    if self._mine(org_id)
                    and not o.active
                    and not o.wanted
                    and now - o.probed >= max(o.probe_every, options.probe_interval)
                ),
                key=lambda o: o.probed,
            )
            if not due:
                await asyncio.sleep(min(options.probe_interval, 0.5))
                continue
            for org in due:
                await gate.acquire()
                gate.release()
                task = asyncio.create_task(probe(org))
                running.add(task)
                task.add_done_callback(running.discard)
                await asyncio.sleep(gap)

    async def _refresh_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.refresh()
            except Exception:
                log.warning("worker pool refresh failed; retrying in %ss", interval, exc_info=True)
