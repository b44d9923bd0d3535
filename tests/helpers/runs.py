"""Driving interpreter runs from tests: start, wait for actions, submit results."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Replayer

from engine.context import OrgContext
from engine.definition import WorkflowDefinition, load_definition, load_definition_file
from engine.dispatcher import DefinitionNotFoundError
from engine.workflow import (
    EngineWorkflow,
    get_workflow_status,
    resolve_calls,
    sandbox_runner,
    start_workflow,
)

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
    """Start a run of a definition (YAML text or a loaded one) on the test task queue; the
    definitions its call steps run are those of ``examples/``."""
    loaded = load_definition(definition) if isinstance(definition, str) else definition
    return await start_workflow(
        client,
        loaded,
        inputs,
        org=ORG,
        workflow_id=workflow_id or unique_id(loaded.name),
        task_queue=task_queue,
        called=await resolve_calls(ExampleDefinitions(), ORG, loaded),
    )


class ExampleDefinitions:
    """The definitions of ``examples/`` as an org's registry (for call steps in tests)."""

    async def get(self, org: OrgContext, name: str, version: int | None) -> WorkflowDefinition:
        path = Path(__file__).resolve().parents[2] / "examples" / f"{name}.yaml"
        if not path.is_file():
            raise DefinitionNotFoundError(f"definition '{name}' is not in examples/")
        found = load_definition_file(path)
        if version and found.version != version:
            raise DefinitionNotFoundError(f"version {version} of definition '{name}' is not there")
        return found

    async def pins(self, org: OrgContext, name: str, version: int) -> dict[str, int]:
        return {}


async def status(client: Client, handle_or_id: WorkflowHandle[Any, Any] | str) -> dict[str, Any]:
    """The run's status, as plain JSON (tests read fields the protocol types do not declare)."""
    workflow_id = handle_or_id if isinstance(handle_or_id, str) else handle_or_id.id
    return cast("dict[str, Any]", await get_workflow_status(client, workflow_id))


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


async def submit_signal(
    client: Client, action: Mapping[str, Any], result: Any = None, *, error: str | None = None
) -> None:
    """Submit a result for an action through the fire-and-forget signal."""
    handle = client.get_workflow_handle(action["workflow_id"])
    submission: dict[str, Any] = {"action_id": action["action_id"], "result": result}
    if error is not None:
        submission["error"] = error
    await handle.signal("submit_result", submission)


async def history_length(handle: WorkflowHandle[Any, Any]) -> int:
    """The number of events in the run's history (to show that nothing was written)."""
    return len([event async for event in handle.fetch_history_events()])


def update_error_message(error: BaseException) -> str:
    """The message a rejected update carries (the validator's, or the handler's, error)."""
    cause = error.__cause__ or getattr(error, "cause", None)
    message = getattr(cause, "message", None) or getattr(error, "message", None)
    return str(message if message is not None else error)


async def list_workflow_ids(client: Client, query: str) -> list[str]:
    """The ids of the runs a visibility query finds (visibility is eventually consistent)."""
    return [execution.id async for execution in client.list_workflows(query)]


async def wait_for_visibility(
    client: Client,
    query: str,
    predicate: Callable[[list[str]], bool],
    *,
    timeout: float = 20.0,
) -> list[str]:
    """Poll a visibility query until ``predicate`` holds for the ids it returns."""
    deadline = time.monotonic() + timeout
    found: list[str] = []
    while time.monotonic() < deadline:
        found = await list_workflow_ids(client, query)
        if predicate(found):
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"visibility query {query!r} not satisfied in {timeout}s: {found}")


async def run_to_end(
    handle: WorkflowHandle[Any, Any], *, timeout: float = 30.0
) -> tuple[Any, BaseException | None]:
    """Wait for a run to close: its result, or the error ``handle.result()`` raised."""
    try:
        return await asyncio.wait_for(handle.result(), timeout), None
    except TimeoutError:
        raise
    except Exception as error:  # the run failed or was cancelled: the caller looks at why
        return None, error


async def assert_replays(client: Client, *workflow_ids: str) -> None:
    """Replay each run's history (as it is now) against the interpreter: no nondeterminism."""
    replayer = Replayer(workflows=[EngineWorkflow], workflow_runner=sandbox_runner(strict=True))
    for workflow_id in workflow_ids:
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        await replayer.replay_workflow(history)
