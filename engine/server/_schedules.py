"""The ScheduleService servicer: protobuf at the edge, the scheduler behind it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import timestamp_pb2

from engine.api.v1 import schedule_service_pb2 as pb
from engine.api.v1 import schedule_service_pb2_grpc as pb_grpc
from engine.scheduler import Calendar, Scheduler, ScheduleRequest, ScheduleView, Spec
from engine.server._convert import duration, timestamp
from engine.server._errors import FieldError
from engine.server._requests import json_object, org_of, page, required, span
from engine.wire import enum_name, enum_value, to_struct

__all__ = ["ScheduleServicer"]


def _time(message: Any, name: str, field: str) -> datetime | None:
    """A Timestamp field as an aware datetime (None when unset); out of range is a bad field."""
    if not message.HasField(name):
        return None
    stamp: timestamp_pb2.Timestamp = getattr(message, name)
    try:
        return stamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise FieldError(field, "is not a valid timestamp (years 1 to 9999)") from None


def _spec(message: pb.ScheduleSpec) -> Spec:
    return Spec(
        cron=tuple(message.cron),
        intervals=tuple(
            (
                span(interval, "every", f"spec.intervals[{index}].every") or timedelta(0),
                span(interval, "offset", f"spec.intervals[{index}].offset") or timedelta(0),
            )
            for index, interval in enumerate(message.intervals)
        ),
        calendars=tuple(
            Calendar(
                second=c.second,
                minute=c.minute,
                hour=c.hour,
                day_of_month=c.day_of_month,
                month=c.month,
                day_of_week=c.day_of_week,
                comment=c.comment,
            )
            for c in message.calendars
        ),
        time_zone=message.time_zone,
        start_time=_time(message, "start_time", "spec.start_time"),
        end_time=_time(message, "end_time", "spec.end_time"),
        jitter=span(message, "jitter", "spec.jitter"),
    )


def _spec_message(spec: Spec) -> pb.ScheduleSpec:
    message = pb.ScheduleSpec(
        cron=list(spec.cron),
        intervals=[
            pb.IntervalSpec(every=duration(e), offset=duration(o)) for e, o in spec.intervals
        ],
        calendars=[
            pb.CalendarSpec(
                second=c.second,
                minute=c.minute,
                hour=c.hour,
                day_of_month=c.day_of_month,
                month=c.month,
                day_of_week=c.day_of_week,
                comment=c.comment,
            )
            for c in spec.calendars
        ],
        time_zone=spec.time_zone,
    )
    if spec.start_time:
        message.start_time.CopyFrom(timestamp(spec.start_time))
    if spec.end_time:
        message.end_time.CopyFrom(timestamp(spec.end_time))
    if spec.jitter is not None:
        message.jitter.CopyFrom(duration(spec.jitter))
    return message


def _schedule(view: ScheduleView) -> pb.Schedule:
    message = pb.Schedule(
        schedule_id=view.schedule_id,
        definition_name=view.definition_name,
        definition_version=view.definition_version,
        inputs=to_struct(view.inputs),
        spec=_spec_message(view.spec),
        overlap_policy=pb.OverlapPolicy.ValueType(
            enum_value(pb.OverlapPolicy, view.overlap_policy)
        ),
        paused=view.paused,
        note=view.note,
        next_fire_times=[timestamp(t) for t in view.next_fire_times],
        recent_runs=[
            pb.ScheduledRun(
                scheduled_time=timestamp(r.scheduled_time),
                actual_time=timestamp(r.actual_time),
                workflow_id=r.workflow_id,
                run_id=r.run_id,
            )
            for r in view.recent_runs
        ],
        run_count=view.run_count,
        running_workflow_ids=view.running,
    )
    if view.catchup_window is not None:
        message.catchup_window.CopyFrom(duration(view.catchup_window))
    return message


def _policy(value: int, field: str = "overlap_policy") -> str | None:
    """The policy's name; None when unspecified. A number the enum lacks is a bad field
    (proto3 enums are open: a client may send any number)."""
    if value == pb.OVERLAP_POLICY_UNSPECIFIED:
        return None
    name = enum_name(pb.OverlapPolicy, value)
    if not name:
        raise FieldError(field, f"unknown overlap policy {value}")
    return name


class ScheduleServicer(pb_grpc.ScheduleServiceServicer):
    """Creates and drives the schedules of the caller's organization."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler

    async def CreateSchedule(  # noqa: N802 - gRPC method name
        self, request: pb.CreateScheduleRequest, context: Any
    ) -> pb.CreateScheduleResponse:
        view = await self.scheduler.create(
            org_of(context),
            ScheduleRequest(
                schedule_id=required(request.schedule_id, "schedule_id"),
                definition_name=required(request.definition_name, "definition_name"),
                definition_version=request.definition_version or None,
                inputs=json_object(request.inputs, "inputs"),
                spec=_spec(request.spec),
                overlap_policy=_policy(request.overlap_policy) or "skip",
                catchup_window=span(request, "catchup_window", "catchup_window"),
                paused=request.paused,
                note=request.note,
            ),
        )
        return pb.CreateScheduleResponse(schedule=_schedule(view))

    async def GetSchedule(  # noqa: N802
        self, request: pb.GetScheduleRequest, context: Any
    ) -> pb.GetScheduleResponse:
        view = await self.scheduler.get(
            org_of(context), required(request.schedule_id, "schedule_id")
        )
        return pb.GetScheduleResponse(schedule=_schedule(view))

    async def ListSchedules(  # noqa: N802
        self, request: pb.ListSchedulesRequest, context: Any
    ) -> pb.ListSchedulesResponse:
        views = await self.scheduler.list_schedules(org_of(context))
        found, token = page(views, request.page_size, request.page_token)
        return pb.ListSchedulesResponse(
            schedules=[_schedule(v) for v in found], next_page_token=token
        )

    async def UpdateSchedule(  # noqa: N802
        self, request: pb.UpdateScheduleRequest, context: Any
    ) -> pb.UpdateScheduleResponse:
        given = request.schedule
        view = await self.scheduler.update(
            org_of(context),
            ScheduleRequest(
                schedule_id=required(given.schedule_id, "schedule.schedule_id"),
                definition_name=given.definition_name,
                definition_version=given.definition_version or None,
                inputs=json_object(given.inputs, "schedule.inputs"),
                spec=_spec(given.spec),
                overlap_policy=_policy(given.overlap_policy, "schedule.overlap_policy") or "skip",
                catchup_window=span(given, "catchup_window", "schedule.catchup_window"),
                note=given.note,
            ),
            frozenset(request.update_mask.paths),
        )
        return pb.UpdateScheduleResponse(schedule=_schedule(view))

    async def PauseSchedule(  # noqa: N802
        self, request: pb.PauseScheduleRequest, context: Any
    ) -> pb.PauseScheduleResponse:
        await self.scheduler.pause(
            org_of(context), required(request.schedule_id, "schedule_id"), request.note
        )
        return pb.PauseScheduleResponse()

    async def UnpauseSchedule(  # noqa: N802
        self, request: pb.UnpauseScheduleRequest, context: Any
    ) -> pb.UnpauseScheduleResponse:
        await self.scheduler.unpause(
            org_of(context), required(request.schedule_id, "schedule_id"), request.note
        )
        return pb.UnpauseScheduleResponse()

    async def TriggerSchedule(  # noqa: N802
        self, request: pb.TriggerScheduleRequest, context: Any
    ) -> pb.TriggerScheduleResponse:
        await self.scheduler.trigger(
            org_of(context),
            required(request.schedule_id, "schedule_id"),
            _policy(request.overlap_policy),
        )
        return pb.TriggerScheduleResponse()

    async def BackfillSchedule(  # noqa: N802
        self, request: pb.BackfillScheduleRequest, context: Any
    ) -> pb.BackfillScheduleResponse:
        schedule_id = required(request.schedule_id, "schedule_id")
        start = _time(request, "start_time", "start_time")
        end = _time(request, "end_time", "end_time")
        if start is None:
            raise FieldError("start_time", "is required")
        if end is None:
            raise FieldError("end_time", "is required")
        await self.scheduler.backfill(
            org_of(context), schedule_id, start, end, _policy(request.overlap_policy)
        )
        return pb.BackfillScheduleResponse()

    async def DeleteSchedule(  # noqa: N802
        self, request: pb.DeleteScheduleRequest, context: Any
    ) -> pb.DeleteScheduleResponse:
        await self.scheduler.delete(org_of(context), required(request.schedule_id, "schedule_id"))
        return pb.DeleteScheduleResponse()
