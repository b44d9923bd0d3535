"""Fairness: one organization's large definitions do not stall another's small calls.

Parsing and checking a definition is CPU work (about 2 s for an 880 kB one on this machine);
on the event loop it would hold every other call of the control plane for that long. Here one
org validates large definitions back to back (two callers) while another makes small calls
(``GetDefinition`` of a registered definition: the interceptor, the cache, the answer); the
gate bounds the 99th percentile of those calls against the same calls on a quiet server.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from engine.api.v1 import definition_service_pb2 as definitions_pb
from engine.api.v1 import definition_service_pb2_grpc as definitions_grpc
from tests.benchmarks import _gate as gate
from tests.helpers.devserver import DevServer
from tests.server.harness import ControlPlaneKit, ask_yaml, open_control_plane, unique

SMALL_CALLS = 300
BIG_CALLERS = 2


def _big_definition(steps: int = 4_000) -> str:
    body = "".join(
        f'  - {{id: s{i}, type: set_state, set: {{k{i}: "${{{{ inputs.x + {i} }}}}"}}}}\n'
        for i in range(steps)
    )
    return f"name: big\nversion: 1\ninputs: {{x: {{type: integer}}}}\nsteps:\n{body}"


def _p99(times: list[float]) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[-1]


@pytest.fixture(scope="module")
async def kit(temporal_server: DevServer) -> AsyncIterator[ControlPlaneKit]:
    opened = await open_control_plane(temporal_server.address, tag="fair")
    try:
        yield opened
    finally:
        await opened.close()


@pytest.mark.benchmark(group="fairness")
async def test_small_calls_while_large_definitions_are_validated(
    benchmark: Any, kit: ControlPlaneKit
) -> None:
    calls = 3 if benchmark.disabled else SMALL_CALLS
    stub = definitions_grpc.DefinitionServiceStub(kit.channel())
    name = unique("fair")
    await stub.RegisterDefinition(
        definitions_pb.RegisterDefinitionRequest(yaml=ask_yaml(name)), metadata=kit.auth()
    )
    request = definitions_pb.GetDefinitionRequest(name=name, version=1)

    async def small_calls() -> list[float]:
        times = []
        for _ in range(calls):
            began = time.perf_counter()
            await stub.GetDefinition(request, metadata=kit.auth())
            times.append(time.perf_counter() - began)
            await asyncio.sleep(0.002)
        return times

    big = definitions_pb.ValidateDefinitionRequest(yaml=_big_definition())
    validated = 0

    async def big_caller(stop: asyncio.Event) -> None:
        nonlocal validated
        other = definitions_grpc.DefinitionServiceStub(kit.channel())
        while not stop.is_set():
            answer = await other.ValidateDefinition(big, metadata=kit.auth("globex"))
            assert answer.valid
            validated += 1

    async def scenario() -> tuple[list[float], list[float]]:
        await small_calls()  # warm up
        quiet = await small_calls()
        stop = asyncio.Event()
        callers = [asyncio.create_task(big_caller(stop)) for _ in range(BIG_CALLERS)]
        await asyncio.sleep(0.5)  # the first large definitions are being parsed
        loaded = await small_calls()
        stop.set()
        await asyncio.gather(*callers)
        return quiet, loaded

    quiet, loaded = await scenario()
    assert validated >= 1
    if benchmark.disabled:
        return
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    gate.record(
        benchmark,
        "small calls beside large definitions (p99)",
        [_p99(loaded)],
        raw=[_p99(quiet)],
        note=f"{validated} large definitions validated meanwhile",
    )
    print(
        f"\n== fairness ==\nGetDefinition p50/p99 quiet: {statistics.median(quiet) * 1e3:.2f} / "
        f"{_p99(quiet) * 1e3:.2f} ms; beside {BIG_CALLERS} callers validating 290 kB "
        f"definitions: {statistics.median(loaded) * 1e3:.2f} / {_p99(loaded) * 1e3:.2f} ms "
        f"({validated} validated meanwhile)",
        flush=True,
    )
