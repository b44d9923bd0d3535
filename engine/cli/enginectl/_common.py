"""What every command of ``enginectl`` shares: exit codes, the connection and output options,
the remote-call wrapper, paging, and the parsing of argument values."""

from __future__ import annotations

import argparse
import json
import shlex
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Final, Protocol, TypeVar

from google.protobuf.message import Message

from engine.cli.enginectl._client import CliError, EngineClient
from engine.cli.enginectl._contexts import selected_context
from engine.cli.enginectl._output import emit
from engine.config import ClientSettings

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_USAGE",
    "PAGE",
    "Handler",
    "RemoteHandler",
    "Subcommands",
    "add_command",
    "add_output_option",
    "add_paging_options",
    "client_settings",
    "collect",
    "duration",
    "inputs",
    "json_or_string",
    "json_output",
    "moment",
    "next_page_line",
    "positive_float",
    "positive_int",
    "print_lines",
    "strict_json",
]

EXIT_OK: Final = 0
EXIT_INVALID: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130  # 128 + SIGINT, as shells report it

PAGE: Final = 1000
"""The page size of every listing call (the API's largest)."""

Handler = Callable[[argparse.Namespace], int]
"""A command: its parsed arguments in, the exit status out."""
RemoteHandler = Callable[[argparse.Namespace, EngineClient], int]
"""A command that talks to the control plane: it also gets a connected client."""

_M = TypeVar("_M", bound=Message)


class Subcommands(Protocol):
    """What ``ArgumentParser.add_subparsers`` returns (argparse does not name its type)."""

    def add_parser(self, name: str, **kwargs: Any) -> argparse.ArgumentParser:
        """A new subcommand."""
        ...


# -- options --------------------------------------------------------------------------------


def add_output_option(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """``-o table|json``."""
    parser.add_argument(
        "-o",
        "--output",
        choices=("table", "json"),
        default="table" if top else argparse.SUPPRESS,
        help="output format: readable tables (default) or JSON for scripts",
    )


def add_common_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
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
        help="control plane host:port (ENGINE_ADDRESS, else the context, else .engine/dev.env, "
        "else 127.0.0.1:50051)",
    )
    group.add_argument(
        "--token",
        default=default(None),
        help="bearer token (ENGINE_TOKEN, else the context, else .engine/dev.env)",
    )
    group.add_argument(
        "--context",
        metavar="NAME",
        default=default(None),
        help="a context of the config file (default: its current one; enginectl config)",
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
        type=positive_float,
        metavar="SECONDS",
        default=default(30.0),
        help="deadline of each call (default 30)",
    )
    group.add_argument(
        "--connect-timeout",
        type=positive_float,
        metavar="SECONDS",
        default=default(5.0),
        help="how long to wait for the control plane to answer at all (default 5)",
    )
    add_output_option(parser, top=top)


def add_command(
    commands: Subcommands,
    name: str,
    handler: RemoteHandler,
    help_: str,
    description: str,
) -> argparse.ArgumentParser:
    """A command that talks to the control plane, with the connection options."""
    parser = commands.add_parser(name, help=help_, description=description)
    add_common_options(parser, top=False)
    parser.set_defaults(handler=remote(handler))
    return parser


def client_settings(args: argparse.Namespace) -> ClientSettings:
    """Where to connect and with which token: the connection flags over the environment over
    the context (``--context``, else the config file's current one) over ``.engine/dev.env``
    (:meth:`ClientSettings.resolve`); every command that connects gets them here.

    Raises:
        CliError: The config file is malformed or has no such context, or the context's token
            file or variable is missing.
    """
    try:
        return ClientSettings.resolve(
            address=args.address,
            token=args.token,
            tls=args.tls,
            ca_file=args.ca_file,
            context=selected_context(getattr(args, "context", None)),
        )
    except ValueError as error:
        raise CliError(str(error)) from None


def remote(handler: RemoteHandler) -> Handler:
    """A command that talks to the control plane: it gets a connected client."""

    def run(args: argparse.Namespace) -> int:
        settings = client_settings(args)
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


# -- calls and output -----------------------------------------------------------------------


