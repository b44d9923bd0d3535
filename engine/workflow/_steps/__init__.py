"""One unit per step type, behind one interface (:data:`StepExecutor`).

Each unit is an async function ``(run, step, scope, attempt) -> output`` in a module of its own;
:data:`EXECUTORS` maps every step type of the definition language to its unit, and the
interpreter's sequencer (``EngineWorkflow.run_step``) wraps each call in ``when``, retries and
``on_error``. A step type added to the language without a unit here fails
``tests/workflow/test_step_units.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from engine.workflow._steps._run import Run, StepExecutor
from engine.workflow._steps.action import run_action
from engine.workflow._steps.break_ import run_break
from engine.workflow._steps.call import run_call
from engine.workflow._steps.condition import run_condition
from engine.workflow._steps.foreach import run_foreach
from engine.workflow._steps.loop import run_loop
from engine.workflow._steps.parallel import run_parallel
from engine.workflow._steps.return_ import run_return
from engine.workflow._steps.set_state import run_set_state
from engine.workflow._steps.try_ import run_try
from engine.workflow._steps.wait import run_wait
from engine.workflow._steps.wait_for import run_wait_for
from engine.workflow._types import ACTION_STEP_TYPES

__all__ = ["EXECUTORS", "Run", "StepExecutor"]

EXECUTORS: Final[Mapping[str, StepExecutor]] = MappingProxyType(
    {
        "condition": run_condition,
        "set_state": run_set_state,
        "return": run_return,
        "wait": run_wait,
        "foreach": run_foreach,
        "loop": run_loop,
        "break": run_break,
        "parallel": run_parallel,
        "try": run_try,
        "wait_for": run_wait_for,
        "call": run_call,
        **dict.fromkeys(ACTION_STEP_TYPES, run_action),
    }
)
"""The unit of every step type, by the type's name."""
