"""Provisioning organizations: idempotent, concurrent, refusing foreign namespaces and bad ids.

A provisioned org is an engine-tagged namespace with a retention and the engine's search
attributes, and the worker pool serves it at once, without a refresh or a restart.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import (
    DescribeNamespaceRequest,
    DescribeNamespaceResponse,
    RegisterNamespaceRequest,
)

from engine.context import InvalidOrgIdError, OrgContext, validate_org_id
from engine.stack import Stack
from engine.tenancy import (
    ENGINE_TAG,
    Endpoint,
    NamespaceNotOwnedError,
    OrgNotFoundError,
    PrefixResolver,
)
from engine.workflow import SEARCH_ATTRIBUTES
from tests.helpers.devserver import DevServer, start_dev_server
from tests.tenancy.orgkit import QUICK, Tenancy, open_tenancy, unique_prefix


@pytest.fixture(scope="module")
async def tenancy(temporal_server: DevServer) -> AsyncIterator[Tenancy]:
    """A provisioner wired to a worker pool that never refreshes (so only serve() can help)."""
    resolver = PrefixResolver(Endpoint(temporal_server.address), unique_prefix("prov"))
    opened = await open_tenancy(resolver, refresh_interval=None)
    try:
        yield opened
    finally:
        await opened.close()


async def _describe(tenancy: Tenancy, namespace: str) -> DescribeNamespaceResponse:
    connection = await tenancy.clients.connection(tenancy.resolver.endpoints()[0])
    return await connection.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=namespace)
    )


async def _search_attributes(tenancy: Tenancy, namespace: str) -> set[str]:
    connection = await tenancy.clients.connection(tenancy.resolver.endpoints()[0])
    listed = await connection.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    return set(listed.custom_attributes)


async def test_provisioning_twice_returns_the_existing_org(tenancy: Tenancy) -> None:
    provisioner, directory = tenancy.provisioner, tenancy.directory
    namespace = tenancy.resolver.resolve("idem").namespace

    first = await provisioner.provision("idem")
    second = await provisioner.provision("idem")

    assert first.created is True
    assert second.created is False
    assert first.namespace == second.namespace == namespace
    assert first.retention == second.retention == timedelta(days=3)
    assert await directory.get("idem") == second
    described = await _describe(tenancy, namespace)
    assert described.namespace_info.data[ENGINE_TAG] == "idem"
    assert {key.name for key in SEARCH_ATTRIBUTES} <= await _search_attributes(tenancy, namespace)
    assert "idem" in [org.org_id for org in await directory.list_orgs()]


async def test_a_retention_given_at_provisioning_is_the_namespace_retention(
    tenancy: Tenancy,
) -> None:
    org = await tenancy.provisioner.provision("kept", retention=timedelta(days=9))

    assert org.retention == timedelta(days=9)
    described = await _describe(tenancy, org.namespace)
    assert described.config.workflow_execution_retention_ttl.ToTimedelta() == timedelta(days=9)
    # Provisioning again changes nothing: the existing org is returned as it is.
    assert (await tenancy.provisioner.provision("kept")).retention == timedelta(days=9)


async def test_fifty_concurrent_provisions_all_succeed() -> None:
    # The dev server rate-limits namespace registration and search-attribute changes; the
    # provisioner spaces its calls and retries refusals, so a burst still succeeds. Five of the
    # fifty calls race for the same org: exactly one of them creates it. (A server of its own,
    # so that fifty namespaces do not weigh on every discovery of the session server.)
    server = await start_dev_server()
    try:
        resolver = PrefixResolver(Endpoint(server.address), "engine-")
        stack = Stack(resolver)
        clients, provisioner, directory = stack.clients, stack.provisioner, stack.directory
        org_ids = [f"bulk-{i}" for i in range(45)] + ["bulk-raced"] * 5

        organizations = await asyncio.gather(*(provisioner.provision(o) for o in org_ids))

        assert [o.org_id for o in organizations] == org_ids
        created = Counter(o.org_id for o in organizations if o.created)
        assert created == Counter(dict.fromkeys(set(org_ids), 1))
        assert all(o.namespace == "engine-" + o.org_id for o in organizations)
        assert set(org_ids) <= {o.org_id for o in await directory.list_orgs()}
        connection = await clients.connection(resolver.endpoint)
        listed = await asyncio.gather(
            *(
                connection.operator_service.list_search_attributes(
                    ListSearchAttributesRequest(namespace="engine-" + o)
                )
                for o in sorted(set(org_ids))
            )
        )
        wanted = {key.name for key in SEARCH_ATTRIBUTES}
        assert all(wanted <= set(found.custom_attributes) for found in listed)
    finally:
        server.stop()


async def test_a_namespace_the_engine_did_not_register_is_refused(tenancy: Tenancy) -> None:
    namespace = tenancy.resolver.resolve("foreign").namespace
    connection = await tenancy.clients.connection(tenancy.resolver.endpoints()[0])
    await connection.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)
        )
    )

    with pytest.raises(NamespaceNotOwnedError) as caught:
        await tenancy.provisioner.provision("foreign")

    address = tenancy.resolver.endpoints()[0].address
    assert str(caught.value) == (
        f"cannot provision org 'foreign': namespace '{namespace}' at {address} already exists "
        "and is not registered by the engine"
    )
    assert caught.value.code == "ALREADY_EXISTS"
    # The refusal left the namespace as it was, and it is no org of the engine's.
    assert ENGINE_TAG not in (await _describe(tenancy, namespace)).namespace_info.data
    with pytest.raises(OrgNotFoundError, match=f"org 'foreign' not found .*'{namespace}'"):
        await tenancy.directory.get("foreign")
    assert "foreign" not in [o.org_id for o in await tenancy.directory.list_orgs()]
    assert "foreign" not in tenancy.pool.served_orgs


async def test_a_namespace_tagged_for_another_org_is_refused(tenancy: Tenancy) -> None:
    namespace = tenancy.resolver.resolve("squatted").namespace
    connection = await tenancy.clients.connection(tenancy.resolver.endpoints()[0])
    await connection.workflow_service.register_namespace(
        RegisterNamespaceRequest(
            namespace=namespace,
            workflow_execution_retention_period=Duration(seconds=86400),
            data={ENGINE_TAG: "someone-else"},
        )
    )

    with pytest.raises(NamespaceNotOwnedError, match="is tagged for org 'someone-else'"):
        await tenancy.provisioner.provision("squatted")
    with pytest.raises(OrgNotFoundError):
        await tenancy.directory.get("squatted")
    # Discovery does not hand it to a worker as either org.
    listed = [o.org_id for o in await tenancy.directory.list_orgs()]
    assert "squatted" not in listed
    assert "someone-else" not in listed


BAD_IDS = {
    "uppercase": "Acme",
    "underscore": "acme_corp",
    "leading dash": "-acme",
    "64 characters": "a" * 64,
    "empty": "",
    "dot": "acme.corp",
    "space": "acme corp",
    "non-ascii": "acmé",
    "trailing newline": "acme\n",
}


@pytest.mark.parametrize("org_id", list(BAD_IDS.values()), ids=list(BAD_IDS))
async def test_an_invalid_org_id_is_refused_before_temporal_is_asked(org_id: str) -> None:
    # Nothing listens at this address: any call to Temporal would fail as unavailable.
    stack = Stack(PrefixResolver(Endpoint("127.0.0.1:1"), "engine-"))
    provisioner, directory, dispatcher = stack.provisioner, stack.directory, stack.dispatcher
    org = OrgContext(org_id, "engine-" + org_id)
    rule = "use 1 to 63 lowercase letters, digits and '-', starting with a letter or digit"

    calls = {
        "provision": provisioner.provision(org_id),
        "get": directory.get(org_id),
        "start": dispatcher.start(org, QUICK),
        "status": dispatcher.status(org, "any"),
        "list": dispatcher.list(org),
    }
    for name, call in calls.items():
        started = time.monotonic()
        with pytest.raises(InvalidOrgIdError) as caught:
            await call
        assert time.monotonic() - started < 0.5, name
        assert str(caught.value) == f"invalid org id {org_id!r}: {rule}", name
        assert caught.value.code == "INVALID_ARGUMENT"
    assert stack.clients.connection_count == 0


@pytest.mark.parametrize("org_id", ["a", "0", "a-b", "acme-2", "a" * 63, "0-"])
def test_valid_org_ids_resolve_to_prefix_plus_id(org_id: str) -> None:
    endpoint = Endpoint("temporal:7233")
    resolver = PrefixResolver(endpoint, "engine-")
    assert validate_org_id(org_id) == org_id
    target = resolver.resolve(org_id)
    assert (target.org_id, target.namespace, target.endpoint) == (
        org_id,
        f"engine-{org_id}",
        endpoint,
    )
    assert resolver.org_of(f"engine-{org_id}", endpoint) == org_id


def test_prefix_resolver_recognises_only_its_own_namespaces() -> None:
    endpoint = Endpoint("temporal:7233")
    resolver = PrefixResolver(endpoint, "engine-")
    assert resolver.org_of("engine-acme", Endpoint("elsewhere:7233")) is None
    assert resolver.org_of("other-acme", endpoint) is None
    assert resolver.org_of("engine-", endpoint) is None
    assert resolver.org_of("engine-Acme", endpoint) is None
    assert resolver.endpoints() == (endpoint,)


@pytest.mark.parametrize("value", [None, 42, b"acme"])
def test_an_org_id_that_is_not_a_string_is_invalid(value: object) -> None:
    with pytest.raises(InvalidOrgIdError, match=f"invalid org id {value!r}"):
        validate_org_id(value)


async def test_a_new_org_runs_workflows_at_once_without_a_restart(tenancy: Tenancy) -> None:
    assert tenancy.pool.refresh_interval is None  # only provisioning can start its worker
    assert "fresh" not in tenancy.pool.served_orgs

    started = time.monotonic()
    org = await tenancy.provisioner.provision("fresh")
    assert "fresh" in tenancy.pool.served_orgs
    dispatcher = tenancy.dispatcher
    context = tenancy.org("fresh")
    run = await dispatcher.start(context, QUICK, {"n": 21})
    result = await asyncio.wait_for(dispatcher.result(context, run.workflow_id), 10)

    assert result == 42
    assert org.created is True
    assert time.monotonic() - started < 10
