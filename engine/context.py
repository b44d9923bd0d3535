"""The organization context: which organization a call or a run serves.

An explicit value, never a global: the control plane's interceptor builds it from the caller's
credentials, the dispatcher passes it on, and every run carries it in its input and search
attributes, so code inside a run can always tell which organization it serves.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final

from engine.errors import EngineError

__all__ = [
    "CALL_DEADLINE",
    "CALL_ORG",
    "ORG_ID_PATTERN",
    "InvalidOrgIdError",
    "OrgContext",
    "validate_org_id",
]

CALL_DEADLINE: ContextVar[float | None] = ContextVar("CALL_DEADLINE", default=None)
"""When (``time.monotonic()``) the caller's call must be answered, if its caller set a deadline:
the control plane sets it for each gRPC call, and retries inside the engine stop before it."""

CALL_ORG: ContextVar[str | None] = ContextVar("CALL_ORG", default=None)
"""The org of the caller's call, once the control plane has authenticated it (each gRPC call
runs in a task of its own): the label of its metrics (``engine.telemetry.metrics``)."""

ORG_ID_PATTERN: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
"""The rule of an org id: it names a Temporal namespace (with a prefix), so it stays short and
plain."""


class InvalidOrgIdError(EngineError):
    """An org id that does not match ``^[a-z0-9][a-z0-9-]{0,62}$``."""

    code: ClassVar[str] = "INVALID_ARGUMENT"
    reason: ClassVar[str] = "INVALID_ORG_ID"


def validate_org_id(org_id: object) -> str:
    """Return ``org_id`` if it is a valid org id.

    Raises:
        InvalidOrgIdError: Naming the id and the rule, before Temporal is ever asked.
    """
    if not isinstance(org_id, str) or ORG_ID_PATTERN.fullmatch(org_id) is None:
        raise InvalidOrgIdError(
            f"invalid org id {org_id!r}: use 1 to 63 lowercase letters, digits and '-', "
            "starting with a letter or digit"
        )
    return org_id


@dataclass(frozen=True, slots=True)
class OrgContext:
    """An organization, the Temporal namespace that holds its runs, and the caller's roles.

    Attributes:
        org_id: The organization's id (``^[a-z0-9][a-z0-9-]{0,62}$``).
        namespace: The Temporal namespace of the organization.
        roles: The caller's roles (see engine.identity).
        subject: Who the caller is (the token's ``sub``; "" when it has none).
    """

    org_id: str
    namespace: str
    roles: tuple[str, ...] = field(default=())
    subject: str = ""

    def to_json(self) -> dict[str, Any]:
        """The JSON form carried in workflow input (the subject is who started the run)."""
        data: dict[str, Any] = {
            "org_id": self.org_id,
            "namespace": self.namespace,
            "roles": list(self.roles),
        }
        if self.subject:
            data["subject"] = self.subject
        return data

    def actor(self) -> dict[str, Any]:
        """Who is calling, as a run records it with an answer: subject and roles."""
        return {"subject": self.subject, "roles": list(self.roles)}
