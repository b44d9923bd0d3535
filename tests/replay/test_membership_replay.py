"""The recorded history of the membership workflow replays against today's code.

``membership/group.json`` was recorded by ``record_membership.py``: members join, acknowledge,
settle, miss their ttl and leave. A change that would break a group's workflow in flight
fails here.
"""

from __future__ import annotations

from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from engine.workflow import sandbox_runner
from engine.workflow._membership import MembershipWorkflow

HISTORY = Path(__file__).resolve().parent / "membership" / "group.json"


async def test_the_membership_history_replays() -> None:
    history = WorkflowHistory.from_json("replay-membership", HISTORY.read_text())
    replayer = Replayer(workflows=[MembershipWorkflow], workflow_runner=sandbox_runner(strict=True))
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, repr(result.replay_failure)
