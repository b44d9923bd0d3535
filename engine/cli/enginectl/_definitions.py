"""``validate`` and ``graph`` (offline), ``apply``, ``defs`` and ``defs show``: workflow
definitions."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final, TextIO

import grpc

from engine.api.v1 import definition_service_pb2, resources_pb2
from engine.cli.enginectl._client import CallFailedError, CliError, EngineClient
from engine.cli.enginectl._common import (
    EXIT_INVALID,
    EXIT_OK,
    Subcommands,
    add_command,
    add_paging_options,
    collect,
    json_output,
    next_page_line,
    print_lines,
)
from engine.cli.enginectl._output import emit, local_time, print_json, short_hash, shorten, table

if TYPE_CHECKING:
    from engine.definition import WorkflowDefinition

__all__ = ["register"]

_LOCATED: Final = re.compile(r"\d+:\d+: ")
# Failures that concern one file of `apply`; anything else (no token, no server) stops it.
_PER_FILE: Final = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)


def register(commands: Subcommands) -> None:
    """Add ``validate``, ``graph``, ``apply`` and ``defs``."""
    validate = commands.add_parser(
        "validate",
        help="check workflow definition files offline",
        description=(
            "Check workflow definition files without a server. Prints 'OK name:version hash' "
            "and any warnings for each valid file, or its problems as FILE:LINE:COL: message."
        ),
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="a YAML definition file")
    validate.set_defaults(handler=validate_files)

    graph = commands.add_parser(
        "graph",
        help="draw a workflow definition as a Mermaid flowchart",
        description=(
            "Print the definition in FILE as a Mermaid flowchart (flowchart TD), which GitHub "
            "renders in a README or a pull request. Works offline. An invalid file prints its "
            "problems as FILE:LINE:COL: message on stderr, and nothing on stdout."
        ),
    )
    graph.add_argument("file", metavar="FILE", help="a YAML definition file")
    graph.add_argument(
        "--markdown",
        action="store_true",
        help="wrap the flowchart in a ```mermaid block, ready to paste into Markdown",
    )
    graph.set_defaults(handler=graph_file)

    apply = add_command(
        commands,
        "apply",
        apply_files,
        "register workflow definition files",
        "Register each file's definition; a directory stands for its *.yaml and *.yml files "
        "(sorted, test files *.test.yaml left out; its subdirectories too with -R). Prints "
        "'registered name:version hash' or 'unchanged name:version', warnings as "
        "FILE:LINE:COL: warning: ..., and the problems of an invalid file as FILE:LINE:COL: "
        "message.",
    )
    apply.add_argument(
        "files", nargs="+", metavar="FILE|DIR", help="a YAML definition file, or a directory"
    )
    apply.add_argument(
        "-R",
        "--recursive",
        action="store_true",
        help="also register the files of the directories' subdirectories",
    )

    defs = add_command(
        commands,
        "defs",
        list_definitions,
        "list registered definitions, or show one",
        "List the latest version of each registered definition, or every version of NAME. "
        "'defs show NAME[:VERSION]' prints a definition's YAML exactly as it was registered "
        "(the latest version unless VERSION; -o json: the definition with its YAML).",
    )
    defs.usage = "%(prog)s [options] [NAME]\n       %(prog)s show NAME[:VERSION] [options]"
    defs.add_argument("name", nargs="?", metavar="NAME", help="list every version of this one")
    defs.add_argument(
        "shown", nargs="?", action=_ShowTarget, metavar="NAME[:VERSION]", help=argparse.SUPPRESS
    )
    add_paging_options(defs, what="definitions to list")


class _ShowTarget(argparse.Action):
    """The NAME[:VERSION] of ``defs show``: a second word only ``show`` takes.

    ``defs NAME`` lists the versions of NAME, so ``show`` cannot be a subcommand of its own
    without breaking that; ``defs show`` alone still lists the versions of a definition
    named ``show``.
    """

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        if values is not None and getattr(namespace, "name", None) != "show":
            parser.error(f"unrecognized arguments: {values} (to show a definition: defs show NAME)")
        setattr(namespace, self.dest, values)


def validate_files(args: argparse.Namespace) -> int:
    """``enginectl validate FILE...``: check definitions without a server."""
    status = EXIT_OK
    for path in args.files:
        if not _validate_file(path):
            status = EXIT_INVALID
    return status


def _validate_file(path: str) -> bool:
    """Validate one file, print the outcome, and tell whether it is valid."""
    definition = _load(path, sys.stdout)
    if definition is None:
        return False
    print(f"OK {definition.name}:{definition.version} {definition.content_hash}")
    for warning in definition.warnings:
        print(warning)
    return True


def graph_file(args: argparse.Namespace) -> int:
    """``enginectl graph FILE``: the definition as a Mermaid flowchart, without a server."""
    from engine.definition import mermaid

    # The problems go to stderr: stdout is the diagram, often redirected into a file.
    definition = _load(args.file, sys.stderr)
    if definition is None:
        return EXIT_INVALID
    flowchart = mermaid(definition)
    sys.stdout.write(f"```mermaid\n{flowchart}```\n" if args.markdown else flowchart)
    return EXIT_OK


def _load(path: str, problems: TextIO) -> WorkflowDefinition | None:
    """Load one file, or print why it cannot be loaded (each problem as FILE:LINE:COL)."""
    from engine.definition import DefinitionError, load_definition_file

    try:
        return load_definition_file(path)
    except DefinitionError as error:
        for problem in error.problems:
            print(problem, file=problems)
    except OSError as error:
        print(f"{path}: cannot read: {error.strerror or error}", file=problems)
    except UnicodeDecodeError as error:
        reason = f"not UTF-8 text ({error.reason} at byte {error.start})"
        print(f"{path}: cannot read: {reason}", file=problems)
    return None


_DEFINITION_SUFFIXES: Final = (".yaml", ".yml")
_TEST_SUFFIXES: Final = (".test.yaml", ".test.yml")


def definition_files(paths: list[str], *, recursive: bool) -> list[str]:
    """The files ``apply`` registers: each file as given, each directory's definition files.

    A directory's files are its ``*.yaml`` and ``*.yml`` files, sorted, without test files
    (``*.test.yaml``, run by ``enginectl test``) and hidden ones (``.pre-commit-config.yaml``);
    with ``recursive``, those of its subdirectories (hidden ones left out) come after them.

    Raises:
        CliError: A directory holds no definition file (naming it), before anything is
            registered.
    """
    found: list[str] = []
    for path in paths:
        folder = Path(path)
        if not folder.is_dir():
            found.append(path)  # a file, or what `cannot read` will report
            continue
        listed = _directory_files(folder, recursive=recursive)
        if not listed:
            deeper = "" if recursive else "; -R also looks in its subdirectories"
            raise CliError(
                f"{path}: no definition files in this directory (*.yaml, *.yml, not "
                f"*.test.yaml){deeper}"
            )
        found.extend(str(file) for file in listed)
    return found


def _directory_files(folder: Path, *, recursive: bool) -> list[Path]:
    entries = sorted(folder.iterdir(), key=lambda entry: entry.name)
    files = [
        entry
        for entry in entries
        if entry.name.endswith(_DEFINITION_SUFFIXES)
        and not entry.name.endswith(_TEST_SUFFIXES)
        and not entry.name.startswith(".")
        and entry.is_file()
    ]
    if recursive:
        for entry in entries:
            if entry.is_dir() and not entry.name.startswith("."):
                files.extend(_directory_files(entry, recursive=True))
    return files


def apply_files(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl apply FILE|DIR...``: register definitions."""
    status = EXIT_OK
    for path in definition_files(args.files, recursive=args.recursive):
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
        if json_output(args):
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


