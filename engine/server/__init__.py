"""The gRPC control plane: servicers, the auth interceptor, error mapping, health, reflection.

Only this package knows protobuf messages: it converts them to plain values at its edge and
calls the dispatcher, the definition registry, the scheduler and the provisioner. Tokens are
verified with :class:`engine.identity.TokenVerifier`.
"""

from __future__ import annotations

from engine.server._app import SERVICE_NAMES, ControlPlane, build_server

__all__ = ["SERVICE_NAMES", "ControlPlane", "build_server"]
