"""The conventions of the gRPC API that both of its edges follow: the server and ``enginectl``.

JSON values travel in ``google.protobuf.Struct`` and ``Value``, which carry every number as a
double: integral numbers are turned back into integers on the way in (a JSON client's ``10``
must satisfy ``type: integer``, and print as ``10``). Enum values have a lower-case name, the
value's name without the enum's prefix (``RUN_STATUS_WAITING`` is ``waiting``), which is also
the engine's own vocabulary (run states, step outcomes, overlap policies).

Only protobuf's runtime is imported here, so the CLI loads this without the server's stack.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Hashable, Mapping
from typing import Any, Protocol

from google.protobuf import descriptor, json_format, struct_pb2
from google.protobuf.message import Message

__all__ = [
    "WIRE_DEPTH",
    "EnumType",
    "carried",
    "enum_name",
    "enum_names",
    "enum_value",
    "from_struct",
    "from_value",
    "message_json",
    "plain",
    "to_struct",
    "to_value",
]

_SAFE_INTEGER = 2**53
"""Doubles represent every integer up to this exactly; beyond it, a float stays a float."""


def plain(value: Any) -> Any:
    """JSON data with integral floats as ints (Struct carries every number as a double)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < _SAFE_INTEGER:
        return int(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as a dict of JSON values (integral numbers as ints)."""
    result: dict[str, Any] = plain(json_format.MessageToDict(struct))
    return result


def from_value(value: struct_pb2.Value) -> Any:
    """A Value as a JSON value (integral numbers as ints); an unset Value is null."""
    if value.WhichOneof("kind") is None:
        return None
    return plain(json_format.MessageToDict(value))


WIRE_DEPTH = 30
"""How deep a JSON value nests in a message: deeper parts travel as their JSON text, since
protobuf's parsers (in every language) refuse messages nested over 100 levels, which is about
30 levels of JSON maps."""


def to_struct(data: Mapping[str, Any] | None) -> struct_pb2.Struct:
    """A dict of JSON values as a Struct (see :func:`carried`)."""
    struct = struct_pb2.Struct()
    if data:
        json_format.ParseDict(carried(dict(data)), struct)
    return struct


def to_value(data: Any) -> struct_pb2.Value:
    """A JSON value as a Value (see :func:`carried`)."""
    value = struct_pb2.Value()
    json_format.ParseDict(carried(data), value)
    return value


def carried(data: Any, depth: int = 0) -> Any:
    """``data`` as a message can carry it: parts nested deeper than :data:`WIRE_DEPTH` as
    their JSON text, and lone surrogates (which are not UTF-8) as U+FFFD. Data that needs
    neither (nearly all) is returned as it is, without a copy."""
    if depth == 0 and _fits(data):
        return data
    if isinstance(data, dict):
        if depth >= WIRE_DEPTH:
            return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
        return {_text(key): carried(item, depth + 1) for key, item in data.items()}
    if isinstance(data, list):
        if depth >= WIRE_DEPTH:
            return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
        return [carried(item, depth + 1) for item in data]
    if isinstance(data, str):
        return _text(data)
    return data


def _fits(data: Any) -> bool:
    """Whether ``data`` nests at most :data:`WIRE_DEPTH` levels and holds no lone surrogate."""
    stack = [(data, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if not item.isascii() and _SURROGATE.search(item):
                return False
        elif isinstance(item, dict | list):
            if depth >= WIRE_DEPTH:
                return False
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((value, depth + 1) for value in item.values())
            else:
                stack.extend((value, depth + 1) for value in item)
    return True


def _text(text: str) -> str:
    if text.isascii():
        return text
    return _SURROGATE.sub("\ufffd", text)


_SURROGATE = re.compile("[\ud800-\udfff]")


class EnumType(Hashable, Protocol):
    """A generated protobuf enum (``resources_pb2.RunStatus``): what this module reads of it."""

    @property
    def DESCRIPTOR(self) -> Any:  # noqa: N802 - protobuf's name
        """The enum's descriptor."""
        ...


@functools.cache
def enum_names(enum: EnumType) -> Mapping[int, str]:
    """Every value of ``enum`` but ``*_UNSPECIFIED``, with its lower-case name."""
    values = enum.DESCRIPTOR.values
    prefix = next(v.name for v in values if v.number == 0).removesuffix("UNSPECIFIED")
    return {v.number: v.name.removeprefix(prefix).lower() for v in values if v.number != 0}


@functools.cache
def _enum_values(enum: EnumType) -> Mapping[str, int]:
    return {name: number for number, name in enum_names(enum).items()}


def enum_name(enum: EnumType, value: int) -> str:
    """The lower-case name of ``value`` (``waiting``); "" for UNSPECIFIED or an unknown number
    (proto3 enums are open: a peer may send any number)."""
    return enum_names(enum).get(value, "")


def enum_value(enum: EnumType, name: str | None) -> int:
    """The value whose lower-case name is ``name``; UNSPECIFIED (0) for "", None or a name the
    enum does not have."""
    return _enum_values(enum).get(name or "", 0)


def message_json(message: Message) -> dict[str, Any]:
    """A message as plain JSON data, for people and agents: the proto field names, enum values
    by their lower-case names, 64-bit integers as numbers, ``Struct`` and ``Value`` as the JSON
    they hold, timestamps as RFC 3339 text, durations as seconds; unset fields left out."""
    return {field.name: _field_json(field, value) for field, value in message.ListFields()}


def _field_json(field: descriptor.FieldDescriptor, value: Any) -> Any:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        item = field.message_type.fields_by_name["value"]
        return {key: _single_json(item, entry) for key, entry in value.items()}
    if field.is_repeated:
        return [_single_json(field, item) for item in value]
    return _single_json(field, value)


def _single_json(field: descriptor.FieldDescriptor, value: Any) -> Any:
    if field.enum_type is not None:
        values = field.enum_type.values
        prefix = next(v.name for v in values if v.number == 0).removesuffix("UNSPECIFIED")
        known = field.enum_type.values_by_number.get(value)
        return known.name.removeprefix(prefix).lower() if known and value else ""
    if field.message_type is None:
        return value
    kind = field.message_type.full_name
    if kind == "google.protobuf.Struct":
        return from_struct(value)
    if kind == "google.protobuf.Value":
        return from_value(value)
    if kind == "google.protobuf.ListValue":
        return plain(json_format.MessageToDict(value))
    if kind == "google.protobuf.Timestamp":
        return value.ToJsonString()
    if kind == "google.protobuf.Duration":
        return value.ToTimedelta().total_seconds()
    return message_json(value)
