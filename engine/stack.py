"""The composition root: the whole engine of one process, built from settings.

``engined dev``, ``engined serve`` and ``engined worker`` build their stack here, and so does
every test kit, so the engine runs wired one way only. Each part is built once, in dependency
order, and gets everything it needs through its constructor:

=====================  ========================================================================
part                   what it is
=====================  ========================================================================
``resolver``           org id -> namespace and endpoint (``engine.tenancy``)
``clients``            one Temporal connection per endpoint, shared by all its namespaces
``directory``          finds the engine's organizations; the worker pool's discovery
``pool``               the served orgs: a worker for each with work (absent without workers)
``provisioner``        registers organizations, and has the pool serve each at once
``registry``           the registered definitions of each organization
``dispatcher``         starts, reads, lists and drives runs in the caller's namespace
``scheduler``          schedules, on Temporal Schedules in the org's namespace
``broker``             executors' claims of pending actions, on the org's task queues
``member``             this process in its group of worker processes (when sharing; at start)
=====================  ========================================================================

The gRPC control plane on top (:meth:`Stack.control_plane`) is built when a process serves the
API; a worker process does not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING

from engine.config import TemporalSettings, TenancySettings
from engine.dispatcher import ActionBroker, DefinitionRegistry, TemporalDispatcher
from engine.identity import LinkSigner, TokenVerifier
from engine.scheduler import Scheduler
from engine.server import ControlPlane, build_server
from engine.tenancy import (
    ClientPool,
    NamespaceResolver,
    NamespaceTarget,
    OrgDirectory,
    Provisioner,
    resolver_from_settings,
)
from engine.worker import Member, MembershipOptions, ServedNamespace, WorkerOptions, WorkerPool

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from engine.telemetry.metrics import EngineMetrics

__all__ = ["Stack"]


class Stack:
    """Every part of the engine one process runs, built in dependency order.

    Build it, then ``await stack.start()`` (or ``async with stack:``) to start the worker pool;
    :meth:`close` stops it and forgets the connections.

    Args:
        resolver: Maps org ids to namespaces and endpoints.
        task_queue: The interpreter's task queue in every namespace.
        workers: Run a worker pool with these options (its task queue is ``task_queue``);
            None for a control plane that leaves running workflows to other processes.
        orgs: Serve only these orgs (None: every org found).
        refresh_interval: Seconds between the pool's discoveries of new orgs (None: never).
        retention: Retention of closed runs in namespaces provisioned from now on.
        rpc_timeout: Bound on each Temporal call of the dispatcher and the registry.
        action_lease: How long an executor may hold an action of the runs started here
            without a heartbeat (None: the interpreter's default, a minute).
        membership: Share the orgs with the other worker processes of ``group`` (None: this
            process serves every org found, or ``orgs``).
        group: The group of worker processes that share the orgs (those serving the same
            orgs; default: the task queue).
        tracer_provider: Trace the control plane's calls, the Temporal calls and the runs
            (``engine.telemetry.tracing``); None: tracing off, no interceptor installed.
        metrics: Record Prometheus metrics (``engine.telemetry.metrics``): Temporal is
            reached with its SDK runtime, the control plane gets its interceptor, and the
            waiting actions of the orgs the pool serves are listed at scrape time; None:
            metrics off, nothing installed.
    """

    def __init__(
        self,
        resolver: NamespaceResolver,
        *,
        task_queue: str = "engine",
        workers: WorkerOptions | None = None,
        orgs: Collection[str] | None = None,
        refresh_interval: float | None = 30.0,
        retention: timedelta = timedelta(days=3),
        rpc_timeout: timedelta = timedelta(seconds=10),
        action_lease: timedelta | None = None,
        membership: MembershipOptions | None = None,
        group: str | None = None,
        tracer_provider: TracerProvider | None = None,
        metrics: EngineMetrics | None = None,
    ) -> None:
        if membership is not None and (workers is None or orgs is not None):
            raise ValueError("only a worker pool that is not pinned to orgs shares them")
        self.resolver = resolver
        self.membership = membership
        self.group = group or task_queue
        self.member: Member | None = None
        self.task_queue = task_queue
        self.tracer_provider = tracer_provider
        self.metrics = metrics
        self.pool = (
            None
            if workers is None
            else WorkerPool(
                self._discover,
                options=dataclasses.replace(workers, task_queue=task_queue),
                orgs=orgs,
                refresh_interval=refresh_interval,
            )
        )
        # Every caller's call routed to an org wakes the org's worker here (if it is ours).
        self.clients = ClientPool(
            on_org_call=self.pool.wake if self.pool else None,
            tracer_provider=tracer_provider,
            runtime=metrics.runtime if metrics is not None else None,
        )
        self.directory = OrgDirectory(resolver, self.clients)
        self.provisioner = Provisioner(self.directory, retention=retention, workers=self.pool)
        self.registry = DefinitionRegistry(
            resolver, self.clients, task_queue=task_queue, rpc_timeout=rpc_timeout
        )
        lease = action_lease.total_seconds() if action_lease is not None else None
        self.dispatcher = TemporalDispatcher(
            resolver,
            self.clients,
            task_queue=task_queue,
            definitions=self.registry,
            rpc_timeout=rpc_timeout,
            lease=lease,
        )
        self.scheduler = Scheduler(
            resolver, self.clients, self.registry, task_queue=task_queue, lease=lease
        )
        self.broker = ActionBroker(
            resolver, self.clients, task_queue=task_queue, rpc_timeout=rpc_timeout
        )
        if metrics is not None and self.pool is not None:
            # Each org's waiting actions are counted by the process whose pool serves it.
            pool = self.pool
            metrics.watch_actions(lambda: pool.served_orgs, self.dispatcher.waiting_actions)

    @classmethod
    def from_settings(
        cls,
        temporal: TemporalSettings,
        tenancy: TenancySettings,
        *,
        workers: WorkerOptions | None = None,
        orgs: Collection[str] | None = None,
        default_prefix: str = "",
        environ: Mapping[str, str] | None = None,
        membership: MembershipOptions | None = None,
        tracer_provider: TracerProvider | None = None,
        metrics: EngineMetrics | None = None,
    ) -> Stack:
        """The stack the settings describe (``TEMPORAL_*``, ``ENGINE_NAMESPACE_*``).

        Args:
            temporal: Where Temporal is, and the task queue.
            tenancy: How orgs map to namespaces, and their retention.
            workers: As for the constructor.
            orgs: As for the constructor.
            default_prefix: The namespace prefix when ``ENGINE_NAMESPACE_PREFIX`` is unset.
            environ: Where the API keys a namespace map names by variable come from
                (``tenancy.environ`` unless given).
            membership: As for the constructor (the group: the prefix and the task queue).
            tracer_provider: As for the constructor.
            metrics: As for the constructor.

        Raises:
            ValueError: The namespace map is malformed (its file and entry named).
        """
        prefix = tenancy.namespace_prefix
        resolver = resolver_from_settings(
            temporal.address,
            default_prefix if prefix is None else prefix,
            tenancy.namespace_map,
            tenancy.environ if environ is None else environ,
        )
        lease = temporal.action_lease
        return cls(
            resolver,
            task_queue=temporal.task_queue,
            workers=workers,
            orgs=orgs,
            retention=timedelta(days=tenancy.retention_days),
            action_lease=timedelta(seconds=lease) if lease is not None else None,
            membership=membership,
            group=f"{default_prefix if prefix is None else prefix}{temporal.task_queue}",
            tracer_provider=tracer_provider,
            metrics=metrics,
        )

    async def _discover(self) -> list[ServedNamespace]:
        return await self.directory.list_served()

    async def start(self) -> None:
        """Start the worker pool (if any): it serves every org found (or its share of them, as
        a member of its group), then looks for more."""
        if self.pool is None:
            return
        if self.membership is not None:
            endpoint = self.resolver.endpoints()[0]
            target = NamespaceTarget("", self.membership.namespace, endpoint)
            client = await self.clients.untraced_client(target)  # heartbeats: no spans
            self.member = Member(client, self.pool, self.group, self.membership)
            await self.member.start()
        await self.pool.start()

    async def close(self) -> None:
        """Stop the worker pool (in-flight tasks finish first) and forget the connections."""
        if self.member is not None:
            await self.member.stop()
        if self.pool is not None:
            await self.pool.stop()
        await self.clients.close()

    async def __aenter__(self) -> Stack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def control_plane(
        self,
        verifier: TokenVerifier,
        *,
        address: str = "127.0.0.1:50051",
        tls_cert: str | None = None,
        tls_key: str | None = None,
        links: LinkSigner | None = None,
    ) -> ControlPlane:
        """The gRPC control plane over this stack, bound to ``address`` (not yet started);
        ``links`` signs answer links (None: they are refused)."""
        return build_server(
            dispatcher=self.dispatcher,
            registry=self.registry,
            scheduler=self.scheduler,
            broker=self.broker,
            provisioner=self.provisioner,
            directory=self.directory,
            verifier=verifier,
            resolver=self.resolver,
            address=address,
            tls_cert=tls_cert,
            tls_key=tls_key,
            links=links,
            tracer_provider=self.tracer_provider,
            record_call=self.metrics.record_grpc if self.metrics is not None else None,
        )
