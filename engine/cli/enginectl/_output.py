"""What ``enginectl`` prints: aligned tables, JSON for scripts, lines for a person.

Everything here is a pure function of the API's messages (plus the stream a printer writes
to), so the look of the output is testable without a server.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from engine.api.v1 import resources_pb2
from engine.wire import enum_name, from_struct, from_value, message_json, plain

__all__ = [
    "FAILED",
    "TERMINAL",
    "action_line",
    "action_summary",
    "action_table",
    "action_type",
    "advance_lines",
    "elapsed",
    "emit",
    "error_text",
    "local_time",
    "outcome",
    "plain",
    "print_json",
    "run_status",
    "short_hash",
    "shorten",
    "table",
    "to_dict",
    "value_json",
]

_ELLIPSIS: Final = "..."
TERMINAL: Final = frozenset(
    {
        resources_pb2.RUN_STATUS_COMPLETED,
        resources_pb2.RUN_STATUS_FAILED,
        resources_pb2.RUN_STATUS_CANCELLED,
    }
)


def emit(line: str = "", out: TextIO | None = None) -> None:
    """Write one line in a single call, so lines of concurrent writers never interleave."""
    (out or sys.stdout).write(f"{line}\n")


def to_dict(message: Message) -> dict[str, Any]:
    """A message as the JSON data of ``-o json``, the same for every command.

    Walked with the message's descriptor (:func:`engine.wire.message_json`), not protobuf's
    JSON mapping, which scripts find awkward: the proto field names (``workflow_id``), enum
    values by their lower-case names (``completed``, not ``RUN_STATUS_COMPLETED``), 64-bit
    integers as numbers (protobuf's mapping makes them strings: ``"version": "2"``), times as
    RFC 3339 text, durations as seconds, ``Struct`` and ``Value`` as the JSON they hold, and
    integral numbers as integers; unset fields are left out.
    """
    data: dict[str, Any] = plain(message_json(message))
    return data


def print_json(data: Message | Any, out: TextIO, *, compact: bool = False) -> None:
    """Print a message (or JSON data) as JSON: indented, or on one line for a stream."""
    if isinstance(data, Message):
        data = to_dict(data)
    if compact:
        emit(json.dumps(data, separators=(",", ":"), ensure_ascii=False), out)
    else:
        emit(json.dumps(data, indent=2, ensure_ascii=False), out)


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """Lines of a table whose columns are aligned (the last column is not padded)."""
    body = [[str(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in body:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    lines = []
    for row in [list(headers), *body]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return lines


def value_json(value: struct_pb2.Value) -> str:
    """A Value as compact JSON text ("null" when unset)."""
    return _json(from_value(value), quote=True)


def _json(value: Any, *, quote: bool = False) -> str:
    """Compact JSON with sorted keys (a Struct's keys come in no particular order); a string
    as it is unless ``quote``."""
    if isinstance(value, str) and not quote:
        return value
    return json.dumps(plain(value), separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def run_status(value: int) -> str:
    """``waiting`` for RUN_STATUS_WAITING; "" when unspecified."""
    return enum_name(resources_pb2.RunStatus, value)


def action_type(value: int) -> str:
    """``prompt`` for ACTION_TYPE_PROMPT, ``mcp_call`` for ACTION_TYPE_MCP_CALL."""
    return enum_name(resources_pb2.ActionType, value)


def outcome(value: int) -> str:
    """``completed`` for STEP_OUTCOME_COMPLETED; "" while the step runs."""
    return enum_name(resources_pb2.StepOutcome, value)


def _datetime(stamp: timestamp_pb2.Timestamp) -> datetime:
    return stamp.ToDatetime(tzinfo=UTC).astimezone()


def local_time(message: Message, field: str) -> str:
    """A Timestamp field in local time (``2026-01-02 15:04:05``), "" when unset."""
    if not message.HasField(field):
        return ""
    return _datetime(getattr(message, field)).strftime("%Y-%m-%d %H:%M:%S")


def elapsed(message: Message, start: str, finish: str) -> str:
    """The time between two Timestamp fields (``1.25s``, ``3m12s``), "" unless both are set."""
    if not (message.HasField(start) and message.HasField(finish)):
        return ""
    seconds = (
        _datetime(getattr(message, finish)) - _datetime(getattr(message, start))
    ).total_seconds()
    return seconds_text(seconds)


def seconds_text(seconds: float) -> str:
    """``0.42s``, ``12.0s``, ``3m12s``, ``2h05m``."""
    if seconds < 60:
        return f"{seconds:.2f}s" if seconds < 10 else f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def short_hash(content_hash: str) -> str:
    """``sha256:0123456789ab`` (the algorithm and the first 12 hex digits)."""
    algorithm, colon, digest = content_hash.rpartition(":")
    return f"{algorithm}{colon}{digest[:12]}"


def error_text(status: str, error: str) -> str:
    """A run's error after its status (``cancelled: why``, not ``cancelled: cancelled: why``)."""
    return error.removeprefix(f"{status}: ") or "(no error message)"


def shorten(text: str, width: int) -> str:
    """One line of at most ``width`` characters."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - len(_ELLIPSIS)] + _ELLIPSIS


def action_summary(action: resources_pb2.PendingAction) -> str:
    """What the action asks for, in one line: the parameters that matter for its type."""
    parameters = from_struct(action.parameters)
    kind = action.type
    if kind == resources_pb2.ACTION_TYPE_SHELL:
        text = f"$ {parameters.get('command') or ''}"
        if parameters.get("workdir"):
            text += f"  (in {parameters['workdir']})"
        return text
    if kind == resources_pb2.ACTION_TYPE_PROMPT:
        text = f"[{parameters.get('prompt_type') or 'prompt'}] {parameters.get('message') or ''}"
        options = parameters.get("options")
        if isinstance(options, list) and options:
            text += f"  options: {', '.join(_json(o) for o in options)}"
        return text
    if kind == resources_pb2.ACTION_TYPE_MCP_CALL:
        tool = parameters.get("tool") or ""
        server = parameters.get("server")
        text = f"tool {tool}" + (f" on {server}" if server else "")
        if parameters.get("params"):
            text += f" {_json(parameters['params'])}"
        return text
    if kind == resources_pb2.ACTION_TYPE_DELEGATE:
        return f"{parameters.get('agent') or 'agent'}: {parameters.get('instruction') or ''}"
    return _json(parameters)


def action_line(action: resources_pb2.PendingAction, workflow_id: str) -> str:
    """``waiting: prompt approve [confirm] Deploy?  (action 1f2e..., in child run X)``."""
    where = f"action {action.action_id}"
    if action.workflow_id and action.workflow_id != workflow_id:
        where += f" in {action.workflow_id}"
    return (
        f"waiting: {action_type(action.type)} {action.step_id} {action_summary(action)}  ({where})"
    )


def action_table(actions: Sequence[resources_pb2.PendingAction]) -> list[str]:
    """Pending actions as a table: run, step, type, id, when, what they ask for."""
    rows = [
        (
            a.workflow_id,
            a.step_id,
            action_type(a.type),
            a.action_id,
            local_time(a, "create_time"),
            shorten(action_summary(a), 70),
        )
        for a in actions
    ]
    return table(("WORKFLOW", "STEP", "TYPE", "ACTION", "CREATED", "DETAILS"), rows)


FAILED: Final = frozenset({resources_pb2.RUN_STATUS_FAILED, resources_pb2.RUN_STATUS_CANCELLED})


def advance_lines(
    workflow_id: str,
    status: int,
    current_step: str,
    actions: Sequence[resources_pb2.PendingAction],
    result: struct_pb2.Value,
    error: str,
) -> list[str]:
    """Where a run is after a start or a submission, as lines for a person."""
    name = run_status(status)
    if status == resources_pb2.RUN_STATUS_COMPLETED:
        return [f"completed: result {value_json(result)}"]
    if status in FAILED:
        return [f"{name}: {error_text(name, error)}"]
    if not current_step:  # a start does not say: the steps its actions belong to do
        current_step = ", ".join(dict.fromkeys(action.step_id for action in actions))
    lines = []
    if name:
        lines.append(f"{name}" + (f" at step {current_step}" if current_step else ""))
    lines.extend(action_line(action, workflow_id) for action in actions)
    return lines
