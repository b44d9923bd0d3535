"""The one door to Temporal for the control plane.

Every call takes an :class:`~engine.context.OrgContext` and reaches Temporal only through the
client of that org's namespace: a workflow id that exists in another org's namespace is simply
not found for this org. Nothing in a request can point a call at another namespace.

Why one long module: starting, reading, listing and driving runs share the routing, the start
preparation and the error translation; the class is the run API's one surface, method by
method as the WorkflowService has them.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from temporalio.api.common.v1 import WorkflowExecution as ExecutionRef
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import (
    ListWorkflowExecutionsRequest,
    ResetWorkflowExecutionRequest,
)
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError as TemporalAlreadyStarted
from temporalio.service import RPCError, RPCStatusCode

from engine.context import OrgContext
from engine.definition import EVENT_NAME, DefinitionSource, WorkflowDefinition
from engine.dispatcher._backpressure import attempt_timeout, within_budget
from engine.dispatcher._errors import (
    AnswerRefusedError,
    DefinitionNotFoundError,
    InvalidRequestError,
    StepNotWaitingError,
    SubmissionRejectedError,
    WorkflowAlreadyFinishedError,
    WorkflowNotFoundError,
    retrieve_start_error,
    translate,
)
from engine.dispatcher._filter import visibility_filter
from engine.dispatcher._watch import RunFeeds
from engine.protocol import (
    AWAIT_SUSPENSION,
    GET_CHANGES,
    GET_STATUS,
    INBOX_MEMO,
    MOVE_DEADLINE,
    RUN_STATES,
    SEND_EVENT,
    SIGNALS,
    SUBMIT_RESULT,
    Advance,
    Changes,
    Event,
    PendingAction,
    RunState,
    RunStatus,
    Submission,
    clipped,
    submission_problem,
)
from engine.telemetry.logs import bind_log_fields
from engine.telemetry.tracing import current_trace
from engine.tenancy import ClientPool, NamespaceResolver, OrgRouter
from engine.workflow import (
    ENGINE_ACTION_TYPE,
    ENGINE_AGENT,
    ENGINE_DEFINITION,
    ENGINE_EVENTS,
    ENGINE_ORG,
    ENGINE_STATUS,
    ENGINE_STEP,
    REGISTRY_WORKFLOW_TYPE,
    Called,
    RunInput,
    RunStart,
    Webhook,
    WebhookFlags,
    WorkflowFactory,
    read_webhook,
    resolve_calls,
    search_attributes,
    write_webhook,
)

__all__ = [
    "ActionPage",
    "DefinitionRef",
    "RunPage",
    "RunSummary",
    "StartedRun",
    "TemporalDispatcher",
]

_TERMINAL: Final = frozenset({"completed", "failed", "cancelled"})
_RETRYABLE: Final = frozenset(
    {
        WorkflowExecutionStatus.FAILED,
        WorkflowExecutionStatus.CANCELED,
        WorkflowExecutionStatus.TERMINATED,
        WorkflowExecutionStatus.TIMED_OUT,
    }
)
_REQUEST_ID: Final = "request_id"
_START_DEDUPED: Final = "StartDeduped"
"""What Temporal answers an update-with-start whose start it had done already for the same
request (its client repeated the call after a timeout): the run exists, started by this call."""
"""The memo key holding the request id that started a run (idempotent starts)."""

# A run's EngineStatus is what the interpreter last wrote; once Temporal has closed the run
# (terminated, timed out, continued as new) it may still say "running" or "waiting". These
# clauses read both, so a filter never finds a closed run among the live ones.
_STATUS_CLAUSES: Final[dict[RunState, str]] = {
    "running": "EngineStatus = 'running' AND ExecutionStatus = 'Running'",
    "waiting": "EngineStatus = 'waiting' AND ExecutionStatus = 'Running'",
    "completed": "ExecutionStatus = 'Completed'",
    "failed": (
        "ExecutionStatus IN ('Failed', 'Terminated', 'TimedOut') AND EngineStatus != 'cancelled'"
    ),
    "cancelled": "(EngineStatus = 'cancelled' OR ExecutionStatus = 'Canceled')",
}


@dataclass(frozen=True)
class DefinitionRef:
    """A registered definition by name, and version (None: the latest)."""

    name: str
    version: int | None = None


@dataclass(frozen=True)
class StartedRun:
    """A run the dispatcher started (or, for a repeated request id, the one it started before)."""

    workflow_id: str
    run_id: str
    workflow_type: str


@dataclass(frozen=True)
class RunSummary:
    """One run as visibility lists it."""

    workflow_id: str
    run_id: str
    workflow_type: str
    status: RunState
    current_step: str | None
    definition: str | None
    org_id: str | None
    start_time: datetime | None
    close_time: datetime | None
    parent_workflow_id: str | None


@dataclass(frozen=True)
class ActionPage:
    """A page of the inbox and the token of the next page (None at the end)."""

    actions: list[PendingAction]
    next_page_token: bytes | None


@dataclass(frozen=True)
class RunPage:
    """A page of runs and the token of the next page (None at the end)."""

    runs: list[RunSummary]
    next_page_token: bytes | None


class TemporalDispatcher:
    """Starts, reads, lists and drives runs, always in the caller's org namespace.

    Args:
        resolver: Maps org ids to namespace targets.
        clients: The shared client pool.
        task_queue: The interpreter's task queue.
        definitions: Resolves :class:`DefinitionRef` to definitions (the registry).
        rpc_timeout: Bound on each Temporal call, so a dead server is UNAVAILABLE quickly.
        lease: Seconds an executor may hold an action of the runs started here without a
            heartbeat (None: the interpreter's default).
    """

    def __init__(
        self,
        resolver: NamespaceResolver,
        clients: ClientPool,
        *,
        task_queue: str = "engine",
        definitions: DefinitionSource | None = None,
        rpc_timeout: timedelta = timedelta(seconds=10),
        lease: float | None = None,
    ) -> None:
        self.router = OrgRouter(resolver, clients)
        self.factory = WorkflowFactory(task_queue, lease=lease)
        self.webhooks = WebhookFlags()
        self._feeds = RunFeeds()
        self.definitions = definitions
        self.rpc_timeout = rpc_timeout
        # Temporal's pushback is retried for up to three attempts' time (see _backpressure).
        self.retry_budget = 3 * rpc_timeout.total_seconds()

    # -- routing --------------------------------------------------------------------------

    async def client(self, org: OrgContext) -> Client:
        """The client of the caller's org namespace (the only one a call can reach)."""
        return await self.router.client(org)

    async def handle(
        self, org: OrgContext, workflow_id: str, run_id: str | None = None
    ) -> WorkflowHandle[Any, Any]:
        """The handle of one of the org's runs (never of the engine's internal workflows)."""
        check_run_id(workflow_id, org)
        return (await self.client(org)).get_workflow_handle(workflow_id, run_id=run_id)

    # -- the org's webhook -----------------------------------------------------------------

    async def webhook(self, org: OrgContext) -> Webhook | None:
        """The org's outgoing webhook, if it has one."""
        return await read_webhook(await self.client(org))

    async def set_webhook(self, org: OrgContext, webhook: Webhook | None) -> None:
        """Set (None: clear) the org's webhook; runs started from now on notify it."""
        client = await self.client(org)
        await write_webhook(client, webhook)
        self.webhooks.forget(client.namespace)

    # -- starting -------------------------------------------------------------------------

    async def start(
        self,
        org: OrgContext,
        definition: WorkflowDefinition | DefinitionRef,
        inputs: Mapping[str, Any] | None = None,
        *,
        workflow_id: str | None = None,
        request_id: str | None = None,
    ) -> StartedRun:
        """Start a run (idempotent for a repeated ``request_id``).

        Without a workflow id one is made from the definition's name and the request id (or
        a random suffix). With a request id, starting again returns the run the first request
        started, running or finished, instead of an error.

        Raises:
            engine.definition.InputError: The inputs do not match the definition.
            engine.definition.DefinitionError: A call step's definition is not registered, or
                does not take the step's inputs.
            WorkflowAlreadyStartedError: The workflow id is taken (no request id).
        """
        if workflow_id is not None:
            check_new_run_id(workflow_id)
        loaded = await self._definition(org, definition)
        called = await resolve_calls(
            self.definitions, org, loaded, pinned=isinstance(definition, DefinitionRef)
        )
        workflow_id = workflow_id or _generated_id(loaded.name, request_id)
        client = await self.client(org)
        start, options = await self._start_options(
            client, loaded, inputs, org, workflow_id, request_id, called
        )

        async def attempt() -> StartedRun:
            with self._translated(org, workflow_id):
                try:
                    handle = await client.start_workflow(
                        start.workflow_type,
                        start.input,
                        rpc_timeout=attempt_timeout(self.rpc_timeout),
                        **options,
                    )
                except TemporalAlreadyStarted as taken:
                    return await self._own_run(client, workflow_id, taken, request_id)
            run_id = handle.first_execution_run_id or handle.result_run_id or ""
            return StartedRun(workflow_id, run_id, start.workflow_type)

        return await within_budget(attempt, idempotent=bool(request_id), budget=self.retry_budget)

    async def start_and_wait(
        self,
        org: OrgContext,
        definition: WorkflowDefinition | DefinitionRef,
        inputs: Mapping[str, Any] | None = None,
        *,
        workflow_id: str | None = None,
        request_id: str | None = None,
    ) -> tuple[StartedRun, Advance]:
        """Start a run and answer once it first suspends or ends, in one round trip.

        Uses update-with-start: Temporal starts the run and delivers the update
        ``await_suspension`` in the same call, and the update returns once the run waits on
        its first actions (or a timer, or a fan-out) or has ended.

        Returns:
            The run, and where it stopped: ``{status, current_step, pending_actions, result,
            error}``.
        """
        if workflow_id is not None:
            check_new_run_id(workflow_id)
        loaded = await self._definition(org, definition)
        called = await resolve_calls(
            self.definitions, org, loaded, pinned=isinstance(definition, DefinitionRef)
        )
        workflow_id = workflow_id or _generated_id(loaded.name, request_id)
        client = await self.client(org)
        start, options = await self._start_options(
            client, loaded, inputs, org, workflow_id, request_id, called
        )

        async def attempt() -> tuple[StartedRun, Advance]:
            operation: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
                start.workflow_type, start.input, **options
            )
            with self._translated(org, workflow_id):
                try:
                    advance: Advance = await client.execute_update_with_start_workflow(
                        AWAIT_SUSPENSION,
                        start_workflow_operation=operation,
                        rpc_timeout=attempt_timeout(self.rpc_timeout),
                    )
                except TemporalAlreadyStarted as taken:
                    existing = await self._own_run(client, workflow_id, taken, request_id)
                    status = await self.status(org, workflow_id)
                    return existing, _advance(status)
                except RPCError as error:
                    if _START_DEDUPED not in (error.message or ""):
                        raise
                    # Temporal's client repeated the call (same request), and the server had
                    # started the run the first time: the run is this call's.
                    described = await client.get_workflow_handle(workflow_id).describe(
                        rpc_timeout=attempt_timeout(self.rpc_timeout)
                    )
                    status = await self.status(org, workflow_id)
                    started = StartedRun(workflow_id, described.run_id, start.workflow_type)
                    return started, _advance(status)
                finally:
                    retrieve_start_error(operation)
                handle = await operation.workflow_handle()
            run_id = handle.first_execution_run_id or handle.result_run_id or ""
            return StartedRun(workflow_id, run_id, start.workflow_type), advance

        return await within_budget(attempt, idempotent=bool(request_id), budget=self.retry_budget)

    async def retry(
        self,
        org: OrgContext,
        workflow_id: str,
        *,
        run_id: str | None = None,
        from_start: bool = False,
    ) -> StartedRun:
        """Re-run a failed run: from its failed step, or from the start.

        From the failed step, the run is reset (a Temporal reset) to the end of the workflow
        task before the one in which the failed step began: completed steps keep their
        results and the failed step runs again. From the start, a new run of the same
        workflow id gets the same definition snapshot and inputs.

        Raises:
            WorkflowNotFoundError: No such run in the org.
            InvalidRequestError: The run did not fail, or failed before any task completed.
        """
        handle = await self.handle(org, workflow_id, run_id)
        with self._translated(org, workflow_id):
            described = await handle.describe(rpc_timeout=self.rpc_timeout)
            if described.status not in _RETRYABLE:
                state = described.status.name.lower() if described.status else "running"
                raise InvalidRequestError(
                    f"run '{workflow_id}' in org '{org.org_id}' is {state}: only a failed, "
                    "cancelled, terminated or timed-out run can be retried"
                )
            client = await self.client(org)
            if from_start:
                return await self._restart(client, org, workflow_id, described)
            return await self._reset(client, org, workflow_id, described.run_id)

    async def _restart(
        self, client: Client, org: OrgContext, workflow_id: str, described: Any
    ) -> StartedRun:
        first = client.get_workflow_handle(
            workflow_id,
            run_id=described.raw_description.workflow_execution_info.first_run_id
            or described.run_id,
        )
        history = await first.fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        (run_input,) = await client.data_converter.decode(started.input.payloads, [RunInput])
        run_input.progress = None  # from the very start, with the same snapshot and inputs
        handle = await client.start_workflow(
            described.workflow_type,
            run_input,
            id=workflow_id,
            task_queue=started.task_queue.name,
            search_attributes=search_attributes(
                org.org_id, described.workflow_type.split(":", 1)[0], "running"
            ),
            memo={
                "retry_of": described.run_id,
                "org_id": org.org_id,
                "retried_by": org.subject,
                "retried_at": datetime.now(UTC).isoformat(),
            },
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            rpc_timeout=self.rpc_timeout,
        )
        return StartedRun(workflow_id, handle.result_run_id or "", described.workflow_type)

    async def _reset(
        self, client: Client, org: OrgContext, workflow_id: str, run_id: str
    ) -> StartedRun:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        status: RunStatus = await self.router.query(
            org, handle, GET_STATUS, rpc_timeout=self.rpc_timeout
        )
        failed = [e for e in status["history"] if e["outcome"] == "failed"]
        if not failed:
            raise InvalidRequestError(
                f"run '{workflow_id}' in org '{org.org_id}' has no failed step to resume from; "
                "retry it from the start"
            )
        began = datetime.fromisoformat(failed[0]["started_at"])
        history = await handle.fetch_history()
        # The end of the workflow task in which the failed step began: replaying up to there
        # keeps every earlier result and re-issues the failed step (Temporal re-applies the
        # updates and signals that came after, so earlier submissions are not lost).
        reset_point = next(
            (
                event.event_id
                for event in history.events
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
                and event.event_time.ToDatetime(tzinfo=began.tzinfo) >= began
            ),
            0,
        )
        if not reset_point:
            raise InvalidRequestError(
                f"run '{workflow_id}' in org '{org.org_id}' has no completed workflow task to "
                "resume from: retry it from the start"
            )
        response = await client.workflow_service.reset_workflow_execution(
            ResetWorkflowExecutionRequest(
                namespace=client.namespace,
                workflow_execution=ExecutionRef(workflow_id=workflow_id, run_id=run_id),
                reason=_reason(org, f"retry from failed step '{failed[0]['step_id']}'"),
                workflow_task_finish_event_id=reset_point,
                request_id=str(uuid.uuid4()),
            ),
            retry=True,
            timeout=self.rpc_timeout,
        )
        return StartedRun(workflow_id, response.run_id, status.get("workflow_type", ""))

    async def _start_options(
        self,
        client: Client,
        definition: WorkflowDefinition,
        inputs: Mapping[str, Any] | None,
        org: OrgContext,
        workflow_id: str,
        request_id: str | None,
        called: dict[str, Called],
    ) -> tuple[RunStart, dict[str, Any]]:
        """The run's start and the options every way of starting it shares.

        The run notifies the org's webhook if the org has one (asked of ``client``, cached).

        A taken id always fails the start; with a request id, the caller then returns the run
        only if that same request started it (the request id is in the memo). A finished run
        keeps its id under a request id: a retry of the request must find it, not start again.
        """
        with self._translated(org, None):
            notify = await self.webhooks.notifies(client)
        bind_log_fields(org=org.org_id, workflow_id=workflow_id)
        # The trace of the call starting the run (None when not traced): its actions carry it.
        start = self.factory.prepare(
            definition,
            inputs,
            org,
            workflow_id,
            called=called,
            notify=notify,
            trace=current_trace(),
        )
        memo = dict(start.memo)
        if request_id:
            memo[_REQUEST_ID] = request_id
        return start, {
            "id": start.workflow_id,
            "task_queue": start.task_queue,
            "search_attributes": start.search_attributes,
            "memo": memo,
            "id_reuse_policy": WorkflowIDReusePolicy.REJECT_DUPLICATE
            if request_id
            else WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            "id_conflict_policy": WorkflowIDConflictPolicy.FAIL,
        }

    async def _own_run(
        self,
        client: Client,
        workflow_id: str,
        taken: TemporalAlreadyStarted,
        request_id: str | None,
    ) -> StartedRun:
        """The run holding ``workflow_id`` when this request started it; else ``taken`` again
        (no request id, or the id is another request's)."""
        existing = (
            await self._started_by(client, workflow_id, taken, request_id) if request_id else None
        )
        if existing is None:
            raise taken
        return existing

    async def _started_by(
        self, client: Client, workflow_id: str, taken: TemporalAlreadyStarted, request_id: str
    ) -> StartedRun | None:
        """The run holding ``workflow_id`` if the request ``request_id`` started it."""
        first_run_id = taken.first_run_id or taken.run_id
        described = await client.get_workflow_handle(workflow_id, run_id=first_run_id).describe(
            rpc_timeout=self.rpc_timeout
        )
        if (await described.memo()).get(_REQUEST_ID) != request_id:
            return None
        return StartedRun(workflow_id, described.run_id, described.workflow_type)

    async def _definition(
        self, org: OrgContext, definition: WorkflowDefinition | DefinitionRef
    ) -> WorkflowDefinition:
        if isinstance(definition, WorkflowDefinition):
            return definition
        if self.definitions is None:
            raise DefinitionNotFoundError(
                f"definition '{definition.name}' cannot be looked up: no registry configured"
            )
        return await self.definitions.get(org, definition.name, definition.version)

    # -- reading --------------------------------------------------------------------------

    async def status(
        self, org: OrgContext, workflow_id: str, run_id: str | None = None
    ) -> RunStatus:
        """The run's ``get_status``: status, step, pending actions, history, state."""
        handle = await self.handle(org, workflow_id, run_id)

        async def attempt() -> RunStatus:
            with self._translated(org, workflow_id):
                status: RunStatus = await self.router.query(
                    org, handle, GET_STATUS, rpc_timeout=attempt_timeout(self.rpc_timeout)
                )
            return status

        # A query that timed out is still queued for the worker: asking again would pile up
        # the very load that wedges the SDK's worker (see ClientPool.query). Only a refusal
        # (no worker yet, rate limited) is asked again.
        return await within_budget(attempt, idempotent=False, budget=self.retry_budget)

    async def result(self, org: OrgContext, workflow_id: str, run_id: str | None = None) -> Any:
        """Wait for the run to end and return its result.

        Raises:
            temporalio.client.WorkflowFailureError: The run failed or was cancelled (its cause
                carries the message).
        """
        handle = await self.handle(org, workflow_id, run_id)
        with self._translated(org, workflow_id):
            return await handle.result()

    async def list(
        self,
        org: OrgContext,
        *,
        status: str | None = None,
        definition: str | None = None,
        query: str | None = None,
        include_children: bool = False,
        page_size: int = 100,
        page_token: bytes | None = None,
    ) -> RunPage:
        """Runs of the org, filtered by status, definition and a visibility query.

        Visibility's own order: open runs first, then closed runs, most recently closed first.
        """
        clauses = [
            f"{ENGINE_ORG.name} = {_quote(org.org_id)}",
            # The definition registry's own workflows live in the namespace too; not runs.
            f"WorkflowType != {_quote(REGISTRY_WORKFLOW_TYPE)}",
        ]
        if status is not None:
            if status not in RUN_STATES:
                raise InvalidRequestError(
                    f"unknown status {status!r}: use one of {', '.join(RUN_STATES)}"
                )
            clauses.append(f"({_STATUS_CLAUSES[status]})")
        else:
            # A run that continued as new lives on in its next run: list it once.
            clauses.append("ExecutionStatus != 'ContinuedAsNew'")
        if definition is not None:
            clauses.append(f"{ENGINE_DEFINITION.name} = {_quote(definition)}")
        if not include_children:
            clauses.append("ParentWorkflowId IS NULL")
        if query:
            clauses.append(f"({visibility_filter(query)})")
        executions, token = await self._visible(org, clauses, page_size, page_token)
        return RunPage([_summary(execution) for execution in executions], token)

    async def pending_actions(
        self,
        org: OrgContext,
        *,
        page_size: int = 100,
        page_token: bytes | None = None,
        action_type: str | None = None,
        agent: str | None = None,
        definition: str | None = None,
        step_id: str | None = None,
        workflow_id: str | None = None,
    ) -> ActionPage:
        """The inbox: the pending actions of the org's waiting runs (foreach items included).

        One visibility call per page, whatever the number of runs: each waiting run keeps its
        own actions in its memo. A page holds the actions of at most ``page_size`` runs (a run
        waits on one action of its own at a time), oldest first; pages follow visibility's
        order of the runs. Runs started by an engine that did not keep that memo yet are asked
        one by one.
        """
        clauses = [
            f"{ENGINE_ORG.name} = {_quote(org.org_id)}",
            f"WorkflowType != {_quote(REGISTRY_WORKFLOW_TYPE)}",
            f"({_STATUS_CLAUSES['waiting']})",
        ]
        for key, value in (
            (ENGINE_ACTION_TYPE, action_type),
            (ENGINE_AGENT, agent),
            (ENGINE_DEFINITION, definition),
            (ENGINE_STEP, step_id),
        ):
            if value:
                clauses.append(f"{key.name} = {_quote(value)}")
        if workflow_id:
            clauses.append(
                f"(WorkflowId = {_quote(workflow_id)} OR RootWorkflowId = {_quote(workflow_id)})"
            )
        client = await self.client(org)
        _check_page_size(page_size)
        with self._translated(org, None):
            actions, asked, token = await self._inbox_page(client, clauses, page_size, page_token)
        if asked:
            actions.extend(await self._asked_actions(org, asked))
        actions.sort(key=lambda action: (action["created_at"], action["action_id"]))
        return ActionPage(actions, token)

    async def waiting_actions(
        self, org_id: str, *, pages: int = 10, page_size: int = 100
    ) -> builtins.list[PendingAction]:
        """The org's pending actions as the inbox lists them, for its metrics: visibility only
        (one call per page, at most ``pages`` pages), without waking the org's worker, and
        without asking the runs that keep no inbox memo (left out)."""
        target = self.router.resolver.resolve(org_id)
        client = await self.router.clients.client(target)
        clauses = [
            f"{ENGINE_ORG.name} = {_quote(org_id)}",
            f"WorkflowType != {_quote(REGISTRY_WORKFLOW_TYPE)}",
            f"({_STATUS_CLAUSES['waiting']})",
        ]
        actions: builtins.list[PendingAction] = []
        token: bytes | None = None
        for _ in range(pages):
            page, _, token = await self._inbox_page(client, clauses, page_size, token)
            actions.extend(page)
            if token is None:
                break
        return actions

    async def _inbox_page(
        self,
        client: Client,
        clauses: builtins.list[str],
        page_size: int,
        page_token: bytes | None,
    ) -> tuple[builtins.list[PendingAction], builtins.list[str], bytes | None]:
        """One visibility page of waiting runs: their actions from the inbox memo, the ids of
        the runs that keep none, and the next page's token."""
        request = ListWorkflowExecutionsRequest(
            namespace=client.namespace,
            page_size=page_size,
            next_page_token=page_token or b"",
            query=" AND ".join(clauses),
        )
        page = await client.workflow_service.list_workflow_executions(
            request, timeout=self.rpc_timeout
        )
        # Only the inbox's memo is read (and decoded, all in one call): the SDK's own listing
        # would decode every search attribute of every run as well.
        kept = [(info, info.memo.fields.get(INBOX_MEMO)) for info in page.executions]
        decoded = iter(await client.data_converter.decode([p for _, p in kept if p is not None]))
        actions: builtins.list[PendingAction] = []
        asked: builtins.list[str] = []
        for info, payload in kept:
            if payload is not None:
                actions.extend(next(decoded) or [])
            else:
                asked.append(info.execution.workflow_id)
        return actions, asked, page.next_page_token or None

    async def _asked_actions(
        self, org: OrgContext, workflow_ids: builtins.list[str]
    ) -> builtins.list[PendingAction]:
        """The own actions of runs that keep none in their memo, asked by query (in turn:
        see ``ClientPool.query``)."""

        async def own_actions(workflow_id: str) -> builtins.list[PendingAction]:
            try:
                status = await self.status(org, workflow_id)
            except (WorkflowNotFoundError, WorkflowAlreadyFinishedError):
                return []
            return [a for a in status["pending_actions"] if a["workflow_id"] == workflow_id]

        found = await asyncio.gather(*(own_actions(workflow_id) for workflow_id in workflow_ids))
        return [action for group in found for action in group]

    async def _visible(
        self,
        org: OrgContext,
        clauses: builtins.list[str],
        page_size: int,
        page_token: bytes | None,
    ) -> tuple[builtins.list[WorkflowExecution], bytes | None]:
        """One page of the org's executions matching every clause, and the next page's token."""
        _check_page_size(page_size)
        client = await self.client(org)
        with self._translated(org, None):
            iterator = client.list_workflows(
                " AND ".join(clauses),
                page_size=page_size,
                next_page_token=page_token or None,
                rpc_timeout=self.rpc_timeout,
            )
            try:
                await iterator.fetch_next_page()
            except RPCError as error:
                # Visibility cannot read a token it did not issue (it says "something went
                # wrong"): that is the caller's token, not an outage to retry.
                if page_token and error.status in _UNREADABLE_TOKEN:
                    raise InvalidRequestError(
                        "page_token: is not a token this server issued"
                    ) from None
                raise
        return builtins.list(iterator.current_page or []), iterator.next_page_token or None

    async def watch(self, org: OrgContext, workflow_id: str) -> AsyncIterator[RunStatus]:
        """Yield the run's status at every change, in order, until the run ends.

        Pushed, not polled: see :mod:`engine.dispatcher._watch`.
        """
        check_run_id(workflow_id, org)
        client = await self.client(org)

        async def ask_status() -> RunStatus:
            return await self.status(org, workflow_id)

        async def ask_changes(run_id: str, version: int) -> Changes:
            return await self._changes(org, workflow_id, run_id, version)

        with self._translated(org, workflow_id):
            async for status in self._feeds.watch(client, workflow_id, ask_status, ask_changes):
                yield status

    async def _changes(
        self, org: OrgContext, workflow_id: str, run_id: str, version: int
    ) -> Changes:
        handle = await self.handle(org, workflow_id, run_id)
        try:
            changes: Changes = await self.router.query(
                org, handle, GET_CHANGES, version, rpc_timeout=self.rpc_timeout
            )
        except WorkflowQueryFailedError:
            # A worker of an engine that keeps no changes: the status now is all there is.
            status = await self.status(org, workflow_id, run_id)
            return {"changes": [], "complete": False, "status": status}
        return changes

    # -- driving --------------------------------------------------------------------------

    async def submit_result(
        self,
        org: OrgContext,
        workflow_id: str,
        *,
        action_id: str | None = None,
        step_id: str | None = None,
        result: Any = None,
        error: str | None = None,
        request_id: str | None = None,
    ) -> Advance:
        """Resume a waiting step; returns the next pending actions or the final result.

        With a ``request_id``, submitting again after a call whose outcome was lost is safe:
        Temporal keeps each update's outcome by its id, and answers the retry with the first
        call's outcome.

        Raises:
            SubmissionRejectedError: No such waiting step or action, a duplicate, or a result
                of the wrong shape (nothing is written to the run's history).
            WorkflowAlreadyFinishedError: The run has ended.
        """
        if not action_id and not step_id:
            raise InvalidRequestError("name the action: give action_id or step_id")
        problem = submission_problem(result, error)
        if problem is not None:
            raise SubmissionRejectedError(problem)
        submission: Submission = {"result": result}
        if action_id:
            submission["action_id"] = action_id
        elif step_id:
            submission["step_id"] = step_id
        if error is not None:
            submission["error"] = error
        submission["actor"] = org.actor()  # from the token, never from the request
        handle = await self.handle(org, workflow_id)
        update_id = f"submit/{action_id or step_id}/{request_id}" if request_id else None
        with self._translated(org, workflow_id):
            try:
                advance: Advance = await handle.execute_update(
                    SUBMIT_RESULT, submission, id=update_id, rpc_timeout=self.rpc_timeout
                )
            except WorkflowUpdateFailedError as failed:
                if getattr(failed.cause, "type", None) == "AnswerRefusedError":
                    raise AnswerRefusedError(
                        str(getattr(failed.cause, "message", None) or failed)
                    ) from None
                raise
        return advance

    async def signal(self, org: OrgContext, workflow_id: str, name: str, *args: Any) -> None:
        """Send one of the run's signals (submit_result, cancel_workflow, update_timeout)."""
        if name not in SIGNALS:
            raise InvalidRequestError(
                f"unknown signal {name!r}: use one of {', '.join(sorted(SIGNALS))}"
            )
        handle = await self.handle(org, workflow_id)
        with self._translated(org, workflow_id):
            await handle.signal(name, args=list(args), rpc_timeout=self.rpc_timeout)

    async def cancel(self, org: OrgContext, workflow_id: str, reason: str = "") -> None:
        """Cancel the run (Temporal cancellation: it ends CANCELED; its children too).

        A run whose workflow task keeps failing (a worker that cannot run it) could never take
        a cancel: it is terminated instead, with a reason that says so.
        """
        handle = await self.handle(org, workflow_id)
        with self._translated(org, workflow_id):
            description = await handle.describe(rpc_timeout=self.rpc_timeout)
            if description.close_time is not None:
                raise WorkflowAlreadyFinishedError(
                    f"run '{workflow_id}' in {self.router.where(org)} has already ended"
                )
            stuck = description.raw_description.pending_workflow_task
            if stuck.attempt > 1:
                # Its workflow task keeps failing, so it would never take the cancel: ending
                # it is the only way to honour the request, and it is recorded as such.
                asked = _reason(org, reason)
                await handle.terminate(
                    reason=f"cancelled{': ' + asked if asked else ''}; terminated because its "
                    f"workflow task failed {stuck.attempt - 1} time(s) and could not take the "
                    "cancel",
                    rpc_timeout=self.rpc_timeout,
                )
                return
            await handle.cancel(reason=_reason(org, reason), rpc_timeout=self.rpc_timeout)

    async def update_timeout(
        self, org: OrgContext, workflow_id: str, step_id: str, seconds: float
    ) -> None:
        """Move a waiting step's deadline (or a wait's end) to now + ``seconds``."""
        if not seconds >= 0:  # NaN too
            raise InvalidRequestError(f"seconds must not be negative, got {seconds}")
        handle = await self.handle(org, workflow_id)
        with self._translated(org, workflow_id):
            try:
                await handle.execute_update(
                    MOVE_DEADLINE, args=[step_id, seconds], rpc_timeout=self.rpc_timeout
                )
            except WorkflowUpdateFailedError as error:
                raise StepNotWaitingError(
                    str(getattr(error.cause, "message", None) or error)
                ) from None

    # -- events -----------------------------------------------------------------------------

    async def send_event(
        self,
        org: OrgContext,
        name: str,
        payload: Any = None,
        *,
        workflow_id: str | None = None,
        request_id: str | None = None,
    ) -> builtins.list[str]:
        """Send an event to one run, or to every run of the org waiting for ``name`` now.

        Sent to one run, the event is kept there until one of its ``wait_for`` steps takes it.
        Broadcast, it goes to the runs whose ``EngineEvents`` search attribute names it (one
        visibility listing, then one signal per such run; visibility lags a second or so
        behind a run that has just begun to wait), and each takes it if a waiting step's
        ``correlate`` holds. A repeat with the same ``request_id`` is ignored by every run.

        Returns:
            The runs the event was delivered to.

        Raises:
            InvalidRequestError: A bad name, or a payload over the size limit.
            WorkflowNotFoundError, WorkflowAlreadyFinishedError: The one run named cannot
                take it.
        """
        if not EVENT_NAME.fullmatch(name):
            raise InvalidRequestError(
                f"name: invalid event name {name!r}: use letters, digits and '_', '.', ':', '-' "
                "(at most 128 characters)"
            )
        problem = submission_problem(payload, None)
        if problem is not None:
            raise InvalidRequestError(f"payload: {problem}")
        event: Event = {
            "name": name,
            "payload": payload,
            "event_id": request_id or uuid.uuid4().hex,
            "broadcast": workflow_id is None,
        }
        if workflow_id is not None:
            handle = await self.handle(org, workflow_id)
            with self._translated(org, workflow_id):
                await handle.signal(SEND_EVENT, event, rpc_timeout=self.rpc_timeout)
            return [workflow_id]
        clauses = [
            f"{ENGINE_ORG.name} = {_quote(org.org_id)}",
            f"{ENGINE_EVENTS.name} = {_quote(name)}",
            "ExecutionStatus = 'Running'",
        ]
        waiting: builtins.list[str] = []
        token: bytes | None = None
        while True:
            page, token = await self._visible(org, clauses, _EVENT_PAGE, token)
            waiting.extend(execution.id for execution in page)
            if token is None:
                break
        client = await self.client(org)
        slots = asyncio.Semaphore(_EVENT_SIGNALS_AT_ONCE)

        async def deliver(target: str) -> str | None:
            async with slots:
                try:
                    with self._translated(org, target):
                        await client.get_workflow_handle(target).signal(
                            SEND_EVENT, event, rpc_timeout=self.rpc_timeout
                        )
                except (WorkflowNotFoundError, WorkflowAlreadyFinishedError):
                    return None  # it ended since the listing
                return target

        delivered = await asyncio.gather(*(deliver(target) for target in waiting))
        return [target for target in delivered if target is not None]

    def _translated(self, org: OrgContext, workflow_id: str | None) -> Any:
        """A block whose Temporal errors become the engine's, naming the org and namespace.

        The run it is about goes on the log lines of the call from here on."""
        bind_log_fields(org=org.org_id, workflow_id=workflow_id)
        return translate(self.router.where(org), workflow_id)


