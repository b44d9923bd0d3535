"""``mcp``: the engine as an MCP server over stdio, for an AI agent's MCP client.

``claude mcp add engine -- enginectl mcp`` gives Claude the engine's tools (list and describe
definitions, start and read runs, take and answer actions, send events, cancel) with the CLI's
address and token: the agent sees what the token's org sees, and nothing else. Nothing but the
protocol is written to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from engine.cli.enginectl._common import (
    EXIT_OK,
    Subcommands,
    add_common_options,
    client_settings,
    positive_float,
)

__all__ = ["register"]


def register(commands: Subcommands) -> None:
    """Add ``mcp``."""
    mcp = commands.add_parser(
        "mcp",
        help="serve the engine's tools to an AI agent over MCP (stdio)",
        description=(
            "Serve the engine as an MCP server on stdin/stdout, with this CLI's address and "
            "token (ENGINE_ADDRESS, ENGINE_TOKEN, .engine/dev.env, or the flags). Add it to an "
            "agent with: claude mcp add engine -- enginectl mcp. An action the agent takes is "
            "held for it (its lease kept) until it answers, gives it back, or --hold passes."
        ),
    )
    add_common_options(mcp, top=False)
    mcp.add_argument(
        "--hold",
        type=positive_float,
        default=3600.0,
        metavar="SECONDS",
        help="give back an action taken but not answered after this long (default 3600)",
    )
    mcp.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    """Serve until the client closes stdin."""
    from engine.mcp import serve_stdio  # the MCP SDK only for this command

    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    settings = client_settings(args)
    asyncio.run(serve_stdio(settings, hold=args.hold))
    return EXIT_OK
