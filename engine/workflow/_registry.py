"""The definition registry: one small workflow per definition name, in the org's namespace.

The control plane keeps no state of its own, so registered definitions live in Temporal: the
workflow ``definition/{name}`` holds every version of one definition. A version is added by the
update ``add_version``, whose validator rejects other content under an existing version
without writing history; versions are read by queries; the latest version is mirrored into the
run's memo so that listing definitions is one visibility call; and the history stays bounded by
continuing as new, carrying the versions over.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any, Final

from temporalio import workflow
from temporalio.exceptions import ApplicationError

__all__ = [
    "ALL_VERSIONS",
    "GET_VERSION",
    "LIST_VERSIONS",
    "REGISTRY_WORKFLOW_TYPE",
    "DefinitionRegistryWorkflow",
    "RegistryInput",
    "VersionConflictError",
    "registry_workflow_id",
]

REGISTRY_WORKFLOW_TYPE: Final = "engine.definition-registry"
GET_VERSION: Final = "get_version"
"""The registry's query of one version (0: the latest), with its YAML."""
ALL_VERSIONS: Final = "all_versions"
"""The registry's query of every version, with its YAML."""
LIST_VERSIONS: Final = "list_versions"
"""The registry's query of every version, without YAML."""
_UPDATES_PER_RUN: Final = 200
"""Continue as new after this many versions, even if Temporal has not suggested it yet."""


def registry_workflow_id(name: str) -> str:
    """The id of the registry workflow of a definition name."""
    return f"definition/{name}"


class VersionConflictError(ApplicationError):
    """Other content is already registered under this name and version."""


@dataclass
class RegistryInput:
    """The registry's input: its name and the versions carried over by continue-as-new."""

    name: str
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)


@workflow.defn(name=REGISTRY_WORKFLOW_TYPE, sandboxed=True)
class DefinitionRegistryWorkflow:
    """Holds the versions of one definition; never ends (it continues as new)."""

    @workflow.init
    def __init__(self, registry: RegistryInput) -> None:
        self.name = registry.name
        self.versions: dict[str, dict[str, Any]] = dict(registry.versions)
        self.added = 0

    @workflow.run
    async def run(self, registry: RegistryInput) -> None:
        """Wait for versions; continue as new when the history grows.

        A cancel is not obeyed: the registry is what keeps a (name, version) bound to one
        content, so it goes on as a new run with every version.
        """
        with contextlib.suppress(asyncio.CancelledError):
            await workflow.wait_condition(
                lambda: (
                    self.added >= _UPDATES_PER_RUN or workflow.info().is_continue_as_new_suggested()
                )
            )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(RegistryInput(self.name, self.versions))

    @workflow.update(name="add_version")
    def add_version(self, version: dict[str, Any]) -> dict[str, Any]:
        """Register a version (a no-op for the same content); returns it and ``created``."""
        key = str(version["version"])
        existing = self.versions.get(key)
        if existing is not None:
            return {"created": False, "version": existing}
        self.versions[key] = {**version, "create_time": workflow.now().isoformat()}
        self.added += 1
        latest = max(self.versions, key=int)
        workflow.upsert_memo(
            {
                "latest_version": int(latest),
                "latest_hash": self.versions[latest]["content_hash"],
                "latest_create_time": self.versions[latest].get("create_time"),
                "description": self.versions[latest].get("description") or "",
                "versions": len(self.versions),
            }
        )
        return {"created": True, "version": self.versions[key]}

    @add_version.validator
    def validate_add_version(self, version: dict[str, Any]) -> None:
        """Reject other content under an existing version, naming both hashes."""
        existing = self.versions.get(str(version.get("version")))
        if existing is not None and existing["content_hash"] != version.get("content_hash"):
            raise VersionConflictError(
                f"version {version.get('version')} of definition '{self.name}' is already "
                f"registered with hash {existing['content_hash']}; this content has hash "
                f"{version.get('content_hash')}: register it under a new version",
                type="VersionConflict",
                non_retryable=True,
            )

    @workflow.query(name=GET_VERSION)
    def get_version(self, version: int) -> dict[str, Any] | None:
        """One version with its YAML (version 0: the latest), or None."""
        if not self.versions:
            return None
        key = max(self.versions, key=int) if version == 0 else str(version)
        return self.versions.get(key)

    @workflow.query(name=ALL_VERSIONS)
    def all_versions(self) -> dict[str, dict[str, Any]]:
        """Every version with its YAML: what a new registry run carries on after this one was
        ended from outside the engine."""
        return self.versions

    @workflow.query(name=LIST_VERSIONS)
    def list_versions(self) -> list[dict[str, Any]]:
        """Every version without its YAML, oldest first."""
        return [
            {k: v for k, v in self.versions[key].items() if k != "yaml"}
            for key in sorted(self.versions, key=int)
        ]
