"""``enginectl schedule``: create, ls, get, pause, unpause, trigger, backfill and rm.

The real CLI (``enginectl_main`` in a thread, the ``ctl`` fixture) against the in-process
control plane of ``conftest.py`` (orgs ``acme`` and ``inbox``, a worker pool that runs what the
schedules start). Every schedule a test creates is deleted after it, so none goes on firing.
"""

from __future__ import annotations

import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from engine.cli import enginectl_main
from tests.cli.plane import Ctl, Plane, Result
from tests.tenancy.orgkit import eventually

TICK = """\
name: cli-tick
version: 1
inputs:
  n: {type: integer, default: 1}
steps:
  - {id: double, type: set_state, set: {twice: "${{ inputs.n * 2 }}"}}
  - {id: done, type: return, value: "${{ state.twice }}"}
"""
FAR = "0 0 1 1 *"  # once a year, at new year: never during a test
TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}"


def _local(moment: datetime) -> str:
    """A time as the CLI prints it: local, with the offset."""
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S %z")


def _parse_local(text: str) -> datetime:
    return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S %z")


def _json(result: Result) -> Any:
    assert (result.status, result.err) == (0, ""), result
    return json.loads("\n".join(result.out))


@pytest.fixture(scope="module")
async def registered(plane: Plane) -> Plane:
    await plane.register(TICK)
    return plane


@pytest.fixture
async def ids(registered: Plane) -> AsyncIterator[list[tuple[str, str]]]:
    """``(org, schedule id)`` of the schedules a test creates; deleted after it."""
    made: list[tuple[str, str]] = []
    yield made
    for org_id, sid in made:
        client = await registered.tenancy.client(org_id)
        with contextlib.suppress(Exception):  # deleted by the test itself
            await client.get_schedule_handle(sid).delete()


def _new(ids: list[tuple[str, str]], tag: str, org_id: str = "acme") -> str:
    sid = f"{tag}-{uuid.uuid4().hex[:8]}"
    ids.append((org_id, sid))
    return sid


# -- creating and showing ---------------------------------------------------------------------


async def test_create_with_a_cron_in_a_time_zone_then_get_and_ls(
    ctl: Ctl, ids: list[tuple[str, str]]
) -> None:
    sid = _new(ids, "every-five")
    # Paused, so that no firing changes what the commands show while the test reads it.
    created = await ctl(
        "schedule",
        "create",
        sid,
        "cli-tick",
        "--cron",
        "*/5 * * * *",
        "--tz",
        "Europe/Paris",
        "--paused",
    )

    assert (created.status, created.err) == (0, "")
    assert created.out[:11] == [
        f"created schedule {sid}",
        f"schedule:   {sid}",
        "definition: cli-tick:1",  # the latest version, pinned now
        'inputs:     {"n": 1}',
        "when:       cron '*/5 * * * *' in Europe/Paris",
        "overlap:    skip",
        "catch-up:   365d",
        "state:      paused",
        "runs:       0",
        "",
        "next firing times:",
    ]
    times = [_parse_local(line) for line in created.out[11:]]
    assert len(times) == 5
    assert all(t.minute % 5 == 0 and t.second == 0 for t in times)
    assert all(b - a == timedelta(minutes=5) for a, b in pairwise(times))

    shown = await ctl("schedule", "get", sid)
    assert (shown.status, shown.err) == (0, "")
    assert shown.out[:11] == created.out[1:12]

    listed = await eventually(
        lambda: ctl("schedule", "ls"),
        lambda r: any(line.startswith(sid) for line in r.out),
        what="the schedule in ls",
    )
    assert listed.out[0].split() == [
        "SCHEDULE",
        "DEFINITION",
        "STATE",
        "WHEN",
        "NEXT",
        "RUNS",
        "NOTE",
    ]
    [row] = [line for line in listed.out if line.startswith(sid)]
    assert re.fullmatch(
        rf"{sid}\s+cli-tick:1\s+paused\s+cron '\*/5 \* \* \* \*' in Europe/Paris\s+"
        rf"{re.escape(created.out[11].strip())}\s+0",
        row,
    ), row

    data = _json(await ctl("schedule", "get", sid, "-o", "json"))
    assert data["schedule_id"] == sid and data["definition_version"] == 1
    assert data["spec"] == {"cron": ["*/5 * * * *"], "time_zone": "Europe/Paris"}
    assert data["overlap_policy"] == "skip" and len(data["next_fire_times"]) == 5
    everything = _json(await ctl("schedule", "ls", "-o", "json"))
    assert sid in [s["schedule_id"] for s in everything["schedules"]]


