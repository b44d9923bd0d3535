"""Record a history of the membership workflow: members join, heartbeat, settle, leave, expire.

Usage: ``python tests/replay/record_membership.py`` (starts a dev server of its own) writes
``tests/replay/membership/group.json``, which ``test_membership_replay.py`` replays.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script: the repository's packages first

from temporalio.client import Client, WithStartWorkflowOperation  # noqa: E402
from temporalio.common import WorkflowIDConflictPolicy  # noqa: E402
from temporalio.worker import Worker  # noqa: E402

from engine.workflow import sandbox_runner  # noqa: E402
from engine.workflow._membership import (  # noqa: E402
    HEARTBEAT,
    LEAVE,
    MEMBERSHIP_WORKFLOW_TYPE,
    Heartbeat,
    MembershipState,
    MembershipWorkflow,
    View,
)
from tests.helpers.devserver import start_dev_server  # noqa: E402

OUT = Path(__file__).resolve().parent / "membership" / "group.json"
WORKFLOW_ID = "replay-membership"
TASK_QUEUE = "record-membership"


async def _beat(client: Client, member: str, acked: int, ttl: float = 1.0) -> View:
    start: WithStartWorkflowOperation[None, None] = WithStartWorkflowOperation(
        MEMBERSHIP_WORKFLOW_TYPE,
        MembershipState(),
        id=WORKFLOW_ID,
        task_queue=TASK_QUEUE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    view: View = await client.execute_update_with_start_workflow(
        HEARTBEAT, Heartbeat(member, acked, ttl), start_workflow_operation=start, result_type=View
    )
    return view


async def main() -> None:
    server = await start_dev_server()
    try:
        client = await server.connect()
        async with Worker(
            client,
            task_queue=TASK_QUEUE,
            workflows=[MembershipWorkflow],
            workflow_runner=sandbox_runner(),
            max_cached_workflows=0,
        ):
            a = await _beat(client, "a", 0)
            a = await _beat(client, "a", a.epoch)  # settles [a]
            b = await _beat(client, "b", 0)  # joins: epoch 2, settled still [a]
            a = await _beat(client, "a", b.epoch)
            b = await _beat(client, "b", b.epoch)  # settles [a, b]
            c = await _beat(client, "c", 0)
            await asyncio.sleep(1.5)  # a and c miss their ttl
            b = await _beat(client, "b", c.epoch)  # a and c expire
            b = await _beat(client, "b", b.epoch)
            handle = client.get_workflow_handle(WORKFLOW_ID)
            await handle.execute_update(LEAVE, "b")
            assert b.settled == ["b"], b
            await handle.terminate("recorded")
            history = await handle.fetch_history()
        OUT.write_text(json.dumps(json.loads(history.to_json()), indent=1) + "\n")
        print(f"wrote {OUT}")
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())
