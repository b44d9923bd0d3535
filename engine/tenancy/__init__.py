"""Organizations: namespace naming and resolution, shared connections, provisioning.

Every organization's runs live in its own Temporal namespace. A :class:`NamespaceResolver`
maps an org id to its namespace and endpoint (:class:`PrefixResolver`: prefix + id;
:class:`MapResolver`: an explicit file, one endpoint and credentials per org if need be), a
:class:`ClientPool` shares one connection per endpoint among the clients of all its
namespaces, and a :class:`Provisioner` registers engine-tagged namespaces idempotently.
"""

from __future__ import annotations

from engine.tenancy._clients import ClientPool
from engine.tenancy._errors import (
    InvalidOrgIdError,
    NamespaceNotOwnedError,
    OrgNotFoundError,
    RateLimitedError,
    TemporalUnavailableError,
)
from engine.tenancy._provision import ENGINE_TAG, Organization, Provisioner
from engine.tenancy._resolve import (
    ORG_ID_PATTERN,
    Endpoint,
    MapResolver,
    NamespaceResolver,
    NamespaceTarget,
    PrefixResolver,
    TlsSettings,
    resolver_from_settings,
    validate_org_id,
)

__all__ = [
    "ENGINE_TAG",
    "ORG_ID_PATTERN",
    "ClientPool",
    "Endpoint",
    "InvalidOrgIdError",
    "MapResolver",
    "NamespaceNotOwnedError",
    "NamespaceResolver",
    "NamespaceTarget",
    "OrgNotFoundError",
    "Organization",
    "PrefixResolver",
    "Provisioner",
    "RateLimitedError",
    "TemporalUnavailableError",
    "TlsSettings",
    "resolver_from_settings",
    "validate_org_id",
]
