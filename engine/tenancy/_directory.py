"""Finding the engine's organizations: one engine-tagged Temporal namespace each.

An organization exists when its namespace does and carries the engine's tag (``ENGINE_TAG`` in
the namespace's ``data`` map). The directory lists them across every endpoint the resolver
knows, finds one, and tells which are ready to serve: the worker pool's discovery.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from temporalio.api.enums.v1 import NamespaceState
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import ListNamespacesRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from engine.tenancy._calls import describe_namespace, retried
from engine.tenancy._clients import ClientPool
from engine.tenancy._errors import OrgNotFoundError
from engine.tenancy._resolve import Endpoint, NamespaceResolver, NamespaceTarget
from engine.worker import ServedNamespace
from engine.workflow import PROVISIONED

__all__ = ["ENGINE_TAG", "OrgDirectory", "Organization"]

ENGINE_TAG: Final = "engine.org_id"
"""The key in a namespace's ``data`` map that marks it as the engine's, holding the org id."""


@dataclass(frozen=True)
class Organization:
    """An organization the engine serves.

    Attributes:
        org_id: The org id.
        namespace: Its Temporal namespace.
        address: The Temporal endpoint that holds it.
        retention: How long closed runs are kept.
        created: True when the call that returned it registered it (False when it existed).
    """

    org_id: str
    namespace: str
    address: str
    retention: timedelta
    created: bool = False

    @classmethod
    def of(cls, target: NamespaceTarget, described: Any, *, created: bool = False) -> Organization:
        """The org of ``target`` as its namespace describes it (a Describe/ListNamespaces
        entry)."""
        retention = described.config.workflow_execution_retention_ttl.ToTimedelta()
        return cls(target.org_id, target.namespace, target.endpoint.address, retention, created)


class OrgDirectory:
    """Lists and finds the engine's organizations, and knows which are ready to serve.

    Args:
        resolver: Maps org ids to namespaces and endpoints (and says which namespace of an
            endpoint belongs to which org).
        clients: The shared client pool.
    """

    def __init__(self, resolver: NamespaceResolver, clients: ClientPool) -> None:
        self.resolver = resolver
        self.clients = clients
        self._ready: set[tuple[Endpoint, str]] = set()

    async def get(self, org_id: str) -> Organization:
        """The org, if its namespace exists and is the engine's.

        Raises:
            OrgNotFoundError: Naming the org and the namespace looked for.
        """
        target = self.resolver.resolve(org_id)
        connection = await self.clients.connection(target.endpoint)
        existing = await describe_namespace(connection, target)
        if existing is None or existing.namespace_info.data.get(ENGINE_TAG) != org_id:
            raise OrgNotFoundError(
                f"org '{org_id}' not found (no engine namespace '{target.namespace}' "
                f"at {target.endpoint.address})"
            )
        return Organization.of(target, existing)

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

    def mark_ready(self, target: NamespaceTarget) -> None:
        """Provisioning of the org finished: it is ready to serve from now on."""
        self._ready.add((target.endpoint, target.namespace))

    async def _is_ready(self, target: NamespaceTarget) -> bool:
        """Whether provisioning of the org finished (checked until it has, then remembered)."""
        key = (target.endpoint, target.namespace)
        if key in self._ready:
            return True
        connection = await self.clients.connection(target.endpoint)
        try:
            listed = await retried(
                lambda: connection.operator_service.list_search_attributes(
                    ListSearchAttributesRequest(namespace=target.namespace)
                ),
                target,
            )
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        if any(a.name not in listed.custom_attributes for a in PROVISIONED):
            return False
        self._ready.add(key)
        return True

    async def _list_endpoint(self, endpoint: Endpoint) -> list[Organization]:
        connection = await self.clients.connection(endpoint)
        out: list[Organization] = []
        token = b""
        while True:
            response = await retried(_list_page(connection, token), None)
            for described in response.namespaces:
                info = described.namespace_info
                org_id = info.data.get(ENGINE_TAG)
                if not org_id or info.state != NamespaceState.NAMESPACE_STATE_REGISTERED:
                    continue
                if self.resolver.org_of(info.name, endpoint) != org_id:
                    continue  # tagged, but this resolver sends the org elsewhere
                out.append(Organization.of(NamespaceTarget(org_id, info.name, endpoint), described))
            token = response.next_page_token
            if not token:
                return out


def _list_page(connection: Client, token: bytes) -> Callable[[], Awaitable[Any]]:
    request = ListNamespacesRequest(page_size=1000, next_page_token=token)
    return lambda: connection.workflow_service.list_namespaces(request)
