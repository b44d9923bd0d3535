"""Conversions between protobuf messages and the engine's plain values: the server's edge.

``google.protobuf.Struct``/``Value`` carry every number as a double, so integral numbers are
turned back into integers on the way in (a JSON client's ``10`` must satisfy ``type: integer``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from google.protobuf import duration_pb2, json_format, struct_pb2, timestamp_pb2

from engine.api.v1 import resources_pb2

__all__ = [
    "action_to_proto",
    "duration",
    "from_struct",
    "from_value",
    "run_status",
    "status_name",
    "timestamp",
    "to_struct",
    "to_value",
    "workflow_to_proto",
]

_RUN_STATUS = {
    "running": resources_pb2.RUN_STATUS_RUNNING,
    "waiting": resources_pb2.RUN_STATUS_WAITING,
    "completed": resources_pb2.RUN_STATUS_COMPLETED,
    "failed": resources_pb2.RUN_STATUS_FAILED,
    "cancelled": resources_pb2.RUN_STATUS_CANCELLED,
}
_STATUS_NAME: dict[int, str] = {int(value): key for key, value in _RUN_STATUS.items()}
_ACTION_TYPE = {
    "shell": resources_pb2.ACTION_TYPE_SHELL,
    "mcp_call": resources_pb2.ACTION_TYPE_MCP_CALL,
    "prompt": resources_pb2.ACTION_TYPE_PROMPT,
    "delegate": resources_pb2.ACTION_TYPE_DELEGATE,
}
_OUTCOME = {
    "completed": resources_pb2.STEP_OUTCOME_COMPLETED,
    "failed": resources_pb2.STEP_OUTCOME_FAILED,
    "skipped": resources_pb2.STEP_OUTCOME_SKIPPED,
    "cancelled": resources_pb2.STEP_OUTCOME_CANCELLED,
}


def _integral(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, list):
        return [_integral(v) for v in value]
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    return value


def from_struct(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as a dict of JSON values (integral numbers as ints)."""
    result: dict[str, Any] = _integral(json_format.MessageToDict(struct))
    return result


def from_value(value: struct_pb2.Value) -> Any:
    """A Value as a JSON value (integral numbers as ints); an unset Value is null."""
    if value.WhichOneof("kind") is None:
        return None
    return _integral(json_format.MessageToDict(value))


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


def timestamp(text: str | datetime) -> timestamp_pb2.Timestamp:
    """An ISO-8601 time (or datetime) as a Timestamp."""
    moment = datetime.fromisoformat(text) if isinstance(text, str) else text
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def duration(seconds: float | timedelta) -> duration_pb2.Duration:
    """Seconds (or a timedelta) as a Duration."""
    span = seconds if isinstance(seconds, timedelta) else timedelta(seconds=seconds)
    message = duration_pb2.Duration()
    message.FromTimedelta(span)
    return message


def run_status(name: str | None) -> resources_pb2.RunStatus.ValueType:
    """The RunStatus enum value of a status name."""
    return _RUN_STATUS.get(name or "", resources_pb2.RUN_STATUS_UNSPECIFIED)


def status_name(value: int) -> str | None:
    """The status name of a RunStatus value (None for UNSPECIFIED)."""
    return _STATUS_NAME.get(value)


def action_to_proto(action: Mapping[str, Any]) -> resources_pb2.PendingAction:
    """A pending action as the API shows it."""
    message = resources_pb2.PendingAction(
        action_id=action["action_id"],
        type=_ACTION_TYPE.get(action["type"], resources_pb2.ACTION_TYPE_UNSPECIFIED),
        step_id=action["step_id"],
        parameters=to_struct(action.get("parameters")),
        attempt=int(action.get("attempt", 1)),
        workflow_id=action.get("workflow_id", ""),
        run_id=action.get("run_id", ""),
    )
    if action.get("timeout") is not None:
        message.timeout.CopyFrom(duration(float(action["timeout"])))
    if action.get("deadline"):
        message.deadline.CopyFrom(timestamp(action["deadline"]))
    if action.get("created_at"):
        message.create_time.CopyFrom(timestamp(action["created_at"]))
    if action.get("state") is not None:
        message.state.CopyFrom(to_struct(action["state"]))
    return message


def workflow_to_proto(status: Mapping[str, Any]) -> resources_pb2.Workflow:
    """A run's ``get_status`` as the API shows it."""
    definition = status.get("definition") or {}
    message = resources_pb2.Workflow(
        workflow_id=status["workflow_id"],
        run_id=status.get("run_id", ""),
        workflow_type=status.get("workflow_type", ""),
        definition_name=definition.get("name", ""),
        definition_version=int(definition.get("version", 0)),
        definition_hash=definition.get("hash", ""),
        status=run_status(status.get("status")),
        current_step=status.get("current_step") or "",
        pending_actions=[action_to_proto(a) for a in status.get("pending_actions", [])],
        state=to_struct(status.get("state")),
        result=to_value(status.get("result")),
        error=status.get("error") or "",
        org_id=status.get("org_id", ""),
    )
    if status.get("started_at"):
        message.start_time.CopyFrom(timestamp(status["started_at"]))
    waiting = status.get("waiting")
    if waiting:
        message.waiting.CopyFrom(
            resources_pb2.WaitInfo(
                step_id=waiting["step_id"],
                message=waiting.get("message") or "",
                until=timestamp(waiting["until"]),
            )
        )
    for entry in status.get("history", []):
        record = resources_pb2.StepRecord(
            step_id=entry["step_id"],
            type=entry.get("type", ""),
            outcome=_OUTCOME.get(
                entry.get("outcome") or "", resources_pb2.STEP_OUTCOME_UNSPECIFIED
            ),
            attempts=int(entry.get("attempts", 0)),
            error=entry.get("error") or "",
        )
        if entry.get("started_at"):
            record.start_time.CopyFrom(timestamp(entry["started_at"]))
        if entry.get("finished_at"):
            record.finish_time.CopyFrom(timestamp(entry["finished_at"]))
        message.history.append(record)
    return message
