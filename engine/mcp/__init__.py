"""The engine as an MCP server, so that an AI agent drives durable runs with no glue.

Two transports over the same tools (:mod:`engine.mcp._tools`): stdio, run by ``enginectl mcp``
with the CLI's address and token (``claude mcp add engine -- enginectl mcp``), and streamable
HTTP, served by ``engined`` (:class:`McpHttpServer`, bearer tokens, the same org pinning as
gRPC). Every tool call is a call of the gRPC API with the caller's token.
"""

from __future__ import annotations

import socket

from engine.config import ClientSettings
from engine.executor import client_channel
from engine.mcp._caller import DEFAULT_HOLD, Caller, CallRefusedError
from engine.mcp._http import MCP_PATH, McpHttpServer
from engine.mcp._tools import INSTRUCTIONS, build_server

__all__ = [
    "DEFAULT_HOLD",
    "INSTRUCTIONS",
    "MCP_PATH",
    "CallRefusedError",
    "Caller",
    "McpHttpServer",
    "build_server",
    "serve_stdio",
]


async def serve_stdio(settings: ClientSettings, *, hold: float = DEFAULT_HOLD) -> None:
    """Serve the tools over stdio for the settings' token, until the client closes stdin; the
    actions still held for it are given back."""
    channel = client_channel(settings)
    caller = Caller(channel, settings.token, identity=f"mcp/{socket.gethostname()}", hold=hold)
    try:
        await build_server(lambda: caller).run_stdio_async()
    finally:
        await caller.close()
        await channel.close()
