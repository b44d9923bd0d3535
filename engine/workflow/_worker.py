"""Building the Temporal worker that runs the interpreter."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import time
from collections.abc import Callable
from typing import Any, Final

import temporalio.workflow
from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.client import Client
from temporalio.converter import (
    DataConverter,
    SerializationContext,
    StorageDriverStoreContext,
    WorkflowSerializationContext,
)
from temporalio.worker import Worker, WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from engine.definition import load_definition
from engine.workflow._interpreter import EngineWorkflow
from engine.workflow._registry import DefinitionRegistryWorkflow
from engine.workflow._types import LOAD_DEFINITION

__all__ = ["PASSTHROUGH_MODULES", "EngineRunner", "build_worker", "sandbox_runner"]

_PURE_MODULES: Final = (
    "engine.context",
    "engine.definition",
    "engine.errors",
    "engine.expr",
    "engine.protocol",
    "lark",
    "re2",
    "yaml",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "typing_extensions",
    # Temporal's TracingInterceptor (on when tracing is) keeps its span context in
    # OpenTelemetry's context inside the run: the sandbox must share the one module instance
    # with the interceptor and the exporter outside it, as the SDK's documentation advises.
    "opentelemetry",
)

PASSTHROUGH_MODULES: Final = (*_PURE_MODULES, "engine.workflow")
"""Modules the sandbox shares instead of re-importing for every run.

They hold no mutable module state, and they are deterministic, so sharing them is safe; the
sandbox would otherwise re-import the interpreter and everything it needs for every run (a run's
first workflow task took about three times as long). The interpreter's determinism is still
checked by the sandbox: :func:`sandbox_runner` with ``strict=True`` re-imports it under the
sandbox's restrictions, and the replay tests run every recorded history that way.
"""


DEFINITIONS_CACHED: Final = 256
"""Loaded definitions a runner keeps (by canonical JSON), most recently used first."""


class EngineRunner(SandboxedWorkflowRunner):
    """The sandbox runner of a process, shared by all its workers.

    It validates each workflow class once rather than once per worker: validation runs a
    workflow class's module in a fresh sandbox to catch non-deterministic imports, the result
    cannot change within a process, and a pool of hundreds of workers (one per namespace)
    would otherwise repeat it for every namespace.

    It notes when each namespace last had a workflow task (:meth:`last_activation`): the
    worker pool lets an org whose runs have had nothing to do for a while go dormant.

    It answers, outside the sandbox, what the SDK asks a run for each payload it encodes or
    decodes (the payload's serialization context and external-storage context), when the
    workers' data converters use neither (:meth:`note_converter`): the answer cannot change
    what they do, and asking the sandboxed run costs an ``exec`` inside the sandbox per
    payload sequence, twice, in every activation.

    It also hands every run a cache of loaded definitions, keyed by their canonical JSON,
    through the SDK's extern functions (``workflow.extern_functions()[LOAD_DEFINITION]``): a
    run's first task would otherwise parse and compile its definition again, though the same
    text always loads to the same (immutable) definition. The cache belongs to the runner, so
    the modules passed through the sandbox keep no state.
    """

    def __init__(self, restrictions: SandboxRestrictions) -> None:
        super().__init__(restrictions=restrictions)
        self._validated: set[type] = set()
        self._load_definition = functools.lru_cache(maxsize=DEFINITIONS_CACHED)(load_definition)
        self._activations: dict[str, float] = {}
        self._context_free: bool | None = None  # None: no worker's converter noted yet

    def note_converter(self, converter: DataConverter) -> None:
        """Note the data converter of a worker about to use this runner (:func:`build_worker`
        does). Runs are answered outside the sandbox only while every converter noted is
        context-free; one that is not makes every run created from then on ask its sandbox."""
        if not _context_free(converter):
            self._context_free = False
        elif self._context_free is None:
            self._context_free = True

    def last_activation(self, namespace: str) -> float:
        """When (``time.monotonic()``) a run of ``namespace`` last had a task here (0: never)."""
        return self._activations.get(namespace, 0.0)

    def prepare_workflow(self, defn: Any) -> None:
        if defn.cls not in self._validated:
            super().prepare_workflow(defn)
            self._validated.add(defn.cls)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        functions: dict[str, Callable[..., Any]] = {
            **det.extern_functions,
            LOAD_DEFINITION: self._load_definition,
        }
        instance = super().create_instance(dataclasses.replace(det, extern_functions=functions))
        return _Noted(
            instance, det.info.namespace, self._activations, context_free=self._context_free is True
        )


_NO_STORE: Final = StorageDriverStoreContext(target=None)


def _context_free(converter: DataConverter) -> bool:
    """Whether ``converter`` encodes and decodes the same in every context: no external
    storage, and no component that takes a serialization context (the SDK's own test: given
    one, the converter returns itself)."""
    probe = WorkflowSerializationContext(namespace="", workflow_id="")
    return converter.external_storage is None and converter.with_context(probe) is converter


class _Noted(WorkflowInstance):
    """A run's instance that notes the time of each of its activations (outside the sandbox:
    the clock read here is the worker's, never the workflow's), and, when its worker's data
    converter is context-free, answers the payload contexts itself (see :class:`EngineRunner`).
    """

    def __init__(
        self,
        inner: WorkflowInstance,
        namespace: str,
        seen: dict[str, float],
        *,
        context_free: bool,
    ) -> None:
        self._inner = inner
        self._namespace = namespace
        self._seen = seen
        self._context_free = context_free

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        self._seen[self._namespace] = time.monotonic()
        return self._inner.activate(act)

    def get_serialization_context(self, *args: Any, **kwargs: Any) -> SerializationContext | None:
        if self._context_free:
            return None  # the context-free converter, which every context gives anyway
        return self._inner.get_serialization_context(*args, **kwargs)

    def get_external_store_context(self, *args: Any, **kwargs: Any) -> StorageDriverStoreContext:
        if self._context_free:
            return _NO_STORE  # no external storage to address
        return self._inner.get_external_store_context(*args, **kwargs)

    def get_info(self) -> temporalio.workflow.Info:
        return self._inner.get_info()

    def get_thread_id(self) -> int | None:
        return self._inner.get_thread_id()


def sandbox_runner(*, strict: bool = False) -> EngineRunner:
    """The workflow sandbox with the engine's modules passed through.

    Share one runner between the workers of a process (see :func:`build_worker`).

    Args:
        strict: Re-import the interpreter (``engine.workflow``) inside the sandbox for every
            run, so that any non-deterministic call it makes (the clock, randomness, I/O)
            fails the workflow task. Slower; for replay tests, not for serving.
    """
    modules = _PURE_MODULES if strict else PASSTHROUGH_MODULES
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*modules)
    return EngineRunner(restrictions)


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
    runner = workflow_runner or sandbox_runner()
    if isinstance(runner, EngineRunner):
        runner.note_converter(client.data_converter)
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[EngineWorkflow, DefinitionRegistryWorkflow],
        workflow_runner=runner,
        workflow_task_executor=workflow_task_executor,
        max_cached_workflows=max_cached_workflows,
        max_concurrent_workflow_tasks=max_concurrent_workflow_tasks,
        **options,
    )
