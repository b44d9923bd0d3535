"""The worker's sandbox runner: what it passes through, the definitions it caches, and the
payload contexts it answers."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
)
from temporalio.worker.workflow_sandbox._runner import _Instance

from engine.workflow import PASSTHROUGH_MODULES, build_worker, sandbox_runner
from tests.helpers.runs import start, unique_id, wait_for_action

QUEUE = "engine-tests-runner"
YAML = """
name: runner-cache
version: 1
steps:
  - {id: ask, type: prompt, prompt_type: confirm, message: "Go?"}
"""


def test_serving_runner_passes_the_interpreter_through() -> None:
    serving = sandbox_runner().restrictions.passthrough_modules
    assert "engine.workflow" in serving
    assert set(PASSTHROUGH_MODULES) <= serving


def test_strict_runner_reimports_the_interpreter_under_the_sandbox() -> None:
    strict = sandbox_runner(strict=True).restrictions.passthrough_modules
    assert not any(
        name == "engine.workflow" or name.startswith("engine.workflow.") for name in strict
    )
    # Its pure dependencies are still shared.
    assert {"engine.definition", "engine.expr"} <= strict


async def test_runs_of_one_definition_load_it_once(client: Client) -> None:
    runner = sandbox_runner()
    async with build_worker(client, QUEUE, workflow_runner=runner):
        handles = [
            await start(client, YAML, workflow_id=unique_id("cache"), task_queue=QUEUE)
            for _ in range(3)
        ]
        for handle in handles:
            action = await wait_for_action(client, handle, "ask")
            assert action["parameters"]["message"] == "Go?"
            await handle.terminate("test done")
    info = runner._load_definition.cache_info()  # type: ignore[attr-defined]
    assert info.misses == 1 and info.hits >= 2  # a re-created run (eviction) hits again


SHELL_YAML = """
name: runner-contexts
version: 1
steps:
  - {id: build, type: shell, command: make}
"""


class _Recording(PayloadCodec, WithSerializationContext):
    """A codec that changes nothing but notes the context of every payload it encodes."""

    def __init__(self, seen: list[SerializationContext | None], context: Any = None) -> None:
        self.seen = seen
        self.context = context

    def with_context(self, context: SerializationContext) -> _Recording:
        return _Recording(self.seen, context)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        self.seen.append(self.context)
        return list(payloads)

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return list(payloads)


def _sandbox_asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the calls that entered a run's sandbox for a payload's context."""
    asked: list[str] = []
    for name in ("get_serialization_context", "get_external_store_context"):
        original = getattr(_Instance, name)

        def counted(self: Any, *args: Any, _name: str = name, _original: Any = original) -> Any:
            asked.append(_name)
            return _original(self, *args)

        monkeypatch.setattr(_Instance, name, counted)
    return asked


async def test_a_context_free_converter_is_answered_outside_the_sandbox(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = _sandbox_asked(monkeypatch)
    async with build_worker(client, QUEUE, workflow_runner=sandbox_runner()):
        handle = await start(client, SHELL_YAML, workflow_id=unique_id("free"), task_queue=QUEUE)
        action = await wait_for_action(client, handle, "build")
        assert action["parameters"]["command"] == "make"
        await handle.terminate("test done")
    assert asked == []


async def test_a_converter_that_takes_contexts_gets_each_payloads_own(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = _sandbox_asked(monkeypatch)
    seen: list[SerializationContext | None] = []
    converter = dataclasses.replace(DataConverter.default, payload_codec=_Recording(seen))
    contextual = Client(client.service_client, namespace=client.namespace, data_converter=converter)
    async with build_worker(contextual, QUEUE, workflow_runner=sandbox_runner()):
        handle = await start(
            contextual, SHELL_YAML, workflow_id=unique_id("contextual"), task_queue=QUEUE
        )
        await wait_for_action(contextual, handle, "build")
        await handle.terminate("test done")
    assert "get_serialization_context" in asked
    # The action's activity input was encoded in the activity's own context, as the SDK does.
    assert any(
        isinstance(context, ActivitySerializationContext)
        and context.workflow_id == handle.id
        and context.activity_type == "engine.action"
        for context in seen
    ), seen
