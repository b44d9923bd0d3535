"""What a run answers to, and the typed data it answers with.

A run of the interpreter is driven from outside by name: a query reads it, updates and signals
move it on. Those names are declared here once, and so is the shape of every JSON value that
crosses the workflow boundary (a run's status, its pending actions, its step history), so that
the interpreter that writes them, and the dispatcher and the server that read them, agree on one
declaration that the type checker holds them to.

The data are TypedDicts: plain JSON objects on the wire (Temporal's JSON converter writes them
as it writes any dict), typed in the code. This module imports neither Temporal nor gRPC, so
any layer, the CLI included, may use it.
"""

from __future__ import annotations

import json
from typing import Any, Final, Literal, NotRequired, TypedDict

__all__ = [
    "ACTION_ACTIVITY",
    "ACTION_FAILED",
    "ACTION_RELEASED",
    "AWAIT_SUSPENSION",
    "CANCEL_WORKFLOW",
    "CLAIMED_ACTION_TYPES",
    "DEFAULT_LEASE",
    "ERROR_KEPT",
    "GET_CHANGES",
    "GET_STATUS",
    "INBOX_MEMO",
    "MAX_RESULT_BYTES",
    "MOVE_DEADLINE",
    "REPORT_ACTIONS",
    "ROUTED_ACTION_TYPES",
    "RUN_STATES",
    "SEND_EVENT",
    "SIGNALS",
    "SUBMIT_RESULT",
    "UPDATE_TIMEOUT",
    "Advance",
    "BranchError",
    "Changes",
    "DefinitionInfo",
    "Event",
    "HistoryEntry",
    "ItemError",
    "PendingAction",
    "RunChange",
    "RunState",
    "RunStatus",
    "StepOutcome",
    "StepRecord",
    "Submission",
    "WaitingInfo",
    "action_queue",
    "clipped",
    "submission_problem",
]

# -- the names a run answers to ---------------------------------------------------------------

GET_STATUS: Final = "get_status"
"""Query: the run's :class:`RunStatus`."""
GET_CHANGES: Final = "get_changes"
"""Query (argument: a version): the run's :class:`Changes` since that version."""
SUBMIT_RESULT: Final = "submit_result"
"""Update (answers an :class:`Advance`) and signal (fire-and-forget): a :class:`Submission`."""
AWAIT_SUSPENSION: Final = "await_suspension"
"""Update, sent with the start: answers an :class:`Advance` once the run first waits or ends."""
CANCEL_WORKFLOW: Final = "cancel_workflow"
"""Signal: stop the run at its current step (argument: the reason)."""
UPDATE_TIMEOUT: Final = "update_timeout"
"""Signal: move a waiting step's deadline to now + seconds (arguments: step id, seconds)."""
MOVE_DEADLINE: Final = "move_deadline"
"""Update: :data:`UPDATE_TIMEOUT`, refused when the step is not waiting."""
SEND_EVENT: Final = "send_event"
"""Signal: an :class:`Event` for the run's ``wait_for`` steps."""
REPORT_ACTIONS: Final = "report_actions"
"""Signal from a foreach item's run to its parent (internal: the engine sends it, not callers)."""

SIGNALS: Final = frozenset({SUBMIT_RESULT, CANCEL_WORKFLOW, UPDATE_TIMEOUT, SEND_EVENT})
"""The signals a caller may send to a run."""

# -- executors --------------------------------------------------------------------------------
#
# Each pending action is also a Temporal activity task, on a task queue of the run's namespace
# named after the action's type (and a delegate's agent). Executors claim it through the
# control plane, which polls that queue for them: Temporal's matching service then gives one
# action to one executor at a time, a lease (the activity's heartbeat timeout) and redelivery
# when a lease expires. No worker of the engine executes these activities.

CLAIMED_ACTION_TYPES: Final = frozenset({"shell", "mcp_call", "delegate"})
"""The action types executors claim from task queues. A ``prompt`` is a question for a person:
it waits in the inbox until someone answers it by id (``submit_result``), with no lease."""
ACTION_ACTIVITY: Final = "engine.action"
"""The activity type of every pending action; its input is the :class:`PendingAction`."""
ACTION_FAILED: Final = "ActionFailed"
"""The error type with which an executor reports that it could not perform an action (not
retried by Temporal: the step's ``on_error`` decides)."""
ACTION_RELEASED: Final = "ActionReleased"
"""The error type with which the control plane gives back an action it polled for an executor
that stopped waiting. Temporal offers it again under the retry policy; when that was its last
delivery, the run offers it afresh (a release is no executor's failure)."""
MAX_RESULT_BYTES: Final = 1024 * 1024
"""The largest result an action takes, as compact JSON, and the longest error text: a run
keeps what it is answered in its status, and Temporal refuses any payload over 2 MiB."""
ERROR_KEPT: Final = 4096
"""How many characters of an error text a run keeps (the rest is cut, with a marker)."""


