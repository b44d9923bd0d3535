"""The engine's MCP server over streamable HTTP (as engined serves it): bearer tokens, the same
org pinning as gRPC, driven by the MCP SDK's own client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from engine.identity import TokenVerifier
from engine.mcp import McpHttpServer
from tests.mcp.agent import call, drive_agent_task
from tests.server.harness import SECRET, ControlPlaneKit, expired_token

Connect = Callable[[str], AbstractAsyncContextManager[Client]]


@pytest.fixture(scope="module")
async def endpoint(kit: ControlPlaneKit) -> AsyncIterator[McpHttpServer]:
    server = McpHttpServer(kit.address, TokenVerifier(SECRET), host="127.0.0.1", port=0)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def connect(kit: ControlPlaneKit, endpoint: McpHttpServer) -> Connect:
    @asynccontextmanager
    async def connected(org_id: str) -> AsyncIterator[Client]:
        token = kit.token(org_id, subject=f"agent@{org_id}")
        headers = {"Authorization": f"Bearer {token}"}
        async with (
            httpx2.AsyncClient(headers=headers, timeout=60) as http,
            Client(streamable_http_client(endpoint.url, http_client=http)) as client,
        ):
            yield client

    return connected


async def test_an_agent_drives_agent_task_over_http(connect: Connect) -> None:
    async with connect("north") as client:
        outcome = await drive_agent_task(client)
    assert outcome["run"]["status"] == "completed", outcome["run"]
    assert outcome["run"]["result"]["org"] == "north"


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic abc"])
async def test_a_request_without_a_valid_token_is_refused(
    endpoint: McpHttpServer, authorization: str | None
) -> None:
    headers = {"Accept": "application/json, text/event-stream"}
    if authorization:
        headers["Authorization"] = authorization
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    async with httpx2.AsyncClient() as http:
        response = await http.post(endpoint.url, json=body, headers=headers)
    assert response.status_code == 401
    assert "Bearer" in response.headers.get("www-authenticate", "")


async def test_an_expired_token_is_refused(endpoint: McpHttpServer) -> None:
    headers = {"Authorization": f"Bearer {expired_token('north')}"}
    async with httpx2.AsyncClient(headers=headers) as http:
        response = await http.post(
            endpoint.url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        )
    assert response.status_code == 401


async def test_another_orgs_token_sees_nothing_over_http(connect: Connect) -> None:
    async with connect("north") as client:
        started = await call(client, "start_run", definition="hello", inputs={"who": "z"})
    async with connect("south") as other:
        assert (await call(other, "list_definitions"))["definitions"] == []
        assert (await call(other, "list_inbox")).get("pending_actions", []) == []
        seen = await other.call_tool("get_run", {"workflow_id": started["workflow_id"]})
        assert seen.is_error
        refused = await other.call_tool(
            "submit_result",
            {
                "action_id": started["pending_actions"][0]["action_id"],
                "workflow_id": started["workflow_id"],
                "result": None,
            },
        )
        assert refused.is_error
    async with connect("north") as client:
        run = await call(client, "get_run", workflow_id=started["workflow_id"])
        assert run["status"] == "waiting"  # the other org's answer did not reach it
        await call(client, "cancel_run", workflow_id=started["workflow_id"])
