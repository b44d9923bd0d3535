"""An "agent" that drives the agent-task example through the engine's MCP tools only: it
discovers the tools, starts a run, takes each delegate action for its agent names, answers the
person's prompts and the CI runner's shell actions the same way, and reads the result."""

from __future__ import annotations

from typing import Any

from mcp import Client
from mcp.types import CallToolResult

TOOLS = {
    "list_definitions",
    "describe_definition",
    "start_run",
    "get_run",
    "take_action",
    "submit_result",
    "release_action",
    "list_inbox",
    "send_event",
    "cancel_run",
}

ANSWERS: dict[str, Any] = {
    "plan": {"summary": "Add retries to the client", "files": ["client.py"], "risky": False},
    "approve_plan": True,
    "implement": {"branch": "retries", "pr_url": "https://git.example/acme/app/pull/7"},
    "fix": {"pushed": True},
    "report": None,
    "decide": "keep_open",
}


def structured(result: CallToolResult) -> dict[str, Any]:
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict), result
    return result.structured_content


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    return structured(await client.call_tool(tool, arguments))


async def drive_agent_task(client: Client) -> dict[str, Any]:
    """Run agent-task to its end; returns the final get_run and what each step was asked."""
    listed = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert set(listed) >= TOOLS, set(listed)
    assert all(listed[name].description for name in TOOLS)
    described = await call(client, "describe_definition", name="agent-task")
    steps = {step["id"]: step for step in described["steps"]}
    assert steps["plan"]["agent"] == "@planner"
    assert described["inputs"]["task"]["required"] is True

    started = await call(
        client,
        "start_run",
        definition="agent-task",
        inputs={"repository": "acme/app", "task": "add retries"},
    )
    workflow_id = started["workflow_id"]
    asked: dict[str, list[dict[str, Any]]] = {}
    tests_run = 0
    for _ in range(40):
        run = await call(client, "get_run", workflow_id=workflow_id)
        if run["status"] in ("completed", "failed", "cancelled"):
            return {"run": run, "asked": asked}
        for action in run.get("pending_actions", []):
            step_id = action["step_id"]
            if action["type"] == "delegate":
                agent = action["parameters"]["agent"]
                taken = await call(client, "take_action", agent=agent, wait_seconds=10)
                assert taken["action"] is not None, f"nothing for {agent}"
                assert taken["action"]["action_id"] == action["action_id"]
                assert taken["expected_result"]
                asked.setdefault(step_id, []).append(taken["action"]["parameters"])
                await call(
                    client,
                    "submit_result",
                    action_id=action["action_id"],
                    result=ANSWERS[step_id],
                )
            elif action["type"] == "shell":
                taken = await call(client, "take_action", agent="", action_type="shell")
                assert taken["action"] is not None
                tests_run += 1
                exit_code = 1 if tests_run == 1 else 0  # red once: the fixer gets a round
                await call(
                    client,
                    "submit_result",
                    action_id=taken["action"]["action_id"],
                    result={"exit_code": exit_code, "stdout": "", "stderr": "1 failed"},
                )
            else:  # a person's prompt, answered by id
                asked.setdefault(step_id, []).append(action["parameters"])
                await call(
                    client,
                    "submit_result",
                    action_id=action["action_id"],
                    workflow_id=workflow_id,
                    result=ANSWERS[step_id],
                )
    raise AssertionError(f"agent-task did not end: {run}")
