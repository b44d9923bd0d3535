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
from collections.abc import Hashable, Mapping
from typing import Any, Protocol

from google.protobuf import json_format, struct_pb2

__all__ = [
    "EnumType",
    "enum_name",
    "enum_names",
    "enum_value",
    "from_struct",
    "from_value",
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


def to_struct(data: Mapping[str, Any] | None) -> struct_pb2.Struct:
    """A dict of JSON values as a Struct."""
    struct = struct_pb2.Struct()
    if data:
        json_format.ParseDict(dict(data), struct)
    return struct


def to_value(data: Any) -> struct_pb2.Value:
    """A JSON value as a Value."""
    value = struct_pb2.Value()
    json_format.ParseDict(data, value)
    return value


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
