"""Errors of runs, as the dispatcher reports them (each names the org and the namespace)."""

from __future__ import annotations

from typing import ClassVar

from engine.errors import EngineError

__all__ = [
    "DefinitionNotFoundError",
    "InvalidRequestError",
    "SubmissionRejectedError",
    "WorkflowAlreadyFinishedError",
    "WorkflowAlreadyStartedError",
    "WorkflowNotFoundError",
]


class WorkflowNotFoundError(EngineError):
    """No run with that id in the caller's org (another org's runs are never visible)."""

    code: ClassVar[str] = "NOT_FOUND"
    reason: ClassVar[str] = "WORKFLOW_NOT_FOUND"


class WorkflowAlreadyStartedError(EngineError):
    """A run with that id is already running in the org."""

    code: ClassVar[str] = "ALREADY_EXISTS"
    reason: ClassVar[str] = "WORKFLOW_ALREADY_STARTED"


class WorkflowAlreadyFinishedError(EngineError):
    """The run has ended: it takes no more results, signals or cancellations."""

    code: ClassVar[str] = "FAILED_PRECONDITION"
    reason: ClassVar[str] = "WORKFLOW_ALREADY_FINISHED"


class SubmissionRejectedError(EngineError):
    """A result that names no waiting step, or does not fit its action's shape."""

    code: ClassVar[str] = "INVALID_ARGUMENT"
    reason: ClassVar[str] = "RESULT_REJECTED"


class DefinitionNotFoundError(EngineError):
    """No registered definition with that name (and version) in the org."""

    code: ClassVar[str] = "NOT_FOUND"
    reason: ClassVar[str] = "DEFINITION_NOT_FOUND"


class InvalidRequestError(EngineError):
    """A request the dispatcher refuses before asking Temporal (e.g. an unknown signal)."""

    code: ClassVar[str] = "INVALID_ARGUMENT"
    reason: ClassVar[str] = "INVALID_REQUEST"
