"""An isolation matrix: every rpc of the engine's services, sent with foreign and forged
credentials at the runs, definition and schedule of one org, the victim.

The rpcs come from the protobuf descriptors of ``SERVICE_NAMES``, and their requests are built
from the descriptors of their input messages, so a new rpc (or a new field naming a run, an
action, a definition or a schedule) is in the matrix without an edit here. Wherever a request
has a field that names something, it names the victim's: its run ids, action ids, step,
definition, schedule, org id, a claim token naming its action. Each request goes out with
every credential an intruder could hold:

- tokens of another org (no role, ``admin``, ``viewer``): whatever the answer's code, nothing
  of the victim's comes back (its ids, unless the request sent them; the secret in its inputs;
  its namespace; its definition's hash);
- forged, expired, malformed or missing tokens: UNAUTHENTICATED, always;
- a ``viewer`` token, of the victim's org too: whatever is not a read is PERMISSION_DENIED;
- the victim org's member and admin tokens on OrganizationService: PERMISSION_DENIED
  (organizations are the platform's).

No call ends in INTERNAL, and afterwards the victim's runs, definition and schedule are as they
were: same status, pending actions and status version, same Temporal history.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import grpc
import jwt
from google.protobuf import descriptor_pool, message_factory, struct_pb2, text_format
from google.protobuf.descriptor import (
    FieldDescriptor,
    MethodDescriptor,
    ServiceDescriptor,
)
from google.protobuf.message import Message
from google.rpc import status_pb2
from grpc_status import rpc_status
from temporalio.service import RPCError

from engine.api.v1 import (
    definition_service_pb2 as definitions_pb,
)
from engine.api.v1 import (
    definition_service_pb2_grpc as definitions_grpc,
)
from engine.api.v1 import organization_service_pb2, resources_pb2
from engine.api.v1 import (
    schedule_service_pb2 as schedules_pb,
)
from engine.api.v1 import (
    schedule_service_pb2_grpc as schedules_grpc,
)
from engine.api.v1 import (
    workflow_service_pb2 as workflows_pb,
)
from engine.api.v1 import (
    workflow_service_pb2_grpc as workflows_grpc,
)
from engine.server import SERVICE_NAMES
from engine.server._links import PUBLIC_LINK_METHODS
from tests.server.harness import (
    SECRET,
    ControlPlaneKit,
    ask_yaml,
    bearer,
    eventually,
    expired_token,
    unique,
)

VICTIM: Final = "acme"
INTRUDER: Final = "globex"
READS: Final = ("Get", "List", "Watch", "Validate")
"""What a viewer token may call: the methods whose names start so."""
PLATFORM_SERVICES: Final = frozenset(
    {organization_service_pb2.DESCRIPTOR.services_by_name["OrganizationService"].full_name}
)
MARKER: Final = "victim-secret-" + uuid.uuid4().hex
"""In the victim's inputs, so in its runs' status, state and pending actions: no intruder
sends it, so an answer holding it took it from the victim's data."""
CALL_TIMEOUT: Final = 10.0
STREAM_TIMEOUT: Final = 3.0
SPAN: Final = timedelta(seconds=1)
"""A request's waits and timeouts: a long poll ends soon, a step's timeout would fire soon."""
LONG_SPAN: Final = timedelta(hours=1)
"""A request's other durations (a schedule's catchup window, an org's retention)."""
PARALLEL: Final = 16
CRON: Final = "0 0 1 1 *"
UNSET_SUFFIXES: Final = ("page_token", "agent")
"""Cursors and filters a caller leaves empty: a value would only be refused or narrow the
answer."""
FOREIGN_CODES: Final = frozenset(
    {
        grpc.StatusCode.OK,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
)
"""What another org's caller may get back (an OK answer holding nothing of the victim's)."""


# -- the rpcs, from the descriptors ----------------------------------------------------------


@dataclass(frozen=True)
class Rpc:
    """One method of one of the engine's services."""

    service: ServiceDescriptor
    method: MethodDescriptor

    @property
    def name(self) -> str:
        return f"{self.service.name}.{self.method.name}"

    @property
    def path(self) -> str:
        return f"/{self.service.full_name}/{self.method.name}"

    @property
    def reads(self) -> bool:
        return self.method.name.startswith(READS)

    @property
    def platform_only(self) -> bool:
        return self.service.full_name in PLATFORM_SERVICES

    @property
    def by_link(self) -> bool:
        """Authorized by an answer link in the request, not by the token."""
        return self.path in PUBLIC_LINK_METHODS


def every_rpc() -> list[Rpc]:
    """Every method of every service the control plane serves, as its descriptors list them."""
    pool = descriptor_pool.Default()
    rpcs = []
    for name in SERVICE_NAMES:
        service = pool.FindServiceByName(name)
        rpcs.extend(Rpc(service, method) for method in service.methods)
    return rpcs


# -- the victim ------------------------------------------------------------------------------


@dataclass(frozen=True)
class VictimRun:
    """One of the victim's runs, waiting on its prompt, as it was before the matrix."""

    workflow_id: str
    run_id: str
    action_id: str
    step_id: str
    workflow: resources_pb2.Workflow
    history: int


@dataclass(frozen=True)
class Victim:
    """What the victim org holds, as it was before the matrix."""

    namespace: str
    definition: resources_pb2.Definition
    schedule: schedules_pb.Schedule
    runs: tuple[VictimRun, ...]
    enums: dict[str, int]
    """An enum value the victim's data holds, by enum type (a run's status, an action's type)."""

    def secrets(self) -> tuple[str, ...]:
        """What no intruder sends: in an answer, it came from the victim's data."""
        return (MARKER, self.namespace, self.definition.content_hash)

    def identifiers(self) -> tuple[str, ...]:
        """The victim's names, which intruders send: in an answer only when the request had
        them (an error echoing the id it was asked about)."""
        names = [self.definition.name, self.schedule.schedule_id]
        for run in self.runs:
            names += [run.workflow_id, run.run_id, run.action_id]
        return tuple(names)


def _json(value: dict[str, Any]) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(value)
    return message


async def _history(kit: ControlPlaneKit, workflow_id: str, run_id: str) -> int:
    """How many events the run's Temporal history holds."""
    client = await kit.stack.client(VICTIM)
    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    return len([event async for event in handle.fetch_history_events()])


async def _settled_history(kit: ControlPlaneKit, workflow_id: str, run_id: str) -> int:
    """The history's length once it stops growing (the run has taken its last task)."""

    async def twice() -> tuple[int, int]:
        first = await _history(kit, workflow_id, run_id)
        await asyncio.sleep(0.3)
        return first, await _history(kit, workflow_id, run_id)

    lengths = await eventually(twice, lambda pair: pair[0] == pair[1], what="a settled history")
    return lengths[1]


async def _waiting(
    workflows: workflows_grpc.WorkflowServiceStub, owner: Any, workflow_id: str
) -> resources_pb2.Workflow:
    answer = await eventually(
        lambda: workflows.GetWorkflow(
            workflows_pb.GetWorkflowRequest(workflow_id=workflow_id), metadata=owner
        ),
        lambda got: (
            got.workflow.status == resources_pb2.RUN_STATUS_WAITING
            and len(got.workflow.pending_actions) == 1
        ),
        what=f"run {workflow_id} waiting on its prompt",
    )
    workflow: resources_pb2.Workflow = answer.workflow
    return workflow


def _enums(message: Message, found: dict[str, int]) -> None:
    """Collect the enum values ``message`` holds (not inside well-known types)."""
    for descriptor, value in message.ListFields():
        values = list(value) if descriptor.is_repeated else [value]
        if descriptor.type == FieldDescriptor.TYPE_ENUM:
            for number in values:
                found.setdefault(descriptor.enum_type.full_name, number)
        elif descriptor.type == FieldDescriptor.TYPE_MESSAGE and not (
            descriptor.message_type.full_name.startswith("google.")
        ):
            for inner in values:
                _enums(inner, found)


async def open_victim(kit: ControlPlaneKit) -> Victim:
    """Register the victim's definition, start two runs that wait on its prompt, create a
    paused schedule, and record it all."""
    channel = kit.channel()
    definitions = definitions_grpc.DefinitionServiceStub(channel)
    workflows = workflows_grpc.WorkflowServiceStub(channel)
    schedules = schedules_grpc.ScheduleServiceStub(channel)
    owner = kit.auth(VICTIM, roles=["admin"], subject="victim-owner")
    name = unique("victim-plan")
    inputs = _json({"who": MARKER})
    registered = await definitions.RegisterDefinition(
        definitions_pb.RegisterDefinitionRequest(yaml=ask_yaml(name)), metadata=owner
    )
    started = [
        await workflows.StartWorkflow(
            workflows_pb.StartWorkflowRequest(
                definition_name=name, workflow_id=unique("victim-run"), inputs=inputs
            ),
            metadata=owner,
        )
        for _ in range(2)
    ]
    created = await schedules.CreateSchedule(
        schedules_pb.CreateScheduleRequest(
            schedule_id=unique("victim-schedule"),
            definition_name=name,
            inputs=inputs,
            spec=schedules_pb.ScheduleSpec(cron=[CRON]),
            paused=True,
            note="the victim's own",
        ),
        metadata=owner,
    )
    runs = []
    for start in started:
        await _waiting(workflows, owner, start.workflow_id)
        history = await _settled_history(kit, start.workflow_id, start.run_id)
        workflow = await _waiting(workflows, owner, start.workflow_id)
        (action,) = workflow.pending_actions
        runs.append(
            VictimRun(
                workflow_id=start.workflow_id,
                run_id=start.run_id,
                action_id=action.action_id,
                step_id=action.step_id,
                workflow=workflow,
                history=history,
            )
        )
    enums: dict[str, int] = {}
    for run in runs:
        _enums(run.workflow, enums)
    _enums(created.schedule, enums)
    return Victim(
        namespace=kit.namespace(VICTIM),
        definition=registered.definition,
        schedule=created.schedule,
        runs=tuple(runs),
        enums=enums,
    )


def _stable(schedule: schedules_pb.Schedule) -> schedules_pb.Schedule:
    """The schedule without what changes with time alone."""
    copy = schedules_pb.Schedule()
    copy.CopyFrom(schedule)
    copy.ClearField("next_fire_times")
    return copy


async def victim_changes(kit: ControlPlaneKit, victim: Victim) -> list[str]:
    """How the victim's runs, definition and schedule differ from before the matrix, and what
    its org holds that it did not."""
    channel = kit.channel()
    definitions = definitions_grpc.DefinitionServiceStub(channel)
    workflows = workflows_grpc.WorkflowServiceStub(channel)
    schedules = schedules_grpc.ScheduleServiceStub(channel)
    owner = kit.auth(VICTIM)
    changes: list[str] = []

    async def read(what: str, call: Any) -> Any:
        try:
            return await call
        except grpc.aio.AioRpcError as error:
            changes.append(f"{what}: {error.code().name} {error.details()!r}")
            return None

    for run in victim.runs:
        got = await read(
            f"run {run.workflow_id}",
            workflows.GetWorkflow(
                workflows_pb.GetWorkflowRequest(workflow_id=run.workflow_id), metadata=owner
            ),
        )
        if got is not None and got.workflow != run.workflow:
            before, now = run.workflow, got.workflow
            changes.append(
                f"run {run.workflow_id}: status {before.status} v{before.status_version} "
                f"(run {before.run_id}, actions {[a.action_id for a in before.pending_actions]}) "
                f"became {now.status} v{now.status_version} (run {now.run_id}, actions "
                f"{[a.action_id for a in now.pending_actions]}):\n{before}\n->\n{now}"
            )
        try:
            history = await _history(kit, run.workflow_id, run.run_id)
        except RPCError as error:
            changes.append(f"run {run.workflow_id}: its history is gone: {error}")
        else:
            if history != run.history:
                changes.append(
                    f"run {run.workflow_id}: its Temporal history went from {run.history} to "
                    f"{history} events"
                )
    got = await read(
        "definition",
        definitions.GetDefinition(
            definitions_pb.GetDefinitionRequest(name=victim.definition.name), metadata=owner
        ),
    )
    if got is not None and got.definition != victim.definition:
        changes.append(f"definition changed: {victim.definition} -> {got.definition}")
    got = await read(
        "schedule",
        schedules.GetSchedule(
            schedules_pb.GetScheduleRequest(schedule_id=victim.schedule.schedule_id),
            metadata=owner,
        ),
    )
    if got is not None and _stable(got.schedule) != _stable(victim.schedule):
        changes.append(f"schedule changed: {victim.schedule} -> {got.schedule}")
    # Nothing new in the victim's org either: no run, definition or schedule of an intruder's.
    got = await read(
        "runs",
        workflows.ListWorkflows(
            workflows_pb.ListWorkflowsRequest(include_children=True), metadata=owner
        ),
    )
    if got is not None:
        ids = sorted(w.workflow_id for w in got.workflows)
        if ids != sorted(run.workflow_id for run in victim.runs):
            changes.append(f"the victim's org holds other runs: {ids}")
    got = await read(
        "definitions",
        definitions.ListDefinitions(definitions_pb.ListDefinitionsRequest(), metadata=owner),
    )
    if got is not None and [d.name for d in got.definitions] != [victim.definition.name]:
        changes.append(f"the victim's org holds other definitions: {got.definitions}")
    got = await read(
        "schedules",
        schedules.ListSchedules(schedules_pb.ListSchedulesRequest(), metadata=owner),
    )
    if got is not None and [s.schedule_id for s in got.schedules] != [victim.schedule.schedule_id]:
        changes.append(f"the victim's org holds other schedules: {got.schedules}")
    return changes


# -- requests, filled from the descriptors ---------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """How requests are filled: with which of the victim's runs, and which other values.

    Attributes:
        label: Names the variant in reports.
        run: The victim's run whose ids fill the request; None for the empty request.
        victim_enums: Enums take the victim's values (its run's status, its action's type);
            otherwise the first value after the unspecified one.
        flag: Every bool field's value; without it, fields named ``error`` are filled too.
        claim_org: The org a forged claim token names.
    """

    label: str
    run: VictimRun | None
    victim_enums: bool = True
    flag: bool = True
    claim_org: str = VICTIM


@dataclass(frozen=True)
class Probe:
    """One request of one rpc, and everything it sent (what an answer may echo)."""

    rpc: Rpc
    variant: str
    request: Message
    sent: bytes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Filler:
    """Fills a request message field by field, from each field's name and type."""

    def __init__(
        self, kit: ControlPlaneKit, victim: Victim, variant: Variant, yaml: str, package: str
    ) -> None:
        assert variant.run is not None
        self.kit = kit
        # Messages of the request's own package are filled too, field by field (a schedule,
        # its spec); well-known types get values of their own.
        self.package = package
        self.victim = victim
        self.variant = variant
        self.run = variant.run
        self.yaml = yaml
        self.sent: list[str] = []

    def fill(self, message: Message, depth: int = 0) -> None:
        """Set every field that can be: one member of each oneof (its first)."""
        taken: set[str] = set()
        for descriptor in message.DESCRIPTOR.fields:
            oneof = descriptor.containing_oneof
            if oneof is not None and oneof.full_name in taken:
                continue
            if self._set(message, descriptor, depth) and oneof is not None:
                taken.add(oneof.full_name)

    def _set(self, message: Message, descriptor: FieldDescriptor, depth: int) -> bool:
        if descriptor.type == FieldDescriptor.TYPE_MESSAGE:
            if descriptor.is_repeated:
                return False
            inner = getattr(message, descriptor.name)
            self._message(inner, descriptor.name, depth)
            return message.HasField(descriptor.name)
        value = self._scalar(descriptor)
        if value is None:
            return False
        if descriptor.is_repeated:
            getattr(message, descriptor.name).append(value)
        else:
            setattr(message, descriptor.name, value)
        return True

    def _message(self, inner: Message, name: str, depth: int) -> None:
        kind = inner.DESCRIPTOR.full_name
        if kind == "google.protobuf.Struct":
            inner.update({"who": "intruder", "times": 2})  # type: ignore[attr-defined]
        elif kind == "google.protobuf.Value":
            inner.bool_value = True  # type: ignore[attr-defined]
        elif kind == "google.protobuf.Duration":
            waits = "wait" in name or "timeout" in name
            inner.FromTimedelta(SPAN if waits else LONG_SPAN)  # type: ignore[attr-defined]
        elif kind == "google.protobuf.Timestamp":
            now = datetime.now(UTC)
            at = now - timedelta(hours=1) if name.startswith("start") else now
            inner.FromDatetime(at)  # type: ignore[attr-defined]
        elif inner.DESCRIPTOR.file.package == self.package and depth < 3:
            self.fill(inner, depth + 1)
        # Other well-known types (a FieldMask among them: empty, it means every field) stay
        # unset.

    def _scalar(self, descriptor: FieldDescriptor) -> Any:
        name = descriptor.name
        if descriptor.type == FieldDescriptor.TYPE_STRING:
            return self._text(name)
        if descriptor.type == FieldDescriptor.TYPE_BOOL:
            return self.variant.flag
        if descriptor.type == FieldDescriptor.TYPE_ENUM:
            enum = descriptor.enum_type
            if self.variant.victim_enums and enum.full_name in self.victim.enums:
                return self.victim.enums[enum.full_name]
            numbers = [value.number for value in enum.values if value.number]
            return numbers[0] if numbers else None
        if descriptor.cpp_type in (
            FieldDescriptor.CPPTYPE_INT32,
            FieldDescriptor.CPPTYPE_INT64,
            FieldDescriptor.CPPTYPE_UINT32,
            FieldDescriptor.CPPTYPE_UINT64,
        ) and name.endswith("version"):
            return self.victim.definition.version
        return None  # other numbers and bytes: their defaults

    def _text(self, name: str) -> str | None:
        run, victim = self.run, self.victim
        if name.endswith("claim_token"):
            return self._claim_token()
        named = {
            "workflow_id": run.workflow_id,
            "run_id": run.run_id,
            "action_id": run.action_id,
            "step_id": run.step_id,
            "definition_name": victim.definition.name,
            "schedule_id": victim.schedule.schedule_id,
            "org_id": VICTIM,
        }
        for suffix, value in named.items():
            if name.endswith(suffix):
                return value
        if name == "name":
            return victim.definition.name
        if name.endswith(UNSET_SUFFIXES):
            return None
        if name.endswith("yaml"):
            return self.yaml
        if name == "error":
            return None if self.variant.flag else "the intruder's failure"
        if name == "request_id":
            return unique("intruder-request")
        plausible = {"query": f"WorkflowId = '{run.workflow_id}'", "cron": CRON, "time_zone": "UTC"}
        return plausible.get(name, "isolation-matrix")

    def _claim_token(self) -> str:
        """A claim token in the engine's format naming the victim's action (its task token is
        not Temporal's): of the victim's org, or of ``claim_org``'s, which passes the org check
        and reaches Temporal."""
        org = self.variant.claim_org
        head = {
            "o": org,
            "n": self.kit.namespace(org),
            "w": self.run.workflow_id,
            "r": self.run.run_id,
            "a": self.run.action_id,
            "t": "prompt",
            "l": 60.0,
            "i": "intruder",
        }
        text = json.dumps(head, separators=(",", ":"))
        self.sent.append(text)
        return f"{_b64(text.encode())}.{_b64(b'not-a-temporal-task-token')}"


def probes_of(rpc: Rpc, kit: ControlPlaneKit, victim: Victim, yaml: str) -> list[Probe]:
    """The requests sent to ``rpc``: filled with either victim run's ids, and empty."""
    first, second = victim.runs
    variants = (
        Variant("victim", first),
        Variant("victim-alt", second, victim_enums=False, flag=False, claim_org=INTRUDER),
        Variant("empty", None),
    )
    cls = message_factory.GetMessageClass(rpc.method.input_type)
    probes: list[Probe] = []
    seen: set[bytes] = set()
    for variant in variants:
        request = cls()
        sent: list[str] = []
        if variant.run is not None:
            filler = Filler(kit, victim, variant, yaml, rpc.method.input_type.file.package)
            filler.fill(request)
            sent = filler.sent
        wire = request.SerializeToString(deterministic=True)
        if wire in seen:
            continue
        seen.add(wire)
        extra = "\n".join([text_format.MessageToString(request, as_utf8=True), *sent])
        probes.append(Probe(rpc, variant.label, request, wire + extra.encode()))
    return probes


# -- credentials -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Credential:
    """Call metadata, and who holds it.

    ``kind`` is ``forged`` (no valid token), ``foreign`` (a valid token of another org),
    ``viewer`` (the victim org's read-only token) or ``member`` (the victim org's tokens that
    may act: sent only to platform rpcs, where they must be refused).
    """

    name: str
    kind: str
    metadata: tuple[tuple[str, str], ...]
    read_only: bool = False


def credentials(kit: ControlPlaneKit) -> list[Credential]:
    now = int(time.time())
    claims = {"org": VICTIM, "roles": ["admin", "platform"], "iat": now, "exp": now + 600}
    other_secret = "another-secret-" + uuid.uuid4().hex
    genuine = kit.token(INTRUDER, roles=["admin"])
    header, _, signature = genuine.split(".")
    swapped = _b64(json.dumps(claims).encode())
    with warnings.catch_warnings():
        # The secret is shorter than HS512 recommends: the server must refuse it anyway.
        warnings.simplefilter("ignore")
        stronger = jwt.encode(claims, SECRET, algorithm="HS512")
    forged = {
        "other-secret(acme)": bearer(jwt.encode(claims, other_secret, algorithm="HS256")),
        "other-secret(globex)": bearer(
            jwt.encode({**claims, "org": INTRUDER}, other_secret, algorithm="HS256")
        ),
        "globex-signature-acme-claims": bearer(f"{header}.{swapped}.{signature}"),
        "hs512-right-secret(acme)": bearer(stronger),
        "alg-none(acme)": bearer(jwt.encode(claims, None, algorithm="none")),
        "expired(acme)": bearer(expired_token(VICTIM, roles=["admin", "platform"])),
        "expired(globex)": bearer(expired_token(INTRUDER)),
        "garbage": bearer("garbage"),
        "garbage-segments": bearer("a.b.c"),
        "not-bearer": (("authorization", f"Basic {genuine}"),),
        "empty-bearer": (("authorization", "Bearer "),),
        "missing": (),
    }
    found = [Credential(name, "forged", metadata) for name, metadata in forged.items()]
    found += [
        Credential("globex", "foreign", kit.auth(INTRUDER, subject="intruder")),
        Credential(
            "globex-admin", "foreign", kit.auth(INTRUDER, roles=["admin"], subject="intruder")
        ),
        Credential(
            "globex-viewer",
            "foreign",
            kit.auth(INTRUDER, roles=["viewer"], subject="intruder"),
            read_only=True,
        ),
        Credential(
            "acme-viewer",
            "viewer",
            kit.auth(VICTIM, roles=["viewer"], subject="onlooker"),
            read_only=True,
        ),
        Credential("acme-member", "member", kit.auth(VICTIM, subject="insider")),
        Credential("acme-admin", "member", kit.auth(VICTIM, roles=["admin"], subject="insider")),
    ]
    return found


# -- calls -----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """How one call ended, and every message it received."""

    probe: Probe
    credential: Credential
    code: grpc.StatusCode
    details: str = ""
    answers: list[Message] = field(default_factory=list)
    status: status_pb2.Status | None = None

    @property
    def where(self) -> str:
        return (
            f"{self.probe.rpc.name} [{self.probe.variant}] as {self.credential.name}: "
            f"{self.code.name} {self.details[:300]!r}"
        )

    def received(self) -> bytes:
        """Everything the caller got: answers, the error's message and rich details."""
        parts = [self.details.encode()]
        shown: list[Message] = [*self.answers, *([self.status] if self.status else [])]
        for message in shown:
            parts.append(message.SerializeToString())
            parts.append(text_format.MessageToString(message, as_utf8=True).encode())
        return b"\n".join(parts)


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _rich(error: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    try:
        return rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:
        return None


async def invoke(channel: grpc.aio.Channel, probe: Probe, who: Credential) -> Outcome:
    """Call the probe's rpc through a generic callable built from its descriptor."""
    method = probe.rpc.method
    deserialize = message_factory.GetMessageClass(method.output_type).FromString
    options: dict[str, Any] = {
        "request_serializer": _serialize,
        "response_deserializer": deserialize,
    }
    request = probe.request
    outcome = Outcome(probe, who, grpc.StatusCode.OK)
    timeout = STREAM_TIMEOUT if method.server_streaming else CALL_TIMEOUT
    try:
        if method.server_streaming:
            if method.client_streaming:
                stream: Any = channel.stream_stream(probe.rpc.path, **options)(
                    iter([request]), metadata=who.metadata, timeout=timeout
                )
            else:
                stream = channel.unary_stream(probe.rpc.path, **options)(
                    request, metadata=who.metadata, timeout=timeout
                )
            async for answer in stream:
                outcome.answers.append(answer)
        elif method.client_streaming:
            outcome.answers.append(
                await channel.stream_unary(probe.rpc.path, **options)(
                    iter([request]), metadata=who.metadata, timeout=timeout
                )
            )
        else:
            outcome.answers.append(
                await channel.unary_unary(probe.rpc.path, **options)(
                    request, metadata=who.metadata, timeout=timeout
                )
            )
    except grpc.aio.AioRpcError as error:
        outcome.code = error.code()
        outcome.details = error.details() or ""
        outcome.status = _rich(error)
    return outcome


# -- judging ---------------------------------------------------------------------------------


def wrongs(outcome: Outcome) -> list[str]:
    """What is wrong with how the call ended, for who made it."""
    rpc, who, code = outcome.probe.rpc, outcome.credential, outcome.code
    found = []
    if code == grpc.StatusCode.INTERNAL:
        found.append("INTERNAL")
    denied = grpc.StatusCode.PERMISSION_DENIED
    if rpc.by_link:
        # No probe holds a valid link: whatever the token, the link refuses the call.
        if code not in (denied, grpc.StatusCode.INVALID_ARGUMENT):
            found.append("a call with no valid answer link is not refused")
        if outcome.answers:
            found.append(f"a call with no valid answer link got {len(outcome.answers)} answers")
        return found
    if who.kind == "forged":
        if code != grpc.StatusCode.UNAUTHENTICATED:
            found.append("a forged, expired or missing token is not UNAUTHENTICATED")
        if outcome.answers:
            found.append(f"a forged token got {len(outcome.answers)} answers")
    elif rpc.platform_only:
        if code != denied:
            found.append("OrganizationService without the platform role is not denied")
    elif who.read_only and not rpc.reads:
        if code != denied:
            found.append("a viewer's call that is not a read is not PERMISSION_DENIED")
    elif who.kind == "viewer":
        if code in (denied, grpc.StatusCode.UNAUTHENTICATED):
            found.append("a viewer's read of its own org is refused")
    elif who.kind == "foreign":
        allowed = FOREIGN_CODES | (
            {grpc.StatusCode.DEADLINE_EXCEEDED} if rpc.method.server_streaming else set()
        )
        if code not in allowed:
            found.append(f"another org's call ends in {code.name}")
    return found


def leaked(outcome: Outcome, victim: Victim) -> list[str]:
    """The victim's data in what a caller of no or another org received."""
    received = outcome.received()
    found = [secret for secret in victim.secrets() if secret.encode() in received]
    found += [
        name
        for name in victim.identifiers()
        if name.encode() in received and name.encode() not in outcome.probe.sent
    ]
    return found


# -- the matrix ------------------------------------------------------------------------------


async def run_matrix(
    kit: ControlPlaneKit, pairs: Sequence[tuple[Probe, Credential]]
) -> list[Outcome]:
    channel = kit.channel()
    gate = asyncio.Semaphore(PARALLEL)

    async def bounded(probe: Probe, who: Credential) -> Outcome:
        async with gate:
            return await invoke(channel, probe, who)

    return list(await asyncio.gather(*(bounded(probe, who) for probe, who in pairs)))


async def test_no_credential_reaches_another_orgs_data_through_any_rpc(
    kit: ControlPlaneKit,
) -> None:
    rpcs = every_rpc()
    assert {rpc.service.full_name for rpc in rpcs} == set(SERVICE_NAMES)
    victim = await open_victim(kit)
    intruder_yaml = ask_yaml(unique("intruder-plan"))
    probes = [probe for rpc in rpcs for probe in probes_of(rpc, kit, victim, intruder_yaml)]
    callers = credentials(kit)
    pairs = [
        (probe, who)
        for probe in probes
        for who in callers
        if who.kind != "member" or probe.rpc.platform_only
    ]

    outcomes = await run_matrix(kit, pairs)

    wrong: list[str] = []
    leaks: list[str] = []
    for outcome in outcomes:
        wrong += [f"{outcome.where}: {what}" for what in wrongs(outcome)]
        if outcome.credential.kind in ("forged", "foreign"):
            leaks += [f"{outcome.where}: leaked {item!r}" for item in leaked(outcome, victim)]
    # The same search finds the victim's data where it may be: in its own viewer's reads.
    seen = sum(
        bool(leaked(outcome, victim))
        for outcome in outcomes
        if outcome.credential.kind == "viewer" and outcome.code == grpc.StatusCode.OK
    )
    changes = await victim_changes(kit, victim)
    internal = sum(outcome.code == grpc.StatusCode.INTERNAL for outcome in outcomes)
    leaking = len({line.split(": leaked ")[0] for line in leaks})
    codes = Counter(outcome.code.name for outcome in outcomes)
    print(
        f"\nisolation matrix: {len(rpcs)} RPCs of {len(SERVICE_NAMES)} services, "
        f"{len(probes)} requests, {len(callers)} credentials, {len(outcomes)} calls, "
        f"{leaking} leaks, {internal} INTERNAL, {len(changes)} changes to the victim, "
        f"{seen} reads of its own viewer holding its data; codes {dict(sorted(codes.items()))}"
    )
    problems = [f"after the matrix: {change}" for change in changes] + leaks + wrong
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:80])
    assert seen > 0, "the victim's own viewer read nothing of its data: the search is blind"
