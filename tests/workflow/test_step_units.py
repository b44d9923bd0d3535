"""Every step type of the definition language has its unit in the interpreter."""

from __future__ import annotations

import inspect

from engine.definition import STEP_TYPES
from engine.workflow import ACTION_STEP_TYPES, EXECUTORS


def test_every_step_type_has_a_unit() -> None:
    missing = sorted(set(STEP_TYPES) - set(EXECUTORS))
    assert not missing, f"step types without a unit in engine/workflow/_steps: {missing}"
    unknown = sorted(set(EXECUTORS) - set(STEP_TYPES))
    assert not unknown, f"units for step types the language does not have: {unknown}"


def test_every_unit_has_the_one_interface() -> None:
    for step_type, unit in EXECUTORS.items():
        assert inspect.iscoroutinefunction(unit), f"the unit of {step_type} is not async"
        parameters = list(inspect.signature(unit).parameters)
        assert parameters == ["run", "step", "scope", "attempt"], (step_type, parameters)


def test_external_step_types_share_the_action_unit() -> None:
    units = {EXECUTORS[step_type] for step_type in ACTION_STEP_TYPES}
    assert len(units) == 1
    assert set(STEP_TYPES) >= ACTION_STEP_TYPES
