"""Loading a definition: text -> data -> checks -> models -> compiled, immutable definition."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from typing import Any, Final

from pydantic import BaseModel, ValidationError

from engine.definition._models import (
    BLOCK_FIELDS,
    FIELD_KINDS,
    STEP_TYPES,
    Defaults,
    FieldKind,
    InputSpec,
    RetryPolicy,
    StepBase,
    WorkflowDefinition,
)
from engine.definition._problems import DefinitionError, Problem
from engine.definition._text import did_you_mean, show
from engine.definition._validate import check_definition, iter_step_paths
from engine.definition._yaml import (
    MAX_TEXT_LENGTH,
    LocationIndex,
    Path,
    YamlLoadError,
    format_path,
    load_json_fast,
    parse_yaml,
)

__all__ = ["load_definition", "load_definition_file"]

_QUOTED: Final = re.compile(r"'([^']*)'")
_UNREADABLE: Final = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
"""What YAML does not allow in a document (PyYAML's reader refuses it without a location)."""
# Type names of JSON Schema and Python that authors reach for, and the input type they mean.
_TYPE_SYNONYMS: Final = {
    "array": "list",
    "object": "map",
    "dict": "map",
    "str": "string",
    "int": "integer",
    "float": "number",
    "double": "number",
    "bool": "boolean",
    "mapping": "map",
    "sequence": "list",
}
_STEP_TYPE_LIST: Final = ", ".join(STEP_TYPES)
_MESSAGES: Final = {
    "string_type": "expected a string, got {got}",
    "list_type": "expected a list, got {got}",
    "dict_type": "expected a mapping, got {got}",
    "model_type": "expected a mapping, got {got}",
    "model_attributes_type": "expected a mapping, got {got}",
    "int_type": "expected an integer, got {got}",
    "int_parsing": "expected an integer, got {got}",
    "int_from_float": "expected an integer, got {got}",
    "float_type": "expected a number, got {got}",
    "float_parsing": "expected a number, got {got}",
    "bool_type": "expected true or false, got {got}",
    "bool_parsing": "expected true or false, got {got}",
}


def load_definition(text: str, source: str = "<string>") -> WorkflowDefinition:
    """Load, check and compile a workflow definition.

    Args:
        text: YAML text, or the definition's canonical JSON
            (:meth:`WorkflowDefinition.canonical_json`).
        source: Name of the text in problems, usually its path.

    Returns:
        The definition, every expression and template compiled; its ``warnings`` list what
        was suspicious but accepted.

    Raises:
        DefinitionError: With every problem found (and the warnings), in source order.
    """
    if not isinstance(text, str):
        raise TypeError(f"expected the definition as text, got {type(text).__name__}")
    if len(text) > MAX_TEXT_LENGTH:
        raise DefinitionError(
            [
                Problem(
                    source, 1, 1, "", f"the definition is longer than {MAX_TEXT_LENGTH} characters"
                )
            ]
        )
    bad = _UNREADABLE.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise DefinitionError(
            [
                Problem(
                    source,
                    line,
                    column,
                    "",
                    f"character U+{ord(bad.group()):04X} is not allowed in a definition "
                    "(control characters other than tab and newline, lone surrogates)",
                )
            ]
        )
    problems: list[Problem] = []
    data = load_json_fast(text)
    if data is not None:
        index = LocationIndex.deferred(text, source)
    else:
        try:
            data, index, problems = parse_yaml(text, source)
        except YamlLoadError as failure:
            raise DefinitionError(_in_order(failure.problems)) from None
    if data is None:
        raise DefinitionError([Problem(source, 1, 1, "", "the definition is empty")])
    if not isinstance(data, dict):
        line, column = index.value(())
        raise DefinitionError(
            [
                Problem(
                    source,
                    line,
                    column,
                    "",
                    "expected a mapping with name, version and steps at the top level, "
                    f"got {show(data)}",
                )
            ]
        )
    check = check_definition(data, index, source)
    problems.extend(check.problems)
    definition: WorkflowDefinition | None = None
    try:
        definition = WorkflowDefinition.model_validate(data)
    except ValidationError as error:
        problems.extend(_validation_problems(error, data, index, source))
    ordered = _in_order(problems)
    if definition is None or any(p.severity == "error" for p in ordered):
        raise DefinitionError(ordered)
    steps_by_id: dict[str, StepBase] = {}
    for path, step in iter_step_paths(definition.steps, ("steps",)):
        compiled = check.compiled_steps.get(path, {})
        for name, (attribute, kind) in FIELD_KINDS[type(step)].items():
            if name not in compiled and kind in (FieldKind.TEMPLATE, FieldKind.VALUE):
                # An absent field renders as its default ({} for env and params, else None);
                # defaults hold no templates.
                compiled[name] = getattr(step, attribute)
        step._compiled = compiled
        step._references = check.references.get(path, ())
        steps_by_id[step.id] = step
    if not text.lstrip().startswith("{"):  # JSON text is its canonical form, or near it
        size = len(definition.canonical_json())
        if size > MAX_TEXT_LENGTH:
            # Runs carry the canonical form: one that a worker could not load must not register.
            raise DefinitionError(
                [
                    Problem(
                        source,
                        1,
                        1,
                        "",
                        f"the definition is too large: its canonical form is {size:,} characters "
                        f"(the limit is {MAX_TEXT_LENGTH:,})",
                    )
                ]
            )
    definition._steps_by_id = steps_by_id
    definition._initial_state = check.initial_state
    definition._source = source
    definition._text = text
    definition._warnings = tuple(ordered)
    return definition


def load_definition_file(path: str | os.PathLike[str]) -> WorkflowDefinition:
    """Load a definition from a file (UTF-8); problems name the path as given.

    Raises:
        DefinitionError: The definition is invalid.
        OSError: The file cannot be read.
    """
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    return load_definition(text, os.fspath(path))


def _in_order(problems: Iterable[Problem]) -> list[Problem]:
    unique: dict[tuple[int, int, str, str], Problem] = {}
    for problem in problems:
        unique.setdefault(
            (problem.line, problem.column, problem.message, problem.severity), problem
        )
    return sorted(unique.values(), key=lambda p: (p.line, p.column))


# -- pydantic errors -> problems --------------------------------------------------------------


def _strip_loc(loc: tuple[int | str, ...]) -> tuple[Path, type[BaseModel] | None, bool, int]:
    """Drop the discriminator tags pydantic inserts after each step's index.

    Returns:
        The data path; the model of the innermost step on it (if any); whether the error is
        about a mapping key (pydantic's ``[key]`` segment); and the length of the path up to
        that step.
    """
    path: list[str | int] = []
    step_model: type[BaseModel] | None = None
    step_depth = -1
    is_key = False
    expect_tag = False
    for segment in loc:
        if expect_tag:
            expect_tag = False
            if isinstance(segment, str) and segment in STEP_TYPES:
                step_model = STEP_TYPES[segment]
                step_depth = len(path)
                continue
        if segment == "[key]":
            is_key = True
            continue
        if isinstance(segment, int) and _in_block(path):
            expect_tag = True
        path.append(segment)
    return tuple(path), step_model, is_key, step_depth


def _in_block(path: Sequence[str | int]) -> bool:
    """Whether ``path`` names a block of steps (a step's position follows it)."""
    return bool(path) and (path[-1] in BLOCK_FIELDS or (len(path) >= 2 and path[-2] == "branches"))


def _lookup(data: Any, path: Path) -> Any:
    for part in path:
        if isinstance(data, dict) and isinstance(part, str):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data


def _owner(
    parent: Path, step_model: type[BaseModel] | None, step_depth: int, data: dict[str, Any]
) -> tuple[str | None, type[BaseModel] | None]:
    """Describe the mapping at ``parent`` for a message, and give its model."""
    if step_model is not None and step_depth == len(parent):
        raw = _lookup(data, parent)
        kind = raw.get("type") if isinstance(raw, dict) else None
        step_id = raw.get("id") if isinstance(raw, dict) else None
        label = f"{kind} step '{step_id}'" if isinstance(step_id, str) else f"{kind} step"
        return label, step_model
    if not parent:
        return "the workflow definition", WorkflowDefinition
    if parent == ("defaults",):
        return "defaults", Defaults
    if parent[-1] == "retry":
        return "retry", RetryPolicy
    if len(parent) == 2 and parent[0] == "inputs":
        return f"input '{parent[1]}'", InputSpec
    return None, None


def _field_names(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _validation_problems(
    error: ValidationError, data: dict[str, Any], index: LocationIndex, source: str
) -> list[Problem]:
    problems: list[Problem] = []
    for detail in error.errors(include_url=False):
        path, step_model, is_key, step_depth = _strip_loc(detail["loc"])
        kind = detail["type"]
        value = detail["input"]
        field = path[-1] if path else ""
        where = index.key(path) if is_key else index.value(path)
        message: str
        if kind == "missing":
            label, _ = _owner(path[:-1], step_model, step_depth, data)
            message = f"missing required field '{field}'" + (f" in {label}" if label else "")
            where = index.value(path[:-1])
        elif kind == "extra_forbidden":
            message = _unknown_field(path, step_model, step_depth, data)
            where = index.key(path)
        elif kind == "union_tag_invalid":
            raw = _lookup(data, path)
            tag = raw.get("type") if isinstance(raw, dict) else None
            message = f"unknown step type {show(tag)}"
            hint = did_you_mean(tag, STEP_TYPES) if isinstance(tag, str) else ""
            message += hint or f"; expected one of {_STEP_TYPE_LIST}"
            where = index.value((*path, "type"))
        elif kind == "union_tag_not_found":
            message = f"step has no 'type'; expected one of {_STEP_TYPE_LIST}"
        elif (
            kind in ("model_attributes_type", "model_type")
            and len(path) >= 2
            and _in_block(path[:-1])
            and isinstance(field, int)
        ):
            message = f"expected a step (a mapping with 'id' and 'type'), got {show(value)}"
        elif kind == "literal_error":
            expected = _QUOTED.findall(str((detail.get("ctx") or {}).get("expected", "")))
            subject = f"{field} must be one of" if isinstance(field, str) else "expected one of"
            message = f"{subject} {', '.join(repr(e) for e in expected)}, got {show(value)}"
            if isinstance(value, str):
                hint = did_you_mean(value, expected)
                if not hint and value.lower() in _TYPE_SYNONYMS and path[:1] == ("inputs",):
                    hint = f"; did you mean '{_TYPE_SYNONYMS[value.lower()]}'?"
                message += hint
        elif kind == "too_short":
            minimum = (detail.get("ctx") or {}).get("min_length", 1)
            label = f"'{field}'" if isinstance(field, str) else "this list"
            message = (
                f"{label} must not be empty"
                if minimum == 1
                else f"{label} needs at least {minimum} items"
            )
        elif kind in _MESSAGES:
            message = _MESSAGES[kind].format(got=show(value))
        else:
            message = detail["msg"]
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
        problems.append(Problem(source, where[0], where[1], format_path(path), message))
    return problems


def _unknown_field(
    path: Path, step_model: type[BaseModel] | None, step_depth: int, data: dict[str, Any]
) -> str:
    field = str(path[-1])
    label, model = _owner(path[:-1], step_model, step_depth, data)
    message = f"unknown field '{field}'" + (f" in {label}" if label else "")
    if model is None:
        return message
    hint = did_you_mean(field, _field_names(model))
    if hint:
        return message + hint
    if step_model is not None and model is step_model:
        owners = [kind for kind, other in STEP_TYPES.items() if field in _field_names(other)]
        if owners:
            return message + f"; '{field}' belongs to {' and '.join(owners)} steps"
    return message
