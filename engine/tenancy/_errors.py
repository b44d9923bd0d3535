"""Errors of organizations and namespaces, each naming the org and namespace concerned, and
what Temporal's refusals mean for any call."""

from __future__ import annotations

from typing import ClassVar

from temporalio.service import RPCError, RPCStatusCode

from engine.errors import EngineError

__all__ = [
    "NamespaceNotOwnedError",
    "OrgNotFoundError",
    "RateLimitedError",
    "TemporalUnavailableError",
    "temporal_refusal",
]


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


def temporal_refusal(error: RPCError, where: str) -> EngineError | None:
    """The engine's error for a refusal of Temporal that means the same for every call.

    Temporal down or too slow (UNAVAILABLE, DEADLINE_EXCEEDED, or the client's own deadline,
    which ends a call as CANCELLED "Timeout expired") is :class:`TemporalUnavailableError`;
    RESOURCE_EXHAUSTED is :class:`RateLimitedError`. Anything else is the caller's to map
    (None): what NOT_FOUND means, say, depends on what was asked for.

    Args:
        error: What Temporal answered.
        where: What the call was about, for the message ("org 'acme' (namespace 'x')").
    """
    message = error.message or ""
    if error.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED) or (
        error.status == RPCStatusCode.CANCELLED and "timeout" in message.lower()
    ):
        return TemporalUnavailableError(f"Temporal did not answer for {where}: {message}")
    if error.status == RPCStatusCode.RESOURCE_EXHAUSTED:
        return RateLimitedError(f"Temporal is rate limiting {where}: {message}")
    return None
