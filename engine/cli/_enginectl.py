"""``enginectl``: the engine's command-line client.

``validate`` checks definitions offline and ``token create`` signs a token locally; every other
command talks to the control plane over gRPC (see ``_client`` for where the address and the
token come from). Output is an aligned table by default and JSON with ``-o json``.

Exit status: 0 when everything succeeded, 1 when something failed (an invalid file, an error
from the server, a run that failed or was cancelled, no server at the address), 2 for a usage
error (the convention of argparse, grep and diff), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any, Final

import grpc
from google.protobuf import duration_pb2, json_format, struct_pb2, timestamp_pb2

from engine.api.v1 import (
    definition_service_pb2,
    organization_service_pb2,
    resources_pb2,
    schedule_service_pb2,
    workflow_service_pb2,
)
from engine.cli._client import CallFailedError, ClientSettings, CliError, EngineClient
from engine.cli._output import (
    TERMINAL,
    RunFollower,
    action_summary,
    action_type,
    elapsed,
    emit,
    error_text,
    local_time,
    outcome,
    print_json,
    run_status,
    short_hash,
    shorten,
    struct_dict,
    table,
    value_json,
)
from engine.config import ServerSettings
from engine.definition import (
    DefinitionError,
    ForeachStep,
    load_definition,
    load_definition_file,
    parse_duration,
)
from engine.errors import EngineError
from engine.identity import issue_token

__all__ = ["enginectl_main"]

EXIT_OK: Final = 0
EXIT_INVALID: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130  # 128 + SIGINT, as shells report it

SECRET_FILE: Final = "secret"
"""The HS256 secret ``engined dev`` keeps in its home directory (``.engine/secret``)."""
_PAGE: Final = 1000
_STATUSES: Final = {
    "running": resources_pb2.RUN_STATUS_RUNNING,
    "waiting": resources_pb2.RUN_STATUS_WAITING,
    "completed": resources_pb2.RUN_STATUS_COMPLETED,
    "failed": resources_pb2.RUN_STATUS_FAILED,
    "cancelled": resources_pb2.RUN_STATUS_CANCELLED,
}
_LOCATED: Final = re.compile(r"\d+:\d+: ")
# Failures that concern one file of `apply`; anything else (no token, no server) stops it.
_PER_FILE: Final = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)

_Handler = Callable[[argparse.Namespace], int]


@dataclass
class _Env:
    """What a command reads besides its arguments: the environment and the engine's home."""

    environ: Mapping[str, str]

    @property
    def home(self) -> Path:
        return Path(ServerSettings.from_env(self.environ).home)


