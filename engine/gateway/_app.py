"""The HTTP/JSON API: each request becomes the gRPC call its route names, on loopback.

A request's path, query string and body become the RPC's request message (proto3 JSON, field
names as in the protos or in lowerCamelCase; enum values by their full name or their lower-case
short one, ``waiting``); its ``Authorization`` header goes with the call. So the resources, the
auth, the org pinning and the refusals are those of gRPC, with nothing to drift: a refusal is
the gRPC status as JSON (AIP-193), its HTTP status from its code, its details (``ErrorInfo``
reason, ``BadRequest`` field violations, ``RetryInfo``) decoded, and ``Retry-After`` when it
says when to retry. ``WatchWorkflow`` streams newline-delimited JSON, or server-sent events to a
client that accepts ``text/event-stream``. ``GET /openapi.json`` is the document of it all.
The same server serves the page an answer link opens (``/answer/{link}``) and the web console
(``/console/``, see :mod:`engine.gateway._console`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

import grpc
from google.protobuf import descriptor, json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route as StarletteRoute

from engine.gateway._answer_page import answer_page
from engine.gateway._codes import HTTP_STATUS, bad_request, json_error, refusal, status_json
from engine.gateway._console import console_routes
from engine.gateway._openapi import openapi
from engine.gateway._routes import Route, routes
from engine.gateway._serve import PlaneFace

__all__ = ["HTTP_STATUS", "HttpApiServer", "gateway_app"]


_LARGEST_BODY: Final = 8 * 1024 * 1024
_TIMEOUT: Final = 120.0
_KNOWN_DETAILS: Final = (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest)


class _BadRequestError(Exception):
    """A request that does not make the RPC's request message (400, the field named)."""

    def __init__(self, field: str, description: str) -> None:
        super().__init__(f"{field}: {description}" if field else description)
        self.field = field
        self.description = description


def gateway_app(channel: Callable[[], grpc.aio.Channel]) -> Starlette:
    """The ASGI app; ``channel()`` is the gRPC channel to the control plane (made on the
    server's own loop, at the first request)."""
    table = [(route, route.pattern()) for route in routes()]  # compiled once
    document = openapi([route for route, _ in table])

    async def handle(request: Request) -> Response:
        path = request.url.path
        matched = [(route, m) for route, pattern in table if (m := pattern.match(path))]
        allowed = [route for route, _ in matched if route.verb == request.method]
        if not matched:
            return json_error(404, "NOT_FOUND", f"no resource at {path}")
        if not allowed:
            verbs = ", ".join(sorted({route.verb for route, _ in matched}))
            return json_error(405, "METHOD_NOT_ALLOWED", f"{request.method} {path}: use {verbs}")
        route, match = next((r, m) for r, m in matched if r.verb == request.method)
        request.scope["engine.route"] = route.template  # the route label of its metrics
        try:
            message = await _request(route, request, match.groupdict())
        except _BadRequestError as bad:
            return json_error(
                400,
                "INVALID_ARGUMENT",
                str(bad),
                [bad_request(bad.field, bad.description)],
            )
        metadata = _forwarded(request)
        try:
            call = channel()
        except RuntimeError as starting:
            return json_error(503, "UNAVAILABLE", str(starting))
        if route.streaming:
            return await _stream(call, route, message, metadata, request)
        method: Any = call.unary_unary(
            route.grpc_path,
            request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=route.response.FromString,
        )
        try:
            response = await method(message, metadata=metadata, timeout=_TIMEOUT)
        except grpc.aio.AioRpcError as error:
            return refusal(error)
        return JSONResponse(_json(response))

    async def document_route(_: Request) -> Response:
        return JSONResponse(document)

    return Starlette(
        routes=[
            StarletteRoute("/openapi.json", document_route, methods=["GET"]),
            StarletteRoute("/answer/{link}", answer_page(channel), methods=["GET", "POST"]),
            StarletteRoute("/v1/{rest:path}", handle, methods=["GET", "POST", "PATCH", "DELETE"]),
            *console_routes(channel),
        ]
    )


async def _request(route: Route, request: Request, variables: dict[str, str]) -> Message:
    """The RPC's request message from the path, the query string and the body."""
    data: dict[str, Any] = {}
    if route.body:
        raw = await request.body()
        if len(raw) > _LARGEST_BODY:
            raise _BadRequestError("", f"the body is over {_LARGEST_BODY:,} bytes")
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError as error:
                raise _BadRequestError("", f"the body is not JSON: {error}") from None
            if route.body == "*":
                if not isinstance(body, dict):
                    raise _BadRequestError("", "the body must be a JSON object")
                data = body
            else:
                data[route.body] = body
    fields = route.request.DESCRIPTOR
    for key in request.query_params:
        values = request.query_params.getlist(key)
        _set(data, key, _query_value(fields, key, values))
    for name, value in variables.items():
        _set(data, name.replace("__", "."), value)
    message = route.request()
    try:
        json_format.ParseDict(_full_enum_names(fields, data), message)
    except json_format.ParseError as error:
        raise _BadRequestError(_field_of(str(error)), str(error)) from None
    return message


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for parent in parents:
        data = data.setdefault(parent, {})
        if not isinstance(data, dict):
            raise _BadRequestError(dotted, "is given twice")
    data[last] = value


