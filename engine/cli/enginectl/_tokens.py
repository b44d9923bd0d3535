"""``token create``: sign a token locally (no server needed)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Final

from engine.cli.enginectl._client import CliError
from engine.cli.enginectl._common import EXIT_OK, Subcommands, add_output_option, json_output
from engine.cli.enginectl._output import emit, print_json
from engine.config import ServerSettings
from engine.errors import EngineError

__all__ = ["SECRET_FILE", "register"]

SECRET_FILE: Final = "secret"
"""The HS256 secret ``engined dev`` keeps in its home directory (``.engine/secret``)."""


def register(commands: Subcommands) -> None:
    """Add ``token`` and its commands."""
    token = commands.add_parser("token", help="issue tokens", description="Issue bearer tokens.")
    token_commands = token.add_subparsers(title="commands", metavar="COMMAND", required=True)
    create = token_commands.add_parser(
        "create",
        help="sign a token for an organization",
        description="Sign an HS256 token with --secret, ENGINE_TOKEN_SECRET, or the secret "
        "a dev engine keeps in its home ($ENGINE_HOME/secret, by default .engine/secret: run "
        "it where 'engined dev' runs), and print it.",
    )
    add_output_option(create, top=False)
    create.set_defaults(handler=create_token)
    create.add_argument("--org", required=True, help="the org the token speaks for")
    create.add_argument("--admin", action="store_true", help="grant the org's admin role")
    create.add_argument(
        "--role",
        action="append",
        default=[],
        metavar="ROLE",
        help="grant a role (repeatable): viewer (read only), admin, platform (provision orgs)",
    )
    create.add_argument("--subject", help="who the token speaks for (the 'sub' claim)")
    create.add_argument(
        "--ttl",
        type=_ttl,
        default=3600,
        metavar="TTL",
        help="lifetime: seconds or a duration such as 15m, 1h, 7d (default 1h)",
    )
    create.add_argument("--secret", help="the HS256 secret")


def _ttl(text: str) -> int:
    """Seconds (``3600``) or a duration (``1h``, ``15m``, ``7d``) as whole seconds."""
    if text.isdigit():
        seconds = int(text)
    else:
        from engine.definition import parse_duration  # the definition language: only here

        try:
            seconds = int(parse_duration(text).total_seconds())
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be at least one second, got {text!r}")
    return seconds


def _secret(args: argparse.Namespace) -> str:
    if args.secret:
        return str(args.secret)
    settings = ServerSettings.from_env()
    if settings.token_secret:
        return settings.token_secret
    # No secret given: the one a dev engine keeps in its home (engined dev writes it at its
    # first start, mode 0600, and keeps it across restarts so its tokens stay valid).
    home = Path(settings.home)
    path = home / SECRET_FILE
    missing = ""
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        secret = ""
        missing = (
            f"no {home.absolute()} here"
            if not home.is_dir()
            else f"no {SECRET_FILE} in {home.absolute()} (has engined dev run there?)"
        )
    except (OSError, UnicodeDecodeError) as error:
        secret = ""
        reason = error.strerror if isinstance(error, OSError) else str(error)
        missing = f"cannot read {path}: {reason or error}"
    if not secret:
        raise CliError(
            "no token secret: set ENGINE_TOKEN_SECRET, or run it where engined dev keeps its "
            f"home (ENGINE_HOME={settings.home}): {missing or f'{path} is empty'}"
        )
    return secret


def create_token(args: argparse.Namespace) -> int:
    """``enginectl token create --org ORG``: sign a token and print it."""
    from engine.identity import issue_token  # PyJWT: only for this command

    secret = _secret(args)
    roles = list(dict.fromkeys((["admin"] if args.admin else []) + list(args.role)))
    try:
        token = issue_token(
            secret, args.org, roles=roles, ttl_seconds=args.ttl, subject=args.subject or None
        )
    except (EngineError, ValueError) as error:
        raise CliError(str(error)) from None
    if json_output(args):
        print_json(
            {
                "token": token,
                "org": args.org,
                "roles": roles,
                "subject": args.subject or "",
                "ttl_seconds": args.ttl,
            },
            sys.stdout,
        )
    else:
        emit(token)
    return EXIT_OK