async def test_create_takes_intervals_calendars_bounds_and_policies(
    ctl: Ctl, ids: list[tuple[str, str]]
) -> None:
    sid = _new(ids, "full")
    data = _json(
        await ctl(
            "schedule",
            "create",
            sid,
            "cli-tick",
            "--version",
            "1",
            "--input",
            "n=3",
            "--every",
            "1h/15m",
            "--every",
            "90s",
            "--calendar",
            '{"hour": [9, 17], "minute": 30, "day_of_week": "MON-FRI", "comment": "office"}',
            "--start",
            "2027-01-01T00:00:00Z",
            "--end",
            "2027-06-01T12:00:00+02:00",
            "--jitter",
            "30s",
            "--overlap",
            "allow-all",
            "--catchup-window",
            "10m",
            "--paused",
            "--note",
            "quarterly",
            "-o",
            "json",
        )
    )
    assert data["inputs"] == {"n": 3}
    assert data["spec"] == {
        "intervals": [{"every": 3600, "offset": 900}, {"every": 90, "offset": 0}],
        "calendars": [
            {"hour": "9,17", "minute": "30", "day_of_week": "MON-FRI", "comment": "office"}
        ],
        "start_time": "2027-01-01T00:00:00Z",
        "end_time": "2027-06-01T10:00:00Z",
        "jitter": 30,
    }
    assert data["overlap_policy"] == "allow_all"
    assert data["catchup_window"] == 600
    assert data["paused"] is True and data["note"] == "quarterly"

    shown = await ctl("schedule", "get", sid)
    assert shown.out[:12] == [
        f"schedule:   {sid}",
        "definition: cli-tick:1",
        'inputs:     {"n": 3}',
        "when:       every 1h offset 15m, every 1m30s, "
        "calendar(minute=30, hour=9,17, day_of_week=MON-FRI) # office",
        f"between:    {_local(datetime(2027, 1, 1, tzinfo=UTC))} to "
        f"{_local(datetime(2027, 6, 1, 10, tzinfo=UTC))}",
        "jitter:     30s",
        "overlap:    allow-all",
        "catch-up:   10m",
        "state:      paused",
        "note:       quarterly",
        "runs:       0",
        "",
    ]
    assert shown.out[12] == "next firing times:"
    assert all(_parse_local(line) >= datetime(2027, 1, 1, tzinfo=UTC) for line in shown.out[13:18])


async def test_pause_and_unpause_with_notes(ctl: Ctl, ids: list[tuple[str, str]]) -> None:
    sid = _new(ids, "pausing")
    assert (await ctl("schedule", "create", sid, "cli-tick", "--cron", FAR)).status == 0

    paused = await ctl("schedule", "pause", sid, "--note", "change freeze")
    assert (paused.status, paused.out, paused.err) == (0, [f"paused schedule {sid}"], "")
    shown = await ctl("schedule", "get", sid)
    assert "state:      paused" in shown.out and "note:       change freeze" in shown.out

    unpaused = await ctl("schedule", "unpause", sid, "--note", "thawed", "-o", "json")
    assert _json(unpaused) == {}
    shown = await ctl("schedule", "get", sid)
    assert "state:      active" in shown.out and "note:       thawed" in shown.out


# -- runs -------------------------------------------------------------------------------------


