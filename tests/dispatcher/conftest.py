"""Fixtures of the dispatcher tests: provisioned orgs on the session dev server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from engine.tenancy import Endpoint, PrefixResolver
from tests.helpers.devserver import DevServer
from tests.tenancy.orgkit import Tenancy, open_tenancy, unique_prefix

ORGS = ("d", "lists", "inbox")
"""``lists`` and ``inbox`` hold only the runs of one test each, so that its listings and inbox
can be checked exactly; every other test shares ``d`` (and looks only at its own runs)."""


@pytest.fixture(scope="module")
async def api(temporal_server: DevServer) -> AsyncIterator[Tenancy]:
    resolver = PrefixResolver(Endpoint(temporal_server.address), unique_prefix("api"))
    tenancy = await open_tenancy(resolver, orgs=ORGS)
    try:
        yield tenancy
    finally:
        await tenancy.close()
