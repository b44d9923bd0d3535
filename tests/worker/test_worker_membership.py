"""Worker processes share the orgs among themselves: membership in a workflow, no org served
twice, and every org of a killed process served again within the stated bound."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from engine.stack import Stack
from engine.tenancy import Endpoint, PrefixResolver
from engine.worker import MembershipNamespaceError, MembershipOptions, WorkerOptions
from engine.workflow._membership import View, owner
from tests.helpers.devserver import DevServer
from tests.helpers.processes import PYTHON, ROOT
from tests.tenancy.orgkit import QUICK, Tenancy, open_tenancy, unique_prefix

MEMBER = ROOT / "tests" / "worker" / "member_process.py"
ORGS = 60
HEARTBEAT, TTL, FENCE = 0.5, 4.0, 2.0
BOUND = MembershipOptions(heartbeat=HEARTBEAT, ttl=TTL, fence=FENCE).unserved_bound
PROBE = 2.0  # the pool's probe period: the work of an org just given is found within it


def test_a_new_member_takes_orgs_only_from_nobody_else() -> None:
    orgs = [f"org-{i}" for i in range(500)]
    before = {o: owner(o, ["a", "b", "c"]) for o in orgs}
    after = {o: owner(o, ["a", "b", "c", "d"]) for o in orgs}
    moved = [o for o in orgs if before[o] != after[o]]
    assert moved and all(after[o] == "d" for o in moved)
    assert 80 < len(moved) < 170  # about a quarter
    gone = {o: owner(o, ["a", "c"]) for o in orgs}
    assert all(gone[o] == before[o] for o in orgs if before[o] != "b")


def test_while_a_view_settles_an_org_changing_hands_has_no_owner() -> None:
    view = View(epoch=2, members=["a", "b"], settled=["a"])
    moving = [o for o in (f"o{i}" for i in range(100)) if owner(o, ["a", "b"]) == "b"]
    assert moving
    assert not any(view.serves("a", o) or view.serves("b", o) for o in moving)
    settled = View(epoch=2, members=["a", "b"], settled=["a", "b"])
    assert all(settled.serves("b", o) and not settled.serves("a", o) for o in moving)


@dataclass
class _Process:
    process: subprocess.Popen[str]
    lines: list[dict[str, object]] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def active(self) -> list[str]:
        for line in reversed(self.lines):
            return list(line["active"])  # type: ignore[call-overload]
        return []

    async def read(self) -> None:
        assert self.process.stdout is not None
        stdout = self.process.stdout
        while True:
            line = await asyncio.to_thread(stdout.readline)
            if not line:
                return
            self.lines.append(json.loads(line))


@dataclass
class _Group:
    tenancy: Tenancy
    org_ids: list[str]
    members: list[_Process]
    readers: list[asyncio.Task[None]]

    def union(self) -> list[str]:
        return sorted(o for m in self.members if m.process.poll() is None for o in m.active)


def _start_member(address: str, prefix: str) -> _Process:
    process = subprocess.Popen(
        [PYTHON, str(MEMBER), address, prefix, str(HEARTBEAT), str(TTL), str(FENCE)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return _Process(process)


async def _until(condition: object, timeout: float, what: str) -> float:
    began = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - began > timeout:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - began


@pytest.fixture
async def group(temporal_server: DevServer) -> AsyncIterator[_Group]:
    prefix = unique_prefix("share")
    org_ids = [f"m{i:02d}" for i in range(ORGS)]
    tenancy = await open_tenancy(
        PrefixResolver(Endpoint(temporal_server.address), prefix), workers=False
    )
    gate = asyncio.Semaphore(8)

    async def provision(org_id: str) -> None:
        async with gate:
            await tenancy.provisioner.provision(org_id)

    await asyncio.gather(*(provision(o) for o in org_ids))
    members = [_start_member(temporal_server.address, prefix) for _ in range(3)]
    readers = [asyncio.create_task(m.read()) for m in members]
    try:
        yield _Group(tenancy, org_ids, members, readers)
    finally:
        for member in members:
            if member.process.poll() is None:
                assert member.process.stdin is not None
                member.process.stdin.close()
        for member in members:
            try:
                await asyncio.to_thread(member.process.wait, 20)
            except subprocess.TimeoutExpired:
                member.process.kill()
        for reader in readers:
            reader.cancel()
        await tenancy.close()


def _overlaps(members: list[_Process], killed: dict[int, float]) -> list[str]:
    """Each (org, two pids) whose intervals of a running worker overlapped in time."""
    spans: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for member in members:
        opened: dict[str, float] = {}
        end = killed.get(member.pid, float("inf"))
        for line in member.lines:
            now = float(line["t"])  # type: ignore[arg-type]
            active = set(line["active"])  # type: ignore[call-overload]
            for org in active - opened.keys():
                opened[org] = now
            for org in set(opened) - active:
                spans[org].append((opened.pop(org), now, member.pid))
        for org, began in opened.items():
            spans[org].append((began, end, member.pid))
    found = []
    for org, intervals in spans.items():
        intervals.sort()
        for i, (_, end, pid) in enumerate(intervals):
            for began, _, other in intervals[i + 1 :]:
                if other != pid and began < end:
                    found.append(f"{org}: pid {pid} until {end:.3f}, pid {other} from {began:.3f}")
    return found


@pytest.mark.timeout(240)
async def test_three_processes_share_sixty_orgs_and_survive_a_kill(group: _Group) -> None:
    everything = sorted(group.org_ids)

    def shared_once() -> bool:
        sets = [set(m.active) for m in group.members]
        return group.union() == everything and sum(map(len, sets)) == ORGS and all(sets)

    await _until(shared_once, 60, "the three processes share every org, each once")
    shares = sorted(len(m.active) for m in group.members)
    assert shares[0] >= 5, f"a very uneven share: {shares}"

    victim = max(group.members, key=lambda m: len(m.active))
    orphaned = victim.active
    os.kill(victim.pid, signal.SIGKILL)
    killed_at = time.monotonic()
    await asyncio.to_thread(victim.process.wait, 10)
    survivors = [m for m in group.members if m is not victim]

    # A run started in each of the dead process's orgs completes, within the bound.
    dispatcher = group.tenancy.dispatcher

    async def one(org_id: str) -> object:
        org = group.tenancy.org(org_id)
        run = await dispatcher.start(org, QUICK, {"n": 21})
        return await dispatcher.result(org, run.workflow_id)

    results = await asyncio.wait_for(
        asyncio.gather(*(one(o) for o in orphaned)), BOUND + PROBE + 10
    )
    served_again = time.monotonic() - killed_at
    assert results == [42] * len(orphaned)
    assert served_again <= BOUND + PROBE + 10, served_again
    await _until(
        lambda: sorted(o for m in survivors for o in m.active) == everything,
        BOUND + 10,
        "the survivors serve every org",
    )
    assert sum(len(m.active) for m in survivors) == ORGS

    assert _overlaps(group.members, {victim.pid: killed_at}) == []
    print(f"\norphaned {len(orphaned)} orgs; all served again {served_again:.1f} s after the kill")


async def test_a_missing_membership_namespace_is_named_at_start(temporal_server: DevServer) -> None:
    stack = Stack(
        PrefixResolver(Endpoint(temporal_server.address), unique_prefix("nons")),
        workers=WorkerOptions(graceful_shutdown_seconds=1),
        membership=MembershipOptions(namespace="no-such-namespace"),
    )
    try:
        with pytest.raises(MembershipNamespaceError, match="'no-such-namespace', which does not"):
            await stack.start()
    finally:
        await stack.close()


def test_sharing_needs_a_pool_that_is_not_pinned(temporal_server: DevServer) -> None:
    resolver = PrefixResolver(Endpoint(temporal_server.address), "x-")
    with pytest.raises(ValueError, match="not pinned"):
        Stack(resolver, workers=WorkerOptions(), orgs=["a"], membership=MembershipOptions())
    with pytest.raises(ValueError, match="not pinned"):
        Stack(resolver, membership=MembershipOptions())