def enginectl_main(argv: Sequence[str] | None = None) -> int:
    """Run ``enginectl`` with the given arguments and return its exit status.

    Args:
        argv: The arguments after the program name; ``None`` reads them from ``sys.argv``.

    Returns:
        0 on success, 1 if anything failed, 2 for a usage error, 130 when interrupted.
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # argparse exits by itself on --help (0) and on usage errors (2); callers, the tests
        # among them, get a status back instead of an exception.
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    handler: _Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: a command is required", file=sys.stderr)
        return EXIT_USAGE
    args.env = _Env(os.environ)
    try:
        return handler(args)
    except CliError as error:
        lines = error.lines() if isinstance(error, CallFailedError) else str(error).splitlines()
        print(f"{parser.prog}: {lines[0] if lines else 'failed'}", file=sys.stderr)
        for line in lines[1:]:
            print(line, file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:
        # The reader went away (`enginectl validate ... | head -1`): stop quietly, and point
        # stdout at /dev/null so the interpreter's final flush does not fail with a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_INVALID
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as error:  # a bug here: still no traceback for the person at the terminal
        print(f"{parser.prog}: unexpected error: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_INVALID


# -- the parser ---------------------------------------------------------------------------


def _add_output_option(parser: argparse.ArgumentParser, *, top: bool) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=("table", "json"),
        default="table" if top else argparse.SUPPRESS,
        help="output format: readable tables (default) or JSON for scripts",
    )


def _add_common_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The connection and output options, accepted before and after the command.

    After the command they default to SUPPRESS, so that leaving them out there does not undo
    what was given before it.
    """

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("connection and output")
    group.add_argument(
        "--address",
        default=default(None),
        help="control plane host:port (ENGINE_ADDRESS, else .engine/dev.env, else 127.0.0.1:50051)",
    )
    group.add_argument(
        "--token", default=default(None), help="bearer token (ENGINE_TOKEN, else .engine/dev.env)"
    )
    group.add_argument(
        "--tls", action="store_true", default=default(False), help="connect with TLS"
    )
    group.add_argument(
        "--ca",
        dest="ca_file",
        metavar="FILE",
        default=default(None),
        help="PEM CA certificate to trust; implies --tls (ENGINE_TLS_CA)",
    )
    group.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        default=default(30.0),
        help="deadline of each call (default 30)",
    )
    group.add_argument(
        "--connect-timeout",
        type=_positive_float,
        metavar="SECONDS",
        default=default(5.0),
        help="how long to wait for the control plane to answer at all (default 5)",
    )
    _add_output_option(parser, top=top)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="enginectl",
        description="Command-line client of the YAML workflow engine.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _add_common_options(parser, top=True)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(name: str, handler: _Handler, help_: str, description: str) -> Any:
        sub = commands.add_parser(name, help=help_, description=description)
        _add_common_options(sub, top=False)
        sub.set_defaults(handler=handler)
        return sub

    validate = commands.add_parser(
        "validate",
        help="check workflow definition files offline",
        description=(
            "Check workflow definition files without a server. Prints 'OK name:version hash' "
            "and any warnings for each valid file, or its problems as FILE:LINE:COL: message."
        ),
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="a YAML definition file")
    validate.set_defaults(handler=_validate)

    apply = command(
        "apply",
        _remote(_apply),
        "register workflow definition files",
        "Register each file's definition. Prints 'registered name:version hash' or "
        "'unchanged name:version', warnings as FILE:LINE:COL: warning: ..., and the problems "
        "of an invalid file as FILE:LINE:COL: message.",
    )
    apply.add_argument("files", nargs="+", metavar="FILE", help="a YAML definition file")

    defs = command(
        "defs",
        _remote(_defs),
        "list registered definitions",
        "List the latest version of each registered definition, or every version of NAME.",
    )
    defs.add_argument("name", nargs="?", metavar="NAME", help="list every version of this one")

    run = command(
        "run",
        _remote(_run),
        "start a run of a registered definition",
        "Start a run. Without --follow it answers once the run first waits or ends; with "
        "--follow it shows each step as it completes and each action the run waits for, "
        "until the run ends (exit 0 when it completed, 1 when it failed or was cancelled).",
    )
    run.add_argument("name", metavar="NAME", help="the definition's name")
    run.add_argument(
        "--version",
        dest="definition_version",
        type=_positive_int,
        metavar="N",
        default=0,
        help="the definition's version (default: the latest)",
    )
    run.add_argument(
        "--input",
        dest="inputs",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an input; VALUE is read as JSON when it is valid JSON, else as a string "
        "(repeatable; overrides --inputs-json)",
    )
    run.add_argument("--inputs-json", metavar="JSON", help="the inputs as a JSON object")
    run.add_argument("--id", dest="workflow_id", metavar="ID", help="the run's workflow id")
    run.add_argument(
        "--request-id", metavar="KEY", help="idempotency key: the same key starts one run only"
    )
    run.add_argument("--follow", "-f", action="store_true", help="show the run live until it ends")

    get = command(
        "get", _remote(_get), "show a run", "Show a run: status, pending actions, history, state."
    )
    get.add_argument("workflow_id", metavar="ID", help="the run's workflow id")
    get.add_argument("--run-id", default="", help="a specific run id (default: the latest)")
    get.add_argument("--follow", "-f", action="store_true", help="follow the run until it ends")

    ls = command(
        "ls",
        _remote(_ls),
        "list runs",
        "List runs, open ones first, filtered by status, definition and a visibility query.",
    )
    ls.add_argument("--status", choices=tuple(_STATUSES), help="only runs with this status")
    ls.add_argument("--definition", metavar="NAME", help="only runs of this definition")
    ls.add_argument(
        "--query",
        metavar="Q",
        help="a Temporal visibility query, e.g. \"StartTime > '2026-01-01'\"",
    )
    ls.add_argument("--children", action="store_true", help="include foreach child runs")
    ls.add_argument(
        "--limit", type=_positive_int, default=100, metavar="N", help="most runs to list (100)"
    )

    command(
        "actions",
        _remote(_actions),
        "list pending actions (the inbox)",
        "List every action the organization's runs wait for, oldest first.",
    )

    submit = command(
        "submit",
        _remote(_submit),
        "submit the result of a pending action",
        "Submit the result of the action STEP of run ID waits for (a step inside a foreach "
        "is found in its item's run) and show where the run went next.",
    )
    submit.add_argument("workflow_id", metavar="ID", help="the run's workflow id")
    submit.add_argument("step_id", metavar="STEP", help="the waiting step")
    submit.add_argument(
        "value",
        nargs="?",
        metavar="VALUE",
        help="the result, read as JSON when it is valid JSON, else as a string",
    )
    submit.add_argument("--action", dest="action_id", metavar="ACTION_ID", help="the action's id")
    submit.add_argument("--error", metavar="MSG", help="report that the action failed instead")

    answer = command(
        "answer",
        _remote(_answer),
        "answer waiting prompts on the terminal",
        "Ask each waiting prompt of the inbox on the terminal (confirm: y/n, choice: a "
        "number, text: a line, info: enter) and submit the answer. Other actions are skipped.",
    )
    answer.add_argument("--workflow", metavar="ID", help="only the prompts of this run")

    cancel = command("cancel", _remote(_cancel), "cancel a run", "Cancel a run and its children.")
    cancel.add_argument("workflow_id", metavar="ID", help="the run's workflow id")
    cancel.add_argument("--reason", default="", metavar="R", help="why (shown in its status)")

    org = commands.add_parser(
        "org", help="manage organizations (admin)", description="Manage organizations."
    )
    org_commands = org.add_subparsers(title="commands", metavar="COMMAND", required=True)
    org_create = org_commands.add_parser(
        "create", help="create an organization", description="Provision an organization."
    )
    _add_common_options(org_create, top=False)
    org_create.set_defaults(handler=_remote(_org_create))
    org_create.add_argument("org_id", metavar="ORG", help="the org id")
    org_create.add_argument(
        "--retention-days", type=_positive_int, metavar="N", help="days closed runs are kept"
    )
    org_ls = org_commands.add_parser(
        "ls", help="list organizations", description="List organizations."
    )
    _add_common_options(org_ls, top=False)
    org_ls.set_defaults(handler=_remote(_org_ls))

    _add_schedule_commands(commands)

    token = commands.add_parser("token", help="issue tokens", description="Issue bearer tokens.")
    token_commands = token.add_subparsers(title="commands", metavar="COMMAND", required=True)
    token_create = token_commands.add_parser(
        "create",
        help="sign a token for an organization",
        description="Sign an HS256 token with ENGINE_TOKEN_SECRET, --secret, or the secret "
        "'engined dev' keeps in .engine/secret, and print it.",
    )
    _add_output_option(token_create, top=False)
    token_create.set_defaults(handler=_token_create)
    token_create.add_argument("--org", required=True, help="the org the token speaks for")
    token_create.add_argument("--admin", action="store_true", help="grant the admin role")
    token_create.add_argument(
        "--ttl",
        type=_ttl,
        default=3600,
        metavar="TTL",
        help="lifetime: seconds or a duration such as 15m, 1h, 7d (default 1h)",
    )
    token_create.add_argument("--secret", help="the HS256 secret")
    return parser


