"""Reading requests, for every servicer: the caller's org, required fields, pages, durations."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Final, TypeVar

from google.protobuf import duration_pb2, struct_pb2

from engine.context import OrgContext
from engine.server._errors import FieldError
from engine.wire import from_struct, from_value

__all__ = [
    "json_object",
    "json_value",
    "org_of",
    "page",
    "page_size",
    "required",
    "seconds",
    "span",
    "token_bytes",
]

DEFAULT_PAGE: Final = 100
_LONGEST_DURATION: Final = 315_576_000_000
"""The largest google.protobuf.Duration, in seconds (10,000 years)."""
_T = TypeVar("_T")


def org_of(context: Any) -> OrgContext:
    """The caller's organization, set by the interceptor from the token."""
    org: OrgContext = context.org
    return org


def required(value: str, field: str) -> str:
    """``value``, unless it is empty.

    Raises:
        FieldError: ``field`` is required.
    """
    if not value:
        raise FieldError(field, "is required")
    return value


def page_size(size: int) -> int:
    """A request's page size (0: the default of 100).

    Raises:
        FieldError: Outside 1 to 1000.
    """
    wanted = size or DEFAULT_PAGE
    if not 1 <= wanted <= 1000:
        raise FieldError("page_size", f"must be between 1 and 1000, got {size}")
    return wanted


def page(items: Sequence[_T], size: int, token: str) -> tuple[list[_T], str]:
    """Offset paging over a sorted list (tokens are opaque to clients)."""
    wanted = page_size(size)
    start = 0
    if token:
        offset = token_bytes(token)
        if not offset.isdigit():  # offsets are non-negative decimal integers
            raise FieldError("page_token", "is not a token this server issued")
        start = int(offset)
    end = start + wanted
    following = base64.urlsafe_b64encode(str(end).encode()).decode() if end < len(items) else ""
    return list(items[start:end]), following


def token_bytes(token: str) -> bytes:
    """The bytes of a page token (URL-safe base64), strictly decoded.

    A lenient decoder drops characters outside the alphabet, so a mangled token would silently
    turn into another page (often the first), and a client paging through would loop.

    Raises:
        FieldError: ``page_token`` is not a token this server issued.
    """
    try:
        decoded = base64.b64decode(token.encode(), altchars=b"-_", validate=True)
    except ValueError:
        decoded = b""
    if not decoded:
        raise FieldError("page_token", "is not a token this server issued")
    return decoded


def span(message: Any, name: str, field: str) -> timedelta | None:
    """A Duration field as a timedelta (None when unset).

    Raises:
        FieldError: It is not a valid Duration (rather than overflowing later).
    """
    if not message.HasField(name):
        return None
    value: duration_pb2.Duration = getattr(message, name)
    _check(value, field)
    return value.ToTimedelta()


def seconds(value: duration_pb2.Duration, field: str) -> float:
    """A Duration's seconds.

    Raises:
        FieldError: It is not a valid Duration (at most 10,000 years, signs that agree).
    """
    _check(value, field)
    return value.seconds + value.nanos / 1e9


def _check(value: duration_pb2.Duration, field: str) -> None:
    valid = (
        abs(value.seconds) <= _LONGEST_DURATION
        and abs(value.nanos) < 1_000_000_000
        and not (value.seconds and value.nanos and (value.seconds < 0) != (value.nanos < 0))
    )
    if not valid:
        raise FieldError(field, "is not a valid duration (at most 10,000 years)")


def json_object(struct: struct_pb2.Struct, field: str) -> dict[str, Any]:
    """A Struct field as JSON data.

    Raises:
        FieldError: It holds a NaN or an infinity (JSON has neither).
    """
    try:
        return from_struct(struct)
    except ValueError:
        raise FieldError(field, _NOT_FINITE) from None


def json_value(value: struct_pb2.Value, field: str) -> Any:
    """A Value field as JSON data (see :func:`json_object`)."""
    try:
        return from_value(value)
    except ValueError:
        raise FieldError(field, _NOT_FINITE) from None


_NOT_FINITE: Final = "holds a number that is not finite (NaN or Infinity): JSON has neither"
