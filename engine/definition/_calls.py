"""What a definition's ``call`` steps ask of the definitions they call, checked with both in
hand (the loader alone cannot: the called definitions live in the org's registry).

The registry checks a caller when it is registered, and the dispatcher when an unregistered
caller's run starts: the called definition must exist, must not be the caller itself, and the
step's ``inputs`` must fit its declared inputs (no unknown name, every required one given, and
values that are not templates of the declared type and ``enum``). Templated values are checked
again, rendered, when the step runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from engine.definition._compiled import render_value
from engine.definition._models import CallStep, WorkflowDefinition, input_type_matches
from engine.definition._problems import Problem
from engine.definition._text import did_you_mean, quote_list, show
from engine.definition._validate import iter_step_paths
from engine.definition._yaml import LocationIndex, Path, format_path
from engine.expr import Template

__all__ = ["call_problems", "calls_of"]


def calls_of(definition: WorkflowDefinition) -> Iterator[CallStep]:
    """The definition's ``call`` steps, nested ones included, in document order."""
    for step in definition.iter_steps():
        if isinstance(step, CallStep):
            yield step


def call_problems(
    definition: WorkflowDefinition, called: Mapping[str, WorkflowDefinition | str]
) -> list[Problem]:
    """The problems of the definition's ``call`` steps, located in the text it was loaded from.

    Args:
        definition: The caller, loaded.
        called: For each call step's id, the definition it calls, or why there is none
            ("version 3 of definition 'x' is not registered").
    """
    index = LocationIndex.deferred(definition.text, definition.source)
    problems: list[Problem] = []

    def report(path: Path, message: str) -> None:
        line, column = index.value(path)
        problems.append(Problem(definition.source, line, column, format_path(path), message))

    for path, step in iter_step_paths(definition.steps, ("steps",)):
        if not isinstance(step, CallStep):
            continue
        if step.definition == definition.name:
            report((*path, "definition"), f"definition '{definition.name}' cannot call itself")
            continue
        callee = called.get(step.id)
        if callee is None:
            continue
        if isinstance(callee, str):
            report((*path, "definition"), callee)
            continue
        for name, message in _input_problems(step, callee):
            report((*path, "inputs", name) if name else (*path, "inputs"), message)
    return problems


def _input_problems(step: CallStep, callee: WorkflowDefinition) -> Iterator[tuple[str, str]]:
    where = f"definition '{callee.name}' (version {callee.version})"
    compiled: Mapping[str, Any] = step.compiled("inputs") or {}
    for name, value in step.inputs.items():
        spec = callee.inputs.get(name)
        if spec is None:
            declared = quote_list(list(callee.inputs)) if callee.inputs else "none"
            yield (
                name,
                (
                    f"{where} has no input '{name}'{did_you_mean(name, callee.inputs)}; "
                    f"its inputs: {declared}"
                ),
            )
            continue
        if _templated(compiled.get(name)) or value is None:
            continue  # checked when the step runs, rendered
        static = render_value(compiled.get(name), {})
        if not input_type_matches(spec.type, static):
            yield name, f"input '{name}' of {where} must be of type {spec.type}, got {show(static)}"
        elif spec.enum is not None and static not in spec.enum:
            yield (
                name,
                (
                    f"input '{name}' of {where} must be one of {quote_list(spec.enum)}, "
                    f"got {show(static)}"
                ),
            )
    missing = [
        name for name, spec in callee.inputs.items() if spec.required and name not in step.inputs
    ]
    if missing:
        yield "", f"{where} needs input(s) {quote_list(missing)}"


def _templated(compiled: Any) -> bool:
    if isinstance(compiled, Template):
        return True
    if isinstance(compiled, dict):
        return any(_templated(item) for item in compiled.values())
    if isinstance(compiled, list):
        return any(_templated(item) for item in compiled)
    return False
