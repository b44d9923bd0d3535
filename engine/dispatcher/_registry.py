"""Registered definitions, stored in each org's own namespace (see engine.workflow._registry).

Versions never change once registered, so this process caches them for ever; any number of
control-plane replicas see the same registry because it lives in Temporal. Which version is
the latest can change: it is cached for :data:`LATEST_CACHED` seconds, and a registration
through this process updates it at once (another replica's registration is seen within that
time), so an unpinned start costs no call to Temporal.
"""

from __future__ import annotations

import builtins
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any, ClassVar, Final

from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WithStartWorkflowOperation,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError as TemporalAlreadyStarted
from temporalio.service import RPCError, RPCStatusCode

from engine.context import OrgContext
from engine.definition import WORKFLOW_NAME, Problem, WorkflowDefinition, calls_of
from engine.dispatcher._errors import (
    DefinitionNotFoundError,
    InvalidRequestError,
    retrieve_start_error,
    translate,
)
from engine.dispatcher._parsing import check_off_loop, load_off_loop
from engine.errors import EngineError
from engine.tenancy import ClientPool, NamespaceResolver, OrgRouter
from engine.workflow import (
    ALL_VERSIONS,
    GET_VERSION,
    LIST_VERSIONS,
    REGISTRY_WORKFLOW_TYPE,
    DefinitionRegistryWorkflow,
    RegistryInput,
    find_called,
    registry_workflow_id,
    search_attributes,
)

__all__ = [
    "LATEST_CACHED",
    "DefinitionRegistry",
    "DefinitionVersionConflictError",
    "RegisteredDefinition",
    "load_off_loop",
]

_CALL: Final = re.compile(r"\bcall\b")
"""Text that may hold a call step (only then is the definition loaded here as well)."""
LATEST_CACHED: Final = 5.0
"""Seconds the latest version of a definition is taken from this process's cache."""


class DefinitionVersionConflictError(EngineError):
    """Other content is already registered under this name and version."""

    code: ClassVar[str] = "ALREADY_EXISTS"
    reason: ClassVar[str] = "DEFINITION_VERSION_CONFLICT"


@dataclass(frozen=True)
class RegisteredDefinition:
    """One registered version of a definition.

    Attributes:
        name: The definition's name.
        version: Its version.
        content_hash: sha256 of its canonical form.
        description: Its description.
        yaml: The YAML text as registered ("" in listings).
        create_time: When it was registered (ISO-8601), if known.
        calls: The versions its ``call`` steps without one were pinned to (by step id): the
            latest of each called definition when it was registered.
    """

    name: str
    version: int
    content_hash: str
    description: str
    yaml: str
    create_time: str | None
    calls: dict[str, int] = field(default_factory=dict)

    @property
    def workflow_type(self) -> str:
        """The Temporal workflow type of its runs."""
        return f"{self.name}:{self.version}"


