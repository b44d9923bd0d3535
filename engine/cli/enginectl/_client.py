"""The connection of ``enginectl`` to the control plane: channel, calls and errors.

Where the address and the token come from is :class:`engine.config.ClientSettings`. The client
uses gRPC's synchronous API: a command makes a handful of calls one after the other,
and only ``run --follow`` reads a stream. Every failure becomes a :class:`CliError` with a
message for a person (never a traceback).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar, cast

import grpc
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from engine.api.v1 import (
    definition_service_pb2_grpc,
    executor_service_pb2_grpc,
    link_service_pb2_grpc,
    organization_service_pb2_grpc,
    schedule_service_pb2_grpc,
    workflow_service_pb2_grpc,
)
from engine.config import ClientSettings

__all__ = ["CallFailedError", "CliError", "EngineClient"]

_Response = TypeVar("_Response", bound=Message)


class CliError(Exception):
    """A failure to report as ``enginectl: <message>`` (exit status 1)."""


class CallFailedError(CliError):
    """A call the control plane answered with an error status.

    Attributes:
        code: The gRPC status code.
        message: The status message.
        violations: The ``BadRequest`` field violations, as ``(field, description)``.
        hint: A suggestion for the person at the terminal, if there is an obvious one.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        violations: tuple[tuple[str, str], ...] = (),
        hint: str = "",
    ) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.violations = violations
        self.hint = hint

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def lines(self) -> list[str]:
        """``<CODE>: <message>``, then each field violation and the hint on its own line."""
        message = self.message
        if self.violations:
            # The status message repeats the violations (one per line): say it once.
            message = message.splitlines()[0] if message else ""
        lines = [f"{self.code.name}: {message}"]
        lines.extend(f"  {field}: {description}" for field, description in self.violations)
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return lines


class EngineClient:
    """The services of the control plane behind one channel.

    Args:
        settings: Where the control plane is, and the token.
        timeout: Deadline of each unary call, in seconds.
        connect_timeout: How long to wait for the channel to connect before giving up.
    """

    def __init__(
        self, settings: ClientSettings, *, timeout: float = 30.0, connect_timeout: float = 5.0
    ) -> None:
        self.settings = settings
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        if settings.tls:
            root = Path(settings.ca_file).read_bytes() if settings.ca_file else None
            credentials = grpc.ssl_channel_credentials(root_certificates=root)
            self.channel = grpc.secure_channel(settings.address, credentials)
        else:
            self.channel = grpc.insecure_channel(settings.address)
        self.organizations = organization_service_pb2_grpc.OrganizationServiceStub(self.channel)
        self.definitions = definition_service_pb2_grpc.DefinitionServiceStub(self.channel)
        self.workflows = workflow_service_pb2_grpc.WorkflowServiceStub(self.channel)
        self.schedules = schedule_service_pb2_grpc.ScheduleServiceStub(self.channel)
        self.executors = executor_service_pb2_grpc.ExecutorServiceStub(self.channel)
        self.links = link_service_pb2_grpc.LinkServiceStub(self.channel)
        self._connected = False

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()

    def _metadata(self) -> list[tuple[str, str]]:
        if self.settings.token:
            return [("authorization", f"Bearer {self.settings.token}")]
        return []

    def connect(self) -> None:
        """Wait (at most ``connect_timeout``) for the channel to be ready.

        Raises:
            CliError: Nothing answered at the address.
        """
        if self._connected:
            return
        try:
            grpc.channel_ready_future(self.channel).result(timeout=self.connect_timeout)
        except grpc.FutureTimeoutError:
            scheme = "TLS" if self.settings.tls else "plaintext"
            raise CliError(
                f"cannot connect to the control plane at {self.settings.address} "
                f"({scheme}, address from {self.settings.origin}): no answer within "
                f"{self.connect_timeout:g}s; is it running ('engined dev')? "
                "Set ENGINE_ADDRESS or pass --address."
            ) from None
        self._connected = True

    def call(
        self,
        method: Callable[..., _Response],
        request: Message,
        *,
        timeout: float | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> _Response:
        """Make a unary call with the token and the deadline (``timeout``, else the client's),
        and ``metadata`` besides (an action's ``traceparent``, so the call joins its trace).

        Raises:
            CliError: The channel did not connect.
            CallFailedError: The call failed.
        """
        self.connect()
        try:
            return method(
                request, metadata=[*self._metadata(), *metadata], timeout=timeout or self.timeout
            )
        except grpc.RpcError as error:
            raise self.failure(error) from None

    def stream(
        self, method: Callable[..., Iterator[_Response]], request: Message
    ) -> Iterator[_Response]:
        """Read a server stream (no deadline: it lasts as long as what it watches).

        Raises:
            CliError: The channel did not connect.
            CallFailedError: The call failed, at its start or later.
        """
        self.connect()
        responses = method(request, metadata=self._metadata())
        try:
            yield from responses
        except grpc.RpcError as error:
            raise self.failure(error) from None
        finally:
            cancel = getattr(responses, "cancel", None)
            if cancel is not None:
                cancel()

    def failure(self, error: grpc.RpcError) -> CallFailedError:
        """The :class:`CallFailedError` of a failed call, with its rich details decoded."""
        call = cast(grpc.Call, error)
        code = call.code()
        message = call.details() or ""
        violations: list[tuple[str, str]] = []
        try:
            status = rpc_status.from_call(call)
        except ValueError:  # details that do not match the status: keep the plain message
            status = None
        for detail in status.details if status is not None else ():
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                violations.extend((v.field, v.description) for v in bad_request.field_violations)
        hint = ""
        if code == grpc.StatusCode.UNAUTHENTICATED and not self.settings.token:
            hint = "set ENGINE_TOKEN or pass --token (enginectl token create --org ORG)"
        elif code == grpc.StatusCode.UNAVAILABLE and "connect" in message.lower():
            hint = f"is the control plane at {self.settings.address} still running?"
        return CallFailedError(code, message, tuple(violations), hint)
