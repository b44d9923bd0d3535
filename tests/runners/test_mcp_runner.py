"""`enginectl work mcp`: mcp_call actions performed with a real MCP server from the package
registry (`mcp-server-time`), and the world-clock example run end to end by both runners."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.config import ClientSettings
from engine.dispatcher import DefinitionRef
from engine.executor import Executor, McpRunner
from tests.server.harness import ControlPlaneKit, eventually

ROOT = Path(__file__).resolve().parents[2]
ENGINECTL = str(Path(sys.executable).with_name("enginectl"))
TIME_SERVER = [sys.executable, "-m", "mcp_server_time", "--local-timezone", "UTC"]

TOOLS = """\
name: time-tools
version: 1
inputs:
  server: {type: string, default: time}
  tool: {type: string, default: get_current_time}
  zone: {type: string, default: UTC}
steps:
  - id: ask
    type: mcp_call
    server: "${{ inputs.server }}"
    tool: "${{ inputs.tool }}"
    params: {timezone: "${{ inputs.zone }}"}
    on_error: continue
    output_to: out
  - {id: done, type: return, value: "${{ state.out }}"}
"""


@pytest.fixture(scope="module")
async def registered(kit: ControlPlaneKit) -> ControlPlaneKit:
    org = kit.org("east")
    texts = [TOOLS, (ROOT / "examples" / "world-clock.yaml").read_text(encoding="utf-8")]
    for text in texts:

        async def register(text: str = text) -> object:
            return await kit.stack.registry.register(org, text)

        await eventually(register, lambda _: True, what="registering a definition")
    return kit


@pytest.fixture
async def mcp_runner(registered: ControlPlaneKit) -> AsyncIterator[None]:
    executor = Executor(ClientSettings(address=registered.address, token=registered.token("east")))
    ready = asyncio.Event()
    task = asyncio.create_task(McpRunner(executor, {"time": TIME_SERVER}).run(wait=5, ready=ready))
    await asyncio.wait_for(ready.wait(), 60)
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await executor.close()


async def _finish(kit: ControlPlaneKit, name: str, **inputs: Any) -> dict[str, Any]:
    org = kit.org("east")
    run = await kit.dispatcher.start(org, DefinitionRef(name), inputs)
    status: dict[str, Any] = await eventually(
        lambda: kit.dispatcher.status(org, run.workflow_id),
        lambda s: s["status"] in ("completed", "failed", "cancelled"),
        timeout=60,
        what=f"{name} to end",
    )
    return status


async def test_a_tool_of_a_real_mcp_server_answers_the_action(
    registered: ControlPlaneKit, mcp_runner: None
) -> None:
    status = await _finish(registered, "time-tools", zone="Asia/Kolkata")
    assert status["status"] == "completed", status
    result = status["result"]
    assert result["timezone"] == "Asia/Kolkata"
    assert result["datetime"].endswith("+05:30")
    assert set(result) == {"timezone", "datetime", "day_of_week", "is_dst"}


@pytest.mark.parametrize(
    ("inputs", "error"),
    [
        ({"zone": "Mars/Olympus"}, "time.get_current_time: Error executing tool"),
        ({"tool": "no_such_tool"}, "time.no_such_tool: Unknown tool: no_such_tool"),
        ({"server": "github"}, "this executor has no MCP server 'github'; it has: time"),
    ],
)
async def test_a_tool_error_is_the_actions_error(
    registered: ControlPlaneKit, mcp_runner: None, inputs: dict[str, str], error: str
) -> None:
    status = await _finish(registered, "time-tools", **inputs)
    assert status["status"] == "completed", status  # on_error: continue
    [entry] = [e for e in status["history"] if e["step_id"] == "ask"]
    assert error in entry["error"], entry


@pytest.fixture
def runners(registered: ControlPlaneKit, tmp_path: Path) -> Iterator[None]:
    """`enginectl work shell` and `enginectl work mcp` as a person starts them."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")},
        "ENGINE_ADDRESS": registered.address,
        "ENGINE_TOKEN": registered.token("east"),
        "ENGINE_HOME": str(tmp_path),
    }
    commands = [
        [ENGINECTL, "work", "shell", "--org", "east", "--root", str(tmp_path), "--wait", "5"],
        [ENGINECTL, "work", "mcp", "--org", "east", "--server", f"time={shlex.join(TIME_SERVER)}"],
    ]
    processes = [
        subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / f"{command[2]}.log").open("w"),
            start_new_session=True,
        )
        for command in commands
    ]
    yield
    for process in processes:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(20)


async def test_the_world_clock_example_runs_end_to_end_on_the_runners(
    registered: ControlPlaneKit, runners: None
) -> None:
    status = await _finish(registered, "world-clock", zone="Asia/Tokyo")
    assert status["status"] == "completed", status
    result = status["result"]
    assert re.fullmatch(r"\d\d:\d\d", result["utc"]), result
    assert result["zone"] == "Asia/Tokyo"
    assert result["there"].endswith("+09:00")
    assert result["there"][11:16] == f"{(int(result['utc'][:2]) + 9) % 24:02d}{result['utc'][2:]}"
    assert result["difference"] == "+9.0h"
