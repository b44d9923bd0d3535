"""Building the Temporal worker that runs the interpreter."""

from __future__ import annotations

import concurrent.futures
from typing import Any, Final

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from engine.workflow._interpreter import EngineWorkflow
from engine.workflow._registry import DefinitionRegistryWorkflow

__all__ = ["PASSTHROUGH_MODULES", "build_worker", "sandbox_runner"]

PASSTHROUGH_MODULES: Final = (
    "engine.context",
    # The interpreter's pure siblings: importing the package inside the sandbox would otherwise
    # re-execute them (and the client and worker code they import) for every run.
    "engine.workflow._actions",
    "engine.workflow._factory",
    "engine.workflow._search",
    "engine.workflow._types",
    "engine.workflow._worker",
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


class _ValidatedOnceRunner(SandboxedWorkflowRunner):
    """The sandbox runner, validating each workflow class once rather than once per worker.

    Validation runs a workflow class's module in a fresh sandbox to catch non-deterministic
    imports; the result cannot change within a process, and a pool of hundreds of workers
    (one per namespace) would otherwise repeat it for every namespace.
    """

    def __init__(self, restrictions: SandboxRestrictions) -> None:
        super().__init__(restrictions=restrictions)
        self._validated: set[type] = set()

    def prepare_workflow(self, defn: Any) -> None:
        if defn.cls not in self._validated:
            super().prepare_workflow(defn)
            self._validated.add(defn.cls)


def sandbox_runner() -> SandboxedWorkflowRunner:
    """The workflow sandbox with the engine's pure modules passed through.

    Share one runner between the workers of a process (see :func:`build_worker`).
    """
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    return _ValidatedOnceRunner(restrictions)


def build_worker(
    client: Client,
    task_queue: str = "engine",
    *,
    workflow_task_executor: concurrent.futures.ThreadPoolExecutor | None = None,
    workflow_runner: SandboxedWorkflowRunner | None = None,
    max_cached_workflows: int = 1000,
    max_concurrent_workflow_tasks: int | None = None,
    **options: Any,
) -> Worker:
    """A worker that runs the interpreter (every definition) and the definition registry.

    Args:
        client: A client of the namespace to serve.
        task_queue: The task queue to poll (``TEMPORAL_TASK_QUEUE``, default ``engine``).
        workflow_task_executor: A thread pool shared by several workers, to bound threads.
        workflow_runner: A sandbox runner shared by several workers (validates once).
        max_cached_workflows: Runs kept in memory between tasks.
        max_concurrent_workflow_tasks: Workflow tasks processed at once.
        **options: Any other :class:`temporalio.worker.Worker` option.
    """
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[EngineWorkflow, DefinitionRegistryWorkflow],
        workflow_runner=workflow_runner or sandbox_runner(),
        workflow_task_executor=workflow_task_executor,
        max_cached_workflows=max_cached_workflows,
        max_concurrent_workflow_tasks=max_concurrent_workflow_tasks,
        **options,
    )
