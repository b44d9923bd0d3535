"""Executors claim pending actions from their org's task queues, through the control plane.

Every pending action is a Temporal activity task (``engine.action``) on the task queue of its
type (and agent) in the org's namespace (see :mod:`engine.protocol`); no worker of the engine
polls those queues. :class:`ActionBroker` polls them for executors and proxies the rest of the
protocol: heartbeats keep a claim's lease (the activity's heartbeat timeout), a result or a
failure completes the activity. Temporal's matching service does what a fleet needs: one
action to one executor at a time, long polls, and redelivery when a lease expires.

The broker keeps nothing of an action but what is in flight: a claim token carries the
Temporal task token and what the control plane needs to check a result, so any replica can
take any claim's heartbeat or result.

Long polls are shared. Executors waiting on one queue of one namespace share a few Temporal
polls (at most ``polls_per_queue``), and the broker never runs more than
``polls_per_namespace`` at once in a namespace, so no number of executors takes the namespace's
long-poll capacity from the workers that run the workflows. A Temporal poll is never cancelled
(a task matched to a cancelled poll would be lost until its lease expired): its deadline is the
longest wait of the executors it serves, and the server answers "nothing" before a deadline
runs out. When a poll returns an action and no executor waits any more, the broker holds it
briefly for the next executor, then releases it to Temporal, which offers it again at once.

Why one module of near 600 lines: the broker's poll sharing, its hand-off of a polled task to a
waiting executor and its release of an unclaimed one work on one set of queues and waiters;
the claim token (:class:`_Token`) is the only piece read alone, and it is short.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import json
import logging
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from google.protobuf.duration_pb2 import Duration
from temporalio.api.common.v1 import Payloads, WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.failure.v1 import ApplicationFailureInfo, Failure
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    GetWorkflowExecutionHistoryRequest,
    PollActivityTaskQueueRequest,
    PollActivityTaskQueueResponse,
    RecordActivityTaskHeartbeatRequest,
    RespondActivityTaskCompletedRequest,
    RespondActivityTaskFailedRequest,
)
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from engine.context import OrgContext
from engine.dispatcher._errors import (
    ActionClosedError,
    ClaimNotFoundError,
    LeaseExpiredError,
    SubmissionRejectedError,
)
from engine.protocol import (
    ACTION_FAILED,
    ACTION_RELEASED,
    PendingAction,
    action_queue,
    submission_problem,
)
from engine.tenancy import ClientPool, NamespaceResolver, OrgRouter, temporal_refusal
from engine.workflow import result_shape_error

__all__ = ["ActionBroker", "Claim"]

log = logging.getLogger("engine.dispatcher")

_SHORTEST_POLL: Final = 3.0
"""The server refuses a long poll with a deadline under about 2 seconds."""
_LONGEST_WAIT: Final = 60.0


@dataclass(frozen=True)
class Claim:
    """A pending action claimed by one executor.

    Attributes:
        action: The action, as ``GetWorkflow`` shows it.
        token: Names the claim in heartbeats and results (opaque to executors).
        lease: How long the claim holds without a heartbeat.
        lease_deadline: When the lease runs out unless a heartbeat renews it.
        delivery: 1 for the first delivery; +1 each time a lease expired before.
    """

    action: PendingAction
    token: str
    lease: timedelta
    lease_deadline: datetime
    delivery: int


@dataclass
class _Token:
    """What a claim token carries."""

    org_id: str
    namespace: str
    workflow_id: str
    run_id: str
    action_id: str
    action_type: str
    lease: float
    identity: str
    task_token: bytes

    def encode(self) -> str:
        head = {
            "o": self.org_id,
            "n": self.namespace,
            "w": self.workflow_id,
            "r": self.run_id,
            "a": self.action_id,
            "t": self.action_type,
            "l": self.lease,
            "i": self.identity,
        }
        text = json.dumps(head, separators=(",", ":"), ensure_ascii=False).encode()
        return f"{_b64(text)}.{_b64(self.task_token)}"

    @classmethod
    def decode(cls, token: str) -> _Token:
        try:
            head_text, _, task_text = token.partition(".")
            head = json.loads(_unb64(head_text))
            return cls(
                org_id=str(head["o"]),
                namespace=str(head["n"]),
                workflow_id=str(head["w"]),
                run_id=str(head["r"]),
                action_id=str(head["a"]),
                action_type=str(head["t"]),
                lease=float(head["l"]),
                identity=str(head["i"]),
                task_token=_unb64(task_text),
            )
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise ClaimNotFoundError("claim_token is not a claim this engine issued") from None


@dataclass
class _Waiter:
    """An executor waiting for an action, until a time (the event loop's clock)."""

    future: asyncio.Future[_Polled]
    until: float


@dataclass
class _Polled:
    """A task a poll returned, and when (the event loop's clock): its lease runs from then."""

    response: PollActivityTaskQueueResponse
    at: float


@dataclass
class _Queue:
    """The executors waiting on one task queue of one namespace, and the polls serving them."""

    client: Client
    name: str
    waiters: collections.deque[_Waiter] = field(default_factory=collections.deque)
    held: collections.deque[_Polled] = field(default_factory=collections.deque)
    polls: int = 0


class ActionBroker:
    """Claims actions for executors, and proxies their heartbeats and results.

    Args:
        resolver: Maps org ids to namespace targets.
        clients: The shared client pool.
        task_queue: The interpreter's task queue (action queues are named after it).
        rpc_timeout: Bound on each call to Temporal but the long polls.
        polls_per_queue: Most Temporal long polls at once for one queue of one namespace.
        polls_per_namespace: Most Temporal long polls at once in one namespace.
        hold: Seconds an action polled for an executor that left waits for the next one.
    """

    def __init__(
        self,
        resolver: NamespaceResolver,
        clients: ClientPool,
        *,
        task_queue: str = "engine",
        rpc_timeout: timedelta = timedelta(seconds=10),
        polls_per_queue: int = 4,
        polls_per_namespace: int = 32,
        hold: float = 2.0,
    ) -> None:
        self.router = OrgRouter(resolver, clients)
        self.task_queue = task_queue
        self.rpc_timeout = rpc_timeout
        self.polls_per_queue = polls_per_queue
        self.polls_per_namespace = polls_per_namespace
        self.hold = hold
        self.identity = f"engine@{socket.gethostname()}"
        self._queues: dict[tuple[str, str], _Queue] = {}
        self._namespace_polls: collections.Counter[str] = collections.Counter()

    # -- claiming ---------------------------------------------------------------------------

    async def claim(
        self,
        org: OrgContext,
        action_type: str,
        agent: str | None = None,
        *,
        wait: float = 30.0,
        identity: str = "",
    ) -> Claim | None:
        """Wait up to ``wait`` seconds for the next action of a queue and claim it.

        Returns:
            The claim, or None when no action came in time.
        """
        client = await self.router.client(org)
        name = action_queue(self.task_queue, action_type, agent)
        queue = self._queue(client, name)
        loop = asyncio.get_running_loop()
        until = loop.time() + min(max(wait, 0.0), _LONGEST_WAIT)
        while True:
            polled = await self._take(queue, until)
            if polled is None:
                return None
            claim = await self._claim(org, client, polled, identity)
            if claim is not None:
                return claim

    def _queue(self, client: Client, name: str) -> _Queue:
        key = (client.namespace, name)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue(client, name)
        return queue

    async def _take(self, queue: _Queue, until: float) -> _Polled | None:
        if queue.held:
            return queue.held.popleft()
        loop = asyncio.get_running_loop()
        waiter = _Waiter(loop.create_future(), until)
        queue.waiters.append(waiter)
        self._start_polls(queue)
        future = waiter.future
        try:
            return await asyncio.wait_for(asyncio.shield(future), max(until - loop.time(), 0))
        except TimeoutError:
            # A task may have come just as the wait ended: it is this executor's all the same.
            return future.result() if future.done() and not future.cancelled() else None
        except asyncio.CancelledError:
            # The executor left; a task that came for it goes to the next one.
            if future.done() and not future.cancelled() and future.exception() is None:
                self._hold(queue, future.result())
            raise
        finally:
            if waiter in queue.waiters:
                queue.waiters.remove(waiter)
            if not future.done():
                future.cancel()

    def _start_polls(self, queue: _Queue) -> None:
        namespace = queue.client.namespace
        while (
            queue.polls < min(self.polls_per_queue, len(queue.waiters))
            and self._namespace_polls[namespace] < self.polls_per_namespace
        ):
            queue.polls += 1
            self._namespace_polls[namespace] += 1
            asyncio.get_running_loop().create_task(self._poll(queue), name=f"poll {queue.name}")

    async def _poll(self, queue: _Queue) -> None:
        namespace = queue.client.namespace
        loop = asyncio.get_running_loop()
        request = PollActivityTaskQueueRequest(
            namespace=namespace, task_queue=TaskQueue(name=queue.name), identity=self.identity
        )
        try:
            while queue.waiters:
                # As long as the longest wait it serves: the server answers "nothing" a second
                # before the deadline, so the poll ends by itself and is never cut short.
                longest = max(waiter.until for waiter in queue.waiters) - loop.time()
                deadline = min(max(longest + 1.0, _SHORTEST_POLL), _LONGEST_WAIT + 1.0)
                try:
                    response = await queue.client.workflow_service.poll_activity_task_queue(
                        request, timeout=timedelta(seconds=deadline)
                    )
                except RPCError as error:
                    log.warning("polling %s in %s failed: %s", queue.name, namespace, error)
                    self._fail_waiters(queue, error)
                    await asyncio.sleep(1.0)
                    continue
                if response.task_token:
                    self._deliver(queue, _Polled(response, loop.time()))
        finally:
            queue.polls -= 1
            self._namespace_polls[namespace] -= 1
            if queue.waiters:
                self._start_polls(queue)  # one that waited for a namespace slot

    def _deliver(self, queue: _Queue, polled: _Polled) -> None:
        while queue.waiters:
            waiter = queue.waiters.popleft()
            if not waiter.future.done():
                waiter.future.set_result(polled)
                return
        self._hold(queue, polled)

    def _hold(self, queue: _Queue, polled: _Polled) -> None:
        """Its executor left: keep it for the next one a moment, then give it back."""
        queue.held.append(polled)
        # A held task's lease runs: it is given back well before the lease would expire.
        lease = polled.response.heartbeat_timeout.ToTimedelta().total_seconds()
        hold = min(self.hold, lease / 4) if lease > 0 else self.hold
        asyncio.get_running_loop().call_later(
            hold, lambda: asyncio.ensure_future(self._release_if_held(queue, polled))
        )

    def _fail_waiters(self, queue: _Queue, error: RPCError) -> None:
        refusal = temporal_refusal(error, f"namespace '{queue.client.namespace}'")
        for waiter in queue.waiters:
            if not waiter.future.done():
                waiter.future.set_exception(refusal or error)

    async def _release_if_held(self, queue: _Queue, polled: _Polled) -> None:
        if polled not in queue.held:
            return
        queue.held.remove(polled)
        request = RespondActivityTaskFailedRequest(
            namespace=queue.client.namespace,
            task_token=polled.response.task_token,
            identity=self.identity,
            failure=Failure(
                message="released: no executor was waiting for it any more",
                application_failure_info=ApplicationFailureInfo(
                    type=ACTION_RELEASED, next_retry_delay=Duration(nanos=100_000_000)
                ),
            ),
        )
        with contextlib.suppress(RPCError):
            await queue.client.workflow_service.respond_activity_task_failed(
                request, timeout=self.rpc_timeout
            )

    async def _claim(
        self, org: OrgContext, client: Client, polled: _Polled, identity: str
    ) -> Claim | None:
        """The claim of a polled task (None for a task that is not an action: dropped)."""
        response = polled.response
        try:
            (action,) = await client.data_converter.decode(response.input.payloads)
        except Exception:
            log.exception("an activity on an action queue carried no action; dropped")
            return None
        traced = _activity_trace(response)
        if traced is not None:
            action = {**action, "trace": traced}
        lease = response.heartbeat_timeout.ToTimedelta()
        token = _Token(
            org_id=org.org_id,
            namespace=client.namespace,
            workflow_id=response.workflow_execution.workflow_id,
            run_id=response.workflow_execution.run_id,
            action_id=response.activity_id,
            action_type=str(action.get("type", "")),
            lease=lease.total_seconds(),
            identity=identity or "executor",
            task_token=response.task_token,
        )
        return Claim(
            action=action,
            token=token.encode(),
            lease=lease,
            # The lease runs from when the task was polled, not from now.
            lease_deadline=datetime.now(UTC)
            + lease
            - timedelta(seconds=asyncio.get_running_loop().time() - polled.at),
            delivery=response.attempt,
        )

    # -- holding and finishing ---------------------------------------------------------------

    async def heartbeat(self, org: OrgContext, token: str) -> tuple[bool, datetime]:
        """Keep a claim's lease.

        Returns:
            Whether to stop (the action was answered elsewhere, timed out or cancelled), and
            the lease's new end.

        Raises:
            ClaimNotFoundError: Not a claim of the caller's org.
            LeaseExpiredError: The lease ran out; the action may be someone else's now.
        """
        claim, client = await self._open(org, token)
        request = RecordActivityTaskHeartbeatRequest(
            namespace=client.namespace, task_token=claim.task_token, identity=claim.identity
        )
        try:
            response = await client.workflow_service.record_activity_task_heartbeat(
                request, timeout=self.rpc_timeout
            )
        except RPCError as error:
            raise self._closed(error, claim, org) from None
        return response.cancel_requested, datetime.now(UTC) + timedelta(seconds=claim.lease)

    async def complete(
        self, org: OrgContext, token: str, result: Any, request_id: str | None = None
    ) -> None:
        """Report a claimed action's result, checked against the action's shape first.

        Raises:
            ClaimNotFoundError: Not a claim of the caller's org.
            SubmissionRejectedError: The result does not fit the action (nothing was written).
            LeaseExpiredError: The lease ran out first.
            ActionClosedError: The action was answered elsewhere, timed out or cancelled.
        """
        claim, client = await self._open(org, token)
        problem = submission_problem(result, None)
        if problem is not None:
            raise SubmissionRejectedError(problem)
        problem = result_shape_error(claim.action_type, {}, result)  # no prompt is claimed
        if problem is not None:
            raise SubmissionRejectedError(f"result: {problem}")
        payloads = Payloads(
            payloads=await client.data_converter.encode([{"result": result, "actor": org.actor()}])
        )
        request = RespondActivityTaskCompletedRequest(
            namespace=client.namespace,
            task_token=claim.task_token,
            identity=_identity(claim, request_id),
            result=payloads,
        )
        await self._finish(
            org,
            client,
            claim,
            request_id,
            client.workflow_service.respond_activity_task_completed,
            request,
        )

    async def fail(
        self, org: OrgContext, token: str, error: str, request_id: str | None = None
    ) -> None:
        """Report that the executor could not perform a claimed action (``on_error`` applies).

        Raises:
            ClaimNotFoundError, LeaseExpiredError, ActionClosedError: As for :meth:`complete`.
        """
        claim, client = await self._open(org, token)
        problem = submission_problem(None, error)
        if problem is not None:
            raise SubmissionRejectedError(problem)
        request = RespondActivityTaskFailedRequest(
            namespace=client.namespace,
            task_token=claim.task_token,
            identity=_identity(claim, request_id),
            failure=Failure(
                message=error or "the executor failed",
                application_failure_info=ApplicationFailureInfo(
                    type=ACTION_FAILED, non_retryable=True
                ),
            ),
        )
        await self._finish(
            org,
            client,
            claim,
            request_id,
            client.workflow_service.respond_activity_task_failed,
            request,
        )

    async def _open(self, org: OrgContext, token: str) -> tuple[_Token, Client]:
        claim = _Token.decode(token)
        target = self.router.target(org)
        if claim.org_id != org.org_id or claim.namespace != target.namespace:
            # Another org's claim is not refused as such: it is simply not found here.
            raise ClaimNotFoundError("claim_token is not a claim of this organization")
        return claim, await self.router.client(org)

    async def _finish(
        self,
        org: OrgContext,
        client: Client,
        claim: _Token,
        request_id: str | None,
        call: Any,
        request: Any,
    ) -> None:
        heartbeat = RecordActivityTaskHeartbeatRequest(
            namespace=client.namespace, task_token=claim.task_token, identity=claim.identity
        )
        try:
            # Answered by id, timed out or cancelled: the executor learns it instead of a
            # silent success (Temporal would take the result of a cancelled activity).
            beat = await client.workflow_service.record_activity_task_heartbeat(
                heartbeat, timeout=self.rpc_timeout
            )
            if beat.cancel_requested:
                raise ActionClosedError(
                    f"action '{claim.action_id}' of run '{claim.workflow_id}' was answered "
                    "elsewhere, timed out, or its run was cancelled: stop working on it"
                )
            await call(request, timeout=self.rpc_timeout)
        except RPCError as error:
            if (
                request_id
                and error.status == RPCStatusCode.NOT_FOUND
                and await self._taken(client, claim, request_id)
            ):
                return  # a retry of a call that was taken
            raise self._closed(error, claim, org) from None

    async def _taken(self, client: Client, claim: _Token, request_id: str) -> bool:
        """Whether the run's history holds this claim's result (a retry after a lost answer)."""
        scheduled: set[int] = set()
        done = {
            EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: (
                "activity_task_completed_event_attributes"
            ),
            EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
        }
        token = b""
        while True:
            response = await client.workflow_service.get_workflow_execution_history(
                GetWorkflowExecutionHistoryRequest(
                    namespace=client.namespace,
                    execution=WorkflowExecution(workflow_id=claim.workflow_id, run_id=claim.run_id),
                    next_page_token=token,
                ),
                timeout=self.rpc_timeout,
            )
            for event in response.history.events:
                if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                    if event.activity_task_scheduled_event_attributes.activity_id == (
                        claim.action_id
                    ):
                        scheduled.add(event.event_id)
                elif event.event_type in done:
                    attributes = getattr(event, done[event.event_type])
                    if attributes.scheduled_event_id in scheduled and attributes.identity == (
                        _identity(claim, request_id)
                    ):
                        return True
            token = response.next_page_token
            if not token:
                return False

    def _closed(self, error: RPCError, claim: _Token, org: OrgContext) -> Exception:
        where = self.router.where(org)
        if error.status == RPCStatusCode.NOT_FOUND:
            if "workflow execution already completed" in (error.message or ""):
                return ActionClosedError(
                    f"run '{claim.workflow_id}' in {where} has ended: its action "
                    f"'{claim.action_id}' takes no result"
                )
            return LeaseExpiredError(
                f"the claim of action '{claim.action_id}' of run '{claim.workflow_id}' is no "
                f"longer held: its lease ran out (no heartbeat within {claim.lease:g}s), or it "
                "was reported already; the action may have been given to another executor"
            )
        refusal = temporal_refusal(error, where)
        if refusal is not None:
            return refusal
        if error.status == RPCStatusCode.INVALID_ARGUMENT:
            return ClaimNotFoundError(f"claim_token is not valid in {where}: {error.message}")
        return error


def _identity(claim: _Token, request_id: str | None) -> str:
    return f"{claim.identity}|{request_id}" if request_id else claim.identity


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_TRACE_HEADER: Final = "_tracer-data"
"""The Temporal header in which its TracingInterceptor carries the trace context (a JSON
object of W3C keys), on the activity the workflow's ``StartActivity`` span offered."""


def _activity_trace(response: PollActivityTaskQueueResponse) -> dict[str, str] | None:
    """The trace context of the workflow's span that offered the action (tracing on), so
    that the executor's span is its child; None when the activity carries none."""
    payload = response.header.fields.get(_TRACE_HEADER) if response.HasField("header") else None
    if payload is None:
        return None
    try:
        carrier = json.loads(payload.data)
    except ValueError:
        return None
    if not isinstance(carrier, dict) or not isinstance(carrier.get("traceparent"), str):
        return None
    return {
        key: carrier[key]
        for key in ("traceparent", "tracestate")
        if isinstance(carrier.get(key), str) and carrier[key]
    }
