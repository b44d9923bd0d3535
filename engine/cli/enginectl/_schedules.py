"""``schedule create|ls|get|pause|unpause|trigger|backfill|rm``: runs on a schedule."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from google.protobuf import duration_pb2, timestamp_pb2

from engine.api.v1 import schedule_service_pb2
from engine.cli.enginectl._client import CliError, EngineClient
from engine.cli.enginectl._common import (
    EXIT_OK,
    RemoteHandler,
    Subcommands,
    add_command,
    add_input_options,
    collect,
    duration,
    inputs,
    json_output,
    moment,
    positive_int,
    print_lines,
    strict_json,
)
from engine.cli.enginectl._output import emit, print_json, shorten, table
from engine.wire import enum_names, from_struct, to_struct

__all__ = ["register"]

_OVERLAP: Final[dict[str, int]] = {
    name.replace("_", "-"): number
    for number, name in enum_names(schedule_service_pb2.OverlapPolicy).items()
}
"""``--overlap`` names (``buffer-one``) and their values."""
_OVERLAP_NAMES: Final = {number: name for name, number in _OVERLAP.items()}


def register(commands: Subcommands) -> None:
    """Add ``schedule`` and its commands."""
    schedule = commands.add_parser(
        "schedule",
        help="run definitions on a schedule",
        description="Run a registered definition on a schedule (cron expressions, fixed "
        "intervals, calendar rules, in a time zone), like a cron service. The schedules live "
        "in the organization's namespace as Temporal Schedules; each run they start is an "
        "ordinary run (enginectl ls, enginectl actions).",
    )
    subcommands = schedule.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def sub(name: str, handler: RemoteHandler, help_: str, description: str) -> Any:
        return add_command(subcommands, name, handler, help_, description)

    def schedule_id(parser: Any) -> None:
        parser.add_argument("schedule_id", metavar="ID", help="the schedule's id")

    overlap_help = (
        "what a firing does while a run of the schedule still runs: skip it (default), "
        "buffer-one, buffer-all, cancel-other, terminate-other or allow-all"
    )
    create = sub(
        "create",
        _schedule_create,
        "create a schedule",
        "Create a schedule that starts runs of the definition NAME. Give when with --cron, "
        "--every or --calendar (each repeatable, combined), e.g. "
        "--cron '*/5 * * * *' --tz Europe/Paris. The inputs are checked against the "
        "definition now, and its version is pinned now (the latest unless --version).",
    )
    schedule_id(create)
    create.add_argument("name", metavar="NAME", help="the definition to run")
    create.add_argument(
        "--version",
        dest="definition_version",
        type=positive_int,
        metavar="N",
        default=0,
        help="the definition's version (default: the latest now, pinned)",
    )
    add_input_options(create, of=" of every run")
    create.add_argument(
        "--cron",
        action="append",
        default=[],
        metavar="EXPR",
        help="a 5-field cron expression (minute hour day-of-month month day-of-week) or a "
        "macro (@hourly, @daily, @weekly, @monthly, @yearly); repeatable",
    )
    create.add_argument(
        "--every",
        action="append",
        default=[],
        type=interval,
        metavar="DURATION[/OFFSET]",
        help="a fixed interval, e.g. 15m, or 1h/15m for every hour at a quarter past; repeatable",
    )
    create.add_argument(
        "--calendar",
        action="append",
        default=[],
        type=calendar,
        metavar="JSON",
        help='a calendar rule, e.g. \'{"hour": "9", "day_of_week": "MON-FRI"}\' '
        "(fields second, minute, hour, day_of_month, month, day_of_week, comment); repeatable",
    )
    create.add_argument(
        "--tz",
        dest="time_zone",
        default="",
        metavar="ZONE",
        help="IANA time zone of --cron and --calendar, e.g. Europe/Paris (default UTC)",
    )
    create.add_argument(
        "--start", type=moment, metavar="TIME", help="no firing before this ISO 8601 time"
    )
    create.add_argument(
        "--end", type=moment, metavar="TIME", help="no firing after this ISO 8601 time"
    )
    create.add_argument(
        "--jitter",
        type=duration,
        metavar="DURATION",
        help="delay each firing by a random amount up to this",
    )
    create.add_argument(
        "--overlap", choices=tuple(_OVERLAP), default=None, metavar="POLICY", help=overlap_help
    )
    create.add_argument(
        "--catchup-window",
        type=duration,
        metavar="DURATION",
        help="how far back firings missed during an outage are caught up (default 1 year)",
    )
    create.add_argument("--paused", action="store_true", help="create it paused")
    create.add_argument("--note", default="", help="a note (shown by get and ls)")

    sub(
        "ls",
        _schedule_ls,
        "list schedules",
        "List the organization's schedules: when they fire, their state and next firing.",
    )

    get = sub(
        "get",
        _schedule_get,
        "show a schedule",
        "Show a schedule: what it runs, when, its state, its next 5 firing times and its "
        "recent runs.",
    )
    schedule_id(get)

    pause = sub("pause", _schedule_pause, "pause a schedule", "Pause a schedule: no new runs.")
    schedule_id(pause)
    pause.add_argument("--note", default="", help="why (shown as its note)")

    unpause = sub("unpause", _schedule_unpause, "unpause a schedule", "Unpause a schedule.")
    schedule_id(unpause)
    unpause.add_argument("--note", default="", help="a note (shown as its note)")

    trigger = sub(
        "trigger",
        _schedule_trigger,
        "start a run of a schedule now",
        "Start a run now, as if the schedule fired; its overlap policy applies unless "
        "--overlap overrides it.",
    )
    schedule_id(trigger)
    trigger.add_argument(
        "--overlap",
        choices=tuple(_OVERLAP),
        default=None,
        metavar="POLICY",
        help="the overlap policy of this run (default: the schedule's own), e.g. allow-all to "
        "start it even while a run of the schedule still runs",
    )

    backfill = sub(
        "backfill",
        _schedule_backfill,
        "start the runs of a past time range",
        "Start the runs the schedule would have started from --start (included) to --end "
        "(excluded); every one of them unless --overlap says otherwise.",
    )
    schedule_id(backfill)
    backfill.add_argument(
        "--start", type=moment, required=True, metavar="TIME", help="ISO 8601 start"
    )
    backfill.add_argument("--end", type=moment, required=True, metavar="TIME", help="ISO 8601 end")
    backfill.add_argument(
        "--overlap",
        choices=tuple(_OVERLAP),
        default=None,
        metavar="POLICY",
        help="the overlap policy of these runs (default allow-all)",
    )

    rm = sub(
        "rm", _schedule_rm, "delete a schedule", "Delete a schedule; its runs are not affected."
    )
    schedule_id(rm)


def interval(text: str) -> tuple[timedelta, timedelta]:
    """``DURATION`` or ``DURATION/OFFSET`` (``1h/15m``: every hour at a quarter past)."""
    every, slash, offset = text.partition("/")
    if slash and not offset.strip():
        raise argparse.ArgumentTypeError(f"expected DURATION/OFFSET, got {text!r}")
    return duration(every), duration(offset) if slash else timedelta(0)


_CALENDAR_FIELDS: Final = frozenset(
    {"second", "minute", "hour", "day_of_month", "month", "day_of_week", "comment"}
)


def calendar(text: str) -> schedule_service_pb2.CalendarSpec:
    """A JSON object of calendar fields; numbers and lists are taken as the text they mean."""
    try:
        data = strict_json(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON: {error}") from None
    if not isinstance(data, dict) or not data:
        raise argparse.ArgumentTypeError(
            'expected a JSON object such as \'{"hour": "9", "day_of_week": "MON-FRI"}\''
        )
    unknown = sorted(set(data) - _CALENDAR_FIELDS)
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown field {unknown[0]!r}: use {', '.join(sorted(_CALENDAR_FIELDS))}"
        )

    def text_of(value: Any) -> str:
        if isinstance(value, list):
            return ",".join(text_of(v) for v in value)
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise argparse.ArgumentTypeError(f"expected text or a whole number, got {value!r}")
        return str(value)

    return schedule_service_pb2.CalendarSpec(**{k: text_of(v) for k, v in data.items()})


def _overlap(name: str | None) -> schedule_service_pb2.OverlapPolicy.ValueType:
    return schedule_service_pb2.OverlapPolicy.ValueType(_OVERLAP[name] if name else 0)


def _stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment.astimezone(UTC))
    return stamp


def _stamp_text(stamp: timestamp_pb2.Timestamp) -> str:
    """A Timestamp in local time, with its offset (a schedule's times cross DST changes)."""
    return stamp.ToDatetime(tzinfo=UTC).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")


def _span_text(span: duration_pb2.Duration) -> str:
    """``90s`` -> ``1m30s``, ``3600s`` -> ``1h``, ``1.5s`` -> ``1.5s``."""
    total = span.ToTimedelta().total_seconds()
    whole = int(total)
    if whole != total or whole < 60:
        return f"{total:g}s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def _calendar_text(calendar: schedule_service_pb2.CalendarSpec) -> str:
    fields = [
        f"{name}={getattr(calendar, name)}"
        for name in ("second", "minute", "hour", "day_of_month", "month", "day_of_week")
        if getattr(calendar, name)
    ]
    text = f"calendar({', '.join(fields)})"
    return f"{text} # {calendar.comment}" if calendar.comment else text


def _when(spec: schedule_service_pb2.ScheduleSpec) -> str:
    """When a schedule fires, in one line: its crons, intervals and calendars, and its zone."""
    parts = [f"cron {expression!r}" for expression in spec.cron]
    for interval in spec.intervals:
        text = f"every {_span_text(interval.every)}"
        if interval.offset.ToTimedelta():
            text += f" offset {_span_text(interval.offset)}"
        parts.append(text)
    parts.extend(_calendar_text(calendar) for calendar in spec.calendars)
    text = ", ".join(parts)
    if spec.time_zone and (spec.cron or spec.calendars):
        text += f" in {spec.time_zone}"
    return text


def _schedule_state(schedule: schedule_service_pb2.Schedule) -> str:
    return "paused" if schedule.paused else "active"


def _schedule_lines(schedule: schedule_service_pb2.Schedule) -> list[str]:
    spec = schedule.spec
    between = ""
    if spec.HasField("start_time") or spec.HasField("end_time"):
        start = _stamp_text(spec.start_time) if spec.HasField("start_time") else "-"
        end = _stamp_text(spec.end_time) if spec.HasField("end_time") else "-"
        between = f"{start} to {end}"
    inputs = from_struct(schedule.inputs)
    fields = [
        ("schedule", schedule.schedule_id),
        ("definition", f"{schedule.definition_name}:{schedule.definition_version}"),
        ("inputs", json.dumps(inputs, sort_keys=True) if inputs else ""),
        ("when", _when(spec)),
        ("between", between),
        ("jitter", _span_text(spec.jitter) if spec.HasField("jitter") else ""),
        ("overlap", _OVERLAP_NAMES.get(schedule.overlap_policy, "skip")),
        (
            "catch-up",
            _span_text(schedule.catchup_window) if schedule.HasField("catchup_window") else "",
        ),
        ("state", _schedule_state(schedule)),
        ("note", schedule.note),
        ("runs", str(schedule.run_count)),
    ]
    lines = [f"{name + ':':<12}{value}" for name, value in fields if value]
    lines += ["", "next firing times:"]
    if schedule.next_fire_times:
        lines += ["  " + _stamp_text(t) for t in schedule.next_fire_times]
    else:
        lines.append("  none" + (" (paused)" if schedule.paused else ""))
    if schedule.recent_runs:
        rows = [
            (
                _stamp_text(r.scheduled_time),
                _stamp_text(r.actual_time),
                r.workflow_id,
                r.run_id,
            )
            for r in schedule.recent_runs
        ]
        lines += ["", "recent runs:"]
        lines += ["  " + line for line in table(("SCHEDULED", "STARTED", "WORKFLOW", "RUN"), rows)]
    return lines


def _schedule_create(args: argparse.Namespace, client: EngineClient) -> int:
    if not (args.cron or args.every or args.calendar):
        raise CliError(
            "say when the schedule fires: --cron EXPR, --every DURATION or --calendar JSON "
            "(e.g. --cron '*/5 * * * *' --tz Europe/Paris)"
        )
    spec = schedule_service_pb2.ScheduleSpec(
        cron=args.cron,
        intervals=[
            schedule_service_pb2.IntervalSpec(
                every=_duration_message(every), offset=_duration_message(offset)
            )
            for every, offset in args.every
        ],
        calendars=args.calendar,
        time_zone=args.time_zone,
    )
    if args.start is not None:
        spec.start_time.CopyFrom(_stamp(args.start))
    if args.end is not None:
        spec.end_time.CopyFrom(_stamp(args.end))
    if args.jitter is not None:
        spec.jitter.CopyFrom(_duration_message(args.jitter))
    request = schedule_service_pb2.CreateScheduleRequest(
        schedule_id=args.schedule_id,
        definition_name=args.name,
        definition_version=args.definition_version,
        inputs=to_struct(inputs(args)),
        spec=spec,
        overlap_policy=_overlap(args.overlap),
        paused=args.paused,
        note=args.note,
    )
    if args.catchup_window is not None:
        request.catchup_window.CopyFrom(_duration_message(args.catchup_window))
    schedule = client.call(client.schedules.CreateSchedule, request).schedule
    if json_output(args):
        print_json(schedule, sys.stdout)
        return EXIT_OK
    emit(f"created schedule {schedule.schedule_id}")
    print_lines(_schedule_lines(schedule))
    return EXIT_OK


def _duration_message(span: timedelta) -> duration_pb2.Duration:
    message = duration_pb2.Duration()
    message.FromTimedelta(span)
    return message


def _schedule_ls(args: argparse.Namespace, client: EngineClient) -> int:
    request = schedule_service_pb2.ListSchedulesRequest()
    found, _ = collect(client, client.schedules.ListSchedules, request, "schedules")
    if json_output(args):
        print_json(schedule_service_pb2.ListSchedulesResponse(schedules=found), sys.stdout)
        return EXIT_OK
    if not found:
        emit("no schedules")
        return EXIT_OK
    rows = [
        (
            s.schedule_id,
            f"{s.definition_name}:{s.definition_version}",
            _schedule_state(s),
            shorten(_when(s.spec), 50),
            _stamp_text(s.next_fire_times[0]) if s.next_fire_times else "",
            str(s.run_count),
            shorten(s.note, 40),
        )
        for s in found
    ]
    headers = ("SCHEDULE", "DEFINITION", "STATE", "WHEN", "NEXT", "RUNS", "NOTE")
    print_lines(table(headers, rows))
    return EXIT_OK


def _schedule_get(args: argparse.Namespace, client: EngineClient) -> int:
    request = schedule_service_pb2.GetScheduleRequest(schedule_id=args.schedule_id)
    schedule = client.call(client.schedules.GetSchedule, request).schedule
    if json_output(args):
        print_json(schedule, sys.stdout)
        return EXIT_OK
    print_lines(_schedule_lines(schedule))
    return EXIT_OK


def _schedule_done(args: argparse.Namespace, response: Any, line: str) -> int:
    if json_output(args):
        print_json(response, sys.stdout)
    else:
        emit(line)
    return EXIT_OK


def _schedule_pause(args: argparse.Namespace, client: EngineClient) -> int:
    request = schedule_service_pb2.PauseScheduleRequest(
        schedule_id=args.schedule_id, note=args.note
    )
    response = client.call(client.schedules.PauseSchedule, request)
    return _schedule_done(args, response, f"paused schedule {args.schedule_id}")


def _schedule_unpause(args: argparse.Namespace, client: EngineClient) -> int:
    request = schedule_service_pb2.UnpauseScheduleRequest(
        schedule_id=args.schedule_id, note=args.note
    )
    response = client.call(client.schedules.UnpauseSchedule, request)
    return _schedule_done(args, response, f"unpaused schedule {args.schedule_id}")


def _schedule_trigger(args: argparse.Namespace, client: EngineClient) -> int:
    request = schedule_service_pb2.TriggerScheduleRequest(
        schedule_id=args.schedule_id, overlap_policy=_overlap(args.overlap)
    )
    response = client.call(client.schedules.TriggerSchedule, request)
    return _schedule_done(
        args,
        response,
        f"triggered schedule {args.schedule_id} (its runs: enginectl schedule get "
        f"{args.schedule_id})",
    )


def _schedule_backfill(args: argparse.Namespace, client: EngineClient) -> int:
    request = schedule_service_pb2.BackfillScheduleRequest(
        schedule_id=args.schedule_id,
        start_time=_stamp(args.start),
        end_time=_stamp(args.end),
        overlap_policy=_overlap(args.overlap),
    )
    response = client.call(client.schedules.BackfillSchedule, request)
    start, end = _stamp_text(request.start_time), _stamp_text(request.end_time)
    return _schedule_done(
        args, response, f"backfilling schedule {args.schedule_id} from {start} to {end}"
    )


def _schedule_rm(args: argparse.Namespace, client: EngineClient) -> int:
    request = schedule_service_pb2.DeleteScheduleRequest(schedule_id=args.schedule_id)
    response = client.call(client.schedules.DeleteSchedule, request)
    return _schedule_done(args, response, f"deleted schedule {args.schedule_id}")
