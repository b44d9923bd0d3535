"""Pending actions: what an external executor sees, and which results a step accepts.

A step of type shell, mcp_call, prompt or delegate suspends its run with a pending action.
The executor performs it and submits a result; :meth:`OpenActions.find` and :func:`check_result`
decide, before anything is written to history, whether that result fits a waiting action.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from engine.expr import json_equal
from engine.protocol import PendingAction, clipped, submission_problem

__all__ = [
    "Action",
    "AnswerRefusedError",
    "OpenActions",
    "ResultRejectedError",
    "check_result",
    "inbox_entry",
    "result_shape_error",
]

ANSWERED_KEPT: Final = 500
"""Answered action ids remembered, to tell a duplicate from an unknown id."""
INBOX_DETAIL_KEPT: Final = 4096
"""Most bytes of an action's parameters and state (as JSON) that its inbox entry carries."""


class ResultRejectedError(ValueError):
    """A submitted result that does not fit the action it names (rejected without history)."""


class AnswerRefusedError(ResultRejectedError):
    """A caller whom the prompt's rules do not let answer it (rejected without history)."""


@dataclass
class Action:
    """A pending external action of one run.

    Attributes:
        action_id: Unique id of this attempt of the step.
        type: The step type: shell, mcp_call, prompt or delegate.
        step_id: The step that issued it.
        parameters: The step's fields, rendered against the state it may see.
        attempt: 1 for the first issue, +1 for each retry.
        created_at: When it was issued (workflow time).
        deadline: When it times out, or None to wait for ever.
        state: The state keys named by ``needs_state``, when the step names any.
        workflow_id: The run it belongs to.
        run_id: That run's run id.
        resolved: Whether a result (or an error) was accepted.
        result: The accepted result, in canonical form.
        error: The error the executor reported instead of a result.
        retries_left: False once its deliveries used up the step's retries (every lease
            expired): the step then fails without another retry of its own.
        answers: Who answered it and when (``subject``, ``at``; a counted approval also its
            ``answer``), in order.
        deadline_changed: Set by ``update_timeout``, so the waiting step looks again.
        trace: The run's trace context (``RunInput.trace``), shown with the action so that
            its executor continues the run's trace; None when the run has none.
    """

    action_id: str
    type: str
    step_id: str
    parameters: dict[str, Any]
    attempt: int
    created_at: datetime
    deadline: datetime | None
    state: dict[str, Any] | None = None
    workflow_id: str = ""
    run_id: str = ""
    resolved: bool = False
    result: Any = None
    error: str | None = None
    retries_left: bool = True
    answers: list[dict[str, Any]] = field(default_factory=list)
    deadline_changed: bool = field(default=False, repr=False)
    trace: dict[str, str] | None = None

    def to_json(self, now: datetime) -> PendingAction:
        """The action as clients see it (``timeout`` is the seconds left, if any)."""
        remaining = None
        if self.deadline is not None:
            remaining = max((self.deadline - now).total_seconds(), 0.0)
        out: PendingAction = {
            "action_id": self.action_id,
            "type": self.type,
            "step_id": self.step_id,
            "parameters": self.parameters,
            "timeout": remaining,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "attempt": self.attempt,
            "created_at": self.created_at.isoformat(),
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
        }
        if self.state is not None:
            out["state"] = self.state
        if self.answers:
            out["answers"] = self.answers
        if self.trace:  # only then: the actions of untraced runs look as they always did
            out["trace"] = self.trace
        return out

    def check_answerer(self, actor: Any, starter: str) -> None:
        """Refuse a caller whom the action's answer rules do not allow (a prompt's
        ``approvers``, ``approvals`` and ``allow_starter``).

        Raises:
            AnswerRefusedError: Naming the rule.
        """
        rules = self.parameters.get("answer_rules")
        if not rules:
            return
        actor = actor if isinstance(actor, dict) else {}
        subject = str(actor.get("subject") or "")
        roles = [str(role) for role in actor.get("roles") or []]
        named = f"'{subject}'" if subject else "a caller without a subject ('sub')"
        allowed_roles, allowed_subjects = rules["roles"], rules["subjects"]
        if (allowed_roles or allowed_subjects) and not (
            set(roles) & set(allowed_roles) or (subject and subject in allowed_subjects)
        ):
            who = " or ".join(
                part
                for part in (
                    f"roles {allowed_roles}" if allowed_roles else "",
                    f"subjects {allowed_subjects}" if allowed_subjects else "",
                )
                if part
            )
            raise AnswerRefusedError(
                f"step '{self.step_id}' may be answered by {who}; {named} has roles {roles}"
            )
        if not rules["allow_starter"] and (not subject or subject == starter):
            reason = (
                f"{named} started the run"
                if subject
                else "a caller without a subject could be the one who started it"
            )
            raise AnswerRefusedError(
                f"step '{self.step_id}' may not be answered by the run's starter "
                f"(allow_starter: false): {reason}"
            )
        if rules["approvals"] > 1:
            if not subject:
                raise AnswerRefusedError(
                    f"step '{self.step_id}' needs {rules['approvals']} distinct approvers: "
                    "answer with a token that has a subject ('sub')"
                )
            if any(answer["subject"] == subject for answer in self.answers):
                raise AnswerRefusedError(
                    f"'{subject}' has already answered step '{self.step_id}', which needs "
                    f"{rules['approvals']} distinct approvers"
                )


