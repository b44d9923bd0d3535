"""Configuration read from the environment, in one place.

Every setting the engine reads from the environment is declared here, with its default; no other
module reads ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ServerSettings", "TemporalSettings", "TenancySettings"]


@dataclass(frozen=True, slots=True)
class TemporalSettings:
    """Where the engine's Temporal server is and which task queue its workers poll.

    Attributes:
        address: ``host:port`` of the Temporal frontend (``TEMPORAL_ADDRESS``).
        namespace: The namespace of a single-organization setup (``TEMPORAL_NAMESPACE``).
        task_queue: The task queue of the interpreter's workers (``TEMPORAL_TASK_QUEUE``).
    """

    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    task_queue: str = "engine"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TemporalSettings:
        """Read ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE`` and ``TEMPORAL_TASK_QUEUE``."""
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            address=env.get("TEMPORAL_ADDRESS", defaults.address),
            namespace=env.get("TEMPORAL_NAMESPACE", defaults.namespace),
            task_queue=env.get("TEMPORAL_TASK_QUEUE", defaults.task_queue),
        )


@dataclass(frozen=True, slots=True)
class TenancySettings:
    """How organizations map to namespaces.

    Attributes:
        namespace_prefix: Namespace = prefix + org id (``ENGINE_NAMESPACE_PREFIX``).
        namespace_map: A YAML/JSON file mapping orgs to namespaces and endpoints
            (``ENGINE_NAMESPACE_MAP``); when set, it takes precedence over the prefix.
        retention_days: Retention of closed runs in new namespaces (``ENGINE_RETENTION_DAYS``).
    """

    namespace_prefix: str = ""
    namespace_map: str | None = None
    retention_days: int = 3

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TenancySettings:
        """Read ``ENGINE_NAMESPACE_PREFIX``, ``ENGINE_NAMESPACE_MAP``, ``ENGINE_RETENTION_DAYS``."""
        env = os.environ if environ is None else environ
        days = env.get("ENGINE_RETENTION_DAYS", "3")
        if not days.isdigit() or int(days) < 1:
            raise ValueError(f"ENGINE_RETENTION_DAYS must be a positive integer, got {days!r}")
        return cls(
            namespace_prefix=env.get("ENGINE_NAMESPACE_PREFIX", ""),
            namespace_map=env.get("ENGINE_NAMESPACE_MAP") or None,
            retention_days=int(days),
        )


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The control plane's listener and token settings.

    Attributes:
        listen: ``host:port`` of the gRPC listener (``ENGINE_LISTEN``).
        token_secret: HS256 secret of bearer tokens (``ENGINE_TOKEN_SECRET``).
        token_public_key: PEM public key (or a path to one) for RS256/ES256 tokens
            (``ENGINE_TOKEN_PUBLIC_KEY``); takes precedence over the secret.
        token_algorithm: ``HS256``, ``RS256`` or ``ES256`` (``ENGINE_TOKEN_ALGORITHM``).
        tls_cert: PEM certificate of the listener (``ENGINE_TLS_CERT``); TLS when set.
        tls_key: PEM private key of the listener (``ENGINE_TLS_KEY``).
        home: Where ``engined dev`` keeps its state (``ENGINE_HOME``, default ``.engine``).
    """

    listen: str = "127.0.0.1:50051"
    token_secret: str | None = None
    token_public_key: str | None = None
    token_algorithm: str = "HS256"
    tls_cert: str | None = None
    tls_key: str | None = None
    home: str = ".engine"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerSettings:
        """Read the ``ENGINE_*`` settings of the control plane."""
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            listen=env.get("ENGINE_LISTEN", defaults.listen),
            token_secret=env.get("ENGINE_TOKEN_SECRET") or None,
            token_public_key=env.get("ENGINE_TOKEN_PUBLIC_KEY") or None,
            token_algorithm=env.get("ENGINE_TOKEN_ALGORITHM", defaults.token_algorithm),
            tls_cert=env.get("ENGINE_TLS_CERT") or None,
            tls_key=env.get("ENGINE_TLS_KEY") or None,
            home=env.get("ENGINE_HOME", defaults.home),
        )
