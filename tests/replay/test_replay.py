"""Recorded histories of every example replay against today's interpreter without nondeterminism.

The histories next to this file were recorded by ``record.py`` (``make replay-record``) from
real runs of the examples' scripted main paths, foreach children included. Replaying them needs
no server: the interpreter must issue exactly the commands the history holds, so a change that
would break runs in flight (a timer added, a child started under another id, a step moved
out of order) fails here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from engine.workflow import EngineWorkflow, sandbox_runner
from tests.helpers.example_scripts import example_names

HERE = Path(__file__).resolve().parent
HISTORIES = sorted(
    [
        *HERE.glob("*.json"),
        *HERE.glob("claimed/*.json"),
        *HERE.glob("claimed-v1/*.json"),
        *HERE.glob("claimed-v2/*.json"),
    ]
)
"""Histories recorded before actions were activity tasks (answered by id), and since (their
shell, MCP and delegate actions claimed by executors); ``claimed-v1/`` keeps those of the
examples as they were before the language had loops, ``claimed-v2/`` those of runs with child
runs from before a child's reports to its parent went in the background (runs of them may still
be in flight)."""


def workflow_id(path: Path) -> str:
    """The id of a recorded run: ``a.rollout.0.json`` -> ``replay-a/rollout/0``.

    The id matters: a parent's commands name its children's ids, which derive from its own.
    """
    return "replay-" + path.stem.replace(".", "/")


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(workflow_id(path), path.read_text())


def replayer() -> Replayer:
    return Replayer(workflows=[EngineWorkflow], workflow_runner=sandbox_runner(strict=True))


def test_every_example_has_a_recorded_history() -> None:
    recorded = {path.stem for path in (HERE / "claimed").glob("*.json")}
    missing = [name for name in example_names() if name not in recorded]
    assert not missing, f"no history for {missing} in claimed/: run `make replay-record`"
    # Children are workflows of their own: at least the deploy rollout's are recorded.
    assert {"deploy-service.rollout.0", "deploy-service.rollout.1"} <= recorded
    # The histories of older runs stay, and keep replaying: those recorded before actions were
    # activity tasks, those of the examples before they had loops, and those of child runs
    # before their reports went in the background.
    first = {"agent-task", "data-backfill", "deploy-service", "hello", "incident-triage"}
    assert first | {"release-notes"} <= {path.stem for path in HERE.glob("*.json")}
    assert {"agent-task", "data-backfill", "release-notes"} <= {
        path.stem for path in (HERE / "claimed-v1").glob("*.json")
    }
    assert {"deploy-service.rollout.0", "ship-change.staging", "call.sub"} <= {
        path.stem for path in (HERE / "claimed-v2").glob("*.json")
    }


@pytest.mark.parametrize(
    "path", HISTORIES, ids=[str(path.relative_to(HERE).with_suffix("")) for path in HISTORIES]
)
async def test_history_replays(path: Path) -> None:
    history = load(path)
    events = json.loads(path.read_text())["events"]
    assert events[-1]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED", (
        f"{path.name} is not a completed run"
    )
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, f"{path.name}: {result.replay_failure!r}"


async def test_replay_detects_a_history_that_does_not_match() -> None:
    """The negative control: replaying as another workflow id starts children under other ids."""
    path = HERE / "deploy-service.json"
    history = WorkflowHistory.from_json("replay-deploy-service-renamed", path.read_text())
    result = await replayer().replay_workflow(history, raise_on_replay_failure=False)
    assert isinstance(result.replay_failure, NondeterminismError)
    assert "Child workflow id" in str(result.replay_failure)