class OpenActions:
    """The actions a run waits for, and the ids of those it answered lately.

    Args:
        answered: Answered action id -> its step id (carried over by continue-as-new).
    """

    def __init__(self, answered: dict[str, str]) -> None:
        self.answered = answered
        self._open: dict[str, Action] = {}

    def __bool__(self) -> bool:
        return bool(self._open)

    def __iter__(self) -> Iterator[Action]:
        return iter(self._open.values())

    def add(self, action: Action) -> None:
        """An action the run now waits for."""
        self._open[action.action_id] = action

    def remove(self, action: Action) -> None:
        """The run no longer waits for it (answered, timed out or cancelled)."""
        del self._open[action.action_id]

    def views(self, now: datetime) -> list[PendingAction]:
        """The unanswered actions, as clients see them."""
        return [action.to_json(now) for action in self._open.values() if not action.resolved]

    def find(self, submission: Any, reported: Iterable[PendingAction]) -> Action:
        """The waiting action a submission names (by ``action_id``, else by ``step_id``).

        Args:
            submission: What the caller sent (anything: it is checked here).
            reported: The actions of the run's foreach items, to say where those are owned.

        Raises:
            ResultRejectedError: Naming why no waiting action takes it.
        """
        if not isinstance(submission, dict):
            raise ResultRejectedError("a submission is a map with action_id or step_id and result")
        action_id = submission.get("action_id")
        step_id = submission.get("step_id")
        if not action_id and not step_id:
            raise ResultRejectedError("name the action: give action_id or step_id")
        for action in self._open.values():
            if (action_id and action.action_id == action_id) or (
                not action_id and action.step_id == step_id
            ):
                if action.resolved:
                    raise ResultRejectedError(
                        f"a result for step '{action.step_id}' was already submitted"
                    )
                return action
        if isinstance(action_id, str) and action_id in self.answered:
            raise ResultRejectedError(
                f"a result for step '{self.answered[action_id]}' was already submitted"
            )
        for pending in reported:
            if (action_id and pending.get("action_id") == action_id) or (
                not action_id and pending.get("step_id") == step_id
            ):
                # Shown in this run's status, but a foreach item's run owns it.
                raise ResultRejectedError(
                    f"step '{pending.get('step_id')}' waits in the foreach item "
                    f"'{pending.get('workflow_id')}': submit its result there"
                )
        if step_id and not action_id:
            raise ResultRejectedError(f"step '{step_id}' is not waiting for a result")
        raise ResultRejectedError(f"no pending action '{action_id}' in this run")

    def accept(self, action: Action, submission: dict[str, Any], now: datetime) -> None:
        """Take the submission's result (checked) or error, recording who answered and when.

        A confirm prompt that needs several approvals resolves once enough distinct people
        answered ``true``, or the first ``false``; until then the answer is only counted.

        Raises:
            ResultRejectedError: The result does not fit the action (or its answerer is not
                allowed: :class:`AnswerRefusedError`).
        """
        given = submission.get("actor")
        actor: dict[str, Any] = given if isinstance(given, dict) else {}
        answer: dict[str, Any] = {"subject": str(actor.get("subject") or ""), "at": now.isoformat()}
        error = submission.get("error")
        if error is not None:
            action.answers.append(answer)
            action.error = clipped(str(error))
        else:
            result = check_result(action, submission.get("result"))
            rules = action.parameters.get("answer_rules") or {}
            needed = int(rules.get("approvals", 1))
            if needed > 1:
                action.answers.append({**answer, "answer": result})
                approvals = sum(1 for given in action.answers if given.get("answer") is True)
                if result is True and approvals < needed:
                    return  # counted; the prompt waits for the others
            else:
                action.answers.append(answer)
            action.result = result
        action.resolved = True
        self.note_answered(action)

    def note_answered(self, action: Action) -> None:
        """Remember that ``action`` was answered (a later submission is a duplicate)."""
        self.answered[action.action_id] = action.step_id
        if len(self.answered) > ANSWERED_KEPT:
            del self.answered[next(iter(self.answered))]


