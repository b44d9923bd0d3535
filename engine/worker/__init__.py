"""The worker pool: one Temporal worker per served namespace, one shared connection per endpoint.

All workers of a pool share one bounded thread pool for workflow tasks, so a process serving
hundreds of namespaces keeps a bounded number of threads.
"""

from __future__ import annotations

from engine.worker._pool import STOP_MARGIN, ServedNamespace, WorkerOptions, WorkerPool

__all__ = ["STOP_MARGIN", "ServedNamespace", "WorkerOptions", "WorkerPool"]
