"""The ExecutorService servicer: executors claim actions, keep their leases, report results."""

from __future__ import annotations

from typing import Any, Final

from engine.api.v1 import executor_service_pb2 as pb
from engine.api.v1 import executor_service_pb2_grpc as pb_grpc
from engine.api.v1 import resources_pb2
from engine.definition import RUNNER_LABEL
from engine.dispatcher import ActionBroker
from engine.protocol import CLAIMED_ACTION_TYPES, ROUTED_ACTION_TYPES
from engine.server._convert import action_to_proto, duration, timestamp
from engine.server._errors import FieldError
from engine.server._requests import json_value, org_of, required, seconds
from engine.wire import enum_name

__all__ = ["ExecutorServicer"]

_DEFAULT_WAIT: Final = 30.0
_LONGEST_WAIT: Final = 60.0


class ExecutorServicer(pb_grpc.ExecutorServiceServicer):
    """Proxies the executor protocol to the caller's organization (see ``ActionBroker``)."""

    def __init__(self, broker: ActionBroker) -> None:
        self.broker = broker

    async def PollAction(  # noqa: N802 - gRPC method name
        self, request: pb.PollActionRequest, context: Any
    ) -> pb.PollActionResponse:
        action_type = enum_name(resources_pb2.ActionType, request.action_type)
        if not action_type:
            raise FieldError("action_type", "is required: shell, mcp_call or delegate")
        if action_type not in CLAIMED_ACTION_TYPES:
            raise FieldError(
                "action_type",
                f"{action_type} actions are not claimed: a person answers them by id "
                "(SubmitResult); executors claim shell, mcp_call or delegate",
            )
        if request.agent and action_type not in ROUTED_ACTION_TYPES:
            raise FieldError(
                "agent", "is for delegate (an agent) and shell (a runner label) actions only"
            )
        if request.agent and action_type == "shell" and not RUNNER_LABEL.fullmatch(request.agent):
            raise FieldError(
                "agent",
                f"{request.agent!r} is not a runner label: use lower-case letters, digits and "
                "'.', '_', '-' (at most 63 characters)",
            )
        wait = _DEFAULT_WAIT
        if request.HasField("wait"):
            wait = seconds(request.wait, "wait")
            if not 0 <= wait <= _LONGEST_WAIT:
                raise FieldError(
                    "wait", f"must be between 0s and {_LONGEST_WAIT:g}s, got {wait:g}s"
                )
        claim = await self.broker.claim(
            org_of(context),
            action_type,
            request.agent or None,
            wait=wait,
            identity=request.identity,
        )
        if claim is None:
            return pb.PollActionResponse()
        return pb.PollActionResponse(
            action=pb.ClaimedAction(
                action=action_to_proto(claim.action),
                claim_token=claim.token,
                lease=duration(claim.lease),
                lease_deadline=timestamp(claim.lease_deadline),
                delivery=claim.delivery,
            )
        )

    async def HeartbeatAction(  # noqa: N802
        self, request: pb.HeartbeatActionRequest, context: Any
    ) -> pb.HeartbeatActionResponse:
        stop, deadline = await self.broker.heartbeat(
            org_of(context), required(request.claim_token, "claim_token")
        )
        return pb.HeartbeatActionResponse(stop=stop, lease_deadline=timestamp(deadline))

    async def CompleteAction(  # noqa: N802
        self, request: pb.CompleteActionRequest, context: Any
    ) -> pb.CompleteActionResponse:
        await self.broker.complete(
            org_of(context),
            required(request.claim_token, "claim_token"),
            json_value(request.result, "result"),
            request.request_id or None,
        )
        return pb.CompleteActionResponse()

    async def FailAction(  # noqa: N802
        self, request: pb.FailActionRequest, context: Any
    ) -> pb.FailActionResponse:
        await self.broker.fail(
            org_of(context),
            required(request.claim_token, "claim_token"),
            required(request.error, "error"),
            request.request_id or None,
        )
        return pb.FailActionResponse()
