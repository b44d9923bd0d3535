"""Values that cross the workflow boundary: run input, pending actions, status, limits.

Everything here is plain data (dataclasses of JSON values) so that Temporal's default JSON
payload converter carries it, and so that the control plane can read it without importing the
interpreter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = [
    "ACTION_STEP_TYPES",
    "LOAD_DEFINITION",
    "PAYLOAD_LIMIT",
    "PAYLOAD_WARNING",
    "RUN_STATUSES",
    "STEP_OUTCOMES",
    "RunInput",
    "RunStatus",
    "StepOutcome",
]

RunStatus = Literal["running", "waiting", "completed", "failed", "cancelled"]
RUN_STATUSES: Final[tuple[RunStatus, ...]] = (
    "running",
    "waiting",
    "completed",
    "failed",
    "cancelled",
)

StepOutcome = Literal["completed", "failed", "skipped", "cancelled"]
"""The value of ``steps.<id>.status`` and of a step history entry's ``outcome``."""
STEP_OUTCOMES: Final[tuple[StepOutcome, ...]] = ("completed", "failed", "skipped", "cancelled")

ACTION_STEP_TYPES: Final = frozenset({"shell", "mcp_call", "prompt", "delegate"})
"""Step types performed by an external executor: the run suspends with a pending action."""

LOAD_DEFINITION: Final = "engine.load_definition"
"""The extern function through which the worker's runner hands a run its (cached) definition."""

PAYLOAD_LIMIT: Final = 2 * 1024 * 1024
"""Temporal rejects a payload over 2 MiB ("Blob data size exceeds limit")."""
PAYLOAD_WARNING: Final = 512 * 1024
"""Temporal warns about payloads over 512 KiB."""


@dataclass
class RunInput:
    """The input of every interpreter run.

    Attributes:
        definition: The definition's canonical JSON: a run never changes behaviour when a new
            version is registered, and replay is deterministic.
        definition_hash: ``content_hash`` of the definition (shown in status and listings).
        inputs: The run's inputs, validated against the definition with defaults applied.
        org: The organization context (``OrgContext.to_json()``).
        scope: For a foreach child: ``{"foreach": step id, "vars": {name: value}, "state": {...}}``.
        progress: What a previous run carried over through continue-as-new.
    """

    definition: str
    definition_hash: str
    inputs: dict[str, Any] = field(default_factory=dict)
    org: dict[str, Any] = field(default_factory=dict)
    scope: dict[str, Any] | None = None
    progress: dict[str, Any] | None = None
