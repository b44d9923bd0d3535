"""Assembling the gRPC server: services, interceptors, health and reflection."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from engine.api.v1 import (
    definition_service_pb2,
    definition_service_pb2_grpc,
    executor_service_pb2,
    executor_service_pb2_grpc,
    link_service_pb2,
    link_service_pb2_grpc,
    organization_service_pb2,
    organization_service_pb2_grpc,
    schedule_service_pb2,
    schedule_service_pb2_grpc,
    workflow_service_pb2,
    workflow_service_pb2_grpc,
)
from engine.dispatcher import ActionBroker, DefinitionRegistry, TemporalDispatcher
from engine.identity import LinkSigner, TokenVerifier
from engine.scheduler import Scheduler
from engine.server._executors import ExecutorServicer
from engine.server._interceptors import ControlPlaneInterceptor
from engine.server._links import PUBLIC_LINK_METHODS, LinkServicer
from engine.server._metering import MeteringInterceptor, RecordCall
from engine.server._schedules import ScheduleServicer
from engine.server._servicers import DefinitionServicer, OrganizationServicer, WorkflowServicer
from engine.server._tracing import TracingInterceptor
from engine.tenancy import NamespaceResolver, OrgDirectory, Provisioner

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

__all__ = ["SERVICE_NAMES", "ControlPlane", "build_server"]

SERVICE_NAMES: Final = (
    organization_service_pb2.DESCRIPTOR.services_by_name["OrganizationService"].full_name,
    definition_service_pb2.DESCRIPTOR.services_by_name["DefinitionService"].full_name,
    workflow_service_pb2.DESCRIPTOR.services_by_name["WorkflowService"].full_name,
    schedule_service_pb2.DESCRIPTOR.services_by_name["ScheduleService"].full_name,
    executor_service_pb2.DESCRIPTOR.services_by_name["ExecutorService"].full_name,
    link_service_pb2.DESCRIPTOR.services_by_name["LinkService"].full_name,
)
SWITCH_INTERVAL: Final = 0.0005
MAX_REQUEST_BYTES: Final = 8 * 1024 * 1024
"""The largest request the control plane reads; larger ones are refused by gRPC itself."""
_PUBLIC: Final = ("/grpc.health.v1.Health/", "/grpc.reflection.", *PUBLIC_LINK_METHODS)
_PLATFORM_ONLY: Final = ("/engine.api.v1.OrganizationService/",)


@dataclass
class ControlPlane:
    """A built, not yet started, gRPC server and the port it bound."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer

    async def start(self) -> None:
        """Start serving and report SERVING for every service."""
        # Definitions are parsed on a thread (see engine.dispatcher.load_off_loop): a shorter
        # GIL switch interval hands the event loop back within 0.5 ms instead of 5 ms, so
        # calls beside a large parse wait that much less at each step.
        sys.setswitchinterval(SWITCH_INTERVAL)
        await self.server.start()
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def serving(self, serving: bool) -> None:
        """Report every service SERVING, or NOT_SERVING (its Temporal is unreachable)."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, status)

    async def stop(self, grace: float = 5.0) -> None:
        """Report NOT_SERVING, then stop, letting in-flight calls finish within ``grace``."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


def build_server(
    *,
    dispatcher: TemporalDispatcher,
    registry: DefinitionRegistry,
    scheduler: Scheduler,
    broker: ActionBroker,
    provisioner: Provisioner,
    directory: OrgDirectory,
    verifier: TokenVerifier,
    resolver: NamespaceResolver,
    address: str = "127.0.0.1:50051",
    tls_cert: str | None = None,
    tls_key: str | None = None,
    links: LinkSigner | None = None,
    tracer_provider: TracerProvider | None = None,
    record_call: RecordCall | None = None,
) -> ControlPlane:
    """Build the control plane's gRPC server (``engine.stack.Stack.control_plane`` calls it
    with the parts of a stack).

    One interceptor authenticates (the token becomes ``context.org``; health and reflection are
    public, OrganizationService needs ``platform``) and sends every exception as a gRPC status.
    With ``record_call`` (the process's metrics), every call is handed to it as it ends.
    """
    # Tracing (only when on: ``tracer_provider``) outermost of all, so that its span is the
    # current one of everything a call does; off, it is not in the chain at all.
    tracing = [TracingInterceptor(tracer_provider)] if tracer_provider is not None else []
    server = grpc.aio.server(
        interceptors=[
            *tracing,
            # Then the metrics' (only when on): each call as it leaves, its status mapped.
            *([MeteringInterceptor(record_call)] if record_call is not None else []),
            ControlPlaneInterceptor(
                verifier, resolver, public=_PUBLIC, platform_only=_PLATFORM_ONLY
            ),
        ],
        # Past gRPC's 4 MiB default, so that a request over one of the engine's own limits
        # (a result, a definition) reaches the code that names that limit.
        options=[("grpc.max_receive_message_length", MAX_REQUEST_BYTES)],
    )
    organization_service_pb2_grpc.add_OrganizationServiceServicer_to_server(
        OrganizationServicer(provisioner, directory), server
    )
    definition_service_pb2_grpc.add_DefinitionServiceServicer_to_server(
        DefinitionServicer(registry), server
    )
    workflow_service_pb2_grpc.add_WorkflowServiceServicer_to_server(
        WorkflowServicer(dispatcher, registry), server
    )
    schedule_service_pb2_grpc.add_ScheduleServiceServicer_to_server(
        ScheduleServicer(scheduler), server
    )
    executor_service_pb2_grpc.add_ExecutorServiceServicer_to_server(
        ExecutorServicer(broker), server
    )
    link_service_pb2_grpc.add_LinkServiceServicer_to_server(
        LinkServicer(dispatcher, resolver, links), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    if tls_cert and tls_key:
        credentials = grpc.ssl_server_credentials(
            [(Path(tls_key).read_bytes(), Path(tls_cert).read_bytes())]
        )
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    return ControlPlane(server, port, health_servicer)
