"""The explicit namespace map: orgs on their own endpoints, and the map file's format.

Two real dev servers stand for two Temporal endpoints (as Temporal Cloud gives every namespace
its own): org ``x`` lives on the session server, org ``y`` on a second one, each in a namespace
with a name of its own rather than prefix + id.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.service import RPCError, RPCStatusCode

from engine.config import TenancySettings
from engine.context import InvalidOrgIdError
from engine.dispatcher import WorkflowNotFoundError
from engine.tenancy import (
    Endpoint,
    MapResolver,
    NamespaceTarget,
    OrgNotFoundError,
    PrefixResolver,
    TlsSettings,
    resolver_from_settings,
)
from tests.helpers.devserver import DevServer, start_dev_server
from tests.tenancy.orgkit import QUICK, Tenancy, open_tenancy, unique_prefix


@pytest.fixture(scope="module")
async def second_server() -> AsyncIterator[DevServer]:
    server = await start_dev_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
async def mapped(temporal_server: DevServer, second_server: DevServer) -> AsyncIterator[Tenancy]:
    """x on the session server, y on the second one; other orgs fall back to prefix + id."""
    tag = uuid.uuid4().hex[:6]
    first, second = Endpoint(temporal_server.address), Endpoint(second_server.address)
    resolver = MapResolver(
        {
            "x": NamespaceTarget("x", f"team-x.{tag}", first),
            "y": NamespaceTarget("y", f"team-y.{tag}", second),
        },
        fallback=PrefixResolver(first, unique_prefix("map")),
    )
    tenancy = await open_tenancy(resolver, orgs=("x", "y"))
    try:
        yield tenancy
    finally:
        await tenancy.close()


async def _exists(tenancy: Tenancy, endpoint: Endpoint, namespace: str) -> bool:
    connection = await tenancy.clients.connection(endpoint)
    try:
        await connection.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace)
        )
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_each_org_runs_in_its_namespace_on_its_own_endpoint(
    mapped: Tenancy, temporal_server: DevServer, second_server: DevServer
) -> None:
    first, second = Endpoint(temporal_server.address), Endpoint(second_server.address)
    x, y = mapped.org("x"), mapped.org("y")
    assert x.namespace.startswith("team-x.") and y.namespace.startswith("team-y.")

    run_x = await mapped.dispatcher.start(x, QUICK, {"n": 1})
    run_y = await mapped.dispatcher.start(y, QUICK, {"n": 2})
    assert await mapped.dispatcher.result(x, run_x.workflow_id) == 2
    assert await mapped.dispatcher.result(y, run_y.workflow_id) == 4

    assert await _exists(mapped, first, x.namespace)
    assert not await _exists(mapped, second, x.namespace)
    assert await _exists(mapped, second, y.namespace)
    assert not await _exists(mapped, first, y.namespace)
    with pytest.raises(WorkflowNotFoundError):
        await mapped.dispatcher.status(y, run_x.workflow_id)

    orgs = {o.org_id: o for o in await mapped.directory.list_orgs()}
    assert (orgs["x"].namespace, orgs["x"].address) == (x.namespace, first.address)
    assert (orgs["y"].namespace, orgs["y"].address) == (y.namespace, second.address)
    assert mapped.pool.served_orgs == ["x", "y"]


async def test_orgs_on_one_endpoint_share_its_connection(
    mapped: Tenancy, temporal_server: DevServer
) -> None:
    # z is not in the map: it falls back to prefix + id on the first endpoint.
    org = await mapped.provisioner.provision("z")
    assert org.address == temporal_server.address
    assert org.namespace == mapped.resolver.resolve("z").namespace

    client_x, client_z = await mapped.client("x"), await mapped.client("z")
    assert client_x.namespace != client_z.namespace
    assert client_x.service_client is client_z.service_client
    assert mapped.clients.connection_count == 2  # one per endpoint, not one per namespace
    run = await mapped.dispatcher.start(mapped.org("z"), QUICK, {"n": 5})
    assert await mapped.dispatcher.result(mapped.org("z"), run.workflow_id) == 10


def test_an_org_outside_the_map_is_not_found_without_a_default() -> None:
    resolver = MapResolver({"x": NamespaceTarget("x", "team-x", Endpoint("t:7233"))})
    with pytest.raises(OrgNotFoundError, match=r"^org 'q' is not in the namespace map$"):
        resolver.resolve("q")
    with pytest.raises(InvalidOrgIdError):
        resolver.resolve("Q")
    assert resolver.endpoints() == (Endpoint("t:7233"),)


def test_two_orgs_can_never_share_a_namespace() -> None:
    endpoint = Endpoint("t:7233")
    with pytest.raises(
        ValueError, match="orgs 'a' and 'b' both map to namespace 'shared' at t:7233"
    ):
        MapResolver(
            {
                "a": NamespaceTarget("a", "shared", endpoint),
                "b": NamespaceTarget("b", "shared", endpoint),
            }
        )
    # The same namespace name on two endpoints is two namespaces.
    MapResolver(
        {
            "a": NamespaceTarget("a", "shared", endpoint),
            "b": NamespaceTarget("b", "shared", Endpoint("u:7233")),
        }
    )


def test_a_default_name_taken_by_a_mapped_org_is_not_handed_to_another() -> None:
    endpoint = Endpoint("t:7233")
    # x is mapped onto the namespace the default naming would give org y.
    resolver = MapResolver(
        {"x": NamespaceTarget("x", "engine-y", endpoint)},
        fallback=PrefixResolver(endpoint, "engine-"),
    )
    with pytest.raises(OrgNotFoundError, match="'engine-y' at t:7233 belongs to org 'x'"):
        resolver.resolve("y")
    assert resolver.org_of("engine-y", endpoint) == "x"
    assert resolver.resolve("w").namespace == "engine-w"
    assert resolver.org_of("engine-w", endpoint) == "w"
    assert resolver.org_of("engine-w", Endpoint("u:7233")) is None


# -- the map file ---------------------------------------------------------------------------

MAP_YAML = """
default:
  address: temporal.internal:7233
  prefix: engine-
