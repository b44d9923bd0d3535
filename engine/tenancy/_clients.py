"""One Temporal connection per endpoint, shared by the clients of all its namespaces."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from temporalio.client import Client, Interceptor, RPCTimeoutOrCancelledError, WorkflowHandle
from temporalio.runtime import Runtime
from temporalio.service import RetryConfig, RPCError, RPCStatusCode, TLSConfig

from engine.tenancy._errors import TemporalUnavailableError
from engine.tenancy._resolve import Endpoint, NamespaceTarget, TlsSettings

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

__all__ = ["ClientPool", "tracing_interceptors"]

_CONNECT_TIMEOUT: Final = timedelta(seconds=5)
_QUERY_COOLDOWN: Final = 10.0
"""Seconds a run whose query timed out is not asked again, nor its slot given to another
query (when the query had no timeout of its own; else that timeout)."""
_COOLING_KEPT: Final = 1024
_TIMED_OUT: Final = (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED)
# Bounded retries of Temporal's own client: a call to a server that is down fails within a few
# seconds (as UNAVAILABLE) instead of hanging; the channel reconnects by itself when it is back.
_RETRY: Final = RetryConfig(
    initial_interval_millis=100, max_interval_millis=1000, max_elapsed_time_millis=5000
)


class ClientPool:
    """Clients of many namespaces over one connection per endpoint.

    Connections are opened lazily on first use, reused by every namespace on the same endpoint
    (``Client(service_client, namespace=...)``), and reconnect by themselves after an outage.

    Queries go through :meth:`query`, which bounds and coalesces them.

    Args:
        queries_per_namespace: Most queries at once in one namespace from this process.
        on_org_call: Told the org id of every caller's call routed to an org (see
            ``OrgRouter``): the worker pool's wake-up, so that an org someone uses has a
            worker.
        tracer_provider: Trace Temporal calls, and the runs of the workers built from these
            clients, with Temporal's ``TracingInterceptor`` (see ``engine.telemetry.tracing``);
            None (tracing off) installs no interceptor.
        runtime: The Temporal SDK runtime of every connection (and so of the workers built
            from them): one that records metrics (``engine.telemetry.metrics``); None: the
            SDK's default.
    """

    def __init__(
        self,
        *,
        queries_per_namespace: int = 8,
        on_org_call: Callable[[str], None] | None = None,
        tracer_provider: TracerProvider | None = None,
        runtime: Runtime | None = None,
    ) -> None:
        self.on_org_call = on_org_call
        self.runtime = runtime
        self.interceptors = tracing_interceptors(tracer_provider)
        self._connections: dict[Endpoint, Client] = {}
        self._clients: dict[tuple[Endpoint, str], Client] = {}
        self._lock = asyncio.Lock()
        self.queries_per_namespace = queries_per_namespace
        self._query_slots: dict[tuple[Endpoint, str], asyncio.Semaphore] = {}
        self._asked: dict[tuple[object, ...], asyncio.Task[Any]] = {}
        self._cooling: dict[tuple[object, ...], float] = {}
        self._run_turns: dict[tuple[object, ...], asyncio.Lock] = {}
        self._run_askers: dict[tuple[object, ...], int] = {}

    async def query(
        self,
        target: NamespaceTarget,
        handle: WorkflowHandle[Any, Any],
        name: str,
        *args: Any,
        rpc_timeout: timedelta | None = None,
    ) -> Any:
        """Ask a run's query, sharing the answer with every caller asking the same at once.

        A query is answered by a worker of the namespace, which must hold the run in its
        cache or load it (evicting another). Two rules keep that load from wedging the worker:
        the same query of the same run is asked once however many callers want it (they all
        get the one answer), a run is asked one query at a time (its status and its changes
        for a watcher wait for each other), and at most ``queries_per_namespace`` queries are
        in flight in a namespace (the others wait their turn).

        Why: the Temporal SDK's worker (core 1.35, still so upstream) mishandles a run that has
        several tasks waiting for a cache slot, as concurrent queries of runs it does not hold
        produce (a query that waits too long on the run's sticky queue is sent again on the
        shared one). It drops an activation ("Extra buffered run should not have produced an
        activation" in its log); that run then never finishes its task, holds a task slot for
        good, and blocks the worker's shutdown. A few of those and the worker takes no more
        workflow tasks at all.

        A query that timed out on the caller's side may still be buffered in the worker,
        waiting for a cache slot, so for a while (its own timeout again) its run is not asked
        again (callers wait, at most their timeout) and its slot stays taken.
        """
        key = (target.endpoint, target.namespace, handle.id, handle.run_id, name, repr(args))
        asked = self._asked.get(key)
        if asked is None:
            asked = asyncio.create_task(self._ask(target, handle, name, args, rpc_timeout))
            self._asked[key] = asked
            asked.add_done_callback(lambda done: self._answered(key, done))
        return await asyncio.shield(asked)

    async def _ask(
        self,
        target: NamespaceTarget,
        handle: WorkflowHandle[Any, Any],
        name: str,
        args: tuple[Any, ...],
        rpc_timeout: timedelta | None,
    ) -> Any:
        run = (target.endpoint, target.namespace, handle.id, handle.run_id)
        turn = self._run_turns.get(run)
        if turn is None:
            turn = self._run_turns[run] = asyncio.Lock()
        self._run_askers[run] = self._run_askers.get(run, 0) + 1
        try:
            async with turn:  # one query of a run at a time, whatever it asks
                return await self._ask_now(target, handle, run, name, args, rpc_timeout)
        finally:
            askers = self._run_askers.pop(run) - 1
            if askers:
                self._run_askers[run] = askers
            else:
                del self._run_turns[run]

    async def _ask_now(
        self,
        target: NamespaceTarget,
        handle: WorkflowHandle[Any, Any],
        run: tuple[object, ...],
        name: str,
        args: tuple[Any, ...],
        rpc_timeout: timedelta | None,
    ) -> Any:
        loop = asyncio.get_running_loop()
        patience = rpc_timeout.total_seconds() if rpc_timeout else _QUERY_COOLDOWN
        cooled = self._cooling.get(run, 0.0) - loop.time()
        if cooled > 0:
            await asyncio.sleep(min(cooled, patience))
            if cooled > patience:
                raise RPCError(
                    "the run's last query timed out; not asked again yet",
                    RPCStatusCode.DEADLINE_EXCEEDED,
                    b"",
                )
            self._cooling.pop(run, None)
        key = (target.endpoint, target.namespace)
        slots = self._query_slots.get(key)
        if slots is None:
            slots = self._query_slots[key] = asyncio.Semaphore(self.queries_per_namespace)
        await slots.acquire()
        release_in = 0.0
        try:
            return await handle.query(name, *args, rpc_timeout=rpc_timeout)
        except (RPCTimeoutOrCancelledError, RPCError) as error:
            if isinstance(error, RPCError) and error.status not in _TIMED_OUT:
                raise
            release_in = patience
            if len(self._cooling) > _COOLING_KEPT:  # forget the runs that have cooled
                now = loop.time()
                self._cooling = {r: t for r, t in self._cooling.items() if t > now}
            self._cooling[run] = loop.time() + patience
            raise
        finally:
            if release_in:
                loop.call_later(release_in, slots.release)
            else:
                slots.release()

    def _answered(self, key: tuple[object, ...], done: asyncio.Task[Any]) -> None:
        self._asked.pop(key, None)
        if not done.cancelled():
            done.exception()  # every caller may have gone: taken, so asyncio does not log it

    async def client(self, target: NamespaceTarget) -> Client:
        """The client of a namespace (connecting to its endpoint the first time).

        Raises:
            TemporalUnavailableError: The endpoint cannot be reached.
        """
        key = (target.endpoint, target.namespace)
        client = self._clients.get(key)
        if client is not None:
            return client
        base = await self.connection(target.endpoint)
        client = Client(
            base.service_client,
            namespace=target.namespace,
            data_converter=base.data_converter,
            interceptors=self.interceptors,
        )
        self._clients[key] = client
        return client

    async def untraced_client(self, target: NamespaceTarget) -> Client:
        """A client of a namespace without the tracing interceptor (the same as
        :meth:`client` when tracing is off), for the engine's own housekeeping: the membership
        heartbeats, every 2 s, would fill the traces with nothing anyone asked for."""
        client = await self.client(target)
        if not self.interceptors:
            return client
        return Client(
            client.service_client,
            namespace=target.namespace,
            data_converter=client.data_converter,
        )

    async def connection(self, endpoint: Endpoint) -> Client:
        """The shared connection to an endpoint (a client of its first namespace)."""
        connection = self._connections.get(endpoint)
        if connection is not None:
            return connection
        async with self._lock:
            connection = self._connections.get(endpoint)
            if connection is None:
                connection = await _connect(endpoint, self.interceptors, self.runtime)
                self._connections[endpoint] = connection
        return connection

    @property
    def connection_count(self) -> int:
        """How many distinct endpoint connections are open."""
        return len(self._connections)

    async def close(self) -> None:
        """Forget every client; each connection closes when its last reference goes."""
        self._clients.clear()
        self._connections.clear()


def tracing_interceptors(provider: TracerProvider | None) -> list[Interceptor]:
    """Temporal's tracing interceptor on ``provider`` (none without one). As a client
    interceptor it is also the worker interceptor of every worker built from the client."""
    if provider is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(provider.get_tracer("temporalio.contrib.opentelemetry"))]


async def _connect(
    endpoint: Endpoint, interceptors: Sequence[Interceptor] = (), runtime: Runtime | None = None
) -> Client:
    try:
        return await Client.connect(
            endpoint.address,
            namespace="default",
            interceptors=interceptors,
            api_key=endpoint.api_key,
            tls=_tls(endpoint.tls),
            retry_config=_RETRY,
            connect_timeout=_CONNECT_TIMEOUT,
            runtime=runtime,
        )
    except RuntimeError as error:
        raise TemporalUnavailableError(
            f"cannot reach Temporal at {endpoint.address}: {error}"
        ) from None


def _tls(settings: TlsSettings | None) -> TLSConfig | bool:
    if settings is None:
        return False
    return TLSConfig(
        server_root_ca_cert=_read(settings.server_root_ca_cert),
        client_cert=_read(settings.client_cert),
        client_private_key=_read(settings.client_private_key),
        domain=settings.server_name,
    )


def _read(path: str | None) -> bytes | None:
    return Path(path).read_bytes() if path else None
