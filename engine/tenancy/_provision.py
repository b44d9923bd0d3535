"""Provisioning organizations: one engine-tagged Temporal namespace each.

Registering is idempotent: an org that exists is returned as it is; a namespace with the org's
name that the engine did not register is refused. The server rate-limits RegisterNamespace
(a shared budget of about 20 requests a second by default, answering RESOURCE_EXHAUSTED beyond
it), so calls are spaced out per endpoint and retried with backoff; a namespace may also answer
NOT_FOUND for a moment right after it was registered, which is retried while provisioning.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, TypeVar

from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import NamespaceState
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    DescribeNamespaceResponse,
    ListNamespacesRequest,
    RegisterNamespaceRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from engine.tenancy._clients import ClientPool
from engine.tenancy._errors import (
    NamespaceNotOwnedError,
    OrgNotFoundError,
    RateLimitedError,
    TemporalUnavailableError,
)
from engine.tenancy._resolve import Endpoint, NamespaceResolver, NamespaceTarget
from engine.worker import ServedNamespace, WorkerPool
from engine.workflow import SEARCH_ATTRIBUTES, ensure_search_attributes

__all__ = ["ENGINE_TAG", "Organization", "Provisioner"]

ENGINE_TAG: Final = "engine.org_id"
"""The key in a namespace's ``data`` map that marks it as the engine's, holding the org id."""

_T = TypeVar("_T")
_RETRIED: Final = frozenset({RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.UNAVAILABLE})


@dataclass(frozen=True)
class Organization:
    """An organization the engine serves.

    Attributes:
        org_id: The org id.
        namespace: Its Temporal namespace.
        address: The Temporal endpoint that holds it.
        retention: How long closed runs are kept.
        created: True when this call registered it (False when it existed).
    """

    org_id: str
    namespace: str
    address: str
    retention: timedelta
    created: bool = False


class _Throttle:
    """Spaces calls at least ``1/rate`` seconds apart (a one-token bucket)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next_at = 0.0
        self.lock = asyncio.Lock()

    async def wait(self) -> None:
        async with self.lock:
            now = time.monotonic()
            delay = self.next_at - now
            self.next_at = max(now, self.next_at) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


