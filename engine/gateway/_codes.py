"""The HTTP status of each gRPC status code, and refusals as JSON (AIP-193)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from starlette.responses import JSONResponse, Response

__all__ = ["HTTP_STATUS", "bad_request", "json_error", "refusal", "status_json"]

HTTP_STATUS: Final[Mapping[grpc.StatusCode, int]] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}
"""The HTTP status of each gRPC code (google.rpc.Code's own mapping)."""


def refusal(error: grpc.aio.AioRpcError) -> Response:
    """A gRPC refusal as its JSON, with its HTTP status and ``Retry-After`` when it says when."""
    body = status_json(error)
    headers = {}
    for detail in body["error"].get("details", []):
        delay = detail.get("retryDelay") if detail.get("@type", "").endswith("RetryInfo") else None
        if isinstance(delay, str) and delay.endswith("s"):
            headers["Retry-After"] = str(max(1, math.ceil(float(delay[:-1]))))
    status = HTTP_STATUS.get(error.code(), 500)
    return JSONResponse(body, status_code=status, headers=headers)


def status_json(error: grpc.aio.AioRpcError) -> dict[str, Any]:
    """The gRPC status of ``error`` as JSON, its details (ErrorInfo, BadRequest, ...) decoded."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    details: list[Any] = []
    if status is not None:
        details = json_format.MessageToDict(status).get("details", [])
    return {
        "error": {
            "code": HTTP_STATUS.get(error.code(), 500),
            "status": error.code().name,
            "message": error.details() or "",
            "details": details,
        }
    }


def bad_request(field: str, description: str) -> dict[str, Any]:
    """A ``BadRequest`` detail naming ``field``, as JSON."""
    bad = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=field, description=description)
        ]
    )
    status = status_pb2.Status()
    status.details.add().Pack(bad)
    detail: dict[str, Any] = json_format.MessageToDict(status)["details"][0]
    return detail


def json_error(
    http: int, status: str, message: str, details: list[Any] | None = None
) -> JSONResponse:
    """A refusal the HTTP layer itself makes, shaped as gRPC's are."""
    body = {"error": {"code": http, "status": status, "message": message, "details": details or []}}
    return JSONResponse(body, status_code=http)
