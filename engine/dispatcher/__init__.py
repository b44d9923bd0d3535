"""The dispatcher: the control plane's one door to Temporal, scoped by organization.

:class:`TemporalDispatcher` resolves the caller's :class:`~engine.context.OrgContext` to its
namespace and client and starts, reads, lists and drives runs there; signals and updates
(the signal router) reach a run only through the caller's namespace, so another org's run ids
are simply not found.
"""

from __future__ import annotations

from engine.dispatcher._claims import ActionBroker, Claim
from engine.dispatcher._dispatcher import (
    ActionPage,
    DefinitionRef,
    RunPage,
    RunSummary,
    StartedRun,
    TemporalDispatcher,
)
from engine.dispatcher._errors import (
    ActionClosedError,
    AnswerRefusedError,
    ClaimNotFoundError,
    DefinitionNotFoundError,
    InvalidRequestError,
    LeaseExpiredError,
    RunUnavailableError,
    StepNotWaitingError,
    SubmissionRejectedError,
    WorkflowAlreadyFinishedError,
    WorkflowAlreadyStartedError,
    WorkflowNotFoundError,
)
from engine.dispatcher._parsing import (
    CheckedDefinition,
    check_off_loop,
    load_off_loop,
    stop_checking,
)
from engine.dispatcher._registry import (
    DefinitionRegistry,
    DefinitionVersionConflictError,
    RegisteredDefinition,
)

__all__ = [
    "ActionBroker",
    "ActionClosedError",
    "ActionPage",
    "AnswerRefusedError",
    "CheckedDefinition",
    "Claim",
    "ClaimNotFoundError",
    "DefinitionNotFoundError",
    "DefinitionRef",
    "DefinitionRegistry",
    "DefinitionVersionConflictError",
    "InvalidRequestError",
    "LeaseExpiredError",
    "RegisteredDefinition",
    "RunPage",
    "RunSummary",
    "RunUnavailableError",
    "StartedRun",
    "StepNotWaitingError",
    "SubmissionRejectedError",
    "TemporalDispatcher",
    "WorkflowAlreadyFinishedError",
    "WorkflowAlreadyStartedError",
    "WorkflowNotFoundError",
    "check_off_loop",
    "load_off_loop",
    "stop_checking",
]
