"""Schedules of an organization, as native Temporal Schedules in its own namespace.

Every run a schedule starts is an ordinary engine run: same workflow type, input (definition
snapshot, validated inputs, org), search attributes and memo, plus the schedule id in the memo
(Temporal itself records it in ``TemporalScheduledById`` and appends the firing time to the
workflow id). A definition version left out is pinned at creation, so the inputs validated now
are the inputs of exactly the definition that will run; updating ``definition_version`` (0: the
latest) re-pins it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, ClassVar, Final

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from engine.context import OrgContext
from engine.definition import DefinitionSource, WorkflowDefinition
from engine.errors import EngineError
from engine.scheduler._spec import Calendar, InvalidScheduleError, Spec, to_temporal_spec
from engine.tenancy import ClientPool, NamespaceResolver, OrgRouter, temporal_refusal
from engine.workflow import RunInput, WebhookFlags, WorkflowFactory, resolve_calls

__all__ = [
    "OVERLAP_POLICIES",
    "ScheduleAlreadyExistsError",
    "ScheduleNotFoundError",
    "ScheduleRequest",
    "ScheduleView",
    "ScheduledRun",
    "Scheduler",
]

_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
OVERLAP_POLICIES: Final = {
    "skip": ScheduleOverlapPolicy.SKIP,
    "buffer_one": ScheduleOverlapPolicy.BUFFER_ONE,
    "buffer_all": ScheduleOverlapPolicy.BUFFER_ALL,
    "cancel_other": ScheduleOverlapPolicy.CANCEL_OTHER,
    "terminate_other": ScheduleOverlapPolicy.TERMINATE_OTHER,
    "allow_all": ScheduleOverlapPolicy.ALLOW_ALL,
}
_POLICY_NAMES: Final = {value: key for key, value in OVERLAP_POLICIES.items()}
_SPEC_MEMO: Final = "engine_schedule"
_BACKFILL_EPSILON: Final = timedelta(milliseconds=1)
UPDATABLE: Final = frozenset(
    {"spec", "inputs", "definition_version", "overlap_policy", "catchup_window", "note"}
)


class ScheduleNotFoundError(EngineError):
    """No schedule with that id in the caller's org."""

    code: ClassVar[str] = "NOT_FOUND"
    reason: ClassVar[str] = "SCHEDULE_NOT_FOUND"


class ScheduleAlreadyExistsError(EngineError):
    """A schedule with that id exists in the org."""

    code: ClassVar[str] = "ALREADY_EXISTS"
    reason: ClassVar[str] = "SCHEDULE_ALREADY_EXISTS"


@dataclass(frozen=True)
class ScheduleRequest:
    """A schedule to create (or the new values of one)."""

    schedule_id: str
    definition_name: str
    definition_version: int | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)
    spec: Spec = field(default_factory=Spec)
    overlap_policy: str = "skip"
    catchup_window: timedelta | None = None
    paused: bool = False
    note: str = ""


@dataclass(frozen=True)
class ScheduledRun:
    """A run a schedule started."""

    scheduled_time: datetime
    actual_time: datetime
    workflow_id: str
    run_id: str


@dataclass(frozen=True)
class ScheduleView:
    """A schedule as the API shows it."""

    schedule_id: str
    definition_name: str
    definition_version: int
    inputs: dict[str, Any]
    spec: Spec
    overlap_policy: str
    catchup_window: timedelta | None
    paused: bool
    note: str
    next_fire_times: list[datetime]
    recent_runs: list[ScheduledRun]
    run_count: int
    running: list[str] = field(default_factory=list)
    """The workflow ids of its runs still running, as the schedule knows them (what its
    overlap policy decides by)."""


