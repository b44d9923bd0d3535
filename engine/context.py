"""The organization context: which organization a call or a run serves.

An explicit value, never a global: the control plane's interceptor builds it from the caller's
credentials, the dispatcher passes it on, and every run carries it in its input and search
attributes, so code inside a run can always tell which organization it serves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OrgContext"]


@dataclass(frozen=True, slots=True)
class OrgContext:
    """An organization, the Temporal namespace that holds its runs, and the caller's roles.

    Attributes:
        org_id: The organization's id (``^[a-z0-9][a-z0-9-]{0,62}$``).
        namespace: The Temporal namespace of the organization.
        roles: The caller's roles (``admin`` may provision organizations).
    """

    org_id: str
    namespace: str
    roles: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The JSON form carried in workflow input."""
        return {"org_id": self.org_id, "namespace": self.namespace, "roles": list(self.roles)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OrgContext:
        """Rebuild from :meth:`to_json` output."""
        return cls(
            org_id=str(data["org_id"]),
            namespace=str(data["namespace"]),
            roles=tuple(str(r) for r in data.get("roles", ())),
        )
