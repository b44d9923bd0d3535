"""Backpressure: Temporal's "not now" retried inside the engine, within the caller's deadline.

Under load Temporal pushes back: RESOURCE_EXHAUSTED (rate limits), a call that times out (or
that the server cancels, "context canceled"), an update refused because no worker has polled the
org's queue yet (an org whose worker is just waking up). Each is a refusal of *this moment*; the
same call a little later succeeds. So the dispatcher retries such calls with jittered exponential
backoff for at most its budget (:data:`RETRY_BUDGET` by default), and never past the deadline of
the caller's own gRPC call (:data:`engine.context.CALL_DEADLINE`, less a margin to answer in);
each attempt's own timeout is cut to what is left (:func:`attempt_timeout`). What is left when
the budget runs out reaches the caller as RESOURCE_EXHAUSTED or UNAVAILABLE with RetryInfo.
Temporal down (UNAVAILABLE) is not pushback: its client retries that for a few seconds, then the
caller hears it at once.

A call that timed out may have taken effect, so it is repeated only when a repeat is answered
with the first call's outcome: a start with a request id. (A status query that timed out is not
repeated either: it is still queued for the worker, and piling queries up is what wedges the
SDK's worker.) A refusal that did nothing (RESOURCE_EXHAUSTED, no worker yet) is repeated for
any call.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Final, TypeVar

from engine.context import CALL_DEADLINE
from engine.dispatcher._errors import NoWorkerYetError
from engine.tenancy import RateLimitedError, TemporalTimeoutError

__all__ = ["RETRY_BUDGET", "attempt_timeout", "within_budget"]

_T = TypeVar("_T")

RETRY_BUDGET: Final = 30.0
"""Seconds a call is retried at most when its caller set no (earlier) deadline."""
_ANSWER_MARGIN: Final = 0.5
"""Seconds kept, before the caller's deadline, to answer it."""
_SHORTEST_ATTEMPT: Final = 0.1
_FIRST_DELAY: Final = 0.2
_LONGEST_DELAY: Final = 2.0


async def within_budget(
    call: Callable[[], Awaitable[_T]], *, idempotent: bool, budget: float = RETRY_BUDGET
) -> _T:
    """``call()``, again after Temporal's pushback while the budget lasts.

    Args:
        call: One attempt (it raises the engine's errors, already translated).
        idempotent: Whether an attempt whose outcome is unknown (a timeout) may be repeated.
        budget: Seconds to keep trying, at most (the caller's deadline may cut it shorter).

    Raises:
        RateLimitedError, NoWorkerYetError, TemporalTimeoutError: The last pushback, once the
            budget has run out.
    """
    deadline = time.monotonic() + budget
    caller = CALL_DEADLINE.get()
    if caller is not None:
        deadline = min(deadline, caller - _ANSWER_MARGIN)
    delay = _FIRST_DELAY
    while True:
        try:
            return await call()
        except (RateLimitedError, NoWorkerYetError, TemporalTimeoutError) as error:
            # A refusal did nothing; a call that timed out may have, so it is repeated only
            # when a repeat is answered with the first call's outcome. (Temporal down is not
            # retried here: its client has retried that for a few seconds already.)
            refused = not isinstance(error, TemporalTimeoutError)
            pause = delay * (0.5 + random.random())  # jitter, not cryptography
            if not (refused or idempotent) or time.monotonic() + pause >= deadline:
                raise
        await asyncio.sleep(pause)
        delay = min(delay * 2, _LONGEST_DELAY)


def attempt_timeout(longest: timedelta) -> timedelta:
    """The timeout of one attempt: ``longest``, cut to what is left before the caller's
    deadline (less the margin to answer in).

    Raises:
        TemporalUnavailableError: The caller's deadline is too near for another attempt.
    """
    caller = CALL_DEADLINE.get()
    if caller is None:
        return longest
    left = caller - _ANSWER_MARGIN - time.monotonic()
    if left < _SHORTEST_ATTEMPT:
        raise TemporalTimeoutError("Temporal did not answer before the call's deadline")
    return min(longest, timedelta(seconds=left))
