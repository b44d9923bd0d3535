"""The ``enginectl`` program: its parser, made of every command group, and its exit status."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from engine.cli.enginectl import (
    _actions,
    _completion,
    _config,
    _definitions,
    _links,
    _mcp,
    _orgs,
    _runs,
    _schedules,
    _testing,
    _tokens,
    _work,
)
from engine.cli.enginectl._client import CallFailedError, CliError
from engine.cli.enginectl._common import (
    EXIT_INTERRUPTED,
    EXIT_INVALID,
    EXIT_USAGE,
    Handler,
    add_common_options,
)

__all__ = ["main"]

_GROUPS = (
    _definitions,
    _testing,
    _runs,
    _actions,
    _work,
    _mcp,
    _orgs,
    _links,
    _schedules,
    _tokens,
    _config,
    _completion,
)
"""Every command group, in the order ``--help`` lists their commands."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``enginectl`` with the given arguments and return its exit status.

    Args:
        argv: The arguments after the program name; ``None`` reads them from ``sys.argv``.

    Returns:
        0 on success, 1 if anything failed, 2 for a usage error, 130 when interrupted.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        # argparse exits by itself on --help (0) and on usage errors (2); callers, the tests
        # among them, get a status back instead of an exception.
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: a command is required", file=sys.stderr)
        return EXIT_USAGE
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


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (building it imports nothing of the engine's stack)."""
    parser = argparse.ArgumentParser(
        prog="enginectl",
        description="Command-line client of the YAML workflow engine.",
    )
    parser.add_argument(
        "--version", action=_Version, nargs=0, help="show program's version number and exit"
    )
    add_common_options(parser, top=True)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for group in _GROUPS:
        group.register(commands)
    return parser


class _Version(argparse.Action):
    """``--version``: the installed version, looked up only when asked (importlib.metadata is
    a fifth of the start-up time of every other command)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from importlib import metadata

        try:
            version = metadata.version("engine")
        except metadata.PackageNotFoundError:  # run from a checkout that was never installed
            version = "(not installed)"
        print(f"{parser.prog} {version}")
        parser.exit()
