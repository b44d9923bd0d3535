"""The test file format: loading, checking against its definition, and the typed result.

Everything that can be wrong with a test file is found here, before any server starts: YAML
errors, unknown keys, step ids and event names the definition does not have, results for steps
that take none, results of the wrong shape for their step, inputs the definition refuses. Each
problem is located as ``FILE:LINE:COL: message``.

Why one long module: the format's parts (shared results, per-test results, events, the
expectations) are checked against one definition in one walk, and each check's message names
where the others put things; split, every part would need the walker and the locations.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from engine.cli.workflowtest._yaml import Located, YamlLoadError, load_located
from engine.context import InvalidOrgIdError, validate_org_id
from engine.definition import (
    DefinitionError,
    InputError,
    PromptStep,
    StepBase,
    WaitForStep,
    WorkflowDefinition,
    calls_of,
    load_definition_file,
)
from engine.workflow import ACTION_STEP_TYPES, result_shape_error

__all__ = [
    "MISSING",
    "OUTCOMES",
    "RUN_ENDINGS",
    "Answer",
    "Expectation",
    "PathEntry",
    "Problem",
    "StepExpectation",
    "TestCase",
    "TestFile",
    "TestFileError",
    "default_definition",
    "load_test_file",
]

RUN_ENDINGS: Final = ("completed", "failed", "cancelled")
OUTCOMES: Final = ("completed", "failed", "skipped", "cancelled")
_TOP_KEYS: Final = ("definition", "definitions", "org", "inputs", "results", "events", "tests")
_TEST_KEYS: Final = ("name", "workflow_id", "inputs", "results", "events", "expect")
_EXPECT_KEYS: Final = ("status", "path", "state", "result", "error", "steps", "actions")
_STEP_KEYS: Final = ("status", "output", "error", "attempts")
_ANSWER_KEYS: Final = ("result", "error", "timeout", "cancel")
_ANSWER_OPTIONS: Final = ("match", "times", "by")
_SUFFIX: Final = ".test.yaml"
_INPUT_NAMED: Final = re.compile(r"input '([^']*)'")
_WORKFLOW_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final[Any] = _Missing()
"""An expectation the test does not state (``result: null`` expects null)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a test file (or its definition), located."""

    source: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}: {self.message}"


class TestFileError(Exception):
    """A test file that cannot run: every problem found, in source order."""

    def __init__(self, problems: Iterable[Problem | str]) -> None:
        self.problems = [str(problem) for problem in problems]
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class Answer:
    """What the test answers one action of a step with.

    Attributes:
        kind: ``result`` (submit ``value``), ``error`` (the executor failed: ``value`` is the
            message), ``timeout`` (the action times out) or ``cancel`` (the run is cancelled,
            ``value`` the reason).
        value: The result, the error message or the reason.
        match: Used only for an action whose parameters contain this (a subset), if given.
        actor: Who answers (``subject``, ``roles``), for prompts with answer rules.
        line: Where the answer is written (1-based), for messages.
        column: Likewise.
    """

    kind: Literal["result", "error", "timeout", "cancel"]
    value: Any
    match: Mapping[str, Any] | None
    actor: Mapping[str, Any] | None
    line: int
    column: int


@dataclass(frozen=True)
class PathEntry:
    """An element of an expected path: a step and how it ended (and how many attempts)."""

    step: str
    outcome: str = "completed"
    attempts: int | None = None


@dataclass(frozen=True)
class StepExpectation:
    """What ``expect.steps.<id>`` asks of a step's record (its last run)."""

    status: str | None = None
    output: Any = MISSING
    error: str | None = None
    attempts: int | None = None


