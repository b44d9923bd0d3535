"""ScheduleService over gRPC: the contract a client sees, codes and messages included.

The control plane of ``stack.py`` is called over a real channel with the bearer tokens of two
orgs: ``north`` owns the schedules, ``south`` must not see or touch them. Bad requests are
INVALID_ARGUMENT with the message ``<field>: <what is wrong>``; where the status carries
``BadRequest`` field violations they must name the same field (every servicer-level field
error has them today; the scheduler's own are being added to the error mapping).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2, struct_pb2, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from engine.api.v1 import resources_pb2
from engine.api.v1 import schedule_service_pb2 as pb
from engine.api.v1 import workflow_service_pb2 as wpb
from tests.scheduler.stack import Stack, runs_of, schedule_id
from tests.tenancy.orgkit import eventually

FAR = "0 0 1 1 *"  # once a year, at new year: never during a test


def _stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _span(**kwargs: float) -> duration_pb2.Duration:
    span = duration_pb2.Duration()
    span.FromTimedelta(timedelta(**kwargs))
    return span


def _struct(data: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(data)
    return struct


def _create(sid: str, **fields: Any) -> pb.CreateScheduleRequest:
    """A valid request (a paused yearly run of ``tick``), with ``fields`` changed."""
    request = pb.CreateScheduleRequest(
        schedule_id=sid, definition_name="tick", spec=pb.ScheduleSpec(cron=[FAR]), paused=True
    )
    for name, value in fields.items():
        if isinstance(value, str | int | bool):
            setattr(request, name, value)
        else:
            getattr(request, name).CopyFrom(value)
    return request


@dataclass
class Refusal:
    """What a failed call answered."""

    code: grpc.StatusCode
    message: str
    violations: list[tuple[str, str]]

    def names(self, field: str, fragment: str = "") -> None:
        """INVALID_ARGUMENT about ``field`` (in the message, and in BadRequest if present)."""
        assert self.code == grpc.StatusCode.INVALID_ARGUMENT, (self.code, self.message)
        assert self.message.startswith(f"{field}: "), self.message
        assert fragment in self.message, self.message
        if self.violations:
            assert field in [name for name, _ in self.violations], self.violations


async def refused(call: Awaitable[Any]) -> Refusal:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    error = caught.value
    violations: list[tuple[str, str]] = []
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            violations += [(v.field, v.description) for v in bad_request.field_violations]
    return Refusal(error.code(), error.details() or "", violations)


# --------------------------------------------------------------------------- the contract


async def test_create_and_get_carry_every_field(made: Stack) -> None:
    stub, auth = made.schedules, made.metadata()
    sid = made.track(schedule_id("full"))
    start = datetime(2027, 3, 1, tzinfo=UTC)
    spec = pb.ScheduleSpec(
        cron=["*/5 * * * *", "@daily"],
        intervals=[pb.IntervalSpec(every=_span(hours=1), offset=_span(minutes=15))],
        calendars=[pb.CalendarSpec(hour="9", minute="30", day_of_week="MON-FRI", comment="office")],
        time_zone="Europe/Paris",
        start_time=_stamp(start),
        end_time=_stamp(start + timedelta(days=365)),
        jitter=_span(seconds=30),
    )
    request = _create(
        sid,
        inputs=_struct({"n": 4}),
        spec=spec,
        overlap_policy=pb.OVERLAP_POLICY_BUFFER_ALL,
        catchup_window=_span(minutes=10),
        note="created by a test",
    )
    created = (await stub.CreateSchedule(request, metadata=auth)).schedule
    assert created.schedule_id == sid
    assert (created.definition_name, created.definition_version) == ("tick", 1)  # pinned
    assert dict(created.inputs) == {"n": 4}
    assert created.spec == spec
    assert created.overlap_policy == pb.OVERLAP_POLICY_BUFFER_ALL
    assert created.catchup_window == _span(minutes=10)
    assert created.paused and created.note == "created by a test"
    times = [t.ToDatetime(tzinfo=UTC) for t in created.next_fire_times]
    assert len(times) == 5 and times == sorted(times) and times[0] >= start
    assert created.run_count == 0 and not created.recent_runs

    got = (await stub.GetSchedule(pb.GetScheduleRequest(schedule_id=sid), metadata=auth)).schedule
    assert got == created

    default = made.track(schedule_id("defaults"))
    plain = (await stub.CreateSchedule(_create(default), metadata=auth)).schedule
    assert plain.overlap_policy == pb.OVERLAP_POLICY_SKIP  # unspecified: skip
    assert dict(plain.inputs) == {"n": 1}  # the definition's defaults, filled in
    assert plain.catchup_window.ToTimedelta() == timedelta(days=365)  # Temporal's default


async def test_update_pause_unpause_and_delete(made: Stack) -> None:
    stub, auth = made.schedules, made.metadata()
    sid = made.track(schedule_id("manage"))
    await stub.CreateSchedule(_create(sid, note="v1"), metadata=auth)

    new = pb.Schedule(
        schedule_id=sid,
        spec=pb.ScheduleSpec(cron=["0 9 * * *"], time_zone="Europe/Paris"),
        note="v2",
        inputs=_struct({"n": 9}),
    )
    updated = (
        await stub.UpdateSchedule(
            pb.UpdateScheduleRequest(
                schedule=new, update_mask=field_mask_pb2.FieldMask(paths=["spec", "note"])
            ),
            metadata=auth,
        )
    ).schedule
    assert updated.spec == new.spec and updated.note == "v2"
    assert dict(updated.inputs) == {"n": 1}  # not in the mask: kept
    assert updated.paused
    assert all(t.ToDatetime().minute == 0 for t in updated.next_fire_times)

    await stub.UnpauseSchedule(pb.UnpauseScheduleRequest(schedule_id=sid, note="go"), metadata=auth)
    got = (await stub.GetSchedule(pb.GetScheduleRequest(schedule_id=sid), metadata=auth)).schedule
    assert not got.paused and got.note == "go"
    await stub.PauseSchedule(pb.PauseScheduleRequest(schedule_id=sid, note="stop"), metadata=auth)
    got = (await stub.GetSchedule(pb.GetScheduleRequest(schedule_id=sid), metadata=auth)).schedule
    assert got.paused and got.note == "stop"

    await stub.DeleteSchedule(pb.DeleteScheduleRequest(schedule_id=sid), metadata=auth)
    gone = await refused(stub.GetSchedule(pb.GetScheduleRequest(schedule_id=sid), metadata=auth))
    assert gone.code == grpc.StatusCode.NOT_FOUND
    assert gone.message == (
        f"schedule '{sid}' not found in org 'north' (namespace '{made.org().namespace}')"
    )


async def test_list_schedules_pages_through_them_in_order(made: Stack) -> None:
    stub, auth = made.schedules, made.metadata()
    ids = [made.track(schedule_id(f"page-{i}")) for i in range(5)]
    for sid in ids:
        await stub.CreateSchedule(_create(sid), metadata=auth)

    async def every_page() -> list[list[pb.Schedule]]:
        pages, token = [], ""
        while True:
            page = await stub.ListSchedules(
                pb.ListSchedulesRequest(page_size=2, page_token=token), metadata=auth
            )
            pages.append(list(page.schedules))
            token = page.next_page_token
            if not token:
                return pages

    pages = await eventually(
        every_page,
        lambda found: set(ids) <= {s.schedule_id for page in found for s in page},
        what="the schedules listed",
    )
    listed = [s.schedule_id for page in pages for s in page]
    assert listed == sorted(set(listed))  # sorted, each once
    assert all(len(page) == 2 for page in pages[:-1]) and 1 <= len(pages[-1]) <= 2
    ours = {s.schedule_id: s for page in pages for s in page if s.schedule_id in ids}
    assert all(
        s.definition_name == "tick" and s.paused and len(s.next_fire_times) == 5
        for s in ours.values()
    )


async def test_backfill_through_the_api_takes_a_half_open_range(made: Stack) -> None:
    stub, auth = made.schedules, made.metadata()
    sid = made.track(schedule_id("api-backfill"))
    request = _create(
        sid, spec=pb.ScheduleSpec(intervals=[pb.IntervalSpec(every=_span(minutes=1))])
    )
    await stub.CreateSchedule(request, metadata=auth)
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    await stub.BackfillSchedule(
        pb.BackfillScheduleRequest(
            schedule_id=sid,
            start_time=_stamp(minute - timedelta(minutes=6)),
            end_time=_stamp(minute - timedelta(minutes=3)),
        ),
        metadata=auth,
    )
    got = await eventually(
        lambda: stub.GetSchedule(pb.GetScheduleRequest(schedule_id=sid), metadata=auth),
        lambda response: response.schedule.run_count >= 3,
        what="three backfilled runs",
    )
    assert sorted(r.scheduled_time.ToDatetime(tzinfo=UTC) for r in got.schedule.recent_runs) == [
        minute - timedelta(minutes=m) for m in (6, 5, 4)
    ]
    await asyncio.sleep(0.5)
    again = await stub.GetSchedule(pb.GetScheduleRequest(schedule_id=sid), metadata=auth)
    assert again.schedule.run_count == 3


async def test_a_scheduled_run_is_an_ordinary_run_of_the_org(made: Stack) -> None:
    """Listed with the org's runs, its action in the org's inbox, answered like any other."""
    stub, workflows, auth = made.schedules, made.workflows, made.metadata()
    sid = made.track(schedule_id("inbox"))
    await stub.CreateSchedule(
        _create(sid, definition_name="hold", inputs=_struct({"who": "scheduler"})), metadata=auth
    )
    await stub.TriggerSchedule(pb.TriggerScheduleRequest(schedule_id=sid), metadata=auth)
    got = await eventually(
        lambda: stub.GetSchedule(pb.GetScheduleRequest(schedule_id=sid), metadata=auth),
        lambda response: len(response.schedule.recent_runs) == 1,
        what="the triggered run",
    )
    [run] = got.schedule.recent_runs
    assert run.workflow_id.startswith(f"{sid}-") and run.run_id

    action = await eventually(
        lambda: workflows.ListPendingActions(wpb.ListPendingActionsRequest(), metadata=auth),
        lambda response: any(a.workflow_id == run.workflow_id for a in response.pending_actions),
        what="the run's prompt in the inbox",
    )
    [prompt] = [a for a in action.pending_actions if a.workflow_id == run.workflow_id]
    assert prompt.step_id == "ask" and prompt.type == resources_pb2.ACTION_TYPE_PROMPT
    assert dict(prompt.parameters)["message"] == "Go on, scheduler?"

    listed = await eventually(
        lambda: workflows.ListWorkflows(
            wpb.ListWorkflowsRequest(
                definition_name="hold", status=resources_pb2.RUN_STATUS_WAITING
            ),
            metadata=auth,
        ),
        lambda response: any(w.workflow_id == run.workflow_id for w in response.workflows),
        what="the run in ListWorkflows",
    )
    [summary] = [w for w in listed.workflows if w.workflow_id == run.workflow_id]
    assert summary.workflow_type == "hold:1" and summary.run_id == run.run_id

    workflow = (
        await workflows.GetWorkflow(
            wpb.GetWorkflowRequest(workflow_id=run.workflow_id), metadata=auth
        )
    ).workflow
    assert (workflow.org_id, workflow.definition_name, workflow.definition_version) == (
        "north",
        "hold",
        1,
    )
    assert workflow.status == resources_pb2.RUN_STATUS_WAITING

    # Another org sees neither the run nor its action.
    other = made.metadata("south")
    hidden = await refused(
        workflows.GetWorkflow(wpb.GetWorkflowRequest(workflow_id=run.workflow_id), metadata=other)
    )
    assert hidden.code == grpc.StatusCode.NOT_FOUND
    theirs = await workflows.ListPendingActions(wpb.ListPendingActionsRequest(), metadata=other)
    assert all(a.workflow_id != run.workflow_id for a in theirs.pending_actions)

    answered = await workflows.SubmitResult(
        wpb.SubmitResultRequest(
            workflow_id=run.workflow_id, step_id="ask", result=struct_pb2.Value(bool_value=True)
        ),
        metadata=auth,
    )
    assert answered.status == resources_pb2.RUN_STATUS_COMPLETED
    assert answered.result.bool_value is True
    client = await made.client()
    [execution] = await runs_of(client, sid)
    memo = await (await client.get_workflow_handle(execution.id).describe()).memo()
    assert memo["schedule_id"] == sid


# --------------------------------------------------------------------------- isolation


async def test_another_orgs_schedule_is_not_found(made: Stack) -> None:
    stub = made.schedules
    north, south = made.metadata("north"), made.metadata("south")
    sid = made.track(schedule_id("isolated"))
    await stub.CreateSchedule(_create(sid, note="north's", paused=False), metadata=north)
    now = datetime.now(UTC)
    calls: list[Callable[[], Awaitable[Any]]] = [
        lambda: stub.GetSchedule(pb.GetScheduleRequest(schedule_id=sid), metadata=south),
        lambda: stub.UpdateSchedule(
            pb.UpdateScheduleRequest(
                schedule=pb.Schedule(schedule_id=sid, note="south's"),
                update_mask=field_mask_pb2.FieldMask(paths=["note"]),
            ),
            metadata=south,
        ),
        lambda: stub.PauseSchedule(pb.PauseScheduleRequest(schedule_id=sid), metadata=south),
        lambda: stub.UnpauseSchedule(pb.UnpauseScheduleRequest(schedule_id=sid), metadata=south),
        lambda: stub.TriggerSchedule(pb.TriggerScheduleRequest(schedule_id=sid), metadata=south),
        lambda: stub.BackfillSchedule(
            pb.BackfillScheduleRequest(
                schedule_id=sid,
                start_time=_stamp(now - timedelta(hours=1)),
                end_time=_stamp(now),
            ),
            metadata=south,
        ),
        lambda: stub.DeleteSchedule(pb.DeleteScheduleRequest(schedule_id=sid), metadata=south),
    ]
    for call in calls:
        refusal = await refused(call())
        assert refusal.code == grpc.StatusCode.NOT_FOUND, refusal
        assert refusal.message == (
            f"schedule '{sid}' not found in org 'south' (namespace '{made.org('south').namespace}')"
        )
    mine = (await stub.GetSchedule(pb.GetScheduleRequest(schedule_id=sid), metadata=north)).schedule
    assert not mine.paused and mine.note == "north's" and mine.run_count == 0
    await eventually(
        lambda: stub.ListSchedules(pb.ListSchedulesRequest(), metadata=north),
        lambda response: sid in {s.schedule_id for s in response.schedules},
        what="north's schedule listed for north",
    )
    theirs = await stub.ListSchedules(pb.ListSchedulesRequest(), metadata=south)
    assert sid not in {s.schedule_id for s in theirs.schedules}


async def test_schedules_need_a_token(made: Stack) -> None:
    refusal = await refused(made.schedules.ListSchedules(pb.ListSchedulesRequest()))
    assert refusal.code == grpc.StatusCode.UNAUTHENTICATED


# --------------------------------------------------------------------------- bad requests


def _bad_spec(**fields: Any) -> pb.ScheduleSpec:
    return pb.ScheduleSpec(**fields)


BAD_CREATES: list[tuple[str, dict[str, Any], str, str]] = [
    ("no id", {"schedule_id": ""}, "schedule_id", "is required"),
    ("bad id", {"schedule_id": "no spaces"}, "schedule_id", "invalid schedule id 'no spaces'"),
    ("long id", {"schedule_id": "x" * 101}, "schedule_id", "1-100 letters"),
    ("no definition", {"definition_name": ""}, "definition_name", "is required"),
    (
        "unknown definition",
        {"definition_name": "nope"},
        "definition_name",
        "definition 'nope' is not registered in org 'north'",
    ),
    (
        "unknown version",
        {"definition_version": 7},
        "definition_version",
        "version 7 of definition 'tick' is not registered",
    ),
    ("negative version", {"definition_version": -2}, "definition_version", "got -2"),
    ("no spec", {"spec": pb.ScheduleSpec()}, "spec", "at least one cron"),
    ("cron fields", {"spec": _bad_spec(cron=["* * *"])}, "spec.cron[0]", "has 3 fields"),
    (
        "cron range",
        {"spec": _bad_spec(cron=["@daily", "0 25 * * *"])},
        "spec.cron[1]",
        "hour 25 is out of range 0-23",
    ),
    ("cron value", {"spec": _bad_spec(cron=["0 9 * * MOON"])}, "spec.cron[0]", "'MOON'"),
    ("cron macro", {"spec": _bad_spec(cron=["@reboot"])}, "spec.cron[0]", "unknown macro"),
    (
        "time zone",
        {"spec": _bad_spec(cron=["0 9 * * *"], time_zone="Europe/Atlantis")},
        "spec.time_zone",
        "unknown time zone 'Europe/Atlantis'",
    ),
    (
        "interval",
        {"spec": _bad_spec(intervals=[pb.IntervalSpec()])},
        "spec.intervals[0].every",
        "must be at least 1s",
    ),
    (
        "offset",
        {
            "spec": _bad_spec(
                intervals=[pb.IntervalSpec(every=_span(minutes=5), offset=_span(minutes=5))]
            )
        },
        "spec.intervals[0].offset",
        "less than the interval",
    ),
    (
        "calendar",
        {"spec": _bad_spec(calendars=[pb.CalendarSpec(month="13")])},
        "spec.calendars[0].month",
        "month 13 is out of range 1-12",
    ),
    (
        "end before start",
        {
            "spec": _bad_spec(
                cron=[FAR],
                start_time=_stamp(datetime(2027, 1, 2, tzinfo=UTC)),
                end_time=_stamp(datetime(2027, 1, 1, tzinfo=UTC)),
            )
        },
        "spec.end_time",
        "must be after spec.start_time",
    ),
    (
        "time out of range",
        {"spec": _bad_spec(cron=[FAR], start_time=timestamp_pb2.Timestamp(seconds=10**13))},
        "spec.start_time",
        "is not a valid timestamp",
    ),
    (
        "negative jitter",
        {"spec": _bad_spec(cron=[FAR], jitter=_span(seconds=-1))},
        "spec.jitter",
        "must not be negative",
    ),
    (
        "short catch-up",
        {"catchup_window": _span(seconds=1)},
        "catchup_window",
        "must be at least 10s",
    ),
    (
        "invalid duration",
        {"catchup_window": duration_pb2.Duration(seconds=60, nanos=2_000_000_000)},
        "catchup_window",
        "is not a valid duration",
    ),
    ("unknown policy", {"overlap_policy": 42}, "overlap_policy", "unknown overlap policy 42"),
]


@pytest.mark.parametrize(
    ("fields", "field", "fragment"),
    [case[1:] for case in BAD_CREATES],
    ids=[case[0] for case in BAD_CREATES],
)
async def test_bad_creates_are_invalid_argument_naming_the_field(
    made: Stack, fields: dict[str, Any], field: str, fragment: str
) -> None:
    sid = schedule_id("bad")
    request = _create(sid, **fields)
    (await refused(made.schedules.CreateSchedule(request, metadata=made.metadata()))).names(
        field, fragment
    )
    missing = await refused(
        made.schedules.GetSchedule(pb.GetScheduleRequest(schedule_id=sid), metadata=made.metadata())
    )
    assert missing.code == grpc.StatusCode.NOT_FOUND  # nothing was created


async def test_bad_inputs_are_refused_at_creation(made: Stack) -> None:
    refusal = await refused(
        made.schedules.CreateSchedule(
            _create(schedule_id("inputs"), inputs=_struct({"n": "lots", "m": 1})),
            metadata=made.metadata(),
        )
    )
    assert refusal.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "'n'" in refusal.message and "'m'" in refusal.message
    assert {name for name, _ in refusal.violations} == {"inputs"}


async def test_a_taken_id_is_already_exists(made: Stack) -> None:
    sid = made.track(schedule_id("taken"))
    await made.schedules.CreateSchedule(_create(sid), metadata=made.metadata())
    refusal = await refused(made.schedules.CreateSchedule(_create(sid), metadata=made.metadata()))
    assert refusal.code == grpc.StatusCode.ALREADY_EXISTS
    assert refusal.message == (
        f"schedule '{sid}' already exists in org 'north' (namespace '{made.org().namespace}')"
    )


async def test_bad_requests_of_the_other_methods(made: Stack) -> None:
    stub, auth = made.schedules, made.metadata()
    sid = made.track(schedule_id("others"))
    await stub.CreateSchedule(_create(sid), metadata=auth)
    now = datetime.now(UTC)
    hour_ago = now - timedelta(hours=1)
    cases: list[tuple[Awaitable[Any], str, str]] = [
        (stub.GetSchedule(pb.GetScheduleRequest(), metadata=auth), "schedule_id", "is required"),
        (
            stub.GetSchedule(pb.GetScheduleRequest(schedule_id="a/b"), metadata=auth),
            "schedule_id",
            "invalid schedule id 'a/b'",
        ),
        (stub.PauseSchedule(pb.PauseScheduleRequest(), metadata=auth), "schedule_id", "required"),
        (
            stub.UnpauseSchedule(pb.UnpauseScheduleRequest(), metadata=auth),
            "schedule_id",
            "required",
        ),
        (
            stub.DeleteSchedule(pb.DeleteScheduleRequest(), metadata=auth),
            "schedule_id",
            "required",
        ),
        (
            stub.TriggerSchedule(
                pb.TriggerScheduleRequest(schedule_id=sid, overlap_policy=99),  # type: ignore[arg-type]
                metadata=auth,
            ),
            "overlap_policy",
            "unknown overlap policy 99",
        ),
        (
            stub.BackfillSchedule(
                pb.BackfillScheduleRequest(schedule_id=sid, end_time=_stamp(now)), metadata=auth
            ),
            "start_time",
            "is required",
        ),
        (
            stub.BackfillSchedule(
                pb.BackfillScheduleRequest(schedule_id=sid, start_time=_stamp(hour_ago)),
                metadata=auth,
            ),
            "end_time",
            "is required",
        ),
        (
            stub.BackfillSchedule(
                pb.BackfillScheduleRequest(
                    schedule_id=sid, start_time=_stamp(now), end_time=_stamp(hour_ago)
                ),
                metadata=auth,
            ),
            "end_time",
            "must be after start_time",
        ),
        (
            stub.UpdateSchedule(
                pb.UpdateScheduleRequest(
                    schedule=pb.Schedule(note="x"),
                    update_mask=field_mask_pb2.FieldMask(paths=["note"]),
                ),
                metadata=auth,
            ),
            "schedule.schedule_id",
            "is required",
        ),
        (
            stub.UpdateSchedule(
                pb.UpdateScheduleRequest(
                    schedule=pb.Schedule(schedule_id=sid, paused=False),
                    update_mask=field_mask_pb2.FieldMask(paths=["paused"]),
                ),
                metadata=auth,
            ),
            "update_mask",
            "cannot update paused",
        ),
        (
            stub.UpdateSchedule(
                pb.UpdateScheduleRequest(
                    schedule=pb.Schedule(schedule_id=sid, spec=pb.ScheduleSpec(cron=["@often"])),
                    update_mask=field_mask_pb2.FieldMask(paths=["spec"]),
                ),
                metadata=auth,
            ),
            "spec.cron[0]",
            "unknown macro '@often'",
        ),
        (
            stub.ListSchedules(pb.ListSchedulesRequest(page_size=5000), metadata=auth),
            "page_size",
            "must be between 1 and 1000",
        ),
        (
            stub.ListSchedules(pb.ListSchedulesRequest(page_token="!!"), metadata=auth),
            "page_token",
            "is not a token this server issued",
        ),
    ]
    for call, field, fragment in cases:
        (await refused(call)).names(field, fragment)
    unknown = await refused(
        stub.TriggerSchedule(pb.TriggerScheduleRequest(schedule_id="no-such"), metadata=auth)
    )
    assert unknown.code == grpc.StatusCode.NOT_FOUND
    got = (await stub.GetSchedule(pb.GetScheduleRequest(schedule_id=sid), metadata=auth)).schedule
    assert got.run_count == 0 and got.paused  # none of it did anything
