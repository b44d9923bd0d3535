"""The OpenAPI 3.1 document of the HTTP API, built from the protos (routes and messages).

``make lint`` regenerates it and compares it with ``docs/openapi.json`` (and validates it), so
the document, the routes and the protos cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Final

from google.protobuf import descriptor

from engine.gateway._routes import Route

__all__ = ["openapi"]

_SCALARS: Final[dict[int, dict[str, Any]]] = {
    descriptor.FieldDescriptor.TYPE_STRING: {"type": "string"},
    descriptor.FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    descriptor.FieldDescriptor.TYPE_INT32: {"type": "integer", "format": "int32"},
    descriptor.FieldDescriptor.TYPE_UINT32: {"type": "integer", "format": "int32"},
    descriptor.FieldDescriptor.TYPE_INT64: {
        "oneOf": [{"type": "string", "format": "int64"}, {"type": "integer"}]
    },
    descriptor.FieldDescriptor.TYPE_UINT64: {
        "oneOf": [{"type": "string", "format": "int64"}, {"type": "integer"}]
    },
    descriptor.FieldDescriptor.TYPE_DOUBLE: {"type": "number"},
    descriptor.FieldDescriptor.TYPE_FLOAT: {"type": "number"},
    descriptor.FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
}
_WELL_KNOWN: Final[dict[str, dict[str, Any]]] = {
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"},
    "google.protobuf.FieldMask": {"type": "string"},
}
_ERROR_REF: Final = "#/components/schemas/Error"
_ERROR: Final = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "integer", "description": "the HTTP status"},
                "status": {"type": "string", "description": "the gRPC code (NOT_FOUND, ...)"},
                "message": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {"type": "object", "additionalProperties": True},
                    "description": "google.rpc details: ErrorInfo (reason), BadRequest "
                    "(field violations), RetryInfo, ResourceInfo",
                },
            },
            "required": ["code", "status", "message"],
        }
    },
    "required": ["error"],
}


def openapi(table: list[Route]) -> dict[str, Any]:
    """The document of the routes."""
    schemas: dict[str, Any] = {"Error": _ERROR}
    paths: dict[str, Any] = {}
    for route in sorted(table, key=lambda r: (r.template, r.verb)):
        fields = route.request.DESCRIPTOR
        operation: dict[str, Any] = {
            "operationId": f"{route.service.rsplit('.', 1)[-1]}_{route.method}",
            "tags": [route.service.rsplit(".", 1)[-1]],
            "summary": f"{route.method} (gRPC {route.grpc_path})",
            "security": [{"bearer": []}],
            "responses": {
                "200": {
                    "description": "the response"
                    + (
                        " (a stream: newline-delimited JSON, or server-sent events)"
                        if route.streaming
                        else ""
                    ),
                    "content": {
                        ("application/x-ndjson" if route.streaming else "application/json"): {
                            "schema": _ref(route.response.DESCRIPTOR, schemas)
                        }
                    },
                },
                "default": {
                    "description": "a refusal: the gRPC status as JSON",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            },
        }
        parameters = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                "description": f"the request's {name}",
            }
            for name in route.variables
        ]
        if route.body == "*":
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": _ref(fields, schemas)}},
            }
        else:
            top = {name.split(".", 1)[0] for name in route.variables}
            for field in fields.fields:
                if field.name in top or field.name == route.body:
                    continue
                parameters.append(
                    {"name": field.name, "in": "query", "schema": _field_schema(field, schemas)}
                )
        if parameters:
            operation["parameters"] = parameters
        paths.setdefault(route.template, {})[route.verb.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "engine API",
            "version": "v1",
            "description": "The HTTP/JSON mapping of the engine's gRPC API (google.api.http "
            "annotations of proto/engine/api/v1). Every call takes 'Authorization: Bearer "
            "<token>' and answers as its RPC does.",
        },
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.items())),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }


def _ref(message: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    if message.full_name in _WELL_KNOWN:
        return dict(_WELL_KNOWN[message.full_name])
    name = message.full_name.removeprefix("engine.api.v1.").replace(".", "_")
    if name not in schemas:
        schemas[name] = {}  # placeholder first: messages may refer to themselves
        schemas[name] = {
            "type": "object",
            "properties": {field.name: _field_schema(field, schemas) for field in message.fields},
        }
    return {"$ref": f"#/components/schemas/{name}"}


def _field_schema(field: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        value = field.message_type.fields_by_name["value"]
        return {"type": "object", "additionalProperties": _single(value, schemas)}
    single = _single(field, schemas)
    return {"type": "array", "items": single} if field.is_repeated else single


def _single(field: Any, schemas: dict[str, Any]) -> dict[str, Any]:
    if field.enum_type is not None:
        return {"type": "string", "enum": [v.name for v in field.enum_type.values]}
    if field.message_type is not None:
        return _ref(field.message_type, schemas)
    return dict(_SCALARS.get(field.type, {"type": "string"}))
