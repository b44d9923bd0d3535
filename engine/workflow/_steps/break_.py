"""``break``: end the innermost loop (the checker allows it only inside a loop's steps)."""

from __future__ import annotations

from typing import Any

from engine.definition import BreakStep
from engine.workflow._flow import Broken, Scope
from engine.workflow._steps._run import Run

__all__ = ["run_break"]


async def run_break(run: Run, step: BreakStep, scope: Scope, attempt: int) -> Any:
    """End the blocks up to the innermost loop, which then ends."""
    return Broken()