orgs:
  acme:
    namespace: acme.a1b2c
    address: acme.a1b2c.tmprl.cloud:7233
    api_key_env: ACME_TEMPORAL_API_KEY
  globex:
    namespace: globex-prod
    address: globex.internal:7233
    tls:
      server_root_ca_cert: /etc/certs/ca.pem
      client_cert: /etc/certs/globex.pem
      client_private_key: /etc/certs/globex.key
      server_name: temporal.globex.internal
  initech:
    address: initech.a1b2c.tmprl.cloud:7233
    api_key: inline-secret
  hooli: {}
"""


def test_a_yaml_map_file_gives_each_org_its_endpoint_and_credentials(tmp_path: Path) -> None:
    path = tmp_path / "namespaces.yaml"
    path.write_text(MAP_YAML)

    resolver = MapResolver.from_file(path, {"ACME_TEMPORAL_API_KEY": "acme-secret"})

    acme = resolver.resolve("acme")
    assert acme.namespace == "acme.a1b2c"
    assert acme.endpoint.address == "acme.a1b2c.tmprl.cloud:7233"
    assert acme.endpoint.api_key == "acme-secret"
    assert acme.endpoint.tls == TlsSettings()  # an API key travels over TLS only
    assert "acme-secret" not in repr(acme)  # nor does it reach a log

    globex = resolver.resolve("globex")
    assert globex.namespace == "globex-prod"
    assert globex.endpoint == Endpoint(
        "globex.internal:7233",
        TlsSettings(
            server_root_ca_cert="/etc/certs/ca.pem",
            client_cert="/etc/certs/globex.pem",
            client_private_key="/etc/certs/globex.key",
            server_name="temporal.globex.internal",
        ),
    )
    initech = resolver.resolve("initech")
    assert initech.namespace == "engine-initech"  # no namespace: the default prefix + id
    assert initech.endpoint.api_key == "inline-secret"
    # hooli names nothing, and unlisted orgs fall back: both are prefix + id by default.
    assert resolver.resolve("hooli") == NamespaceTarget(
        "hooli", "engine-hooli", Endpoint("temporal.internal:7233")
    )
    assert resolver.resolve("umbrella").namespace == "engine-umbrella"
    assert resolver.resolve("umbrella").endpoint == Endpoint("temporal.internal:7233")
    assert set(resolver.endpoints()) == {
        acme.endpoint,
        globex.endpoint,
        initech.endpoint,
        Endpoint("temporal.internal:7233"),
    }
    assert resolver.org_of("acme.a1b2c", acme.endpoint) == "acme"
    assert resolver.org_of("acme.a1b2c", globex.endpoint) is None


def test_a_json_map_file_and_the_settings_that_point_at_it(tmp_path: Path) -> None:
    path = tmp_path / "namespaces.json"
    path.write_text(json.dumps({"orgs": {"acme": {"namespace": "acme-ns", "address": "t:7233"}}}))
    settings = TenancySettings.from_env({"ENGINE_NAMESPACE_MAP": str(path)})

    resolver = resolver_from_settings("ignored:7233", "ignored-", settings.namespace_map)

    assert isinstance(resolver, MapResolver)
    assert resolver.resolve("acme") == NamespaceTarget("acme", "acme-ns", Endpoint("t:7233"))
    with pytest.raises(OrgNotFoundError):
        resolver.resolve("other")
    prefixed = resolver_from_settings("t:7233", "engine-", None)
    assert prefixed.resolve("acme").namespace == "engine-acme"


BAD_MAPS = {
    "not a mapping": ("- acme\n", "{path}: expected a mapping with 'orgs' (and 'default')"),
    "misspelt section": (
        "org: {acme: {address: 't:7233'}}\n",
        "{path}: unknown field(s) org (expected default, orgs)",
    ),
    "orgs not a mapping": ("orgs: [acme]\n", "{path}: orgs: expected a mapping, got list"),
    "entry not a mapping": (
        "orgs: {acme: t:7233}\n",
        "{path}: orgs.acme: expected a mapping, got str",
    ),
    "invalid org id": (
        "orgs: {Acme: {address: 't:7233'}}\n",
        "{path}: orgs.Acme: invalid org id 'Acme': use 1 to 63 lowercase letters, digits and "
        "'-', starting with a letter or digit",
    ),
    "no address and no default": (
        "orgs: {acme: {namespace: acme-ns}}\n",
        "{path}: orgs.acme: needs an address (or a 'default' section)",
    ),
    "address without a port": (
        "orgs: {acme: {address: temporal}}\n",
        "{path}: orgs.acme: 'address' must be host:port, got 'temporal'",
    ),
    "misspelt field": (
        "orgs: {acme: {adress: 't:7233'}}\n",
        "{path}: orgs.acme: unknown field(s) adress "
        "(expected address, api_key, api_key_env, namespace, tls)",
    ),
    "api key variable not set": (
        "orgs: {acme: {address: 't:7233', api_key_env: ACME_KEY}}\n",
        "{path}: orgs.acme: environment variable ACME_KEY (api_key_env) is not set",
    ),
    "two api keys": (
        "orgs: {acme: {address: 't:7233', api_key: k, api_key_env: HOME}}\n",
        "{path}: orgs.acme: give 'api_key' or 'api_key_env', not both",
    ),
    "credentials without their address": (
        "default: {address: 't:7233'}\norgs: {acme: {api_key: k}}\n",
        "{path}: orgs.acme: credentials (api_key) need the 'address' they are for",
    ),
    "unknown tls field": (
        "orgs: {acme: {address: 't:7233', tls: {ca: /ca.pem}}}\n",
        "{path}: orgs.acme.tls: unknown field(s) ca (expected client_cert, client_private_key, "
        "server_name, server_root_ca_cert)",
    ),
    "tls not a mapping": (
        "orgs: {acme: {address: 't:7233', tls: yes}}\n",
        "{path}: orgs.acme.tls: expected a mapping, got bool",
    ),
    "default without address": (
        "default: {prefix: engine-}\n",
        "{path}: default: 'address' must be host:port, got None",
    ),
    "misspelt default field": (
        "default: {address: 't:7233', prefx: engine-}\n",
        "{path}: default: unknown field(s) prefx "
        "(expected address, api_key, api_key_env, prefix, tls)",
    ),
    "shared namespace": (
        "orgs:\n  a: {address: 't:7233', namespace: shared}\n"
        "  b: {address: 't:7233', namespace: shared}\n",
        "{path}: orgs 'a' and 'b' both map to namespace 'shared' at t:7233",
    ),
    "empty namespace": (
        "orgs: {acme: {address: 't:7233', namespace: ''}}\n",
        "{path}: orgs.acme: 'namespace' must be a non-empty string",
    ),
    "broken yaml": (
        "orgs:\n  acme: {address: 't:7233'\n",
        "{path}:3:1: invalid YAML: expected ',' or '}', but got '<stream end>'",
    ),
}


@pytest.mark.parametrize("name", list(BAD_MAPS))
def test_a_bad_map_file_is_refused_naming_the_file_and_the_entry(tmp_path: Path, name: str) -> None:
    text, expected = BAD_MAPS[name]
    path = tmp_path / "namespaces.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=re.escape(str(path))) as caught:
        MapResolver.from_file(path, {"HOME": "/root"})
    assert str(caught.value) == expected.replace("{path}", str(path))


def test_a_missing_or_broken_json_map_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(ValueError, match=re.escape(str(missing))) as caught:
        MapResolver.from_file(missing)
    assert str(caught.value) == (
        f"{missing}: cannot read the namespace map: No such file or directory"
    )
    broken = tmp_path / "namespaces.json"
    broken.write_text('{"orgs": {"acme": }}')
    with pytest.raises(ValueError, match=re.escape(str(broken))) as caught:
        MapResolver.from_file(broken)
    assert str(caught.value) == f"{broken}:1:19: invalid JSON: Expecting value"
