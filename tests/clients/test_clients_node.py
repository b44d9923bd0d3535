"""A Node.js client, built from proto/ alone with @grpc/proto-loader, drives a run end to end.

Skipped when ``node`` is not installed, or when npm cannot install the two packages (no
registry); the client script is ``engine_client.js`` beside this file.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.server.harness import ControlPlaneKit

HERE = Path(__file__).resolve().parent
PROTO_DIR = HERE.parents[1] / "proto"
PACKAGES = ("@grpc/grpc-js", "@grpc/proto-loader")


async def _run(*command: str, cwd: Path, timeout: float, env: dict[str, str] | None = None) -> Any:
    # Asynchronously: the control plane under test answers on this very event loop.
    process = await asyncio.create_subprocess_exec(
        *command,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process.returncode, stdout.decode(), stderr.decode()


@pytest.fixture(scope="module")
async def node_client(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with engine_client.js and its two npm packages installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None:
        pytest.skip("node is not on PATH")
    if npm is None:
        pytest.skip("node is installed but npm is not: cannot install @grpc/grpc-js")
    workdir = tmp_path_factory.mktemp("node-client")
    (workdir / "package.json").write_text('{"name": "engine-client-test", "private": true}\n')
    try:
        code, _, stderr = await _run(
            npm,
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            *PACKAGES,
            cwd=workdir,
            timeout=120,
        )
    except TimeoutError:
        pytest.skip(f"npm install {' '.join(PACKAGES)} took longer than 120 s")
    if code != 0:
        pytest.skip(f"npm install {' '.join(PACKAGES)} failed (no registry?): {stderr[-500:]}")
    shutil.copy(HERE / "engine_client.js", workdir / "engine_client.js")
    return workdir


async def test_a_node_client_registers_starts_reads_and_answers_a_run(
    plane: ControlPlaneKit, node_client: Path
) -> None:
    node = shutil.which("node")
    assert node is not None
    env = {"PATH": str(Path(node).parent), "ENGINE_PROTO_DIR": str(PROTO_DIR)}

    code, stdout, stderr = await _run(
        node,
        "engine_client.js",
        plane.address,
        plane.token("acme"),
        cwd=node_client,
        timeout=60,
        env=env,
    )

    assert code == 0, stderr
    seen = json.loads(stdout)
    name = seen["registered"]["name"]
    assert seen["registered"] == {
        "name": name,
        "version": 1,
        "created": True,
        "workflow_type": f"{name}:1",
    }
    assert seen["started"]["workflow_type"] == f"{name}:1"
    workflow_id = seen["started"]["workflow_id"]
    assert seen["waiting"] == {
        "status": "RUN_STATUS_WAITING",
        "current_step": "ask",
        "action": {
            "step_id": "ask",
            "type": "ACTION_TYPE_PROMPT",
            "message": "Greet node?",
            "workflow_id": workflow_id,
        },
    }
    assert seen["submitted"] == {"status": "RUN_STATUS_COMPLETED", "result": "hello node"}
    assert seen["finished"] == {
        "status": "RUN_STATUS_COMPLETED",
        "result": "hello node",
        "org_id": "acme",
        "history": [["ask", "STEP_OUTCOME_COMPLETED"], ["done", "STEP_OUTCOME_COMPLETED"]],
    }
    not_found = seen["not_found"]
    assert not_found["code"] == 5  # NOT_FOUND
    assert not_found["details"] == (
        f"run 'no-such-run' not found in org 'acme' (namespace '{plane.namespace('acme')}')"
    )
    assert not_found["rich_details"] == 1  # a google.rpc.Status in grpc-status-details-bin

    # What the Node client did is what a Python client sees.
    status = await plane.dispatcher.status(plane.org("acme"), workflow_id)
    assert (status["status"], status["result"]) == ("completed", "hello node")