_EVENT_PAGE: Final = 1000
_EVENT_SIGNALS_AT_ONCE: Final = 16
_UNREADABLE_TOKEN: Final = frozenset(
    {RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.INTERNAL, RPCStatusCode.UNKNOWN}
)
INTERNAL_PREFIXES: Final = ("definition/",)
"""Workflow ids of the engine's own workflows (the definition registry): never a run."""
_NEW_RUN_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}")
_LONGEST_ID: Final = 1000


def check_new_run_id(workflow_id: str) -> None:
    """Refuse a workflow id a caller chose for a new run unless it is plain and short.

    Raises:
        InvalidRequestError: Naming the rule (and at most the id's first characters).
    """
    if _NEW_RUN_ID.fullmatch(workflow_id) is None:
        raise InvalidRequestError(
            f"invalid workflow_id {clipped(repr(workflow_id), 80)}: use letters, digits and "
            "'.', '_', ':', '@', '-', starting with a letter or digit (at most 200 characters)"
        )


def check_run_id(workflow_id: str, org: OrgContext) -> None:
    """Refuse an id that can name no run of the org: an internal workflow's, or one no run
    could have (control or format characters, too long). Such a run is simply not found.

    Raises:
        WorkflowNotFoundError: The id names no run.
    """
    if (
        len(workflow_id) > _LONGEST_ID
        or workflow_id.startswith(INTERNAL_PREFIXES)
        or (
            not (workflow_id.isascii() and workflow_id.isprintable())  # the usual id: no scan
            and any(unicodedata.category(c) in _UNPRINTABLE for c in workflow_id)
        )
    ):
        raise WorkflowNotFoundError(
            f"run {clipped(repr(workflow_id), 80)} not found in org '{org.org_id}'"
        )


