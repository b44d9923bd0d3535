"""The reference executor of ``mcp_call`` actions (``enginectl work mcp``).

It starts the MCP servers it is given (``NAME=COMMAND``, each a stdio server run as a
subprocess, kept for the executor's life) and performs each claimed ``mcp_call`` action by
calling the tool the action names, with its params, on the server its ``server`` names (or the
only server, when it names none). The tool's structured result is the action's result (its text
content, parsed as JSON when it is JSON, when it has no structured content); a tool error, an
unknown server or tool, or a server that fails is the action's error, so the step's retry and
``on_error`` apply.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from engine.executor._executor import ClaimedAction, Executor, report_or_log

__all__ = ["McpRunner", "parse_server"]

log = logging.getLogger("engine.executor.mcp")

_CALL_TIMEOUT: Final = 300.0


def parse_server(text: str) -> tuple[str, list[str]]:
    """``NAME=COMMAND ARGS...`` as (name, argv).

    Raises:
        ValueError: Not of that form.
    """
    name, equals, command = text.partition("=")
    if not equals or not name.strip() or not command.strip():
        raise ValueError(f"expected NAME=COMMAND, got {text!r}")
    try:
        argv = shlex.split(command)
    except ValueError as error:
        raise ValueError(f"the command of server {name!r} does not parse: {error}") from None
    return name.strip(), argv


@dataclass
class McpRunner:
    """Performs the ``mcp_call`` actions of one org with the given MCP servers.

    Attributes:
        executor: The connection to the control plane (its token names the org).
        servers: Server name -> the command line that runs it (stdio).
        concurrency: Actions held (and being called) at once.
    """

    executor: Executor
    servers: Mapping[str, list[str]]
    concurrency: int = 4

    async def run(self, *, wait: float = 30.0, ready: asyncio.Event | None = None) -> None:
        """Start the servers, then claim and perform actions until cancelled.

        Raises:
            RuntimeError: A server could not be started (or did not answer its handshake).
        """
        from mcp import Client, StdioServerParameters

        async with contextlib.AsyncExitStack() as stack:
            clients: dict[str, Any] = {}
            for name, argv in self.servers.items():
                parameters = StdioServerParameters(
                    command=argv[0], args=argv[1:], env=_server_environment()
                )
                try:
                    clients[name] = await stack.enter_async_context(Client(parameters))
                except Exception as error:
                    raise RuntimeError(
                        f"MCP server {name!r} ({shlex.join(argv)}): {error}"
                    ) from None
                log.info("MCP server %s started", name)
            if ready is not None:
                ready.set()

            async def perform(claimed: ClaimedAction) -> None:
                await self.perform(claimed, clients)

            await self.executor.perform_all(
                "mcp_call", perform, concurrency=self.concurrency, wait=wait
            )

    async def perform(self, claimed: ClaimedAction, clients: Mapping[str, Any]) -> None:
        """Call the action's tool and report its result or its error."""
        parameters = claimed.parameters
        name = parameters.get("server") or (next(iter(clients)) if len(clients) == 1 else None)
        tool = str(parameters.get("tool", ""))
        client = clients.get(name) if isinstance(name, str) else None
        if client is None:
            have = ", ".join(sorted(clients)) or "none"
            wanted = f"MCP server {name!r}" if name else "an MCP server (the step names none)"
            await report_or_log(
                claimed, claimed.fail(f"this executor has no {wanted}; it has: {have}")
            )
            return
        arguments = parameters.get("params") or {}
        call = asyncio.create_task(
            client.call_tool(tool, arguments, read_timeout_seconds=_CALL_TIMEOUT)
        )
        stopped = asyncio.create_task(claimed.stopped.wait())
        done, _ = await asyncio.wait({call, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if call not in done:
            call.cancel()
            await claimed.abandon()
            return
        try:
            result = call.result()
        except Exception as error:  # a JSON-RPC error (unknown tool), or the server died
            await report_or_log(claimed, claimed.fail(f"{name}.{tool}: {_message(error)}"))
            return
        if result.is_error:
            await report_or_log(claimed, claimed.fail(f"{name}.{tool}: {_content_text(result)}"))
            return
        await report_or_log(claimed, claimed.complete(_value(result)))


def _server_environment() -> dict[str, str]:
    """What a server inherits: the runner's environment but its engine token."""
    return {k: v for k, v in os.environ.items() if k != "ENGINE_TOKEN"}


def _value(result: Any) -> Any:
    if result.structured_content is not None:
        return result.structured_content
    text = _content_text(result)
    try:
        return json.loads(text)
    except ValueError:
        return text


def _content_text(result: Any) -> str:
    return "\n".join(str(getattr(item, "text", "")) for item in result.content).strip()


def _message(error: Exception) -> str:
    return str(getattr(error, "message", "") or error) or type(error).__name__
