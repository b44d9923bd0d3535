"""The YAML workflow language: models, a loader with line:column problems, validation.

Load a definition with :func:`load_definition` (text) or :func:`load_definition_file`. Every
problem is reported at once, each located in the source; a definition that loads carries its
expressions and templates compiled, so the interpreter never parses at run time:

    definition = load_definition(text, "deploy.yaml")
    step = definition.step("build")
    if step.evaluate_when(context):
        params = step.render_params(context)   # {"command": ..., "workdir": ..., "env": {...}}

``context`` maps root names (``inputs``, ``state``, ``steps``, ``workflow``, ``org``, and the
variables of enclosing foreach steps) to their values.

:func:`mermaid` draws a loaded definition as a Mermaid flowchart (``enginectl graph``).
"""

from __future__ import annotations

from engine.definition._calls import call_problems, calls_of
from engine.definition._compiled import render_value
from engine.definition._durations import format_duration, parse_duration
from engine.definition._graph import mermaid
from engine.definition._loader import load_definition, load_definition_file
from engine.definition._models import (
    EVENT_NAME,
    RUNNER_LABEL,
    STEP_TYPES,
    WORKFLOW_NAME,
    BreakStep,
    CallStep,
    ConditionStep,
    Defaults,
    DelegateStep,
    ForeachStep,
    InputSpec,
    LoopStep,
    McpCallStep,
    ParallelStep,
    PromptStep,
    RetryPolicy,
    ReturnStep,
    SetStateStep,
    ShellStep,
    Step,
    StepBase,
    TryStep,
    WaitForStep,
    WaitStep,
    WorkflowDefinition,
)
from engine.definition._problems import DefinitionError, InputError, Problem, Severity
from engine.definition._source import DefinitionSource

__all__ = [
    "EVENT_NAME",
    "RUNNER_LABEL",
    "STEP_TYPES",
    "WORKFLOW_NAME",
    "BreakStep",
    "CallStep",
    "ConditionStep",
    "Defaults",
    "DefinitionError",
    "DefinitionSource",
    "DelegateStep",
    "ForeachStep",
    "InputError",
    "InputSpec",
    "LoopStep",
    "McpCallStep",
    "ParallelStep",
    "Problem",
    "PromptStep",
    "RetryPolicy",
    "ReturnStep",
    "SetStateStep",
    "Severity",
    "ShellStep",
    "Step",
    "StepBase",
    "TryStep",
    "WaitForStep",
    "WaitStep",
    "WorkflowDefinition",
    "call_problems",
    "calls_of",
    "format_duration",
    "load_definition",
    "load_definition_file",
    "mermaid",
    "parse_duration",
    "render_value",
]
