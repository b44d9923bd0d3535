"""Structured logs: every line about a run says which org, run, step and trace it is about.

:func:`log_fields` gathers ``org``, ``workflow_id``, ``run_id``, ``step``, ``trace_id`` and
``span_id`` for a log record from, in this order of precedence:

1. the record's own extras: ``org``, ``workflow_id``, ``run_id`` and ``step`` given with
   ``extra=``, and the ``temporal_workflow`` / ``temporal_activity`` details that the Temporal
   SDK's ``workflow.logger`` and ``activity.logger`` add (the interpreter adds the step, and
   the org, to its own log calls);
2. the fields bound for the call in progress (:func:`bind_log_fields`: the control plane's
   interceptor binds the caller's org, the dispatcher the run it works on);
3. the current OpenTelemetry span (``trace_id``, ``span_id``), when tracing is on.

:class:`TextFormatter` appends them as ``key=value``; :class:`JsonFormatter` writes one JSON
object a line with them as fields (``engined --log-format json``).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, Final, TextIO

from opentelemetry import trace

__all__ = [
    "FIELDS",
    "JsonFormatter",
    "RunContextFilter",
    "TextFormatter",
    "bind_log_fields",
    "bound_log_fields",
    "configure_logging",
    "log_fields",
]

FIELDS: Final = ("org", "workflow_id", "run_id", "step", "trace_id", "span_id")
"""The fields a line about a run carries (each only when known)."""

_EMPTY: Final[Mapping[str, str]] = {}
_BOUND: ContextVar[Mapping[str, str]] = ContextVar("engine_log_fields", default=_EMPTY)


def bind_log_fields(**fields: str | None) -> None:
    """Bind fields (``org``, ``workflow_id``, ``run_id``, ``step``) to the logs of the current
    context: the call in progress (each gRPC call runs in a task of its own, so they end with
    it). None or "" leaves a field as it was."""
    given = {key: value for key, value in fields.items() if value}
    if given:
        _BOUND.set({**_BOUND.get(), **given})


def bound_log_fields() -> Mapping[str, str]:
    """The fields bound to the current context."""
    return _BOUND.get()


def log_fields(record: logging.LogRecord) -> dict[str, str]:
    """The run fields of a record (see the module's docstring), only those known."""
    fields: dict[str, str] = dict(_BOUND.get())
    details = getattr(record, "temporal_workflow", None)
    if isinstance(details, Mapping):
        _take(fields, "workflow_id", details.get("workflow_id"))
        _take(fields, "run_id", details.get("run_id"))
    details = getattr(record, "temporal_activity", None)
    if isinstance(details, Mapping):
        _take(fields, "workflow_id", details.get("workflow_id"))
        _take(fields, "run_id", details.get("workflow_run_id"))
    for key in ("org", "workflow_id", "run_id", "step"):
        _take(fields, key, getattr(record, key, None))
    if "trace_id" not in fields:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            fields["trace_id"] = format(context.trace_id, "032x")
            fields["span_id"] = format(context.span_id, "016x")
    return {key: fields[key] for key in FIELDS if key in fields}


def _take(fields: dict[str, str], key: str, value: Any) -> None:
    if value is not None and value != "":
        fields[key] = str(value)


class RunContextFilter(logging.Filter):
    """Sets the run fields on each record as attributes (``%(org)s`` in a format; "" when
    unknown). Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = log_fields(record)
        for key in FIELDS:
            if key not in record.__dict__:
                setattr(record, key, fields.get(key, ""))
        return True


class TextFormatter(logging.Formatter):
    """``time level logger message key=value ...``: the run fields appended to each line."""

    def __init__(self, fmt: str = "%(asctime)s %(levelname)s %(name)s %(message)s") -> None:
        super().__init__(fmt)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = log_fields(record)
        if not fields:
            return text
        pairs = " ".join(f"{key}={_quoted(value)}" for key, value in fields.items())
        head, newline, rest = text.partition("\n")  # after the message, before a traceback
        return f"{head} {pairs}{newline}{rest}"


def _quoted(value: str) -> str:
    return json.dumps(value) if not value or any(c in value for c in ' "=\n') else value


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the run fields that are known,
    and the exception, if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(log_fields(record))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(
    log_format: str = "text", *, level: int = logging.INFO, stream: TextIO | None = None
) -> logging.Handler:
    """Log to ``stream`` (stderr) in ``text`` or ``json``, replacing the root's handlers.

    Returns:
        The handler installed.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
    return handler
