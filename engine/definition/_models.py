"""Pydantic models of the workflow language: the definition, its inputs and its steps.

The models check what one field can check on its own (types, names, durations, allowed
values, unknown fields). Whatever needs more than one field or the whole definition (scopes,
unique ids, expressions) is checked by :mod:`engine.definition._validate`, and the compiled
expressions and templates are attached to the models by :mod:`engine.definition._loader`.

Why one long module: the models of the language and their field types are one vocabulary,
read together (a step model is a dozen lines; the shared field validators are most of it).
"""

from __future__ import annotations

import copy
import enum
import hashlib
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    model_validator,
)
from pydantic_core import PydanticCustomError

from engine.definition._compiled import render_value
from engine.definition._durations import (
    DURATION_EXAMPLES,
    DurationSyntaxError,
    format_duration,
    parse_duration,
)
from engine.definition._problems import InputError, Problem
from engine.definition._text import did_you_mean, quote_list, show
from engine.expr import Expression, ExpressionEvaluationError, Reference

__all__ = [
    "BLOCK_FIELDS",
    "EVENT_NAME",
    "FIELD_KINDS",
    "INPUT_TYPES",
    "STEP_TYPES",
    "WORKFLOW_NAME",
    "BreakStep",
    "CallStep",
    "ConditionStep",
    "Defaults",
    "DelegateStep",
    "FieldKind",
    "ForeachStep",
    "InputSpec",
    "LoopStep",
    "McpCallStep",
    "ParallelStep",
    "PromptStep",
    "RetryPolicy",
    "ReturnStep",
    "SetStateStep",
    "ShellStep",
    "Step",
    "StepBase",
    "TryStep",
    "WaitForStep",
    "WaitStep",
    "WorkflowDefinition",
    "input_type_matches",
    "normalize_env_value",
]


class FieldKind(enum.Enum):
    """How the loader treats a field's value (declared as ``Annotated`` metadata)."""

    EXPRESSION = "expression"
    """A bare expression (``when``, ``if``); a ``${{ }}`` wrapper is accepted."""
    TEMPLATE = "template"
    """One string with ``${{ }}`` parts."""
    VALUE = "value"
    """Any JSON value; every string in it, at any depth, is a template."""
    ITEMS = "items"
    """``foreach.items``: an expression string, or a list treated as a VALUE."""
    STEPS = "steps"
    """A nested block of steps."""
    BRANCHES = "branches"
    """Named blocks of steps (``parallel.branches``: name -> steps)."""


# -- field types ------------------------------------------------------------------------------

WORKFLOW_NAME: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
"""The rule of a definition's name (``fullmatch``): its runs' workflow type is ``name:version``."""
# Step ids, state keys and input names are identifiers so that `steps.<id>`, `state.<key>` and
# `inputs.<name>` always work in expressions: with a hyphen, `steps.build-image` would read as
# a subtraction.
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_ENV_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _error(kind: str, message: str) -> PydanticCustomError:
    # No context: the message is used as it is, braces (`${{ }}`) included. The prefix keeps
    # these kinds apart from pydantic's own, whose messages the loader rewords.
    return PydanticCustomError(f"definition_{kind}", message, None)


