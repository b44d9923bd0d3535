"""The interpreter that runs workflow definitions as durable Temporal workflows.

One dynamic workflow (:class:`EngineWorkflow`) serves every definition: a run's input carries
the definition's canonical JSON, so a run of type ``"{name}:{version}"`` never changes behaviour
when a new version is registered, and new definitions need no worker restart.

Other layers use :class:`WorkflowFactory` (or :func:`start_workflow`) to start runs,
:func:`get_workflow_status` to read them, and :func:`build_worker` to serve them. A run is
driven from outside by the names in :mod:`engine.protocol`: the update ``submit_result``, the
signals ``submit_result``, ``cancel_workflow`` and ``update_timeout``, and the query
``get_status``.
"""

from __future__ import annotations

from engine.workflow._actions import ResultRejectedError, result_shape_error
from engine.workflow._factory import (
    MAX_CALL_DEPTH,
    RunStart,
    WorkflowFactory,
    find_called,
    get_workflow_status,
    resolve_calls,
    start_workflow,
)
from engine.workflow._interpreter import EngineWorkflow
from engine.workflow._notify import (
    SIGNATURE_HEADER,
    Webhook,
    WebhookFlags,
    notifier_worker,
    read_webhook,
    sign,
    write_webhook,
)
from engine.workflow._registry import (
    ALL_VERSIONS,
    GET_VERSION,
    LIST_VERSIONS,
    REGISTRY_WORKFLOW_TYPE,
    DefinitionRegistryWorkflow,
    RegistryInput,
    registry_workflow_id,
)
from engine.workflow._search import (
    ENGINE_ACTION_TYPE,
    ENGINE_AGENT,
    ENGINE_DEFINITION,
    ENGINE_EVENTS,
    ENGINE_ORG,
    ENGINE_STATUS,
    ENGINE_STEP,
    PROVISIONED,
    SEARCH_ATTRIBUTES,
    ensure_search_attributes,
    search_attributes,
)
from engine.workflow._steps import EXECUTORS
from engine.workflow._types import ACTION_STEP_TYPES, PAYLOAD_LIMIT, Called, RunInput
from engine.workflow._worker import PASSTHROUGH_MODULES, EngineRunner, build_worker, sandbox_runner

__all__ = [
    "ACTION_STEP_TYPES",
    "ALL_VERSIONS",
    "ENGINE_ACTION_TYPE",
    "ENGINE_AGENT",
    "ENGINE_DEFINITION",
    "ENGINE_EVENTS",
    "ENGINE_ORG",
    "ENGINE_STATUS",
    "ENGINE_STEP",
    "EXECUTORS",
    "GET_VERSION",
    "LIST_VERSIONS",
    "MAX_CALL_DEPTH",
    "PASSTHROUGH_MODULES",
    "PAYLOAD_LIMIT",
    "PROVISIONED",
    "REGISTRY_WORKFLOW_TYPE",
    "SEARCH_ATTRIBUTES",
    "SIGNATURE_HEADER",
    "Called",
    "DefinitionRegistryWorkflow",
    "EngineRunner",
    "EngineWorkflow",
    "RegistryInput",
    "ResultRejectedError",
    "RunInput",
    "RunStart",
    "Webhook",
    "WebhookFlags",
    "WorkflowFactory",
    "build_worker",
    "ensure_search_attributes",
    "find_called",
    "get_workflow_status",
    "notifier_worker",
    "read_webhook",
    "registry_workflow_id",
    "resolve_calls",
    "result_shape_error",
    "sandbox_runner",
    "search_attributes",
    "sign",
    "start_workflow",
    "write_webhook",
]
