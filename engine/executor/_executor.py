"""An executor: claims actions over the engine's gRPC API, heartbeats, reports results."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

import grpc
from google.protobuf import duration_pb2

from engine.api.v1 import executor_service_pb2 as pb
from engine.api.v1 import executor_service_pb2_grpc as pb_grpc
from engine.api.v1 import resources_pb2
from engine.config import ClientSettings
from engine.wire import enum_name, enum_value, from_struct, to_value

if TYPE_CHECKING:
    from opentelemetry.trace import Span, TracerProvider

__all__ = ["ClaimedAction", "Executor", "ExecutorError", "client_channel"]

log = logging.getLogger("engine.executor")

_T = TypeVar("_T")
_TRANSIENT: Final = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})
_LONGEST_PAUSE: Final = 30.0
"""Seconds a runner waits at most between two tries while the control plane is away."""
_ATTEMPTS: Final = 6
"""Calls made of one report before giving up on a control plane that does not answer."""


class ExecutorError(Exception):
    """A call the control plane refused (``code`` and ``reason`` say why)."""

    def __init__(self, code: grpc.StatusCode, message: str, reason: str = "") -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.reason = reason


class ClaimedAction:
    """One action claimed by this executor: perform it, then :meth:`complete` or :meth:`fail`.

    While it is held, heartbeats keep its lease (a third of the lease apart). When one says
    to stop (the action was answered by id, timed out, or its run was cancelled),
    :attr:`stopped` is set: leave the work, the result would be refused.

    Attributes:
        action: The pending action as JSON (``action_id``, ``type``, ``step_id``,
            ``parameters``, ``workflow_id``, ...).
        delivery: 1 for the first delivery; +1 each time a lease expired before.
        lease: How long the claim holds without a heartbeat.
        lease_deadline: When the lease runs out unless a heartbeat renews it.
        stopped: Set when the engine says to stop working on it.
        span: The executor's span of the action (a ``CONSUMER`` span, child of the action's
            ``trace``; ended when the action is reported or abandoned), or None when neither
            the action nor the executor is traced.
    """

    def __init__(
        self,
        executor: Executor,
        claimed: pb.ClaimedAction,
        on_done: Callable[[], None] | None = None,
    ) -> None:
        self._executor = executor
        self._on_done = on_done
        self._token = claimed.claim_token
        self.action = _action_json(claimed.action)
        self.delivery = claimed.delivery
        self.lease = claimed.lease.ToTimedelta()
        self.lease_deadline = claimed.lease_deadline.ToDatetime(tzinfo=UTC)
        self.stopped = asyncio.Event()
        self._finished = asyncio.Event()
        # One report per claim, the same on every attempt: a retry of a report that was taken
        # is answered with its outcome.
        self._request_id = f"{self.action_id}/{self.delivery}/{_PROCESS}"
        self.span: Span | None = None
        self._trace: tuple[tuple[str, str], ...] = ()
        if self.action.get("trace") or executor.tracer_provider is not None:
            self.span, self._trace = _start_span(self, executor.tracer_provider)
        self._heartbeats = asyncio.get_running_loop().create_task(self._heartbeat())

    @property
    def action_id(self) -> str:
        """The action's id."""
        return str(self.action["action_id"])

    @property
    def type(self) -> str:
        """shell, mcp_call or delegate."""
        return str(self.action["type"])

    @property
    def parameters(self) -> dict[str, Any]:
        """The step's rendered fields (a shell's ``command``, ``workdir``, ``env``, ...)."""
        parameters: dict[str, Any] = self.action.get("parameters") or {}
        return parameters

    @property
    def finished(self) -> bool:
        """Whether a result or a failure was reported (or the claim was given up)."""
        return self._finished.is_set()

    async def complete(self, result: Any) -> None:
        """Report the result; checked against the action's shape before anything is written.

        Raises:
            ExecutorError: INVALID_ARGUMENT (a result of the wrong shape: fix it and call
                again), FAILED_PRECONDITION (the lease ran out or the action was answered
                elsewhere: drop it), or the control plane did not answer.
        """
        request = pb.CompleteActionRequest(
            claim_token=self._token, result=to_value(result), request_id=self._request_id
        )
        await self._report(self._executor._stub.CompleteAction, request)
        self._end_span(None)

    async def fail(self, message: str) -> None:
        """Report that the action could not be performed (the step's ``on_error`` applies).

        Raises:
            ExecutorError: As for :meth:`complete`.
        """
        request = pb.FailActionRequest(
            claim_token=self._token, error=message or "failed", request_id=self._request_id
        )
        await self._report(self._executor._stub.FailAction, request)
        self._end_span(message or "failed")

    async def abandon(self) -> None:
        """Stop heartbeating without a report: the action goes to another executor once the
        lease runs out."""
        await self._stop()
        self._end_span("abandoned")

    async def _report(self, method: Callable[..., Awaitable[Any]], request: Any) -> None:
        try:
            # The same request id on every attempt: a retry of a call that was taken succeeds.
            await self._executor._call(method, request, trace=self._trace)
        except ExecutorError as error:
            if error.code != grpc.StatusCode.INVALID_ARGUMENT:
                await self._stop()
                self._end_span(f"not taken: {error}")
            raise
        await self._stop()

    def _end_span(self, error: str | None) -> None:
        span, self.span = self.span, None
        if span is None:
            return
        if error is not None:
            from opentelemetry.trace import StatusCode

            span.set_status(StatusCode.ERROR, error[:500])
        span.end()

    async def _stop(self) -> None:
        if self._finished.is_set():
            return
        self._finished.set()
        self._heartbeats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._heartbeats
        if self._on_done is not None:
            self._on_done()

    async def _heartbeat(self) -> None:
        interval = max(self.lease.total_seconds() / 3, 0.05)
        while not self._finished.is_set():
            # A third of a lease apart, and sooner when the lease is already running out (an
            # action may wait a moment in the control plane before it is claimed).
            left = (self.lease_deadline - datetime.now(UTC)).total_seconds()
            await asyncio.sleep(min(interval, max(left / 2, 0.0)))
            request = pb.HeartbeatActionRequest(claim_token=self._token)
            try:
                response = await self._executor._call(
                    self._executor._stub.HeartbeatAction, request, trace=self._trace
                )
            except ExecutorError as error:
                log.warning("heartbeat of action %s refused: %s", self.action_id, error)
                self.stopped.set()
                return
            if response.stop:
                self.stopped.set()
                return
            self.lease_deadline = response.lease_deadline.ToDatetime(tzinfo=UTC)


