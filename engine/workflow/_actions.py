"""Pending actions: what an external executor sees, and which results a step accepts.

A step of type shell, mcp_call, prompt or delegate suspends its run with a pending action.
The executor performs it and submits a result; :func:`check_result` decides, before anything is
written to history, whether that result fits the action.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.expr import json_equal

__all__ = ["Action", "ResultRejectedError", "check_result"]


class ResultRejectedError(ValueError):
    """A submitted result that does not fit the action it names (rejected without history)."""


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
    deadline_changed: bool = field(default=False, repr=False)

    def to_json(self, now: datetime) -> dict[str, Any]:
        """The action as clients see it (``timeout`` is the seconds left, if any)."""
        remaining = None
        if self.deadline is not None:
            remaining = max((self.deadline - now).total_seconds(), 0.0)
        out: dict[str, Any] = {
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
        return out


_SHELL_FIELDS = {"exit_code", "stdout", "stderr"}


def check_result(action: Action, result: Any) -> Any:
    """Check a submitted result against its action, returning it in canonical form.

    Raises:
        ResultRejectedError: With a message that names what is wrong.
    """
    if action.type == "shell":
        return _shell_result(result)
    if action.type == "prompt":
        return _prompt_result(action.parameters, result)
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
