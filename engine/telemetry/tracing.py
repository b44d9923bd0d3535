"""OpenTelemetry traces: one trace from a gRPC call, through the run, out to its executors.

Off unless the standard ``OTEL_*`` variables turn it on (:func:`tracing_settings`); then
nothing is installed at all (no server interceptor, no Temporal interceptor), so the calls pay
nothing for it. When on, ``engined`` sets up a :class:`Tracing` at start (an SDK
``TracerProvider`` with a batching exporter) and flushes it when it stops.

Where spans come from, and how their context travels:

- The control plane makes a ``SERVER`` span per call (named after the full method,
  ``/engine.api.v1.WorkflowService/StartWorkflow``), continuing a W3C ``traceparent`` found in
  the call's metadata (the HTTP gateway forwards its ``traceparent``/``tracestate`` headers).
- Temporal's own ``TracingInterceptor`` (on every client of the ``ClientPool``, so on the
  workers built from them) makes the client spans (``StartUpdateWithStartWorkflow:NAME:V``,
  ``SignalWorkflow:...``) and the workflow's (``RunWorkflow:...``, ``StartActivity:...``),
  carrying the context in Temporal headers.
- The dispatcher puts the trace context of the call that starts a run into the run's input
  (``RunInput.trace``); foreach items, called runs and continued runs inherit it; every
  pending action of the run carries it (``PendingAction.trace``: ``traceparent`` and
  ``tracestate``). An action claimed from a task queue carries the context of the workflow's
  ``StartActivity`` span instead, when the activity's header has one.
- An executor (:mod:`engine.executor`) makes a ``CONSUMER`` span for each action it performs,
  a child of the action's context, and sends ``traceparent`` with its heartbeats and report,
  so the control plane's span of ``CompleteAction`` joins the same trace.

Runs a schedule starts have no caller: their input carries no trace context, Temporal's
interceptor makes no workflow spans for them (it only continues a trace it is given), and their
actions carry none; an executor's span for such an action starts a trace of its own.

This module needs only the OpenTelemetry API to be imported (the executor library imports it);
the SDK and the exporters are imported when tracing is set up.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

__all__ = [
    "TRACEPARENT",
    "TRACESTATE",
    "TRACE_KEYS",
    "Tracing",
    "TracingSettings",
    "context_of",
    "current_trace",
    "setup_tracing",
    "trace_metadata",
    "tracing_settings",
]

log = logging.getLogger("engine.telemetry")

TRACEPARENT: Final = "traceparent"
TRACESTATE: Final = "tracestate"
TRACE_KEYS: Final = (TRACEPARENT, TRACESTATE)
"""The W3C trace-context keys: gRPC metadata, HTTP headers, and a pending action's ``trace``."""
DEFAULT_SERVICE_NAME: Final = "engined"

_PROPAGATOR: Final = TraceContextTextMapPropagator()
_FALSE: Final = frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True)
class TracingSettings:
    """How traces are exported, from the ``OTEL_*`` environment.

    Attributes:
        exporter: ``otlp`` or ``console`` (``OTEL_TRACES_EXPORTER``).
        protocol: The OTLP protocol, ``grpc`` or ``http/protobuf``
            (``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL``, else ``OTEL_EXPORTER_OTLP_PROTOCOL``;
            default ``grpc``).
        service_name: ``OTEL_SERVICE_NAME`` (default ``engined``).
    """

    exporter: Literal["otlp", "console"] = "otlp"
    protocol: Literal["grpc", "http/protobuf"] = "grpc"
    service_name: str = DEFAULT_SERVICE_NAME