class Scheduler:
    """Creates and drives the schedules of an org, in its namespace.

    Args:
        resolver: Maps org ids to namespaces.
        clients: The shared client pool.
        definitions: The definition registry.
        task_queue: The interpreter's task queue.
        lease: Seconds an executor may hold an action of the runs it starts without a
            heartbeat (None: the interpreter's default).
    """

    def __init__(
        self,
        resolver: NamespaceResolver,
        clients: ClientPool,
        definitions: DefinitionSource,
        *,
        task_queue: str = "engine",
        lease: float | None = None,
    ) -> None:
        self.router = OrgRouter(resolver, clients)
        self.webhooks = WebhookFlags()
        self.definitions = definitions
        self.factory = WorkflowFactory(task_queue, lease=lease)

    async def client(self, org: OrgContext) -> Client:
        """The client of the caller's org namespace."""
        return await self.router.client(org)

    async def create(self, org: OrgContext, request: ScheduleRequest) -> ScheduleView:
        """Create a schedule (inputs validated against the definition now).

        Raises:
            InvalidScheduleError: A bad id, spec, policy or unknown definition (field named).
            engine.definition.InputError: The inputs do not fit the definition.
            ScheduleAlreadyExistsError: The id is taken in the org.
        """
        _check_id(request.schedule_id)
        schedule = await self._temporal_schedule(org, request)
        client = await self.client(org)
        try:
            await self._call(
                org, request.schedule_id, client.create_schedule(request.schedule_id, schedule)
            )
        except ScheduleAlreadyRunningError:
            raise ScheduleAlreadyExistsError(
                f"schedule '{request.schedule_id}' already exists in {self.router.where(org)}"
            ) from None
        return await self.get(org, request.schedule_id)

    async def get(self, org: OrgContext, schedule_id: str) -> ScheduleView:
        """The schedule: spec, state, next 5 firing times and recent runs."""
        handle = await self._handle(org, schedule_id)
        description = await self._describe(org, handle)
        return await self._view(org, description)

    async def list_schedules(self, org: OrgContext) -> list[ScheduleView]:
        """Every schedule of the org, sorted by id (without recent runs)."""
        client = await self.client(org)
        views = []
        async for listed in await client.list_schedules():
            try:
                description = await client.get_schedule_handle(listed.id).describe()
            except RPCError as error:
                if error.status == RPCStatusCode.NOT_FOUND:
                    continue  # deleted since it was listed
                raise
            views.append(replace(await self._view(org, description), recent_runs=[]))
        return sorted(views, key=lambda v: v.schedule_id)

    async def update(
        self, org: OrgContext, request: ScheduleRequest, fields: frozenset[str]
    ) -> ScheduleView:
        """Change the fields named in ``fields`` (all updatable ones when empty)."""
        unknown = sorted(fields - UPDATABLE)
        if unknown:
            raise InvalidScheduleError(
                "update_mask",
                f"cannot update {', '.join(unknown)}; updatable: " + ", ".join(sorted(UPDATABLE)),
            )
        wanted = fields or UPDATABLE
        handle = await self._handle(org, request.schedule_id)
        current = await self._view(org, await self._describe(org, handle))
        merged = ScheduleRequest(
            schedule_id=request.schedule_id,
            definition_name=current.definition_name,
            definition_version=(
                request.definition_version
                if "definition_version" in wanted
                else current.definition_version
            ),
            inputs=request.inputs if "inputs" in wanted else current.inputs,
            spec=request.spec if "spec" in wanted else current.spec,
            overlap_policy=(
                request.overlap_policy if "overlap_policy" in wanted else current.overlap_policy
            ),
            catchup_window=(
                request.catchup_window if "catchup_window" in wanted else current.catchup_window
            ),
            paused=current.paused,
            note=request.note if "note" in wanted else current.note,
        )
        schedule = await self._temporal_schedule(org, merged)

        def apply(update: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await self._call(org, request.schedule_id, handle.update(apply))
        return await self.get(org, request.schedule_id)

    async def pause(self, org: OrgContext, schedule_id: str, note: str = "") -> None:
        """Pause the schedule; the note says why."""
        handle = await self._handle(org, schedule_id)
        await self._call(org, schedule_id, handle.pause(note=note or "paused"))

    async def unpause(self, org: OrgContext, schedule_id: str, note: str = "") -> None:
        """Unpause the schedule."""
        handle = await self._handle(org, schedule_id)
        await self._call(org, schedule_id, handle.unpause(note=note or "unpaused"))

    async def trigger(
        self, org: OrgContext, schedule_id: str, overlap_policy: str | None = None
    ) -> None:
        """Start a run now (the schedule's overlap policy unless one is given)."""
        handle = await self._handle(org, schedule_id)
        policy = _policy(overlap_policy, "overlap_policy") if overlap_policy else None
        await self._call(org, schedule_id, handle.trigger(overlap=policy))

    async def backfill(
        self,
        org: OrgContext,
        schedule_id: str,
        start: datetime,
        end: datetime,
        overlap_policy: str | None = None,
    ) -> None:
        """Start the runs the schedule would have started from ``start`` (included) to ``end``
        (excluded), with ``overlap_policy`` (allow all unless given)."""
        if end <= start:
            raise InvalidScheduleError("end_time", "must be after start_time")
        handle = await self._handle(org, schedule_id)
        policy = _policy(overlap_policy or "allow_all", "overlap_policy")
        # Temporal includes both ends of a backfill's range (a firing at exactly ``end`` would
        # run); the API's range is half-open, so that back-to-back ranges never run one twice.
        # Firing times are whole seconds at the finest, so a millisecond less drops only it.
        last = end - _BACKFILL_EPSILON
        await self._call(
            org,
            schedule_id,
            handle.backfill(ScheduleBackfill(start_at=start, end_at=last, overlap=policy)),
        )

    async def delete(self, org: OrgContext, schedule_id: str) -> None:
        """Delete the schedule (its runs go on)."""
        handle = await self._handle(org, schedule_id)
        await self._call(org, schedule_id, handle.delete())

    # -- internals ------------------------------------------------------------------------

    async def _temporal_schedule(self, org: OrgContext, request: ScheduleRequest) -> Schedule:
        spec = to_temporal_spec(request.spec)
        overlap = _policy(request.overlap_policy, "overlap_policy")
        if request.catchup_window is not None and request.catchup_window < timedelta(seconds=10):
            raise InvalidScheduleError("catchup_window", "must be at least 10s")
        definition = await self._definition(org, request)
        called = await resolve_calls(self.definitions, org, definition, pinned=True)
        # Its runs notify the org's webhook if it has one when the schedule is made or changed.
        notify = await self.webhooks.notifies(await self.client(org))
        start = self.factory.prepare(
            definition, request.inputs, org, request.schedule_id, called=called, notify=notify
        )
        stored = {
            "spec": _spec_json(request.spec),
            "definition_name": definition.name,
            "definition_version": definition.version,
        }
        action = ScheduleActionStartWorkflow(
            start.workflow_type,
            start.input,
            id=request.schedule_id,  # Temporal appends the firing time
            task_queue=start.task_queue,
            memo={**start.memo, "schedule_id": request.schedule_id, _SPEC_MEMO: stored},
            typed_search_attributes=start.search_attributes,
        )
        policy = SchedulePolicy(overlap=overlap)
        if request.catchup_window is not None:
            policy = SchedulePolicy(overlap=overlap, catchup_window=request.catchup_window)
        return Schedule(
            action=action,
            spec=spec,
            policy=policy,
            state=ScheduleState(note=request.note or None, paused=request.paused),
        )

    async def _definition(self, org: OrgContext, request: ScheduleRequest) -> WorkflowDefinition:
        """The definition to pin; an unknown (or malformed) name or version names its field."""
        version = request.definition_version or None
        if version is not None and version < 0:
            raise InvalidScheduleError(
                "definition_version", f"must be a version, or 0 for the latest; got {version}"
            )
        try:
            return await self.definitions.get(org, request.definition_name, version)
        except EngineError as error:
            if error.code not in ("NOT_FOUND", "INVALID_ARGUMENT"):
                raise
            failure = str(error)
        field = "definition_name"
        if version is not None:
            try:  # the name is known and only the version is not: say so
                await self.definitions.get(org, request.definition_name, None)
            except EngineError:
                pass
            else:
                field = "definition_version"
        raise InvalidScheduleError(field, failure)

    async def _handle(self, org: OrgContext, schedule_id: str) -> ScheduleHandle:
        _check_id(schedule_id)
        return (await self.client(org)).get_schedule_handle(schedule_id)

    async def _describe(self, org: OrgContext, handle: ScheduleHandle) -> ScheduleDescription:
        description: ScheduleDescription = await self._call(org, handle.id, handle.describe())
        return description

    async def _call(self, org: OrgContext, schedule_id: str, call: Any) -> Any:
        try:
            return await call
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise ScheduleNotFoundError(
                    f"schedule '{schedule_id}' not found in {self.router.where(org)}"
                ) from None
            if error.status == RPCStatusCode.INVALID_ARGUMENT:
                raise InvalidScheduleError("schedule", error.message) from None
            raise temporal_refusal(error, self.router.where(org)) or error from None

    async def _view(self, org: OrgContext, description: ScheduleDescription) -> ScheduleView:
        schedule = description.schedule
        action = schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow)
        client = await self.client(org)
        (run_input,) = await client.data_converter.decode(list(action.args), [RunInput])
        memo = action.memo or {}
        stored_payload = memo.get(_SPEC_MEMO)
        stored = (
            (await client.data_converter.decode([stored_payload]))[0]
            if stored_payload is not None and not isinstance(stored_payload, dict)
            else stored_payload or {}
        )
        info = description.info
        return ScheduleView(
            schedule_id=description.id,
            definition_name=str(stored.get("definition_name", action.workflow.split(":")[0])),
            definition_version=int(
                stored.get("definition_version", action.workflow.split(":")[-1])
            ),
            inputs=dict(run_input.inputs),
            spec=_spec_from_json(stored.get("spec", {})),
            overlap_policy=_POLICY_NAMES.get(schedule.policy.overlap, "skip"),
            catchup_window=schedule.policy.catchup_window,
            paused=schedule.state.paused,
            note=schedule.state.note or "",
            next_fire_times=list(info.next_action_times[:5]),
            recent_runs=[
                ScheduledRun(
                    scheduled_time=recent.scheduled_at,
                    actual_time=recent.started_at,
                    workflow_id=getattr(recent.action, "workflow_id", ""),
                    run_id=getattr(recent.action, "first_execution_run_id", ""),
                )
                for recent in info.recent_actions
            ],
            run_count=info.num_actions,
            running=[getattr(action, "workflow_id", "") for action in info.running_actions],
        )