async def test_trigger_starts_a_run_that_get_and_ls_show(
    ctl: Ctl, ids: list[tuple[str, str]]
) -> None:
    sid = _new(ids, "trigger")
    create = await ctl(
        "schedule", "create", sid, "cli-tick", "--cron", FAR, "--input", "n=21", "--paused"
    )
    assert create.status == 0

    triggered = await ctl("schedule", "trigger", sid)
    assert (triggered.status, triggered.err) == (0, "")
    assert triggered.out == [f"triggered schedule {sid} (its runs: enginectl schedule get {sid})"]

    data = await eventually(
        lambda: ctl("schedule", "get", sid, "-o", "json"),
        lambda r: r.status == 0 and "recent_runs" in json.loads("\n".join(r.out)),
        what="the triggered run",
    )
    [run] = _json(data)["recent_runs"]
    assert run["workflow_id"].startswith(f"{sid}-")
    shown = await ctl("schedule", "get", sid)
    assert shown.out[-3] == "recent runs:"
    assert shown.out[-2].split() == ["SCHEDULED", "STARTED", "WORKFLOW", "RUN"]
    assert re.fullmatch(
        rf"  {TIME}  {TIME}  {re.escape(run['workflow_id'])}  {run['run_id']}", shown.out[-1]
    )
    # An ordinary run: `enginectl get` and `enginectl ls` know it.
    finished = await eventually(
        lambda: ctl("get", run["workflow_id"]),
        lambda r: "status:     completed" in r.out,
        what="the run completed",
    )
    assert "result:     42" in finished.out and "org:        acme" in finished.out
    listed = await eventually(
        lambda: ctl("ls", "--definition", "cli-tick"),
        lambda r: any(line.startswith(run["workflow_id"]) for line in r.out),
        what="the run in ls",
    )
    [row] = [line for line in listed.out if line.startswith(run["workflow_id"])]
    assert row.split()[1:3] == ["cli-tick:1", "completed"]


async def test_backfill_starts_the_runs_of_a_past_range(
    ctl: Ctl, ids: list[tuple[str, str]]
) -> None:
    sid = _new(ids, "backfill")
    assert (
        await ctl("schedule", "create", sid, "cli-tick", "--every", "1m", "--paused")
    ).status == 0
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    start, end = minute - timedelta(minutes=10), minute - timedelta(minutes=7)

    result = await ctl(
        "schedule", "backfill", sid, "--start", start.isoformat(), "--end", end.isoformat()
    )
    assert (result.status, result.err) == (0, "")
    assert result.out == [f"backfilling schedule {sid} from {_local(start)} to {_local(end)}"]
    done = await eventually(
        lambda: ctl("schedule", "get", sid, "-o", "json"),
        lambda r: json.loads("\n".join(r.out)).get("run_count") == 3,
        what="three backfilled runs",
    )
    scheduled = sorted(r["scheduled_time"] for r in _json(done)["recent_runs"])
    assert scheduled == [f"{start + timedelta(minutes=m):%Y-%m-%dT%H:%M:%SZ}" for m in range(3)]


# -- deleting, isolation and errors ---------------------------------------------------------


async def test_rm_deletes_and_a_missing_schedule_is_not_found(
    ctl: Ctl, ids: list[tuple[str, str]], registered: Plane
) -> None:
    sid = _new(ids, "doomed")
    assert (await ctl("schedule", "create", sid, "cli-tick", "--cron", FAR)).status == 0

    removed = await ctl("schedule", "rm", sid)
    assert (removed.status, removed.out, removed.err) == (0, [f"deleted schedule {sid}"], "")
    namespace = registered.org("acme").namespace
    message = (
        f"enginectl: NOT_FOUND: schedule '{sid}' not found in org 'acme' "
        f"(namespace '{namespace}')\n"
    )
    for argv in (("get", sid), ("rm", sid), ("pause", sid), ("trigger", sid)):
        missing = await ctl("schedule", *argv)
        assert (missing.status, missing.out, missing.err) == (1, [], message)


async def test_another_orgs_schedules_are_not_found(
    ctl: Ctl, ids: list[tuple[str, str]], registered: Plane
) -> None:
    sid = _new(ids, "acme-only")
    assert (await ctl("schedule", "create", sid, "cli-tick", "--cron", FAR)).status == 0
    namespace = registered.org("inbox").namespace
    for argv in (
        ("get", sid),
        ("pause", sid),
        ("unpause", sid),
        ("trigger", sid),
        ("backfill", sid, "--start", "2026-01-01T00:00Z", "--end", "2026-01-02T00:00Z"),
        ("rm", sid),
    ):
        result = await ctl("schedule", *argv, org="inbox")
        assert result.status == 1, argv
        assert result.err == (
            f"enginectl: NOT_FOUND: schedule '{sid}' not found in org 'inbox' "
            f"(namespace '{namespace}')\n"
        )
    theirs = await ctl("schedule", "ls", org="inbox")
    assert (theirs.status, theirs.out) == (0, ["no schedules"])
    mine = await ctl("schedule", "get", sid)
    assert "state:      active" in mine.out and "runs:       0" in mine.out


