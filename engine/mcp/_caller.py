"""One caller of the MCP tools: its token, the engine's services on its behalf, its claims.

Every call goes to the gRPC control plane with the caller's own token, so the org pinning, the
roles and the errors are exactly those of the gRPC API: the MCP server adds no authority of its
own. A delegate (or shell, or MCP) action an agent takes is claimed through the executor
protocol and held for it here: the claim's lease is kept by heartbeats while the agent works,
until it submits a result, gives the action back, or leaves it for longer than ``hold``
seconds (then the action goes back to its queue, for another executor).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from engine.api.v1 import definition_service_pb2_grpc, workflow_service_pb2_grpc
from engine.config import ClientSettings
from engine.executor import ClaimedAction, Executor, ExecutorError

__all__ = ["DEFAULT_HOLD", "CallRefusedError", "Caller"]

_T = TypeVar("_T")
DEFAULT_HOLD: Final = 3600.0
"""Seconds an action taken for an agent is held without a result before it is given back."""
_TIMEOUT: Final = 30.0


class CallRefusedError(Exception):
    """The control plane refused a call: ``CODE: message``, then each field violation."""

    def __init__(self, code: str, message: str, violations: tuple[tuple[str, str], ...] = ()):
        lines = [f"{code}: {message.splitlines()[0] if violations and message else message}"]
        lines += [f"  {field}: {description}" for field, description in violations]
        super().__init__("\n".join(lines))
        self.code = code


class Caller:
    """The engine's services on behalf of one token.

    Args:
        channel: The channel to the control plane (shared by every caller of a server).
        token: The caller's bearer token.
        identity: Who claims actions, for the runs' histories.
        hold: See :data:`DEFAULT_HOLD`.
    """

    def __init__(
        self,
        channel: grpc.aio.Channel,
        token: str | None,
        *,
        identity: str,
        hold: float = DEFAULT_HOLD,
    ) -> None:
        self.metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self.workflows = workflow_service_pb2_grpc.WorkflowServiceStub(channel)
        self.definitions = definition_service_pb2_grpc.DefinitionServiceStub(channel)
        self.executor = Executor(ClientSettings(token=token), identity=identity, channel=channel)
        self.hold = hold
        self.claims: dict[str, ClaimedAction] = {}
        self._expiry: dict[str, asyncio.TimerHandle] = {}

    async def call(self, method: Callable[..., Awaitable[_T]], request: Any) -> _T:
        """One call of the gRPC API with the caller's token.

        Raises:
            CallRefusedError: The call's status (and its field violations), for the agent.
        """
        try:
            return await method(request, metadata=self.metadata, timeout=_TIMEOUT)
        except grpc.aio.AioRpcError as error:
            raise _refused(error) from None

    async def claim(self, action_type: str, agent: str, wait: float) -> ClaimedAction | None:
        """Take the next action of a queue, held for the caller (see the module docstring)."""
        try:
            claimed = await self.executor.claim(action_type, agent or None, wait=wait)
        except ExecutorError as error:
            raise CallRefusedError(error.code.name, error.message) from None
        if claimed is None:
            return None
        self.claims[claimed.action_id] = claimed
        loop = asyncio.get_running_loop()
        self._expiry[claimed.action_id] = loop.call_later(
            self.hold, lambda: loop.create_task(self.release(claimed.action_id))
        )
        return claimed

    async def report(self, action_id: str, result: Any, error: str | None) -> None:
        """Complete (or fail) a held claim; it is no longer held once reported.

        Raises:
            CallRefusedError: A result of the wrong shape (the claim stays held: answer again),
                or a claim that ran out.
        """
        claimed = self.claims[action_id]
        try:
            if error is not None:
                await claimed.fail(error)
            else:
                await claimed.complete(result)
        except ExecutorError as refused:
            if claimed.finished:
                self._forget(action_id)
            raise CallRefusedError(refused.code.name, refused.message) from None
        self._forget(action_id)

    async def release(self, action_id: str) -> bool:
        """Give a held claim back to its queue now; False if it was not held."""
        claimed = self.claims.get(action_id)
        if claimed is None:
            return False
        self._forget(action_id)
        with contextlib.suppress(ExecutorError):
            await claimed.abandon()
        return True

    async def close(self) -> None:
        """Give every held claim back (the caller is gone)."""
        for action_id in list(self.claims):
            await self.release(action_id)

    def _forget(self, action_id: str) -> None:
        self.claims.pop(action_id, None)
        timer = self._expiry.pop(action_id, None)
        if timer is not None:
            timer.cancel()


def _refused(error: grpc.aio.AioRpcError) -> CallRefusedError:
    violations: list[tuple[str, str]] = []
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations += [(v.field, v.description) for v in bad.field_violations]
    return CallRefusedError(error.code().name, error.details() or "", tuple(violations))
