"""Fixtures of the tenancy tests: two isolated orgs on the session dev server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from engine.tenancy import Endpoint, PrefixResolver
from tests.helpers.devserver import DevServer
from tests.tenancy.orgkit import Tenancy, open_tenancy, unique_prefix


@pytest.fixture(scope="module")
async def two_orgs(temporal_server: DevServer) -> AsyncIterator[Tenancy]:
    """Orgs ``a`` and ``b`` under a prefix of this module's own, served by one worker pool."""
    resolver = PrefixResolver(Endpoint(temporal_server.address), unique_prefix("iso"))
    tenancy = await open_tenancy(resolver, orgs=("a", "b"))
    try:
        yield tenancy
    finally:
        await tenancy.close()