def tracing_settings(
    environ: Mapping[str, str] | None = None, *, service_name: str = DEFAULT_SERVICE_NAME
) -> TracingSettings | None:
    """The tracing the environment asks for; None when tracing is off.

    Off when ``OTEL_SDK_DISABLED`` is true, when ``OTEL_TRACES_EXPORTER`` is ``none``, and when
    neither an exporter (``OTEL_TRACES_EXPORTER=otlp|console``) nor an OTLP endpoint
    (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``) is set. The OTLP
    exporter reads its endpoint, headers, timeout and certificates from the same variables.

    Raises:
        ValueError: An exporter or protocol this engine does not know (named).
    """
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() not in _FALSE:
        return None
    exporters = [
        name.strip().lower()
        for name in env.get("OTEL_TRACES_EXPORTER", "").split(",")
        if name.strip()
    ]
    if not exporters:
        endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        if not endpoint:
            return None
        exporters = ["otlp"]
    if "none" in exporters:
        return None
    exporter = exporters[0]
    if exporter not in ("otlp", "console"):
        raise ValueError(f"OTEL_TRACES_EXPORTER: {exporter!r} is not one of otlp, console, none")
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "grpc"
    ).strip()
    if protocol not in ("grpc", "http/protobuf"):
        raise ValueError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not one of grpc, http/protobuf"
        )
    return TracingSettings(
        exporter="console" if exporter == "console" else "otlp",
        protocol="grpc" if protocol == "grpc" else "http/protobuf",
        service_name=env.get("OTEL_SERVICE_NAME") or service_name,
    )


class Tracing:
    """Tracing set up for a process: its tracer provider, to hand to the stack and to flush.

    Args:
        provider: The SDK tracer provider (its span processors export the spans).
    """

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider

    def shutdown(self) -> None:
        """Export what is left, then stop exporting."""
        try:
            self.provider.force_flush()
        finally:
            self.provider.shutdown()


def setup_tracing(
    environ: Mapping[str, str] | None = None,
    *,
    service_name: str = DEFAULT_SERVICE_NAME,
    set_global: bool = True,
) -> Tracing | None:
    """Set up tracing as the ``OTEL_*`` environment asks (None, and nothing done, when off).

    Args:
        environ: The environment (default ``os.environ``).
        service_name: The service name when ``OTEL_SERVICE_NAME`` is unset.
        set_global: Also make it OpenTelemetry's global tracer provider (what libraries that
            trace by themselves use).

    Raises:
        ValueError: As :func:`tracing_settings`.
    """
    settings = tracing_settings(environ, service_name=service_name)
    if settings is None:
        return None
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    exporter: SpanExporter
    if settings.exporter == "console":
        exporter = ConsoleSpanExporter()
    elif settings.protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
            OTLPSpanExporter as GrpcExporter,
        )

        exporter = GrpcExporter()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        exporter = HttpExporter()
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: settings.service_name}),
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    if set_global:
        trace.set_tracer_provider(provider)
    log.info(
        "tracing on: %s exporter%s, service %s",
        settings.exporter,
        f" ({settings.protocol})" if settings.exporter == "otlp" else "",
        settings.service_name,
    )
    return Tracing(provider)


def current_trace(context: Context | None = None) -> dict[str, str] | None:
    """The W3C trace context of the current span (``traceparent``, and ``tracestate`` when
    there is one); None when no span is recording here (tracing off costs one lookup)."""
    span = trace.get_current_span(context)
    if not span.get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, trace.set_span_in_context(span, context))
    return carrier or None


def context_of(carrier: Mapping[str, str] | None) -> Context | None:
    """The context a W3C carrier (``traceparent``, ``tracestate``) names; None for none."""
    if not carrier or not carrier.get(TRACEPARENT):
        return None
    context = _PROPAGATOR.extract({key: carrier[key] for key in TRACE_KEYS if key in carrier})
    if not trace.get_current_span(context).get_span_context().is_valid:
        return None
    return context


def trace_metadata(context: Context | None = None) -> tuple[tuple[str, str], ...]:
    """gRPC metadata carrying the current (or ``context``'s) span's trace context."""
    carrier = current_trace(context)
    return tuple(carrier.items()) if carrier else ()
