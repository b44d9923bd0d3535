"""Resolving an organization to its Temporal namespace and endpoint.

Two resolvers: :class:`PrefixResolver` (namespace = prefix + org id, on one endpoint) and
:class:`MapResolver` (an explicit file where each org may name its namespace and its own
endpoint, TLS settings and API key: the shape of Temporal Cloud, where every namespace has its
own endpoint and credentials and an account holds about 100 namespaces, so a large installation
spans several endpoints).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import yaml

from engine.context import ORG_ID_PATTERN, InvalidOrgIdError, validate_org_id
from engine.tenancy._errors import OrgNotFoundError

__all__ = [
    "Endpoint",
    "MapResolver",
    "NamespaceResolver",
    "NamespaceTarget",
    "PrefixResolver",
    "TlsSettings",
    "resolver_from_settings",
]


@dataclass(frozen=True)
class TlsSettings:
    """TLS to a Temporal endpoint (paths to PEM files; all optional: system roots by default)."""

    server_root_ca_cert: str | None = None
    client_cert: str | None = None
    client_private_key: str | None = None
    server_name: str | None = None


@dataclass(frozen=True)
class Endpoint:
    """A Temporal frontend and the credentials to reach it: one connection each.

    The API key never shows in ``repr`` (so it never reaches a log).
    """

    address: str
    tls: TlsSettings | None = None
    api_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class NamespaceTarget:
    """Where an organization's runs live."""

    org_id: str
    namespace: str
    endpoint: Endpoint


class NamespaceResolver(Protocol):
    """Maps an org id to its namespace target."""

    def resolve(self, org_id: str) -> NamespaceTarget:
        """The target of ``org_id``.

        Raises:
            InvalidOrgIdError: The id is malformed.
            OrgNotFoundError: The resolver knows no such org.
        """
        ...

    def endpoints(self) -> tuple[Endpoint, ...]:
        """Every endpoint the resolver can send an org to (for discovery)."""
        ...

    def org_of(self, namespace: str, endpoint: Endpoint) -> str | None:
        """The org whose namespace this is, if the resolver would send it there."""
        ...


class PrefixResolver:
    """Namespace = ``prefix + org_id`` on one endpoint (``ENGINE_NAMESPACE_PREFIX``)."""

    def __init__(self, endpoint: Endpoint, prefix: str = "") -> None:
        self.endpoint = endpoint
        self.prefix = prefix
        self._cache: dict[str, NamespaceTarget] = {}

    def resolve(self, org_id: str) -> NamespaceTarget:
        target = self._cache.get(org_id)
        if target is None:
            validate_org_id(org_id)
            target = NamespaceTarget(org_id, self.prefix + org_id, self.endpoint)
            self._cache[org_id] = target
        return target

    def endpoints(self) -> tuple[Endpoint, ...]:
        return (self.endpoint,)

    def org_of(self, namespace: str, endpoint: Endpoint) -> str | None:
        if endpoint != self.endpoint or not namespace.startswith(self.prefix):
            return None
        org_id = namespace[len(self.prefix) :]
        return org_id if ORG_ID_PATTERN.fullmatch(org_id) else None


