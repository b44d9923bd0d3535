"""The server's interceptor: every call is authenticated, and every error becomes a status.

One interceptor does both, in one wrapper per call (each interceptor of ``grpc.aio`` costs an
extra continuation and handler per call). Everything raised below it, authentication failures
included, leaves the server as a proper gRPC status with rich details (never a traceback). The
bearer token becomes the caller's :class:`~engine.context.OrgContext`, handed to the servicer as
``context.org``, and roles are enforced: ``platform`` for organizations, a read-only token
only reads.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import grpc
from grpc_status import rpc_status

from engine.context import CALL_DEADLINE, CALL_ORG, OrgContext
from engine.errors import InvalidFieldError
from engine.identity import PermissionDeniedError, TokenVerifier
from engine.server._errors import status_of
from engine.telemetry.logs import bind_log_fields
from engine.tenancy import NamespaceResolver

__all__ = ["ControlPlaneInterceptor", "OrgServicerContext", "call_code", "rewrap"]

if TYPE_CHECKING:
    # Generic only in the type stubs: subscripting it at run time raises TypeError.
    _Handler: TypeAlias = grpc.RpcMethodHandler[Any, Any]
    _Continuation: TypeAlias = Callable[[grpc.HandlerCallDetails], Awaitable[_Handler | None]]


_READS: Final = ("Get", "List", "Watch", "Validate")
"""What a read-only (viewer) token may call: the methods whose names start so."""


class OrgServicerContext:
    """A servicer context that also carries the caller's organization (``context.org``)."""

    def __init__(self, context: grpc.aio.ServicerContext[Any, Any], org: OrgContext) -> None:
        self._context = context
        self.org = org

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


@dataclass(frozen=True)
class _Undecodable:
    """A request that protobuf could not decode (it reaches the behaviour, which refuses it
    with a status, instead of gRPC answering UNKNOWN "Unexpected DecodeError")."""

    reason: str


def _tolerant(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def tolerant(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as error:  # DecodeError, and protobuf's recursion limit
            return _Undecodable(str(error)[:200] or type(error).__name__)

    return tolerant


def rewrap(
    handler: _Handler, wrap: Callable[[Any, bool], Any], *, tolerant: bool = True
) -> _Handler:
    """The same handler with its behaviour wrapped (unary-unary and unary-stream); with
    ``tolerant``, a request that cannot be decoded reaches the behaviour (see _Undecodable)."""
    deserialize = (
        _tolerant(handler.request_deserializer) if tolerant else handler.request_deserializer
    )
    if handler.unary_unary is not None:
        return grpc.unary_unary_rpc_method_handler(
            wrap(handler.unary_unary, False),
            request_deserializer=deserialize,
            response_serializer=handler.response_serializer,
        )
    if handler.unary_stream is not None:
        return grpc.unary_stream_rpc_method_handler(
            wrap(handler.unary_stream, True),
            request_deserializer=deserialize,
            response_serializer=handler.response_serializer,
        )
    return handler  # the engine's services have no client-streaming rpcs


def call_code(context: Any, otherwise: grpc.StatusCode) -> grpc.StatusCode:
    """The status code a call ended with (set by an abort or by the servicer), else
    ``otherwise`` (a call that returned normally leaves none: OK)."""
    try:
        code = context.code()
    except Exception:  # not every context of grpc.aio answers it
        return otherwise
    if isinstance(code, grpc.StatusCode):
        return code
    return next((known for known in grpc.StatusCode if known.value[0] == code), otherwise)


def _decoded(request: Any) -> Any:
    if isinstance(request, _Undecodable):
        raise InvalidFieldError(
            "request",
            f"cannot be decoded ({request.reason}); JSON values (Struct, Value) may nest at "
            "most 30 levels",
        )
    return request


class ControlPlaneInterceptor(grpc.aio.ServerInterceptor):
    """Authenticates every call except ``public`` methods (health, reflection), and maps every
    exception to a gRPC status with rich details (see ``_errors``).

    Args:
        verifier: Verifies bearer tokens.
        resolver: Resolves the token's org to its namespace.
        public: Full method names (or prefixes) callable without a token.
        platform_only: Full method names (or service prefixes ending in "/") that need ``platform``.
    """

    def __init__(
        self,
        verifier: TokenVerifier,
        resolver: NamespaceResolver,
        *,
        public: Collection[str] = (),
        platform_only: Collection[str] = (),
    ) -> None:
        self.verifier = verifier
        self.resolver = resolver
        self.public = tuple(public)
        self.platform_only = tuple(platform_only)

    async def intercept_service(
        self, continuation: _Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> _Handler | None:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None:
            return None
        if method.startswith(self.public):
            return rewrap(handler, lambda behavior, streaming: _mapped(behavior, streaming, method))
        metadata = dict(handler_call_details.invocation_metadata or ())
        needs_platform = method.startswith(self.platform_only)
        name = method.rsplit("/", 1)[-1]
        reads = name.startswith(_READS)

        def authenticated(context: Any) -> OrgServicerContext:
            authorization = metadata.get("authorization")
            claims = self.verifier.verify(authorization if isinstance(authorization, str) else None)
            bind_log_fields(org=claims.org_id)  # on the call's log lines (and its span)
            CALL_ORG.set(claims.org_id)  # the org label of the call's metrics
            if needs_platform and not claims.is_platform:
                raise PermissionDeniedError(
                    f"{name} needs the platform role (an org's admin administers only its "
                    f"org); the token of org '{claims.org_id}' has roles {list(claims.roles)}"
                )
            if claims.read_only and not reads and not needs_platform:
                raise PermissionDeniedError(
                    f"{name} changes things, and the token of org '{claims.org_id}' is read "
                    f"only (roles {list(claims.roles)})"
                )
            target = self.resolver.resolve(claims.org_id)
            return OrgServicerContext(
                context, OrgContext(claims.org_id, target.namespace, claims.roles, claims.subject)
            )

        def wrap(behavior: Any, streaming: bool) -> Any:
            return _mapped(
                lambda request, context: behavior(request, authenticated(context)),
                streaming,
                method,
            )

        return rewrap(handler, wrap)


def _mapped(behavior: Any, streaming: bool, method: str) -> Any:
    """``behavior`` with every exception it raises (but an abort) sent as a gRPC status."""
    if streaming:

        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            try:
                async for response in behavior(_decoded(request), context):
                    yield response
            except grpc.aio.AbortError:
                raise
            except Exception as error:
                await context.abort_with_status(
                    rpc_status.to_status(status_of(error, method, request))
                )

        return stream

    async def unary(request: Any, context: Any) -> Any:
        remaining = context.time_remaining()
        if remaining is not None:  # this call's own task: the value stays with it
            CALL_DEADLINE.set(time.monotonic() + remaining)
        try:
            return await behavior(_decoded(request), context)
        except grpc.aio.AbortError:
            raise
        except Exception as error:
            await context.abort_with_status(rpc_status.to_status(status_of(error, method, request)))

    return unary