_UNPRINTABLE: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _reason(org: OrgContext, reason: str) -> str:
    """What a cancel or a retry records: who asked (when the token says), and why."""
    who = f"by {org.subject}" if org.subject else ""
    return ": ".join(part for part in (who, reason) if part)


def _generated_id(name: str, request_id: str | None) -> str:
    """A workflow id from the definition's name and the request id (or a random suffix)."""
    suffix = hashlib.sha256(request_id.encode()).hexdigest()[:20] if request_id else None
    return f"{name}-{suffix or uuid.uuid4().hex[:20]}"


def _check_page_size(page_size: int) -> None:
    if not 1 <= page_size <= 1000:
        raise InvalidRequestError(f"page_size must be between 1 and 1000, got {page_size}")


def _quote(value: str) -> str:
    # Visibility queries take single-quoted strings; ids are validated, but quote safely anyway.
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _summary(execution: WorkflowExecution) -> RunSummary:
    attributes = execution.typed_search_attributes
    status = _run_status(execution.status, attributes.get(ENGINE_STATUS))
    return RunSummary(
        workflow_id=execution.id,
        run_id=execution.run_id,
        workflow_type=execution.workflow_type,
        status=status,
        # What the run last said; a closed run is at no step (whatever it last said).
        current_step=attributes.get(ENGINE_STEP) if status in ("running", "waiting") else None,
        definition=attributes.get(ENGINE_DEFINITION),
        org_id=attributes.get(ENGINE_ORG),
        start_time=execution.start_time,
        close_time=execution.close_time,
        parent_workflow_id=execution.parent_id,
    )


def _run_status(temporal: WorkflowExecutionStatus | None, engine: str | None) -> RunState:
    """The engine's status of a run: what the interpreter wrote, unless Temporal closed it.

    A run terminated (or timed out) by Temporal keeps the EngineStatus it had ("waiting"), and
    a run stopped by the ``cancel_workflow`` signal is FAILED to Temporal but "cancelled" here.
    """
    if temporal is None or temporal in (
        WorkflowExecutionStatus.RUNNING,
        WorkflowExecutionStatus.CONTINUED_AS_NEW,
    ):
        return next((state for state in RUN_STATES if state == engine), "running")
    if temporal == WorkflowExecutionStatus.COMPLETED:
        return "completed"
    if temporal == WorkflowExecutionStatus.CANCELED or engine == "cancelled":
        return "cancelled"
    return "failed"


def _advance(status: RunStatus) -> Advance:
    """Where a run is, in the shape of an update's answer."""
    return {
        "workflow_id": status["workflow_id"],
        "status": status["status"],
        "current_step": status["current_step"],
        "pending_actions": status["pending_actions"],
        "result": status["result"],
        "error": status["error"],
    }