def _add_schedule_commands(commands: Any) -> None:
    """``schedule create|ls|get|pause|unpause|trigger|backfill|rm``."""
    schedule = commands.add_parser(
        "schedule",
        help="run definitions on a schedule",
        description="Run a registered definition on a schedule (cron expressions, fixed "
        "intervals, calendar rules, in a time zone), like a cron service. The schedules live "
        "in the organization's namespace as Temporal Schedules; each run they start is an "
        "ordinary run (enginectl ls, enginectl actions).",
    )
    subcommands = schedule.add_subparsers(title="commands", metavar="COMMAND", required=True)

    def sub(
        name: str,
        handler: Callable[[argparse.Namespace, EngineClient], int],
        help_: str,
        description: str,
    ) -> Any:
        parser = subcommands.add_parser(name, help=help_, description=description)
        _add_common_options(parser, top=False)
        parser.set_defaults(handler=_remote(handler))
        return parser

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
        type=_positive_int,
        metavar="N",
        default=0,
        help="the definition's version (default: the latest now, pinned)",
    )
    create.add_argument(
        "--input",
        dest="inputs",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an input of every run; VALUE is read as JSON when it is valid JSON, else as a "
        "string (repeatable; overrides --inputs-json)",
    )
    create.add_argument("--inputs-json", metavar="JSON", help="the inputs as a JSON object")
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
        type=_interval,
        metavar="DURATION[/OFFSET]",
        help="a fixed interval, e.g. 15m, or 1h/15m for every hour at a quarter past; repeatable",
    )
    create.add_argument(
        "--calendar",
        action="append",
        default=[],
        type=_calendar,
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
        "--start", type=_moment, metavar="TIME", help="no firing before this ISO 8601 time"
    )
    create.add_argument(
        "--end", type=_moment, metavar="TIME", help="no firing after this ISO 8601 time"
    )
    create.add_argument(
        "--jitter",
        type=_duration,
        metavar="DURATION",
        help="delay each firing by a random amount up to this",
    )
    create.add_argument(
        "--overlap", choices=tuple(_OVERLAP), default=None, metavar="POLICY", help=overlap_help
    )
    create.add_argument(
        "--catchup-window",
        type=_duration,
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
        "--start", type=_moment, required=True, metavar="TIME", help="ISO 8601 start"
    )
    backfill.add_argument("--end", type=_moment, required=True, metavar="TIME", help="ISO 8601 end")
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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _ttl(text: str) -> int:
    """Seconds (``3600``) or a duration (``1h``, ``15m``, ``7d``) as whole seconds."""
    if text.isdigit():
        seconds = int(text)
    else:
        try:
            seconds = int(parse_duration(text).total_seconds())
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be at least one second, got {text!r}")
    return seconds


def _duration(text: str) -> timedelta:
    """A duration: ``90s``, ``15m``, ``1h30m``, ``PT1H``."""
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _interval(text: str) -> tuple[timedelta, timedelta]:
    """``DURATION`` or ``DURATION/OFFSET`` (``1h/15m``: every hour at a quarter past)."""
    every, slash, offset = text.partition("/")
    if slash and not offset.strip():
        raise argparse.ArgumentTypeError(f"expected DURATION/OFFSET, got {text!r}")
    return _duration(every), _duration(offset) if slash else timedelta(0)


_CALENDAR_FIELDS: Final = frozenset(
    {"second", "minute", "hour", "day_of_month", "month", "day_of_week", "comment"}
)


def _calendar(text: str) -> schedule_service_pb2.CalendarSpec:
    """A JSON object of calendar fields; numbers and lists are taken as the text they mean."""
    try:
        data = _strict_json(text)
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


def _moment(text: str) -> datetime:
    """An ISO 8601 time; one without an offset is local time."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time such as 2026-01-02T15:04:05Z, got {text!r}"
        ) from None
    return moment if moment.tzinfo is not None else moment.astimezone()


def _strict_json(text: str) -> Any:
    """JSON as RFC 8259 has it: Python's ``NaN`` and ``Infinity`` are not numbers there."""

    def reject(constant: str) -> Any:
        raise ValueError(f"{constant} is not a JSON number")

    return json.loads(text, parse_constant=reject)


def _json_or_string(text: str) -> Any:
    """``10`` -> 10, ``true`` -> True, ``{"a":1}`` -> a dict, ``hello`` (or ``NaN``) -> a string."""
    try:
        return _strict_json(text)
    except ValueError:
        return text


def _value(data: Any) -> struct_pb2.Value:
    value = struct_pb2.Value()
    json_format.ParseDict(data, value)
    return value


# -- running the remote commands ----------------------------------------------------------


