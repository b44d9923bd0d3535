"""Canonical JSON and the content hash: stable across spelling, different across meaning, and
loadable again (the interpreter ships canonical JSON to the worker and re-loads it there)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from engine.definition import WorkflowDefinition, load_definition, load_definition_file

LARGE = Path(__file__).parent / "data" / "large.yaml"

BASE = """\
name: demo
version: 2
inputs:
  service: {type: string, required: true}
defaults:
  timeout: 5m
steps:
  - id: build
    type: shell
    command: make
    env: {SERVICE: "${{ inputs.service }}"}
    timeout: 1h30m
  - {id: settle, type: wait, duration: 300s}
  - {id: done, type: return, value: {ok: true}}
"""

# The same definition: keys reordered, flow vs block style, comments, other quoting, anchors,
# and equivalent duration spellings (5m = 300s = PT5M, 1h30m = 90m = PT1H30M).
SAME = """\
# a comment
version: 2          # trailing comment
name: "demo"
steps:
  - type: shell
    id: build
    timeout: PT1H30M
    env:
      SERVICE: '${{ inputs.service }}'
    command: make
  - type: wait
    duration: PT5M
    id: settle
  - id: done
    value:
      ok: true
    type: return
defaults: {timeout: 300s}
inputs:
  service:
    required: true
    type: string
"""


def test_workflow_type() -> None:
    assert load_definition(BASE).workflow_type == "demo:2"


def test_content_hash_format() -> None:
    content_hash = load_definition(BASE).content_hash
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", content_hash)


def test_equivalent_spellings_hash_the_same() -> None:
    first, second = load_definition(BASE), load_definition(SAME)
    assert first.canonical_json() == second.canonical_json()
    assert first.content_hash == second.content_hash


def test_5m_and_300s_hash_the_same() -> None:
    def of(duration: str) -> str:
        text = f"name: d\nversion: 1\nsteps: [{{id: w, type: wait, duration: {duration}}}]\n"
        return load_definition(text).content_hash

    assert of("5m") == of("300s") == of("PT5M") == of("300000ms")
    assert of("5m") != of("6m")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("version: 2", "version: 3"),
        ("command: make", "command: make all"),
        ("duration: 300s", "duration: 301s"),
        ("{ok: true}", "{ok: false}"),
        ("required: true}", "required: false}"),
        ("  - {id: done", "  - {id: finish"),
    ],
)
def test_changed_content_changes_the_hash(old: str, new: str) -> None:
    assert old in BASE
    changed = BASE.replace(old, new)
    assert load_definition(changed).content_hash != load_definition(BASE).content_hash


def test_canonical_json_is_compact_sorted_and_has_defaults() -> None:
    canonical = load_definition(BASE).canonical_json()
    data = json.loads(canonical)
    assert canonical == json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    build = data["steps"][0]
    assert build["timeout"] == "1h30m"
    assert build["on_error"] == "fail"
    assert build["compensate"] == []
    assert data["steps"][1]["duration"] == "5m"
    assert data["defaults"] == {
        "timeout": "5m",
        "retry": {
            "max_attempts": 5,
            "initial_interval": "1s",
            "backoff": 2.0,
            "max_interval": "30s",
        },
    }
    assert data["inputs"]["service"] == {
        "type": "string",
        "required": True,
        "default": None,
        "enum": None,
        "description": None,
    }


def test_canonical_json_uses_yaml_field_names() -> None:
    text = """\
name: demo
version: 1
steps:
  - id: gate
    type: condition
    if: "true"
    then: [{id: a, type: set_state, set: {x: 1}}]
    else: [{id: b, type: foreach, items: "[1]", as: n, steps: [{id: c, type: return}]}]
"""
    gate = json.loads(load_definition(text).canonical_json())["steps"][0]
    assert set(gate) >= {"if", "then", "else"}
    assert "set" in gate["then"][0]
    assert gate["else"][0]["as"] == "n"


@pytest.mark.parametrize("text", [BASE, SAME, LARGE.read_text(encoding="utf-8")])
def test_canonical_json_loads_back_with_the_same_hash(text: str) -> None:
    original = load_definition(text)
    reloaded = load_definition(original.canonical_json())
    assert reloaded.content_hash == original.content_hash
    assert reloaded.canonical_json() == original.canonical_json()
    assert reloaded.model_dump() == original.model_dump()
    assert reloaded.steps == original.steps
    assert reloaded.warnings == original.warnings == ()


def test_reloaded_definition_renders_like_the_original() -> None:
    original = load_definition_file(LARGE)
    reloaded = load_definition(original.canonical_json())
    context = {
        "inputs": {"service": "api", "labels": {"team": "x"}, "canary_weight": 5},
        "state": {"build": {"image": "api:1"}},
        "zone": "us-a",
        "index": 0,
        "steps": {"current": {"output": {"revision": 3}}},
    }
    for step in original.iter_steps():
        twin = reloaded.step(step.id)
        assert twin.render_params(context) == step.render_params(context)


def test_retry_alone_stays_a_retry_after_a_round_trip() -> None:
    text = "name: d\nversion: 1\nsteps: [{id: s, type: shell, command: x, retry: {}}]\n"
    original = load_definition(text)
    assert original.steps[0].on_error == "retry"
    assert load_definition(original.canonical_json()).steps[0].on_error == "retry"


def test_the_large_definition_loads_fast() -> None:
    # A guard against accidental per-load work (regex or model building), not a benchmark:
    # the target is well under 50 ms; a load takes a few milliseconds.
    text = LARGE.read_text(encoding="utf-8")
    load_definition(text)
    best = min(_timed(text) for _ in range(5))
    assert best < 0.05, f"best of 5 loads took {best * 1000:.1f} ms"


def _timed(text: str) -> float:
    start = time.perf_counter()
    definition: WorkflowDefinition = load_definition(text)
    definition.content_hash  # noqa: B018 - hashing is part of registering a definition
    return time.perf_counter() - start
