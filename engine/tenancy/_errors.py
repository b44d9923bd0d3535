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
    "TemporalRefusedError",
    "TemporalTimeoutError",
    "TemporalUnavailableError",
    "temporal_error",
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


class TemporalTimeoutError(TemporalUnavailableError):
    """Temporal did not answer within the call's time (slow or busy, rather than down): the
    call may have taken effect."""


class RateLimitedError(EngineError):
    """Temporal kept refusing with RESOURCE_EXHAUSTED, after bounded retries."""

    code: ClassVar[str] = "RESOURCE_EXHAUSTED"
    reason: ClassVar[str] = "RATE_LIMITED"


class TemporalRefusedError(EngineError):
    """Temporal refused a call for a reason no other error of the engine names (its message
    says which); nothing was done."""

    code: ClassVar[str] = "FAILED_PRECONDITION"
    reason: ClassVar[str] = "TEMPORAL_REFUSED"


def temporal_error(error: RPCError, where: str) -> EngineError:
    """The engine's error for any refusal of Temporal: :func:`temporal_refusal`'s, else
    UNAVAILABLE for a failure of the call itself (a transport or server error: retrying
    helps), else :class:`TemporalRefusedError` with Temporal's message."""
    refusal = temporal_refusal(error, where)
    if refusal is not None:
        return refusal
    message = error.message or error.status.name
    if error.status in (RPCStatusCode.UNKNOWN, RPCStatusCode.INTERNAL, RPCStatusCode.ABORTED):
        return TemporalUnavailableError(f"Temporal failed a call for {where}: {message}")
    if error.status == RPCStatusCode.NOT_FOUND and "namespace" in message.lower():
        return OrgNotFoundError(f"{where} is not provisioned: {message}")
    return TemporalRefusedError(f"Temporal refused a call for {where}: {message}")


def temporal_refusal(error: RPCError, where: str) -> EngineError | None:
    """The engine's error for a refusal of Temporal that means the same for every call.

    Temporal down or too slow (UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED: the client's own
    deadline, or the server's "context canceled" under load) is
    :class:`TemporalUnavailableError`;
    RESOURCE_EXHAUSTED is :class:`RateLimitedError`. Anything else is the caller's to map
    (None): what NOT_FOUND means, say, depends on what was asked for.

    Args:
        error: What Temporal answered.
        where: What the call was about, for the message ("org 'acme' (namespace 'x')").
    """
    message = error.message or ""
    # CANCELLED comes from the client's own deadline ("Timeout expired") or from the server
    # giving up under load ("context canceled"): either way the call may be repeated.
    if error.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
        return TemporalTimeoutError(f"Temporal did not answer in time for {where}: {message}")
    if error.status == RPCStatusCode.UNAVAILABLE:
        return TemporalUnavailableError(f"Temporal did not answer for {where}: {message}")
    if error.status == RPCStatusCode.RESOURCE_EXHAUSTED:
        return RateLimitedError(f"Temporal is rate limiting {where}: {message}")
    return None
