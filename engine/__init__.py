"""engine: a multi-tenant YAML workflow engine on Temporal, with a gRPC control plane."""

from __future__ import annotations

__all__: list[str] = []
