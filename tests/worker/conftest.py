"""Fixtures of the worker-pool tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from engine.tenancy import Endpoint, PrefixResolver
from tests.helpers.devserver import DevServer
from tests.tenancy.orgkit import Tenancy, open_tenancy, unique_prefix


@pytest.fixture(scope="module")
async def sharded(temporal_server: DevServer) -> AsyncIterator[Tenancy]:
    """A pool that serves only org ``first`` (a shard), though it provisions others."""
    resolver = PrefixResolver(Endpoint(temporal_server.address), unique_prefix("pool"))
    tenancy = await open_tenancy(resolver, orgs=("first",), shard=("first",))
    try:
        yield tenancy
    finally:
        await tenancy.close()
