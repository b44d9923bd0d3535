"""Whatever the input, loading either succeeds or raises DefinitionError with located problems;
and every definition that loads survives the canonical-JSON round trip."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.definition import DefinitionError, load_definition

LARGE = Path(__file__).parent / "data" / "large.yaml"

FIELDS = [
    "when", "if", "then", "else", "set", "items", "as", "max_parallel", "steps",
    "on_item_error", "value", "command", "workdir", "env", "server", "tool", "params",
    "prompt_type", "message", "options", "default", "duration", "until", "agent",
    "instruction", "context", "needs_state", "output_to", "timeout", "retry", "on_error",
    "compensate",
]  # fmt: skip
TYPES = [
    "condition", "set_state", "foreach", "return", "shell", "mcp_call", "prompt", "wait",
    "delegate", "bogus",
]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([
        "x", "${{ state.x }}", "${{ inputs.a }}", "${{", "5m", "@task", "[1, 2]", "item",
        "index", "${{ item }}", "choice", "fail", "retry", "", "true", "2030-01-01T00:00:00Z",
        "${{ steps.a }}", "$${{ x }}",
    ]),
)  # fmt: skip
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from([*FIELDS, "a", "b"]), inner, max_size=3),
    ),
    max_leaves=6,
)
STEP = st.fixed_dictionaries(
    {"id": st.sampled_from(["a", "b", "c", "bad-id", 5]), "type": st.sampled_from(TYPES)},
    optional=dict.fromkeys(FIELDS, VALUES),
)
BLOCK = st.recursive(
    st.lists(STEP, max_size=3),
    lambda inner: st.lists(
        st.fixed_dictionaries(
            {"id": st.sampled_from(["a", "b", "c"]), "type": st.sampled_from(TYPES)},
            optional={
                "then": inner,
                "else": inner,
                "steps": inner,
                "compensate": inner,
                "as": st.sampled_from(["item", "x", "state", "index"]),
                "items": st.just("[1]"),
                "if": st.just("true"),
            },
        ),
        max_size=3,
    ),
    max_leaves=5,
)
DOCUMENT = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["demo", "Bad"]),
        "version": st.sampled_from([1, 0, "x"]),
        "steps": BLOCK,
    },
    optional={"inputs": VALUES, "state": VALUES, "defaults": VALUES},
)


def _check(text: str) -> None:
    try:
        definition = load_definition(text, "fuzz.yaml")
    except DefinitionError as error:
        assert error.errors
        for problem in error.problems:
            assert problem.line >= 1
            assert problem.column >= 1
            assert problem.message
        return
    reloaded = load_definition(definition.canonical_json())
    assert reloaded.content_hash == definition.content_hash


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(DOCUMENT, st.booleans())
def test_arbitrary_structures_never_crash_the_loader(
    document: dict[str, Any], as_yaml: bool
) -> None:
    _check(yaml.safe_dump(document) if as_yaml else json.dumps(document))


def test_mangled_text_never_crashes_the_loader() -> None:
    original = LARGE.read_text(encoding="utf-8")
    rng = random.Random(20240131)
    for _ in range(300):
        chars = list(original)
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(chars))
            choice = rng.random()
            if choice < 0.4:
                del chars[position]
            else:
                chars.insert(position, rng.choice(" \n:-{}[]'\"$#&*!|>%@\t,?x1"))
        _check("".join(chars))
