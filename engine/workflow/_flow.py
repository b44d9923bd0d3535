"""The control flow between the interpreter's sequencer and its step units.

A step unit returns its output, or a :class:`Returned` to end the enclosing run, or raises one of
the errors here; the sequencer (``EngineWorkflow.run_step``) decides what follows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from temporalio import workflow

__all__ = [
    "Broken",
    "Frame",
    "Returned",
    "RunCancelledError",
    "RunFailedError",
    "Scope",
    "StepFailedError",
    "seconds_until",
]


class StepFailedError(Exception):
    """A step failed; its ``on_error`` decides what happens next.

    Attributes:
        message: Why, as the history and the run's error show it.
        retryable: Whether ``on_error: retry`` may run the step again (a timed-out or failed
            action, a failed fan-out); a step that cannot succeed again (a bad expression, a
            payload over the limit) is not.
        output: What the failed step produced (a shell result), kept by ``on_error: continue``.
    """

    def __init__(self, message: str, *, retryable: bool = False, output: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.output = output


class RunFailedError(Exception):
    """A step failed and its ``on_error`` is ``fail``: the run fails (after compensation),
    unless a ``try`` around the step catches it.

    Attributes:
        error: What a ``catch`` block sees as ``error``: the failed step's id (``step``), its
            ``type``, the failure's ``message`` and the ``attempts`` it made.
    """

    def __init__(self, message: str, error: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error: dict[str, Any] = error or {
            "step": None,
            "type": None,
            "message": message,
            "attempts": 0,
        }


class RunCancelledError(Exception):
    """The ``cancel_workflow`` signal arrived."""


class Returned:
    """A ``return`` step ran: the value ends the enclosing run (or foreach item)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class Broken(Returned):
    """A ``break`` step ran: the innermost loop ends (the blocks around the break end too)."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(None)


@dataclass
class Frame:
    """The private state and step records of a foreach item run inside its parent's run
    (inline): its steps read and write these, not the run's, as an item's own run would.

    Attributes:
        state: The item's state (a copy of the run's when the item started).
        steps: ``steps.<id>`` of the item's finished steps.
    """

    state: dict[str, Any]
    steps: dict[str, Any] = field(default_factory=dict)


@dataclass
class Scope:
    """What a block of steps runs with, besides the run's own state.

    Attributes:
        variables: The variables of enclosing foreach steps (``as`` names and ``index``).
        state: For a compensation handed back by a foreach item: what it reads of the item's
            state (it runs in the parent, which has none of it).
        steps: The same for the item's step records.
        tracked: True for the run's own flow, whose progress is the run's position: finished
            steps are skipped when the run resumes after continuing as new, a condition
            re-enters the branch it took, a fan-out keeps the items it finished, completed
            steps record their compensations, and the run may continue as new between steps.
            False in a compensate block, which may run once per foreach item and is never
            resumed, so none of that applies to it (nor to an inline foreach item).
        frame: For the steps of a foreach item run inline: the item's own state and step
            records, which they read and write instead of the run's.
    """

    variables: dict[str, Any]
    state: dict[str, Any] | None = None
    steps: dict[str, Any] | None = None
    tracked: bool = True
    frame: Frame | None = None


def seconds_until(instant: datetime | None) -> float | None:
    """Seconds from workflow time now to ``instant`` (negative once past; None for None)."""
    if instant is None:
        return None
    return (instant - workflow.now()).total_seconds()