class MapResolver:
    """An explicit map of orgs to namespaces and endpoints, usually loaded from a file.

    File format (YAML or JSON)::

        default:                      # optional: orgs not listed use prefix + id here
          address: temporal.internal:7233
          prefix: engine-
        orgs:
          acme:
            namespace: acme.a1b2c    # Temporal Cloud: name.account
            address: acme.a1b2c.tmprl.cloud:7233
            api_key_env: ACME_TEMPORAL_API_KEY   # or api_key: ...
            tls: {}                  # TLS with system roots; or paths to PEM files
    """

    def __init__(
        self, targets: Mapping[str, NamespaceTarget], fallback: PrefixResolver | None = None
    ) -> None:
        owners: dict[tuple[Endpoint, str], str] = {}
        for org_id, target in targets.items():
            validate_org_id(org_id)
            if target.org_id != org_id:
                raise ValueError(f"the target of org '{org_id}' names org '{target.org_id}'")
            other = owners.setdefault((target.endpoint, target.namespace), org_id)
            if other != org_id:
                # Two orgs in one namespace would see (and drive) each other's runs.
                raise ValueError(
                    f"orgs '{other}' and '{org_id}' both map to namespace "
                    f"'{target.namespace}' at {target.endpoint.address}"
                )
        self.targets = dict(targets)
        self.fallback = fallback
        self._owners = owners

    def resolve(self, org_id: str) -> NamespaceTarget:
        target = self.targets.get(org_id)
        if target is not None:
            return target
        validate_org_id(org_id)
        if self.fallback is None:
            raise OrgNotFoundError(f"org '{org_id}' is not in the namespace map")
        target = self.fallback.resolve(org_id)
        owner = self._owners.get((target.endpoint, target.namespace))
        if owner is not None:
            # The default naming would land this org in a namespace the map gives another org.
            raise OrgNotFoundError(
                f"org '{org_id}' is not in the namespace map, and its default namespace "
                f"'{target.namespace}' at {target.endpoint.address} belongs to org '{owner}'"
            )
        return target

    def endpoints(self) -> tuple[Endpoint, ...]:
        listed = [t.endpoint for t in self.targets.values()]
        return _unique([*listed, self.fallback.endpoint] if self.fallback else listed)

    def org_of(self, namespace: str, endpoint: Endpoint) -> str | None:
        for target in self.targets.values():
            if target.namespace == namespace and target.endpoint == endpoint:
                return target.org_id
        if self.fallback is not None:
            org_id = self.fallback.org_of(namespace, endpoint)
            if org_id is not None and org_id not in self.targets:
                return org_id
        return None

    @classmethod
    def from_file(cls, path: str | Path, environ: Mapping[str, str] | None = None) -> MapResolver:
        """Load a map from a YAML or JSON file (API keys may come from environment variables).

        Raises:
            ValueError: The file is malformed; the message names the file and the entry.
        """
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else str(error)
            raise ValueError(f"{source}: cannot read the namespace map: {reason}") from None
        try:
            data = json.loads(text) if source.endswith(".json") else yaml.safe_load(text)
        except json.JSONDecodeError as error:
            raise ValueError(
                f"{source}:{error.lineno}:{error.colno}: invalid JSON: {error.msg}"
            ) from None
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
            problem = getattr(error, "problem", None) or str(error)
            raise ValueError(f"{where}: invalid YAML: {problem}") from None
        return cls.from_mapping(data, source=source, environ=environ)

    @classmethod
    def from_mapping(
        cls, data: Any, *, source: str = "<map>", environ: Mapping[str, str] | None = None
    ) -> MapResolver:
        """Build a map from parsed data (see the class docstring for the format)."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a mapping with 'orgs' (and 'default')")
        _known(data, {"default", "orgs"}, source)
        env = environ or {}
        fallback = None
        if data.get("default") is not None:
            where = f"{source}: default"
            default = _mapping(data["default"], where)
            _known(default, {"prefix", *_ENDPOINT_FIELDS}, where)
            prefix = default.get("prefix", "")
            if not isinstance(prefix, str):
                raise ValueError(f"{where}: 'prefix' must be a string, got {prefix!r}")
            fallback = PrefixResolver(_endpoint(default, where, env), prefix)
        targets: dict[str, NamespaceTarget] = {}
        orgs = data.get("orgs")
        for org_id, entry in _mapping({} if orgs is None else orgs, f"{source}: orgs").items():
            where = f"{source}: orgs.{org_id}"
            entry = _mapping({} if entry is None else entry, where)
            _known(entry, {"namespace", *_ENDPOINT_FIELDS}, where)
            try:
                validate_org_id(org_id)
            except InvalidOrgIdError as error:
                raise ValueError(f"{where}: {error}") from None
            namespace = entry.get("namespace")
            if namespace is None:
                namespace = (fallback.prefix if fallback else "") + org_id
            elif not isinstance(namespace, str) or not namespace:
                raise ValueError(f"{where}: 'namespace' must be a non-empty string")
            if "address" in entry:
                endpoint = _endpoint(entry, where, env)
            elif set(entry) & _ENDPOINT_FIELDS:
                raise ValueError(
                    f"{where}: credentials ({', '.join(sorted(set(entry) & _ENDPOINT_FIELDS))}) "
                    "need the 'address' they are for"
                )
            elif fallback is not None:
                endpoint = fallback.endpoint
            else:
                raise ValueError(f"{where}: needs an address (or a 'default' section)")
            targets[org_id] = NamespaceTarget(org_id, namespace, endpoint)
        try:
            return cls(targets, fallback)
        except ValueError as error:
            raise ValueError(f"{source}: {error}") from None


_ENDPOINT_FIELDS: Final = frozenset({"address", "api_key", "api_key_env", "tls"})
_TLS_FIELDS: Final = frozenset(
    {"server_root_ca_cert", "client_cert", "client_private_key", "server_name"}
)


def _known(entry: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    """Refuse unknown keys: a misspelt one would otherwise be silently ignored."""
    unknown = sorted(str(key) for key in set(entry) - set(allowed))
    if unknown:
        raise ValueError(
            f"{where}: unknown field(s) {', '.join(unknown)} "
            f"(expected {', '.join(sorted(allowed))})"
        )


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def _endpoint(entry: Mapping[str, Any], where: str, env: Mapping[str, str]) -> Endpoint:
    address = entry.get("address")
    if not isinstance(address, str) or ":" not in address:
        raise ValueError(f"{where}: 'address' must be host:port, got {address!r}")
    api_key = entry.get("api_key")
    if api_key is not None and not isinstance(api_key, str):
        raise ValueError(f"{where}: 'api_key' must be a string")  # never echo a key
    if entry.get("api_key_env"):
        if api_key is not None:
            raise ValueError(f"{where}: give 'api_key' or 'api_key_env', not both")
        name = str(entry["api_key_env"])
        if name not in env:
            raise ValueError(f"{where}: environment variable {name} (api_key_env) is not set")
        api_key = env[name]
    tls = None
    if entry.get("tls") is not None:
        settings = _mapping(entry["tls"], f"{where}.tls")
        _known(settings, _TLS_FIELDS, f"{where}.tls")
        for key, value in settings.items():
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{where}.tls: '{key}' must be a string, got {value!r}")
        tls = TlsSettings(**{k: v for k, v in settings.items() if v is not None})
    elif api_key:
        tls = TlsSettings()  # API keys travel only over TLS
    return Endpoint(address, tls, api_key)


def _unique(values: Iterable[Endpoint]) -> tuple[Endpoint, ...]:
    return tuple(dict.fromkeys(values))


def resolver_from_settings(
    address: str, prefix: str, namespace_map: str | None, environ: Mapping[str, str] | None = None
) -> NamespaceResolver:
    """The resolver the settings describe: the map file if there is one, else the prefix."""
    if namespace_map:
        return MapResolver.from_file(namespace_map, environ)
    return PrefixResolver(Endpoint(address), prefix)
