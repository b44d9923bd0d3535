"""``schedule create|update|ls|get|pause|unpause|trigger|backfill|rm``: runs on a schedule."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from google.protobuf import duration_pb2, field_mask_pb2, timestamp_pb2

from engine.api.v1 import schedule_service_pb2
from engine.cli.enginectl._client import CliError, EngineClient
from engine.cli.enginectl._common import (
    EXIT_OK,
    RemoteHandler,
    Subcommands,
    add_command,
    add_input_options,
    add_paging_options,
    collect,
    duration,
    inputs,
    json_output,
    moment,
    next_page_line,
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
    _add_schedule_options(create, overlap_help, default=_CREATE_DEFAULTS)
    create.add_argument("--paused", action="store_true", help="create it paused")

    update = sub(
        "update",
        _schedule_update,
        "change a schedule",
        "Change what the flags given say, and only that: --cron, --every and --calendar "
        "together replace when it fires (the others of the three are dropped); --tz, --start, "
        "--end, --jitter, --overlap, --catchup-window and --note replace their own setting; "
        "--input KEY=VALUE changes one input and keeps the others (--inputs-json replaces "
        "them all); --version N (or latest) pins another version of the definition. The "
        "inputs are checked against the definition again. Pause and unpause with their own "
        "commands.",
    )
    schedule_id(update)
    update.add_argument(
        "--version",
        dest="definition_version",
        type=_version,
        metavar="N|latest",
        default=None,
        help="pin this version of the definition, or the latest one now",
    )
    add_input_options(update, of=" of every run (changes that one, keeps the others)")
    _add_schedule_options(update, overlap_help, default={})

    ls = sub(
        "ls",
        _schedule_ls,
        "list schedules",
        "List the organization's schedules: when they fire, their state and next firing.",
    )
    add_paging_options(ls, what="schedules to list")

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


_CREATE_DEFAULTS: Final[dict[str, Any]] = {
    "cron": [],
    "every": [],
    "calendar": [],
    "time_zone": "",
    "note": "",
}
"""What ``create`` takes for a flag left out; ``update`` takes None (the setting stays)."""


def _add_schedule_options(
    parser: argparse.ArgumentParser, overlap_help: str, *, default: dict[str, Any]
) -> None:
    """The flags ``create`` and ``update`` share: when it fires, its policies, its note."""
    parser.add_argument(
        "--cron",
        action="append",
        default=default.get("cron"),
        metavar="EXPR",
        help="a 5-field cron expression (minute hour day-of-month month day-of-week) or a "
        "macro (@hourly, @daily, @weekly, @monthly, @yearly); repeatable",
    )
    parser.add_argument(
        "--every",
        action="append",
        default=default.get("every"),
        type=interval,
        metavar="DURATION[/OFFSET]",
        help="a fixed interval, e.g. 15m, or 1h/15m for every hour at a quarter past; repeatable",
    )
    parser.add_argument(
        "--calendar",
        action="append",
        default=default.get("calendar"),
        type=calendar,
        metavar="JSON",
        help='a calendar rule, e.g. \'{"hour": "9", "day_of_week": "MON-FRI"}\' '
        "(fields second, minute, hour, day_of_month, month, day_of_week, comment); repeatable",
    )
    parser.add_argument(
        "--tz",
        dest="time_zone",
        default=default.get("time_zone"),
        metavar="ZONE",
        help="IANA time zone of --cron and --calendar, e.g. Europe/Paris (default UTC)",
    )
    parser.add_argument(
        "--start", type=moment, metavar="TIME", help="no firing before this ISO 8601 time"
    )
    parser.add_argument(
        "--end", type=moment, metavar="TIME", help="no firing after this ISO 8601 time"
    )
    parser.add_argument(
        "--jitter",
        type=duration,
        metavar="DURATION",
        help="delay each firing by a random amount up to this",
    )
    parser.add_argument(
        "--overlap", choices=tuple(_OVERLAP), default=None, metavar="POLICY", help=overlap_help
    )
    parser.add_argument(
        "--catchup-window",
        type=duration,
        metavar="DURATION",
        help="how far back firings missed during an outage are caught up (default 1 year)",
    )
    parser.add_argument("--note", default=default.get("note"), help="a note (shown by get and ls)")


def _version(text: str) -> int:
    """``update --version``: N, or ``latest`` (0: the server pins the latest version)."""
    return 0 if text.strip().lower() == "latest" else positive_int(text)


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


def _firing_rules(args: argparse.Namespace, spec: schedule_service_pb2.ScheduleSpec) -> None:
    """Put the crons, intervals and calendars of ``args`` in ``spec``, in place of its own."""
    del spec.cron[:], spec.intervals[:], spec.calendars[:]
    spec.cron.extend(args.cron or [])
    spec.intervals.extend(
        schedule_service_pb2.IntervalSpec(
            every=_duration_message(every), offset=_duration_message(offset)
        )
        for every, offset in args.every or []
    )
    spec.calendars.extend(args.calendar or [])


def _spec_settings(args: argparse.Namespace, spec: schedule_service_pb2.ScheduleSpec) -> None:
    """Put the time zone, bounds and jitter given in ``args`` in ``spec``."""
    if args.time_zone is not None:
        spec.time_zone = args.time_zone
    if args.start is not None:
        spec.start_time.CopyFrom(_stamp(args.start))
    if args.end is not None:
        spec.end_time.CopyFrom(_stamp(args.end))
    if args.jitter is not None:
        spec.jitter.CopyFrom(_duration_message(args.jitter))


def _schedule_create(args: argparse.Namespace, client: EngineClient) -> int:
    if not (args.cron or args.every or args.calendar):
        raise CliError(
            "say when the schedule fires: --cron EXPR, --every DURATION or --calendar JSON "
            "(e.g. --cron '*/5 * * * *' --tz Europe/Paris)"
        )
    spec = schedule_service_pb2.ScheduleSpec()
    _firing_rules(args, spec)
    _spec_settings(args, spec)
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


def _schedule_update(args: argparse.Namespace, client: EngineClient) -> int:
    """``schedule update ID ...``: change the settings given, and only those.

    UpdateSchedule replaces whole fields (``spec``, ``inputs``) named by its update mask, so
    a change to part of one (the time zone, one input) starts from the schedule as it is.
    """
    changes = schedule_service_pb2.Schedule(schedule_id=args.schedule_id)
    paths: list[str] = []
    current: schedule_service_pb2.Schedule | None = None

    def schedule_now() -> schedule_service_pb2.Schedule:
        nonlocal current
        if current is None:
            request = schedule_service_pb2.GetScheduleRequest(schedule_id=args.schedule_id)
            current = client.call(client.schedules.GetSchedule, request).schedule
        return current

    new_rules = args.cron is not None or args.every is not None or args.calendar is not None
    new_settings = any(
        value is not None for value in (args.time_zone, args.start, args.end, args.jitter)
    )
    if new_rules or new_settings:
        changes.spec.CopyFrom(schedule_now().spec)
        if new_rules:
            _firing_rules(args, changes.spec)
        _spec_settings(args, changes.spec)
        paths.append("spec")
    if args.inputs or args.inputs_json:
        # --input changes one input; --inputs-json replaces them all (as in create, --input
        # wins over it).
        given = inputs(args)
        kept = {} if args.inputs_json else from_struct(schedule_now().inputs)
        changes.inputs.CopyFrom(to_struct({**kept, **given}))
        paths.append("inputs")
    if args.definition_version is not None:
        changes.definition_version = args.definition_version
        paths.append("definition_version")
    if args.overlap is not None:
        changes.overlap_policy = _overlap(args.overlap)
        paths.append("overlap_policy")
    if args.catchup_window is not None:
        changes.catchup_window.CopyFrom(_duration_message(args.catchup_window))
        paths.append("catchup_window")
    if args.note is not None:
        changes.note = args.note
        paths.append("note")
    if not paths:
        raise CliError(
            "nothing to change: give --cron, --every, --calendar, --tz, --start, --end, "
            "--jitter, --input, --inputs-json, --version, --overlap, --catchup-window or --note"
        )
    request = schedule_service_pb2.UpdateScheduleRequest(
        schedule=changes, update_mask=field_mask_pb2.FieldMask(paths=paths)
    )
    schedule = client.call(client.schedules.UpdateSchedule, request).schedule
    if json_output(args):
        print_json(schedule, sys.stdout)
        return EXIT_OK
    emit(f"updated schedule {schedule.schedule_id} ({', '.join(paths)})")
    print_lines(_schedule_lines(schedule))
    return EXIT_OK


def _duration_message(span: timedelta) -> duration_pb2.Duration:
    message = duration_pb2.Duration()
    message.FromTimedelta(span)
    return message


def _schedule_ls(args: argparse.Namespace, client: EngineClient) -> int:
    request = schedule_service_pb2.ListSchedulesRequest()
    found, token = collect(
        client,
        client.schedules.ListSchedules,
        request,
        "schedules",
        limit=args.limit,
        page_token=args.page_token,
    )
    if json_output(args):
        print_json(
            schedule_service_pb2.ListSchedulesResponse(schedules=found, next_page_token=token),
            sys.stdout,
        )
        return EXIT_OK
    if token:  # printed after the table
        limit = ["--limit", str(args.limit)] if args.limit is not None else []
        following = [next_page_line(["schedule", "ls", *limit], token)]
    else:
        following = []
    if not found:
        emit("no schedules")
        print_lines(following)
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
    print_lines(table(headers, rows) + following)
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


_WAITS_FOR_THE_RUNNING: Final = frozenset(
    {schedule_service_pb2.OVERLAP_POLICY_BUFFER_ONE, schedule_service_pb2.OVERLAP_POLICY_BUFFER_ALL}
)


def _schedule_trigger(args: argparse.Namespace, client: EngineClient) -> int:
    """``schedule trigger ID``: start a run now, unless the overlap policy would skip it.

    TriggerSchedule answers the same whether Temporal starts the run or its overlap policy
    skips it, so the schedule is read first: with skip, a run it knows to be still running
    (``running_workflow_ids``, what the policy decides by) means nothing would start, and that
    is said (exit 1) instead.
    """
    got = client.call(
        client.schedules.GetSchedule,
        schedule_service_pb2.GetScheduleRequest(schedule_id=args.schedule_id),
    ).schedule
    policy = (
        _overlap(args.overlap) or got.overlap_policy or schedule_service_pb2.OVERLAP_POLICY_SKIP
    )
    whose = "the" if args.overlap else "the schedule's"
    running = got.running_workflow_ids[-1] if got.running_workflow_ids else ""
    policy_name = _OVERLAP_NAMES[policy]
    if running and policy == schedule_service_pb2.OVERLAP_POLICY_SKIP:
        raise CliError(
            f"not started: {whose} overlap policy is skip and run {running} is still running\n"
            f"hint: --overlap allow-all starts one alongside it (or wait for it: enginectl get "
            f"{running})"
        )
    request = schedule_service_pb2.TriggerScheduleRequest(
        schedule_id=args.schedule_id, overlap_policy=_overlap(args.overlap)
    )
    response = client.call(client.schedules.TriggerSchedule, request)
    line = f"triggered schedule {args.schedule_id}"
    if running and policy in _WAITS_FOR_THE_RUNNING:
        line += f": it starts once run {running} ends"
    elif running and policy != schedule_service_pb2.OVERLAP_POLICY_ALLOW_ALL:
        line += f": run {running} is ended first ({policy_name})"
    line += f" (its runs: enginectl schedule get {args.schedule_id})"
    return _schedule_done(args, response, line)


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