@pytest.mark.parametrize(
    ("argv", "first_line"),
    [
        (("--cron", "61 * * * *"), "spec.cron[0]: minute 61 is out of range 0-59"),
        (("--cron", "* * * *"), "spec.cron[0]: '* * * *' has 4 fields; a cron expression has 5"),
        (("--cron", "@reboot"), "spec.cron[0]: unknown macro '@reboot'"),
        (
            ("--cron", "0 9 * * *", "--tz", "Europe/Pariss"),
            "spec.time_zone: unknown time zone 'Europe/Pariss'",
        ),
        (("--every", "500ms"), "spec.intervals[0].every: must be at least 1s"),
        (("--every", "1m/2m"), "spec.intervals[0].offset: must be at least 0 and less than"),
        (("--calendar", '{"month": 13}'), "spec.calendars[0].month: month 13 is out of range"),
        (
            ("--cron", FAR, "--start", "2027-02-01T00:00Z", "--end", "2027-01-01T00:00Z"),
            "spec.end_time: must be after spec.start_time",
        ),
        (("--cron", FAR, "--catchup-window", "5s"), "catchup_window: must be at least 10s"),
        (
            ("--cron", FAR, "--version", "9"),
            "definition_version: version 9 of definition 'cli-tick' is not registered",
        ),
        (("--cron", FAR, "--input", "n=many"), "input 'n'"),
    ],
)
async def test_bad_schedules_are_refused_naming_the_field(
    ctl: Ctl, ids: list[tuple[str, str]], argv: tuple[str, ...], first_line: str
) -> None:
    sid = _new(ids, "bad")
    result = await ctl("schedule", "create", sid, "cli-tick", *argv)
    assert (result.status, result.out) == (1, [])
    assert result.err.startswith(f"enginectl: INVALID_ARGUMENT: {first_line}"), result.err
    assert "Traceback" not in result.err


async def test_an_unknown_definition_is_refused(ctl: Ctl, ids: list[tuple[str, str]]) -> None:
    result = await ctl("schedule", "create", _new(ids, "nodef"), "no-such", "--cron", FAR)
    assert result.status == 1
    assert result.err.startswith(
        "enginectl: INVALID_ARGUMENT: definition_name: definition 'no-such' is not registered "
        "in org 'acme'"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("create", "x", "cli-tick", "--every", "5 minutes"),
            "argument --every: expected a duration",
        ),
        (("create", "x", "cli-tick", "--every", "5m/"), "expected DURATION/OFFSET"),
        (("create", "x", "cli-tick", "--calendar", "{nope"), "argument --calendar: not valid JSON"),
        (("create", "x", "cli-tick", "--calendar", "[1]"), "expected a JSON object"),
        (("create", "x", "cli-tick", "--calendar", '{"when": 1}'), "unknown field 'when'"),
        (("create", "x", "cli-tick", "--calendar", '{"hour": true}'), "expected text or a whole"),
        (("create", "x", "cli-tick", "--start", "yesterday"), "expected an ISO 8601 time"),
        (
            ("create", "x", "cli-tick", "--overlap", "sometimes"),
            "argument --overlap: invalid choice",
        ),
        (("create", "x", "cli-tick", "--version", "0"), "must be positive"),
        (("create", "x"), "the following arguments are required: NAME"),
        (("backfill", "x", "--start", "2026-01-01T00:00Z"), "required: --end"),
        (("trigger",), "the following arguments are required: ID"),
        (("explode",), "invalid choice: 'explode'"),
        ((), "the following arguments are required: COMMAND"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    status = enginectl_main(["schedule", *argv])
    assert status == 2
    assert message in capsys.readouterr().err


def test_a_schedule_must_say_when_it_fires(capsys: pytest.CaptureFixture[str]) -> None:
    status = enginectl_main(["--address", "127.0.0.1:1", "schedule", "create", "x", "cli-tick"])
    assert status == 1
    assert capsys.readouterr().err == (
        "enginectl: say when the schedule fires: --cron EXPR, --every DURATION or --calendar "
        "JSON (e.g. --cron '*/5 * * * *' --tz Europe/Paris)\n"
    )


def test_help_lists_the_schedule_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert enginectl_main(["schedule", "--help"]) == 0
    text = capsys.readouterr().out
    for name in ("create", "ls", "get", "pause", "unpause", "trigger", "backfill", "rm"):
        assert re.search(rf"^\s+{name}\s", text, re.MULTILINE), name
    assert enginectl_main(["schedule", "create", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--cron EXPR" in text and "--tz ZONE" in text and "--every DURATION[/OFFSET]" in text
