"""One Temporal connection per endpoint, shared by the clients of all its namespaces."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Final

from temporalio.client import Client
from temporalio.service import RetryConfig, TLSConfig

from engine.tenancy._errors import TemporalUnavailableError
from engine.tenancy._resolve import Endpoint, NamespaceTarget, TlsSettings

__all__ = ["ClientPool"]

_CONNECT_TIMEOUT: Final = timedelta(seconds=5)
# Bounded retries of Temporal's own client: a call to a server that is down fails within a few
# seconds (as UNAVAILABLE) instead of hanging; the channel reconnects by itself when it is back.
_RETRY: Final = RetryConfig(
    initial_interval_millis=100, max_interval_millis=1000, max_elapsed_time_millis=5000
)


class ClientPool:
    """Clients of many namespaces over one connection per endpoint.

    Connections are opened lazily on first use, reused by every namespace on the same endpoint
    (``Client(service_client, namespace=...)``), and reconnect by themselves after an outage.
    """

    def __init__(self) -> None:
        self._connections: dict[Endpoint, Client] = {}
        self._clients: dict[tuple[Endpoint, str], Client] = {}
        self._lock = asyncio.Lock()

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
        )
        self._clients[key] = client
        return client

    async def connection(self, endpoint: Endpoint) -> Client:
        """The shared connection to an endpoint (a client of its first namespace)."""
        connection = self._connections.get(endpoint)
        if connection is not None:
            return connection
        async with self._lock:
            connection = self._connections.get(endpoint)
            if connection is None:
                connection = await _connect(endpoint)
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


async def _connect(endpoint: Endpoint) -> Client:
    try:
        return await Client.connect(
            endpoint.address,
            namespace="default",
            api_key=endpoint.api_key,
            tls=_tls(endpoint.tls),
            retry_config=_RETRY,
            connect_timeout=_CONNECT_TIMEOUT,
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
