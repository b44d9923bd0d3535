"""Fixtures of the control-plane tests: one running server per test module, and its stubs.

The server serves three orgs under a prefix of its own: ``acme`` (most tests, each looking only
at its own runs and definitions), ``globex`` (the other tenant of the isolation tests) and
``inbox`` (only the pending-actions test starts runs there, so its inbox can be checked
exactly).

Per module, not per session: the server's worker pool (its threads and worker tasks) must be
gone before other directories' tests run, which check that a stopped pool leaves none behind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from engine.api.v1 import (
    definition_service_pb2_grpc,
    organization_service_pb2_grpc,
    workflow_service_pb2_grpc,
)
from tests.helpers.devserver import DevServer
from tests.server.harness import ControlPlaneKit, open_control_plane

ORGS = ("acme", "globex", "inbox")


@pytest.fixture(scope="module")
async def kit(temporal_server: DevServer) -> AsyncIterator[ControlPlaneKit]:
    """The control plane, started once for the tests of a module."""
    running = await open_control_plane(temporal_server.address, tag="srv", orgs=ORGS)
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture(scope="module")
def organizations(kit: ControlPlaneKit) -> organization_service_pb2_grpc.OrganizationServiceStub:
    return kit.stubs()[0]


@pytest.fixture(scope="module")
def definitions(kit: ControlPlaneKit) -> definition_service_pb2_grpc.DefinitionServiceStub:
    return kit.stubs()[1]


@pytest.fixture(scope="module")
def workflows(kit: ControlPlaneKit) -> workflow_service_pb2_grpc.WorkflowServiceStub:
    return kit.stubs()[2]