def _remote(handler: Callable[[argparse.Namespace, EngineClient], int]) -> _Handler:
    """A command that talks to the control plane: it gets a connected client."""

    def run(args: argparse.Namespace) -> int:
        settings = ClientSettings.resolve(
            args.env.environ,
            args.env.home,
            address=args.address,
            token=args.token,
            tls=args.tls,
            ca_file=args.ca_file,
        )
        try:
            client = EngineClient(
                settings, timeout=args.timeout, connect_timeout=args.connect_timeout
            )
        except OSError as error:
            raise CliError(
                f"cannot read the CA certificate {settings.ca_file}: {error.strerror or error}"
            ) from None
        with client:
            return handler(args, client)

    return run


def _json_output(args: argparse.Namespace) -> bool:
    return bool(args.output == "json")


def _print_lines(lines: Sequence[str]) -> None:
    for line in lines:
        emit(line)


# -- definitions ----------------------------------------------------------------------------


def _apply(args: argparse.Namespace, client: EngineClient) -> int:
    status = EXIT_OK
    for path in args.files:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            emit(f"{path}: cannot read: {error.strerror or error}")
            status = EXIT_INVALID
            continue
        except UnicodeDecodeError as error:
            emit(f"{path}: cannot read: not UTF-8 text ({error.reason} at byte {error.start})")
            status = EXIT_INVALID
            continue
        request = definition_service_pb2.RegisterDefinitionRequest(yaml=text)
        try:
            response = client.call(client.definitions.RegisterDefinition, request)
        except CallFailedError as failure:
            if failure.code not in _PER_FILE:
                raise
            status = EXIT_INVALID
            if failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.violations:
                for field, description in failure.violations:
                    located = _LOCATED.match(description)
                    emit(f"{path}:{description}" if located else f"{path}: {field}: {description}")
            else:
                emit(f"{path}: {failure.code.name}: {failure.message}")
            continue
        if _json_output(args):
            print_json(response, sys.stdout)
            continue
        definition = response.definition
        if response.created:
            emit(f"registered {definition.name}:{definition.version} {definition.content_hash}")
        else:
            emit(f"unchanged {definition.name}:{definition.version}")
        for warning in response.warnings:
            emit(f"{path}:{warning.line}:{warning.column}: warning: {warning.message}")
    return status


def _defs(args: argparse.Namespace, client: EngineClient) -> int:
    found = definition_service_pb2.ListDefinitionsResponse()
    token = ""
    while True:
        request = definition_service_pb2.ListDefinitionsRequest(
            name=args.name or "", page_size=_PAGE, page_token=token
        )
        page = client.call(client.definitions.ListDefinitions, request)
        found.definitions.extend(page.definitions)
        token = page.next_page_token
        if not token:
            break
    if _json_output(args):
        print_json(found, sys.stdout)
        return EXIT_OK
    if not found.definitions:
        emit(f"no definition named {args.name!r}" if args.name else "no definitions registered")
        return EXIT_OK
    rows = [
        (
            d.name,
            str(d.version),
            short_hash(d.content_hash),
            local_time(d, "create_time"),
            shorten(d.description, 60),
        )
        for d in found.definitions
    ]
    _print_lines(table(("NAME", "VERSION", "HASH", "REGISTERED", "DESCRIPTION"), rows))
    return EXIT_OK


# -- runs -----------------------------------------------------------------------------------


def _inputs(args: argparse.Namespace) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    if args.inputs_json:
        try:
            inputs = _strict_json(args.inputs_json)
        except ValueError as error:
            raise CliError(f"--inputs-json is not valid JSON: {error}") from None
        if not isinstance(inputs, dict):
            raise CliError('--inputs-json must be a JSON object, e.g. \'{"service": "api"}\'')
    for item in args.inputs:
        key, equals, text = item.partition("=")
        if not equals or not key:
            raise CliError(f"--input expects KEY=VALUE, got {item!r}")
        inputs[key] = _json_or_string(text)
    return inputs


def _run(args: argparse.Namespace, client: EngineClient) -> int:
    inputs = _inputs(args)
    struct = struct_pb2.Struct()
    json_format.ParseDict(inputs, struct)
    request = workflow_service_pb2.StartWorkflowRequest(
        definition_name=args.name,
        definition_version=args.definition_version,
        inputs=struct,
        workflow_id=args.workflow_id or "",
        request_id=args.request_id or "",
        wait_for_suspension=not args.follow,
    )
    response = client.call(client.workflows.StartWorkflow, request)
    if _json_output(args):
        print_json(response, sys.stdout, compact=args.follow)
    else:
        emit(f"started {response.workflow_id} ({response.workflow_type}) run {response.run_id}")
    if args.follow:
        return _follow(args, client, response.workflow_id, inputs)
    if not _json_output(args):
        _print_lines(
            _advance_lines(
                response.workflow_id,
                response.status,
                "",
                response.pending_actions,
                response.result,
                response.error,
            )
        )
    return EXIT_INVALID if response.status in _FAILED else EXIT_OK


_FAILED: Final = frozenset({resources_pb2.RUN_STATUS_FAILED, resources_pb2.RUN_STATUS_CANCELLED})


