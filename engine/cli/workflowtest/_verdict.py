"""What a test's run showed against what the test expects: one message per failed assertion.

Each message names what it is about (the step, or the state key and the step that wrote it,
or the part of the result and the step that returned it) and shows expected and actual; its
first line is a headline, the lines after it details.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from engine.cli.workflowtest._spec import MISSING, Expectation, PathEntry, StepExpectation
from engine.cli.workflowtest._values import differences, show
from engine.definition import ReturnStep, SetStateStep, WorkflowDefinition
from engine.protocol import HistoryEntry, RunStatus

__all__ = ["judge", "path_of"]


def judge(
    expect: Expectation,
    status: RunStatus,
    asked: Mapping[str, Sequence[Any]],
    definition: WorkflowDefinition,
) -> list[str]:
    """Every assertion of ``expect`` that the run's final ``status`` fails."""
    failures: list[str] = []
    history = status["history"]
    if status["status"] != expect.status:
        failures.append(_status(expect.status, status))
    if expect.error is not None:
        error = status.get("error") or ""
        if expect.error not in error:
            failures.append(
                f"error: expected a message containing {show(expect.error)}, got {show(error)}"
            )
    if expect.path is not None:
        failure = _path(expect.path, expect.detailed, history)
        if failure is not None:
            failures.append(failure)
    if expect.state is not None:
        for where, what in differences(status["state"], expect.state, subset=True):
            key = where.lstrip(".").split(".")[0].split("[")[0]
            failures.append(f"state{where}: {what}{_writer(key, history, definition)}")
    if expect.result is not MISSING:
        for where, what in differences(status.get("result"), expect.result, subset=False):
            failures.append(f"result{where}: {what}{_returner(history, definition)}")
    for step_id, wanted in expect.steps.items():
        failures.extend(_step(step_id, wanted, status))
    for step_id, wanted_actions in expect.actions.items():
        failures.extend(_actions(step_id, wanted_actions, asked.get(step_id, [])))
    return failures


def path_of(history: Sequence[HistoryEntry], *, detailed: bool = False) -> list[str]:
    """The path as a test writes it: completed step ids, or (detailed) every step with its
    outcome (``step:outcome``)."""
    if detailed:
        return [f"{e['step_id']}:{e['outcome'] or 'running'}" for e in history]
    return [e["step_id"] for e in history if e["outcome"] == "completed"]


def _status(expected: str, status: RunStatus) -> str:
    why = f" ({status['error']})" if status.get("error") else ""
    line = f"status: expected {expected}, got {status['status']}{why}"
    if status["status"] == "completed" and expected != "completed":
        line += f"; it returned {show(status.get('result'))}"
    return line


def _path(
    expected: Sequence[PathEntry], detailed: bool, history: Sequence[HistoryEntry]
) -> str | None:
    if detailed:
        actual = [(e["step_id"], e["outcome"] or "running", e["attempts"]) for e in history]
        wanted = [(p.step, p.outcome, p.attempts) for p in expected]

        def same(got: tuple[str, str, int], want: tuple[str, str, int | None]) -> bool:
            return got[:2] == want[:2] and (want[2] is None or got[2] == want[2])

        def name(item: tuple[str, str, Any]) -> str:
            return f"'{item[0]}' ({item[1]}" + (f", {item[2]} attempts)" if item[2] else ")")
    else:
        actual = [(e["step_id"], "completed", e["attempts"]) for e in history]
        actual = [a for a, e in zip(actual, history, strict=True) if e["outcome"] == "completed"]
        wanted = [(p.step, "completed", None) for p in expected]

        def same(got: tuple[str, str, int], want: tuple[str, str, int | None]) -> bool:
            return got[0] == want[0]

        def name(item: tuple[str, str, Any]) -> str:
            return f"'{item[0]}'"

    for index, (got, want) in enumerate(zip(actual, wanted, strict=False)):
        if not same(got, want):
            headline = f"path: step #{index + 1}: expected {name(want)}, got {name(got)}"
            if not detailed and all(item[0] != want[0] for item in actual):
                headline += _fate(want[0], history)
            break
    else:
        if len(actual) == len(wanted):
            return None
        if len(actual) < len(wanted):
            after = f" after '{actual[-1][0]}'" if actual else ""
            headline = (
                f"path: expected step {name(wanted[len(actual)])}{after}, but the path "
                f"ends there" + ("" if detailed else _fate(wanted[len(actual)][0], history))
            )
        else:
            after = f" after '{wanted[-1][0]}'" if wanted else ""
            headline = f"path: unexpected step {name(actual[len(wanted)])}{after}"
    shown_actual = path_of(history, detailed=detailed)
    shown_wanted = [(f"{p.step}:{p.outcome}" if detailed else p.step) for p in expected]
    return (
        f"{headline}\n  expected: {', '.join(shown_wanted) or '(none)'}"
        f"\n  actual:   {', '.join(shown_actual) or '(none)'}"
    )