def collect(
    client: EngineClient,
    method: Callable[..., Any],
    request: Message,
    field: str,
    *,
    limit: int | None = None,
    page_token: str = "",
) -> tuple[list[Any], str]:
    """Every item of a listing, page after page (at most ``limit``).

    Args:
        client: The connected client.
        method: The listing's stub method (``client.workflows.ListWorkflows``).
        request: The request, filters set; its ``page_size`` and ``page_token`` are set here.
        field: The repeated field of the response that holds the items.
        limit: Stop once this many items arrived.
        page_token: Start from this page (the token a previous listing ended with).

    Returns:
        The items, and the token of the next page ("" when there is none).
    """
    items: list[Any] = []
    token = page_token
    while limit is None or len(items) < limit:
        page_request = type(request)()
        page_request.CopyFrom(request)
        page_request.page_size = PAGE if limit is None else min(limit - len(items), PAGE)  # type: ignore[attr-defined]
        page_request.page_token = token  # type: ignore[attr-defined]
        page = client.call(method, page_request)
        items.extend(getattr(page, field))
        token = page.next_page_token
        if not token:
            break
    return items, token


def add_paging_options(
    parser: argparse.ArgumentParser, *, what: str, default: int | None = None
) -> None:
    """``--limit N`` and ``--page-token TOKEN`` of a listing command."""
    shown = f" ({default})" if default is not None else " (default: all)"
    parser.add_argument(
        "--limit", type=positive_int, default=default, metavar="N", help=f"most {what}{shown}"
    )
    parser.add_argument(
        "--page-token",
        default="",
        metavar="TOKEN",
        help="start from this page: the token of the 'next page' a previous listing printed",
    )


def next_page_line(command: Sequence[str], token: str) -> str:
    """``next page: enginectl ls --limit 5 --page-token TOKEN``: how to list the rest."""
    return "next page: " + shlex.join(["enginectl", *command, "--page-token", token])


def json_output(args: argparse.Namespace) -> bool:
    """Whether the command prints JSON (``-o json``)."""
    return bool(args.output == "json")


def print_lines(lines: Sequence[str]) -> None:
    """Print lines, one write each."""
    for line in lines:
        emit(line)


# -- argument values ------------------------------------------------------------------------


def positive_int(text: str) -> int:
    """A whole number above zero."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def positive_float(text: str) -> float:
    """A number of seconds above zero."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def duration(text: str) -> timedelta:
    """A duration: ``90s``, ``15m``, ``1h30m``, ``PT1H``."""
    from engine.definition import parse_duration  # the definition language: only when needed

    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def moment(text: str) -> datetime:
    """An ISO 8601 time; one without an offset is local time."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time such as 2026-01-02T15:04:05Z, got {text!r}"
        ) from None
    return value if value.tzinfo is not None else value.astimezone()


def strict_json(text: str) -> Any:
    """JSON as RFC 8259 has it: Python's ``NaN`` and ``Infinity`` are not numbers there."""

    def reject(constant: str) -> Any:
        raise ValueError(f"{constant} is not a JSON number")

    return json.loads(text, parse_constant=reject)


def json_or_string(text: str) -> Any:
    """``10`` -> 10, ``true`` -> True, ``{"a":1}`` -> a dict, ``hello`` (or ``NaN``) -> a string."""
    try:
        return strict_json(text)
    except ValueError:
        return text


def add_input_options(parser: argparse.ArgumentParser, *, of: str) -> None:
    """``--input KEY=VALUE`` (repeatable) and ``--inputs-json``."""
    parser.add_argument(
        "--input",
        dest="inputs",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"an input{of}; VALUE is read as JSON when it is valid JSON, else as a "
        "string (repeatable; overrides --inputs-json)",
    )
    parser.add_argument("--inputs-json", metavar="JSON", help="the inputs as a JSON object")


def inputs(args: argparse.Namespace) -> dict[str, Any]:
    """The inputs of ``--inputs-json`` and ``--input`` (the latter win).

    Raises:
        CliError: Naming the flag that is malformed.
    """
    found: dict[str, Any] = {}
    if args.inputs_json:
        try:
            found = strict_json(args.inputs_json)
        except ValueError as error:
            raise CliError(f"--inputs-json is not valid JSON: {error}") from None
        if not isinstance(found, dict):
            raise CliError('--inputs-json must be a JSON object, e.g. \'{"service": "api"}\'')
    for item in args.inputs:
        key, equals, text = item.partition("=")
        if not equals or not key:
            raise CliError(f"--input expects KEY=VALUE, got {item!r}")
        found[key] = json_or_string(text)
    return found
