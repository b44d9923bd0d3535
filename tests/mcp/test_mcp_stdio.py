"""`enginectl mcp`: the engine's MCP server over stdio, driven by the MCP SDK's own client."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters, types

from tests.mcp.agent import call, drive_agent_task, structured
from tests.server.harness import ControlPlaneKit

ENGINECTL = str(Path(sys.executable).with_name("enginectl"))

Connect = Callable[..., AbstractAsyncContextManager[Client]]


@pytest.fixture
def connect(kit: ControlPlaneKit, tmp_path: Path) -> Connect:
    """An MCP client of `enginectl mcp` run for an org's token (the CLI's environment)."""

    @asynccontextmanager
    async def connected(org_id: str, **options: Any) -> AsyncIterator[Client]:
        server = StdioServerParameters(
            command=ENGINECTL,
            args=["mcp"],
            env={
                "ENGINE_ADDRESS": kit.address,
                "ENGINE_TOKEN": kit.token(org_id, subject=f"agent@{org_id}"),
                "ENGINE_HOME": str(tmp_path),
            },
        )
        async with Client(server, **options) as client:
            yield client

    return connected


async def test_an_agent_drives_agent_task_to_its_end(connect: Connect) -> None:
    async with connect("north") as client:
        outcome = await drive_agent_task(client)
    run = outcome["run"]
    assert run["status"] == "completed", run
    assert run["result"] == {
        "status": "keep_open",
        "pull_request": "https://git.example/acme/app/pull/7",
        "fix_rounds": 1,
        "tests_green": True,
        "org": "north",
    }
    # The delegate actions arrived with their instructions and context, ready to act on.
    [plan] = outcome["asked"]["plan"]
    assert "acme/app" in plan["instruction"] and "add retries" in plan["instruction"]
    assert plan["context"]["repository"] == "acme/app"
    [fix] = outcome["asked"]["fix"]
    assert fix["instruction"].startswith("Round 1:")


async def test_a_wrong_shaped_answer_is_a_tool_error_that_says_the_shape(connect: Connect) -> None:
    async with connect("north") as client:
        started = await call(client, "start_run", definition="confirm-and-build")
        workflow_id = started["workflow_id"]
        [confirm] = started["pending_actions"]
        assert confirm["expected_result"] == "true or false"
        refused = await client.call_tool(
            "submit_result",
            {"action_id": confirm["action_id"], "workflow_id": workflow_id, "result": "yes"},
        )
        assert refused.is_error
        assert "INVALID_ARGUMENT: a confirm prompt takes true or false" in _text(refused)
        # Nothing changed: the run still waits for the same action; the right answer goes in.
        run = await call(client, "get_run", workflow_id=workflow_id)
        assert [a["action_id"] for a in run["pending_actions"]] == [confirm["action_id"]]
        await call(
            client,
            "submit_result",
            action_id=confirm["action_id"],
            workflow_id=workflow_id,
            result=True,
        )
        taken = await call(client, "take_action", agent="", action_type="shell", wait_seconds=10)
        action_id = taken["action"]["action_id"]
        assert taken["expected_result"].startswith('an object {"exit_code"')
        refused = await client.call_tool(
            "submit_result", {"action_id": action_id, "result": {"exit": 0}}
        )
        assert refused.is_error and "exit_code" in _text(refused), _text(refused)
        # Still held: the corrected answer is taken.
        answer = {"exit_code": 0, "stdout": "built", "stderr": ""}
        await call(client, "submit_result", action_id=action_id, result=answer)
        run = await call(client, "get_run", workflow_id=workflow_id)
        assert run["status"] == "completed" and run["result"] == 0, run


def _text(result: Any) -> str:
    return str(result.content[0].text)


async def test_another_orgs_token_sees_nothing(connect: Connect) -> None:
    async with connect("north") as client:
        started = await call(client, "start_run", definition="hello", inputs={"who": "y"})
    async with connect("south") as other:
        assert structured(await other.call_tool("list_definitions", {}))["definitions"] == []
        inbox = await call(other, "list_inbox")
        assert inbox.get("pending_actions", []) == []
        seen = await other.call_tool("get_run", {"workflow_id": started["workflow_id"]})
        assert seen.is_error and "NOT_FOUND" in _text(seen)
        taken = await call(other, "take_action", agent="@planner", wait_seconds=0.5)
        assert taken == {"action": None}
    async with connect("north") as client:
        await call(client, "cancel_run", workflow_id=started["workflow_id"])


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_prompt_is_asked_to_the_person_through_elicitation(
    connect: Connect, mode: str
) -> None:
    asked: list[tuple[str, dict[str, Any]]] = []
    replies = iter(
        [
            types.ElicitResult(action="decline"),
            types.ElicitResult(action="accept", content={"approve": True}),
            types.ElicitResult(action="accept", content={"choice": "2"}),
        ]
    )

    async def person(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestFormParams)
        asked.append((params.message, params.requested_schema))
        return next(replies)

    async with connect("north", mode=mode, elicitation_callback=person) as client:
        started = await call(client, "start_run", definition="confirm-and-build")
        workflow_id = started["workflow_id"]
        [confirm] = started["pending_actions"]
        declined = await call(
            client, "ask_person", workflow_id=workflow_id, action_id=confirm["action_id"]
        )
        assert declined == {"answered": False, "action": "decline"}
        approved = await call(
            client, "ask_person", workflow_id=workflow_id, action_id=confirm["action_id"]
        )
        assert approved["answered"] is True and approved["answer"] is True
        assert [a["step_id"] for a in approved["pending_actions"]] == ["build"]
        assert asked[0][0] == "Build it?"
        assert asked[0][1]["properties"]["approve"]["type"] == "boolean"
        await call(client, "cancel_run", workflow_id=workflow_id)

        picked = await call(client, "start_run", definition="pick-one")
        [pick] = picked["pending_actions"]
        done = await call(
            client, "ask_person", workflow_id=picked["workflow_id"], action_id=pick["action_id"]
        )
        assert done["status"] == "completed" and done["result"] == 2  # the option, not its text
        assert asked[-1][1]["properties"]["choice"]["enum"] == ["a", "2", "c"]
        # Not a prompt: refused with what it is.
        agent = await call(
            client,
            "start_run",
            definition="agent-task",
            inputs={"repository": "acme/app", "task": "t"},
        )
        [plan] = agent["pending_actions"]
        refused = await client.call_tool(
            "ask_person", {"workflow_id": agent["workflow_id"], "action_id": plan["action_id"]}
        )
        assert refused.is_error and "is a delegate, not a prompt" in _text(refused)
        await call(client, "cancel_run", workflow_id=agent["workflow_id"])
