"""Isolation of organizations: one org can neither see nor drive another org's runs.

Orgs ``a`` and ``b`` live in namespaces of their own on the session dev server; every call goes
through the dispatcher with the org context the server's interceptor would build. A run of ``a``
is looked for by ``b`` with every operation the control plane offers, and must stay untouched.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from engine.context import OrgContext
from engine.dispatcher import InvalidRequestError, TemporalDispatcher, WorkflowNotFoundError
from engine.tenancy import Endpoint, OrgNotFoundError, PrefixResolver
from engine.workflow import ENGINE_ORG
from tests.helpers.devserver import start_dev_server
from tests.tenancy.orgkit import (
    ASK,
    FANOUT,
    Tenancy,
    definition,
    eventually,
    inbox,
    open_tenancy,
    unique_prefix,
    wait_for_action,
    wait_for_listed,
)


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _history_length(tenancy: Tenancy, org_id: str, workflow_id: str) -> int:
    client = await tenancy.client(org_id)
    handle = client.get_workflow_handle(workflow_id)
    return len([event async for event in handle.fetch_history_events()])


async def test_the_same_workflow_id_lives_in_both_orgs(two_orgs: Tenancy) -> None:
    a, b = two_orgs.org("a"), two_orgs.org("b")
    dispatcher = two_orgs.dispatcher
    workflow_id = _id("shared")

    started_a = await dispatcher.start(a, ASK, {"who": "alice"}, workflow_id=workflow_id)
    started_b = await dispatcher.start(b, ASK, {"who": "bob"}, workflow_id=workflow_id)

    assert started_a.workflow_id == started_b.workflow_id == workflow_id
    assert started_a.run_id != started_b.run_id
    action_a = await wait_for_action(dispatcher, a, workflow_id, "ask")
    action_b = await wait_for_action(dispatcher, b, workflow_id, "ask")
    assert action_a["parameters"]["message"] == "Greet alice?"
    assert action_b["parameters"]["message"] == "Greet bob?"
    assert (await dispatcher.status(a, workflow_id))["org_id"] == "a"
    assert (await dispatcher.status(b, workflow_id))["org_id"] == "b"
    for org_id in ("a", "b"):  # the search attribute carries each run's own org
        described = (
            await (await two_orgs.client(org_id)).get_workflow_handle(workflow_id).describe()
        )
        assert described.typed_search_attributes.get(ENGINE_ORG) == org_id

    # Finishing b's run leaves a's run of the same id waiting on its own action.
    advance = await dispatcher.submit_result(b, workflow_id, step_id="ask", result=True)
    assert advance["result"] == "hello bob"
    status_a = await dispatcher.status(a, workflow_id)
    assert status_a["status"] == "waiting"
    assert [x["action_id"] for x in status_a["pending_actions"]] == [action_a["action_id"]]

    await dispatcher.submit_result(a, workflow_id, step_id="ask", result=False)
    assert await dispatcher.result(a, workflow_id) == "no"
    assert await dispatcher.result(b, workflow_id) == "hello bob"


@dataclass
class _RunOfA:
    workflow_id: str
    action: dict[str, Any]


@pytest.fixture(scope="module")
async def run_of_a(two_orgs: Tenancy) -> AsyncIterator[_RunOfA]:
    """A run that exists in org ``a`` only, waiting on its confirm prompt."""
    a = two_orgs.org("a")
    workflow_id = _id("only-in-a")
    await two_orgs.dispatcher.start(a, ASK, {"who": "alice"}, workflow_id=workflow_id)
    action = await wait_for_action(two_orgs.dispatcher, a, workflow_id, "ask")
    yield _RunOfA(workflow_id, action)
    await two_orgs.dispatcher.cancel(a, workflow_id)


Call = Callable[[TemporalDispatcher, OrgContext, _RunOfA], Awaitable[Any]]

CALLS_FROM_B: dict[str, Call] = {
    "status": lambda d, b, run: d.status(b, run.workflow_id),
    "status of the exact run id": lambda d, b, run: d.status(
        b, run.workflow_id, run.action["run_id"]
    ),
    "result": lambda d, b, run: d.result(b, run.workflow_id),
    "submit_result by action id": lambda d, b, run: d.submit_result(
        b, run.workflow_id, action_id=run.action["action_id"], result=True
    ),
    "submit_result by step id": lambda d, b, run: d.submit_result(
        b, run.workflow_id, step_id="ask", result=True
    ),
    "signal submit_result": lambda d, b, run: d.signal(
        b, run.workflow_id, "submit_result", {"action_id": run.action["action_id"], "result": True}
    ),
    "signal cancel_workflow": lambda d, b, run: d.signal(
        b, run.workflow_id, "cancel_workflow", "from b"
    ),
    "cancel": lambda d, b, run: d.cancel(b, run.workflow_id, "from b"),
    "update_timeout": lambda d, b, run: d.update_timeout(b, run.workflow_id, "ask", 0),
}


@pytest.mark.parametrize("call", list(CALLS_FROM_B), ids=list(CALLS_FROM_B))
async def test_another_org_cannot_reach_a_run(
    two_orgs: Tenancy, run_of_a: _RunOfA, call: str
) -> None:
    a, b = two_orgs.org("a"), two_orgs.org("b")
    before = await _history_length(two_orgs, "a", run_of_a.workflow_id)

    with pytest.raises(WorkflowNotFoundError) as caught:
        await CALLS_FROM_B[call](two_orgs.dispatcher, b, run_of_a)

    # The error speaks of b's namespace only: nothing tells b that a's run exists.
    message = str(caught.value)
    assert f"run '{run_of_a.workflow_id}' not found in org 'b'" in message
    assert f"namespace '{b.namespace}'" in message
    assert a.namespace not in message
    # a's run is untouched: same action waiting, not one event added to its history.
    status = await two_orgs.dispatcher.status(a, run_of_a.workflow_id)
    assert status["status"] == "waiting"
    assert [x["action_id"] for x in status["pending_actions"]] == [run_of_a.action["action_id"]]
    assert await _history_length(two_orgs, "a", run_of_a.workflow_id) == before


async def test_another_org_neither_lists_nor_sees_pending_actions(
    two_orgs: Tenancy, run_of_a: _RunOfA
) -> None:
    a, b = two_orgs.org("a"), two_orgs.org("b")
    dispatcher = two_orgs.dispatcher
    # Once a's own inbox shows the action, visibility has caught up: b's views are settled too.
    await eventually(
        lambda: inbox(dispatcher, a),
        lambda actions: run_of_a.action["action_id"] in [x["action_id"] for x in actions],
        what="a's action in a's inbox",
    )
    listed_a = await dispatcher.list(a, include_children=True)
    assert run_of_a.workflow_id in [r.workflow_id for r in listed_a.runs]

    listed_b = await dispatcher.list(b, include_children=True)
    assert run_of_a.workflow_id not in [r.workflow_id for r in listed_b.runs]
    assert all(r.org_id == "b" for r in listed_b.runs)
    # A filter of b's cannot widen the listing to a's org: it cannot name the org at all, nor
    # break out of its parentheses, and naming a's run finds nothing in b's namespace.
    for escape in ("EngineOrg = 'a'", "EngineOrg = 'a') OR (EngineOrg = 'a'"):
        with pytest.raises(InvalidRequestError):
            await dispatcher.list(b, query=escape)
    sneaky = await dispatcher.list(b, query=f"WorkflowId = '{run_of_a.workflow_id}'")
    assert sneaky.runs == []
    inbox_b = await inbox(dispatcher, b)
    assert run_of_a.action["action_id"] not in [x["action_id"] for x in inbox_b]
    assert all(x["workflow_id"] != run_of_a.workflow_id for x in inbox_b)


async def test_an_org_context_cannot_point_at_another_namespace(
    two_orgs: Tenancy, run_of_a: _RunOfA
) -> None:
    a = two_orgs.org("a")
    # Org b claiming a's namespace (a forged or confused context) is refused, not routed.
    forged = OrgContext("b", a.namespace)
    with pytest.raises(OrgNotFoundError) as caught:
        await two_orgs.dispatcher.status(forged, run_of_a.workflow_id)
    assert str(caught.value) == (
        f"org 'b' is served by namespace '{two_orgs.org('b').namespace}', not '{a.namespace}'"
    )
    with pytest.raises(OrgNotFoundError):
        await two_orgs.dispatcher.start(forged, ASK, workflow_id=_id("forged"))
    with pytest.raises(OrgNotFoundError):
        await two_orgs.dispatcher.list(forged)


async def test_foreach_children_stay_in_their_org_namespace(two_orgs: Tenancy) -> None:
    a, b = two_orgs.org("a"), two_orgs.org("b")
    dispatcher = two_orgs.dispatcher
    workflow_id = _id("fanout")
    await dispatcher.start(a, FANOUT, workflow_id=workflow_id)
    status = await eventually(
        lambda: dispatcher.status(a, workflow_id),
        lambda s: len(s["pending_actions"]) == 3,
        what="three child actions",
    )
    children = sorted({x["workflow_id"] for x in status["pending_actions"]})
    assert children == [f"{workflow_id}/each/{i}" for i in range(3)]

    client_a, client_b = await two_orgs.client("a"), await two_orgs.client("b")
    namespace_a = await client_a.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=a.namespace)
    )
    for child in children:
        described = await client_a.get_workflow_handle(child).describe()
        assert described.status == WorkflowExecutionStatus.RUNNING
        assert described.parent_id == workflow_id
        # The server's own record: the child's parent lives in a's namespace.
        assert described.raw_info.parent_namespace_id == namespace_a.namespace_info.id
        assert described.typed_search_attributes.get(ENGINE_ORG) == "a"
        with pytest.raises(RPCError) as missing:
            await client_b.get_workflow_handle(child).describe()
        assert missing.value.status == RPCStatusCode.NOT_FOUND
        with pytest.raises(WorkflowNotFoundError):
            await dispatcher.status(b, child)

    # Visibility: the children carry org a, are listed for a with their parent, never for b.
    listed = await wait_for_listed(
        dispatcher,
        a,
        lambda runs: set(children) <= {r.workflow_id for r in runs},
        include_children=True,
    )
    for run in listed:
        assert run.org_id == "a"
        if run.workflow_id in children:
            assert run.parent_workflow_id == workflow_id
    top_level = await dispatcher.list(a)
    assert not set(children) & {r.workflow_id for r in top_level.runs}
    listed_b = await dispatcher.list(b, include_children=True)
    assert not set(children) & {r.workflow_id for r in listed_b.runs}
    raw = [e.id async for e in client_a.list_workflows("EngineOrg != 'a'")]
    assert raw == []

    for action in status["pending_actions"]:
        await dispatcher.submit_result(
            a, action["workflow_id"], action_id=action["action_id"], result=action["workflow_id"]
        )
    assert await dispatcher.result(a, workflow_id) == children


# -- continue-as-new ------------------------------------------------------------------------

SUGGEST_AFTER = 8
"""History events after which this module's own server suggests continuing as new: the first
run of LONG crosses it at its wait (the dev server's timers fire after a second at best)."""

LONG = definition(
    """
name: long
version: 1
steps:
  - {id: pause, type: wait, duration: 0.1s}
  - {id: ask, type: prompt, prompt_type: confirm, message: "Done?", output_to: ok}
  - {id: done, type: return, value: "${{ state.ok }}"}
"""
)


@pytest.fixture(scope="module")
async def short_history() -> AsyncIterator[Tenancy]:
    """Orgs a and b on a dev server that suggests continue-as-new after a few events."""
    server = await start_dev_server(
        dynamic_config=[f"limit.historyCount.suggestContinueAsNew={SUGGEST_AFTER}"]
    )
    try:
        resolver = PrefixResolver(Endpoint(server.address), unique_prefix("can"))
        tenancy = await open_tenancy(resolver, orgs=("a", "b"))
        try:
            yield tenancy
        finally:
            await tenancy.close()
    finally:
        server.stop()


async def test_a_continued_as_new_run_stays_in_its_org_namespace(
    short_history: Tenancy,
) -> None:
    a, b = short_history.org("a"), short_history.org("b")
    dispatcher = short_history.dispatcher
    workflow_id = _id("long")
    first = await dispatcher.start(a, LONG, workflow_id=workflow_id)

    await wait_for_action(dispatcher, a, workflow_id, "ask")
    status = await dispatcher.status(a, workflow_id)
    assert status["continued"] >= 1, "the run never continued as new: the test proves nothing"
    assert status["run_id"] != first.run_id
    assert status["org_id"] == "a"

    client_a, client_b = await short_history.client("a"), await short_history.client("b")
    current = await client_a.get_workflow_handle(workflow_id).describe()
    assert current.run_id == status["run_id"]
    assert current.typed_search_attributes.get(ENGINE_ORG) == "a"
    opening = await client_a.get_workflow_handle(workflow_id, run_id=first.run_id).describe()
    assert opening.status == WorkflowExecutionStatus.CONTINUED_AS_NEW
    with pytest.raises(RPCError) as missing:
        await client_b.get_workflow_handle(workflow_id).describe()
    assert missing.value.status == RPCStatusCode.NOT_FOUND
    with pytest.raises(WorkflowNotFoundError):
        await dispatcher.status(b, workflow_id)

    # Listed once (the live run), waiting, with org a; never for b.
    listed = await wait_for_listed(
        dispatcher,
        a,
        lambda runs: [(r.workflow_id, r.status) for r in runs] == [(workflow_id, "waiting")],
    )
    assert listed[0].run_id == status["run_id"]
    assert listed[0].org_id == "a"
    assert (await dispatcher.list(b)).runs == []

    await dispatcher.submit_result(a, workflow_id, step_id="ask", result=True)
    assert await dispatcher.result(a, workflow_id) is True
