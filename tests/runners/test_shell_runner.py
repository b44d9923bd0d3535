"""`enginectl work shell`, the reference runner of shell actions, against a real dev server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from engine.config import ClientSettings
from engine.dispatcher import DefinitionRef, WorkflowAlreadyFinishedError
from engine.executor import TIMED_OUT, Executor, ShellRunner
from tests.server.harness import ControlPlaneKit, eventually, expired_token

ENGINECTL = str(Path(sys.executable).with_name("enginectl"))

Runners = Callable[..., ShellRunner]


@pytest.fixture
async def runners(kit: ControlPlaneKit, tmp_path: Path) -> AsyncIterator[Runners]:
    """Start shell runners of `east` under a fresh root (stopped at the end of the test)."""
    tasks: list[asyncio.Task[None]] = []
    executors: list[Executor] = []

    def start(**options: Any) -> ShellRunner:
        executor = Executor(ClientSettings(address=kit.address, token=kit.token("east")))
        executors.append(executor)
        runner = ShellRunner(executor, options.pop("root", tmp_path / "root"), **options)
        runner.root.mkdir(parents=True, exist_ok=True)
        tasks.append(asyncio.create_task(runner.run(wait=5)))
        return runner

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for executor in executors:
        await executor.close()


async def _run(kit: ControlPlaneKit, name: str, **inputs: Any) -> str:
    run = await kit.dispatcher.start(kit.org("east"), DefinitionRef(name), inputs)
    return run.workflow_id


async def _result(kit: ControlPlaneKit, workflow_id: str, timeout: float = 30) -> Any:
    status = await eventually(
        lambda: kit.dispatcher.status(kit.org("east"), workflow_id),
        lambda s: s["status"] in ("completed", "failed", "cancelled"),
        timeout=timeout,
        what=f"run {workflow_id} to end",
    )
    assert status["status"] == "completed", status
    return status["result"]


async def _cancel(kit: ControlPlaneKit, workflow_id: str) -> None:
    with contextlib.suppress(WorkflowAlreadyFinishedError):
        await kit.dispatcher.cancel(kit.org("east"), workflow_id, "test over")


async def test_env_values_with_shell_metacharacters_arrive_as_data(
    kit: ControlPlaneKit, runners: Runners, tmp_path: Path
) -> None:
    runner = runners()
    value = "$(touch pwned) `touch pwned2`; rm -rf / && echo 'q' \"dq\" | cat > pwned3 $HOME *"
    workflow_id = await _run(kit, "echo-value", value=value)
    result = await _result(kit, workflow_id)
    assert result == {"exit_code": 0, "stdout": value, "stderr": ""}
    assert sorted(p.name for p in runner.root.iterdir()) == []  # nothing was created


async def test_a_command_past_its_time_is_killed_and_reported(
    kit: ControlPlaneKit, runners: Runners
) -> None:
    runners(max_time=1.0)
    began = time.monotonic()
    workflow_id = await _run(kit, "slow")
    result = await _result(kit, workflow_id)
    assert result["exit_code"] == TIMED_OUT
    assert result["stdout"] == "started\n"  # killed before "late"
    assert "killed: still running after its timeout of 1s" in result["stderr"]
    assert time.monotonic() - began < 15


async def test_output_is_capped_with_a_marker(kit: ControlPlaneKit, runners: Runners) -> None:
    runners(max_output=1000)
    result = await _result(kit, await _run(kit, "loud"))
    assert result["exit_code"] == 0
    marker, _, kept = result["stdout"].partition("\n")
    assert marker == "[truncated: the first 299,001 of 300,001 bytes were cut]"
    assert kept == "x" * 999 + "\n"
    assert result["stderr"] == "oops\n"


async def test_a_workdir_outside_the_root_is_refused(
    kit: ControlPlaneKit, runners: Runners
) -> None:
    runner = runners()
    inside = await _result(kit, await _run(kit, "where", workdir="/build/a"))
    assert inside["stdout"].strip() == str(runner.root.resolve() / "build" / "a")
    workflow_id = await _run(kit, "where", workdir="../../etc")
    status = await eventually(
        lambda: kit.dispatcher.status(kit.org("east"), workflow_id),
        lambda s: s["status"] == "completed",
        what="the refused run to go on",
    )
    [entry] = [e for e in status["history"] if e["step_id"] == "run"]
    assert "outside the runner's root" in entry["error"]


async def test_cancelling_the_run_kills_the_command(kit: ControlPlaneKit, runners: Runners) -> None:
    runner = runners()
    workflow_id = await _run(kit, "pid-sleep")
    pid_file = runner.root / "pid"
    await eventually(lambda: asyncio.sleep(0, pid_file.exists()), bool, what="the command to start")
    await asyncio.sleep(0.2)
    pid = int(pid_file.read_text())
    assert _alive(pid)
    await kit.dispatcher.cancel(kit.org("east"), workflow_id, "stop it")
    await eventually(
        lambda: asyncio.sleep(0, not _alive(pid)), bool, timeout=15, what="the command killed"
    )


async def test_a_killed_runners_action_goes_to_another_after_its_lease(
    kit: ControlPlaneKit, runners: Runners, tmp_path: Path
) -> None:
    root = tmp_path / "first"
    root.mkdir()
    process = subprocess.Popen(
        [ENGINECTL, "work", "shell", "--root", str(root), "--wait", "5"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")},
            "ENGINE_ADDRESS": kit.address,
            "ENGINE_TOKEN": kit.token("east"),
            "ENGINE_HOME": str(tmp_path),
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    workflow_id = ""
    try:
        workflow_id = await _run(kit, "pid-sleep")
        await eventually(
            lambda: asyncio.sleep(0, (root / "pid").exists()),
            bool,
            timeout=30,
            what="the first runner to start the command",
        )
        os.killpg(process.pid, signal.SIGKILL)  # the runner and its command, at once
        process.wait(10)
        second = runners()
        await eventually(
            lambda: asyncio.sleep(0, (second.root / "pid").exists()),
            bool,
            timeout=30,
            what="another runner to get the action",
        )
        status = await kit.dispatcher.status(kit.org("east"), workflow_id)
        [action] = status["pending_actions"]
        assert action["step_id"] == "run"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        if workflow_id:
            await _cancel(kit, workflow_id)


async def test_a_step_that_runs_on_a_label_goes_to_a_runner_with_it(
    kit: ControlPlaneKit, runners: Runners, tmp_path: Path
) -> None:
    plain = runners(root=tmp_path / "plain")
    workflow_id = await _run(kit, "on-gpu")
    # A runner without the label never takes it: the action keeps waiting, and says why.
    await asyncio.sleep(2)
    status = await kit.dispatcher.status(kit.org("east"), workflow_id)
    [action] = status["pending_actions"]
    assert action["parameters"]["runs_on"] == "gpu"
    gpu = runners(root=tmp_path / "gpu", labels=("gpu",), concurrency=2)
    result = await _result(kit, workflow_id)
    assert result["stdout"].strip() == str(gpu.root.resolve())
    # A labelled runner takes unlabelled steps too: both serve the plain queue.
    roots = {str(plain.root.resolve()), str(gpu.root.resolve())}
    for _ in range(4):
        assert (await _result(kit, await _run(kit, "where")))["stdout"].strip() in roots


def test_work_shell_refuses_a_token_of_another_org(kit: ControlPlaneKit, tmp_path: Path) -> None:
    done = subprocess.run(
        [ENGINECTL, "work", "shell", "--org", "east", "--root", str(tmp_path)],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")},
            "ENGINE_ADDRESS": kit.address,
            "ENGINE_TOKEN": kit.token("west"),
            "ENGINE_HOME": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert "the token is of org 'west'" in done.stderr


async def test_work_shell_says_so_when_the_control_plane_refuses_its_token(
    kit: ControlPlaneKit, tmp_path: Path
) -> None:
    # Not subprocess.run: the control plane answers on this test's event loop.
    process = await asyncio.create_subprocess_exec(
        ENGINECTL,
        "work",
        "shell",
        "--root",
        str(tmp_path),
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")},
            "ENGINE_ADDRESS": kit.address,
            "ENGINE_TOKEN": expired_token("east"),
            "ENGINE_HOME": str(tmp_path),
        },
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert b"the control plane refused: UNAUTHENTICATED" in stderr, stderr


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers: it is dead once it is no longer running.
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        return state != "Z"
    return False
