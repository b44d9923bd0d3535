"""Where the registered definitions of an organization come from."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from engine.context import OrgContext
from engine.definition._models import WorkflowDefinition

__all__ = ["DefinitionSource"]


class DefinitionSource(Protocol):
    """The registered definitions of each organization (the definition registry is one)."""

    async def get(self, org: OrgContext, name: str, version: int | None) -> WorkflowDefinition:
        """The definition (the latest version when ``version`` is None).

        Raises:
            engine.errors.EngineError: With code NOT_FOUND when it is not registered, or
                INVALID_ARGUMENT when the name cannot be one.
        """
        ...

    async def pins(self, org: OrgContext, name: str, version: int) -> Mapping[str, int]:
        """The versions the definition's ``call`` steps without one were pinned to when it was
        registered, by step id.

        Raises:
            engine.errors.EngineError: As :meth:`get`.
        """
        ...
