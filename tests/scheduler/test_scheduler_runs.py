"""The Scheduler on the real dev server: schedules that start ordinary engine runs.

Each test drives :class:`engine.scheduler.Scheduler` directly, in org ``north`` of the stack of
``stack.py`` (whose worker pool runs what the schedules start), and deletes its schedules when
it ends so that none goes on firing. Visibility is eventually consistent: listings are polled
(``eventually``), and where a listing would be wrong for a moment (a run that just closed still
listed as running) the run itself is described.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from engine.definition import InputError
from engine.scheduler import (
    Calendar,
    InvalidScheduleError,
    ScheduleAlreadyExistsError,
    ScheduleNotFoundError,
    ScheduleRequest,
    ScheduleView,
    Spec,
)
from engine.workflow import ENGINE_DEFINITION, ENGINE_ORG
from tests.scheduler.stack import Stack, register, runs_of, schedule_id
from tests.tenancy.orgkit import eventually

SECOND = (timedelta(seconds=1), timedelta(0))
FAR = Spec(cron=("0 0 1 1 *",))  # once a year, at new year: never during a test
FIRING_ID = re.compile(r"^(?P<schedule>.+)-(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$")


def _firing(workflow_id: str, sid: str) -> datetime:
    """The firing time Temporal appended to a scheduled run's workflow id."""
    match = FIRING_ID.match(workflow_id)
    assert match and match["schedule"] == sid, workflow_id
    return datetime.strptime(match["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


async def _view(stack: Stack, sid: str, predicate: Any, *, what: str) -> ScheduleView:
    return await eventually(
        lambda: stack.scheduler.get(stack.org(), sid), predicate, timeout=15, what=what
    )


async def _terminate_runs(stack: Stack, sid: str) -> None:
    """End the runs of a schedule that still wait (``hold``), so no worker keeps them."""
    client = await stack.client()
    for run in await runs_of(client, sid, "ExecutionStatus = 'Running'"):
        with contextlib.suppress(Exception):  # already closed
            await client.get_workflow_handle(run.id).terminate("test done")


async def _running(stack: Stack, sid: str) -> list[str]:
    """The runs of ``sid`` running now: visibility's candidates, each confirmed by describe."""
    client = await stack.client()
    listed = await runs_of(client, sid, "ExecutionStatus = 'Running'")
    running = []
    for run in listed:
        described = await client.get_workflow_handle(run.id, run_id=run.run_id).describe()
        if described.status == WorkflowExecutionStatus.RUNNING:
            running.append(run.id)
    return running


# --------------------------------------------------------------------------- firing


async def test_a_one_second_interval_starts_ordinary_runs_that_complete(made: Stack) -> None:
    org = made.org()
    sid = made.track(schedule_id("every-second"))
    created = await made.scheduler.create(
        org,
        ScheduleRequest(
            sid,
            "tick",
            inputs={"n": 21},
            spec=Spec(intervals=(SECOND,)),
            overlap_policy="allow_all",
            note="smoke",
        ),
    )
    assert (created.schedule_id, created.definition_name, created.definition_version) == (
        sid,
        "tick",
        1,
    )
    assert created.inputs == {"n": 21} and created.note == "smoke" and not created.paused
    assert created.overlap_policy == "allow_all"
    assert created.spec.intervals == (SECOND,)
    times = created.next_fire_times
    assert len(times) == 5
    assert all(later - earlier == timedelta(seconds=1) for earlier, later in pairwise(times))

    client = await made.client()
    completed = await eventually(
        lambda: runs_of(client, sid, "ExecutionStatus = 'Completed'"),
        lambda runs: len(runs) >= 2,
        timeout=15,
        what="two completed runs",
    )
    await made.scheduler.pause(org, sid)  # enough runs: stop firing while they are checked
    view = await made.scheduler.get(org, sid)
    recent = {run.workflow_id: run for run in view.recent_runs}
    assert view.run_count >= len(completed) >= 2
    for run in completed[:2]:
        # The same workflow type, memo and search attributes as any run of the engine, and
        # the schedule recorded on it: in the memo and in Temporal's own TemporalScheduledById.
        assert run.workflow_type == "tick:1"
        fired = _firing(run.id, sid)
        handle = client.get_workflow_handle(run.id, run_id=run.run_id)
        assert await handle.result() == 42
        memo = await (await handle.describe()).memo()
        assert memo["schedule_id"] == sid and memo["org_id"] == "north"
        assert memo["definition_hash"].startswith("sha256:")
        attributes = run.typed_search_attributes
        assert attributes.get(ENGINE_ORG) == "north"
        assert attributes.get(ENGINE_DEFINITION) == "tick"
        assert run.search_attributes["TemporalScheduledById"] == [sid]
        status = await made.tenancy.dispatcher.status(org, run.id)
        assert status["status"] == "completed" and status["org_id"] == "north"
        assert status["result"] == 42
        # GetSchedule's recent runs carry the run ids.
        assert recent[run.id].run_id == run.run_id
        assert recent[run.id].scheduled_time == fired
        assert recent[run.id].actual_time >= fired
    # Listed with the org's runs (ListWorkflows), filtered by definition like any other.
    listed = await made.tenancy.dispatcher.list(
        org, definition="tick", query=f"TemporalScheduledById = '{sid}'"
    )
    assert {run.id for run in completed} <= {run.workflow_id for run in listed.runs}


async def test_pause_stops_new_runs_and_unpause_resumes_them(made: Stack) -> None:
    org = made.org()
    sid = made.track(schedule_id("pausing"))
    await made.scheduler.create(
        org,
        ScheduleRequest(sid, "tick", spec=Spec(intervals=(SECOND,)), overlap_policy="allow_all"),
    )
    await _view(made, sid, lambda v: v.run_count >= 1, what="a first run")

    await made.scheduler.pause(org, sid, "maintenance window")
    paused = await made.scheduler.get(org, sid)
    assert paused.paused and paused.note == "maintenance window"
    await asyncio.sleep(1.2)  # a firing already under way when it was paused may still land
    before = (await made.scheduler.get(org, sid)).run_count
    await asyncio.sleep(2.5)
    assert (await made.scheduler.get(org, sid)).run_count == before, "a paused schedule fired"

    await made.scheduler.unpause(org, sid, "back")
    unpaused = await made.scheduler.get(org, sid)
    assert not unpaused.paused and unpaused.note == "back"
    await _view(made, sid, lambda v: v.run_count >= before + 2, what="runs after unpausing")
    await made.scheduler.pause(org, sid)
    assert (await made.scheduler.get(org, sid)).note == "paused"  # the default note


async def test_trigger_starts_a_run_at_once(made: Stack) -> None:
    org = made.org()
    sid = made.track(schedule_id("trigger"))
    created = await made.scheduler.create(
        org, ScheduleRequest(sid, "tick", inputs={"n": 5}, spec=FAR, paused=True)
    )
    assert created.run_count == 0 and created.recent_runs == []
    began = time.monotonic()
    await made.scheduler.trigger(org, sid)  # even while paused
    view = await _view(made, sid, lambda v: v.recent_runs, what="the triggered run")
    assert time.monotonic() - began < 5
    [run] = view.recent_runs
    assert view.run_count == 1 and view.paused
    client = await made.client()
    assert await client.get_workflow_handle(run.workflow_id, run_id=run.run_id).result() == 10
    assert abs(_firing(run.workflow_id, sid) - run.actual_time) < timedelta(seconds=2)


async def test_trigger_honours_the_overlap_policy_or_overrides_it(made: Stack) -> None:
    org = made.org()
    sid = made.track(schedule_id("trigger-overlap"))
    await made.scheduler.create(
        org, ScheduleRequest(sid, "hold", spec=FAR, paused=True, overlap_policy="skip")
    )
    try:
        await made.scheduler.trigger(org, sid)
        first = await _view(made, sid, lambda v: v.run_count == 1, what="the first run")
        await asyncio.sleep(1.1)  # a later second: a run it started would get a new id
        await made.scheduler.trigger(org, sid)  # skip: the first run still waits
        await asyncio.sleep(1.5)
        skipped = await made.scheduler.get(org, sid)
        assert skipped.run_count == 1
        assert [r.workflow_id for r in skipped.recent_runs] == [first.recent_runs[0].workflow_id]

        await made.scheduler.trigger(org, sid, overlap_policy="allow_all")
        both = await _view(made, sid, lambda v: v.run_count == 2, what="the overriding run")
        assert len({r.workflow_id for r in both.recent_runs}) == 2
        assert len(await _running(made, sid)) == 2

        with pytest.raises(InvalidScheduleError) as caught:
            await made.scheduler.trigger(org, sid, overlap_policy="sometimes")
        assert caught.value.field == "overlap_policy"
    finally:
        await _terminate_runs(made, sid)


async def test_backfill_starts_the_runs_of_a_past_range(made: Stack) -> None:
    org = made.org()
    sid = made.track(schedule_id("backfill"))
    await made.scheduler.create(
        org,
        ScheduleRequest(
            sid, "tick", spec=Spec(intervals=((timedelta(minutes=1), timedelta(0)),)), paused=True
        ),
    )
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    start, end = minute - timedelta(minutes=10), minute - timedelta(minutes=5)
    await made.scheduler.backfill(org, sid, start, end)  # allow all, unless told otherwise

    client = await made.client()
    expected = {f"{sid}-{start + timedelta(minutes=i):%Y-%m-%dT%H:%M:%SZ}" for i in range(5)}
    runs = await eventually(
        lambda: runs_of(client, sid, "ExecutionStatus = 'Completed'"),
        lambda found: len(found) >= 5,
        timeout=15,
        what="the backfilled runs",
    )
    # [start, end): the firing at exactly `end` is not one of them.
    assert {run.id for run in runs} == expected
    view = await made.scheduler.get(org, sid)
    assert view.run_count == 5 and view.paused

    with pytest.raises(InvalidScheduleError) as caught:
        await made.scheduler.backfill(org, sid, end, start)
    assert (caught.value.field, caught.value.description) == (
        "end_time",
        "must be after start_time",
    )


async def test_overlap_skip_never_lets_two_runs_overlap(made: Stack) -> None:
    org = made.org()
    sid = made.track(schedule_id("skip"))
    await made.scheduler.create(
        org,
        ScheduleRequest(sid, "hold", spec=Spec(intervals=(SECOND,)), overlap_policy="skip"),
    )
    client = await made.client()
    try:
        [first] = await eventually(
            lambda: runs_of(client, sid), lambda runs: len(runs) == 1, what="the first run"
        )
        # Four firings come while the first run waits on its prompt: each one is skipped.
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            assert len(await _running(made, sid)) <= 1
            await asyncio.sleep(0.2)
        assert [run.id for run in await runs_of(client, sid)] == [first.id]
        assert (await made.scheduler.get(org, sid)).run_count == 1
        described = await client.get_schedule_handle(sid).describe()
        assert described.info.num_actions_skipped_overlap >= 3

        # Answered, the run completes; the next firing starts the next run, alone again.
        await made.tenancy.dispatcher.submit_result(org, first.id, step_id="ask", result=True)
        deadline = time.monotonic() + 6
        while len(await runs_of(client, sid)) < 2:
            assert len(await _running(made, sid)) <= 1
            assert time.monotonic() < deadline, "no run after the first one completed"
            await asyncio.sleep(0.2)
        await made.scheduler.pause(org, sid)
        runs = await runs_of(client, sid)
        spans = sorted(
            (run.start_time, run.close_time or datetime.max.replace(tzinfo=UTC)) for run in runs
        )
        for (_, closed), (started, _) in pairwise(spans):
            assert closed <= started, f"runs overlap: {spans}"
    finally:
        await _terminate_runs(made, sid)


# --------------------------------------------------------------------------- firing times


async def test_next_firing_times_of_a_cron_follow_its_zone_across_dst(made: Stack) -> None:
    org = made.org()

    async def next_times(spec: Spec) -> list[datetime]:
        sid = made.track(schedule_id("dst"))
        view = await made.scheduler.create(
            org, ScheduleRequest(sid, "tick", spec=spec, paused=True)
        )
        return view.next_fire_times

    def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
        return datetime(year, month, day, hour, minute, tzinfo=UTC)

    # 09:00 in Paris: 08:00Z in winter (CET), 07:00Z from Sunday 28 March 2027 (CEST)...
    spring = await next_times(
        Spec(cron=("0 9 * * *",), time_zone="Europe/Paris", start_time=utc(2027, 3, 26))
    )
    assert spring == [
        utc(2027, 3, 26, 8),
        utc(2027, 3, 27, 8),
        utc(2027, 3, 28, 7),
        utc(2027, 3, 29, 7),
        utc(2027, 3, 30, 7),
    ]
    # ... and 08:00Z again from Sunday 31 October 2027.
    autumn = await next_times(
        Spec(cron=("0 9 * * *",), time_zone="Europe/Paris", start_time=utc(2027, 10, 29))
    )
    assert autumn == [
        utc(2027, 10, 29, 7),
        utc(2027, 10, 30, 7),
        utc(2027, 10, 31, 8),
        utc(2027, 11, 1, 8),
        utc(2027, 11, 2, 8),
    ]
    # A calendar in New York on weekdays, across the US change (Sunday 14 March 2027).
    office = await next_times(
        Spec(
            calendars=(Calendar(hour="9", minute="30", day_of_week="MON-FRI"),),
            time_zone="America/New_York",
            start_time=utc(2027, 3, 11),
        )
    )
    assert office == [
        utc(2027, 3, 11, 14, 30),
        utc(2027, 3, 12, 14, 30),
        utc(2027, 3, 15, 13, 30),
        utc(2027, 3, 16, 13, 30),
        utc(2027, 3, 17, 13, 30),
    ]
    # Without a zone, UTC; a macro; an end bound that leaves fewer than 5.
    assert await next_times(
        Spec(cron=("@daily",), start_time=utc(2027, 1, 1), end_time=utc(2027, 1, 3, 12))
    ) == [
        utc(2027, 1, 1),
        utc(2027, 1, 2),
        utc(2027, 1, 3),
    ]
    # Paused, a schedule still says when it would fire.
    assert len(spring) == 5


# --------------------------------------------------------------------------- definitions


async def test_the_version_is_pinned_at_creation_and_re_pinned_by_an_update(made: Stack) -> None:
    org = made.org()
    name = f"pin-{uuid.uuid4().hex[:6]}"
    body = "steps:\n  - {id: done, type: return, value: VALUE}\n"
    await register(made.registry, org, [f"name: {name}\nversion: 1\n" + body.replace("VALUE", "1")])
    sid = made.track(schedule_id("pinned"))
    created = await made.scheduler.create(org, ScheduleRequest(sid, name, spec=FAR, paused=True))
    assert created.definition_version == 1
    await register(made.registry, org, [f"name: {name}\nversion: 2\n" + body.replace("VALUE", "2")])

    client = await made.client()

    async def trigger_and_result(count: int) -> Any:
        await made.scheduler.trigger(org, sid)
        view = await _view(made, sid, lambda v: v.run_count == count, what=f"run {count}")
        latest = max(view.recent_runs, key=lambda r: r.actual_time)
        handle = client.get_workflow_handle(latest.workflow_id, run_id=latest.run_id)
        return (await handle.describe()).workflow_type, await handle.result()

    assert await trigger_and_result(1) == (f"{name}:1", 1)  # v2 exists: v1 still runs
    assert (await made.scheduler.get(org, sid)).definition_version == 1

    updated = await made.scheduler.update(
        org,
        ScheduleRequest(sid, name, definition_version=None),
        frozenset({"definition_version"}),
    )
    assert updated.definition_version == 2 and updated.paused
    await asyncio.sleep(1.1)  # the next trigger's run id gets a later second
    assert await trigger_and_result(2) == (f"{name}:2", 2)

    explicit = made.track(schedule_id("explicit"))
    view = await made.scheduler.create(
        org, ScheduleRequest(explicit, name, definition_version=1, spec=FAR, paused=True)
    )
    assert view.definition_version == 1


async def test_inputs_are_validated_at_creation(made: Stack) -> None:
    org = made.org()
    sid = schedule_id("inputs")
    with pytest.raises(InputError) as caught:
        await made.scheduler.create(
            org, ScheduleRequest(sid, "tick", inputs={"n": "many"}, spec=FAR, paused=True)
        )
    assert any("n" in message for message in caught.value.messages)
    with pytest.raises(InputError):
        await made.scheduler.create(
            org, ScheduleRequest(sid, "tick", inputs={"m": 1}, spec=FAR, paused=True)
        )
    with pytest.raises(ScheduleNotFoundError):  # nothing was created
        await made.scheduler.get(org, sid)
    made.track(sid)
    view = await made.scheduler.create(org, ScheduleRequest(sid, "tick", spec=FAR, paused=True))
    assert view.inputs == {"n": 1}  # the defaults, filled in once


@pytest.mark.parametrize(
    ("request_", "field", "description"),
    [
        (ScheduleRequest("", "tick", spec=FAR), "schedule_id", "invalid schedule id ''"),
        (ScheduleRequest("-x", "tick", spec=FAR), "schedule_id", "invalid schedule id '-x'"),
        (ScheduleRequest("a b", "tick", spec=FAR), "schedule_id", "invalid schedule id"),
        (ScheduleRequest("x" * 101, "tick", spec=FAR), "schedule_id", "1-100 letters"),
        (ScheduleRequest("ok", "nope", spec=FAR), "definition_name", "'nope' is not registered"),
        (ScheduleRequest("ok", "Bad Name", spec=FAR), "definition_name", "invalid definition"),
        (
            ScheduleRequest("ok", "tick", definition_version=9, spec=FAR),
            "definition_version",
            "version 9 of definition 'tick' is not registered",
        ),
        (
            ScheduleRequest("ok", "nope", definition_version=9, spec=FAR),
            "definition_name",
            "is not registered",
        ),
        (
            ScheduleRequest("ok", "tick", definition_version=-1, spec=FAR),
            "definition_version",
            "got -1",
        ),
        (ScheduleRequest("ok", "tick"), "spec", "at least one"),
        (
            ScheduleRequest("ok", "tick", spec=Spec(cron=("0 9 * *",))),
            "spec.cron[0]",
            "has 4 fields",
        ),
        (
            ScheduleRequest("ok", "tick", spec=Spec(cron=("@daily",), time_zone="Europe/Pariss")),
            "spec.time_zone",
            "unknown time zone 'Europe/Pariss'",
        ),
        (
            ScheduleRequest("ok", "tick", spec=FAR, overlap_policy="sometimes"),
            "overlap_policy",
            "unknown overlap policy 'sometimes'",
        ),
        (
            ScheduleRequest("ok", "tick", spec=FAR, catchup_window=timedelta(seconds=5)),
            "catchup_window",
            "must be at least 10s",
        ),
    ],
)
async def test_bad_requests_name_their_field(
    made: Stack, request_: ScheduleRequest, field: str, description: str
) -> None:
    with pytest.raises(InvalidScheduleError) as caught:
        await made.scheduler.create(made.org(), request_)
    assert caught.value.field == field
    assert description in caught.value.description
    assert str(caught.value).startswith(f"{field}: ")


# --------------------------------------------------------------------------- managing


async def test_update_changes_only_the_fields_named(made: Stack) -> None:
    org = made.org()
    sid = made.track(schedule_id("update"))
    created = await made.scheduler.create(
        org,
        ScheduleRequest(
            sid,
            "tick",
            inputs={"n": 2},
            spec=Spec(cron=("0 9 * * *",), time_zone="Europe/Paris"),
            overlap_policy="buffer_one",
            catchup_window=timedelta(minutes=5),
            paused=True,
            note="first",
        ),
    )
    new = ScheduleRequest(
        sid,
        "ignored",
        inputs={"n": 7},
        spec=Spec(intervals=((timedelta(hours=1), timedelta(minutes=15)),)),
        overlap_policy="cancel_other",
        catchup_window=timedelta(hours=1),
        note="second",
    )
    noted = await made.scheduler.update(org, new, frozenset({"note"}))
    assert noted.note == "second" and noted.paused  # an update does not unpause
    assert (noted.inputs, noted.spec, noted.overlap_policy, noted.catchup_window) == (
        created.inputs,
        created.spec,
        created.overlap_policy,
        created.catchup_window,
    )
    assert noted.next_fire_times == created.next_fire_times

    moved = await made.scheduler.update(org, new, frozenset({"spec", "inputs"}))
    assert moved.spec == new.spec and moved.inputs == {"n": 7}
    assert moved.overlap_policy == "buffer_one" and moved.catchup_window == timedelta(minutes=5)
    assert all(t.minute == 15 and t.second == 0 for t in moved.next_fire_times)

    everything = await made.scheduler.update(org, new, frozenset())  # empty: every field
    assert everything.overlap_policy == "cancel_other"
    assert everything.catchup_window == timedelta(hours=1)
    assert everything.definition_name == "tick"  # the definition's name never changes

    with pytest.raises(InvalidScheduleError) as caught:
        await made.scheduler.update(org, new, frozenset({"note", "paused", "definition_name"}))
    assert caught.value.field == "update_mask"
    assert caught.value.description.startswith("cannot update definition_name, paused;")
    with pytest.raises(InputError):
        await made.scheduler.update(
            org, ScheduleRequest(sid, "tick", inputs={"n": "x"}), frozenset({"inputs"})
        )
    with pytest.raises(InvalidScheduleError) as caught:
        await made.scheduler.update(
            org, ScheduleRequest(sid, "tick", spec=Spec(cron=("* * *",))), frozenset({"spec"})
        )
    assert caught.value.field == "spec.cron[0]"
    assert (await made.scheduler.get(org, sid)).spec == new.spec  # failed updates change nothing


async def test_list_delete_and_duplicates(made: Stack) -> None:
    org = made.org()
    ids = sorted(made.track(schedule_id(f"list-{i}")) for i in range(3))
    for sid in ids:
        await made.scheduler.create(org, ScheduleRequest(sid, "tick", spec=FAR, paused=True))
    with pytest.raises(ScheduleAlreadyExistsError) as caught:
        await made.scheduler.create(org, ScheduleRequest(ids[0], "tick", spec=FAR, paused=True))
    assert str(caught.value) == (
        f"schedule '{ids[0]}' already exists in org 'north' (namespace '{made.org().namespace}')"
    )
    listed = await eventually(
        lambda: made.scheduler.list_schedules(org),
        lambda views: set(ids) <= {v.schedule_id for v in views},
        what="the schedules listed",
    )
    names = [v.schedule_id for v in listed]
    assert names == sorted(names)
    assert all(v.recent_runs == [] for v in listed)

    await made.scheduler.delete(org, ids[0])
    for call in (
        made.scheduler.get(org, ids[0]),
        made.scheduler.delete(org, ids[0]),
        made.scheduler.pause(org, ids[0]),
        made.scheduler.trigger(org, ids[0]),
    ):
        with pytest.raises(ScheduleNotFoundError) as missing:
            await call
        assert str(missing.value) == (
            f"schedule '{ids[0]}' not found in org 'north' (namespace '{made.org().namespace}')"
        )
    await eventually(
        lambda: made.scheduler.list_schedules(org),
        lambda views: ids[0] not in {v.schedule_id for v in views},
        what="the deleted schedule gone from the list",
    )


async def test_an_org_sees_and_controls_only_its_own_schedules(made: Stack) -> None:
    north, south = made.org("north"), made.org("south")
    sid = made.track(schedule_id("mine"))
    await made.scheduler.create(north, ScheduleRequest(sid, "tick", spec=FAR, note="north's"))
    now = datetime.now(UTC)
    for call in (
        made.scheduler.get(south, sid),
        made.scheduler.pause(south, sid, "hijacked"),
        made.scheduler.unpause(south, sid),
        made.scheduler.trigger(south, sid),
        made.scheduler.backfill(south, sid, now - timedelta(hours=1), now),
        made.scheduler.update(south, ScheduleRequest(sid, "tick", note="x"), frozenset({"note"})),
        made.scheduler.delete(south, sid),
    ):
        with pytest.raises(ScheduleNotFoundError) as caught:
            await call
        assert f"not found in org 'south' (namespace '{south.namespace}')" in str(caught.value)
    view = await made.scheduler.get(north, sid)
    assert not view.paused and view.note == "north's" and view.run_count == 0
    await eventually(
        lambda: made.scheduler.list_schedules(north),
        lambda views: sid in {v.schedule_id for v in views},
        what="north's schedule listed in north",
    )
    assert sid not in {v.schedule_id for v in await made.scheduler.list_schedules(south)}
    # The same id is free in another org: each org's schedules live in its own namespace.
    made.track(sid, "south")
    theirs = await made.scheduler.create(
        south, ScheduleRequest(sid, "tick", spec=FAR, paused=True, note="south's")
    )
    assert theirs.note == "south's"
    assert (await made.scheduler.get(north, sid)).note == "north's"
