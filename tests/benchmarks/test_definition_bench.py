"""How long it takes to turn definition text into a loaded, fully compiled definition.

Loading is the first part of workflow creation (gated end to end, through RegisterDefinition,
by ``scripts/bench_gate.py``); here it is reported on its own. Two inputs are timed: the largest
example as its author wrote it (YAML), and its canonical JSON (what a worker loads once per
process, its runner caching it by that text).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.definition import WorkflowDefinition, load_definition

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def largest_example() -> tuple[str, str]:
    path = max(
        (p for p in EXAMPLES.glob("*.yaml") if not p.name.endswith(".test.yaml")),
        key=lambda p: len(p.read_text(encoding="utf-8")),
    )
    return path.name, path.read_text(encoding="utf-8")


@pytest.mark.benchmark(group="definition/load")
def test_load_largest_example_yaml(benchmark: pytest.FixtureRequest) -> None:
    name, text = largest_example()
    definition: WorkflowDefinition = benchmark(load_definition, text, name)
    assert definition.steps
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        median = stats.stats.median
        print(f"\nload_definition({name}, {len(text.splitlines())} lines): {median * 1e3:.2f} ms")


@pytest.mark.benchmark(group="definition/load")
def test_load_largest_example_canonical_json(benchmark: pytest.FixtureRequest) -> None:
    name, text = largest_example()
    canonical = load_definition(text, name).canonical_json()
    definition: WorkflowDefinition = benchmark(load_definition, canonical)
    assert definition.content_hash == load_definition(text, name).content_hash
    stats = getattr(benchmark, "stats", None)
    if stats is not None:
        median = stats.stats.median
        print(f"\nload_definition(canonical JSON of {name}): {median * 1e3:.2f} ms")
