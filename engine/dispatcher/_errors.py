"""Errors of runs, as the dispatcher reports them (each names the org and the namespace), and
the translation of Temporal's errors into them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

from temporalio.client import (
    RPCTimeoutOrCancelledError,
    WithStartWorkflowOperation,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import WorkflowAlreadyStartedError as TemporalAlreadyStarted
from temporalio.service import RPCError, RPCStatusCode

from engine.errors import EngineError
from engine.tenancy import (
    OrgNotFoundError,
    TemporalTimeoutError,
    temporal_error,
    temporal_refusal,
)

__all__ = [
    "ActionClosedError",
    "AnswerRefusedError",
    "ClaimNotFoundError",
    "DefinitionNotFoundError",
    "InvalidRequestError",
    "LeaseExpiredError",
    "RunUnavailableError",
    "StepNotWaitingError",
    "SubmissionRejectedError",
    "WorkflowAlreadyFinishedError",
    "WorkflowAlreadyStartedError",
    "WorkflowNotFoundError",
    "translate",
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


class ClaimNotFoundError(EngineError):
    """A claim token that is malformed, or not a claim of the caller's organization."""

    code: ClassVar[str] = "NOT_FOUND"
    reason: ClassVar[str] = "CLAIM_NOT_FOUND"


class LeaseExpiredError(EngineError):
    """A claim whose lease ran out: the action may have been given to another executor."""

    code: ClassVar[str] = "FAILED_PRECONDITION"
    reason: ClassVar[str] = "LEASE_EXPIRED"


class ActionClosedError(EngineError):
    """A claimed action that takes no result any more: answered elsewhere, timed out, or its
    run cancelled or ended."""

    code: ClassVar[str] = "FAILED_PRECONDITION"
    reason: ClassVar[str] = "ACTION_CLOSED"


class AnswerRefusedError(EngineError):
    """The caller may not answer this prompt (its ``approvers``, ``approvals`` or
    ``allow_starter``); nothing was written."""

    code: ClassVar[str] = "PERMISSION_DENIED"
    reason: ClassVar[str] = "ANSWER_REFUSED"


class StepNotWaitingError(EngineError):
    """The step named is not waiting (for a result, or the end of a ``wait``)."""

    code: ClassVar[str] = "FAILED_PRECONDITION"
    reason: ClassVar[str] = "STEP_NOT_WAITING"


class RunUnavailableError(EngineError):
    """The run cannot take a call now (no worker polls it, or its workflow task is failing);
    nothing was done."""

    code: ClassVar[str] = "UNAVAILABLE"
    reason: ClassVar[str] = "RUN_UNAVAILABLE"


class NoWorkerYetError(RunUnavailableError):
    """No worker has polled the org's queue lately (its worker may be starting): the engine
    retries the call for a while before it says so."""


class InvalidRequestError(EngineError):
    """A request the dispatcher refuses before asking Temporal (e.g. an unknown signal)."""

    code: ClassVar[str] = "INVALID_ARGUMENT"
    reason: ClassVar[str] = "INVALID_REQUEST"


@contextlib.contextmanager
def translate(where: str, workflow_id: str | None) -> Iterator[None]:
    """Turn Temporal's errors inside the block into the engine's.

    Args:
        where: The org and its namespace (``OrgRouter.where``).
        workflow_id: The run the block is about (None: runs in general).
    """
    run = f"run '{workflow_id}'" if workflow_id else "runs"
    try:
        yield
    except TemporalAlreadyStarted:
        raise WorkflowAlreadyStartedError(f"{run} is already running in {where}") from None
    except WorkflowUpdateFailedError as error:
        raise SubmissionRejectedError(_message(error.cause) or str(error)) from None
    except WorkflowQueryFailedError as error:
        raise InvalidRequestError(f"{run} in {where}: {error}") from None
    except RPCTimeoutOrCancelledError:
        # An update that no worker took in time (a worker down, or all of them busy): it may
        # still be taken later. The caller retries with the same request id, which Temporal
        # answers with the first call's outcome.
        raise TemporalTimeoutError(
            f"{run} in {where} did not answer in time (is a worker of the org running?); the "
            "call may still take effect: retry it with the same request id"
        ) from None
    except RPCError as error:
        raise _from_rpc(error, run, where) from None


def _from_rpc(error: RPCError, run: str, where: str) -> Exception:
    message = error.message or ""
    lowered = message.lower()
    if error.status == RPCStatusCode.NOT_FOUND:
        if "namespace" in lowered:
            return OrgNotFoundError(f"{where} is not provisioned: {message}")
        if "already completed" in lowered or "already finished" in lowered:
            return WorkflowAlreadyFinishedError(f"{run} in {where} has already ended")
        return WorkflowNotFoundError(f"{run} not found in {where}")
    refusal = temporal_refusal(error, where)
    if refusal is not None:
        return refusal
    if error.status == RPCStatusCode.INVALID_ARGUMENT:
        return InvalidRequestError(f"{where}: {message}")
    if error.status == RPCStatusCode.ALREADY_EXISTS:
        return WorkflowAlreadyStartedError(f"{run} is already running in {where}")
    if error.status == RPCStatusCode.FAILED_PRECONDITION:
        if "completed" in lowered or "finished" in lowered:
            return WorkflowAlreadyFinishedError(f"{run} in {where} has already ended")
        # "Workflow Task in failed state", "No poller seen for task queue": the run has no
        # working worker now; nothing was done, and the same call may succeed later (soon,
        # when no worker has polled yet: the org's worker is starting).
        kind = NoWorkerYetError if "poller" in lowered else RunUnavailableError
        return kind(
            f"{run} in {where} cannot take calls now (is a worker of the org running?): {message}"
        )
    return temporal_error(error, where)


def _message(cause: BaseException | None) -> str:
    if cause is None:
        return ""
    message = getattr(cause, "message", None)
    return str(message) if message else str(cause)


def retrieve_start_error(operation: WithStartWorkflowOperation[Any, Any]) -> None:
    """Mark the start's error as seen: when an update-with-start fails, the operation's handle
    future holds the start's error too, and asyncio would report it as never retrieved."""
    future = operation._workflow_handle
    if future.done() and not future.cancelled():
        future.exception()
