"""Provisioning organizations: registering one engine-tagged Temporal namespace each.

Registering is idempotent: an org that exists is returned as it is; a namespace with the org's
name that the engine did not register is refused. RegisterNamespace calls are spaced out per
endpoint (the server's budget for them is small) and retried through transient refusals.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from google.protobuf.duration_pb2 import Duration
from temporalio.api.workflowservice.v1 import DescribeNamespaceResponse, RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from engine.tenancy._calls import describe_namespace, retried
from engine.tenancy._directory import ENGINE_TAG, Organization, OrgDirectory
from engine.tenancy._errors import NamespaceNotOwnedError
from engine.tenancy._resolve import Endpoint, NamespaceTarget
from engine.worker import WorkerPool
from engine.workflow import ensure_search_attributes

__all__ = ["Provisioner"]


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
    """Registers organizations, and has the worker pool serve each at once.

    Args:
        directory: Where provisioned orgs are found (told when one is ready).
        retention: Default retention of closed runs in new namespaces.
        register_rate: Most RegisterNamespace calls a second, per endpoint.
        workers: The worker pool that serves a new org at once (no restart needed).
    """

    def __init__(
        self,
        directory: OrgDirectory,
        *,
        retention: timedelta = timedelta(days=3),
        register_rate: float = 10.0,
        workers: WorkerPool | None = None,
    ) -> None:
        self.directory = directory
        self.retention = retention
        self.register_rate = register_rate
        self.workers = workers
        self._throttles: dict[Endpoint, _Throttle] = {}

    async def provision(self, org_id: str, retention: timedelta | None = None) -> Organization:
        """Make sure the org's namespace exists, is the engine's, is ready, and is served.

        Raises:
            InvalidOrgIdError: The org id is malformed.
            NamespaceNotOwnedError: The namespace exists but the engine did not register it.
            RateLimitedError, TemporalUnavailableError: Temporal kept refusing or is down.
        """
        clients = self.directory.clients
        target = self.directory.resolver.resolve(org_id)
        connection = await clients.connection(target.endpoint)
        created = False
        existing = await describe_namespace(connection, target)
        if existing is None:
            created = await self._register(connection, target, retention or self.retention)
            existing = await describe_namespace(connection, target, wait_until_found=True)
            assert existing is not None
        _check_owner(existing, target)
        client = await clients.client(target)
        await retried(
            lambda: ensure_search_attributes(client, target.namespace),
            target,
            also=frozenset({RPCStatusCode.NOT_FOUND}),
        )
        self.directory.mark_ready(target)
        if self.workers is not None:
            await self.workers.serve(await self.directory.served(target))
        return Organization.of(target, existing, created=created)

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
            await retried(register, target)
        except RPCError as error:
            if error.status == RPCStatusCode.ALREADY_EXISTS:
                return False  # another provisioner won the race; ownership is checked next
            raise
        return True


def _check_owner(described: DescribeNamespaceResponse, target: NamespaceTarget) -> None:
    owner = described.namespace_info.data.get(ENGINE_TAG)
    if owner != target.org_id:
        whose = f"tagged for org '{owner}'" if owner else "not registered by the engine"
        raise NamespaceNotOwnedError(
            f"cannot provision org '{target.org_id}': namespace '{target.namespace}' at "
            f"{target.endpoint.address} already exists and is {whose}"
        )