def _fate(step_id: str, history: Sequence[HistoryEntry]) -> str:
    """Why an expected step is not on the (completed) path: it was skipped, failed, ..."""
    entries = [e for e in history if e["step_id"] == step_id]
    if not entries:
        return f" (step '{step_id}' never ran)"
    last = entries[-1]
    outcome = last["outcome"] or "still running"
    error = f": {last['error']}" if last.get("error") else ""
    return f" (step '{step_id}' {outcome}{error})"


def _writer(key: str, history: Sequence[HistoryEntry], definition: WorkflowDefinition) -> str:
    """`` (written by step 'x')``: the last completed step that writes state key ``key``."""
    writers = {
        step.id
        for step in definition.iter_steps()
        if step.output_to == key or (isinstance(step, SetStateStep) and key in step.set_)
    }
    for entry in reversed(history):
        if entry["step_id"] in writers and entry["outcome"] == "completed":
            return f" (written by step '{entry['step_id']}')"
    if writers:
        listed = ", ".join(f"'{w}'" for w in sorted(writers))
        return f" (none of the steps that write it ran to completion: {listed})"
    return " (no step writes it: the initial state)"


def _returner(history: Sequence[HistoryEntry], definition: WorkflowDefinition) -> str:
    returns = {step.id for step in definition.iter_steps() if isinstance(step, ReturnStep)}
    for entry in reversed(history):
        if entry["step_id"] in returns and entry["outcome"] == "completed":
            return f" (returned by step '{entry['step_id']}')"
    return " (no return step ran: the output of the last step)"


def _step(step_id: str, wanted: StepExpectation, status: RunStatus) -> list[str]:
    record = status["steps"].get(step_id)
    entries = [e for e in status["history"] if e["step_id"] == step_id]
    if record is None:
        ran = "it is still running" if entries else "it never ran"
        return [f"step '{step_id}': expected a record, but {ran}"]
    failures: list[str] = []
    if wanted.status is not None and record["status"] != wanted.status:
        error = f" ({record['error']})" if record.get("error") else ""
        failures.append(
            f"step '{step_id}': status expected {wanted.status}, got {record['status']}{error}"
        )
    if wanted.error is not None and wanted.error not in (record.get("error") or ""):
        failures.append(
            f"step '{step_id}': error expected to contain {show(wanted.error)}, got "
            f"{show(record.get('error'))}"
        )
    if wanted.attempts is not None and entries and entries[-1]["attempts"] != wanted.attempts:
        failures.append(
            f"step '{step_id}': attempts expected {wanted.attempts}, got {entries[-1]['attempts']}"
        )
    if wanted.output is not MISSING:
        for where, what in differences(record.get("output"), wanted.output, subset=True):
            failures.append(f"step '{step_id}': output{where}: {what}")
    return failures


def _actions(step_id: str, wanted: Sequence[Any], asked: Sequence[Any]) -> list[str]:
    if len(asked) != len(wanted):
        return [
            f"step '{step_id}': expected {len(wanted)} action(s), it issued {len(asked)}"
            + (f"; the parameters of the last: {show(asked[-1])}" if asked else "")
        ]
    failures: list[str] = []
    for index, (got, want) in enumerate(zip(asked, wanted, strict=True)):
        for where, what in differences(got, want, subset=True):
            failures.append(f"step '{step_id}': action #{index + 1}: parameters{where}: {what}")
    return failures
