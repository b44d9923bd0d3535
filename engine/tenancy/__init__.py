"""Organizations: namespace naming and resolution, shared connections, provisioning.

Every organization's runs live in its own Temporal namespace. A :class:`NamespaceResolver`
maps an org id to its namespace and endpoint (:class:`PrefixResolver`: prefix + id;
:class:`MapResolver`: an explicit file, one endpoint and credentials per org if need be), a
:class:`ClientPool` shares one connection per endpoint among the clients of all its
namespaces, a :class:`Provisioner` registers engine-tagged namespaces idempotently, and an
:class:`OrgDirectory` finds them (the worker pool's discovery).
"""

from __future__ import annotations

from engine.tenancy._clients import ClientPool, tracing_interceptors
from engine.tenancy._directory import ENGINE_TAG, Organization, OrgDirectory
from engine.tenancy._errors import (
    NamespaceNotOwnedError,
    OrgNotFoundError,
    RateLimitedError,
    TemporalRefusedError,
    TemporalTimeoutError,
    TemporalUnavailableError,
    temporal_error,
    temporal_refusal,
)
from engine.tenancy._provision import Provisioner
from engine.tenancy._resolve import (
    Endpoint,
    MapResolver,
    NamespaceResolver,
    NamespaceTarget,
    PrefixResolver,
    TlsSettings,
    resolver_from_settings,
)
from engine.tenancy._router import OrgRouter

__all__ = [
    "ENGINE_TAG",
    "ClientPool",
    "Endpoint",
    "MapResolver",
    "NamespaceNotOwnedError",
    "NamespaceResolver",
    "NamespaceTarget",
    "OrgDirectory",
    "OrgNotFoundError",
    "OrgRouter",
    "Organization",
    "PrefixResolver",
    "Provisioner",
    "RateLimitedError",
    "TemporalRefusedError",
    "TemporalTimeoutError",
    "TemporalUnavailableError",
    "TlsSettings",
    "resolver_from_settings",
    "temporal_error",
    "temporal_refusal",
    "tracing_interceptors",
]
