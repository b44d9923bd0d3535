"""The worker pool: the orgs a process serves, a Temporal worker for each that has work.

All workers of a pool share one bounded thread pool for workflow tasks, and only the orgs with
work have a worker (at most ``max_active``), so a process serving hundreds of namespaces keeps
a bounded number of threads. Processes share the orgs among themselves as members of a group
(:class:`Member`), whose membership lives in a workflow in Temporal.
"""

from __future__ import annotations

from engine.worker._membership import Member, MembershipNamespaceError, MembershipOptions
from engine.worker._pool import STOP_MARGIN, ServedNamespace, WorkerOptions, WorkerPool

__all__ = [
    "STOP_MARGIN",
    "Member",
    "MembershipNamespaceError",
    "MembershipOptions",
    "ServedNamespace",
    "WorkerOptions",
    "WorkerPool",
]