class Executor:
    """A connection to the control plane that claims actions of the caller's organization.

    Args:
        settings: Where the control plane is and the token (``ClientSettings.resolve()``:
            ``ENGINE_ADDRESS``, ``ENGINE_TOKEN``, ``.engine/dev.env``).
        identity: Who claims, for the runs' histories (default: the host name).
        channel: An open channel to use instead of one made from ``settings``.
        tracer_provider: Where the spans of the actions go (default: OpenTelemetry's global
            provider, for actions that carry a trace; see :attr:`ClaimedAction.span`).

    Example::

        async with Executor(ClientSettings.resolve()) as executor:
            async for action in executor.actions("shell", concurrency=4):
                result = await run_it(action.parameters)
                await action.complete(result)
    """

    def __init__(
        self,
        settings: ClientSettings | None = None,
        *,
        identity: str | None = None,
        channel: grpc.aio.Channel | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.settings = settings or ClientSettings.resolve()
        self.tracer_provider = tracer_provider
        self.identity = identity or socket.gethostname()
        self._own_channel = channel is None
        self._channel = channel or client_channel(self.settings)
        self._stub = pb_grpc.ExecutorServiceStub(self._channel)

    async def __aenter__(self) -> Executor:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the connection (claims still held run out with their leases)."""
        if self._own_channel:
            await self._channel.close()

    async def claim(
        self,
        action_type: str,
        agent: str | None = None,
        *,
        wait: float = 30.0,
        on_done: Callable[[], None] | None = None,
    ) -> ClaimedAction | None:
        """Wait up to ``wait`` seconds for the next action of a queue and claim it.

        Args:
            action_type: ``shell``, ``mcp_call`` or ``delegate`` (a prompt is answered by id).
            agent: For ``delegate``: the agent (``@reviewer``).
            wait: Longest to wait (at most 60 s).
            on_done: Called once the claim is reported or abandoned.

        Returns:
            The claimed action, or None when none came in time.
        """
        request = pb.PollActionRequest(
            action_type=resources_pb2.ActionType.ValueType(
                enum_value(resources_pb2.ActionType, action_type)
            ),
            agent=agent or "",
            wait=_duration(wait),
            identity=self.identity,
        )
        response = await self._call(self._stub.PollAction, request, timeout=wait + 30)
        if not response.HasField("action"):
            return None
        return ClaimedAction(self, response.action, on_done)

    async def actions(
        self,
        action_type: str,
        agent: str | None = None,
        *,
        concurrency: int = 1,
        wait: float = 30.0,
        slots: asyncio.Semaphore | None = None,
    ) -> AsyncIterator[ClaimedAction]:
        """Claim actions one after the other, at most ``concurrency`` held at once.

        A claim is held until it is completed, failed or abandoned; the next is claimed only
        when a slot is free, so this executor never holds an action it cannot work on. Pollers
        of several queues may share their ``slots`` (then ``concurrency`` is not used); each
        holds one while it waits for an action.
        """
        slots = slots or asyncio.Semaphore(concurrency)
        while True:
            await slots.acquire()
            try:
                claimed = await self.claim(action_type, agent, wait=wait, on_done=slots.release)
            except BaseException:
                slots.release()
                raise
            if claimed is None:
                slots.release()
                continue
            yield claimed

    async def perform_all(
        self,
        action_type: str,
        perform: Callable[[ClaimedAction], Awaitable[None]],
        *,
        routes: tuple[str | None, ...] = (None,),
        concurrency: int = 1,
        wait: float = 30.0,
    ) -> None:
        """Claim actions of a type (from the queue of each of ``routes``: None for the type's
        own, else an agent or a runner label) and ``perform`` each as a task, at most
        ``concurrency`` at once in all, until cancelled; the actions still being performed
        are cancelled then. While the control plane is unavailable it keeps trying.

        Raises:
            ExecutorError: The control plane refused to give actions (a bad token, say).
        """
        slots = asyncio.Semaphore(concurrency)
        running: set[asyncio.Task[None]] = set()

        async def poll(route: str | None) -> None:
            pause = 1.0
            while True:
                try:
                    async for claimed in self.actions(action_type, route, wait=wait, slots=slots):
                        pause = 1.0
                        task: asyncio.Task[None] = asyncio.create_task(_performed(perform, claimed))
                        running.add(task)
                        task.add_done_callback(running.discard)
                except ExecutorError as error:
                    if error.code not in _TRANSIENT:
                        raise  # a refusal (a bad token, say): retrying would not change it
                    # The control plane is away (restarting, say): a runner waits for it.
                    log.warning("cannot claim actions (%s); again in %gs", error, pause)
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, _LONGEST_PAUSE)

        try:
            await asyncio.gather(*(poll(route) for route in routes))
        finally:
            for task in list(running):
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _call(
        self,
        method: Callable[..., Awaitable[_T]],
        request: Any,
        *,
        timeout: float = 30.0,
        trace: tuple[tuple[str, str], ...] = (),
    ) -> _T:
        """One call with the token (and ``trace``: traceparent metadata), retried while the
        control plane is unavailable."""
        token = self.settings.token
        metadata = (("authorization", f"Bearer {token}"),) if token else ()
        if trace:
            metadata = (*metadata, *trace)
        delay = 0.2
        for attempt in range(_ATTEMPTS):
            try:
                return await method(request, metadata=metadata, timeout=timeout)
            except grpc.aio.AioRpcError as error:
                if error.code() not in _TRANSIENT or attempt == _ATTEMPTS - 1:
                    raise _refusal(error) from None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        raise AssertionError("unreachable")  # pragma: no cover


async def _performed(
    perform: Callable[[ClaimedAction], Awaitable[None]], claimed: ClaimedAction
) -> None:
    if claimed.span is None:
        await perform(claimed)
        return
    from opentelemetry import trace

    # The action's span is current while it is performed: the performer's own spans (and
    # its log lines' trace ids) belong to it. Ended by the report, not here.
    with trace.use_span(claimed.span, end_on_exit=False):
        await perform(claimed)


async def report_or_log(claimed: ClaimedAction, report: Awaitable[None]) -> None:
    """Await a report of ``claimed``; a refusal (its lease ran out meanwhile, or it was answered
    elsewhere) is logged: a runner has nothing else to do about it."""
    try:
        await report
    except ExecutorError as error:
        log.warning("the outcome of action %s was not taken: %s", claimed.action_id, error)


_PROCESS: Final = uuid.uuid4().hex[:12]
"""Tells this process's reports from another's (a claim is one executor's at a time)."""


def client_channel(settings: ClientSettings) -> grpc.aio.Channel:
    """An asyncio channel to the control plane the settings name (TLS when they say so)."""
    if settings.tls:
        root = Path(settings.ca_file).read_bytes() if settings.ca_file else None
        return grpc.aio.secure_channel(
            settings.address, grpc.ssl_channel_credentials(root_certificates=root)
        )
    return grpc.aio.insecure_channel(settings.address)


def _duration(seconds: float) -> duration_pb2.Duration:
    message = duration_pb2.Duration()
    message.FromTimedelta(timedelta(seconds=seconds))
    return message


def _refusal(error: grpc.aio.AioRpcError) -> ExecutorError:
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    reason = ""
    with contextlib.suppress(ValueError):
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
        for detail in status.details if status is not None else ():
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
    return ExecutorError(error.code(), error.details() or "", reason)


def _action_json(action: resources_pb2.PendingAction) -> dict[str, Any]:
    from google.protobuf import json_format

    data: dict[str, Any] = json_format.MessageToDict(action, preserving_proto_field_name=True)
    data["parameters"] = from_struct(action.parameters)
    if action.HasField("state"):
        data["state"] = from_struct(action.state)
    data["type"] = enum_name(resources_pb2.ActionType, action.type)
    return data


def _start_span(
    claimed: ClaimedAction, provider: TracerProvider | None
) -> tuple[Span, tuple[tuple[str, str], ...]]:
    """The executor's span of an action, child of the action's trace context (a trace of its
    own when the action carries none), and the metadata that carries it to the control plane.
    Imported here: an executor whose actions are not traced never loads OpenTelemetry."""
    from opentelemetry import trace

    from engine.telemetry.tracing import context_of, trace_metadata

    action = claimed.action
    tracer = trace.get_tracer("engine.executor", tracer_provider=provider)
    span = tracer.start_span(
        f"PerformAction:{claimed.type}",
        context=context_of(action.get("trace")),
        kind=trace.SpanKind.CONSUMER,
        attributes={
            "engine.action_id": claimed.action_id,
            "engine.action_type": claimed.type,
            "engine.step_id": str(action.get("step_id", "")),
            "engine.workflow_id": str(action.get("workflow_id", "")),
            "engine.run_id": str(action.get("run_id", "")),
            "engine.delivery": claimed.delivery,
        },
    )
    return span, trace_metadata(trace.set_span_in_context(span))
