"""From a caller's organization to the client of its namespace: the one way there."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle

from engine.context import OrgContext
from engine.tenancy._clients import ClientPool
from engine.tenancy._errors import OrgNotFoundError
from engine.tenancy._resolve import NamespaceResolver, NamespaceTarget

__all__ = ["OrgRouter"]


class OrgRouter:
    """Routes every call of an org to its own namespace, over the shared connections.

    Nothing in a request can point a call at another namespace: the org context comes from
    the caller's credentials, and the namespace from the resolver. Every routed call tells the
    client pool's ``on_org_call`` (a worker pool keeps an org that is used active).

    Args:
        resolver: Maps org ids to namespace targets.
        clients: The shared client pool.
    """

    def __init__(self, resolver: NamespaceResolver, clients: ClientPool) -> None:
        self.resolver = resolver
        self.clients = clients

    def target(self, org: OrgContext) -> NamespaceTarget:
        """The namespace of the caller's org (the only one a call can reach).

        Raises:
            OrgNotFoundError: The context names another namespace than the resolver's.
        """
        target = self.resolver.resolve(org.org_id)
        if self.clients.on_org_call is not None:
            self.clients.on_org_call(org.org_id)
        if org.namespace and org.namespace != target.namespace:
            raise OrgNotFoundError(
                f"org '{org.org_id}' is served by namespace '{target.namespace}', "
                f"not '{org.namespace}'"
            )
        return target

    async def client(self, org: OrgContext) -> Client:
        """The client of the caller's org namespace."""
        return await self.clients.client(self.target(org))

    async def query(
        self,
        org: OrgContext,
        handle: WorkflowHandle[Any, Any],
        name: str,
        *args: Any,
        rpc_timeout: timedelta | None = None,
    ) -> Any:
        """Ask a query of a run of the caller's org, bounded and coalesced (see
        ``ClientPool.query``)."""
        target = self.target(org)
        return await self.clients.query(target, handle, name, *args, rpc_timeout=rpc_timeout)

    def where(self, org: OrgContext) -> str:
        """The org and its namespace, for messages: ``org 'acme' (namespace 'engine-acme')``."""
        return f"org '{org.org_id}' (namespace '{self.target(org).namespace}')"