class DefinitionRegistry:
    """Registers and reads definitions of an org; the :class:`~engine.definition.DefinitionSource`
    of the dispatcher and the scheduler.

    Args:
        resolver: Maps org ids to namespace targets.
        clients: The shared client pool.
        task_queue: The task queue of the registry workflows (the interpreter's).
        rpc_timeout: Bound on each Temporal call.
    """

    def __init__(
        self,
        resolver: NamespaceResolver,
        clients: ClientPool,
        *,
        task_queue: str = "engine",
        rpc_timeout: timedelta = timedelta(seconds=10),
    ) -> None:
        self.router = OrgRouter(resolver, clients)
        self.task_queue = task_queue
        self.rpc_timeout = rpc_timeout
        self._cache: dict[tuple[str, str, int], tuple[RegisteredDefinition, WorkflowDefinition]]
        self._cache = {}
        # (namespace, name) -> when the latest version was read, and its version.
        self._latest: dict[tuple[str, str], tuple[float, int]] = {}

    async def register(
        self, org: OrgContext, yaml_text: str, source: str = "<request>"
    ) -> tuple[RegisteredDefinition, bool, tuple[Problem, ...]]:
        """Register a version; the same content again is a no-op.

        Returns:
            The registered definition, whether this call created it, and its warnings.

        Raises:
            engine.definition.DefinitionError: The YAML is invalid (every problem, located).
            DefinitionVersionConflictError: Other content holds this name and version.
        """
        definition = await check_off_loop(yaml_text, source)
        record: dict[str, Any] = {
            "name": definition.name,
            "version": definition.version,
            "content_hash": definition.content_hash,
            "description": definition.description or "",
            "yaml": yaml_text,
        }
        if _CALL.search(yaml_text):
            pins = await self._pin_calls(org, await load_off_loop(yaml_text, source))
            if pins:
                record["calls"] = pins
        client = await self.router.client(org)
        registry_id = registry_workflow_id(definition.name)
        with translate(self.router.where(org), registry_id):
            try:
                outcome = await self._add(
                    client, org, definition.name, record, RegistryInput(definition.name)
                )
            except TemporalAlreadyStarted:
                # Its registry was ended from outside the engine (a registry never ends on its
                # own): a new one carries on with every version the last one held, so that a
                # (name, version) never takes other content.
                versions = await self._versions_of_ended(client, org, registry_id)
                carried = RegistryInput(definition.name, versions)
                outcome = await self._add(client, org, definition.name, record, carried)
        registered = _registered(outcome["version"])
        latest = self._latest.get((self.router.target(org).namespace, definition.name))
        if latest is not None and latest[1] < registered.version:
            self._latest[(self.router.target(org).namespace, definition.name)] = (
                time.monotonic(),
                registered.version,
            )
        return registered, bool(outcome["created"]), definition.warnings

    async def _pin_calls(self, org: OrgContext, definition: WorkflowDefinition) -> dict[str, int]:
        """Check the definition's call steps against what they call, and pin the version of
        those that name none to the latest now.

        Raises:
            engine.definition.DefinitionError: A called definition is not registered, is the
                definition itself, or does not take the step's inputs.
        """
        found = await find_called(self, org, definition, trail=(definition.name,))
        return {
            step.id: found[step.id].version
            for step in calls_of(definition)
            if step.version is None and step.id in found
        }

    async def pins(self, org: OrgContext, name: str, version: int) -> dict[str, int]:
        """The versions the definition's unversioned call steps were pinned to, by step id."""
        return dict((await self.lookup(org, name, version))[0].calls)

    async def _add(
        self,
        client: Client,
        org: OrgContext,
        name: str,
        record: dict[str, Any],
        registry: RegistryInput,
    ) -> dict[str, Any]:
        """Add a version to the registry of ``name``, starting it if there is none.

        A first registry is started only where no registry ever was (a closed one is refused,
        with TemporalAlreadyStarted); one that carries versions over replaces a closed one.
        """
        start = WithStartWorkflowOperation(
            DefinitionRegistryWorkflow.run,
            registry,
            id=registry_workflow_id(name),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=(
                WorkflowIDReusePolicy.ALLOW_DUPLICATE
                if registry.versions
                else WorkflowIDReusePolicy.REJECT_DUPLICATE
            ),
            task_queue=self.task_queue,
            search_attributes=search_attributes(org.org_id, name),
        )
        try:
            outcome: dict[str, Any] = await client.execute_update_with_start_workflow(
                DefinitionRegistryWorkflow.add_version,
                record,
                start_workflow_operation=start,
                rpc_timeout=self.rpc_timeout,
            )
        except WorkflowUpdateFailedError as error:
            cause = error.cause
            if getattr(cause, "type", None) == "VersionConflict":
                raise DefinitionVersionConflictError(
                    str(getattr(cause, "message", cause))
                ) from None
            raise
        finally:
            retrieve_start_error(start)
        return outcome

    async def _versions_of_ended(
        self, client: Client, org: OrgContext, registry_id: str
    ) -> dict[str, dict[str, Any]]:
        """Every version an ended registry held: asked of it, or read from its history when
        it cannot answer (it was ended before it ever ran): what its input carried, plus each
        version an update added."""
        handle = client.get_workflow_handle(registry_id)
        try:
            versions: dict[str, dict[str, Any]] = await self.router.query(
                org, handle, ALL_VERSIONS, rpc_timeout=self.rpc_timeout
            )
            return versions
        except (RPCError, WorkflowQueryFailedError):
            pass
        versions = {}
        converter = client.data_converter
        async for event in handle.fetch_history_events(rpc_timeout=self.rpc_timeout):
            if event.HasField("workflow_execution_started_event_attributes"):
                payloads = event.workflow_execution_started_event_attributes.input.payloads
                [carried] = await converter.decode(payloads[:1])
                versions.update(carried.get("versions") or {})
            elif event.HasField("workflow_execution_update_accepted_event_attributes"):
                request = event.workflow_execution_update_accepted_event_attributes.accepted_request
                [record] = await converter.decode(request.input.args.payloads[:1])
                key = str(record["version"])
                stamp = event.event_time.ToDatetime(tzinfo=UTC).isoformat()
                versions.setdefault(key, {**record, "create_time": stamp})
        return versions

    async def get(self, org: OrgContext, name: str, version: int | None) -> WorkflowDefinition:
        """The loaded definition (the latest version when ``version`` is None or 0)."""
        return (await self.lookup(org, name, version))[1]

    async def get_registered(
        self, org: OrgContext, name: str, version: int | None
    ) -> RegisteredDefinition:
        """The registered record, YAML included."""
        return (await self.lookup(org, name, version))[0]

    async def lookup(
        self, org: OrgContext, name: str, version: int | None
    ) -> tuple[RegisteredDefinition, WorkflowDefinition]:
        """Both the record and the loaded definition (the latest one's for a few seconds)."""
        _check_name(name)
        namespace = self.router.target(org).namespace
        client = await self.router.client(org)
        handle = client.get_workflow_handle(registry_workflow_id(name))
        if not version:
            latest = self._latest.get((namespace, name))
            if latest is not None and time.monotonic() - latest[0] < LATEST_CACHED:
                version = latest[1]
            else:
                described = await self._latest_of(handle, namespace, name)
                if described is not None and (namespace, name, described) in self._cache:
                    version = described  # loaded already: no need to ask the registry
        if version:
            cached = self._cache.get((namespace, name, version))
            if cached is not None:
                return cached
        try:
            record = await self.router.query(
                org, handle, GET_VERSION, version or 0, rpc_timeout=self.rpc_timeout
            )
        except (RPCError, RPCTimeoutOrCancelledError) as error:
            if isinstance(error, RPCError) and error.status == RPCStatusCode.NOT_FOUND:
                record = None
            else:
                # The registry cannot answer now (no worker, or Temporal is away): the latest
                # version it last gave still starts runs, which need a worker to go on anyway.
                known = self._latest.get((namespace, name)) if not version else None
                cached = self._cache.get((namespace, name, known[1])) if known else None
                if cached is not None:
                    return cached
                with translate(self.router.where(org), None):
                    raise
        if record is None:
            which = f"version {version} of definition" if version else "definition"
            raise DefinitionNotFoundError(
                f"{which} '{name}' is not registered in org '{org.org_id}'"
            )
        registered = _registered(record)
        if not version:
            self._latest[(namespace, name)] = (time.monotonic(), registered.version)
            cached = self._cache.get((namespace, name, registered.version))
            if cached is not None:  # the latest is still the one cached: no need to load it
                return cached
        definition = await load_off_loop(registered.yaml, f"{name}:{registered.version}")
        return self._remember(org, registered, definition)

    async def _latest_of(
        self, handle: WorkflowHandle[Any, Any], namespace: str, name: str
    ) -> int | None:
        """The latest version from the registry's memo (a describe: no worker needs to answer,
        so a dormant org's start does not wait for one twice), or None when it cannot say."""
        try:
            described = await handle.describe(rpc_timeout=self.rpc_timeout)
            memo = await described.memo()
        except (RPCError, RPCTimeoutOrCancelledError):
            return None  # the query below says what is wrong
        if described.status != WorkflowExecutionStatus.RUNNING or "latest_version" not in memo:
            return None
        version = int(memo["latest_version"])
        self._latest[(namespace, name)] = (time.monotonic(), version)
        return version

    async def versions(self, org: OrgContext, name: str) -> builtins.list[RegisteredDefinition]:
        """Every version of one definition, oldest first (without YAML)."""
        _check_name(name)
        client = await self.router.client(org)
        handle = client.get_workflow_handle(registry_workflow_id(name))
        try:
            records = await self.router.query(
                org, handle, LIST_VERSIONS, rpc_timeout=self.rpc_timeout
            )
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise DefinitionNotFoundError(
                    f"definition '{name}' is not registered in org '{org.org_id}'"
                ) from None
            with translate(self.router.where(org), None):
                raise
        return [_registered({**r, "yaml": ""}) for r in records]

    async def latest(self, org: OrgContext) -> builtins.list[RegisteredDefinition]:
        """The latest version of every definition, sorted by name (one visibility call)."""
        client = await self.router.client(org)
        query = f"WorkflowType = '{REGISTRY_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'"
        out: list[RegisteredDefinition] = []
        with translate(self.router.where(org), None):
            async for execution in client.list_workflows(query, rpc_timeout=self.rpc_timeout):
                memo = await execution.memo()
                if "latest_version" not in memo:
                    continue  # created, but its first version is still being added
                out.append(
                    RegisteredDefinition(
                        name=execution.id.removeprefix("definition/"),
                        version=int(memo["latest_version"]),
                        content_hash=str(memo["latest_hash"]),
                        description=str(memo.get("description", "")),
                        yaml="",
                        create_time=memo.get("latest_create_time"),
                    )
                )
        out.sort(key=lambda d: d.name)
        return out

    def _remember(
        self, org: OrgContext, registered: RegisteredDefinition, definition: WorkflowDefinition
    ) -> tuple[RegisteredDefinition, WorkflowDefinition]:
        namespace = self.router.target(org).namespace
        entry = (registered, definition)
        self._cache[(namespace, registered.name, registered.version)] = entry
        return entry


def _check_name(name: str) -> None:
    if WORKFLOW_NAME.fullmatch(name) is None:
        raise InvalidRequestError(
            f"invalid definition name {name!r}: use lowercase letters, digits and '-', "
            "starting with a letter or digit (at most 63 characters)"
        )


def _registered(record: dict[str, Any]) -> RegisteredDefinition:
    return RegisteredDefinition(
        name=str(record["name"]),
        version=int(record["version"]),
        content_hash=str(record["content_hash"]),
        description=str(record.get("description") or ""),
        yaml=str(record.get("yaml") or ""),
        create_time=record.get("create_time"),
        calls={str(k): int(v) for k, v in (record.get("calls") or {}).items()},
    )
