"""The MCP server over streamable HTTP, as ``engined`` serves it.

A request needs ``Authorization: Bearer <token>``, a token of the engine (verified here with the
control plane's own verifier: 401 otherwise); each tool call then goes to the control plane on
loopback with that same token, so an org sees only its own runs, exactly as over gRPC.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Final

import grpc
import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import AnyHttpUrl

from engine.errors import EngineError
from engine.identity import TokenVerifier
from engine.mcp._caller import Caller
from engine.mcp._tools import build_server

__all__ = ["MCP_PATH", "McpHttpServer"]

MCP_PATH: Final = "/mcp"
_CALLERS_KEPT: Final = 1024
"""Most callers (tokens) kept at once; the oldest that holds no action goes first."""
_STOP_GRACE: Final = 5


class _Verifier:
    """The MCP SDK's token verifier, answered by the engine's."""

    def __init__(self, verifier: TokenVerifier) -> None:
        self.verifier = verifier

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            claims = self.verifier.verify(f"Bearer {token}")
        except EngineError:
            return None
        return AccessToken(
            token=token, client_id=claims.subject or claims.org_id, scopes=list(claims.roles)
        )


class McpHttpServer:
    """Serves the engine's MCP tools at ``http://HOST:PORT/mcp``.

    It runs on a thread of its own, with its own event loop: HTTP requests never wait behind
    the control plane's work, and the HTTP server does not take the process's signals (the
    caller's loop keeps them).

    Args:
        plane_address: The gRPC control plane (``host:port``; plaintext, on loopback); it may
            be set after :meth:`start`, before the first request.
        verifier: The control plane's token verifier.
        host: Where to listen.
        port: The port (0: any free one; :attr:`port` says which once started).
    """

    def __init__(
        self, plane_address: str | None, verifier: TokenVerifier, *, host: str, port: int
    ) -> None:
        self.plane_address = plane_address
        self.verifier = verifier
        self.host = host
        self.port = port
        self._callers: dict[str, Caller] = {}
        self._channel: grpc.aio.Channel | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        """The endpoint's URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{MCP_PATH}"

    async def start(self) -> None:
        """Listen; returns once requests are taken.

        Raises:
            OSError: It could not listen (the port is taken, say).
        """
        self._thread = threading.Thread(target=self._run, name="engine-mcp-http", daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._failure is not None:
            raise OSError(
                f"the MCP endpoint could not listen on {self.host}:{self.port}: {self._failure}"
            )

    async def stop(self) -> None:
        """Stop taking requests, give back every action held for a caller, close."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, _STOP_GRACE * 2)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported by start() when it had not started yet
            self._failure = error
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        mcp = build_server(
            self._caller,
            token_verifier=_Verifier(self.verifier),
            auth=AuthSettings(issuer_url=AnyHttpUrl("http://localhost"), resource_server_url=None),
        )
        app = mcp.streamable_http_app(streamable_http_path=MCP_PATH, host=self.host)
        config = uvicorn.Config(
            app,
            host=self.host,
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=_STOP_GRACE,
        )
        self._server = uvicorn.Server(config)
        task = asyncio.create_task(self._server.serve())
        try:
            while not self._server.started:
                if task.done():
                    task.result()
                    raise OSError("it stopped before it listened")
                await asyncio.sleep(0.02)
            self.port = self._server.servers[0].sockets[0].getsockname()[1]
            self._ready.set()
            await task
        finally:
            for caller in list(self._callers.values()):
                await caller.close()
            self._callers.clear()
            if self._channel is not None:
                await self._channel.close()

    def _caller(self) -> Caller:
        access = get_access_token()
        if access is None:  # the auth middleware lets none through
            raise PermissionError("no verified token")
        if self._channel is None:
            if self.plane_address is None:
                raise ToolError("the engine is starting: try again in a moment")
            self._channel = grpc.aio.insecure_channel(self.plane_address)
        caller = self._callers.get(access.token)
        if caller is None:
            if len(self._callers) >= _CALLERS_KEPT:
                idle = next((t for t, c in self._callers.items() if not c.claims), None)
                if idle is not None:
                    del self._callers[idle]
            caller = Caller(self._channel, access.token, identity=f"mcp/{access.client_id}")
            self._callers[access.token] = caller
        return caller