_SHELL_FIELDS = {"exit_code", "stdout", "stderr"}


def check_result(action: Action, result: Any) -> Any:
    """Check a submitted result against its action, returning it in canonical form.

    Raises:
        ResultRejectedError: With a message that names what is wrong.
    """
    problem = submission_problem(result, None)
    if problem is not None:
        raise ResultRejectedError(problem)
    return _checked(action.type, action.parameters, result)


def result_shape_error(action_type: str, parameters: dict[str, Any], result: Any) -> str | None:
    """What is wrong with ``result`` for an action of this type and parameters (None: nothing).

    The control plane checks an executor's result with this before anything is written; a
    prompt's check reads ``prompt_type`` and ``options`` of its parameters.
    """
    try:
        _checked(action_type, parameters, result)
    except ResultRejectedError as rejected:
        return str(rejected)
    return None


def _checked(action_type: str, parameters: dict[str, Any], result: Any) -> Any:
    if action_type == "shell":
        return _shell_result(result)
    if action_type == "prompt":
        return _prompt_result(parameters, result)
    return result


def _shell_result(result: Any) -> dict[str, Any]:
    if not isinstance(result, dict):
        raise ResultRejectedError(
            "a shell result must be a map {exit_code, stdout, stderr}, got "
            f"{type(result).__name__}"
        )
    unknown = sorted(set(result) - _SHELL_FIELDS)
    if unknown:
        raise ResultRejectedError(
            f"unknown field(s) {', '.join(unknown)} in shell result: "
            "expected exit_code, stdout, stderr"
        )
    exit_code = result.get("exit_code")
    if type(exit_code) is not int:
        raise ResultRejectedError("a shell result needs an integer exit_code")
    for name in ("stdout", "stderr"):
        if not isinstance(result.get(name, ""), str):
            raise ResultRejectedError(f"shell result field {name} must be a string")
    return {
        "exit_code": exit_code,
        "stdout": result.get("stdout", ""),
        "stderr": result.get("stderr", ""),
    }


def _prompt_result(parameters: dict[str, Any], result: Any) -> Any:
    prompt_type = parameters.get("prompt_type")
    if prompt_type == "confirm":
        if type(result) is not bool:
            raise ResultRejectedError(f"a confirm prompt takes true or false, got {_show(result)}")
        return result
    if prompt_type == "text":
        if not isinstance(result, str):
            raise ResultRejectedError(f"a text prompt takes a string, got {_show(result)}")
        return result
    if prompt_type == "choice":
        options = parameters.get("options") or []
        if not any(json_equal(result, option) for option in options):
            shown = ", ".join(_show(o) for o in options)
            raise ResultRejectedError(f"{_show(result)} is not one of the options: {shown}")
        return result
    return result  # info: an acknowledgement, any value


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    return type(value).__name__ if isinstance(value, dict | list) else str(value)


def inbox_entry(action: PendingAction) -> PendingAction:
    """The action as the inbox carries it: whole, unless its parameters and state are large.

    The inbox reads actions from the runs' memos (one visibility call per page); a memo is
    copied into visibility at every change, so it stays small. A large action's entry leaves
    out its parameters and state and says so (``truncated``): ``GetWorkflow`` has them.
    """
    detail = {"parameters": action["parameters"], "state": action.get("state")}
    if len(json.dumps(detail, separators=(",", ":"))) <= INBOX_DETAIL_KEPT:
        return action
    entry: PendingAction = {**action, "parameters": {}, "truncated": True}
    entry.pop("state", None)
    return entry