def _advance_lines(
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
    if status in _FAILED:
        return [f"{name}: {error_text(name, error)}"]
    if not current_step:  # a start does not say: the steps its actions belong to do
        current_step = ", ".join(dict.fromkeys(action.step_id for action in actions))
    lines = []
    if name:
        lines.append(f"{name}" + (f" at step {current_step}" if current_step else ""))
    lines.extend(RunFollower.action_line(action, workflow_id) for action in actions)
    return lines


def _follow(
    args: argparse.Namespace, client: EngineClient, workflow_id: str, inputs: Mapping[str, Any]
) -> int:
    """Watch the run until it ends; 0 when it completed, 1 when it failed or was cancelled."""
    follower = RunFollower(sys.stdout, _ForeachProgress(client, inputs))
    last: resources_pb2.Workflow | None = None
    request = workflow_service_pb2.WatchWorkflowRequest(workflow_id=workflow_id)
    try:
        for response in client.stream(client.workflows.WatchWorkflow, request):
            last = response.workflow
            if _json_output(args):
                print_json(response, sys.stdout, compact=True)
                sys.stdout.flush()
            else:
                follower.update(response.workflow)
    except KeyboardInterrupt:
        print(f"stopped following; the run goes on (enginectl get {workflow_id})", file=sys.stderr)
        raise
    if last is None or last.status not in TERMINAL:
        raise CliError(
            f"the watch of run {workflow_id} ended before the run did; "
            f"see 'enginectl get {workflow_id}'"
        )
    return EXIT_OK if last.status == resources_pb2.RUN_STATUS_COMPLETED else EXIT_INVALID


class _ForeachProgress:
    """How many items of a running foreach are done, out of how many.

    The API's status does not carry this, so it is pieced together: the items done are the
    item runs (children ``{run}/{step}/{index}``) that visibility lists as closed; the total
    is the definition's ``items`` evaluated with the run's inputs and state when that works,
    else the number of item runs started so far.
    """

    def __init__(self, client: EngineClient, inputs: Mapping[str, Any]) -> None:
        self.client = client
        self.inputs = dict(inputs)
        self._totals: dict[tuple[str, str], int | None] = {}

    def __call__(self, workflow: resources_pb2.Workflow, step_id: str) -> tuple[int, int] | None:
        try:
            items = self._items(workflow.workflow_id, step_id)
        except CliError:
            return None
        key = (workflow.workflow_id, step_id)
        if key not in self._totals:
            self._totals[key] = self._total(workflow, step_id)
        total = max(self._totals[key] or 0, len(items))
        if total == 0:
            return None
        return sum(items.values()), total

    def _items(self, workflow_id: str, step_id: str) -> dict[str, bool]:
        """Item index -> whether its latest attempt has ended."""
        prefix = f"{workflow_id}/{step_id}/"
        quoted = workflow_id.replace("\\", "\\\\").replace("'", "\\'")
        request = workflow_service_pb2.ListWorkflowsRequest(
            include_children=True, query=f"ParentWorkflowId = '{quoted}'", page_size=_PAGE
        )
        page = self.client.call(self.client.workflows.ListWorkflows, request)
        latest: dict[str, tuple[int, bool]] = {}
        for run in page.workflows:
            if not run.workflow_id.startswith(prefix):
                continue
            index, _, suffix = run.workflow_id[len(prefix) :].partition("/")
            attempt = int(suffix.removeprefix("attempt-")) if suffix.startswith("attempt-") else 1
            ended = run.status in TERMINAL
            if index not in latest or attempt > latest[index][0]:
                latest[index] = (attempt, ended)
        return {index: ended for index, (_, ended) in latest.items()}

    def _total(self, workflow: resources_pb2.Workflow, step_id: str) -> int | None:
        if not workflow.definition_name:
            return None
        request = definition_service_pb2.GetDefinitionRequest(
            name=workflow.definition_name, version=workflow.definition_version
        )
        try:
            record = self.client.call(self.client.definitions.GetDefinition, request)
            definition = load_definition(record.definition.yaml)
            step = definition.step(step_id)
            if not isinstance(step, ForeachStep):
                return None
            context = {
                "inputs": definition.validate_inputs(self.inputs),
                "state": struct_dict(workflow.state),
                "steps": {},
                "workflow": {"id": workflow.workflow_id},
                "org": {"id": workflow.org_id},
            }
            return len(step.evaluate_items(context))
        except (CliError, EngineError, KeyError, ValueError, TypeError):
            # Items that read steps, foreach variables or hidden state: count the runs instead.
            return None


def _get(args: argparse.Namespace, client: EngineClient) -> int:
    if args.follow:
        return _follow(args, client, args.workflow_id, {})
    request = workflow_service_pb2.GetWorkflowRequest(
        workflow_id=args.workflow_id, run_id=args.run_id
    )
    workflow = client.call(client.workflows.GetWorkflow, request).workflow
    if _json_output(args):
        print_json(workflow, sys.stdout)
        return EXIT_OK
    _print_lines(_workflow_lines(workflow))
    return EXIT_OK


def _workflow_lines(workflow: resources_pb2.Workflow) -> list[str]:
    fields = [
        ("workflow", workflow.workflow_id),
        ("run", workflow.run_id),
        (
            "definition",
            f"{workflow.definition_name}:{workflow.definition_version} "
            f"{workflow.definition_hash}".strip(),
        ),
        ("org", workflow.org_id),
        ("status", run_status(workflow.status)),
        ("step", workflow.current_step),
        ("started", local_time(workflow, "start_time")),
    ]
    if workflow.HasField("waiting"):
        wait = workflow.waiting
        text = f"{wait.step_id} until {local_time(wait, 'until')}"
        fields.append(("timer", text + (f": {wait.message}" if wait.message else "")))
    if workflow.status == resources_pb2.RUN_STATUS_COMPLETED:
        fields.append(("result", value_json(workflow.result)))
    if workflow.error:
        fields.append(("error", workflow.error))
    lines = [f"{name + ':':<12}{value}" for name, value in fields if value]
    if workflow.pending_actions:
        lines += ["", "pending actions:"]
        lines += ["  " + line for line in _action_table(workflow.pending_actions)]
    if workflow.history:
        rows = [
            (
                r.step_id,
                r.type,
                outcome(r.outcome) or "running",
                str(r.attempts),
                local_time(r, "start_time"),
                elapsed(r, "start_time", "finish_time"),
                shorten(r.error, 60),
            )
            for r in workflow.history
        ]
        lines += ["", "history:"]
        headers = ("STEP", "TYPE", "OUTCOME", "ATTEMPTS", "STARTED", "TOOK", "ERROR")
        lines += ["  " + line for line in table(headers, rows)]
    state = struct_dict(workflow.state)
    if state:
        lines += ["", "state:"]
        lines += ["  " + line for line in json.dumps(state, indent=2).splitlines()]
    return lines


def _action_table(actions: Sequence[resources_pb2.PendingAction]) -> list[str]:
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


def _ls(args: argparse.Namespace, client: EngineClient) -> int:
    found = workflow_service_pb2.ListWorkflowsResponse()
    token = ""
    while len(found.workflows) < args.limit:
        request = workflow_service_pb2.ListWorkflowsRequest(
            status=_STATUSES.get(args.status or "", resources_pb2.RUN_STATUS_UNSPECIFIED),
            definition_name=args.definition or "",
            query=args.query or "",
            include_children=args.children,
            page_size=min(args.limit - len(found.workflows), _PAGE),
            page_token=token,
        )
        page = client.call(client.workflows.ListWorkflows, request)
        found.workflows.extend(page.workflows)
        token = page.next_page_token
        if not token:
            break
    found.next_page_token = token
    if _json_output(args):
        print_json(found, sys.stdout)
        return EXIT_OK
    if not found.workflows:
        emit("no runs")
        return EXIT_OK
    rows = [
        (
            w.workflow_id,
            w.workflow_type,
            run_status(w.status),
            w.current_step,
            local_time(w, "start_time"),
            local_time(w, "close_time"),
        )
        for w in found.workflows
    ]
    _print_lines(table(("WORKFLOW", "TYPE", "STATUS", "STEP", "STARTED", "CLOSED"), rows))
    return EXIT_OK


def _inbox(client: EngineClient) -> list[resources_pb2.PendingAction]:
    actions: list[resources_pb2.PendingAction] = []
    token = ""
    while True:
        request = workflow_service_pb2.ListPendingActionsRequest(page_size=_PAGE, page_token=token)
        page = client.call(client.workflows.ListPendingActions, request)
        actions.extend(page.pending_actions)
        token = page.next_page_token
        if not token:
            return actions


def _actions(args: argparse.Namespace, client: EngineClient) -> int:
    actions = _inbox(client)
    if _json_output(args):
        print_json(
            workflow_service_pb2.ListPendingActionsResponse(pending_actions=actions), sys.stdout
        )
        return EXIT_OK
    if not actions:
        emit("no pending actions")
        return EXIT_OK
    _print_lines(_action_table(actions))
    return EXIT_OK


def _submit(args: argparse.Namespace, client: EngineClient) -> int:
    if args.value is None and args.error is None:
        raise CliError("give the result VALUE, or --error MSG to report that the action failed")
    workflow_id, action_id = _submission_target(
        client, args.workflow_id, args.step_id, args.action_id
    )
    request = workflow_service_pb2.SubmitResultRequest(workflow_id=workflow_id)
    if action_id:
        request.action_id = action_id
    else:
        request.step_id = args.step_id
    if args.value is not None:
        request.result.CopyFrom(_value(_json_or_string(args.value)))
    if args.error is not None:
        request.error = args.error
    response = client.call(client.workflows.SubmitResult, request)
    if _json_output(args):
        print_json(response, sys.stdout)
    else:
        lines = _advance_lines(
            workflow_id,
            response.status,
            response.current_step,
            response.pending_actions,
            response.result,
            response.error,
        )
        _print_lines([f"run {workflow_id}: {lines[0]}", *lines[1:]] if lines else [])
    return EXIT_OK


def _submission_target(
    client: EngineClient, workflow_id: str, step_id: str, action_id: str | None
) -> tuple[str, str | None]:
    """The run an action waits in (a foreach item's run for a step inside a foreach).

    Results go to the run that owns the action; a person naturally names the top-level run,
    so the action is looked up in its status (which lists the actions of the whole tree).
    """
    request = workflow_service_pb2.GetWorkflowRequest(workflow_id=workflow_id)
    try:
        workflow = client.call(client.workflows.GetWorkflow, request).workflow
    except CallFailedError:
        return workflow_id, action_id  # the submission itself reports what is wrong
    matches = [
        a
        for a in workflow.pending_actions
        if (a.action_id == action_id if action_id else a.step_id == step_id)
    ]
    if not matches:
        return workflow_id, action_id
    owners = {a.workflow_id or workflow_id for a in matches}
    if len(matches) > 1 and len(owners) > 1:
        listed = ", ".join(f"{a.action_id} (in {a.workflow_id})" for a in matches)
        raise CliError(
            f"step {step_id} waits in {len(matches)} foreach items of run {workflow_id}: "
            f"name one with --action ({listed})"
        )
    match = matches[0]
    return match.workflow_id or workflow_id, match.action_id


def _cancel(args: argparse.Namespace, client: EngineClient) -> int:
    request = workflow_service_pb2.CancelWorkflowRequest(
        workflow_id=args.workflow_id, reason=args.reason
    )
    response = client.call(client.workflows.CancelWorkflow, request)
    if _json_output(args):
        print_json(response, sys.stdout)
    else:
        emit(f"cancel requested: {args.workflow_id}")
    return EXIT_OK


# -- answering prompts ----------------------------------------------------------------------


class _EndOfInputError(Exception):
    """The person (or the pipe) has no more answers."""


def _ask(question: str) -> str:
    print(question, end="", flush=True)
    line = sys.stdin.readline()
    if not line:
        print()
        raise _EndOfInputError
    return line.rstrip("\r\n")


def _answer_prompt(action: resources_pb2.PendingAction) -> Any:
    """Ask the person for the answer to one prompt; returns the result to submit."""
    parameters = struct_dict(action.parameters)
    kind = parameters.get("prompt_type") or "info"
    message = str(parameters.get("message") or "")
    default = parameters.get("default")
    emit(f"{action.workflow_id} / {action.step_id} ({kind})")
    if kind == "confirm":
        hint = "[Y/n]" if default is True else "[y/N]" if default is False else "[y/n]"
        while True:
            reply = _ask(f"{message} {hint} ").strip().lower()
            if not reply and isinstance(default, bool):
                return default
            if reply in ("y", "yes"):
                return True
            if reply in ("n", "no"):
                return False
            emit("please answer y or n")
    if kind == "choice":
        options = parameters.get("options") or []
        emit(message)
        for number, option in enumerate(options, 1):
            text = option if isinstance(option, str) else json.dumps(option)
            emit(f"  {number}) {text}" + ("  (default)" if option == default else ""))
        while True:
            reply = _ask(f"choose 1-{len(options)}: ").strip()
            if not reply and default is not None:
                return default
            if reply.isdigit() and 1 <= int(reply) <= len(options):
                return options[int(reply) - 1]
            if reply in [o for o in options if isinstance(o, str)]:
                return reply
            emit(f"please answer with a number from 1 to {len(options)}")
    if kind == "text":
        shown = f" [{default}]" if isinstance(default, str) and default else ""
        reply = _ask(f"{message}{shown}\n> ")
        return default if not reply and isinstance(default, str) else reply
    _ask(f"{message}\n(press enter) ")
    return True


def _answer(args: argparse.Namespace, client: EngineClient) -> int:
    def wanted(action: resources_pb2.PendingAction) -> bool:
        return action.action_id not in seen and (
            not args.workflow
            or action.workflow_id == args.workflow
            or action.workflow_id.startswith(args.workflow + "/")
        )

    status = EXIT_OK
    seen: set[str] = set()
    answered = skipped = 0
    stopped = False
    queue = deque(a for a in _inbox(client) if wanted(a))
    while queue:
        action = queue.popleft()
        if not wanted(action):
            continue
        seen.add(action.action_id)
        if action.type != resources_pb2.ACTION_TYPE_PROMPT:
            skipped += 1
            continue
        try:
            result = _answer_prompt(action)
        except _EndOfInputError:
            emit("stopped: no more input")
            stopped = True
            break
        request = workflow_service_pb2.SubmitResultRequest(
            workflow_id=action.workflow_id, action_id=action.action_id, result=_value(result)
        )
        try:
            response = client.call(client.workflows.SubmitResult, request)
        except CallFailedError as failure:
            if failure.code in (
                grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.PERMISSION_DENIED,
            ):
                raise
            emit(f"not submitted: {failure.lines()[0]}")
            status = EXIT_INVALID
            continue
        answered += 1
        if _json_output(args):
            print_json(response, sys.stdout, compact=True)
        else:
            lines = _advance_lines(
                action.workflow_id,
                response.status,
                response.current_step,
                [],
                response.result,
                response.error,
            )
            emit(f"-> run {action.workflow_id}: {lines[0] if lines else 'submitted'}")
        # The run's next questions come next, in the order it asks them (the inbox is listed
        # through visibility, which may not show them yet).
        following = []
        for next_action in response.pending_actions:
            if not next_action.workflow_id:
                next_action.workflow_id = action.workflow_id
            following.append(next_action)
        queue.extendleft(reversed(following))
        if not queue:
            queue.extend(a for a in _inbox(client) if wanted(a))
    if not _json_output(args):
        if answered == skipped == 0 and status == EXIT_OK and not stopped:
            emit("no prompts are waiting")
        else:
            note = f", skipped {skipped} other action(s) (enginectl actions)" if skipped else ""
            emit(f"answered {answered} prompt(s){note}")
    return status


# -- schedules ------------------------------------------------------------------------------

_OVERLAP: Final = {
    "skip": schedule_service_pb2.OVERLAP_POLICY_SKIP,
    "buffer-one": schedule_service_pb2.OVERLAP_POLICY_BUFFER_ONE,
    "buffer-all": schedule_service_pb2.OVERLAP_POLICY_BUFFER_ALL,
    "cancel-other": schedule_service_pb2.OVERLAP_POLICY_CANCEL_OTHER,
    "terminate-other": schedule_service_pb2.OVERLAP_POLICY_TERMINATE_OTHER,
    "allow-all": schedule_service_pb2.OVERLAP_POLICY_ALLOW_ALL,
}
_OVERLAP_NAMES: Final = {value: name for name, value in _OVERLAP.items()}


def _overlap(name: str | None) -> schedule_service_pb2.OverlapPolicy.ValueType:
    return _OVERLAP[name] if name else schedule_service_pb2.OVERLAP_POLICY_UNSPECIFIED


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
    inputs = struct_dict(schedule.inputs)
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
    inputs = struct_pb2.Struct()
    json_format.ParseDict(_inputs(args), inputs)
    request = schedule_service_pb2.CreateScheduleRequest(
        schedule_id=args.schedule_id,
        definition_name=args.name,
        definition_version=args.definition_version,
        inputs=inputs,
        spec=spec,
        overlap_policy=_overlap(args.overlap),
        paused=args.paused,
        note=args.note,
    )
    if args.catchup_window is not None:
        request.catchup_window.CopyFrom(_duration_message(args.catchup_window))
    schedule = client.call(client.schedules.CreateSchedule, request).schedule
    if _json_output(args):
        print_json(schedule, sys.stdout)
        return EXIT_OK
    emit(f"created schedule {schedule.schedule_id}")
    _print_lines(_schedule_lines(schedule))
    return EXIT_OK


def _duration_message(span: timedelta) -> duration_pb2.Duration:
    message = duration_pb2.Duration()
    message.FromTimedelta(span)
    return message


def _schedule_ls(args: argparse.Namespace, client: EngineClient) -> int:
    found = schedule_service_pb2.ListSchedulesResponse()
    token = ""
    while True:
        request = schedule_service_pb2.ListSchedulesRequest(page_size=_PAGE, page_token=token)
        page = client.call(client.schedules.ListSchedules, request)
        found.schedules.extend(page.schedules)
        token = page.next_page_token
        if not token:
            break
    if _json_output(args):
        print_json(found, sys.stdout)
        return EXIT_OK
    if not found.schedules:
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
        for s in found.schedules
    ]
    headers = ("SCHEDULE", "DEFINITION", "STATE", "WHEN", "NEXT", "RUNS", "NOTE")
    _print_lines(table(headers, rows))
    return EXIT_OK


