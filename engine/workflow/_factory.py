"""Turning a definition, inputs and an organization into a Temporal run, and reading it back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from temporalio.client import Client, WorkflowHandle
from temporalio.common import TypedSearchAttributes, WorkflowIDReusePolicy

from engine.context import OrgContext
from engine.definition import (
    DefinitionError,
    DefinitionSource,
    Problem,
    WorkflowDefinition,
    call_problems,
    calls_of,
)
from engine.errors import EngineError
from engine.protocol import GET_STATUS, RunStatus
from engine.workflow._search import search_attributes
from engine.workflow._types import Called, RunInput

__all__ = [
    "MAX_CALL_DEPTH",
    "RunStart",
    "WorkflowFactory",
    "find_called",
    "get_workflow_status",
    "resolve_calls",
    "start_workflow",
]

MAX_CALL_DEPTH: Final = 8
"""How deep definitions may call one another (a run carries every definition it may call)."""


@dataclass(frozen=True)
class RunStart:
    """Everything Temporal needs to start one run (for start, update-with-start, schedules).

    Attributes:
        workflow_type: ``"{name}:{version}"``.
        input: The interpreter's input (definition snapshot, validated inputs, org).
        workflow_id: The id the run gets.
        task_queue: The interpreter's task queue.
        search_attributes: The engine's search attributes at start.
        memo: Definition hash and org id, readable without running a query.
    """

    workflow_type: str
    input: RunInput
    workflow_id: str
    task_queue: str
    search_attributes: TypedSearchAttributes
    memo: dict[str, Any]


class WorkflowFactory:
    """Prepares runs of definitions on one task queue.

    One interpreter serves every definition: a run's input carries the definition's
    canonical JSON and hash, so new definitions and versions need no worker restart.

    Args:
        task_queue: The interpreter's task queue.
        lease: Seconds an executor may hold an action of these runs without a heartbeat
            (None: the interpreter's default).
    """

    def __init__(self, task_queue: str = "engine", *, lease: float | None = None) -> None:
        self.task_queue = task_queue
        self.lease = lease

    def prepare(
        self,
        definition: WorkflowDefinition,
        inputs: Mapping[str, Any] | None,
        org: OrgContext,
        workflow_id: str,
        *,
        called: dict[str, Called] | None = None,
        notify: bool = False,
        trace: dict[str, str] | None = None,
    ) -> RunStart:
        """Validate the inputs (filling defaults) and build the start of a run.

        Args:
            called: The definitions its call steps run (:func:`resolve_calls`).
            notify: Send each action that starts waiting to the org's webhook.
            trace: The trace context of the call starting the run (its actions carry it).

        Raises:
            engine.definition.InputError: The inputs do not match the definition's schema.
        """
        validated = definition.validate_inputs(inputs)
        run_input = RunInput(
            definition=definition.canonical_json(),
            definition_hash=definition.content_hash,
            inputs=validated,
            org=org.to_json(),
            lease=self.lease,
            called=called or None,
            notify=notify,
            trace=trace or None,
        )
        return RunStart(
            workflow_type=definition.workflow_type,
            input=run_input,
            workflow_id=workflow_id,
            task_queue=self.task_queue,
            search_attributes=search_attributes(org.org_id, definition.name, "running"),
            memo={"definition_hash": definition.content_hash, "org_id": org.org_id},
        )


async def find_called(
    definitions: DefinitionSource | None,
    org: OrgContext,
    definition: WorkflowDefinition,
    pins: Mapping[str, int] | None = None,
    trail: tuple[str, ...] = (),
) -> dict[str, WorkflowDefinition]:
    """The definition each call step calls (its version, else its pin, else the latest).

    Args:
        pins: The versions pinned when ``definition`` was registered, by step id.
        trail: The names of the definitions calling this one (``definition``'s included).

    Raises:
        engine.definition.DefinitionError: A called definition is not registered, is the
            caller itself (directly or through ``trail``), or does not take the step's inputs
            (every problem, located in the caller's text).
    """
    found: dict[str, WorkflowDefinition | str] = {}
    for step in calls_of(definition):
        if step.definition == definition.name:
            continue  # call_problems says so
        if step.definition in trail or len(trail) >= MAX_CALL_DEPTH:
            found[step.id] = (
                f"definition '{step.definition}' calls back into "
                f"{' -> '.join(trail)}: definitions may not call one another in a cycle"
                if step.definition in trail
                else f"definitions may call one another at most {MAX_CALL_DEPTH} deep"
            )
            continue
        if definitions is None:
            found[step.id] = "call steps need the org's definition registry"
            continue
        try:
            found[step.id] = await definitions.get(
                org, step.definition, step.version or (pins or {}).get(step.id)
            )
        except EngineError as error:
            if error.code != "NOT_FOUND":
                raise
            found[step.id] = f"{error}: register it first"
    problems: list[Problem] = call_problems(definition, found)
    if problems:
        raise DefinitionError(problems)
    return {step_id: callee for step_id, callee in found.items() if not isinstance(callee, str)}


async def resolve_calls(
    definitions: DefinitionSource | None,
    org: OrgContext,
    definition: WorkflowDefinition,
    *,
    pinned: bool = False,
    _trail: tuple[str, ...] = (),
) -> dict[str, Called]:
    """The definitions a run of ``definition`` may call, by call step, at any depth.

    A step's version is its own, else the one pinned when the caller was registered
    (``pinned``: the definition is a registered one), else the latest.

    Raises:
        engine.definition.DefinitionError: A called definition is not registered, is the
            caller itself (directly or through others), or does not take the step's inputs
            (every problem, located in the caller's text).
    """
    if next(calls_of(definition), None) is None:
        return {}  # most definitions: nothing to look up on the way to a start
    pins: Mapping[str, int] = {}
    if pinned and definitions is not None:
        pins = await definitions.pins(org, definition.name, definition.version)
    trail = (*_trail, definition.name)
    called: dict[str, Called] = {}
    for step_id, callee in (await find_called(definitions, org, definition, pins, trail)).items():
        called[step_id] = {
            "definition": callee.canonical_json(),
            "hash": callee.content_hash,
            "called": await resolve_calls(definitions, org, callee, pinned=True, _trail=trail),
        }
    return called


async def start_workflow(
    client: Client,
    definition: WorkflowDefinition,
    inputs: Mapping[str, Any] | None,
    *,
    org: OrgContext,
    workflow_id: str,
    task_queue: str = "engine",
    called: dict[str, Called] | None = None,
) -> WorkflowHandle[Any, Any]:
    """Start a run of ``definition`` and return its handle (``called``: the definitions its
    call steps run, see :func:`resolve_calls`).

    Raises:
        engine.definition.InputError: The inputs do not match the definition's schema.
        temporalio.exceptions.WorkflowAlreadyStartedError: The id is taken by a running run.
    """
    start = WorkflowFactory(task_queue).prepare(definition, inputs, org, workflow_id, called=called)
    return await client.start_workflow(
        start.workflow_type,
        start.input,
        id=start.workflow_id,
        task_queue=start.task_queue,
        search_attributes=start.search_attributes,
        memo=start.memo,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )


async def get_workflow_status(
    client: Client, workflow_id: str, run_id: str | None = None
) -> RunStatus:
    """The ``get_status`` query of a run: status, step, pending actions, history, state."""
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    status: RunStatus = await handle.query(GET_STATUS)
    return status
