"""What ``engined`` serves beside the gRPC control plane: its HTTP faces (the HTTP/JSON API, the
MCP endpoint) and, for ``engined dev --executors``, the reference executors of the dev org."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.config import ClientSettings
from engine.identity import TokenVerifier

if TYPE_CHECKING:
    from engine.gateway import PlaneFace
    from engine.telemetry.metrics import EngineMetrics

__all__ = ["DevExecutors", "dev_executors", "start_face"]


async def start_face(
    kind: str,
    listen: str | None,
    plane_port: int | None,
    verifier: TokenVerifier,
    *,
    tls: bool,
    metrics: EngineMetrics | None = None,
) -> PlaneFace | None:
    """The HTTP/JSON API (``kind`` "http") or the MCP endpoint ("mcp") on ``listen``
    (``host:port``), or None when it is unset or ``off``; with ``metrics``, the HTTP API's
    requests are counted.

    Raises:
        ValueError: ``listen`` is not ``host:port``, or the plane uses TLS (both reach it over
            plaintext loopback).
    """
    what = {"http": "the HTTP API", "mcp": "the MCP endpoint"}[kind]
    if not listen or listen == "off":
        return None
    if tls:
        raise ValueError(f"{what} needs a plaintext control plane on loopback (no TLS)")
    host, _, port = listen.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"the listen address of {what} must be host:port, got {listen!r}")
    plane = f"127.0.0.1:{plane_port}" if plane_port is not None else None
    face: PlaneFace
    if kind == "http":
        from engine.gateway import HttpApiServer  # Starlette only when it is served

        middleware = metrics.http_middleware if metrics is not None else None
        face = HttpApiServer(plane, host=host, port=int(port), middleware=middleware)
    else:
        from engine.mcp import McpHttpServer  # the MCP SDK only when it is served

        face = McpHttpServer(plane, verifier, host=host, port=int(port))
    await face.start()
    return face


@dataclasses.dataclass
class DevExecutors:
    """The reference executors ``engined dev --executors`` runs for the dev org."""

    root: Path
    servers: dict[str, list[str]]
    tasks: list[asyncio.Task[Any]]
    executor: Any

    def describe(self) -> str:
        return f"shell (under {self.root}), mcp ({', '.join(sorted(self.servers))})"

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.executor.close()


async def dev_executors(settings: ClientSettings, root: Path, extra: Sequence[str]) -> DevExecutors:
    """Start the shell runner and the MCP executor (with the ``time`` server) for the dev org.

    Raises:
        ValueError: An ``--mcp-server`` that is not NAME=COMMAND, or a server that fails.
    """
    from engine.executor import Executor, McpRunner, ShellRunner, parse_server

    servers = {"time": [sys.executable, "-m", "mcp_server_time"]}
    for text in extra:
        name, argv = parse_server(text)
        servers[name] = argv
    root.mkdir(parents=True, exist_ok=True)
    executor = Executor(settings, identity="engined-dev")
    shell = asyncio.create_task(ShellRunner(executor, root).run())
    ready = asyncio.Event()
    mcp = asyncio.create_task(McpRunner(executor, servers).run(ready=ready))
    waiting = asyncio.create_task(ready.wait())
    await asyncio.wait({mcp, waiting}, return_when=asyncio.FIRST_COMPLETED)
    executors = DevExecutors(root, servers, [shell, mcp, waiting], executor)
    if mcp.done():
        await executors.stop()
        raise ValueError(f"the MCP executor did not start: {mcp.exception()}")
    return executors