def _schedule_get(args: argparse.Namespace, client: EngineClient) -> int:
    request = schedule_service_pb2.GetScheduleRequest(schedule_id=args.schedule_id)
    schedule = client.call(client.schedules.GetSchedule, request).schedule
    if _json_output(args):
        print_json(schedule, sys.stdout)
        return EXIT_OK
    _print_lines(_schedule_lines(schedule))
    return EXIT_OK


def _schedule_done(args: argparse.Namespace, response: Any, line: str) -> int:
    if _json_output(args):
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


# -- organizations and tokens --------------------------------------------------------------


def _organization_row(org: resources_pb2.Organization) -> tuple[str, str, str, str]:
    days = org.retention.ToTimedelta() / timedelta(days=1)
    retention = f"{days:g}d" if org.HasField("retention") else ""
    return org.org_id, org.namespace, org.address, retention


def _org_create(args: argparse.Namespace, client: EngineClient) -> int:
    request = organization_service_pb2.CreateOrganizationRequest(org_id=args.org_id)
    if args.retention_days:
        request.retention.CopyFrom(duration_pb2.Duration(seconds=args.retention_days * 86400))
    response = client.call(client.organizations.CreateOrganization, request)
    if _json_output(args):
        print_json(response, sys.stdout)
        return EXIT_OK
    org_id, namespace, address, retention = _organization_row(response.organization)
    verb = "created" if response.created else "exists"
    emit(f"{verb} {org_id}: namespace {namespace} at {address}, retention {retention}")
    return EXIT_OK


