"""The MCP server over streamable HTTP, as ``engined`` serves it.

A request needs ``Authorization: Bearer <token>``, a token of the engine (verified here with the
control plane's own verifier: 401 otherwise); each tool call then goes to the control plane on
loopback with that same token, so an org sees only its own runs, exactly as over gRPC.
"""

from __future__ import annotations

from typing import Any, Final

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import AnyHttpUrl

from engine.errors import EngineError
from engine.gateway import PlaneFace
from engine.identity import TokenVerifier
from engine.mcp._caller import Caller
from engine.mcp._tools import build_server

__all__ = ["MCP_PATH", "McpHttpServer"]

MCP_PATH: Final = "/mcp"
_CALLERS_KEPT: Final = 1024
"""Most callers (tokens) kept at once; the oldest that holds no action goes first."""


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


class McpHttpServer(PlaneFace):
    """Serves the engine's MCP tools at ``http://HOST:PORT/mcp``, on a thread of its own (see
    :class:`~engine.gateway.PlaneFace`).

    Args:
        plane_address: The gRPC control plane (``host:port``; plaintext, on loopback); it may
            be set after :meth:`start`, before the first request.
        verifier: The control plane's token verifier.
        host: Where to listen.
        port: The port (0: any free one; :attr:`port` says which once started).
    """

    path = MCP_PATH

    def __init__(
        self, plane_address: str | None, verifier: TokenVerifier, *, host: str, port: int
    ) -> None:
        self.verifier = verifier
        self._callers: dict[str, Caller] = {}
        super().__init__(plane_address, host=host, port=port, name="engine-mcp-http")

    def app(self) -> Any:
        mcp = build_server(
            self._caller,
            token_verifier=_Verifier(self.verifier),
            auth=AuthSettings(issuer_url=AnyHttpUrl("http://localhost"), resource_server_url=None),
        )
        return mcp.streamable_http_app(streamable_http_path=MCP_PATH, host=self.host)

    async def closed(self) -> None:
        """Give every action held for a caller back, then close."""
        for caller in list(self._callers.values()):
            await caller.close()
        self._callers.clear()
        await super().closed()

    def _caller(self) -> Caller:
        access = get_access_token()
        if access is None:  # the auth middleware lets none through
            raise PermissionError("no verified token")
        try:
            channel = self.channel()
        except RuntimeError as starting:
            raise ToolError(str(starting)) from None
        caller = self._callers.get(access.token)
        if caller is None:
            if len(self._callers) >= _CALLERS_KEPT:
                idle = next((t for t, c in self._callers.items() if not c.claims), None)
                if idle is not None:
                    del self._callers[idle]
            caller = Caller(channel, access.token, identity=f"mcp/{access.client_id}")
            self._callers[access.token] = caller
        return caller
