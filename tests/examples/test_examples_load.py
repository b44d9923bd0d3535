"""Every definition in ``examples/`` loads cleanly, and together they show the whole language.

The examples are the first thing a newcomer reads and what ``make run`` validates, so a language
change that breaks one, or a feature no example shows, should fail here rather than in review.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import pytest

from engine.definition import DefinitionError, InputSpec, load_definition_file

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_FILES = sorted(
    path for path in EXAMPLES_DIR.glob("*.yaml") if not path.name.endswith(".test.yaml")
)

STEP_TYPES = {
    "condition",
    "set_state",
    "foreach",
    "return",
    "shell",
    "mcp_call",
    "prompt",
    "wait",
    "delegate",
}
PROMPT_TYPES = {"info", "confirm", "text", "choice"}
ON_ERROR_POLICIES = {"fail", "continue", "retry"}


def _plain(value: Any) -> Any:
    """The plain value of an enum member (``StepType.SHELL`` -> ``"shell"``), else the value."""
    return getattr(value, "value", value)


def _is_step(value: Any) -> bool:
    return hasattr(value, "id") and hasattr(value, "type")


def _fields(model: Any) -> dict[str, Any]:
    names = getattr(type(model), "model_fields", None) or vars(model)
    return {name: getattr(model, name, None) for name in names}


def _walk(steps: Any, depth: int = 0) -> Iterator[tuple[Any, int]]:
    """Every step, nested ones included, with its nesting depth in foreach blocks.

    Nested blocks (``then``, ``else``, a foreach's ``steps``, ``compensate``...) are found by
    shape rather than by name: any field holding a sequence of steps is walked.
    """
    for step in steps or ():
        yield step, depth
        nested_depth = depth + (1 if _plain(step.type) == "foreach" else 0)
        for value in _fields(step).values():
            if isinstance(value, (list, tuple)) and value and all(map(_is_step, value)):
                yield from _walk(value, nested_depth)


def _load(path: Path) -> Any:
    try:
        return load_definition_file(path)
    except DefinitionError as error:  # show every problem, not just the exception's summary
        pytest.fail("\n".join(str(problem) for problem in error.problems))


@pytest.fixture(scope="module")
def all_steps() -> list[tuple[Any, int]]:
    return [pair for path in EXAMPLE_FILES for pair in _walk(_load(path).steps)]


def test_there_are_enough_examples() -> None:
    assert len(EXAMPLE_FILES) >= 5, [p.name for p in EXAMPLE_FILES]


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.name)
def test_example_loads_without_problems(path: Path) -> None:
    definition = _load(path)
    assert [str(warning) for warning in definition.warnings] == []
    # The file is named after the workflow, so `examples/<name>.yaml` is easy to find.
    assert definition.name == path.stem
    assert definition.workflow_type == f"{definition.name}:{definition.version}"


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda path: path.name)
def test_example_has_a_comment_header(path: Path) -> None:
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    assert first_line.startswith(f"# {path.stem}: "), first_line


def test_examples_cover_every_step_type(all_steps: list[tuple[Any, int]]) -> None:
    seen = {_plain(step.type) for step, _ in all_steps}
    assert seen >= STEP_TYPES, f"no example uses {sorted(STEP_TYPES - seen)}"


def test_examples_cover_every_prompt_type(all_steps: list[tuple[Any, int]]) -> None:
    seen = {_plain(step.prompt_type) for step, _ in all_steps if _plain(step.type) == "prompt"}
    assert seen == PROMPT_TYPES, f"no example uses {sorted(PROMPT_TYPES - seen)}"


def test_examples_cover_every_on_error_policy(all_steps: list[tuple[Any, int]]) -> None:
    seen = {_plain(step.on_error) for step, _ in all_steps} - {None}
    assert seen >= ON_ERROR_POLICIES, f"no example uses on_error {ON_ERROR_POLICIES - seen}"


@pytest.mark.parametrize(
    "field", ["when", "needs_state", "output_to", "timeout", "retry", "compensate"]
)
def test_examples_cover_every_common_field(all_steps: list[tuple[Any, int]], field: str) -> None:
    assert any(getattr(step, field, None) for step, _ in all_steps), f"no step sets {field}"


def test_examples_nest_a_foreach_inside_a_foreach(all_steps: list[tuple[Any, int]]) -> None:
    assert any(_plain(step.type) == "foreach" and depth >= 1 for step, depth in all_steps)


def test_examples_wait_both_ways(all_steps: list[tuple[Any, int]]) -> None:
    waits = [step for step, _ in all_steps if _plain(step.type) == "wait"]
    assert any(getattr(step, "duration", None) for step in waits), "no wait with a duration"
    assert any(getattr(step, "until", None) for step in waits), "no wait until a time"


def test_examples_delegate_to_the_executor_and_to_named_agents(
    all_steps: list[tuple[Any, int]],
) -> None:
    agents = {str(step.agent) for step, _ in all_steps if _plain(step.type) == "delegate"}
    assert "@task" in agents
    assert agents - {"@task"}, "no delegate to a named agent"


def test_examples_declare_inputs_of_every_type_and_shape() -> None:
    specs = [spec for path in EXAMPLE_FILES for spec in _load(path).inputs.values()]
    declared_types = set(get_args(InputSpec.model_fields["type"].annotation))

    assert {spec.type for spec in specs} == declared_types
    assert any(spec.required for spec in specs)
    assert any(spec.default is not None for spec in specs)
    assert any(spec.enum for spec in specs)


def test_examples_set_defaults() -> None:
    defaults = [_load(path).defaults for path in EXAMPLE_FILES]
    assert any(d.timeout is not None for d in defaults)
    assert any("retry" in d.model_fields_set for d in defaults)