def _org_ls(args: argparse.Namespace, client: EngineClient) -> int:
    found = organization_service_pb2.ListOrganizationsResponse()
    token = ""
    while True:
        request = organization_service_pb2.ListOrganizationsRequest(
            page_size=_PAGE, page_token=token
        )
        page = client.call(client.organizations.ListOrganizations, request)
        found.organizations.extend(page.organizations)
        token = page.next_page_token
        if not token:
            break
    if _json_output(args):
        print_json(found, sys.stdout)
        return EXIT_OK
    if not found.organizations:
        emit("no organizations")
        return EXIT_OK
    rows = [_organization_row(org) for org in found.organizations]
    _print_lines(table(("ORG", "NAMESPACE", "ADDRESS", "RETENTION"), rows))
    return EXIT_OK


def _token_secret(args: argparse.Namespace) -> str:
    if args.secret:
        return str(args.secret)
    env: _Env = args.env
    configured = ServerSettings.from_env(env.environ).token_secret
    if configured:
        return configured
    path = env.home / SECRET_FILE
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        secret = ""
    except (OSError, UnicodeDecodeError) as error:
        raise CliError(f"cannot read the token secret {path}: {error}") from None
    if not secret:
        raise CliError(
            f"no token secret: set ENGINE_TOKEN_SECRET, pass --secret, or run 'engined dev' "
            f"(it keeps one in {path})"
        )
    return secret


