"""The gRPC control plane: servicers, the auth interceptor, error mapping, health, reflection.

Only this package knows protobuf messages: it converts them to plain values at its edge and
calls the dispatcher, the definition registry and the provisioner.
"""

from __future__ import annotations

from engine.server._app import SERVICE_NAMES, ControlPlane, build_server
from engine.server._auth import (
    Claims,
    PermissionDeniedError,
    TokenVerifier,
    UnauthenticatedError,
    issue_token,
)

__all__ = [
    "SERVICE_NAMES",
    "Claims",
    "ControlPlane",
    "PermissionDeniedError",
    "TokenVerifier",
    "UnauthenticatedError",
    "build_server",
    "issue_token",
]
