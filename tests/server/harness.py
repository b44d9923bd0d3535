"""A running control plane for tests, wired like ``engined serve`` does it.

Imported by the server tests (through ``tests/server/conftest.py``) and by the client tests of
other languages. The stack is the real one, the engine's :class:`~engine.stack.Stack` over a
:class:`~engine.tenancy.PrefixResolver` with a prefix of its own, and its control plane on a
free port. Tests talk to it only over a real gRPC channel with the generated stubs (or none at
all).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import grpc
import jwt
import pytest
from google.protobuf import any_pb2
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from engine.api.v1 import (
    definition_service_pb2,
    definition_service_pb2_grpc,
    organization_service_pb2_grpc,
    workflow_service_pb2_grpc,
)
from engine.context import OrgContext
from engine.dispatcher import TemporalDispatcher
from engine.identity import LinkSigner, TokenVerifier, issue_token
from engine.server import ControlPlane
from engine.tenancy import Endpoint, PrefixResolver
from tests.tenancy.orgkit import TASK_QUEUE, Tenancy, eventually, unique_prefix, worker_options

__all__ = [
    "LINK_SECRET",
    "SECRET",
    "ControlPlaneKit",
    "ServingStack",
    "ask_yaml",
    "bearer",
    "detail",
    "drain",
    "error_info",
    "eventually",
    "expired_token",
    "open_control_plane",
    "open_stack",
    "quick_yaml",
    "rich_status",
    "unique",
]


SECRET = "test-secret-" + uuid.uuid4().hex
LINK_SECRET = "test-link-secret-" + uuid.uuid4().hex
"""The HS256 secret the tests' control planes verify tokens with."""

