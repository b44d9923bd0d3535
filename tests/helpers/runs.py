"""Driving interpreter runs from tests: start, wait for actions, submit results."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from temporalio.client import Client, WorkflowHandle

from engine.context import OrgContext
from engine.definition import WorkflowDefinition, load_definition
from engine.workflow import get_workflow_status, start_workflow

TASK_QUEUE = "engine-tests"
ORG = OrgContext(org_id="default", namespace="default")


def unique_id(prefix: str = "run") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def start(
    client: Client,
    definition: str | WorkflowDefinition,
    inputs: Mapping[str, Any] | None = None,
    *,
    workflow_id: str | None = None,
    task_queue: str = TASK_QUEUE,
) -> WorkflowHandle[Any, Any]:
    """Start a run of a definition (YAML text or a loaded one) on the test task queue."""
    loaded = load_definition(definition) if isinstance(definition, str) else definition
    return await start_workflow(
        client,
        loaded,
        inputs,
        org=ORG,
        workflow_id=workflow_id or unique_id(loaded.name),
        task_queue=task_queue,
    )


async def status(client: Client, handle_or_id: WorkflowHandle[Any, Any] | str) -> dict[str, Any]:
    workflow_id = handle_or_id if isinstance(handle_or_id, str) else handle_or_id.id
    return await get_workflow_status(client, workflow_id)


async def wait_until(
    client: Client,
    handle_or_id: WorkflowHandle[Any, Any] | str,
    predicate: Callable[[dict[str, Any]], bool],
    *,
    timeout: float = 20.0,
) -> dict[str, Any]:
    """Poll ``get_status`` until ``predicate`` holds; fail with the last status otherwise."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            last = await status(client, handle_or_id)
        except Exception:  # the run may not have had its first task yet
            last = {}
        if last and predicate(last):
            return last
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition not reached within {timeout}s; last status: {last}")


async def wait_for_action(
    client: Client,
    handle_or_id: WorkflowHandle[Any, Any] | str,
    step_id: str,
    *,
    timeout: float = 20.0,
) -> dict[str, Any]:
    """Wait until the run (or its foreach tree) has a pending action of ``step_id``."""
    found = await wait_until(
        client,
        handle_or_id,
        lambda s: any(a["step_id"] == step_id for a in s["pending_actions"]),
        timeout=timeout,
    )
    return next(a for a in found["pending_actions"] if a["step_id"] == step_id)


async def submit(
    client: Client, action: Mapping[str, Any], result: Any = None, *, error: str | None = None
) -> dict[str, Any]:
    """Submit a result for an action through the update; returns where the run went next."""
    handle = client.get_workflow_handle(action["workflow_id"])
    submission: dict[str, Any] = {"action_id": action["action_id"], "result": result}
    if error is not None:
        submission["error"] = error
    advance: dict[str, Any] = await handle.execute_update("submit_result", submission)
    return advance