@dataclass(frozen=True)
class Expectation:
    """What a test asserts about the run once it ended.

    Attributes:
        status: ``completed``, ``failed`` or ``cancelled``.
        path: The steps in the order they started: ids of the completed ones, or (``detailed``)
            every step with its outcome.
        detailed: Whether ``path`` lists every step with its outcome.
        state: A subset of the final state.
        result: The exact result (:data:`MISSING` when not asserted).
        error: A substring of the run's error.
        steps: Step id -> what its record must show.
        actions: Step id -> a subset of the parameters of each action it issued, in order.
    """

    status: str = "completed"
    path: tuple[PathEntry, ...] | None = None
    detailed: bool = False
    state: Mapping[str, Any] | None = None
    result: Any = MISSING
    error: str | None = None
    steps: Mapping[str, StepExpectation] = field(default_factory=dict)
    actions: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class TestCase:
    """One test of a file.

    Attributes:
        name: Its name (unique in the file).
        line: Where it starts (1-based).
        workflow_id: The run's workflow id.
        inputs: The run's inputs (the file's, overridden key by key by the test's own).
        answers: Step id -> its answers, in the order the step asks.
        own_answers: The step ids whose answers the test itself gives (not the file's
            defaults): answers of these that the run never asks for fail the test.
        events: Event name -> payloads, in the order ``wait_for`` steps take them.
        own_events: Likewise for events.
        expect: What the run must show once it ended.
    """

    name: str
    line: int
    workflow_id: str
    inputs: Mapping[str, Any]
    answers: Mapping[str, tuple[Answer, ...]]
    own_answers: frozenset[str]
    events: Mapping[str, tuple[Any, ...]]
    own_events: frozenset[str]
    expect: Expectation


@dataclass(frozen=True)
class TestFile:
    """A loaded test file: its definition and its tests.

    Attributes:
        callees: The definitions its ``call`` steps run (at any depth), by name.
    """

    path: str
    definition: WorkflowDefinition
    org: str
    tests: tuple[TestCase, ...]
    callees: Mapping[str, WorkflowDefinition] = field(default_factory=dict)


def default_definition(path: str) -> str:
    """The definition a test file tests when it names none: ``x.yaml`` beside ``x.test.yaml``."""
    if path.endswith(_SUFFIX):
        return path[: -len(_SUFFIX)] + ".yaml"
    return ""