def submission_problem(result: Any, error: str | None) -> str | None:
    """What makes an answer impossible to take whatever it answers (None: nothing): a result
    over :data:`MAX_RESULT_BYTES`, a number that is not finite, an error text over the limit."""
    if error is not None:
        if len(error) > MAX_RESULT_BYTES:
            return f"error: {len(error):,} characters, over the limit of {MAX_RESULT_BYTES:,}"
        return None
    try:
        size = len(json.dumps(result, separators=(",", ":"), allow_nan=False))
    except ValueError:
        return "result: holds a number that is not finite (NaN or Infinity)"
    except (TypeError, RecursionError):
        return "result: is not a JSON value (or nests too deeply)"
    if size > MAX_RESULT_BYTES:
        return f"result: {size:,} bytes as JSON, over the limit of {MAX_RESULT_BYTES:,}"
    return None


def clipped(text: str, limit: int = ERROR_KEPT) -> str:
    """``text``, cut to ``limit`` characters with a marker saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [cut: {len(text):,} characters in all]"


ROUTED_ACTION_TYPES: Final = frozenset({"delegate", "shell"})
"""The action types whose queue may be narrowed: a delegate's by its agent, a shell step's by
the runner label it ``runs_on``."""
DEFAULT_LEASE: Final = 60.0
"""Seconds an executor may go without a heartbeat before its action is given to another."""
INBOX_MEMO: Final = "engine_actions"
"""The memo key under which a waiting run keeps its own pending actions: the inbox lists runs
through visibility and reads their actions from there, without a query per run."""


def action_queue(task_queue: str, action_type: str, route: str | None = None) -> str:
    """The task queue of actions of a type (and of an agent for ``delegate``, of a runner label
    for ``shell``).

    ``engine/shell``, ``engine/shell/gpu``, ``engine/prompt``, ``engine/delegate/@reviewer``:
    the interpreter's own task queue, then the routing.
    """
    if action_type in ROUTED_ACTION_TYPES and route:
        return f"{task_queue}/{action_type}/{route}"
    return f"{task_queue}/{action_type}"


# -- vocabularies -----------------------------------------------------------------------------

RunState = Literal["running", "waiting", "completed", "failed", "cancelled"]
"""Where a run is: ``waiting`` on an external action, ``running`` otherwise (a timer, a
fan-out, or between steps), or ended."""
RUN_STATES: Final[tuple[RunState, ...]] = ("running", "waiting", "completed", "failed", "cancelled")

StepOutcome = Literal["completed", "failed", "skipped", "cancelled"]
"""How a step ended: ``steps.<id>.status`` and a history entry's ``outcome``."""

# -- the data ---------------------------------------------------------------------------------


class PendingAction(TypedDict):
    """An external action a run waits for, as every caller sees it.

    Attributes:
        action_id: Unique id of this attempt of the step (a retry gets a new one).
        type: The step type: shell, mcp_call, prompt or delegate.
        step_id: The step that issued it.
        parameters: The step's fields, rendered against the state it may see (a prompt's
            also carry ``prompt_type``).
        timeout: Seconds left before it times out, or None to wait for ever.
        deadline: When it times out (ISO-8601), or None.
        attempt: 1 for the first issue, +1 for each retry.
        created_at: When it was issued (ISO-8601, workflow time).
        workflow_id: The run that owns it (a foreach item's run for a step inside a foreach).
        run_id: That run's run id.
        state: The state keys named by the step's ``needs_state``, when it names any.
        truncated: In the inbox only: the parameters and state were too large to list and are
            left out (``GetWorkflow`` has them).
        answers: Who answered it so far (a prompt that needs several approvals).
        trace: The W3C trace context to continue when performing it (``traceparent``, and
            ``tracestate`` when there is one): the trace of the call that started the run, or
            of the workflow's span that offered it to executors. Absent when not traced.
    """

    action_id: str
    type: str
    step_id: str
    parameters: dict[str, Any]
    timeout: float | None
    deadline: str | None
    attempt: int
    created_at: str
    workflow_id: str
    run_id: str
    state: NotRequired[dict[str, Any]]
    truncated: NotRequired[bool]
    answers: NotRequired[list[dict[str, Any]]]
    trace: NotRequired[dict[str, str]]


class HistoryEntry(TypedDict):
    """One step of a run's history: a step that started, and how it ended.

    Attributes:
        step_id: The step.
        type: Its type.
        started_at: When it started (ISO-8601).
        finished_at: When it ended, or None while it runs.
        outcome: How it ended, or None while it runs.
        attempts: How many times it ran (retries included).
        error: Why it failed (a failed step).
        errors: Why each earlier attempt failed (a retried step).
        answers: Who answered its actions and when (``subject``, ``at``, and a counted
            approval's ``answer``), every attempt's, in order.
    """

    step_id: str
    type: str
    started_at: str
    finished_at: str | None
    outcome: StepOutcome | None
    attempts: int
    error: NotRequired[str]
    errors: NotRequired[list[str]]
    answers: NotRequired[list[dict[str, Any]]]


