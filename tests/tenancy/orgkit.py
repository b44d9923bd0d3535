"""A tenancy stack for tests: the engine's own :class:`~engine.stack.Stack`, and helpers.

Imported by the tests of tenancy, the worker pool, the dispatcher, the scheduler, the CLI and
the server. Every module provisions its orgs under its own namespace prefix
(:func:`unique_prefix`), so modules sharing the session dev server never see each other's orgs,
and a pool's discovery finds only its module's orgs.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.client import Client

from engine.context import OrgContext
from engine.definition import WorkflowDefinition, load_definition
from engine.dispatcher import RunSummary, TemporalDispatcher
from engine.stack import Stack
from engine.tenancy import NamespaceResolver
from engine.worker import WorkerOptions

T = TypeVar("T")

TASK_QUEUE = "engine"
"""The interpreter's task queue in every org namespace (the engine's default)."""

ASK = load_definition(
    """
name: ask
version: 1
inputs:
  who: {type: string, default: world}
steps:
  - {id: ask, type: prompt, prompt_type: confirm, message: "Greet ${{ inputs.who }}?",
     output_to: ok}
  - {id: done, type: return, value: "${{ state.ok ? 'hello ' + inputs.who : 'no' }}"}
"""
)
"""One confirm prompt, then a greeting: the smallest run that waits for an executor."""

FANOUT = load_definition(
    """
name: fanout
version: 1
steps:
  - id: each
    type: foreach
    items: '["x", "y", "z"]'
    as: item
    max_parallel: 3
    steps:
      - {id: name_item, type: prompt, prompt_type: text, message: "Name ${{ item }}",
         output_to: name}
    output_to: names
  - {id: done, type: return, value: "${{ state.names }}"}
"""
)
"""A foreach of three items, each a child run waiting on a text prompt."""

QUICK = load_definition(
    """
name: quick
version: 1
inputs:
  n: {type: integer, default: 1}
steps:
  - {id: double, type: set_state, set: {twice: "${{ inputs.n * 2 }}"}}
  - {id: done, type: return, value: "${{ state.twice }}"}
"""
)
"""No external step: completes as soon as a worker runs it."""


def unique_prefix(tag: str) -> str:
    """A namespace prefix no other module (or earlier session) uses."""
    return f"t-{tag}-{uuid.uuid4().hex[:6]}-"


class Tenancy(Stack):
    """A stack with a worker pool, as ``engined`` builds it, and helpers to reach its orgs."""

    def org(self, org_id: str) -> OrgContext:
        """The org context the server's interceptor would build for ``org_id``."""
        return OrgContext(org_id, self.resolver.resolve(org_id).namespace)

    async def client(self, org_id: str) -> Client:
        """The (shared-connection) client of the org's namespace."""
        return await self.clients.client(self.resolver.resolve(org_id))


def worker_options() -> WorkerOptions:
    # Webhooks are looked for every second (not every 30 s): a test sets one and expects it.
    return WorkerOptions(workflow_task_threads=4, graceful_shutdown_seconds=2, webhook_check=1.0)


async def open_tenancy(
    resolver: NamespaceResolver,
    *,
    orgs: Iterable[str] = (),
    refresh_interval: float | None = None,
    shard: Iterable[str] | None = None,
    workers: bool = True,
    action_lease: timedelta | None = None,
) -> Tenancy:
    """Start a stack (with its worker pool, unless ``workers`` is False) and provision ``orgs``
    (concurrently: each takes a second or two)."""
    tenancy = Tenancy(
        resolver,
        task_queue=TASK_QUEUE,
        workers=worker_options() if workers else None,
        orgs=None if shard is None else frozenset(shard),
        refresh_interval=refresh_interval,
        action_lease=action_lease,
    )
    try:
        await tenancy.start()
        await asyncio.gather(*(tenancy.provisioner.provision(org_id) for org_id in orgs))
    except BaseException:
        await tenancy.close()
        raise
    return tenancy


async def eventually(
    probe: Callable[[], Awaitable[T]],
    predicate: Callable[[T], bool],
    *,
    timeout: float = 20.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Call ``probe`` until ``predicate`` holds for its value (errors count as not yet)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            value = await probe()
            if predicate(value):
                return value
            last = value
        except Exception as error:  # not started yet, not visible yet: try again
            last = error
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s; last: {last!r}")
        await asyncio.sleep(interval)


async def wait_for_action(
    dispatcher: TemporalDispatcher,
    org: OrgContext,
    workflow_id: str,
    step_id: str,
    *,
    timeout: float = 20.0,
) -> dict[str, Any]:
    """Wait until the run (or its foreach tree) has a pending action of ``step_id``."""
    status = await eventually(
        lambda: dispatcher.status(org, workflow_id),
        lambda s: any(a["step_id"] == step_id for a in s["pending_actions"]),
        timeout=timeout,
        what=f"a pending action of step {step_id!r} in run {workflow_id!r}",
    )
    action: dict[str, Any] = next(a for a in status["pending_actions"] if a["step_id"] == step_id)
    return action


async def wait_for_listed(
    dispatcher: TemporalDispatcher,
    org: OrgContext,
    predicate: Callable[[list[RunSummary]], bool],
    *,
    timeout: float = 20.0,
    **filters: Any,
) -> list[RunSummary]:
    """Poll ``dispatcher.list`` (visibility is eventually consistent) until ``predicate``."""

    async def runs() -> list[RunSummary]:
        return (await dispatcher.list(org, **filters)).runs

    return await eventually(runs, predicate, timeout=timeout, what=f"a listing {filters}")


async def inbox(
    dispatcher: TemporalDispatcher, org: OrgContext, **filters: Any
) -> list[dict[str, Any]]:
    """Every pending action of the org's inbox, page after page (filters as the dispatcher's)."""
    actions: list[dict[str, Any]] = []
    token: bytes | None = None
    while True:
        page = await dispatcher.pending_actions(org, page_token=token, **filters)
        actions.extend(dict(action) for action in page.actions)
        token = page.next_page_token
        if token is None:
            return actions


def definition(text: str) -> WorkflowDefinition:
    return load_definition(text)