_M = TypeVar("_M", bound=Message)


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying ``token``."""
    return (("authorization", f"Bearer {token}"),)


def expired_token(org_id: str, *, secret: str = SECRET, roles: Sequence[str] = ()) -> str:
    """A well-signed token of ``org_id`` that expired a minute ago."""
    now = int(time.time())
    payload = {"org": org_id, "roles": list(roles), "iat": now - 3600, "exp": now - 60}
    return jwt.encode(payload, secret, algorithm="HS256")


def rich_status(error: grpc.RpcError) -> status_pb2.Status:
    """The google.rpc.Status of a failed call (its code and message match the call's)."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, f"no rich status in {error!r}"
    return status


def detail(status: status_pb2.Status, kind: type[_M]) -> _M:
    """The one detail of type ``kind`` in ``status`` (fails when absent or repeated)."""
    found: list[_M] = []
    for packed in status.details:
        assert isinstance(packed, any_pb2.Any)
        if packed.Is(kind.DESCRIPTOR):
            message = kind()
            packed.Unpack(message)
            found.append(message)
    assert len(found) == 1, f"expected one {kind.__name__} in {status}"
    return found[0]


def error_info(status: status_pb2.Status) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo every engine error carries."""
    return detail(status, error_details_pb2.ErrorInfo)


class ServingStack(Tenancy):
    """What one control-plane process holds: its stack and its started control plane."""

    plane: ControlPlane

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.plane.port}"

    async def close(self) -> None:
        if hasattr(self, "plane"):
            await self.plane.stop(grace=1.0)
        await super().close()


async def open_stack(
    resolver: PrefixResolver,
    *,
    workers: bool,
    verifier: TokenVerifier | None = None,
    tls: tuple[str, str] | None = None,
    action_lease: timedelta | None = None,
) -> ServingStack:
    """Build and start a control plane (and, with ``workers``, a worker pool) on a free port.

    Without workers the stack relies on another process's pool serving the namespaces, as a
    control-plane replica started with ``engined serve --no-worker`` does. ``verifier``
    defaults to HS256 with :data:`SECRET`; ``tls`` is (certificate file, key file).
    """
    stack = ServingStack(
        resolver,
        task_queue=TASK_QUEUE,
        workers=worker_options() if workers else None,
        refresh_interval=None,
        action_lease=action_lease,
    )
    try:
        await stack.start()
        stack.plane = stack.control_plane(
            verifier or TokenVerifier(SECRET),
            address="127.0.0.1:0",
            tls_cert=tls[0] if tls else None,
            tls_key=tls[1] if tls else None,
            links=LinkSigner(LINK_SECRET),
        )
        assert stack.plane.port > 0
        await stack.plane.start()
    except BaseException:
        await stack.close()
        raise
    return stack


@dataclass
class ControlPlaneKit:
    """A started control plane with provisioned orgs, and ways to call it.

    Attributes:
        stack: The serving stack (tests may reach in to break things on purpose).
        orgs: The provisioned org ids.
        channels: Every channel handed out, closed at teardown.
    """

    stack: ServingStack
    orgs: tuple[str, ...]
    channels: list[grpc.aio.Channel] = field(default_factory=list)

    @property
    def address(self) -> str:
        """``host:port`` of the server."""
        return self.stack.address

    @property
    def prefix(self) -> str:
        """The namespace prefix of this kit's orgs."""
        return self.stack.resolver.prefix

    @property
    def dispatcher(self) -> TemporalDispatcher:
        return self.stack.dispatcher

    def namespace(self, org_id: str) -> str:
        return self.stack.resolver.resolve(org_id).namespace

    def org(self, org_id: str) -> OrgContext:
        """The org context the server's interceptor builds for a token of ``org_id``."""
        return OrgContext(org_id, self.namespace(org_id))

    def token(
        self,
        org_id: str = "acme",
        *,
        roles: Sequence[str] = (),
        ttl: int = 600,
        subject: str | None = None,
    ) -> str:
        """A valid token of ``org_id``."""
        return issue_token(SECRET, org_id, roles=roles, ttl_seconds=ttl, subject=subject)

    def auth(
        self, org_id: str = "acme", *, roles: Sequence[str] = (), subject: str | None = None
    ) -> tuple[Any, ...]:
        """Call metadata with a valid token of ``org_id``."""
        return bearer(self.token(org_id, roles=roles, subject=subject))

    async def register(self, text: str, org_id: str = "acme") -> None:
        """Register a definition in ``org_id`` through the API."""
        stub = definition_service_pb2_grpc.DefinitionServiceStub(self.channel())
        await stub.RegisterDefinition(
            definition_service_pb2.RegisterDefinitionRequest(yaml=text),
            metadata=self.auth(org_id),
        )

    def channel(self) -> grpc.aio.Channel:
        """A new real channel to the server (closed at teardown)."""
        channel = grpc.aio.insecure_channel(self.address)
        self.channels.append(channel)
        return channel

    def stubs(
        self,
    ) -> tuple[
        organization_service_pb2_grpc.OrganizationServiceStub,
        definition_service_pb2_grpc.DefinitionServiceStub,
        workflow_service_pb2_grpc.WorkflowServiceStub,
    ]:
        """The three services' stubs over one new channel."""
        channel = self.channel()
        return (
            organization_service_pb2_grpc.OrganizationServiceStub(channel),
            definition_service_pb2_grpc.DefinitionServiceStub(channel),
            workflow_service_pb2_grpc.WorkflowServiceStub(channel),
        )

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()
        await self.stack.close()


async def open_control_plane(
    temporal_address: str,
    *,
    tag: str,
    orgs: Iterable[str] = ("acme", "globex"),
    action_lease: timedelta | None = None,
) -> ControlPlaneKit:
    """Start a control plane with its worker pool and provision ``orgs`` concurrently."""
    resolver = PrefixResolver(Endpoint(temporal_address), unique_prefix(tag))
    stack = await open_stack(resolver, workers=True, action_lease=action_lease)
    wanted = tuple(orgs)
    try:
        await asyncio.gather(*(stack.provisioner.provision(org_id) for org_id in wanted))
    except BaseException:
        await stack.close()
        raise
    return ControlPlaneKit(stack, wanted)


def unique(name: str) -> str:
    """A definition name (or workflow id) no other test uses."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def ask_yaml(name: str, version: int = 1, *, timeout: str | None = None) -> str:
    """A definition that waits on one confirm prompt, then greets (or declines)."""
    limit = f", timeout: {timeout}" if timeout else ""
    return f"""\
name: {name}
version: {version}
description: Ask before greeting (v{version})
inputs:
  who: {{type: string, default: world}}
  times: {{type: integer, default: 1}}
steps:
  - {{id: ask, type: prompt, prompt_type: confirm, message: "Greet ${{{{ inputs.who }}}}?",
     output_to: ok{limit}}}
  - {{id: done, type: return, value: "${{{{ state.ok ? 'hello ' + inputs.who : 'no' }}}}"}}
"""


def quick_yaml(name: str) -> str:
    """A definition of inline steps only: it completes as soon as a worker runs it."""
    return f"""\
name: {name}
version: 1
inputs:
  n: {{type: integer, default: 1}}
steps:
  - {{id: double, type: set_state, set: {{twice: "${{{{ inputs.n * 2 }}}}"}}}}
  - {{id: done, type: return, value: "${{{{ state.twice }}}}"}}
"""


async def drain(stream: Any) -> list[Any]:
    """Every message of a server stream (raising its error, if it ends in one)."""
    return [message async for message in stream]


async def refused(call: Any) -> tuple[grpc.aio.AioRpcError, status_pb2.Status]:
    """The error a call ends with (it must fail), and its rich status."""
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value, rich_status(caught.value)
