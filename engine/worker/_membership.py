"""Worker processes share the organizations among themselves, through a workflow in Temporal.

A :class:`Member` joins its process's worker pool to a group (see
:mod:`engine.workflow._membership` for the protocol): it heartbeats the group's membership
workflow every :attr:`MembershipOptions.heartbeat` seconds and gives the pool the share the
answer allows (:meth:`WorkerPool.assign`). Every member also runs a small worker for the
membership workflow itself, so the group needs nothing but its members and Temporal.

How long an org can go unserved: when a member dies, its orgs wait for its ``ttl`` to run out
(the next heartbeat of another member then removes it), one heartbeat for the others to
acknowledge, one more for the new owners to learn the view has settled, and the probe that finds
their work: about ``ttl + 3 * heartbeat + probe_interval`` seconds, 23 s with the defaults
(:attr:`MembershipOptions.unserved_bound`). When a member joins or leaves in good order, the
orgs that move wait about two heartbeats.

A member that cannot reach the workflow for ``fence`` seconds (less than its ``ttl``) stops
serving everything: by the time the others count it as gone, it has stopped, so no org is
served twice even when a member is cut off rather than dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, Final

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import TemporalError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

from engine.errors import EngineError
from engine.worker._pool import WorkerPool
from engine.workflow import sandbox_runner
from engine.workflow._membership import (
    HEARTBEAT,
    LEAVE,
    MEMBERSHIP_WORKFLOW_TYPE,
    Heartbeat,
    MembershipState,
    MembershipWorkflow,
    View,
)

__all__ = ["Member", "MembershipNamespaceError", "MembershipOptions"]

log = logging.getLogger("engine.worker.membership")

_TASK_TIMEOUT: Final = timedelta(seconds=2)
_STOP_LIMIT: Final = 5.0
"""Seconds each step of :meth:`Member.stop` may take."""
"""The membership workflow's task timeout: a task held by a member that died is given to
another member this soon."""


class MembershipNamespaceError(EngineError):
    """The namespace of the membership workflow does not exist."""

    code: ClassVar[str] = "FAILED_PRECONDITION"
    reason: ClassVar[str] = "MEMBERSHIP_NAMESPACE_NOT_FOUND"


@dataclass(frozen=True)
class MembershipOptions:
    """How a process takes part in its group.

    Attributes:
        namespace: The Temporal namespace of the membership workflow (the engine's system
            namespace, ``ENGINE_MEMBERSHIP_NAMESPACE``; ``default`` unless set).
        heartbeat: Seconds between two heartbeats.
        ttl: Seconds without a heartbeat after which a member is gone.
        fence: Seconds without a successful heartbeat after which a member stops serving.
        task_queue: The task queue of the membership workflow's workers.
    """

    namespace: str = "default"
    heartbeat: float = 2.0
    ttl: float = 15.0
    fence: float = 8.0
    task_queue: str = "engine-membership"

    @property
    def unserved_bound(self) -> float:
        """Seconds an org of a member that died may wait for a new owner, at most (plus the
        probe that finds its work)."""
        return self.ttl + 3 * self.heartbeat


class Member:
    """This process in its group: heartbeats, and the pool's share of the orgs.

    Args:
        client: A client of the membership namespace.
        pool: The worker pool whose orgs are shared.
        group: The group's name (processes serving the same orgs use the same).
        options: Timing and placement.
    """

    def __init__(
        self,
        client: Client,
        pool: WorkerPool,
        group: str,
        options: MembershipOptions | None = None,
    ) -> None:
        self.client = client
        self.pool = pool
        self.group = group
        self.options = options or MembershipOptions()
        self.member_id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.view: View | None = None
        self._acked = 0
        self._last_ok = 0.0
        self._fenced = False
        self._worker: Worker | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def workflow_id(self) -> str:
        """The membership workflow of the group."""
        return f"engine-membership/{self.group}"

    async def start(self) -> None:
        """Serve nothing until the group's first answer; then heartbeat for good.

        Raises:
            MembershipNamespaceError: The membership namespace does not exist.
        """
        namespace = self.client.namespace
        try:
            await self.client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=namespace), retry=True
            )
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            raise MembershipNamespaceError(
                f"the worker processes share the orgs through a workflow in namespace "
                f"'{namespace}', which does not exist: create it, name another with "
                "ENGINE_MEMBERSHIP_NAMESPACE, or pin this process to orgs with --orgs"
            ) from None
        await self.pool.assign(lambda _: False)
        runner = sandbox_runner()
        runner.note_converter(self.client.data_converter)  # its heartbeats every 2 s, too
        self._worker = Worker(
            self.client,
            task_queue=self.options.task_queue,
            workflows=[MembershipWorkflow],
            workflow_runner=runner,
            max_cached_workflows=0,  # no sticky queue: a task never waits for a dead member
            max_concurrent_workflow_tasks=2,
        )
        self._tasks.append(asyncio.create_task(self._worker.run(), name="membership worker"))
        self._last_ok = time.monotonic()
        self._tasks.append(asyncio.create_task(self._beat_forever(), name="membership"))

    async def stop(self) -> None:
        """Leave the group (the orgs move at once), and stop the membership worker."""
        # Every wait here is bounded, so that a process always stops: a heartbeat cancelled
        # inside the SDK's update-with-start call was seen to take two minutes to end, and the
        # membership worker's shutdown never to end after that (it is then abandoned, as the
        # pool abandons an org's worker that does not stop).
        beats = self._tasks[1:]
        for task in beats:
            task.cancel()
        if beats:
            await asyncio.wait(beats, timeout=_STOP_LIMIT)
        await self.pool.assign(lambda _: False)
        with contextlib.suppress(TemporalError, asyncio.TimeoutError):
            handle = self.client.get_workflow_handle(self.workflow_id)
            async with asyncio.timeout(_STOP_LIMIT):
                await handle.execute_update(LEAVE, self.member_id)
        if self._worker is not None:
            try:
                async with asyncio.timeout(_STOP_LIMIT):
                    await self._worker.shutdown()
            except TimeoutError:
                log.error(
                    "membership %s: its worker did not stop within %ss; abandoning it",
                    self.group,
                    _STOP_LIMIT,
                )
        self._tasks.clear()

    async def beat(self) -> View:
        """One heartbeat: the group's view, which the pool's share follows (released orgs have
        stopped when this returns)."""
        sent = time.monotonic()
        operation: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
            MEMBERSHIP_WORKFLOW_TYPE,
            MembershipState(),
            id=self.workflow_id,
            task_queue=self.options.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            task_timeout=_TASK_TIMEOUT,
        )
        view: View = await self.client.execute_update_with_start_workflow(
            HEARTBEAT,
            Heartbeat(self.member_id, self._acked, self.options.ttl),
            start_workflow_operation=operation,
            result_type=View,
            rpc_timeout=timedelta(seconds=self.options.fence / 2),
        )
        self._last_ok = sent
        member = self.member_id
        await self.pool.assign(lambda org_id: view.serves(member, org_id))
        if self._fenced:
            log.warning("membership %s: reached the group again", self.group)
            self._fenced = False
        if self.view is None or view.epoch != self.view.epoch or view.settled != self.view.settled:
            log.info(
                "membership %s: epoch %s, %s members (settled %s)",
                self.group,
                view.epoch,
                len(view.members),
                len(view.settled),
            )
        self.view = view
        self._acked = view.epoch
        return view

    async def _beat_forever(self) -> None:
        options = self.options
        while True:
            acked = self._acked
            try:
                view = await self.beat()
            except Exception as error:  # an outage, a timeout: the fence decides
                log.warning("membership %s: heartbeat failed: %s", self.group, error)
                view = None
            if time.monotonic() - self._last_ok > options.fence and not self._fenced:
                log.error(
                    "membership %s: no heartbeat for %ss; serving nothing until the group "
                    "answers again",
                    self.group,
                    options.fence,
                )
                self._fenced = True
                await self.pool.assign(lambda _: False)
            # An epoch just acted on is acknowledged at once, so that views settle quickly.
            quick = view is not None and view.epoch != acked
            await asyncio.sleep(0.05 if quick else options.heartbeat)