class ItemError(TypedDict):
    """A foreach item that failed."""

    index: int
    item: Any
    error: str


class BranchError(TypedDict):
    """A parallel branch that failed (or was stopped when another failed first)."""

    branch: str
    error: str


class Event(TypedDict):
    """What :data:`SEND_EVENT` carries.

    Attributes:
        name: The event's name (what a ``wait_for`` step's ``event`` names).
        payload: Any JSON value (``event`` in the step's ``correlate``; its ``output_to``).
        event_id: Unique per event: a repeat of the same event (a sender's retry) is ignored.
        broadcast: Sent to every run waiting for the name: dropped unless a step of this run
            waits for it now and correlates (an event sent to this run alone waits, kept, for
            a step that takes it).
    """

    name: str
    payload: Any
    event_id: str
    broadcast: bool


class StepRecord(TypedDict):
    """What expressions read as ``steps.<id>``: how a finished step ended and what it produced.

    Attributes:
        status: How it ended.
        output: Its result (None when it produced none).
        error: Why it failed.
        errors: The items of a foreach that failed, in item order; the branches of a
            parallel that failed.
    """

    status: StepOutcome
    output: Any
    error: NotRequired[str]
    errors: NotRequired[list[ItemError] | list[BranchError]]


class WaitingInfo(TypedDict):
    """A ``wait`` or ``wait_for`` step in progress: its message and when it ends (ISO-8601;
    None for a ``wait_for`` without a timeout)."""

    step_id: str
    message: Any
    until: str | None


class DefinitionInfo(TypedDict):
    """The definition a run executes: name, version and content hash."""

    name: str
    version: int
    hash: str


class RunStatus(TypedDict):
    """The answer of :data:`GET_STATUS`: everything a caller may know of a run.

    Attributes:
        workflow_id: The run's workflow id.
        run_id: Its Temporal run id (the current one, after continue-as-new).
        workflow_type: ``"{name}:{version}"``.
        definition: The definition it executes.
        org_id: The organization it serves.
        started_by: Who started it (the token subject of the start; "" for none).
        status: Where it is.
        current_step: The step it is at (None between steps and once it ended).
        pending_actions: The actions it waits for, those of its foreach items included.
        waiting: The ``wait`` step in progress, if any.
        history: Its steps so far (the most recent 500).
        state: Its state.
        steps: ``steps.<id>`` of every finished step.
        result: What it returned, once completed.
        error: Why it failed or was cancelled.
        started_at: When its first run started (ISO-8601).
        finished_at: When it ended (ISO-8601, the run's own clock); absent while it runs.
        continued: How many times it continued as new.
        version: How many times the status changed in this run (see :data:`GET_CHANGES`).
    """

    workflow_id: str
    run_id: str
    workflow_type: str
    definition: DefinitionInfo
    org_id: str
    started_by: NotRequired[str]
    status: RunState
    current_step: str | None
    pending_actions: list[PendingAction]
    waiting: WaitingInfo | None
    history: list[HistoryEntry]
    state: dict[str, Any]
    steps: dict[str, StepRecord]
    result: Any
    error: str | None
    started_at: str
    finished_at: NotRequired[str]
    continued: int
    version: NotRequired[int]


class RunChange(TypedDict):
    """The run as it was right after one change of its status.

    Attributes:
        version: The change's number (the status's ``version`` then).
        status: Where the run was.
        current_step: The step it was at.
        waiting: The ``wait`` step in progress, if any.
        pending_actions: The actions it waited for, those of its foreach items included.
        history_length: How many entries its step history had.
    """

    version: int
    status: RunState
    current_step: str | None
    waiting: WaitingInfo | None
    pending_actions: list[PendingAction]
    history_length: int


class Changes(TypedDict):
    """The answer of :data:`GET_CHANGES`: every change since a version, then the status now.

    Attributes:
        changes: The changes after the version asked for, oldest first (the run keeps its
            recent ones only).
        complete: False when changes after that version were no longer kept.
        status: The run's status now (``version`` is the last change's).
    """

    changes: list[RunChange]
    complete: bool
    status: RunStatus


class Advance(TypedDict):
    """Where a run went next: the answer of :data:`SUBMIT_RESULT` and :data:`AWAIT_SUSPENSION`.

    An executor reads the next actions (or the result) from it, so it advances a run in one
    round trip.
    """

    workflow_id: str
    status: RunState
    current_step: str | None
    pending_actions: list[PendingAction]
    result: Any
    error: str | None


class Submission(TypedDict, total=False):
    """The argument of :data:`SUBMIT_RESULT`: the action (by id, or by its step) and the result,
    or an error saying the action failed."""

    action_id: str
    step_id: str
    result: Any
    error: str | None
    actor: dict[str, Any]
