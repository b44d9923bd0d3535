"""What a foreach item's run carries: the definition cut down to the foreach, the inputs its
steps read, the called definitions of the call steps inside it; never the whole definition and
every input (the list being fanned out included) once per item."""

from __future__ import annotations

import glob
import json
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Worker

from engine.definition import ForeachStep, load_definition, load_definition_file
from engine.workflow._fanout import item_definition
from tests.helpers.runs import assert_replays, run_to_end, start

ROOT = Path(__file__).resolve().parents[2]

NESTED = """
name: item-cut
version: 1
description: foreach steps inside other blocks
inputs:
  rows: {type: list}
  label: {type: string, default: row}
  unused: {type: string, default: x}
state: {seen: 0}
steps:
  - id: prepare
    type: set_state
    set: {prefix: "${{ inputs.label }}"}
  - id: rounds
    type: loop
    max_iterations: 2
    steps:
      - id: both
        type: parallel
        branches:
          left:
            - id: outer
              type: foreach
              items: "${{ inputs.rows }}"
              as: row
              steps:
                - id: inner
                  type: foreach
                  items: "${{ range(row) }}"
                  as: cell
                  steps:
                    - id: mark
                      type: set_state
                      set: {v: "${{ steps.prepare.status + ':' + string(cell) }}"}
                    - {id: cell_done, type: return, value: "${{ state.v }}"}
                  output_to: cells
                - {id: row_done, type: return, value: "${{ state.cells }}"}
              output_to: rows_out
          right:
            - id: guarded
              type: try
              steps:
                - {id: noted, type: set_state, set: {note: "${{ inputs.unused }}"}}
              catch:
                - {id: caught, type: set_state, set: {note: failed}}
      - {id: stop, type: break}
  - {id: done, type: return, value: "${{ state.rows_out }}"}
"""


def _foreach_steps(path: str) -> list[tuple[str, str]]:
    definition = load_definition_file(path)
    return [(path, s.id) for s in definition.iter_steps() if isinstance(s, ForeachStep)]


FOREACHES = [
    case
    for path in sorted(glob.glob(str(ROOT / "examples" / "*.yaml")))
    if not path.endswith(".test.yaml")
    for case in _foreach_steps(path)
]


@pytest.mark.parametrize(
    ("path", "foreach_id"), FOREACHES, ids=[f"{Path(p).stem}.{s}" for p, s in FOREACHES]
)
def test_an_examples_item_definition_loads_and_keeps_its_foreach(
    path: str, foreach_id: str
) -> None:
    definition = load_definition_file(path)
    cut = item_definition(definition, foreach_id)
    loaded = load_definition(cut)
    assert loaded.step(foreach_id).model_dump() == definition.step(foreach_id).model_dump()
    assert (loaded.name, loaded.version, loaded.defaults) == (
        definition.name,
        definition.version,
        definition.defaults,
    )
    assert len(cut) < len(definition.canonical_json())
    assert item_definition(loaded, foreach_id) == cut  # cutting again changes nothing


def test_a_foreach_nested_in_other_blocks_is_cut_down_around_it() -> None:
    definition = load_definition(NESTED)
    for foreach_id in ("outer", "inner"):
        cut = json.loads(item_definition(definition, foreach_id))
        loaded = load_definition(json.dumps(cut))
        assert loaded.step(foreach_id).model_dump() == definition.step(foreach_id).model_dump()
        # The steps around it stay, the one its items refer to stands as a placeholder, and of
        # the rest only a placeholder keeps a block from being empty (the parallel's other
        # branch).
        ids = {s.id for s in loaded.iter_steps()}
        kept = {"rounds", "both", "outer", "inner", "mark", "cell_done", "prepare", "guarded"}
        assert ids == (kept | {"row_done"} if foreach_id == "outer" else kept)
        assert loaded.step("prepare").step_type == "set_state"
        assert '"note":' not in json.dumps(cut)
        assert (cut["state"], "description" in cut) == ({}, False)
        # Only the inputs the kept steps read are declared: rows (outer's items), not label
        # (read by a step outside) nor unused.
        assert set(cut["inputs"]) == {"rows"}


async def test_a_fan_out_carries_neither_the_whole_definition_nor_the_list_per_item(
    client: Client, worker: Worker
) -> None:
    definition = """
name: item-inputs
version: 1
description: a fan-out over an input list, each item reading one other input
inputs:
  rows: {type: list}
  factor: {type: integer, default: 3}
  notes: {type: string, default: ""}
steps:
  - {id: intro, type: set_state, set: {noted: "${{ inputs.notes > 'm' }}"}}
  - id: each
    type: foreach
    items: "${{ inputs.rows }}"
    as: n
    max_parallel: 20
    steps:
      - {id: pause, type: wait, duration: 1ms}
      - {id: times, type: return, value: "${{ n * inputs.factor }}"}
    output_to: out
  - {id: done, type: return, value: "${{ state.out }}"}
"""
    rows = list(range(1000, 1040))
    handle = await start(client, definition, {"rows": rows, "notes": "n" * 2000})
    result, error = await run_to_end(handle)
    assert error is None and result == [3 * n for n in rows]
    history = await handle.fetch_history()
    starts = [
        e.start_child_workflow_execution_initiated_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED
    ]
    assert len(starts) == len(rows)
    child_input = json.loads(starts[0].input.payloads[0].data)
    assert child_input["inputs"] == {"factor": 3}
    carried = load_definition(child_input["definition"])
    assert (
        carried.step("each").model_dump() == load_definition(definition).step("each").model_dump()
    )
    assert "description" not in json.loads(child_input["definition"])
    # Per item: far less than the whole definition plus the 2,000-character input.
    assert len(starts[0].input.payloads[0].data) < 2000
    await assert_replays(client, handle.id, f"{handle.id}/each/0")
