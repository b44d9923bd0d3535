"""Building the Temporal worker that runs the interpreter."""

from __future__ import annotations

import concurrent.futures
from typing import Any, Final

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from engine.workflow._interpreter import EngineWorkflow

__all__ = ["PASSTHROUGH_MODULES", "build_worker", "sandbox_runner"]

PASSTHROUGH_MODULES: Final = (
    "engine.context",
    "engine.definition",
    "engine.errors",
    "engine.expr",
    "lark",
    "re2",
    "yaml",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "typing_extensions",
)
"""Modules the sandbox shares instead of re-importing for every run.

They are pure, hold no mutable global state, and are slow to import (the expression grammar
is built at import), so passing them through keeps a run's first task fast.
"""


def sandbox_runner() -> SandboxedWorkflowRunner:
    """The workflow sandbox with the engine's pure modules passed through."""
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    return SandboxedWorkflowRunner(restrictions=restrictions)


def build_worker(
    client: Client,
    task_queue: str = "engine",
    *,
    workflow_task_executor: concurrent.futures.ThreadPoolExecutor | None = None,
    max_cached_workflows: int = 1000,
    max_concurrent_workflow_tasks: int | None = None,
    **options: Any,
) -> Worker:
    """A worker that runs the interpreter (every definition) for ``client``'s namespace.

    Args:
        client: A client of the namespace to serve.
        task_queue: The task queue to poll (``TEMPORAL_TASK_QUEUE``, default ``engine``).
        workflow_task_executor: A thread pool shared by several workers, to bound threads.
        max_cached_workflows: Runs kept in memory between tasks.
        max_concurrent_workflow_tasks: Workflow tasks processed at once.
        **options: Any other :class:`temporalio.worker.Worker` option.
    """
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[EngineWorkflow],
        workflow_runner=sandbox_runner(),
        workflow_task_executor=workflow_task_executor,
        max_cached_workflows=max_cached_workflows,
        max_concurrent_workflow_tasks=max_concurrent_workflow_tasks,
        **options,
    )
