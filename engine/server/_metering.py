"""The control plane's metrics interceptor: every call's method, status code and duration go
to ``record`` as it ends (the process's metrics, ``EngineMetrics.record_grpc``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import grpc

from engine.server._interceptors import call_code, rewrap

if TYPE_CHECKING:
    from engine.server._interceptors import _Continuation, _Handler

__all__ = ["MeteringInterceptor", "RecordCall"]

RecordCall = Callable[[str, grpc.StatusCode, float], None]
"""Takes a call's full method name, its status code and its duration in seconds."""


class MeteringInterceptor(grpc.aio.ServerInterceptor):
    """Hands each call to ``record`` when it ends. It sits outside the control plane's own
    interceptor, so it sees the status that one aborted with (a refusal included).

    Args:
        record: Where each call goes.
    """

    def __init__(self, record: RecordCall) -> None:
        self.record = record

    async def intercept_service(
        self, continuation: _Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> _Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method, record = handler_call_details.method, self.record

        def wrap(behavior: Callable[..., Any], streaming: bool) -> Any:
            if streaming:

                async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
                    start, code = time.perf_counter(), None
                    try:
                        async for response in behavior(request, context):
                            yield response
                    except (asyncio.CancelledError, GeneratorExit):
                        code = grpc.StatusCode.CANCELLED
                        raise
                    except Exception:
                        code = call_code(context, grpc.StatusCode.UNKNOWN)
                        raise
                    finally:
                        ended = code or call_code(context, grpc.StatusCode.OK)
                        record(method, ended, time.perf_counter() - start)

                return stream

            async def unary(request: Any, context: Any) -> Any:
                start, code = time.perf_counter(), None
                try:
                    return await behavior(request, context)
                except asyncio.CancelledError:
                    code = grpc.StatusCode.CANCELLED
                    raise
                except Exception:
                    code = call_code(context, grpc.StatusCode.UNKNOWN)
                    raise
                finally:
                    ended = code or call_code(context, grpc.StatusCode.OK)
                    record(method, ended, time.perf_counter() - start)

            return unary

        return rewrap(handler, wrap, tolerant=False)
