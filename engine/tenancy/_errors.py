"""Errors of organizations and namespaces, each naming the org and namespace concerned."""

from __future__ import annotations

from typing import ClassVar

from engine.errors import EngineError

__all__ = [
    "InvalidOrgIdError",
    "NamespaceNotOwnedError",
    "OrgNotFoundError",
    "RateLimitedError",
    "TemporalUnavailableError",
]


class InvalidOrgIdError(EngineError):
    """An org id that does not match ``^[a-z0-9][a-z0-9-]{0,62}$``."""

    code: ClassVar[str] = "INVALID_ARGUMENT"
    reason: ClassVar[str] = "INVALID_ORG_ID"


class OrgNotFoundError(EngineError):
    """No organization with that id (its namespace is missing or is not the engine's)."""

    code: ClassVar[str] = "NOT_FOUND"
    reason: ClassVar[str] = "ORG_NOT_FOUND"


class NamespaceNotOwnedError(EngineError):
    """The org's namespace exists but was not registered by the engine."""

    code: ClassVar[str] = "ALREADY_EXISTS"
    reason: ClassVar[str] = "NAMESPACE_NOT_OWNED"


class TemporalUnavailableError(EngineError):
    """Temporal did not answer, after bounded retries."""

    code: ClassVar[str] = "UNAVAILABLE"
    reason: ClassVar[str] = "TEMPORAL_UNAVAILABLE"


class RateLimitedError(EngineError):
    """Temporal kept refusing with RESOURCE_EXHAUSTED, after bounded retries."""

    code: ClassVar[str] = "RESOURCE_EXHAUSTED"
    reason: ClassVar[str] = "RATE_LIMITED"
