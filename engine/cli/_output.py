"""What ``enginectl`` prints: aligned tables, JSON for scripts, and a run followed live.

Everything here is a pure function of the API's messages (plus the stream a printer writes
to), so the look of the output is testable without a server.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from engine.api.v1 import resources_pb2

__all__ = [
    "RunFollower",
    "action_summary",
    "action_type",
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
    """A message as JSON data, with the proto field names (``workflow_id``, not camelCase)."""
    data: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
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


def plain(value: Any) -> Any:
    """JSON data with integral floats as ints (Struct carries every number as a double)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def struct_dict(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as a dict of JSON values."""
    data: dict[str, Any] = plain(json_format.MessageToDict(struct))
    return data


def value_json(value: struct_pb2.Value) -> str:
    """A Value as compact JSON text ("null" when unset)."""
    if value.WhichOneof("kind") is None:
        return "null"
    return _json(plain(json_format.MessageToDict(value)), quote=True)


def _json(value: Any, *, quote: bool = False) -> str:
    """Compact JSON with sorted keys (a Struct's keys come in no particular order); a string
    as it is unless ``quote``."""
    if isinstance(value, str) and not quote:
        return value
    return json.dumps(plain(value), separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def _enum_name(name: str, prefix: str) -> str:
    return name.removeprefix(prefix).lower() if not name.endswith("UNSPECIFIED") else ""


def run_status(value: int) -> str:
    """``waiting`` for RUN_STATUS_WAITING; "" when unspecified."""
    return _enum_name(resources_pb2.RunStatus.Name(value), "RUN_STATUS_")  # type: ignore[arg-type]


def action_type(value: int) -> str:
    """``prompt`` for ACTION_TYPE_PROMPT, ``mcp_call`` for ACTION_TYPE_MCP_CALL."""
    return _enum_name(resources_pb2.ActionType.Name(value), "ACTION_TYPE_")  # type: ignore[arg-type]


def outcome(value: int) -> str:
    """``completed`` for STEP_OUTCOME_COMPLETED; "" while the step runs."""
    return _enum_name(resources_pb2.StepOutcome.Name(value), "STEP_OUTCOME_")  # type: ignore[arg-type]


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
    parameters = struct_dict(action.parameters)
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


_STEP_WIDTH: Final = 20
_TYPE_WIDTH: Final = 10

ForeachProgress = Callable[[resources_pb2.Workflow, str], "tuple[int, int] | None"]
"""``(done, total)`` items of a running foreach step of a run, when they can be found."""


class RunFollower:
    """Prints a run as it moves: each step as it ends, each action it waits for, the end.

    Feed it every status of the run (``WatchWorkflow``'s stream) through :meth:`update`.

    Args:
        out: Where to print.
        progress: Finds the items done and the total of a running foreach step.
    """

    def __init__(self, out: TextIO, progress: ForeachProgress | None = None) -> None:
        self.out = out
        self.progress = progress
        self._steps_done: set[tuple[str, str]] = set()
        self._running: set[tuple[str, str]] = set()
        self._actions: set[str] = set()
        self._waits: set[tuple[str, str]] = set()
        self._progress: dict[str, tuple[int, int]] = {}
        self.status: int = resources_pb2.RUN_STATUS_UNSPECIFIED

    def _print(self, line: str) -> None:
        emit(line, self.out)
        self.out.flush()

    def update(self, workflow: resources_pb2.Workflow) -> None:
        """Print what changed since the last status."""
        for record in workflow.history:
            key = (record.step_id, record.start_time.ToJsonString())
            if record.outcome != resources_pb2.STEP_OUTCOME_UNSPECIFIED:
                if key not in self._steps_done:
                    self._steps_done.add(key)
                    self._print(self.step_line(record))
            elif record.type == "foreach":
                self._foreach(workflow, record, key)
        for action in workflow.pending_actions:
            if action.action_id not in self._actions:
                self._actions.add(action.action_id)
                self._print(self.action_line(action, workflow.workflow_id))
        if workflow.HasField("waiting"):
            wait = workflow.waiting
            key = (wait.step_id, wait.until.ToJsonString())
            if key not in self._waits:
                self._waits.add(key)
                line = f"waiting: timer {wait.step_id} until {local_time(wait, 'until')}"
                self._print(line + (f": {wait.message}" if wait.message else ""))
        self.status = workflow.status
        if workflow.status in TERMINAL:
            self._print(self.end_line(workflow))

    def _foreach(
        self,
        workflow: resources_pb2.Workflow,
        record: resources_pb2.StepRecord,
        key: tuple[str, str],
    ) -> None:
        if key not in self._running:
            self._running.add(key)
            self._print(f"running: {record.step_id} (foreach)")
        found = self.progress(workflow, record.step_id) if self.progress else None
        if found is not None and found != self._progress.get(record.step_id):
            self._progress[record.step_id] = found
            done, total = found
            self._print(f"{record.step_id}: {done}/{total} items")

    @staticmethod
    def step_line(record: resources_pb2.StepRecord) -> str:
        """``  build               shell      completed  1.25s`` (and the error of a failure)."""
        parts = [
            "  " + record.step_id.ljust(_STEP_WIDTH),
            (record.type or "").ljust(_TYPE_WIDTH),
            outcome(record.outcome),
        ]
        took = elapsed(record, "start_time", "finish_time")
        if took and record.outcome != resources_pb2.STEP_OUTCOME_SKIPPED:
            parts.append(took)
        if record.attempts > 1:
            parts.append(f"({record.attempts} attempts)")
        line = " ".join(parts[:2]) + " " + "  ".join(parts[2:])
        if record.error:
            line += f": {record.error}"
        return line

    @staticmethod
    def action_line(action: resources_pb2.PendingAction, workflow_id: str) -> str:
        """``waiting: prompt approve [confirm] Deploy?  (action 1f2e..., in child run X)``."""
        where = f"action {action.action_id}"
        if action.workflow_id and action.workflow_id != workflow_id:
            where += f" in {action.workflow_id}"
        return (
            f"waiting: {action_type(action.type)} {action.step_id} "
            f"{action_summary(action)}  ({where})"
        )

    @staticmethod
    def end_line(workflow: resources_pb2.Workflow) -> str:
        """``completed: result <json>``, ``failed: <error>`` or ``cancelled: <error>``."""
        status = run_status(workflow.status)
        if workflow.status == resources_pb2.RUN_STATUS_COMPLETED:
            return f"{status}: result {value_json(workflow.result)}"
        return f"{status}: {error_text(status, workflow.error)}"
