"""Checks that need more than one field: scopes, ids, expressions, blocks; and compilation.

The checker walks the *raw* data (plain dicts and lists from YAML), not the models, so that it
still runs when pydantic rejected some field: one load reports every problem. It tolerates
anything malformed (pydantic reports that) by skipping it.

Rules worth knowing (each also documented where it is enforced):

* Scopes. Every expression may read ``inputs``, ``state``, ``steps``, ``workflow`` and
  ``org``. Inside the ``steps`` of a foreach, also its ``as`` variable and ``index``; nested
  foreach steps add theirs (an inner ``index`` is the inner position). A foreach's own
  ``items``, ``when`` and ``compensate`` are evaluated outside its items, in the outer scope.
  The initial ``state`` is rendered before any step, so it may read ``inputs``, ``workflow``
  and ``org`` only.
* ``needs_state`` limits what a step's *own* fields may read from ``state`` (nested steps
  declare their own).
* Input-derived state keys: a key is input-derived when the initial ``state`` or any
  ``set_state`` step sets it from a template that reads ``inputs``. A step whose
  ``output_to`` names such a key gets a warning, because its result silently replaces a copy
  of an input that later steps probably still expect.

Why one long module: the checks share one walk of the raw data and the scope it carries down
the blocks; split, each part would need the walker and the scope of the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from engine.definition._durations import DurationSyntaxError, parse_duration
from engine.definition._models import (
    FIELD_KINDS,
    INPUT_TYPES,
    STEP_TYPES,
    BreakStep,
    ConditionStep,
    DelegateStep,
    FieldKind,
    ForeachStep,
    LoopStep,
    ParallelStep,
    PromptStep,
    ReturnStep,
    SetStateStep,
    ShellStep,
    StepBase,
    TryStep,
    WaitForStep,
    WaitStep,
    input_type_matches,
    normalize_env_value,
)
from engine.definition._problems import Problem, Severity
from engine.definition._text import did_you_mean, quote_list, show
from engine.definition._yaml import LocationIndex, Path, format_path
from engine.expr import (
    DEFAULT_ROOTS,
    Expression,
    ExpressionCompileError,
    ExpressionEvaluationError,
    Reference,
    Template,
    compile_expression,
    compile_template,
)

__all__ = ["CheckResult", "check_definition", "iter_step_paths"]

_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_AGENT: Final = re.compile(r"@[A-Za-z0-9_][A-Za-z0-9_.-]*")
_INITIAL_STATE_ROOTS: Final = frozenset({"inputs", "workflow", "org"})
_EMPTY: Final[dict[str, Any]] = {}
_BOUNDARIES: Final[dict[tuple[type[StepBase], str], str]] = {
    (ForeachStep, "steps"): "foreach",
    (LoopStep, "steps"): "loop",
    (ParallelStep, "branches"): "branch",
    (TryStep, "catch"): "catch",
    **{(model, "compensate"): "compensate" for model in STEP_TYPES.values()},
}
"""The blocks that change what their steps see or may do (see ``_StepInfo.within``)."""
_NO_TIMEOUT: Final = frozenset({LoopStep, ParallelStep, TryStep})
"""Step types whose own ``timeout`` bounds nothing (their steps have their own)."""
_SCOPED_ROOTS: Final[dict[str, type[StepBase]]] = {
    "loop": LoopStep,
    "error": TryStep,
    "event": WaitForStep,
}
"""Names in scope only inside some blocks, and the step whose blocks define them."""
_SCOPE_RULES: Final = {
    "loop": "'loop' is only defined inside the steps of a loop (and in its while/until)",
    "error": "'error' is only defined inside the catch block of a try",
    "event": "'event' is only defined in the correlate of a wait_for step",
}
SHELL_SPLICE: Final = (
    "'${{ }}' in a shell command would splice a value into the script (script injection): "
    'pass the value in env: and use "$NAME" instead'
)


@dataclass(frozen=True, slots=True)
class _Loop:
    name: str
    step_id: str
    # A path, not a line: locating is lazy for canonical JSON, and only problems need lines.
    path: Path


@dataclass(slots=True)
class _StepInfo:
    path: Path
    raw: dict[str, Any]
    model: type[StepBase] | None
    loops: tuple[_Loop, ...]
    in_compensate: bool
    # The blocks around the step, outermost first: "loop", "foreach", "branch" (of a
    # parallel), "catch", "compensate" (other blocks change nothing in scope).
    within: tuple[str, ...]
    step_id: str | None
    needs_state: frozenset[str] | None
    compiled: dict[str, Any] = field(default_factory=dict)
    references: list[Reference] = field(default_factory=list)
    when_constant: bool | None = None

    @property
    def label(self) -> str:
        return f"'{self.step_id}'" if self.step_id else format_path(self.path)


@dataclass(slots=True)
class CheckResult:
    """What the checker found and compiled.

    Attributes:
        problems: Errors and warnings.
        compiled_steps: Step path -> YAML field name -> compiled expression/template/value.
        references: Step path -> references read by the step's own fields.
        initial_state: The compiled initial ``state``.
    """

    problems: list[Problem]
    compiled_steps: dict[Path, dict[str, Any]]
    references: dict[Path, tuple[Reference, ...]]
    initial_state: dict[str, Any]


def check_definition(data: dict[str, Any], index: LocationIndex, source: str) -> CheckResult:
    """Check and compile a definition's raw data.

    Args:
        data: The top-level mapping, as loaded.
        index: Where each path of ``data`` is in the source text.
        source: Name of the source, for problems.

    Returns:
        The problems found and the compiled parts.
    """
    checker = _Checker(data, index, source)
    checker.run()
    return CheckResult(
        problems=checker.problems,
        compiled_steps={info.path: info.compiled for info in checker.steps},
        references={info.path: tuple(info.references) for info in checker.steps},
        initial_state=checker.initial_state,
    )


def _dynamic_start(text: str) -> int:
    """Offset of the first ``${{`` that opens an expression (not an escaped ``$${{``)."""
    start = text.find("${{")
    while start > 0 and text[start - 1] == "$":
        start = text.find("${{", start + 3)
    return max(start, 0)


class _Checker:
    def __init__(self, data: dict[str, Any], index: LocationIndex, source: str) -> None:
        self.data = data
        self.index = index
        self.source = source
        self.problems: list[Problem] = []
        self.steps: list[_StepInfo] = []
        self.by_path: dict[Path, _StepInfo] = {}
        self.blocks: list[list[_StepInfo]] = []
        self.ids: dict[str, Path] = {}
        self.loop_owners: dict[str, _Loop] = {}
        self.state_keys: set[str] = set()
        # State key -> path of the first template that copies an input into it.
        self.input_derived: dict[str, Path] = {}
        self.initial_state: dict[str, Any] = {}
        inputs = data.get("inputs")
        self.input_names: frozenset[str] = frozenset(inputs if isinstance(inputs, dict) else ())
        self.roots: tuple[str, ...] = DEFAULT_ROOTS

    # -- reporting ----------------------------------------------------------------------------

    def report(
        self,
        path: Path,
        message: str,
        *,
        severity: Severity = "error",
        offset: int | None = None,
    ) -> None:
        if offset is not None:
            line, column = self.index.within(path, offset)
        else:
            line, column = self.index.value(path)
        self.problems.append(
            Problem(self.source, line, column, format_path(path), message, severity)
        )

    def warn(self, path: Path, message: str, *, offset: int | None = None) -> None:
        self.report(path, message, severity="warning", offset=offset)

    def line_of(self, path: Path) -> int:
        return self.index.value(path)[0]

    # -- the passes ---------------------------------------------------------------------------

    def run(self) -> None:
        self.collect_block(self.data.get("steps"), ("steps",), (), in_compensate=False, within=())
        # Every loop variable (and `loop`, `error`) compiles everywhere, so that reading one
        # outside its block gets this checker's message ("only defined inside foreach 'x'")
        # rather than the compiler's "unknown name".
        scoped = [*sorted(self.loop_owners), "index"] if self.loop_owners else []
        models = {info.model for info in self.steps}
        scoped += [name for name, model in _SCOPED_ROOTS.items() if model in models]
        if scoped:
            self.roots = (*DEFAULT_ROOTS, *scoped)
        self.collect_state_keys()
        self.check_inputs()
        self.check_defaults()
        self.compile_initial_state()
        for info in self.steps:
            self.compile_step(info)
        for info in self.steps:
            self.check_step(info)
        for block in self.blocks:
            self.check_block(block)

    def collect_block(
        self,
        block: Any,
        path: Path,
        loops: tuple[_Loop, ...],
        *,
        in_compensate: bool,
        within: tuple[str, ...],
    ) -> None:
        if not isinstance(block, list):
            return
        infos: list[_StepInfo] = []
        for position, raw in enumerate(block):
            if not isinstance(raw, dict):
                continue
            step_path = (*path, position)
            kind = raw.get("type")
            model = STEP_TYPES.get(kind) if isinstance(kind, str) else None
            step_id = raw.get("id")
            valid_id = (
                step_id if isinstance(step_id, str) and _IDENTIFIER.fullmatch(step_id) else None
            )
            needs = raw.get("needs_state")
            needs_state = (
                frozenset(k for k in needs if isinstance(k, str))
                if isinstance(needs, list)
                else None
            )
            info = _StepInfo(
                step_path, raw, model, loops, in_compensate, within, valid_id, needs_state
            )
            infos.append(info)
            self.steps.append(info)
            self.by_path[step_path] = info
            if valid_id is not None:
                first = self.ids.get(valid_id)
                if first is None:
                    self.ids[valid_id] = step_path
                else:
                    self.report(
                        (*step_path, "id"),
                        f"duplicate step id '{valid_id}' (first "
                        f"used at line {self.line_of(first)})",
                    )
            if model is None:
                continue
            inner = loops
            if model is ForeachStep:
                loop = self.declare_loop(info, loops)
                if loop is not None:
                    inner = (*loops, loop)
            for name, (_, kind_of_field) in FIELD_KINDS[model].items():
                boundary = _BOUNDARIES.get((model, name))
                inside = (*within, boundary) if boundary else within
                if kind_of_field is FieldKind.STEPS:
                    self.collect_block(
                        raw.get(name),
                        (*step_path, name),
                        inner if name == "steps" else loops,
                        in_compensate=in_compensate or name == "compensate",
                        within=inside,
                    )
                elif kind_of_field is FieldKind.BRANCHES and isinstance(raw.get(name), dict):
                    for branch, branch_block in raw[name].items():
                        self.collect_block(
                            branch_block,
                            (*step_path, name, branch),
                            loops,
                            in_compensate=in_compensate,
                            within=inside,
                        )
        self.blocks.append(infos)

    def declare_loop(self, info: _StepInfo, outer: tuple[_Loop, ...]) -> _Loop | None:
        name = info.raw.get("as", "item")
        path = (*info.path, "as")
        if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):
            return None  # pydantic reports it
        if name in DEFAULT_ROOTS:
            self.report(
                path,
                f"foreach variable '{name}' would hide the root name '{name}'; "
                "choose another name for 'as'",
            )
            return None
        if name == "index":
            self.report(path, "'index' is the position of the item; choose another name for 'as'")
            return None
        if name in _SCOPED_ROOTS:
            self.report(
                path, f"'{name}' is a name the language gives a meaning; choose another for 'as'"
            )
            return None
        for loop in outer:
            if loop.name == name:
                self.report(
                    path,
                    f"foreach variable '{name}' would hide the variable of the "
                    f"enclosing foreach '{loop.step_id}' (line {self.line_of(loop.path)}); "
                    "choose another name for 'as'",
                )
                return None
        try:
            reserved = compile_expression(name, roots=(name,)).names != {name}
        except ExpressionCompileError:
            reserved = True
        if reserved:
            self.report(
                path, f"'{name}' is a reserved word of expressions; choose another name for 'as'"
            )
            return None
        loop = _Loop(name, info.step_id or format_path(info.path), info.path)
        self.loop_owners.setdefault(name, loop)
        return loop

    def collect_state_keys(self) -> None:
        state = self.data.get("state")
        if isinstance(state, dict):
            self.state_keys.update(k for k in state if isinstance(k, str))
        for info in self.steps:
            output_to = info.raw.get("output_to")
            if isinstance(output_to, str):
                self.state_keys.add(output_to)
            if info.model is SetStateStep:
                values = info.raw.get("set")
                if isinstance(values, dict):
                    self.state_keys.update(k for k in values if isinstance(k, str))

    # -- definition-level checks --------------------------------------------------------------

    def check_inputs(self) -> None:
        inputs = self.data.get("inputs")
        if not isinstance(inputs, dict):
            return
        for name, spec in inputs.items():
            if not isinstance(spec, dict):
                continue
            path: Path = ("inputs", name)
            kind = spec.get("type", "any")
            if kind not in INPUT_TYPES:
                continue
            enum = spec.get("enum")
            default = spec.get("default")
            if isinstance(enum, list):
                for position, value in enumerate(enum):
                    if not input_type_matches(kind, value):
                        self.report(
                            (*path, "enum", position),
                            f"enum value {show(value)} of input '{name}' is not of type {kind}",
                        )
            if default is not None:
                if not input_type_matches(kind, default):
                    self.report(
                        (*path, "default"),
                        f"the default of input '{name}' must be of "
                        f"type {kind}, got {show(default)}",
                    )
                elif isinstance(enum, list) and enum and default not in enum:
                    self.report(
                        (*path, "default"),
                        f"the default of input '{name}' must be one "
                        f"of {quote_list(enum)}, got {show(default)}",
                    )
                if spec.get("required") is True:
                    self.warn(
                        (*path, "required"),
                        f"input '{name}' is required, so its default is never used",
                    )

    def check_defaults(self) -> None:
        defaults = self.data.get("defaults")
        if isinstance(defaults, dict):
            self.check_retry(defaults.get("retry"), ("defaults", "retry"))

    def check_retry(self, retry: Any, path: Path) -> None:
        if not isinstance(retry, dict):
            return
        try:
            initial = parse_duration(str(retry.get("initial_interval", "1s")))
            longest = parse_duration(str(retry.get("max_interval", "30s")))
        except DurationSyntaxError:
            return  # pydantic reports it
        if longest < initial:
            where = (
                (*path, "max_interval") if "max_interval" in retry else (*path, "initial_interval")
            )
            self.report(where, "max_interval must not be shorter than initial_interval")

    def compile_initial_state(self) -> None:
        state = self.data.get("state")
        if not isinstance(state, dict):
            return
        for key, value in state.items():
            path: Path = ("state", key)
            refs: list[tuple[Reference, Path]] = []
            self.initial_state[key] = self.compile_value(value, path, refs)
            for reference, where in refs:
                if reference.root not in _INITIAL_STATE_ROOTS:
                    self.report(
                        where,
                        "the initial state can only read inputs, workflow and "
                        f"org, not '{reference.root}'",
                        offset=reference.column - 1,
                    )
                else:
                    self.check_reference(reference, where, None)
                if reference.root == "inputs":
                    self.input_derived.setdefault(key, path)

    # -- compiling ----------------------------------------------------------------------------

    def compile_expression(self, value: Any, path: Path) -> Expression | None:
        if value is True or value is False:
            return compile_expression("true" if value else "false", roots=self.roots)
        if not isinstance(value, str) or not value.strip():
            return None  # pydantic reports it
        try:
            return compile_expression(value, roots=self.roots)
        except ExpressionCompileError as error:
            self.report(path, error.message, offset=error.column - 1)
            return None

    def compile_string(self, text: str, path: Path) -> str | Template:
        if "${{" not in text:
            return text  # the common case: no expression, nothing to compile
        try:
            template = compile_template(text, roots=self.roots)
        except ExpressionCompileError as error:
            self.report(path, error.message, offset=error.column - 1)
            return text
        if template.is_static:
            rendered: str = template.render(_EMPTY)  # `$${{` escapes resolved once, here
            return rendered
        return template

    def compile_value(self, value: Any, path: Path, refs: list[tuple[Reference, Path]]) -> Any:
        kind = type(value)
        if kind is str:
            compiled = self.compile_string(value, path)
            if isinstance(compiled, Template):
                refs.extend((reference, path) for reference in compiled.references)
            return compiled
        if kind is dict:
            return {
                key: self.compile_value(item, (*path, key), refs) for key, item in value.items()
            }
        if kind is list:
            return [
                self.compile_value(item, (*path, position), refs)
                for position, item in enumerate(value)
            ]
        return value

    def compile_step(self, info: _StepInfo) -> None:
        if info.model is None:
            return
        raw = info.raw
        refs: list[tuple[Reference, Path]] = []
        for name, (_, kind) in FIELD_KINDS[info.model].items():
            value = raw.get(name)
            path = (*info.path, name)
            if value is None or kind in (FieldKind.STEPS, FieldKind.BRANCHES):
                continue
            if kind is FieldKind.EXPRESSION or (
                kind is FieldKind.ITEMS and not isinstance(value, list)
            ):
                expression = self.compile_expression(value, path)
                if expression is None:
                    continue
                info.compiled[name] = expression
                refs.extend((reference, path) for reference in expression.references)
            elif kind is FieldKind.TEMPLATE:
                if isinstance(value, str):
                    compiled = self.compile_string(value, path)
                    info.compiled[name] = compiled
                    if isinstance(compiled, Template):
                        refs.extend((reference, path) for reference in compiled.references)
            else:
                if info.model is ShellStep and name == "env" and isinstance(value, dict):
                    value = {
                        key: normalize_env_value(item) if type(item) in (bool, int, float) else item
                        for key, item in value.items()
                    }
                info.compiled[name] = self.compile_value(value, path, refs)
        for reference, path in refs:
            self.check_reference(reference, path, info)
            if (
                info.model is SetStateStep
                and reference.root == "inputs"
                and len(path) > len(info.path) + 1
            ):
                key = path[len(info.path) + 1]
                if isinstance(key, str):
                    self.input_derived.setdefault(key, path)
        # Sorted: the order of keys in a mapping must not make two equal definitions differ.
        info.references = sorted(
            {reference for reference, _ in refs}, key=lambda r: (r.root, r.key or "", r.column)
        )

    def check_reference(self, reference: Reference, path: Path, info: _StepInfo | None) -> None:
        root, key = reference.root, reference.key
        offset = reference.column - 1
        if root in _SCOPED_ROOTS:
            if not self.sees(info, root, path):
                self.report(path, _SCOPE_RULES[root], offset=offset)
        elif root == "index" or root in self.loop_owners:
            visible = {loop.name for loop in info.loops} if info is not None else set()
            if visible:
                visible.add("index")
            if root not in visible:
                if root == "index":
                    message = "'index' is only defined inside the steps of a foreach"
                else:
                    owner = self.loop_owners[root]
                    message = (
                        f"'{root}' is only defined inside the steps of foreach "
                        f"'{owner.step_id}' (line {self.line_of(owner.path)})"
                    )
                self.report(path, message, offset=offset)
        elif root == "steps":
            if key is not None and key not in self.ids:
                self.report(
                    path, f"no step has id '{key}'{did_you_mean(key, self.ids)}", offset=offset
                )
        elif root == "inputs":
            if key is not None and key not in self.input_names:
                hint = did_you_mean(key, self.input_names)
                self.report(path, f"input '{key}' is not declared in inputs{hint}", offset=offset)
        elif root == "state" and info is not None:
            if info.needs_state is not None:
                if key is None:
                    self.warn(
                        path,
                        f"step {info.label} reads state with a computed key, but "
                        "it only sees the keys listed in needs_state",
                        offset=offset,
                    )
                elif key not in info.needs_state:
                    self.report(
                        path,
                        f"step {info.label} reads state.{key}, but needs_state "
                        f"does not list '{key}'",
                        offset=offset,
                    )
                    return
            if key is not None and key not in self.state_keys:
                self.warn(
                    path,
                    f"state key '{key}' is never set (by state, output_to or "
                    f"set_state){did_you_mean(key, self.state_keys)}",
                    offset=offset,
                )

    @staticmethod
    def sees(info: _StepInfo | None, root: str, path: Path) -> bool:
        """Whether a field of the step at ``path`` may read ``loop`` or ``error``."""
        if info is None:
            return False
        field = path[len(info.path)] if len(path) > len(info.path) else None
        if root == "loop":
            return "loop" in info.within or (info.model is LoopStep and field in ("while", "until"))
        if root == "event":
            return info.model is WaitForStep and field == "correlate"
        return "catch" in info.within

    # -- per-step checks ----------------------------------------------------------------------

    def check_step(self, info: _StepInfo) -> None:
        model = info.model
        if model is None:
            return
        raw = info.raw
        self.check_when(info)
        self.check_retry(raw.get("retry"), (*info.path, "retry"))
        # `retry` alone implies `on_error: retry` (see StepBase); only an explicit other policy
        # leaves the retry policy unused.
        if raw.get("retry") is not None and raw.get("on_error", "retry") != "retry":
            self.warn(
                (*info.path, "retry"),
                f"retry of step {info.label} has no effect unless on_error is 'retry'",
            )
        if model is ReturnStep and info.in_compensate:
            self.report((*info.path, "type"), "'return' is not allowed in compensate steps")
        elif model is ReturnStep and _innermost(info.within, ("foreach", "branch")) == "branch":
            self.report(
                (*info.path, "type"),
                "'return' is not allowed in a parallel branch (the branches run at once): "
                "let the branch end, and return after the parallel step",
            )
        if model is BreakStep:
            self.check_break(info)
        if model in _NO_TIMEOUT and raw.get("timeout") is not None:
            self.warn(
                (*info.path, "timeout"),
                f"timeout has no effect on a {raw.get('type')} step: give its steps a timeout",
            )
        output_to = raw.get("output_to")
        if isinstance(output_to, str) and output_to in self.input_derived:
            origin = self.input_derived[output_to]
            self.warn(
                (*info.path, "output_to"),
                f"output_to '{output_to}' overwrites state key '{output_to}', which holds "
                f"a value copied from inputs (line {self.line_of(origin)}); write the "
                "result to another key",
            )
        if model is ConditionStep:
            self.check_condition(info)
        elif model is ForeachStep:
            self.check_items(info)
        elif model is LoopStep:
            self.check_loop(info)
        elif model is ParallelStep:
            branches = info.raw.get("branches")
            for name, block in branches.items() if isinstance(branches, dict) else ():
                if isinstance(block, list) and not block:
                    self.report(
                        (*info.path, "branches", name),
                        f"branch '{name}' of parallel {info.label} has no steps",
                    )
        elif model is TryStep:
            blocks = [info.raw.get(name) for name in ("catch", "finally")]
            if not any(isinstance(block, list) and block for block in blocks):
                self.report(info.path, f"try step {info.label} needs 'catch', 'finally' or both")
        elif model is PromptStep:
            self.check_prompt(info)
        elif model is WaitStep:
            self.check_wait(info)
        elif model is DelegateStep:
            self.check_agent(info)
        elif model is ShellStep:
            command = info.compiled.get("command")
            if isinstance(command, Template):
                self.report(
                    (*info.path, "command"),
                    SHELL_SPLICE,
                    offset=_dynamic_start(command.text),
                )

    def constant(self, expression: Expression, path: Path, what: str) -> tuple[bool, Any]:
        """Evaluate an expression that reads nothing: (is constant, value)."""
        if expression.names:
            return False, None
        try:
            return True, expression.evaluate(_EMPTY)
        except ExpressionEvaluationError as error:
            self.report(
                path,
                f"{what} always fails: {error.message}",
                offset=error.column - 1 if error.source == expression.source else None,
            )
            return False, None

    def constant_condition(self, info: _StepInfo, name: str) -> bool | None:
        expression = info.compiled.get(name)
        if not isinstance(expression, Expression):
            return None
        path = (*info.path, name)
        is_constant, value = self.constant(expression, path, f"'{name}'")
        if not is_constant:
            return None
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        self.report(path, f"'{name}' must be a boolean, got {show(value)}")
        return None

    def check_when(self, info: _StepInfo) -> None:
        info.when_constant = self.constant_condition(info, "when")
        if info.when_constant is False:
            self.warn(
                (*info.path, "when"), f"step {info.label} never runs: its 'when' is always false"
            )

    def check_condition(self, info: _StepInfo) -> None:
        constant = self.constant_condition(info, "if")
        for branch, dead_when in (("then", False), ("else", True)):
            block = info.raw.get(branch)
            if constant is dead_when and isinstance(block, list) and block:
                self.warn(
                    (*info.path, branch),
                    f"the {branch} branch of condition {info.label} never runs: its "
                    f"'if' is always {'true' if dead_when else 'false'}",
                )

    def check_items(self, info: _StepInfo) -> None:
        expression = info.compiled.get("items")
        if isinstance(expression, Expression):
            path = (*info.path, "items")
            is_constant, value = self.constant(expression, path, "'items'")
            if is_constant and type(value) is not list:
                self.report(path, f"foreach items must be a list, got {show(value)}")

    def check_loop(self, info: _StepInfo) -> None:
        if self.constant_condition(info, "while") is False:
            self.warn(
                (*info.path, "while"),
                f"the steps of loop {info.label} never run: its 'while' is always false",
            )
        self.constant_condition(info, "until")

    def check_break(self, info: _StepInfo) -> None:
        boundaries = [kind for kind in info.within if kind != "catch"]
        innermost = boundaries[-1] if boundaries else None
        if innermost == "loop":
            return
        where = {
            None: "outside a loop",
            "foreach": "in the steps of a foreach (an item cannot end the loop around it)",
            "branch": "in a parallel branch (it cannot end the loop around the parallel)",
            "compensate": "in a compensate block",
        }[innermost]
        self.report(
            (*info.path, "type"),
            f"'break' ends the innermost loop, and step {info.label} is {where}",
        )

    def check_prompt(self, info: _StepInfo) -> None:
        raw = info.raw
        prompt_type = raw.get("prompt_type")
        approvals = raw.get("approvals")
        if type(approvals) is int and approvals > 1 and prompt_type != "confirm":
            self.report(
                (*info.path, "approvals"),
                f"approvals {approvals} needs a confirm prompt: only yes/no answers are counted",
            )
        approvers = raw.get("approvers")
        if (
            isinstance(approvers, dict)
            and not approvers.get("roles")
            and not approvers.get("subjects")
        ):
            self.report(
                (*info.path, "approvers"),
                "approvers names nobody: give roles, subjects or both (or leave approvers out "
                "to let any member answer)",
            )
        options = raw.get("options")
        compiled_options = info.compiled.get("options")
        default = raw.get("default")
        default_is_static = not _has_template(info.compiled.get("default"))
        if prompt_type == "choice":
            if options is None:
                self.report(
                    (*info.path, "prompt_type"), f"choice prompt {info.label} needs 'options'"
                )
            elif isinstance(options, str):
                if not (isinstance(compiled_options, Template) and compiled_options.is_single):
                    self.report(
                        (*info.path, "options"),
                        "options must be a list, or one '${{ }}' expression that produces a list",
                    )
            elif isinstance(options, list):
                self.check_options(info, options, default, default_is_static)
        elif options is not None and prompt_type in ("info", "confirm", "text"):
            self.warn(
                (*info.path, "options"),
                f"options are only used by choice prompts, not {prompt_type}",
            )
        if (
            prompt_type == "confirm"
            and default is not None
            and default_is_static
            and type(default) is not bool
        ):
            self.report(
                (*info.path, "default"),
                f"the default of a confirm prompt must be true or false, got {show(default)}",
            )

    def check_options(
        self, info: _StepInfo, options: list[Any], default: Any, default_is_static: bool
    ) -> None:
        if not options:
            self.report((*info.path, "options"), "options must not be empty")
            return
        seen: set[Any] = set()
        for position, option in enumerate(options):
            if isinstance(option, (str, int, float, bool)):
                marker = (type(option), option)
                if marker in seen:
                    self.report(
                        (*info.path, "options", position), f"duplicate option {show(option)}"
                    )
                seen.add(marker)
        if default is None or not default_is_static or _has_template(info.compiled.get("options")):
            return
        if not any(default == option and type(default) is type(option) for option in options):
            self.report(
                (*info.path, "default"),
                f"default {show(default)} is not one of the options: {quote_list(options)}",
            )

    def check_wait(self, info: _StepInfo) -> None:
        raw = info.raw
        has_duration = raw.get("duration") is not None
        until = raw.get("until")
        if has_duration and until is not None:
            self.report(
                (*info.path, "until"),
                f"wait step {info.label} takes either 'duration' or 'until', not both",
            )
        elif not has_duration and until is None:
            self.report(info.path, f"wait step {info.label} needs 'duration' or 'until'")
        compiled = info.compiled.get("until")
        if isinstance(compiled, str):
            try:
                moment = datetime.fromisoformat(compiled)
            except ValueError:
                self.report(
                    (*info.path, "until"),
                    "until must be an ISO-8601 timestamp such as "
                    f"'2030-01-31T09:00:00Z', got {show(compiled)}",
                )
                return
            if moment.tzinfo is None:
                self.report(
                    (*info.path, "until"),
                    f"timestamp {show(compiled)} needs a timezone, such as 'Z' or '+02:00'",
                )

    def check_agent(self, info: _StepInfo) -> None:
        agent = info.compiled.get("agent")
        if isinstance(agent, str) and not _AGENT.fullmatch(agent):
            self.report(
                (*info.path, "agent"), f"agent must be '@task' or '@<name>', got {show(agent)}"
            )

    # -- blocks -------------------------------------------------------------------------------

    def terminates(self, info: _StepInfo) -> bool:
        """Whether running this step always ends its block (an unconditional return)."""
        if info.raw.get("when") is not None and info.when_constant is not True:
            return False
        if info.model in (ReturnStep, BreakStep):
            return True
        if info.model is not ConditionStep:
            return False
        constant = self.constant_if(info)
        then_ends = self.block_terminates(info, "then")
        else_ends = self.block_terminates(info, "else")
        if constant is True:
            return then_ends
        if constant is False:
            return else_ends
        return then_ends and else_ends

    def endings(self, info: _StepInfo) -> set[str]:
        """The step types that end the branches of a terminating condition (return, break)."""
        if info.model is not ConditionStep:
            return {str(info.raw.get("type"))}
        found: set[str] = set()
        for name in ("then", "else"):
            block = info.raw.get(name)
            if isinstance(block, list) and block:
                last = self.by_path.get((*info.path, name, len(block) - 1))
                if last is not None and self.terminates(last):
                    found |= self.endings(last)
        return found

    def constant_if(self, info: _StepInfo) -> bool | None:
        expression = info.compiled.get("if")
        if not isinstance(expression, Expression) or expression.names:
            return None
        try:
            value = expression.evaluate(_EMPTY)
        except ExpressionEvaluationError:
            return None
        return value if isinstance(value, bool) else None

    def block_terminates(self, info: _StepInfo, name: str) -> bool:
        block = info.raw.get(name)
        if not isinstance(block, list) or not block:
            return False
        last = self.by_path.get((*info.path, name, len(block) - 1))
        return last is not None and self.terminates(last)

    def check_block(self, block: list[_StepInfo]) -> None:
        for position, info in enumerate(block[:-1]):
            if not self.terminates(info):
                continue
            following = block[position + 1]
            if info.model in (ReturnStep, BreakStep):
                self.report(
                    (*info.path, "type"),
                    f"'{info.raw.get('type')}' must be the last step of its block: step "
                    f"{following.label} (line {self.line_of(following.path)}) would "
                    "never run",
                )
            else:
                endings = " or ".join(sorted(self.endings(info)))
                self.warn(
                    following.path,
                    f"step {following.label} never runs: every branch "
                    f"of condition {info.label} ends with {endings}",
                )
            return


def _innermost(within: tuple[str, ...], kinds: tuple[str, ...]) -> str | None:
    """The innermost of the blocks ``kinds`` around a step (None: none of them)."""
    return next((kind for kind in reversed(within) if kind in kinds), None)


def _has_template(compiled: Any) -> bool:
    return any(isinstance(leaf, Template) for leaf in _leaves(compiled))


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)
    else:
        yield value


def iter_step_paths(steps: Iterable[StepBase], path: Path) -> Iterator[tuple[Path, StepBase]]:
    """Every step of a block and its nested blocks, with its path, in document order."""
    for position, step in enumerate(steps):
        step_path = (*path, position)
        yield step_path, step
        for name, (attribute, kind) in FIELD_KINDS[type(step)].items():
            if kind is FieldKind.STEPS:
                yield from iter_step_paths(getattr(step, attribute), (*step_path, name))
            elif kind is FieldKind.BRANCHES:
                for branch, block in getattr(step, attribute).items():
                    yield from iter_step_paths(block, (*step_path, name, branch))