def _pattern(kind: str, pattern: re.Pattern[str], what: str, rule: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise _error("string_type", f"expected {what} (a string), got {show(value)}")
        if not pattern.fullmatch(value):
            raise _error(kind, f"invalid {what} {show(value)}: {rule}")
        return value

    return check


_IDENTIFIER_RULE = (
    "use letters, digits and '_', starting with a letter or '_' (at most 64 characters)"
)

WorkflowName = Annotated[
    str,
    PlainValidator(
        _pattern(
            "workflow_name",
            WORKFLOW_NAME,
            "workflow name",
            "use lowercase letters, digits and '-', starting with a letter or digit "
            "(at most 63 characters)",
        )
    ),
]
StepId = Annotated[
    str, PlainValidator(_pattern("step_id", _IDENTIFIER, "step id", _IDENTIFIER_RULE))
]
StateKey = Annotated[
    str, PlainValidator(_pattern("state_key", _IDENTIFIER, "state key", _IDENTIFIER_RULE))
]
InputName = Annotated[
    str, PlainValidator(_pattern("input_name", _IDENTIFIER, "input name", _IDENTIFIER_RULE))
]
VariableName = Annotated[
    str, PlainValidator(_pattern("variable_name", _IDENTIFIER, "variable name", _IDENTIFIER_RULE))
]
EVENT_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}")
"""The rule of an event's name (``fullmatch``)."""
EventName = Annotated[
    str,
    PlainValidator(
        _pattern(
            "event_name",
            EVENT_NAME,
            "event name",
            "use letters, digits and '_', '.', ':', '-' (at most 128 characters)",
        )
    ),
]
RUNNER_LABEL: Final = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
"""The rule of a shell runner's label (``fullmatch``): ``gpu``, ``linux-arm64``."""
RunnerLabel = Annotated[
    str,
    PlainValidator(
        _pattern(
            "runner_label",
            RUNNER_LABEL,
            "runner label",
            "use lower-case letters, digits and '.', '_', '-' (at most 63 characters)",
        )
    ),
]
EnvName = Annotated[
    str,
    PlainValidator(
        _pattern(
            "env_name",
            _ENV_NAME,
            "environment variable name",
            "use letters, digits and '_', not starting with a digit",
        )
    ),
]


def _positive_int(value: Any) -> int:
    if type(value) is not int or value < 1:
        raise _error("positive_int", f"expected a positive integer, got {show(value)}")
    return value


PositiveInt = Annotated[int, PlainValidator(_positive_int)]

LONGEST_DURATION: Final = timedelta(days=36_525)
"""The longest duration a definition may give (100 years): longer ones are mistakes, and
Temporal's timers and timeouts could not hold them."""
MAX_ATTEMPTS: Final = 1000
LARGEST_BACKOFF: Final = 100.0


MAX_VERSION: Final = 2**31 - 1


def _version(value: Any) -> int:
    number = _positive_int(value)
    if number > MAX_VERSION:
        raise _error("version", f"version must be at most {MAX_VERSION}, got {show(value)}")
    return number


def _optional_version(value: Any) -> int | None:
    return None if value is None else _version(value)


def _attempts(value: Any) -> int:
    count = _positive_int(value)
    if count > MAX_ATTEMPTS:
        raise _error("attempts", f"max_attempts must be at most {MAX_ATTEMPTS}, got {show(value)}")
    return count


def _backoff(value: Any) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise _error("float_type", f"expected a number, got {show(value)}")
    if not 1 <= value <= LARGEST_BACKOFF:
        raise _error(
            "backoff", f"backoff must be between 1.0 and {LARGEST_BACKOFF:g}, got {show(value)}"
        )
    return float(value)


def _strict_bool(value: Any) -> bool:
    if type(value) is not bool:
        raise _error("bool_type", f"expected true or false, got {show(value)}")
    return value


def _strict_str(value: Any) -> str:
    if type(value) is not str:
        raise _error("string_type", f"expected a string, got {show(value)}")
    return value


Bool = Annotated[bool, PlainValidator(_strict_bool)]
Text = Annotated[str, PlainValidator(_strict_str)]


def _duration(minimum: int) -> Callable[[Any], timedelta]:
    def check(value: Any) -> timedelta:
        if isinstance(value, timedelta):
            parsed = value
        elif isinstance(value, str):
            try:
                parsed = parse_duration(value)
            except DurationSyntaxError as error:
                raise _error("duration", str(error)) from None
        else:
            hint = f" (add a unit: '{value}s')" if type(value) is int and value >= 0 else ""
            raise _error(
                "duration", f"expected a duration {DURATION_EXAMPLES}, got {show(value)}{hint}"
            )
        if parsed < timedelta(microseconds=minimum):
            wanted = "positive" if minimum else "zero or positive"
            raise _error("duration", f"the duration must be {wanted}, got {show(value)}")
        if parsed > LONGEST_DURATION:
            raise _error("duration", f"the duration must be at most 100 years, got {show(value)}")
        return parsed

    return check


def _format_duration(value: timedelta) -> str:
    return format_duration(value)


PositiveDuration = Annotated[
    timedelta, PlainValidator(_duration(1)), PlainSerializer(_format_duration, return_type=str)
]
"""A duration longer than zero; canonical JSON spells it like ``1h30m``."""
NonNegativeDuration = Annotated[
    timedelta, PlainValidator(_duration(0)), PlainSerializer(_format_duration, return_type=str)
]


