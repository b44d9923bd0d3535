"""``config``: the contexts of the config file (``set-context``, ``use-context``,
``get-contexts``, ``current-context``, ``delete-context``); no server needed.

Where a remote command connects, strongest first: the flags, ``ENGINE_ADDRESS`` /
``ENGINE_TOKEN``, the context (``--context NAME``, else the current one), ``.engine/dev.env``,
the defaults (:class:`engine.config.ClientSettings`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine.cli.enginectl._client import CliError
from engine.cli.enginectl._common import (
    EXIT_OK,
    Subcommands,
    add_output_option,
    json_output,
    print_lines,
)
from engine.cli.enginectl._contexts import ContextFile
from engine.cli.enginectl._output import emit, print_json, table

__all__ = ["register"]


def register(commands: Subcommands) -> None:
    """Add ``config`` and its commands."""
    config = commands.add_parser(
        "config",
        help="contexts: named control planes and their tokens",
        description="Manage the contexts of enginectl's config file ($ENGINE_CONFIG, else "
        "$XDG_CONFIG_HOME/engine/config.yaml, else ~/.config/engine/config.yaml). A remote "
        "command connects with, strongest first: its flags, ENGINE_ADDRESS and ENGINE_TOKEN, "
        "the context (--context NAME, else the current one), .engine/dev.env, the defaults.",
    )
    config_commands = config.add_subparsers(title="commands", metavar="COMMAND", required=True)

    set_context = config_commands.add_parser(
        "set-context",
        help="add a context, or change one",
        description="Add a context, or change the settings given of an existing one. The "
        "file is written with mode 0600: it may hold tokens.",
    )
    set_context.set_defaults(handler=set_context_command)
    set_context.add_argument("name", metavar="NAME", help="the context's name")
    set_context.add_argument(
        "--address", dest="new_address", metavar="HOST:PORT", help="the control plane"
    )
    token = set_context.add_mutually_exclusive_group()
    token.add_argument("--token", dest="new_token", metavar="TOKEN", help="the bearer token")
    token.add_argument(
        "--token-file",
        dest="new_token_file",
        metavar="FILE",
        help="a file holding the token (read at each call)",
    )
    token.add_argument(
        "--token-env", dest="new_token_env", metavar="VAR", help="a variable holding the token"
    )
    set_context.add_argument(
        "--org", dest="new_org", help="the org its token speaks for (informational)"
    )
    set_context.add_argument(
        "--tls",
        dest="new_tls",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="connect with TLS (--no-tls: without)",
    )
    set_context.add_argument(
        "--ca", dest="new_ca", metavar="FILE", help="PEM CA certificate to trust; implies --tls"
    )
    set_context.add_argument("--use", action="store_true", help="make it the current context")

    use_context = config_commands.add_parser(
        "use-context",
        help="make a context the current one",
        description="Make a context the one remote commands use without --context.",
    )
    use_context.set_defaults(handler=use_context_command)
    use_context.add_argument("name", metavar="NAME", help="the context's name")

    get_contexts = config_commands.add_parser(
        "get-contexts",
        help="list the contexts",
        description="List the contexts; '*' marks the current one. Tokens are never shown.",
    )
    add_output_option(get_contexts, top=False)
    get_contexts.set_defaults(handler=get_contexts_command)

    current = config_commands.add_parser(
        "current-context",
        help="print the current context's name",
        description="Print the current context's name (exit status 1 when there is none).",
    )
    current.set_defaults(handler=current_context_command)

    delete = config_commands.add_parser(
        "delete-context", help="remove a context", description="Remove a context."
    )
    delete.set_defaults(handler=delete_context_command)
    delete.add_argument("name", metavar="NAME", help="the context's name")


def set_context_command(args: argparse.Namespace) -> int:
    """``enginectl config set-context NAME --address A [--token T | --token-file F] ...``."""
    name = args.name.strip()
    if not name or any(c.isspace() for c in name):
        raise CliError(f"a context's name is one word, got {args.name!r}")
    file = ContextFile.load()
    existing = file.contexts.get(name)
    settings: dict[str, Any] = dict(existing or {})
    if args.new_address is not None:
        if not args.new_address.strip():
            raise CliError("--address must not be empty: give HOST:PORT")
        settings["address"] = args.new_address.strip()
    if not settings.get("address"):
        raise CliError(f"context '{name}' is new: give its --address HOST:PORT")
    given_token = {
        "token": args.new_token,
        "token_file": _absolute(args.new_token_file),
        "token_env": args.new_token_env,
    }
    if any(value is not None for value in given_token.values()):
        settings.update(given_token)  # one way to the token: the others are dropped
    if args.new_org is not None:
        settings["org"] = args.new_org or None
    if args.new_ca is not None:
        if args.new_tls is False:
            raise CliError("--ca implies TLS: leave out --no-tls")
        settings["ca"] = _absolute(args.new_ca) if args.new_ca else None
    if args.new_tls is not None:
        settings["tls"] = args.new_tls
        if not args.new_tls:
            settings["ca"] = None
    file.contexts[name] = settings
    if args.use:
        file.current = name
    file.save()
    verb = "changed" if existing is not None else "created"
    note = " (the current context)" if file.current == name else ""
    emit(f"context '{name}' {verb} in {file.path}{note}")
    return EXIT_OK


def _absolute(path: str | None) -> str | None:
    """A path given on the command line, made absolute (the file is read from anywhere)."""
    if path is None or not path:
        return path
    return str(Path(path).expanduser().absolute())


def use_context_command(args: argparse.Namespace) -> int:
    """``enginectl config use-context NAME``."""
    file = ContextFile.load()
    if args.name not in file.contexts:
        raise file.unknown(args.name)
    file.current = args.name
    file.save()
    emit(f"switched to context '{args.name}' ({file.contexts[args.name].get('address')})")
    return EXIT_OK


def get_contexts_command(args: argparse.Namespace) -> int:
    """``enginectl config get-contexts``: a table, '*' marking the current context."""
    file = ContextFile.load()
    if json_output(args):
        contexts = [_context_json(file, name) for name in file.contexts]
        print_json({"current_context": file.current, "contexts": contexts}, sys.stdout)
        return EXIT_OK
    if not file.contexts:
        emit(
            f"no contexts in {file.path}; add one with: enginectl config set-context NAME "
            "--address HOST:PORT"
        )
        return EXIT_OK
    rows = []
    for name, settings in file.contexts.items():
        context = file.context(name)
        assert context is not None
        rows.append(
            (
                "*" if name == file.current else "",
                name,
                context.address or "",
                context.org or "",
                "yes" if context.tls else "no",
                _token_source(settings),
            )
        )
    print_lines(table(("CURRENT", "NAME", "ADDRESS", "ORG", "TLS", "TOKEN"), rows))
    return EXIT_OK


def _token_kind(settings: dict[str, Any]) -> str:
    """Where a context keeps its token: ``inline``, ``file``, ``env`` or ``none``."""
    if settings.get("token"):
        return "inline"
    if settings.get("token_file"):
        return "file"
    return "env" if settings.get("token_env") else "none"


def _token_source(settings: dict[str, Any]) -> str:
    """Where a context's token is, never the token: ``inline``, ``file F``, ``$VAR``, ``none``."""
    kind = _token_kind(settings)
    if kind == "file":
        return f"file {settings['token_file']}"
    return f"${settings['token_env']}" if kind == "env" else kind


