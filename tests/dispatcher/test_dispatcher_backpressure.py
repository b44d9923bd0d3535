"""Temporal's pushback is retried inside the engine within a budget and the caller's deadline;
what is left reaches the caller as RESOURCE_EXHAUSTED or UNAVAILABLE with RetryInfo."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator

import grpc
import pytest
from google.rpc import error_details_pb2

from engine.api.v1 import workflow_service_pb2 as workflows_pb
from engine.api.v1 import workflow_service_pb2_grpc as workflows_grpc
from engine.context import CALL_DEADLINE
from engine.dispatcher._backpressure import within_budget
from engine.dispatcher._errors import NoWorkerYetError, RunUnavailableError
from engine.tenancy import RateLimitedError, TemporalTimeoutError, TemporalUnavailableError
from tests.helpers.devserver import start_dev_server
from tests.server.harness import (
    ControlPlaneKit,
    detail,
    open_control_plane,
    quick_yaml,
    rich_status,
    unique,
)


class _Flaky:
    """A call that fails with ``error`` ``times`` times, then answers."""

    def __init__(self, error: Exception, times: int) -> None:
        self.error, self.times, self.calls = error, times, 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.times:
            raise self.error
        return "done"


@pytest.mark.parametrize(
    "error",
    [RateLimitedError("slow down"), NoWorkerYetError("no poller seen")],
    ids=["rate-limited", "no-worker-yet"],
)
async def test_a_refusal_is_retried_for_any_call(error: Exception) -> None:
    call = _Flaky(error, 3)
    assert await within_budget(call, idempotent=False, budget=10) == "done"
    assert call.calls == 4


async def test_an_unknown_outcome_is_retried_only_when_a_repeat_is_safe() -> None:
    unsafe = _Flaky(TemporalTimeoutError("timed out"), 1)
    with pytest.raises(TemporalTimeoutError):
        await within_budget(unsafe, idempotent=False, budget=10)
    assert unsafe.calls == 1
    safe = _Flaky(TemporalTimeoutError("timed out"), 2)
    assert await within_budget(safe, idempotent=True, budget=10) == "done"


async def test_temporal_down_is_not_retried_here() -> None:
    down = _Flaky(TemporalUnavailableError("connection refused"), 1)
    with pytest.raises(TemporalUnavailableError):
        await within_budget(down, idempotent=True, budget=10)
    assert down.calls == 1


async def test_a_failing_run_is_not_retried() -> None:
    stuck = _Flaky(RunUnavailableError("workflow task in failed state"), 5)
    with pytest.raises(RunUnavailableError):
        await within_budget(stuck, idempotent=True, budget=10)
    assert stuck.calls == 1


async def test_the_budget_and_the_callers_deadline_bound_the_retries() -> None:
    forever = _Flaky(RateLimitedError("slow down"), 10**6)
    began = time.monotonic()
    with pytest.raises(RateLimitedError):
        await within_budget(forever, idempotent=True, budget=1.0)
    assert time.monotonic() - began < 2.5

    token = CALL_DEADLINE.set(time.monotonic() + 1.5)  # the caller waits 1.5 s at most
    try:
        began = time.monotonic()
        with pytest.raises(RateLimitedError):
            await within_budget(forever, idempotent=True, budget=30)
        assert time.monotonic() - began < 1.5  # it answers before the caller gives up
    finally:
        CALL_DEADLINE.reset(token)


@pytest.fixture(scope="module")
async def throttled() -> AsyncIterator[ControlPlaneKit]:
    """A control plane over a Temporal that allows each namespace few calls a second."""
    server = await start_dev_server(
        dynamic_config=["frontend.namespaceRPS=10", "frontend.namespaceBurstRatio=1"]
    )
    kit = await open_control_plane(server.address, tag="throttled", orgs=("acme",))
    try:
        yield kit
    finally:
        await kit.close()
        server.stop()


@pytest.mark.timeout(180)
async def test_a_burst_against_a_throttled_temporal_never_sees_internal(
    throttled: ControlPlaneKit,
) -> None:
    name = unique("burst")
    await throttled.register(quick_yaml(name))
    stub = workflows_grpc.WorkflowServiceStub(throttled.channel())

    async def start(number: int) -> str:
        try:
            await stub.StartWorkflow(
                workflows_pb.StartWorkflowRequest(
                    definition_name=name, request_id=f"burst-{number}", wait_for_suspension=True
                ),
                metadata=throttled.auth(),
                timeout=30,
            )
        except grpc.aio.AioRpcError as error:
            code = error.code().name
            if code in ("RESOURCE_EXHAUSTED", "UNAVAILABLE"):
                retry = detail(rich_status(error), error_details_pb2.RetryInfo)
                assert retry.retry_delay.seconds >= 1, error
            return code
        return "OK"

    codes = Counter(await asyncio.gather(*(start(n) for n in range(30))))
    print(f"\n30 starts at 10 calls/s a namespace: {dict(codes)}")
    assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED", "UNAVAILABLE"}, codes
    assert codes["OK"] >= 20, codes  # Temporal's pushback was absorbed, not passed on