def _check_id(schedule_id: str) -> None:
    if not _ID.match(schedule_id or ""):
        raise InvalidScheduleError(
            "schedule_id",
            f"invalid schedule id {schedule_id!r}: use 1-100 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        )


def _policy(name: str, where: str) -> ScheduleOverlapPolicy:
    policy = OVERLAP_POLICIES.get(name)
    if policy is None:
        raise InvalidScheduleError(
            where, f"unknown overlap policy {name!r}: use one of {', '.join(OVERLAP_POLICIES)}"
        )
    return policy


def _spec_json(spec: Spec) -> dict[str, Any]:
    return {
        "cron": list(spec.cron),
        "intervals": [[e.total_seconds(), o.total_seconds()] for e, o in spec.intervals],
        "calendars": [asdict(c) for c in spec.calendars],
        "time_zone": spec.time_zone,
        "start_time": spec.start_time.isoformat() if spec.start_time else None,
        "end_time": spec.end_time.isoformat() if spec.end_time else None,
        "jitter": spec.jitter.total_seconds() if spec.jitter is not None else None,
    }


def _spec_from_json(data: Mapping[str, Any]) -> Spec:
    return Spec(
        cron=tuple(data.get("cron", [])),
        intervals=tuple(
            (timedelta(seconds=e), timedelta(seconds=o)) for e, o in data.get("intervals", [])
        ),
        calendars=tuple(Calendar(**c) for c in data.get("calendars", [])),
        time_zone=str(data.get("time_zone") or ""),
        start_time=datetime.fromisoformat(data["start_time"]) if data.get("start_time") else None,
        end_time=datetime.fromisoformat(data["end_time"]) if data.get("end_time") else None,
        jitter=timedelta(seconds=data["jitter"]) if data.get("jitter") is not None else None,
    )
