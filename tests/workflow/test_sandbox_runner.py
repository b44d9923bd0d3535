"""The worker's sandbox runner: what it passes through, and the definitions it caches."""

from __future__ import annotations

from temporalio.client import Client

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
