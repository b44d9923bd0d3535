"""Mapping the engine's errors to gRPC statuses with google.rpc rich details, in one place.

Every :class:`~engine.errors.EngineError` becomes its declared status code with its message
and an ``ErrorInfo`` (its ``reason``); definition problems and bad inputs add ``BadRequest``
field violations (with line:column), NOT_FOUND adds ``ResourceInfo`` (the resource's message
type and, taken from the request, its name), UNAVAILABLE and RESOURCE_EXHAUSTED add
``RetryInfo``. Anything else
becomes INTERNAL with an id that is also in the server log, so no Python traceback ever reaches
a client.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Final

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from engine.definition import DefinitionError, InputError
from engine.errors import EngineError, InvalidFieldError
from engine.protocol import clipped
from engine.tenancy import TemporalUnavailableError, temporal_error

__all__ = ["DOMAIN", "FieldError", "status_of"]

DOMAIN: Final = "engine"
_MESSAGE_KEPT: Final = 1000
_LISTED: Final = 100
"""At most this many field violations are listed (the message says how many there are)."""
log = logging.getLogger("engine.server")

_RESOURCE_TYPES: Final = {
    "WORKFLOW_NOT_FOUND": "engine.api.v1.Workflow",
    "DEFINITION_NOT_FOUND": "engine.api.v1.Definition",
    "ORG_NOT_FOUND": "engine.api.v1.Organization",
}
"""The resource a NOT_FOUND reason is about, as ResourceInfo.resource_type names it."""


class FieldError(InvalidFieldError):
    """A request field that is missing or malformed (the message names the field).

    The server's own name for :class:`~engine.errors.InvalidFieldError`: every error of that
    family, the server's or a lower layer's (e.g. a schedule spec), leaves as one BadRequest
    field violation.
    """


def status_of(error: BaseException, method: str, request: Any = None) -> status_pb2.Status:
    """The google.rpc.Status a client receives for ``error`` raised by ``method``.

    ``request`` (the call's request message, if known) names the resource of a NOT_FOUND.
    """
    if isinstance(error, RPCError):
        # A Temporal error no layer translated: still typed, never INTERNAL.
        error = temporal_error(error, "this call")
    elif isinstance(error, RPCTimeoutOrCancelledError):
        error = TemporalUnavailableError(
            "Temporal did not answer in time; the call may still take effect: retry it with "
            "the same request id"
        )
    if not isinstance(error, EngineError):
        incident = uuid.uuid4().hex[:12]
        log.error("internal error %s in %s", incident, method, exc_info=error)
        return _status(
            grpc.StatusCode.INTERNAL,
            f"internal error (id {incident}); the server log has the details",
            "INTERNAL",
        )
    code = getattr(grpc.StatusCode, error.code, grpc.StatusCode.UNKNOWN)
    # What a caller sent may be quoted in a message: never more than a short part of it.
    message = clipped(str(error), _MESSAGE_KEPT)
    details: list[object] = []
    if isinstance(error, DefinitionError):
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=problem.path or "yaml",
                        description=clipped(
                            f"{problem.line}:{problem.column}: {problem.message}", _MESSAGE_KEPT
                        ),
                    )
                    for problem in [p for p in error.problems if p.severity == "error"][:_LISTED]
                ]
            )
        )
    elif isinstance(error, InputError):
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field="inputs", description=clipped(m, _MESSAGE_KEPT)
                    )
                    for m in error.messages[:_LISTED]
                ]
            )
        )
    elif isinstance(error, InvalidFieldError):
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=clipped(error.field, 200),
                        description=clipped(error.description, _MESSAGE_KEPT),
                    )
                ]
            )
        )
    if code == grpc.StatusCode.NOT_FOUND:
        details.append(
            error_details_pb2.ResourceInfo(
                resource_type=_RESOURCE_TYPES.get(error.reason, error.reason),
                resource_name=clipped(_resource_name(error.reason, request), 200),
                description=message,
            )
        )
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED):
        # Both say "not now": the client may retry, after this long.
        details.append(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=1)))
    return _status(code, message, error.reason, details)


def _resource_name(reason: str, request: Any) -> str:
    """The name of what was not found, as the request gave it ("" when it did not)."""

    def field(*names: str) -> Any:
        for name in names:
            value = getattr(request, name, None)
            if value:
                return value
        return None

    if reason == "WORKFLOW_NOT_FOUND":
        return str(field("workflow_id") or "")
    if reason == "DEFINITION_NOT_FOUND":
        name = field("definition_name", "name")
        version = field("definition_version", "version")
        return f"{name}:{version}" if name and version else str(name or "")
    if reason == "ORG_NOT_FOUND":
        return str(field("org_id") or "")
    return ""


def _status(
    code: grpc.StatusCode, message: str, reason: str, details: list[object] | None = None
) -> status_pb2.Status:
    packed = []
    for detail in [error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN), *(details or [])]:
        holder = any_pb2.Any()
        holder.Pack(detail)
        packed.append(holder)
    return status_pb2.Status(code=_numeric(code), message=message, details=packed)


def _numeric(code: grpc.StatusCode) -> int:
    value: int = code.value[0]
    assert value == getattr(code_pb2, code.name, value)
    return value
