"""Compensation: undoing what completed steps did, most recent first, when a run fails.

A completed step with a ``compensate`` block leaves an entry here. When the run fails, the
blocks run in reverse order of completion. A foreach item's run cannot undo its steps itself
when its parent fails later, so it hands its entries back to the parent (in its result, or in
the details of its cancellation), each with what its block reads of the item's state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from temporalio import workflow
from temporalio.exceptions import CancelledError, ChildWorkflowError

from engine.definition import StepBase, WorkflowDefinition
from engine.expr import Reference
from engine.workflow._flow import (
    Returned,
    RunCancelledError,
    RunFailedError,
    Scope,
    StepFailedError,
)
from engine.workflow._types import Compensation, ReadContext

__all__ = ["Compensations", "handed_back"]

RunBlock = Callable[[Sequence[StepBase], Scope], Awaitable[Returned | None]]


class Compensations:
    """The compensations a run recorded, oldest first.

    Args:
        entries: What the previous run carried over ([] for a new run).
    """

    def __init__(self, entries: list[Compensation]) -> None:
        self.entries = entries

    def record(self, step_id: str, variables: dict[str, Any]) -> None:
        """A step with a ``compensate`` block completed."""
        self.entries.append({"step_id": step_id, "vars": variables})

    def extend(self, entries: Iterable[Compensation]) -> None:
        """Entries a foreach item handed back."""
        self.entries.extend(entries)

    async def run(self, definition: WorkflowDefinition, run_block: RunBlock) -> None:
        """Run the ``compensate`` blocks of the entries, most recent first.

        A compensation that fails is logged and the next one still runs: undoing as much as
        possible matters more than stopping at the first problem. The blocks run untracked
        (see :class:`~engine.workflow._flow.Scope`).

        Raises:
            asyncio.CancelledError: The run was cancelled (by Temporal) meanwhile.
        """
        pending, self.entries = self.entries, []
        for entry in reversed(pending):
            step = definition.step(entry["step_id"])
            seen: Mapping[str, Any] = entry.get("context") or {}
            scope = Scope(
                dict(entry.get("vars", {})), seen.get("state"), seen.get("steps"), tracked=False
            )
            try:
                await run_block(step.compensate, scope)
            except (RunFailedError, StepFailedError, RunCancelledError) as failure:
                workflow.logger.warning(
                    "compensation of step %s failed: %s", step.id, failure, extra={"step": step.id}
                )

    def handed_over(
        self,
        definition: WorkflowDefinition,
        state: Mapping[str, Any],
        steps: Mapping[str, Any],
    ) -> list[Compensation]:
        """This item's entries for its parent, each with the context its block reads here."""
        entries = []
        for entry in self.entries:
            if "context" not in entry:  # an entry an item of this item handed back has its own
                block = definition.step(entry["step_id"]).compensate
                entry = {**entry, "context": _read_by(block, state, steps)}
            entries.append(entry)
        return entries


def handed_back(error: ChildWorkflowError) -> list[Compensation]:
    """The compensations a foreach item handed back when it was stopped."""
    cause = error.cause
    if isinstance(cause, CancelledError) and cause.details:
        detail = cause.details[0]
        if isinstance(detail, dict):
            return list(detail.get("compensations", []))
    return []


def _read_by(
    block: Sequence[StepBase], state: Mapping[str, Any], steps: Mapping[str, Any]
) -> ReadContext:
    """The part of the state and step records that a block's expressions read."""
    wanted: dict[str, set[str] | None] = {"state": set(), "steps": set()}
    for reference in _references(block):
        keys = wanted.get(reference.root)
        if reference.root not in wanted or keys is None:
            continue
        if reference.key is None:
            wanted[reference.root] = None  # read by a computed key: keep all of it
        else:
            keys.add(reference.key)
    return {"state": _pick(state, wanted["state"]), "steps": _pick(steps, wanted["steps"])}


def _references(block: Sequence[StepBase]) -> Iterator[Reference]:
    """What the expressions of a block's steps read, nested blocks included."""
    for step in block:
        yield from step.references
        for name in ("then", "else_", "steps", "compensate"):
            nested = getattr(step, name, None)
            if isinstance(nested, list):
                yield from _references(nested)


def _pick(values: Mapping[str, Any], keys: set[str] | None) -> dict[str, Any]:
    return dict(values) if keys is None else {k: v for k, v in values.items() if k in keys}