def _query_value(fields: Any, dotted: str, values: list[str]) -> Any:
    """A query parameter as JSON of its field's type (``true``, numbers, repeated)."""
    field = _field(fields, dotted)
    if field is None:
        raise _BadRequestError(dotted, f"no such field in {fields.name}")
    converted = [_scalar(field, value) for value in values]
    if field.is_repeated:
        return converted
    if len(converted) > 1:
        raise _BadRequestError(dotted, "is given more than once")
    return converted[0]


def _scalar(field: Any, value: str) -> Any:
    if field.type == descriptor.FieldDescriptor.TYPE_BOOL:
        if value.lower() not in ("true", "false"):
            raise _BadRequestError(field.name, f"must be true or false, got {value!r}")
        return value.lower() == "true"
    return value  # numbers as text (proto3 JSON takes them), enums and durations by name


def _field(fields: Any, dotted: str) -> Any:
    found: Any = None
    for part in dotted.split("."):
        if fields is None:
            return None
        found = fields.fields_by_name.get(part) or fields.fields_by_camelcase_name.get(part)
        if found is None:
            return None
        fields = found.message_type
    return found


def _full_enum_names(fields: Any, data: Any) -> Any:
    """``data`` with lower-case enum names (``waiting``) in full (``RUN_STATUS_WAITING``)."""
    if not isinstance(data, dict):
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        field = fields.fields_by_name.get(key) or fields.fields_by_camelcase_name.get(key)
        if field is not None and field.enum_type is not None:
            out[key] = (
                [_enum(field, v) for v in value] if isinstance(value, list) else _enum(field, value)
            )
        elif field is not None and field.message_type is not None and not _well_known(field):
            if isinstance(value, list):
                out[key] = [_full_enum_names(field.message_type, v) for v in value]
            else:
                out[key] = _full_enum_names(field.message_type, value)
        else:
            out[key] = value
    return out


def _well_known(field: Any) -> bool:
    return bool(field.message_type.full_name.startswith("google.protobuf."))


def _enum(field: Any, value: Any) -> Any:
    if not isinstance(value, str) or value in field.enum_type.values_by_name:
        return value
    prefix = next(v.name for v in field.enum_type.values if v.number == 0).removesuffix(
        "UNSPECIFIED"
    )
    full = prefix + value.upper()
    return full if full in field.enum_type.values_by_name else value


def _field_of(message: str) -> str:
    """The field a json_format error names (``... field named "x"`` or ``Failed to parse x
    field``), or ""."""
    for marker in ('field named "', "Failed to parse "):
        if marker in message:
            rest = message.split(marker, 1)[1]
            return rest.split('"', 1)[0].split(" ", 1)[0]
    return ""


def _forwarded(request: Request) -> tuple[tuple[str, str], ...]:
    """The caller's headers the gRPC call carries: its token, and its W3C trace context (the
    control plane's span then continues the caller's trace, when tracing is on)."""
    headers = request.headers
    return tuple(
        (name, value)
        for name in ("authorization", "traceparent", "tracestate")
        if (value := headers.get(name))
    )


def _json(message: Message) -> dict[str, Any]:
    data: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return data


async def _stream(
    channel: grpc.aio.Channel,
    route: Route,
    message: Message,
    metadata: tuple[tuple[str, str], ...],
    request: Request,
) -> Response:
    method: Any = channel.unary_stream(
        route.grpc_path,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=route.response.FromString,
    )
    call: Any = method(message, metadata=metadata)
    try:  # the first answer (or the refusal) decides the status
        first = await call.read()
    except grpc.aio.AioRpcError as error:
        return refusal(error)
    events = "text/event-stream" in request.headers.get("accept", "")

    def line(item: Message) -> str:
        text = json.dumps(_json(item), separators=(",", ":"))
        return f"data: {text}\n\n" if events else text + "\n"

    async def lines() -> AsyncIterator[str]:
        try:
            item = first
            while item is not grpc.aio.EOF:
                yield line(item)
                item = await call.read()
        except grpc.aio.AioRpcError as error:  # the stream broke: its last line says why
            yield json.dumps(status_json(error)) + "\n"
        finally:
            call.cancel()

    media = "text/event-stream" if events else "application/x-ndjson"
    return StreamingResponse(lines(), media_type=media)


class HttpApiServer(PlaneFace):
    """Serves the HTTP/JSON API (with ``/openapi.json``, the answer page and the web console) at
    ``http://HOST:PORT``, on a thread of its own (see :class:`~engine.gateway._serve.PlaneFace`)."""

    def __init__(
        self,
        plane_address: str | None,
        *,
        host: str,
        port: int,
        middleware: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(plane_address, host=host, port=port, name="engine-http-api")
        self.middleware = middleware
        """Wraps the app (the metrics' request counting), if given."""

    def app(self) -> Any:
        app = gateway_app(self.channel)
        return self.middleware(app) if self.middleware is not None else app