class Provisioner:
    """Registers, finds and lists the engine's organizations.

    Args:
        resolver: Maps org ids to namespaces and endpoints.
        clients: The shared client pool.
        retention: Default retention of closed runs in new namespaces.
        register_rate: Most RegisterNamespace calls a second, per endpoint.
        workers: The worker pool that serves a new org at once (no restart needed).
    """

    def __init__(
        self,
        resolver: NamespaceResolver,
        clients: ClientPool,
        *,
        retention: timedelta = timedelta(days=3),
        register_rate: float = 10.0,
        workers: WorkerPool | None = None,
    ) -> None:
        self.resolver = resolver
        self.clients = clients
        self.retention = retention
        self.register_rate = register_rate
        self.workers = workers
        self._throttles: dict[Endpoint, _Throttle] = {}
        self._ready: set[tuple[Endpoint, str]] = set()

    async def provision(self, org_id: str, retention: timedelta | None = None) -> Organization:
        """Make sure the org's namespace exists, is the engine's, is ready, and is served.

        Raises:
            InvalidOrgIdError: The org id is malformed.
            NamespaceNotOwnedError: The namespace exists but the engine did not register it.
            RateLimitedError, TemporalUnavailableError: Temporal kept refusing or is down.
        """
        target = self.resolver.resolve(org_id)
        connection = await self.clients.connection(target.endpoint)
        created = False
        existing = await self._describe(connection, target)
        if existing is None:
            created = await self._register(connection, target, retention or self.retention)
            existing = await self._describe_until_found(connection, target)
        self._check_owner(existing, target)
        client = await self.clients.client(target)
        await _retry(
            lambda: ensure_search_attributes(client, target.namespace),
            target,
            also=frozenset({RPCStatusCode.NOT_FOUND}),
        )
        self._ready.add((target.endpoint, target.namespace))
        if self.workers is not None:
            await self.workers.serve(await self.served(target))
        return _organization(target, existing, created)

    async def get(self, org_id: str) -> Organization:
        """The org, if its namespace exists and is the engine's.

        Raises:
            OrgNotFoundError: Naming the org and the namespace looked for.
        """
        target = self.resolver.resolve(org_id)
        connection = await self.clients.connection(target.endpoint)
        existing = await self._describe(connection, target)
        if existing is None or existing.namespace_info.data.get(ENGINE_TAG) != org_id:
            raise OrgNotFoundError(
                f"org '{org_id}' not found (no engine namespace '{target.namespace}' "
                f"at {target.endpoint.address})"
            )
        return _organization(target, existing, created=False)

    async def list_orgs(self) -> list[Organization]:
        """Every org on every endpoint the resolver knows, sorted by id."""
        found: dict[str, Organization] = {}
        for endpoint in self.resolver.endpoints():
            for org in await self._list_endpoint(endpoint):
                found.setdefault(org.org_id, org)
        return [found[k] for k in sorted(found)]

    async def list_served(self) -> list[ServedNamespace]:
        """Every org ready to serve, with a client of its namespace: the worker pool's discovery.

        An org shows up once its provisioning has finished (its search attributes are there).
        A namespace another process has only just registered is listed at once, but the rest
        of the server does not know it yet for a moment; a worker that polls it then is refused
        and backs off for many seconds, so the org's first runs would wait that long.
        """
        targets = [self.resolver.resolve(o.org_id) for o in await self.list_orgs()]
        gate = asyncio.Semaphore(16)

        async def ready(target: NamespaceTarget) -> bool:
            async with gate:
                return await self._is_ready(target)

        flags = await asyncio.gather(*(ready(target) for target in targets))
        return [await self.served(t) for t, ok in zip(targets, flags, strict=True) if ok]

    async def served(self, target: NamespaceTarget) -> ServedNamespace:
        """The org of ``target`` with a client of its namespace (for ``WorkerPool.serve``)."""
        return ServedNamespace(target.org_id, await self.clients.client(target))

    async def _is_ready(self, target: NamespaceTarget) -> bool:
        """Whether provisioning of the org finished (checked until it has, then remembered)."""
        key = (target.endpoint, target.namespace)
        if key in self._ready:
            return True
        connection = await self.clients.connection(target.endpoint)
        try:
            listed = await _retry(
                lambda: connection.operator_service.list_search_attributes(
                    ListSearchAttributesRequest(namespace=target.namespace)
                ),
                target,
            )
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        if any(a.name not in listed.custom_attributes for a in SEARCH_ATTRIBUTES):
            return False
        self._ready.add(key)
        return True

    async def _list_endpoint(self, endpoint: Endpoint) -> list[Organization]:
        connection = await self.clients.connection(endpoint)
        out: list[Organization] = []
        token = b""
        while True:
            response = await _retry(_list_page(connection, token), None)
            for described in response.namespaces:
                info = described.namespace_info
                org_id = info.data.get(ENGINE_TAG)
                if not org_id or info.state != NamespaceState.NAMESPACE_STATE_REGISTERED:
                    continue
                if self.resolver.org_of(info.name, endpoint) != org_id:
                    continue  # tagged, but this resolver sends the org elsewhere
                target = NamespaceTarget(org_id, info.name, endpoint)
                out.append(_organization(target, described, created=False))
            token = response.next_page_token
            if not token:
                return out

    async def _describe(
        self, connection: Client, target: NamespaceTarget
    ) -> DescribeNamespaceResponse | None:
        try:
            return await _retry(
                lambda: connection.workflow_service.describe_namespace(
                    DescribeNamespaceRequest(namespace=target.namespace)
                ),
                target,
            )
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return None
            raise

    async def _describe_until_found(
        self, connection: Client, target: NamespaceTarget
    ) -> DescribeNamespaceResponse:
        return await _retry(
            lambda: connection.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=target.namespace)
            ),
            target,
            also=frozenset({RPCStatusCode.NOT_FOUND}),
        )

    async def _register(
        self, connection: Client, target: NamespaceTarget, retention: timedelta
    ) -> bool:
        throttle = self._throttles.setdefault(target.endpoint, _Throttle(self.register_rate))
        request = RegisterNamespaceRequest(
            namespace=target.namespace,
            description=f"engine organization {target.org_id}",
            workflow_execution_retention_period=Duration(seconds=int(retention.total_seconds())),
            data={ENGINE_TAG: target.org_id},
        )

        async def register() -> Any:
            await throttle.wait()
            return await connection.workflow_service.register_namespace(request)

        try:
            await _retry(register, target)
        except RPCError as error:
            if error.status == RPCStatusCode.ALREADY_EXISTS:
                return False  # another provisioner won the race; ownership is checked next
            raise _translate(error, target) from None
        return True

    def _check_owner(self, described: DescribeNamespaceResponse, target: NamespaceTarget) -> None:
        owner = described.namespace_info.data.get(ENGINE_TAG)
        if owner != target.org_id:
            whose = f"tagged for org '{owner}'" if owner else "not registered by the engine"
            raise NamespaceNotOwnedError(
                f"cannot provision org '{target.org_id}': namespace '{target.namespace}' at "
                f"{target.endpoint.address} already exists and is {whose}"
            )


def _list_page(connection: Client, token: bytes) -> Callable[[], Awaitable[Any]]:
    request = ListNamespacesRequest(page_size=1000, next_page_token=token)
    return lambda: connection.workflow_service.list_namespaces(request)


def _organization(target: NamespaceTarget, described: Any, created: bool) -> Organization:
    retention = described.config.workflow_execution_retention_ttl.ToTimedelta()
    return Organization(
        target.org_id, target.namespace, target.endpoint.address, retention, created
    )


async def _retry(
    call: Callable[[], Awaitable[_T]],
    target: NamespaceTarget | None,
    *,
    also: frozenset[RPCStatusCode] = frozenset(),
    attempts: int = 12,
) -> _T:
    """Retry transient refusals with exponential backoff and jitter (about 15 s in all)."""
    delay = 0.1
    for attempt in range(attempts):
        try:
            return await call()
        except RPCError as error:
            if error.status not in _RETRIED | also or attempt == attempts - 1:
                if error.status in _RETRIED:
                    raise _translate(error, target) from None
                raise
        await asyncio.sleep(delay * (0.5 + random.random()))  # jitter, not cryptography
        delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")  # pragma: no cover


def _translate(error: RPCError, target: NamespaceTarget | None) -> Exception:
    where = (
        f"org '{target.org_id}', namespace '{target.namespace}' at {target.endpoint.address}"
        if target
        else "Temporal"
    )
    if error.status == RPCStatusCode.RESOURCE_EXHAUSTED:
        return RateLimitedError(f"{where}: Temporal kept refusing (rate limited): {error.message}")
    if error.status == RPCStatusCode.UNAVAILABLE:
        return TemporalUnavailableError(f"{where}: Temporal is unavailable: {error.message}")
    return error