def _token_create(args: argparse.Namespace) -> int:
    secret = _token_secret(args)
    roles = ["admin"] if args.admin else []
    try:
        token = issue_token(secret, args.org, roles=roles, ttl_seconds=args.ttl)
    except (EngineError, ValueError) as error:
        raise CliError(str(error)) from None
    if _json_output(args):
        print_json(
            {"token": token, "org": args.org, "roles": roles, "ttl_seconds": args.ttl}, sys.stdout
        )
    else:
        emit(token)
    return EXIT_OK


# -- offline validation ---------------------------------------------------------------------


def _validate(args: argparse.Namespace) -> int:
    status = EXIT_OK
    for path in args.files:
        if not _validate_file(path):
            status = EXIT_INVALID
    return status


def _validate_file(path: str) -> bool:
    """Validate one file, print the outcome, and tell whether it is valid."""
    try:
        definition = load_definition_file(path)
    except DefinitionError as error:
        for problem in error.problems:
            print(problem)
        return False
    except OSError as error:
        print(f"{path}: cannot read: {error.strerror or error}")
        return False
    except UnicodeDecodeError as error:
        print(f"{path}: cannot read: not UTF-8 text ({error.reason} at byte {error.start})")
        return False
    print(f"OK {definition.name}:{definition.version} {definition.content_hash}")
    for warning in definition.warnings:
        print(warning)
    return True


def _version() -> str:
    try:
        return metadata.version("engine")
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "(not installed)"