def _context_json(file: ContextFile, name: str) -> dict[str, Any]:
    context = file.context(name)
    assert context is not None
    settings = file.contexts[name]
    data: dict[str, Any] = {
        "name": name,
        "current": name == file.current,
        "address": context.address or "",
        "org": context.org or "",
        "tls": context.tls,
        "ca": context.ca_file or "",
        "token": _token_kind(settings),
        "token_file": context.token_file or "",
        "token_env": context.token_env or "",
    }
    return data


def current_context_command(_: argparse.Namespace) -> int:
    """``enginectl config current-context``."""
    file = ContextFile.load()
    if file.current is None:
        raise CliError(
            f"no current context in {file.path}; choose one with: enginectl config use-context "
            f"NAME (known: {file.known()})"
        )
    emit(file.current)
    return EXIT_OK


def delete_context_command(args: argparse.Namespace) -> int:
    """``enginectl config delete-context NAME``."""
    file = ContextFile.load()
    if args.name not in file.contexts:
        raise file.unknown(args.name)
    del file.contexts[args.name]
    was_current = file.current == args.name
    if was_current:
        file.current = None
    file.save()
    emit(
        f"deleted context '{args.name}'"
        + ("; it was the current one: there is none now" if was_current else "")
    )
    return EXIT_OK
