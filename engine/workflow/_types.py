"""Values that cross the workflow boundary inside the engine: run input, what a run carries to
its next run, what a foreach item and its parent tell each other, and the limits.

Everything here is plain data (a dataclass and TypedDicts of JSON values) so that Temporal's
default JSON payload converter carries it. What callers outside the engine read of a run (its
status, pending actions, history) is declared in :mod:`engine.protocol`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, NotRequired, TypedDict

from engine.protocol import BranchError, HistoryEntry, ItemError, PendingAction, StepRecord

__all__ = [
    "ACTION_STEP_TYPES",
    "LOAD_DEFINITION",
    "PAYLOAD_LIMIT",
    "Called",
    "ChildReport",
    "ChildResult",
    "ChildScope",
    "Compensation",
    "FanoutProgress",
    "ParallelProgress",
    "Progress",
    "ReadContext",
    "RunInput",
    "TryProgress",
]

ACTION_STEP_TYPES: Final = frozenset({"shell", "mcp_call", "prompt", "delegate"})
"""Step types performed by an external executor: the run suspends with a pending action."""

LOAD_DEFINITION: Final = "engine.load_definition"
"""The extern function through which the worker's runner hands a run its (cached) definition."""

PAYLOAD_LIMIT: Final = 2 * 1024 * 1024
"""Temporal rejects a payload over 2 MiB ("Blob data size exceeds limit")."""


class ChildScope(TypedDict):
    """What a foreach item's run gets from its parent.

    Attributes:
        foreach: The foreach step whose ``steps`` the item runs.
        vars: The variables in scope: the ``as`` names and ``index`` of every enclosing foreach.
        state: The parent's state when the item started (only ``needs_state`` keys, if named).
    """

    foreach: str
    vars: dict[str, Any]
    state: dict[str, Any]


class ReadContext(TypedDict):
    """The part of a foreach item's state and step records that a compensate block reads."""

    state: dict[str, Any]
    steps: dict[str, Any]


class Compensation(TypedDict):
    """A completed step whose ``compensate`` block runs if the run later fails.

    Attributes:
        step_id: The step.
        vars: The foreach variables in scope when it completed.
        context: For an entry handed back by a foreach item: what its compensate block reads
            of the item's state and step records (the parent, where it runs, has neither).
    """

    step_id: str
    vars: dict[str, Any]
    context: NotRequired[ReadContext]


class FanoutProgress(TypedDict):
    """The items of a foreach that finished so far: results by index (as a string) and errors."""

    results: dict[str, Any]
    errors: list[ItemError]


class ParallelProgress(TypedDict):
    """The branches of a parallel that finished so far: outputs by name, and failures."""

    outputs: dict[str, Any]
    errors: list[BranchError]


class TryProgress(TypedDict, total=False):
    """Where a ``try`` is: the block it runs (``steps``, ``catch`` or ``finally``), the error
    its ``catch`` sees, the failure it raises once ``finally`` ran, and what it ends with."""

    phase: str
    error: dict[str, Any]
    failure: dict[str, Any]
    output: Any
    ended: dict[str, Any]


class Progress(TypedDict, total=False):
    """What a run carries to its next run when it continues as new: its position and its record.

    The next run walks the definition from the top, skips the finished steps, re-enters the
    conditions and fan-outs in progress, and goes on with the same state. Keys may be missing
    in what runs of older engines carried; each has a default.

    Attributes:
        state: The run's state.
        steps: ``steps.<id>`` of every finished step.
        history: The step history (the most recent entries).
        done: The ids of the finished steps.
        branches: The branch (``then`` or ``else``) each condition in progress took.
        fanouts: The items each foreach in progress finished.
        loops: The iteration each loop in progress is at.
        parallels: The branches each parallel in progress finished.
        tries: Where each try in progress is.
        events: Events received and not taken yet, and the ids of those seen lately.
        compensations: The compensations recorded so far, oldest first.
        answered: Action ids answered lately, to tell a duplicate from an unknown id.
        reports: The number of the last report sent to the parent (foreach items).
        continued: How many times the run continued as new.
        started_at: When the first run started.
    """

    state: dict[str, Any]
    steps: dict[str, StepRecord]
    history: list[HistoryEntry]
    done: list[str]
    branches: dict[str, str]
    fanouts: dict[str, FanoutProgress]
    loops: dict[str, int]
    parallels: dict[str, ParallelProgress]
    tries: dict[str, TryProgress]
    events: dict[str, Any]
    compensations: list[Compensation]
    answered: dict[str, str]
    reports: int
    continued: int
    started_at: str


class ChildReport(TypedDict):
    """A foreach item's run tells its parent which actions wait in its subtree.

    Attributes:
        workflow_id: The item's run.
        actions: Every action pending in it and its own items.
        report: A number that grows with every report: signals from one sender may arrive out
            of order, and the parent keeps only the newest.
    """

    workflow_id: str
    actions: list[PendingAction]
    report: int


class ChildResult(TypedDict):
    """What a foreach item's run returns: its result, and the compensations it hands back."""

    result: Any
    compensations: list[Compensation]


class Called(TypedDict):
    """The definition a ``call`` step runs, as its caller's run carries it.

    Attributes:
        definition: Its canonical JSON.
        hash: Its content hash.
        called: The same for its own ``call`` steps.
    """

    definition: str
    hash: str
    called: dict[str, Called]


@dataclass
class RunInput:
    """The input of every interpreter run.

    Attributes:
        definition: The definition's canonical JSON: a run never changes behaviour when a new
            version is registered, and replay is deterministic.
        definition_hash: ``content_hash`` of the definition (shown in status and listings).
        inputs: The run's inputs, validated against the definition with defaults applied.
        org: The organization context (``OrgContext.to_json()``).
        scope: For a foreach item's run: which steps it runs, with what.
        progress: What a previous run carried over through continue-as-new.
        lease: Seconds an executor may hold one of the run's actions without a heartbeat
            (None: :data:`engine.protocol.DEFAULT_LEASE`). In the input, not in the workflow
            code, so that a deployment can choose it and replay still sees the same value.
        called: For each ``call`` step (by id), the definition it runs, resolved when the run
            started (see :class:`Called`): the run needs no registry.
        notify: The org had a webhook when the run started: each action that starts waiting
            is sent to it (see :mod:`engine.workflow._notify`). Its child runs inherit it.
        trace: The W3C trace context (``traceparent``, ``tracestate``) of the call that
            started the run, when it was traced (see :mod:`engine.telemetry.tracing`): each of
            its pending actions carries it, so an executor continues the trace. Its child runs
            and continued runs inherit it. None for runs a schedule starts.
    """

    definition: str
    definition_hash: str
    inputs: dict[str, Any] = field(default_factory=dict)
    org: dict[str, Any] = field(default_factory=dict)
    scope: ChildScope | None = None
    progress: Progress | None = None
    lease: float | None = None
    called: dict[str, Called] | None = None
    notify: bool = False
    trace: dict[str, str] | None = None
