"""Calls to Temporal's namespace APIs, retried through transient refusals.

The server rate-limits namespace calls (RegisterNamespace has a shared budget of about 20 a
second by default, answering RESOURCE_EXHAUSTED beyond it), and a namespace may answer NOT_FOUND
for a moment right after it was registered; both are retried with backoff and jitter.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, DescribeNamespaceResponse
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from engine.tenancy._errors import temporal_refusal
from engine.tenancy._resolve import NamespaceTarget

__all__ = ["describe_namespace", "retried"]

_T = TypeVar("_T")
_RETRIED: Final = frozenset({RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.UNAVAILABLE})


async def retried(
    call: Callable[[], Awaitable[_T]],
    target: NamespaceTarget | None,
    *,
    also: frozenset[RPCStatusCode] = frozenset(),
    attempts: int = 12,
) -> _T:
    """Retry transient refusals with exponential backoff and jitter (about 15 s in all).

    Raises:
        RateLimitedError, TemporalUnavailableError: Temporal kept refusing, or is down.
        temporalio.service.RPCError: Any other refusal (or one of ``also``, at the end).
    """
    delay = 0.1
    for attempt in range(attempts):
        try:
            return await call()
        except RPCError as error:
            if error.status not in _RETRIED | also or attempt == attempts - 1:
                if error.status in _RETRIED:
                    raise _translate(error, target) from None
                raise
        await asyncio.sleep(delay * (0.5 + random.random()))  # jitter, not cryptography
        delay = min(delay * 2, 2.0)
    raise AssertionError("unreachable")  # pragma: no cover


async def describe_namespace(
    connection: Client, target: NamespaceTarget, *, wait_until_found: bool = False
) -> DescribeNamespaceResponse | None:
    """The namespace of ``target``, or None when it does not exist.

    Args:
        wait_until_found: Retry NOT_FOUND too (a namespace just registered).
    """
    try:
        return await retried(
            lambda: connection.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=target.namespace)
            ),
            target,
            also=frozenset({RPCStatusCode.NOT_FOUND}) if wait_until_found else frozenset(),
        )
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND and not wait_until_found:
            return None
        raise


def _translate(error: RPCError, target: NamespaceTarget | None) -> Exception:
    where = (
        f"org '{target.org_id}', namespace '{target.namespace}' at {target.endpoint.address}"
        if target
        else "Temporal"
    )
    return temporal_refusal(error, where) or error
