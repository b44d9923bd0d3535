"""A control plane for the CLI tests, and a way to run ``enginectl`` against it.

Kept apart from ``conftest.py`` so that test modules can import its names (``SECRET``,
``Plane``): pytest imports a conftest under a name of its own, and importing it again from a
test would make a second copy, with a second random secret.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from engine.context import OrgContext
from engine.dispatcher import DefinitionRegistry
from engine.identity import LinkSigner, TokenVerifier, issue_token
from engine.server import ControlPlane
from engine.tenancy import Endpoint, PrefixResolver
from tests.tenancy.orgkit import Tenancy, open_tenancy, unique_prefix

__all__ = ["LINK_SECRET", "ORGS", "SECRET", "Ctl", "Plane", "Result", "open_plane"]

SECRET = "cli-secret-" + uuid.uuid4().hex
"""The HS256 secret the tests' control plane verifies tokens with."""

LINK_SECRET = "cli-link-secret-" + uuid.uuid4().hex
"""The key the tests' control plane signs answer links with."""

ORGS = ("acme", "inbox")
"""``acme`` holds most tests' runs (each test looks only at its own); only the inbox test
starts runs in ``inbox``, so that its inbox can be checked exactly."""


@dataclass
class Plane:
    """A running control plane and what the tests need to reach it."""

    address: str
    prefix: str
    server: ControlPlane
    tenancy: Tenancy
    registry: DefinitionRegistry

    def token(self, org_id: str = "acme", *, admin: bool = False) -> str:
        return issue_token(SECRET, org_id, roles=["platform"] if admin else [])

    def org(self, org_id: str = "acme") -> OrgContext:
        return self.tenancy.org(org_id)

    async def register(self, yaml_text: str, org_id: str = "acme") -> None:
        await self.registry.register(self.org(org_id), yaml_text)


@asynccontextmanager
async def open_plane(temporal_address: str) -> AsyncIterator[Plane]:
    """Wire and start a control plane like ``engined`` does, with ``ORGS`` provisioned.

    The engine's stack over a resolver with a prefix of its own, with its worker pool, and its
    control plane on a free port.
    """
    prefix = unique_prefix("cli")
    resolver = PrefixResolver(Endpoint(temporal_address), prefix)
    tenancy = await open_tenancy(resolver, orgs=ORGS)
    server = tenancy.control_plane(
        TokenVerifier(SECRET), address="127.0.0.1:0", links=LinkSigner(LINK_SECRET)
    )
    try:
        await server.start()
        yield Plane(f"127.0.0.1:{server.port}", prefix, server, tenancy, tenancy.registry)
    finally:
        await server.stop(0)
        await tenancy.close()


@dataclass
class Result:
    """What one ``enginectl`` invocation did."""

    status: int
    out: list[str]
    err: str


Ctl = Callable[..., Awaitable[Result]]
"""Runs ``enginectl`` with arguments (see the ``ctl`` fixture)."""
