"""The payload budget: a run fails a step cleanly before Temporal would reject a payload.

Temporal refuses any payload over 2 MiB ("Blob data size exceeds limit"), and a workflow task
that produces one fails and is retried for ever: the run would be stuck. Everything a run keeps
travels in one payload, the answer of ``get_status`` (and what continue-as-new carries), so
before a step's output, a new state or a pending action is kept, the run checks that the whole
status would still fit, and fails the step if not.

Measuring the whole status after every step would cost O(state) per step, so the budget
remembers the size of every step record and state value it measured, and measures only what
changed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from temporalio.exceptions import ApplicationError

from engine.protocol import RunStatus
from engine.workflow._flow import StepFailedError
from engine.workflow._types import PAYLOAD_LIMIT

__all__ = ["PayloadBudget", "check_size", "fail_if_too_large", "json_size"]


class PayloadBudget:
    """The sizes of a run's step records and state values, as JSON, kept up to date.

    Args:
        records: The step records the run starts with (carried over by continue-as-new).
    """

    def __init__(self, records: Mapping[str, Any]) -> None:
        # Each record's size, taken once: the outputs of all the steps so far need not be
        # serialized again after every step.
        self._record_sizes = {key: _entry_size(key, value) for key, value in records.items()}
        # The same for state keys, remembered with the value they measured: state values are
        # replaced, never changed in place, so an identical object has an unchanged size.
        self._state_sizes: dict[str, tuple[Any, int]] = {}

    def record_changed(self, step_id: str, record: Any) -> None:
        """Take the size of a step's new record."""
        self._record_sizes[step_id] = _entry_size(step_id, record)

    def check_status(
        self, what: str, status: RunStatus, state: Mapping[str, Any], extra: int = 0
    ) -> None:
        """Fail the step unless the status, hence what continue-as-new carries, still fits.

        The state, every step's output and the pending actions all travel in the one payload
        that answers ``get_status``: an output kept in the state is in it twice.

        Args:
            what: What is about to be kept, for the message ("the output of step 'x'").
            status: The run's status (its ``state`` and ``steps`` are measured from the sizes
                kept here, not serialized again).
            state: The run's state.
            extra: Bytes that will travel besides (a return value, carried once more).

        Raises:
            StepFailedError: Naming ``what`` and the size it would make.
        """
        outline = {**status, "steps": {}, "state": {}}
        size = (
            json_size(outline) + self._state_size(state) + sum(self._record_sizes.values()) + extra
        )
        if size > PAYLOAD_LIMIT:
            raise StepFailedError(
                f"{what} would make the run's status {size:,} bytes as JSON, over Temporal's "
                f"payload limit of {PAYLOAD_LIMIT:,} bytes"
            )

    def _state_size(self, state: Mapping[str, Any]) -> int:
        """The state's size as JSON, measuring only the keys whose value changed."""
        sizes: dict[str, tuple[Any, int]] = {}
        for key, value in state.items():
            known = self._state_sizes.get(key)
            sizes[key] = known if known and known[0] is value else (value, _entry_size(key, value))
        self._state_sizes = sizes
        return sum(size for _, size in sizes.values())


def check_size(what: str, value: Any) -> None:
    """Fail the step if ``value`` alone is over the payload limit.

    Raises:
        StepFailedError: Naming ``what`` and its size.
    """
    size = json_size(value)
    if size > PAYLOAD_LIMIT:
        raise StepFailedError(
            f"{what} is {size:,} bytes as JSON, over Temporal's payload limit of "
            f"{PAYLOAD_LIMIT:,} bytes"
        )


def fail_if_too_large(what: str, value: Any) -> None:
    """Fail the run (not a step) if ``value`` is over the payload limit: for what the run
    itself must send (its result, what it carries to its next run).

    Raises:
        temporalio.exceptions.ApplicationError: Non-retryable, type ``PayloadTooLarge``.
    """
    size = json_size(value)
    if size > PAYLOAD_LIMIT:
        raise ApplicationError(
            f"{what} is {size:,} bytes as JSON, over Temporal's payload limit of "
            f"{PAYLOAD_LIMIT:,} bytes",
            type="PayloadTooLarge",
            non_retryable=True,
        )


def _entry_size(key: str, value: Any) -> int:
    """The size of ``"key":value,`` in a JSON object."""
    return json_size(key) + json_size(value) + 2


def json_size(value: Any) -> int:
    """The size of ``value`` as JSON, as Temporal's converter writes it.

    That is ASCII: a non-ASCII character can take 6 bytes.
    """
    return len(json.dumps(value, separators=(",", ":")))
