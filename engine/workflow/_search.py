"""The engine's search attributes: how runs are listed and filtered in visibility."""

from __future__ import annotations

from typing import Final

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import (
    SearchAttributeIndexedValueType,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
)

from engine.protocol import RunState

__all__ = [
    "ENGINE_ACTION_TYPE",
    "ENGINE_AGENT",
    "ENGINE_DEFINITION",
    "ENGINE_EVENTS",
    "ENGINE_ORG",
    "ENGINE_STATUS",
    "ENGINE_STEP",
    "PROVISIONED",
    "SEARCH_ATTRIBUTES",
    "ensure_search_attributes",
    "search_attributes",
]

ENGINE_STATUS: Final = SearchAttributeKey.for_keyword("EngineStatus")
"""running, waiting, completed, failed or cancelled."""
ENGINE_STEP: Final = SearchAttributeKey.for_keyword("EngineStep")
"""The step the run is blocked on (an action, a timer or a fan-out)."""
ENGINE_ORG: Final = SearchAttributeKey.for_keyword("EngineOrg")
"""The organization the run serves."""
ENGINE_DEFINITION: Final = SearchAttributeKey.for_keyword("EngineDefinition")
"""The definition's name (the workflow type adds the version)."""

ENGINE_ACTION_TYPE: Final = SearchAttributeKey.for_keyword("EngineActionType")
"""The type of the action a waiting run waits for (shell, mcp_call, prompt, delegate)."""
ENGINE_AGENT: Final = SearchAttributeKey.for_keyword("EngineAgent")
"""The agent a waiting ``delegate`` action is for (``@reviewer``)."""
ENGINE_EVENTS: Final = SearchAttributeKey.for_keyword_list("EngineEvents")
"""The events the run's ``wait_for`` steps wait for now (what a broadcast event looks up)."""

PROVISIONED: Final = (ENGINE_STATUS, ENGINE_STEP, ENGINE_ORG, ENGINE_DEFINITION)
"""The attributes every engine has registered when it provisioned an org: their presence says
provisioning finished (later ones are added when a worker starts serving the namespace)."""
SEARCH_ATTRIBUTES: Final = (*PROVISIONED, ENGINE_ACTION_TYPE, ENGINE_AGENT, ENGINE_EVENTS)
"""Every attribute the engine's workflows may set."""


_INDEXED: Final = {
    SearchAttributeIndexedValueType.KEYWORD: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    SearchAttributeIndexedValueType.KEYWORD_LIST: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}


def search_attributes(
    org_id: str, definition: str, status: RunState | None = None
) -> TypedSearchAttributes:
    """The search attributes a workflow of the engine starts with.

    Args:
        org_id: The organization it serves.
        definition: The definition's name.
        status: A run's status at start (``running``); None for the engine's own workflows
            (the definition registry), which are not runs.
    """
    pairs = [
        SearchAttributePair(ENGINE_ORG, org_id),
        SearchAttributePair(ENGINE_DEFINITION, definition),
    ]
    if status is not None:
        pairs.append(SearchAttributePair(ENGINE_STATUS, status))
    return TypedSearchAttributes(pairs)


async def ensure_search_attributes(client: Client, namespace: str | None = None) -> None:
    """Register the engine's search attributes in a namespace (idempotent).

    The dev server's ``--search-attribute`` flag covers only namespaces that exist at launch,
    so every namespace the engine uses gets them through the operator service.
    """
    target = namespace or client.namespace
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=target)
    )
    missing = {
        key.name: _INDEXED[key.indexed_value_type]
        for key in SEARCH_ATTRIBUTES
        if key.name not in existing.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=target, search_attributes=missing)
        )