def load_test_file(path: str) -> TestFile:
    """Load and check a test file (and the definition it tests).

    Raises:
        TestFileError: Every problem of the file (or of its definition), located.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise TestFileError([f"{path}: cannot read: {error.strerror or error}"]) from None
    except UnicodeDecodeError as error:
        raise TestFileError(
            [f"{path}: cannot read: not UTF-8 text ({error.reason} at byte {error.start})"]
        ) from None
    try:
        located = load_located(text)
    except YamlLoadError as problem:
        raise TestFileError(
            [Problem(path, problem.line, problem.column, problem.message)]
        ) from None
    return _Checker(path, located).check()


# -- checking ---------------------------------------------------------------------------------

Path_ = tuple[str | int, ...]


class _Checker:
    def __init__(self, path: str, located: Located) -> None:
        self.source = path
        self.located = located
        self.problems: list[Problem] = []
        self.definition: WorkflowDefinition | None = None
        self.callees: dict[str, WorkflowDefinition] = {}

    # -- reporting --------------------------------------------------------------------------

    def problem(self, where: Path_, message: str, *, key: bool = False) -> None:
        line, column = self.located.at(where, key=key)
        self.problems.append(Problem(self.source, line, column, message))

    def fail(self) -> TestFileError:
        unique = {(p.line, p.column, p.message): p for p in self.problems}
        ordered = sorted(unique.values(), key=lambda p: (p.line, p.column))
        return TestFileError(ordered)

    def keys(
        self, data: Mapping[str, Any], where: Path_, allowed: Iterable[str], what: str
    ) -> None:
        allowed = tuple(allowed)
        for key in data:
            if key not in allowed:
                self.problem(
                    (*where, key),
                    f"unknown key '{key}' in {what}{_did_you_mean(key, allowed)} "
                    f"(expected {', '.join(allowed)})",
                    key=True,
                )

    def mapping(self, value: Any, where: Path_, what: str) -> dict[str, Any] | None:
        if isinstance(value, dict):
            return value
        self.problem(where, f"{what} must be a mapping, got {_show(value)}")
        return None

    # -- the file ---------------------------------------------------------------------------

    def check(self) -> TestFile:
        data = self.located.data
        if not isinstance(data, dict):
            self.problem((), f"a test file is a mapping with 'tests', got {_show(data)}")
            raise self.fail()
        self.keys(data, (), _TOP_KEYS, "the test file")
        self.definition = self.load_definition(data)
        if self.definition is not None:
            self.load_callees(data.get("definitions", {}))
        org = data.get("org", "default")
        try:
            validate_org_id(org)
        except InvalidOrgIdError as error:
            self.problem(("org",), str(error))
        if self.definition is None:
            raise self.fail()
        shared_inputs = self.mapping(data.get("inputs", {}), ("inputs",), "inputs") or {}
        shared_answers = self.answers(data.get("results", {}), ("results",))
        shared_events = self.events(data.get("events", {}), ("events",))
        tests_data = data.get("tests")
        if not isinstance(tests_data, list) or not tests_data:
            where: Path_ = ("tests",) if "tests" in data else ()
            self.problem(where, "'tests' must be a non-empty list of tests")
            raise self.fail()
        tests: list[TestCase] = []
        names: dict[str, int] = {}
        ids: dict[str, str] = {}
        for index, test_data in enumerate(tests_data):
            test = self.test(
                test_data, ("tests", index), shared_inputs, shared_answers, shared_events
            )
            if test is None:
                continue
            if test.name in names:
                self.problem(
                    ("tests", index, "name"),
                    f"a second test named '{test.name}' (the first is at line {names[test.name]})",
                )
            names.setdefault(test.name, test.line)
            if test.workflow_id in ids and ids[test.workflow_id] != test.name:
                self.problem(
                    ("tests", index, "name"),
                    f"tests '{ids[test.workflow_id]}' and '{test.name}' would both run as "
                    f"workflow id '{test.workflow_id}': give one a workflow_id",
                )
            ids.setdefault(test.workflow_id, test.name)
            tests.append(test)
        if self.problems:
            raise self.fail()
        return TestFile(self.source, self.definition, str(org), tuple(tests), self.callees)

    def steps(self) -> Iterator[StepBase]:
        """Every step of the definition, and of the definitions its call steps run."""
        assert self.definition is not None
        yield from self.definition.iter_steps()
        for callee in self.callees.values():
            yield from callee.iter_steps()

    def load_callees(self, named: Any) -> None:
        """Load the definitions the call steps run, at any depth: those ``definitions`` names
        (name -> file, relative to the test file), else ``<name>.yaml`` beside the tested
        definition."""
        assert self.definition is not None
        files = self.mapping(named, ("definitions",), "definitions") or {}
        for name, file in files.items():
            if not isinstance(file, str) or not file:
                self.problem(("definitions", name), f"expected a file name, got {_show(file)}")
        todo = [self.definition]
        while todo:
            caller = todo.pop()
            for step in calls_of(caller):
                name = step.definition
                if name in self.callees or name == self.definition.name:
                    continue
                given = files.get(name)
                if isinstance(given, str) and given:
                    target = os.path.join(os.path.dirname(self.source), given)
                    where: Path_ = ("definitions", name)
                else:
                    target = os.path.join(os.path.dirname(caller.source), f"{name}.yaml")
                    where = ()
                try:
                    callee = load_definition_file(target)
                except DefinitionError as error:
                    self.problems.extend(
                        Problem(p.source, p.line, p.column, p.message) for p in error.errors
                    )
                    continue
                except (OSError, UnicodeDecodeError) as error:
                    reason = getattr(error, "strerror", None) or error
                    self.problem(
                        where,
                        f"step '{step.id}' calls definition '{name}': cannot read {target}: "
                        f"{reason} (name its file under 'definitions')",
                    )
                    continue
                self.callees[name] = callee
                todo.append(callee)

    def load_definition(self, data: Mapping[str, Any]) -> WorkflowDefinition | None:
        named = data.get("definition")
        if named is None:
            relative = default_definition(self.source)
            if not relative:
                self.problem(
                    (),
                    "no 'definition': name the definition file (relative to this file), or "
                    f"name this file <definition>{_SUFFIX}",
                )
                return None
            target = relative
        elif not isinstance(named, str) or not named:
            self.problem(("definition",), f"definition must be a file name, got {_show(named)}")
            return None
        else:
            target = os.path.join(os.path.dirname(self.source), named)
        try:
            return load_definition_file(target)
        except DefinitionError as error:
            # The definition's own problems, located in its own file.
            self.problems.extend(
                Problem(p.source, p.line, p.column, p.message) for p in error.errors
            )
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or error
            where: Path_ = ("definition",) if named is not None else ()
            self.problem(where, f"cannot read the definition {target}: {reason}")
        return None

    # -- one test ---------------------------------------------------------------------------

    def test(
        self,
        data: Any,
        where: Path_,
        shared_inputs: Mapping[str, Any],
        shared_answers: Mapping[str, tuple[Answer, ...]],
        shared_events: Mapping[str, tuple[Any, ...]],
    ) -> TestCase | None:
        assert self.definition is not None
        test = self.mapping(data, where, "a test")
        if test is None:
            return None
        self.keys(test, where, _TEST_KEYS, "a test")
        name = test.get("name")
        line = self.located.at(where)[0]
        if not isinstance(name, str) or not name.strip():
            self.problem((*where, "name") if "name" in test else where, "a test needs a name")
            name = f"test at line {line}"
        workflow_id = test.get("workflow_id", f"{self.definition.name}-{_slug(name)}")
        if not isinstance(workflow_id, str) or not _WORKFLOW_ID.fullmatch(workflow_id):
            self.problem(
                (*where, "workflow_id"),
                f"invalid workflow_id {_show(workflow_id)}: use letters, digits and . _ : / -",
            )
        own_inputs = self.mapping(test.get("inputs", {}), (*where, "inputs"), "inputs") or {}
        inputs = {**shared_inputs, **own_inputs}
        try:
            self.definition.validate_inputs(inputs)
        except InputError as error:
            place: Path_ = (*where, "inputs") if "inputs" in test else where
            if "inputs" not in test and shared_inputs:
                place = ("inputs",)
            for message in error.messages:
                # At the input the message names, in the test or the file's shared inputs.
                named = _INPUT_NAMED.search(message)
                input_name = named.group(1) if named else ""
                unknown = message.startswith("unknown")
                if input_name in own_inputs:
                    self.problem((*where, "inputs", input_name), message, key=unknown)
                elif input_name in shared_inputs:
                    self.problem(("inputs", input_name), message, key=unknown)
                else:
                    self.problem(place, message)
        own_answers = self.answers(test.get("results", {}), (*where, "results"))
        own_events = self.events(test.get("events", {}), (*where, "events"))
        expect = self.expectation(test.get("expect", {}), (*where, "expect"))
        return TestCase(
            name=name,
            line=line,
            workflow_id=str(workflow_id),
            inputs=inputs,
            answers={**shared_answers, **own_answers},
            own_answers=frozenset(own_answers),
            events={**shared_events, **own_events},
            own_events=frozenset(own_events),
            expect=expect,
        )

    # -- results ----------------------------------------------------------------------------

    def answers(self, data: Any, where: Path_) -> dict[str, tuple[Answer, ...]]:
        assert self.definition is not None
        results = self.mapping(data, where, "results")
        if results is None:
            return {}
        action_steps = {s.id: s for s in self.steps() if s.step_type in ACTION_STEP_TYPES}
        found: dict[str, tuple[Answer, ...]] = {}
        for step_id, entries in results.items():
            place = (*where, step_id)
            if step_id not in action_steps:
                self.unknown_step(place, step_id, action_steps, "takes results")
                continue
            if not isinstance(entries, list):
                self.problem(
                    place,
                    f"the results of step '{step_id}' must be a list, one entry per time the "
                    f"step asks (write [{_show(entries)}] for one)",
                )
                continue
            answers: list[Answer] = []
            for index, entry in enumerate(entries):
                parsed = self.answer(entry, (*place, index), step_id, action_steps[step_id])
                if parsed is not None:
                    answers.extend(parsed)
            found[step_id] = tuple(answers)
        return found

    def answer(self, entry: Any, where: Path_, step_id: str, step: Any) -> list[Answer] | None:
        line, column = self.located.at(where)
        if not _is_directive(entry):
            self.near_directive(entry, where)
            self.shape(entry, where, step_id, step)
            return [Answer("result", entry, None, None, line, column)]
        self.keys(entry, where, (*_ANSWER_KEYS, *_ANSWER_OPTIONS), "a result")
        given = [key for key in _ANSWER_KEYS if key in entry]
        if len(given) != 1:
            self.problem(
                where,
                "a result entry gives exactly one of result, error, timeout, cancel"
                + (f" (this one gives {', '.join(given)})" if given else ""),
            )
            return None
        kind = given[0]
        value = entry[kind]
        if kind == "result":
            self.shape(value, (*where, "result"), step_id, step)
        elif kind == "error" and (not isinstance(value, str) or not value):
            self.problem(
                (*where, "error"),
                f"error: expected the executor's error message, got {_show(value)} (a result "
                "that is a mapping with an 'error' key is written {result: {error: ...}})",
            )
        elif kind == "timeout" and value is not True:
            self.problem((*where, "timeout"), f"timeout: expected true, got {_show(value)}")
        elif kind == "cancel":
            if value is True:
                value = "cancelled by the test"
            elif not isinstance(value, str) or not value:
                self.problem((*where, "cancel"), "cancel: expected true or a reason (text)")
        match = entry.get("match")
        if match is not None and not isinstance(match, dict):
            self.problem((*where, "match"), f"match: expected a mapping, got {_show(match)}")
            match = None
        times = entry.get("times", 1)
        if type(times) is not int or times < 1:
            self.problem(
                (*where, "times"), f"times: expected a positive integer, got {_show(times)}"
            )
            times = 1
        actor = self.actor(entry.get("by"), (*where, "by")) if "by" in entry else None
        answer = Answer(kind, value, match, actor, line, column)  # type: ignore[arg-type]
        return [answer] * times

    def near_directive(self, entry: Any, where: Path_) -> None:
        """A mapping that was meant as an instruction but has a misspelt key is an error, not a
        result: ``{error: boom, mach: {...}}``."""
        if not isinstance(entry, dict) or not any(key in entry for key in _ANSWER_KEYS):
            return
        words = (*_ANSWER_KEYS, *_ANSWER_OPTIONS)
        for key in entry:
            close = _did_you_mean(key, words)
            if key not in words and close:
                self.problem(
                    (*where, key),
                    f"unknown key '{key}' in a result{close} (a result that is a mapping "
                    "with these keys is written {result: {...}})",
                    key=True,
                )

    def actor(self, value: Any, where: Path_) -> dict[str, Any] | None:
        if isinstance(value, str) and value:
            return {"subject": value, "roles": []}
        if isinstance(value, dict):
            self.keys(value, where, ("subject", "roles"), "by")
            subject = value.get("subject", "")
            roles = value.get("roles", [])
            if (
                isinstance(subject, str)
                and isinstance(roles, list)
                and all(isinstance(role, str) for role in roles)
            ):
                return {"subject": subject, "roles": roles}
        self.problem(where, "by: expected a subject, or {subject: ..., roles: [...]}")
        return None

    def shape(self, value: Any, where: Path_, step_id: str, step: Any) -> None:
        """Reject, now, a result its step would refuse whatever the run does."""
        parameters: dict[str, Any] = {}
        if isinstance(step, PromptStep):
            if step.prompt_type == "choice" and not isinstance(step.options, list):
                return  # options computed at run time: the run checks
            parameters = {"prompt_type": step.prompt_type, "options": step.options}
        problem = result_shape_error(step.step_type, parameters, value)
        if problem is not None:
            self.problem(where, f"a result of step '{step_id}' ({_kind(step)}): {problem}")

    # -- events -----------------------------------------------------------------------------

    def events(self, data: Any, where: Path_) -> dict[str, tuple[Any, ...]]:
        assert self.definition is not None
        events = self.mapping(data, where, "events")
        if events is None:
            return {}
        waited = {s.event for s in self.steps() if isinstance(s, WaitForStep)}
        found: dict[str, tuple[Any, ...]] = {}
        for name, payloads in events.items():
            if name not in waited:
                known = ", ".join(sorted(waited)) if waited else "none"
                self.problem(
                    (*where, name),
                    f"no wait_for step waits for an event '{name}'"
                    f"{_did_you_mean(name, waited)} (events waited for: {known})",
                    key=True,
                )
                continue
            if not isinstance(payloads, list):
                self.problem(
                    (*where, name),
                    f"the events '{name}' must be a list of payloads, one per time a step "
                    f"takes one (write [{_show(payloads)}] for one)",
                )
                continue
            found[name] = tuple(payloads)
        return found

    # -- expectations -----------------------------------------------------------------------

    def expectation(self, data: Any, where: Path_) -> Expectation:
        expect = self.mapping(data, where, "expect")
        if expect is None:
            return Expectation()
        self.keys(expect, where, _EXPECT_KEYS, "expect")
        error = expect.get("error")
        if error is not None and not isinstance(error, str):
            self.problem((*where, "error"), f"error: expected text, got {_show(error)}")
            error = None
        status = expect.get("status", "failed" if error is not None else "completed")
        if status not in RUN_ENDINGS:
            self.problem(
                (*where, "status"),
                f"status: expected one of {', '.join(RUN_ENDINGS)}, got {_show(status)}",
            )
        path, detailed = self.path_expectation(expect.get("path"), (*where, "path"))
        state = expect.get("state")
        if state is not None and not isinstance(state, dict):
            self.problem((*where, "state"), f"state: expected a mapping, got {_show(state)}")
            state = None
        return Expectation(
            status=str(status),
            path=path,
            detailed=detailed,
            state=state,
            result=expect.get("result", MISSING),
            error=error,
            steps=self.step_expectations(expect.get("steps", {}), (*where, "steps")),
            actions=self.action_expectations(expect.get("actions", {}), (*where, "actions")),
        )

    def path_expectation(
        self, data: Any, where: Path_
    ) -> tuple[tuple[PathEntry, ...] | None, bool]:
        if data is None:
            return None, False
        if not isinstance(data, list):
            self.problem(where, f"path: expected a list of step ids, got {_show(data)}")
            return None, False
        detailed = any(isinstance(item, dict) for item in data)
        entries: list[PathEntry] = []
        for index, item in enumerate(data):
            place = (*where, index)
            if isinstance(item, str):
                if self.known_step(place, item):
                    entries.append(PathEntry(item))
                continue
            if not isinstance(item, dict):
                self.problem(place, f"expected a step id or {{step, outcome}}, got {_show(item)}")
                continue
            self.keys(item, place, ("step", "outcome", "attempts"), "a path entry")
            step = item.get("step")
            outcome = item.get("outcome", "completed")
            attempts = item.get("attempts")
            if not isinstance(step, str):
                self.problem(place, "a path entry needs 'step' (a step id)")
                continue
            if outcome not in OUTCOMES:
                self.problem(
                    (*place, "outcome"),
                    f"outcome: expected one of {', '.join(OUTCOMES)}, got {_show(outcome)}",
                )
            if attempts is not None and (type(attempts) is not int or attempts < 0):
                self.problem((*place, "attempts"), "attempts: expected a whole number")
                attempts = None
            if self.known_step((*place, "step"), step):
                entries.append(PathEntry(step, str(outcome), attempts))
        return tuple(entries), detailed

    def step_expectations(self, data: Any, where: Path_) -> dict[str, StepExpectation]:
        steps = self.mapping(data, where, "steps")
        found: dict[str, StepExpectation] = {}
        for step_id, wanted in (steps or {}).items():
            place = (*where, step_id)
            if not self.known_step(place, step_id, key=True):
                continue
            wanted_map = self.mapping(wanted, place, f"steps.{step_id}")
            if wanted_map is None:
                continue
            self.keys(wanted_map, place, _STEP_KEYS, f"steps.{step_id}")
            status = wanted_map.get("status")
            if status is not None and status not in OUTCOMES:
                self.problem(
                    (*place, "status"),
                    f"status: expected one of {', '.join(OUTCOMES)}, got {_show(status)}",
                )
            error = wanted_map.get("error")
            if error is not None and not isinstance(error, str):
                self.problem((*place, "error"), f"error: expected text, got {_show(error)}")
            attempts = wanted_map.get("attempts")
            if attempts is not None and (type(attempts) is not int or attempts < 0):
                self.problem((*place, "attempts"), "attempts: expected a whole number")
            found[step_id] = StepExpectation(
                status=status,
                output=wanted_map.get("output", MISSING),
                error=error if isinstance(error, str) else None,
                attempts=attempts if type(attempts) is int else None,
            )
        return found

    def action_expectations(self, data: Any, where: Path_) -> dict[str, tuple[Any, ...]]:
        assert self.definition is not None
        actions = self.mapping(data, where, "actions")
        action_steps = {s.id for s in self.steps() if s.step_type in ACTION_STEP_TYPES}
        found: dict[str, tuple[Any, ...]] = {}
        for step_id, wanted in (actions or {}).items():
            place = (*where, step_id)
            if step_id not in action_steps:
                self.unknown_step(place, step_id, action_steps, "issues actions")
                continue
            if not isinstance(wanted, list):
                self.problem(
                    place,
                    f"the actions of step '{step_id}' must be a list, one mapping of "
                    "parameters per time the step asks",
                )
                continue
            found[step_id] = tuple(wanted)
        return found

    # -- step ids ---------------------------------------------------------------------------

    def known_step(self, where: Path_, step_id: str, *, key: bool = False) -> bool:
        assert self.definition is not None
        ids = [step.id for step in self.steps()]
        if step_id in ids:
            return True
        self.problem(
            where,
            f"the definition has no step '{step_id}'{_did_you_mean(step_id, ids)}",
            key=key,
        )
        return False

    def unknown_step(self, where: Path_, step_id: str, eligible: Iterable[str], what: str) -> None:
        assert self.definition is not None
        ids = {step.id: step for step in self.steps()}
        if step_id in ids:
            kinds = ", ".join(sorted(ACTION_STEP_TYPES))
            self.problem(
                where,
                f"step '{step_id}' is a {ids[step_id].step_type} step: only {kinds} steps "
                f"{'take results' if what == 'takes results' else 'issue actions'}",
                key=True,
            )
            return
        self.problem(
            where,
            f"the definition has no step '{step_id}'{_did_you_mean(step_id, list(eligible))}",
            key=True,
        )


# -- helpers ----------------------------------------------------------------------------------


def _is_directive(entry: Any) -> bool:
    """Whether a result entry is ``{result|error|timeout|cancel: ..., match, times, by}``
    rather than a result that happens to be a mapping."""
    return (
        isinstance(entry, dict)
        and bool(entry)
        and set(entry) <= {*_ANSWER_KEYS, *_ANSWER_OPTIONS}
        and any(key in entry for key in _ANSWER_KEYS)
    )


def _kind(step: Any) -> str:
    if isinstance(step, PromptStep):
        return f"a {step.prompt_type} prompt"
    return f"a {step.step_type} step"


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug[:80].strip("-") or "test"


def _did_you_mean(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    return repr(value)