def list_definitions(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl defs [NAME]``: the latest of each definition, or every version of one."""
    if args.shown is not None:
        return show_definition(args, client)
    request = definition_service_pb2.ListDefinitionsRequest(name=args.name or "")
    found, token = collect(
        client,
        client.definitions.ListDefinitions,
        request,
        "definitions",
        limit=args.limit,
        page_token=args.page_token,
    )
    if json_output(args):
        print_json(
            definition_service_pb2.ListDefinitionsResponse(
                definitions=found, next_page_token=token
            ),
            sys.stdout,
        )
        return EXIT_OK
    if not found:
        emit(f"no definition named {args.name!r}" if args.name else "no definitions registered")
    else:
        print_lines(_definition_table(found))
    if token:
        command = ["defs", *([args.name] if args.name else [])]
        if args.limit is not None:
            command += ["--limit", str(args.limit)]
        emit(next_page_line(command, token))
    return EXIT_OK


def show_definition(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl defs show NAME[:VERSION]``: the YAML text as it was registered."""
    name, colon, version_text = args.shown.rpartition(":")
    if not colon:
        name, version_text = args.shown, ""
    version = 0
    if version_text:
        if not version_text.isdigit() or int(version_text) < 1:
            raise CliError(
                f"expected NAME or NAME:VERSION with a version from 1, got {args.shown!r}"
            )
        version = int(version_text)
    if not name:
        raise CliError(f"expected NAME or NAME:VERSION, got {args.shown!r}")
    request = definition_service_pb2.GetDefinitionRequest(name=name, version=version)
    definition = client.call(client.definitions.GetDefinition, request).definition
    if json_output(args):
        print_json(definition, sys.stdout)
    else:
        sys.stdout.write(definition.yaml)  # as registered: byte for byte, redirectable
    return EXIT_OK


def _definition_table(found: list[resources_pb2.Definition]) -> list[str]:
    rows = [
        (
            d.name,
            str(d.version),
            short_hash(d.content_hash),
            local_time(d, "create_time"),
            shorten(d.description, 60),
        )
        for d in found
    ]
    return table(("NAME", "VERSION", "HASH", "REGISTERED", "DESCRIPTION"), rows)
