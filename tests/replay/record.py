#!/usr/bin/env python3
"""Record the histories the replay tests replay: ``.venv/bin/python tests/replay/record.py``.

Starts its own Temporal dev server and interpreter worker, runs the scripted main path of every
example in ``examples/`` (``tests/helpers/example_scripts.py``) with the end-to-end tests'
driver, and writes each run's history (``WorkflowHistory.to_json()``) under ``claimed/``:
``<example>.json`` for the run, ``<example>.<foreach step>.<index>[...].json`` for each foreach
child. A run's workflow id is ``replay-<example>``, so the replay test can derive every id from
the file name (a child's id, ``{parent}/{step}/{index}``, is part of its parent's commands).
Shell, MCP and delegate actions are performed as executors do (claimed from their task queues);
prompts are answered by id, as people do.

The histories directly in this directory were recorded before actions were activity tasks
(every action answered by id); they are kept as they are, so that runs started then keep
replaying. Re-record (``make replay-record``) after a change to the interpreter that is *meant*
to change the commands a run issues, behind ``workflow.patched``; the replay tests exist to
catch the changes that are not.

Usage: record.py [EXAMPLE ...]   (default: every example)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from engine.protocol import CLAIMED_ACTION_TYPES  # noqa: E402
from engine.workflow import build_worker, ensure_search_attributes  # noqa: E402
from tests.helpers.devserver import start_dev_server  # noqa: E402
from tests.helpers.drive import drive  # noqa: E402
from tests.helpers.example_scripts import example_names, load_example, script  # noqa: E402
from tests.helpers.runs import start  # noqa: E402

HERE = Path(__file__).resolve().parent / "claimed"
TASK_QUEUE = "replay-recorder"
ID_PREFIX = "replay-"


def history_path(workflow_id: str) -> Path:
    """``replay-deploy-service/rollout/0`` -> ``deploy-service.rollout.0.json``."""
    return HERE / f"{workflow_id.removeprefix(ID_PREFIX).replace('/', '.')}.json"


async def record(examples: list[str]) -> int:
    server = await start_dev_server()
    try:
        client = await server.connect()
        await ensure_search_attributes(client)
        async with build_worker(client, task_queue=TASK_QUEUE):
            for example in examples:
                definition = load_example(example)
                run_script = script(example)
                handle = await start(
                    client,
                    definition,
                    run_script.inputs,
                    workflow_id=f"{ID_PREFIX}{example}",
                    task_queue=TASK_QUEUE,
                )
                run = await drive(
                    client,
                    handle,
                    definition,
                    run_script.answers,
                    timeout=60,
                    claimed_types=CLAIMED_ACTION_TYPES,
                    task_queue=TASK_QUEUE,
                )
                if run.failure is not None:
                    print(f"{example}: the run failed: {run.failure_message}", file=sys.stderr)
                    return 1
                HERE.mkdir(exist_ok=True)
                for stale in HERE.glob(f"{example}.*json"):
                    stale.unlink()
                for workflow_id in run.workflows:
                    history = await client.get_workflow_handle(workflow_id).fetch_history()
                    # Indented: a reviewer can read what changed when a history is re-recorded.
                    text = json.dumps(json.loads(history.to_json()), indent=1) + "\n"
                    path = history_path(workflow_id)
                    path.write_text(text)
                    events = len(history.events)
                    print(f"{path.relative_to(ROOT)}: {events} events, {len(text):,} bytes")
    finally:
        server.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("examples", nargs="*", metavar="EXAMPLE", help="default: every example")
    arguments = parser.parse_args()
    known = example_names()
    unknown = sorted(set(arguments.examples) - set(known))
    if unknown:
        parser.error(f"unknown example(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return asyncio.run(record(arguments.examples or known))


if __name__ == "__main__":
    sys.exit(main())
