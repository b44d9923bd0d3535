"""Configuration read from the environment, in one place.

Every setting the engine reads from the environment is declared here, with its default; no other
module reads ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["TemporalSettings"]


@dataclass(frozen=True, slots=True)
class TemporalSettings:
    """Where the engine's Temporal server is and which task queue its workers poll.

    Attributes:
        address: ``host:port`` of the Temporal frontend (``TEMPORAL_ADDRESS``).
        namespace: The namespace of a single-organization setup (``TEMPORAL_NAMESPACE``).
        task_queue: The task queue of the interpreter's workers (``TEMPORAL_TASK_QUEUE``).
    """

    address: str = "127.0.0.1:7233"
    namespace: str = "default"
    task_queue: str = "engine"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TemporalSettings:
        """Read ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE`` and ``TEMPORAL_TASK_QUEUE``."""
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            address=env.get("TEMPORAL_ADDRESS", defaults.address),
            namespace=env.get("TEMPORAL_NAMESPACE", defaults.namespace),
            task_queue=env.get("TEMPORAL_TASK_QUEUE", defaults.task_queue),
        )
