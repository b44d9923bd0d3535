"""The membership of the worker processes that share the organizations: a workflow in Temporal.

Every worker process of a group (the processes serving the same orgs: the same namespace prefix
and task queue) is a *member*. Each sends a heartbeat (an update of this workflow) every few
seconds, and the answer is the group's *view*: the members in it, numbered by an *epoch* that
grows whenever a member joins, leaves, or misses heartbeats for longer than its ``ttl``.

An org's owner in a view is the member that ranks first for it by rendezvous hashing
(:func:`owner`), so a change of view moves only the orgs of the member that came or went. A
move must not have two members serve one org at once, so a member serves an org only while it
owns it both in the newest view and in the last *settled* view: the newest view that every
member in it has acknowledged. A member acknowledges an epoch in its next heartbeat once it
serves nothing the view does not give it (the orgs it loses are stopped first). So while a view
settles, an org changing hands is served by nobody, and once it has settled, by its new owner.

All of this is the workflow's state: a process keeps nothing of the group but its own last
answer. The workflow continues as new with its state before its history grows long.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from temporalio import workflow

__all__ = [
    "HEARTBEAT",
    "LEAVE",
    "MEMBERSHIP_WORKFLOW_TYPE",
    "Heartbeat",
    "MembershipState",
    "MembershipWorkflow",
    "View",
    "owner",
]

MEMBERSHIP_WORKFLOW_TYPE: Final = "engine.membership"
HEARTBEAT: Final = "heartbeat"
LEAVE: Final = "leave"
_HISTORY_LIMIT: Final = 2_000
"""Events after which the workflow continues as new (each heartbeat adds about five)."""


def owner(org_id: str, members: Sequence[str]) -> str | None:
    """The member that serves ``org_id`` in a view of ``members`` (rendezvous hashing)."""
    if not members:
        return None
    return max(members, key=lambda m: hashlib.sha256(f"{m}\0{org_id}".encode()).digest())


@dataclass
class Heartbeat:
    """A member says it is alive, and which epoch it has acted on.

    Attributes:
        member: The member's id (unique per process and start).
        acked: The newest epoch whose view the member now serves within (0: none yet).
        ttl: Seconds without a heartbeat after which the member counts as gone.
    """

    member: str
    acked: int = 0
    ttl: float = 15.0


@dataclass
class View:
    """The group as the workflow sees it, returned to every heartbeat.

    Attributes:
        epoch: Grows with every change of the members.
        members: The members of the newest view, sorted.
        settled: The members of the newest view every member of it acknowledged.
    """

    epoch: int
    members: list[str]
    settled: list[str]

    def serves(self, member: str, org_id: str) -> bool:
        """Whether ``member`` may serve ``org_id`` now: its owner in both views."""
        return owner(org_id, self.members) == member and owner(org_id, self.settled) == member


@dataclass
class _Member:
    seen: float
    ttl: float
    acked: int = 0


@dataclass
class MembershipState:
    """What the workflow carries across continue-as-new."""

    epoch: int = 0
    members: dict[str, _Member] = field(default_factory=dict)
    settled: list[str] = field(default_factory=list)


@workflow.defn(name=MEMBERSHIP_WORKFLOW_TYPE)
class MembershipWorkflow:
    """The members of one group of worker processes, and their views (see the module)."""

    @workflow.init
    def __init__(self, state: MembershipState | None = None) -> None:
        self._state = state or MembershipState()

    @workflow.run
    async def run(self, state: MembershipState | None = None) -> None:
        await workflow.wait_condition(
            lambda: (
                workflow.info().get_current_history_length() > _HISTORY_LIMIT
                or workflow.info().is_continue_as_new_suggested()
            )
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._state)

    @workflow.update(name=HEARTBEAT)
    def heartbeat(self, beat: Heartbeat) -> View:
        state = self._state
        now = workflow.now().timestamp()
        changed = self._expire(now, keep=beat.member)
        member = state.members.get(beat.member)
        if member is None:
            member = state.members[beat.member] = _Member(now, beat.ttl)
            changed = True
        if changed:
            state.epoch += 1
        member.seen, member.ttl = now, beat.ttl
        member.acked = min(beat.acked, state.epoch)
        return self._view()

    @workflow.update(name=LEAVE)
    def leave(self, member: str) -> View:
        """A member stopped serving and leaves (its orgs move without waiting for its ttl)."""
        state = self._state
        if state.members.pop(member, None) is not None:
            state.epoch += 1
        return self._view()

    def _expire(self, now: float, keep: str) -> bool:
        members = self._state.members
        gone = [m for m, info in members.items() if m != keep and now - info.seen > info.ttl]
        for name in gone:
            del members[name]
        return bool(gone)

    def _view(self) -> View:
        state = self._state
        names = sorted(state.members)
        if all(info.acked == state.epoch for info in state.members.values()):
            state.settled = names
        return View(state.epoch, names, list(state.settled))
