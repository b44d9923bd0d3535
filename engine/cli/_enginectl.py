"""``enginectl``: the engine's command-line client.

Today it validates definitions offline (``enginectl validate FILE...``). The commands that talk
to the control plane (``apply``, ``run``, ``get``, ...) join the same parser as sub-commands when
the gRPC API exists.

Exit status: 0 when everything succeeded, 1 when a file is invalid or unreadable, 2 for a usage
error (the convention of argparse, grep and diff).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Final

from engine.definition import DefinitionError, load_definition_file

__all__ = ["enginectl_main"]

EXIT_OK: Final = 0
EXIT_INVALID: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130  # 128 + SIGINT, as shells report it

_Handler = Callable[[argparse.Namespace], int]


def enginectl_main(argv: Sequence[str] | None = None) -> int:
    """Run ``enginectl`` with the given arguments and return its exit status.

    Args:
        argv: The arguments after the program name; ``None`` reads them from ``sys.argv``.

    Returns:
        0 on success, 1 if any file is invalid or unreadable, 2 for a usage error.
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
    try:
        return handler(args)
    except BrokenPipeError:
        # The reader went away (`enginectl validate ... | head -1`): stop quietly, and point
        # stdout at /dev/null so the interpreter's final flush does not fail with a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_INVALID
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="enginectl",
        description="Command-line client of the YAML workflow engine.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

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
    return parser


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