def _expression_source(value: Any) -> Any:
    # `when: false` is a YAML boolean, and a perfectly clear expression.
    if value is True:
        return "true"
    if value is False:
        return "false"
    return value


def _expression_text(value: Any) -> str:
    value = _expression_source(value)
    if not isinstance(value, str):
        raise _error("expression_type", f"expected an expression (a string), got {show(value)}")
    if not value.strip():
        raise _error("expression_type", "expected an expression, got an empty string")
    return value


ExpressionText = Annotated[str, PlainValidator(_expression_text), FieldKind.EXPRESSION]
TemplateText = Annotated[str, PlainValidator(_strict_str), FieldKind.TEMPLATE]


def _items(value: Any) -> Any:
    if isinstance(value, list):
        return value
    return _expression_text(value)


def normalize_env_value(value: Any) -> str:
    """An environment value as the string it stands for (``8080`` -> ``"8080"``)."""
    # Environment variables are strings; a YAML `PORT: 8080` means "8080", and normalising it
    # here gives `8080` and `"8080"` the same canonical form.
    if type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) in (int, float):
        return repr(value)
    raise _error("env_value", f"expected a string, number or boolean, got {show(value)}")


def _options(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise _error(
            "options_type",
            "expected a list of options (or one '${{ }}' expression "
            f"that produces a list), got {show(value)}",
        )
    for option in value:
        if type(option) not in (str, int, float, bool):
            raise _error(
                "options_type",
                f"each option must be a string, number or boolean, got {show(option)}",
            )
    return value


# -- shared models ----------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetryPolicy(_Model):
    """How a step with ``on_error: retry`` is retried.

    Attributes:
        max_attempts: Attempts in all, the first included.
        initial_interval: Wait before the second attempt.
        backoff: Factor applied to the wait after each attempt (at least 1.0).
        max_interval: Longest wait between two attempts.
    """

    max_attempts: Annotated[int, PlainValidator(_attempts)] = 5
    initial_interval: PositiveDuration = timedelta(seconds=1)
    backoff: Annotated[float, PlainValidator(_backoff)] = 2.0
    max_interval: PositiveDuration = timedelta(seconds=30)


class Defaults(_Model):
    """Settings every step inherits unless it sets its own.

    Attributes:
        timeout: Longest a step may take (``None``: no limit).
        retry: Retry policy of steps with ``on_error: retry`` and no ``retry`` of their own.
    """

    timeout: PositiveDuration | None = None
    retry: RetryPolicy = Field(default_factory=RetryPolicy)


INPUT_TYPES: Final = ("string", "integer", "number", "boolean", "list", "map", "any")


def input_type_matches(kind: str, value: Any) -> bool:
    """Whether ``value`` is of the input type ``kind`` (``null`` matches no type but ``any``)."""
    value_type = type(value)
    if kind == "any":
        return True
    if kind == "string":
        return value_type is str
    if kind == "integer":
        return value_type is int
    if kind == "number":
        return value_type in (int, float)
    if kind == "boolean":
        return value_type is bool
    if kind == "list":
        return value_type is list
    if kind == "map":
        return value_type is dict
    return False


class InputSpec(_Model):
    """The schema of one input of a workflow.

    Attributes:
        type: ``string``, ``integer``, ``number``, ``boolean``, ``list``, ``map`` or ``any``.
        required: Whether a run must be given this input.
        default: Value used when a run is not given this input.
        enum: The only values allowed, if set.
        description: For people.
    """

    type: Literal["string", "integer", "number", "boolean", "list", "map", "any"] = "any"
    required: Bool = False
    default: Any = None
    enum: list[Any] | None = Field(default=None, min_length=1)
    description: Text | None = None


# -- steps ------------------------------------------------------------------------------------


class StepBase(_Model):
    """Fields every step has, and how the interpreter reads its compiled parts.

    Attributes:
        id: Unique in the whole definition (nested blocks and compensate blocks included).
        type: The step type (the discriminator).
        when: Expression; the step is skipped unless it is true.
        needs_state: The only state keys the step may see (``None``: all of them).
        output_to: State key that receives the step's result.
        timeout: Longest the step may take (``None``: the definition's default).
        retry: Retry policy for ``on_error: retry`` (``None``: the definition's default).
        on_error: ``fail`` the workflow, ``continue`` with the next step, or ``retry`` (with
            ``retry``, else the definition's default policy, then fail). Defaults to ``retry``
            when the step sets ``retry``, else to ``fail``.
        compensate: Steps run, in reverse order of completion, when the workflow later fails.
    """

    id: StepId
    when: Annotated[ExpressionText | None, FieldKind.EXPRESSION] = None
    needs_state: list[StateKey] | None = None
    output_to: StateKey | None = None
    timeout: PositiveDuration | None = None
    retry: RetryPolicy | None = None
    on_error: Literal["fail", "continue", "retry"] = "fail"
    compensate: Annotated[list[Step], FieldKind.STEPS] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _retry_implies_on_error_retry(cls, data: Any) -> Any:
        # A step that spells out a retry policy wants to be retried: without this, `retry:`
        # alone would silently do nothing. An explicit on_error still wins (and the checker
        # warns that the policy is then unused).
        if isinstance(data, dict) and data.get("retry") is not None and "on_error" not in data:
            return {**data, "on_error": "retry"}
        return data

    # Filled by the loader: YAML field name -> compiled expression, template or value.
    _compiled: dict[str, Any] = PrivateAttr(default_factory=dict)
    _references: tuple[Reference, ...] = PrivateAttr(default=())

    def compiled(self, field: str) -> Any:
        """The compiled form of a field, by its YAML name.

        Returns:
            An :class:`~engine.expr.Expression` for ``when``, ``if`` and a string ``items``; a
            compiled value (see :func:`render_value`) for templated fields; ``None`` when the
            field is absent.
        """
        return self._compiled.get(field)

    @property
    def references(self) -> tuple[Reference, ...]:
        """Every root (and first key) read by this step's own fields (not nested steps')."""
        return self._references

    @property
    def step_type(self) -> str:
        """The step's ``type`` (each step model fixes it to one literal)."""
        return str(self.__dict__["type"])

    def evaluate_when(self, context: Mapping[str, Any]) -> bool:
        """Whether the step runs: its ``when`` (true when there is none).

        Raises:
            engine.expr.ExpressionEvaluationError: ``when`` failed or is not a boolean.
        """
        expression: Expression | None = self._compiled.get("when")
        return True if expression is None else expression.evaluate_condition(context)

    def render(self, field: str, context: Mapping[str, Any]) -> Any:
        """Render one templated field (by its YAML name) against ``context``.

        Raises:
            engine.expr.ExpressionEvaluationError: An expression in it failed.
        """
        return render_value(self._compiled.get(field), context)

    def blocks(self) -> Iterator[tuple[str, list[StepBase]]]:
        """The step's nested blocks, with their names, in document order (``compensate``
        last; a parallel's branch is ``branches.<name>``)."""
        for name, (attribute, kind) in FIELD_KINDS[type(self)].items():
            if kind is FieldKind.STEPS:
                yield name, getattr(self, attribute)
            elif kind is FieldKind.BRANCHES:
                for branch, block in getattr(self, attribute).items():
                    yield f"{name}.{branch}", block

    def nested_steps(self) -> Iterator[StepBase]:
        """Every step inside this one's blocks (not itself), at any depth, in document order."""
        for _, block in self.blocks():
            for step in block:
                yield step
                yield from step.nested_steps()

    def render_params(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """Render every templated field of the step, keyed by YAML name.

        For a shell step: ``command``, ``workdir`` and ``env``; for ``mcp_call``: ``server``,
        ``tool`` and ``params``; and so on (absent optional fields render as ``None``).

        Raises:
            engine.expr.ExpressionEvaluationError: An expression failed.
        """
        compiled = self._compiled
        return {
            name: render_value(compiled.get(name), context) for name in _RENDERED_FIELDS[type(self)]
        }


class ConditionStep(StepBase):
    """Runs ``then`` when ``if`` is true, else ``else``."""

    type: Literal["condition"]
    if_: ExpressionText = Field(alias="if")
    then: Annotated[list[Step], FieldKind.STEPS] = Field(min_length=1)
    else_: Annotated[list[Step], FieldKind.STEPS] = Field(default_factory=list, alias="else")

    def evaluate_if(self, context: Mapping[str, Any]) -> bool:
        """Evaluate ``if``.

        Raises:
            engine.expr.ExpressionEvaluationError: It failed or is not a boolean.
        """
        expression: Expression = self._compiled["if"]
        return expression.evaluate_condition(context)


class SetStateStep(StepBase):
    """Sets state keys to (templated) values, in the workflow task itself."""

    type: Literal["set_state"]
    set_: Annotated[dict[StateKey, Any], FieldKind.VALUE] = Field(alias="set", min_length=1)


class ForeachStep(StepBase):
    """Runs ``steps`` once per item (as child workflows), results in item order."""

    type: Literal["foreach"]
    items: Annotated[Any, PlainValidator(_items), FieldKind.ITEMS]
    as_: VariableName = Field(default="item", alias="as")
    max_parallel: PositiveInt = 1
    steps: Annotated[list[Step], FieldKind.STEPS] = Field(min_length=1)
    on_item_error: Literal["fail", "continue"] = "fail"

    def evaluate_items(self, context: Mapping[str, Any]) -> list[Any]:
        """The items to iterate over.

        Raises:
            engine.expr.ExpressionEvaluationError: ``items`` failed or is not a list.
        """
        compiled = self._compiled["items"]
        if isinstance(compiled, Expression):
            items = compiled.evaluate(context)
            if type(items) is not list:
                raise ExpressionEvaluationError(
                    f"foreach items must be a list, got {show(items)}", compiled.source, 1
                )
            return items
        rendered: list[Any] = render_value(compiled, context)
        return rendered


class LoopStep(StepBase):
    """Runs ``steps`` again and again: while ``while`` holds (checked before each iteration),
    or until ``until`` holds (checked after each), never more than ``max_iterations`` times.

    ``loop.iteration`` (0-based) and ``loop.id`` are in scope inside ``steps`` and in
    ``while``/``until``; the state carries over from one iteration to the next; a ``break``
    step ends the loop early. A loop that reaches ``max_iterations`` while its condition still
    asks for more fails (its ``on_error`` decides), with ``{iterations, broke}`` as output.
    """

    type: Literal["loop"]
    while_: Annotated[ExpressionText | None, FieldKind.EXPRESSION] = Field(
        default=None, alias="while"
    )
    until: Annotated[ExpressionText | None, FieldKind.EXPRESSION] = None
    max_iterations: PositiveInt
    steps: Annotated[list[Step], FieldKind.STEPS] = Field(min_length=1)

    def evaluate_condition(self, field: str, context: Mapping[str, Any]) -> bool | None:
        """Evaluate ``while`` or ``until`` (None when the loop has none).

        Raises:
            engine.expr.ExpressionEvaluationError: It failed or is not a boolean.
        """
        expression: Expression | None = self._compiled.get(field)
        return None if expression is None else expression.evaluate_condition(context)


class BreakStep(StepBase):
    """Ends the innermost enclosing ``loop`` (usually with a ``when``)."""

    type: Literal["break"]


class ParallelStep(StepBase):
    """Runs named branches of steps concurrently inside the run, and joins them.

    The output is ``{branch: the output of its last step}``; ``on_branch_error`` decides
    whether a failed branch stops the others at once (``fail_fast``) or after they finish
    (``wait_all``); either way the step then fails, with each failure in
    ``steps.<id>.errors``.
    """

    type: Literal["parallel"]
    branches: Annotated[dict[VariableName, list[Step]], FieldKind.BRANCHES] = Field(min_length=1)
    on_branch_error: Literal["fail_fast", "wait_all"] = "fail_fast"


class TryStep(StepBase):
    """Runs ``steps``; if one fails (and its ``on_error`` fails the run), runs ``catch`` with
    ``error`` in scope (``step``, ``type``, ``message``, ``attempts``); runs ``finally`` after
    either, whatever happened (not when the run is cancelled)."""

    type: Literal["try"]
    steps: Annotated[list[Step], FieldKind.STEPS] = Field(min_length=1)
    catch: Annotated[list[Step], FieldKind.STEPS] = Field(default_factory=list)
    finally_: Annotated[list[Step], FieldKind.STEPS] = Field(default_factory=list, alias="finally")


class WaitForStep(StepBase):
    """Suspends until an event named ``event`` arrives for the run (and ``correlate``, which
    reads the event's payload as ``event``, holds), at most ``timeout``; the payload is the
    step's output."""

    type: Literal["wait_for"]
    event: EventName
    correlate: Annotated[ExpressionText | None, FieldKind.EXPRESSION] = None
    message: Annotated[TemplateText | None, FieldKind.TEMPLATE] = None

    def evaluate_correlate(self, context: Mapping[str, Any]) -> bool:
        """Whether an event (``event`` in ``context``) is this step's: its ``correlate``
        (true when there is none).

        Raises:
            engine.expr.ExpressionEvaluationError: It failed or is not a boolean.
        """
        expression: Expression | None = self._compiled.get("correlate")
        return True if expression is None else expression.evaluate_condition(context)


class CallStep(StepBase):
    """Runs another registered definition of the same organization as a child run, and takes
    its result as output.

    Without ``version``, the version is the latest one when the caller is registered (pinned
    then), or when an unregistered caller's run starts. ``inputs`` (templated) are checked
    against the called definition's inputs when the caller is registered or started, and again,
    rendered, when the step runs.
    """

    type: Literal["call"]
    definition: WorkflowName
    version: Annotated[int | None, PlainValidator(_optional_version)] = None
    inputs: Annotated[dict[InputName, Any], FieldKind.VALUE] = Field(default_factory=dict)


class ReturnStep(StepBase):
    """Ends the workflow (inside a foreach: the item) with ``value``."""

    type: Literal["return"]
    value: Annotated[Any, FieldKind.VALUE] = None


class ShellStep(StepBase):
    """A shell command, run by an external executor (one started with the ``runs_on`` label,
    when the step names one)."""

    type: Literal["shell"]
    command: TemplateText
    workdir: Annotated[TemplateText | None, FieldKind.TEMPLATE] = None
    env: Annotated[
        dict[EnvName, Annotated[str, PlainValidator(normalize_env_value)]], FieldKind.VALUE
    ] = Field(default_factory=dict)
    # Left out of the canonical form when unset: the definitions written before it keep their
    # content hash (a registered version never takes other content).
    runs_on: RunnerLabel | None = Field(default=None, exclude_if=lambda label: label is None)


class McpCallStep(StepBase):
    """A call of an MCP tool, run by an external executor."""

    type: Literal["mcp_call"]
    server: Annotated[TemplateText | None, FieldKind.TEMPLATE] = None
    tool: TemplateText
    params: Annotated[dict[str, Any], FieldKind.VALUE] = Field(default_factory=dict)


class Approvers(_Model):
    """Who may answer a prompt: a caller with any of the roles, or any of the subjects.

    Attributes:
        roles: Token roles (``admin``, or an org's own, such as ``release-manager``).
        subjects: Token subjects (the ``sub`` claim).
    """

    roles: tuple[Text, ...] = ()
    subjects: tuple[Text, ...] = ()


def _approvals(value: Any) -> int:
    count = _positive_int(value)
    if count > MAX_APPROVALS:
        raise _error("approvals", f"approvals must be at most {MAX_APPROVALS}, got {show(value)}")
    return count


MAX_APPROVALS: Final = 100


class PromptStep(StepBase):
    """A question to a person.

    Attributes:
        approvers: Who may answer (None: any member of the org).
        approvals: How many distinct people must answer ``true`` (confirm prompts); a ``false``
            from any of them decides at once.
        allow_starter: Whether the person who started the run may answer.
    """

    type: Literal["prompt"]
    prompt_type: Literal["info", "confirm", "text", "choice"]
    message: TemplateText
    options: Annotated[Any, PlainValidator(_options), FieldKind.VALUE] = None
    default: Annotated[Any, FieldKind.VALUE] = None
    approvers: Approvers | None = None
    approvals: Annotated[int, PlainValidator(_approvals)] = 1
    allow_starter: Bool = True

    def answer_rules(self) -> dict[str, Any] | None:
        """The rules on who may answer, as the action carries them (None: anyone)."""
        if self.approvers is None and self.approvals == 1 and self.allow_starter:
            return None
        approvers = self.approvers or Approvers()
        return {
            "roles": list(approvers.roles),
            "subjects": list(approvers.subjects),
            "approvals": self.approvals,
            "allow_starter": self.allow_starter,
        }


class WaitStep(StepBase):
    """A durable timer: for ``duration``, or until the timestamp ``until`` renders to."""

    type: Literal["wait"]
    duration: NonNegativeDuration | None = None
    until: Annotated[TemplateText | None, FieldKind.TEMPLATE] = None
    message: Annotated[TemplateText | None, FieldKind.TEMPLATE] = None


class DelegateStep(StepBase):
    """An instruction to an AI agent (``@task`` or ``@name``)."""

    type: Literal["delegate"]
    agent: TemplateText
    instruction: TemplateText
    context: Annotated[Any, FieldKind.VALUE] = None


Step = Annotated[
    ConditionStep
    | SetStateStep
    | ForeachStep
    | LoopStep
    | BreakStep
    | ParallelStep
    | TryStep
    | WaitForStep
    | CallStep
    | ReturnStep
    | ShellStep
    | McpCallStep
    | PromptStep
    | WaitStep
    | DelegateStep,
    Field(discriminator="type"),
]
"""Any step; pydantic picks the model by ``type``."""

STEP_TYPES: Final[dict[str, type[StepBase]]] = {
    "condition": ConditionStep,
    "set_state": SetStateStep,
    "foreach": ForeachStep,
    "return": ReturnStep,
    "shell": ShellStep,
    "mcp_call": McpCallStep,
    "prompt": PromptStep,
    "wait": WaitStep,
    "delegate": DelegateStep,
    "loop": LoopStep,
    "break": BreakStep,
    "parallel": ParallelStep,
    "try": TryStep,
    "wait_for": WaitForStep,
    "call": CallStep,
}

BLOCK_FIELDS: Final = frozenset({"steps", "then", "else", "catch", "finally", "compensate"})
"""YAML names of the fields that hold blocks of steps (``branches`` holds named blocks)."""


# -- the definition ---------------------------------------------------------------------------


class WorkflowDefinition(_Model):
    """A loaded workflow definition: validated, compiled, and immutable.

    Load one with :func:`engine.definition.load_definition`; building it directly skips the
    checks and compilation the interpreter relies on.

    Attributes:
        name: The workflow's name (``[a-z0-9-]``).
        version: Positive integer; ``name:version`` is the Temporal workflow type.
        description: For people.
        inputs: Schema of each input.
        state: Initial state; its strings are templates that may read ``inputs``,
            ``workflow`` and ``org``.
        defaults: Timeout and retry policy steps inherit.
        steps: The top-level block.
    """

    name: WorkflowName
    version: Annotated[int, PlainValidator(_version)]
    description: Text | None = None
    inputs: dict[InputName, InputSpec] = Field(default_factory=dict)
    state: Annotated[dict[StateKey, Any], FieldKind.VALUE] = Field(default_factory=dict)
    defaults: Defaults = Field(default_factory=Defaults)
    steps: Annotated[list[Step], FieldKind.STEPS] = Field(min_length=1)

    _source: str = PrivateAttr(default="<string>")
    _text: str = PrivateAttr(default="")
    _warnings: tuple[Problem, ...] = PrivateAttr(default=())
    _initial_state: dict[str, Any] = PrivateAttr(default_factory=dict)
    _steps_by_id: dict[str, StepBase] = PrivateAttr(default_factory=dict)
    _canonical: str | None = PrivateAttr(default=None)
    _hash: str | None = PrivateAttr(default=None)

    @property
    def workflow_type(self) -> str:
        """The Temporal workflow type: ``"<name>:<version>"``."""
        return f"{self.name}:{self.version}"

    @property
    def source(self) -> str:
        """Where the definition was loaded from (a path as given, or ``"<string>"``)."""
        return self._source

    @property
    def text(self) -> str:
        """The text it was loaded from (YAML or canonical JSON): where its problems are."""
        return self._text

    def __eq__(self, other: object) -> bool:
        # Equal definitions are equal whatever text they were loaded from (a YAML file and its
        # canonical JSON), and whether their canonical form was computed yet.
        if not isinstance(other, WorkflowDefinition):
            return NotImplemented
        return self.__dict__ == other.__dict__ and _compared(self) == _compared(other)

    __hash__ = _Model.__hash__

    @property
    def warnings(self) -> tuple[Problem, ...]:
        """Problems that did not reject the definition, in source order."""
        return self._warnings

    def canonical_json(self) -> str:
        """The definition as canonical JSON.

        Keys sorted, no whitespace, every default filled in, durations in their canonical
        spelling (``1h30m``); equal for definitions that differ only in key order, layout,
        comments, YAML anchors or duration spelling. :func:`load_definition` accepts it back.
        """
        if self._canonical is None:
            data = self.model_dump(mode="json", by_alias=True)
            self._canonical = json.dumps(
                data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
            )
        return self._canonical

    @property
    def content_hash(self) -> str:
        """``"sha256:<hex>"`` of :meth:`canonical_json`."""
        if self._hash is None:
            digest = hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()
            self._hash = f"sha256:{digest}"
        return self._hash

    def step(self, step_id: str) -> StepBase:
        """The step with this id, wherever it is nested.

        Raises:
            KeyError: No step has this id.
        """
        return self._steps_by_id[step_id]

    def iter_steps(self) -> Iterator[StepBase]:
        """Every step, nested ones included, in document order."""
        return iter(self._steps_by_id.values())

    def render_initial_state(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """The state a run starts with: ``state`` rendered against ``inputs``/``workflow``/``org``.

        Raises:
            engine.expr.ExpressionEvaluationError: An expression failed.
        """
        rendered: dict[str, Any] = render_value(self._initial_state, context)
        return rendered

    def validate_inputs(self, values: Mapping[str, Any] | None) -> dict[str, Any]:
        """Check a run's inputs against ``inputs`` and fill in defaults.

        Args:
            values: The inputs given to the run (JSON values).

        Returns:
            Every declared input: the given value, else a copy of its default (else ``None``).
            A ``null`` value counts as not given.

        Raises:
            InputError: Unknown inputs, missing required ones, wrong types or values outside
                ``enum``; every problem is listed.
        """
        given = dict(values or {})
        messages: list[str] = []
        for name in given:
            if name not in self.inputs:
                messages.append(f"unknown input '{name}'{did_you_mean(name, self.inputs)}")
        result: dict[str, Any] = {}
        for name, spec in self.inputs.items():
            # An explicit null counts as not given: JSON clients often send every field.
            if given.get(name) is None:
                if spec.required:
                    messages.append(f"missing required input '{name}'")
                result[name] = copy.deepcopy(spec.default)
                continue
            value = given[name]
            if not input_type_matches(spec.type, value):
                messages.append(f"input '{name}' must be of type {spec.type}, got {show(value)}")
            elif spec.enum is not None and value not in spec.enum:
                messages.append(
                    f"input '{name}' must be one of {quote_list(spec.enum)}, got {show(value)}"
                )
            result[name] = value
        if messages:
            raise InputError(messages)
        return result


_NOT_COMPARED: Final = frozenset({"_text", "_canonical", "_hash"})


def _compared(definition: WorkflowDefinition) -> dict[str, Any]:
    private = definition.__pydantic_private__ or {}
    return {key: value for key, value in private.items() if key not in _NOT_COMPARED}


def _field_kinds(model: type[BaseModel]) -> dict[str, tuple[str, FieldKind]]:
    kinds: dict[str, tuple[str, FieldKind]] = {}
    for attribute, info in model.model_fields.items():
        for marker in info.metadata:
            if isinstance(marker, FieldKind):
                kinds[info.alias or attribute] = (attribute, marker)
    # A step's compensate block comes after its own nested blocks (then, else, steps), the
    # order in which an author reads and the interpreter runs them.
    if "compensate" in kinds:
        kinds["compensate"] = kinds.pop("compensate")
    return kinds


_MODELS: Final[tuple[type[BaseModel], ...]] = (*STEP_TYPES.values(), WorkflowDefinition)
for _model in _MODELS:
    _model.model_rebuild()

FIELD_KINDS: Final[dict[type[BaseModel], dict[str, tuple[str, FieldKind]]]] = {
    model: _field_kinds(model) for model in _MODELS
}
"""For each step model (and the definition): YAML field name -> (attribute, kind)."""

_RENDERED_FIELDS: Final[dict[type[BaseModel], tuple[str, ...]]] = {
    model: tuple(
        name for name, (_, kind) in kinds.items() if kind in (FieldKind.TEMPLATE, FieldKind.VALUE)
    )
    for model, kinds in FIELD_KINDS.items()
}
