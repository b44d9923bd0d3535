"""Conversions between protobuf messages and the engine's plain values: the server's edge.

JSON values and enum names follow the conventions of :mod:`engine.wire`, which ``enginectl``
follows too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from google.protobuf import duration_pb2, timestamp_pb2

from engine.api.v1 import resources_pb2
from engine.api.v1 import workflow_service_pb2 as workflows_pb
from engine.protocol import PendingAction, RunState, RunStatus
from engine.wire import enum_name, enum_value, to_struct, to_value

__all__ = [
    "action_to_proto",
    "advance_to_proto",
    "duration",
    "run_status",
    "status_name",
    "timestamp",
    "workflow_to_proto",
]


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


def run_status(name: RunState | None) -> resources_pb2.RunStatus.ValueType:
    """The RunStatus enum value of a status name."""
    return resources_pb2.RunStatus.ValueType(enum_value(resources_pb2.RunStatus, name))


def status_name(value: int) -> str | None:
    """The status name of a RunStatus value (None for UNSPECIFIED, or a number it lacks)."""
    return enum_name(resources_pb2.RunStatus, value) or None


def action_to_proto(action: PendingAction) -> resources_pb2.PendingAction:
    """A pending action as the API shows it."""
    message = resources_pb2.PendingAction(
        action_id=action["action_id"],
        type=resources_pb2.ActionType.ValueType(
            enum_value(resources_pb2.ActionType, action["type"])
        ),
        step_id=action["step_id"],
        parameters=to_struct(action.get("parameters")),
        attempt=int(action.get("attempt", 1)),
        workflow_id=action.get("workflow_id", ""),
        run_id=action.get("run_id", ""),
    )
    timeout = action.get("timeout")
    if timeout is not None:
        message.timeout.CopyFrom(duration(float(timeout)))
    deadline = action.get("deadline")
    if deadline:
        message.deadline.CopyFrom(timestamp(deadline))
    if action.get("created_at"):
        message.create_time.CopyFrom(timestamp(action["created_at"]))
    state = action.get("state")
    if state is not None:
        message.state.CopyFrom(to_struct(state))
    if action.get("truncated"):
        message.truncated = True
    message.answers.extend(answers_to_proto(action.get("answers") or []))
    trace = action.get("trace")
    if trace:
        message.trace.update({str(k): str(v) for k, v in trace.items()})
    return message


def answers_to_proto(answers: list[dict[str, Any]]) -> list[resources_pb2.Answer]:
    """Who answered, and when, as the API shows it."""
    out = []
    for given in answers:
        answer = resources_pb2.Answer(subject=str(given.get("subject") or ""))
        if given.get("at"):
            answer.time.CopyFrom(timestamp(given["at"]))
        if "answer" in given:
            answer.answer.CopyFrom(to_value(given["answer"]))
        out.append(answer)
    return out


def workflow_to_proto(status: RunStatus) -> resources_pb2.Workflow:
    """A run's ``get_status`` as the API shows it."""
    definition = status["definition"]
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
        status_version=int(status.get("version") or 0),
        started_by=status.get("started_by") or "",
    )
    if status.get("started_at"):
        message.start_time.CopyFrom(timestamp(status["started_at"]))
    if status.get("finished_at"):
        message.close_time.CopyFrom(timestamp(status["finished_at"]))
    waiting = status.get("waiting")
    if waiting:
        message.waiting.CopyFrom(
            resources_pb2.WaitInfo(
                step_id=waiting["step_id"],
                message=waiting.get("message") or "",
                until=timestamp(waiting["until"]) if waiting["until"] else None,
            )
        )
    for entry in status.get("history", []):
        record = resources_pb2.StepRecord(
            step_id=entry["step_id"],
            type=entry.get("type", ""),
            outcome=resources_pb2.StepOutcome.ValueType(
                enum_value(resources_pb2.StepOutcome, entry.get("outcome"))
            ),
            attempts=int(entry.get("attempts", 0)),
            error=entry.get("error") or "",
            answers=answers_to_proto(entry.get("answers") or []),
        )
        if entry.get("started_at"):
            record.start_time.CopyFrom(timestamp(entry["started_at"]))
        finished = entry.get("finished_at")
        if finished:
            record.finish_time.CopyFrom(timestamp(finished))
        message.history.append(record)
    return message


def advance_to_proto(advance: Mapping[str, Any]) -> workflows_pb.SubmitResultResponse:
    """Where a run went after an answer (``Advance``), as SubmitResult answers it."""
    return workflows_pb.SubmitResultResponse(
        status=run_status(advance.get("status")),
        current_step=advance.get("current_step") or "",
        pending_actions=[action_to_proto(a) for a in advance.get("pending_actions", [])],
        result=to_value(advance.get("result")),
        error=advance.get("error") or "",
    )
