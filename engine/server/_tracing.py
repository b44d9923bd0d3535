"""The tracing interceptor: a span per call, continuing the caller's W3C trace context.

Installed only when tracing is on (``build_server(tracer_provider=...)``), outermost, so that
its span covers authentication and the mapping of errors, and is the current span of
everything the call does (the dispatcher copies its context into the runs it starts, Temporal's
interceptor makes its client spans under it). With tracing off it is not in the chain at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Final

import grpc
from opentelemetry import trace
from opentelemetry.context import Context

from engine.server._interceptors import call_code, rewrap
from engine.telemetry.logs import bound_log_fields
from engine.telemetry.tracing import TRACE_KEYS, context_of

if TYPE_CHECKING:
    from engine.server._interceptors import _Continuation, _Handler

__all__ = ["TracingInterceptor"]

_ROOT: Final = Context()


class TracingInterceptor(grpc.aio.ServerInterceptor):
    """A ``SERVER`` span per call, named after the full method, with the attributes
    ``rpc.system``, ``rpc.service``, ``rpc.method``, ``rpc.grpc.status_code`` and ``org``.

    Args:
        tracer_provider: Where the spans go.
    """

    def __init__(self, tracer_provider: trace.TracerProvider) -> None:
        self.tracer = tracer_provider.get_tracer("engine.server")

    async def intercept_service(
        self, continuation: _Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> _Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        service, _, name = method.lstrip("/").rpartition("/")
        carrier = {
            key: value
            for key, value in handler_call_details.invocation_metadata or ()
            if key in TRACE_KEYS and isinstance(value, str)
        }
        parent = context_of(carrier) or _ROOT
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}

        def start() -> trace.Span:
            return self.tracer.start_span(
                method,
                context=parent,
                kind=trace.SpanKind.SERVER,
                attributes=attributes,
                record_exception=False,
                set_status_on_exception=False,
            )

        def wrap(behavior: Callable[..., Any], streaming: bool) -> Any:
            if streaming:

                async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
                    span, cancelled = start(), False
                    try:
                        with trace.use_span(span, end_on_exit=False):
                            async for response in behavior(request, context):
                                yield response
                    except (asyncio.CancelledError, GeneratorExit):
                        cancelled = True
                        raise
                    finally:
                        _finish(span, context, cancelled)

                return stream

            async def unary(request: Any, context: Any) -> Any:
                span, cancelled = start(), False
                try:
                    with trace.use_span(span, end_on_exit=False):
                        return await behavior(request, context)
                except asyncio.CancelledError:
                    cancelled = True
                    raise
                finally:
                    _finish(span, context, cancelled)

            return unary

        return rewrap(handler, wrap, tolerant=False)


def _finish(span: trace.Span, context: Any, cancelled: bool) -> None:
    """End the span with the call's status code (CANCELLED when the caller went away, as the
    metrics count it) and the caller's org (bound by the control plane's interceptor once it
    authenticated the call)."""
    code = grpc.StatusCode.CANCELLED if cancelled else call_code(context, grpc.StatusCode.OK)
    span.set_attribute("rpc.grpc.status_code", code.value[0])
    org = bound_log_fields().get("org")
    if org:
        span.set_attribute("org", org)
    if code is not grpc.StatusCode.OK:
        details = _details(context)
        span.set_status(trace.StatusCode.ERROR, f"{code.name}: {details}" if details else code.name)
    span.end()


def _details(context: Any) -> str:
    try:
        details = context.details()
    except Exception:
        return ""
    if isinstance(details, bytes):
        return details.decode(errors="replace")
    return str(details or "")
