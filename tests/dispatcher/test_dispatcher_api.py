"""The dispatcher's API against a real dev server: start, read, list, drive, watch.

Every call goes through :class:`TemporalDispatcher` with the org context the control plane
would build; raw Temporal clients are used only to look at what the dispatcher did.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import uuid
from collections import Counter
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import CancelledError

from engine.context import OrgContext
from engine.definition import InputError
from engine.dispatcher import (
    DefinitionNotFoundError,
    DefinitionRef,
    InvalidRequestError,
    SubmissionRejectedError,
    WorkflowAlreadyFinishedError,
    WorkflowAlreadyStartedError,
)
from engine.tenancy import OrgNotFoundError
from tests.tenancy.orgkit import (
    ASK,
    FANOUT,
    QUICK,
    TASK_QUEUE,
    Tenancy,
    definition,
    eventually,
    inbox,
    wait_for_action,
    wait_for_listed,
)


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _where(api: Tenancy, org_id: str) -> str:
    return f"org '{org_id}' (namespace '{api.org(org_id).namespace}')"


async def _history_length(api: Tenancy, org_id: str, workflow_id: str) -> int:
    handle = (await api.client(org_id)).get_workflow_handle(workflow_id)
    return len([event async for event in handle.fetch_history_events()])


# -- start ----------------------------------------------------------------------------------


async def test_a_repeated_request_id_returns_the_run_it_started(api: Tenancy) -> None:
    d = api.org("d")
    request_id = _id("req")

    first = await api.dispatcher.start(d, ASK, {"who": "ann"}, request_id=request_id)
    again = await api.dispatcher.start(d, ASK, {"who": "ann"}, request_id=request_id)
    raced = await asyncio.gather(
        *(api.dispatcher.start(d, ASK, {"who": "ann"}, request_id=request_id) for _ in range(5))
    )

    digest = hashlib.sha256(request_id.encode()).hexdigest()[:20]
    assert first.workflow_id == f"ask-{digest}"  # derived from the request id: retry-safe
    assert first.workflow_type == "ask:1"
    assert again == first
    assert all(run == first for run in raced)

    # Still the same run once it has finished: a late retry does not start it again.
    await wait_for_action(api.dispatcher, d, first.workflow_id, "ask")
    await api.dispatcher.submit_result(d, first.workflow_id, step_id="ask", result=True)
    assert await api.dispatcher.result(d, first.workflow_id) == "hello ann"
    assert await api.dispatcher.start(d, ASK, {"who": "ann"}, request_id=request_id) == first
    client = await api.client("d")
    runs = [r async for r in client.list_workflows(f"WorkflowId = '{first.workflow_id}'")]
    assert len(runs) <= 1  # visibility may lag, but there is never a second run


async def test_another_request_for_a_taken_workflow_id_is_refused(api: Tenancy) -> None:
    d = api.org("d")
    workflow_id = _id("taken")
    first = await api.dispatcher.start(d, ASK, workflow_id=workflow_id, request_id=_id("req"))

    with pytest.raises(WorkflowAlreadyStartedError) as caught:
        await api.dispatcher.start(d, ASK, workflow_id=workflow_id, request_id=_id("req"))

    assert str(caught.value) == f"run '{workflow_id}' is already running in {_where(api, 'd')}"
    assert (await api.dispatcher.status(d, workflow_id))["run_id"] == first.run_id
    await api.dispatcher.cancel(d, workflow_id)


async def test_start_and_wait_follows_the_same_request_id_rules(api: Tenancy) -> None:
    d = api.org("d")
    workflow_id = _id("waited")
    request_id = _id("req")
    first, advance = await api.dispatcher.start_and_wait(
        d, ASK, {"who": "bo"}, workflow_id=workflow_id, request_id=request_id
    )
    assert advance["status"] == "waiting"
    assert [a["step_id"] for a in advance["pending_actions"]] == ["ask"]

    # The same request again: the same run, still waiting on the same action.
    again, repeated = await api.dispatcher.start_and_wait(
        d, ASK, {"who": "bo"}, workflow_id=workflow_id, request_id=request_id
    )
    assert again == first
    assert [a["action_id"] for a in repeated["pending_actions"]] == [
        a["action_id"] for a in advance["pending_actions"]
    ]

    # Another request for the same id never receives this request's run.
    with pytest.raises(WorkflowAlreadyStartedError):
        await api.dispatcher.start_and_wait(
            d, ASK, {"who": "bo"}, workflow_id=workflow_id, request_id=_id("req")
        )
    assert (await api.dispatcher.status(d, workflow_id))["run_id"] == first.run_id
    await api.dispatcher.cancel(d, workflow_id)


async def test_without_a_request_id_a_running_workflow_id_is_refused(api: Tenancy) -> None:
    d = api.org("d")
    workflow_id = _id("once")
    first = await api.dispatcher.start(d, ASK, workflow_id=workflow_id)

    with pytest.raises(WorkflowAlreadyStartedError) as caught:
        await api.dispatcher.start(d, ASK, workflow_id=workflow_id)
    assert str(caught.value) == f"run '{workflow_id}' is already running in {_where(api, 'd')}"
    assert caught.value.code == "ALREADY_EXISTS"

    # Once it has ended, the id may be used again: a new run.
    await wait_for_action(api.dispatcher, d, workflow_id, "ask")
    await api.dispatcher.submit_result(d, workflow_id, step_id="ask", result=False)
    await api.dispatcher.result(d, workflow_id)
    second = await api.dispatcher.start(d, ASK, workflow_id=workflow_id)
    assert second.run_id != first.run_id
    await api.dispatcher.cancel(d, workflow_id)


async def test_start_refuses_bad_inputs_and_unknown_definitions(api: Tenancy) -> None:
    d = api.org("d")
    with pytest.raises(InputError):
        await api.dispatcher.start(d, ASK, {"who": 5})
    with pytest.raises(InputError):
        await api.dispatcher.start(d, ASK, {"whom": "x"})
    with pytest.raises(DefinitionNotFoundError, match="definition 'ask' is not registered in org"):
        await api.dispatcher.start(d, DefinitionRef("ask"))


# -- status and result ----------------------------------------------------------------------


async def test_status_reports_the_run_its_step_and_its_action(api: Tenancy) -> None:
    d = api.org("d")
    run = await api.dispatcher.start(d, ASK, {"who": "cy"}, workflow_id=_id("status"))
    action = await wait_for_action(api.dispatcher, d, run.workflow_id, "ask")

    status = await api.dispatcher.status(d, run.workflow_id)

    assert status["workflow_id"] == run.workflow_id
    assert status["run_id"] == run.run_id
    assert status["workflow_type"] == "ask:1"
    assert status["definition"]["name"] == "ask"
    assert status["org_id"] == "d"
    assert status["status"] == "waiting"
    assert status["current_step"] == "ask"
    assert status["pending_actions"] == [action]
    assert action["type"] == "prompt"
    assert action["parameters"]["message"] == "Greet cy?"
    assert action["workflow_id"] == run.workflow_id
    # The exact run id reads the same run.
    assert (await api.dispatcher.status(d, run.workflow_id, run.run_id))["run_id"] == run.run_id
    await api.dispatcher.submit_result(d, run.workflow_id, step_id="ask", result=True)
    assert await api.dispatcher.result(d, run.workflow_id, run.run_id) == "hello cy"
    assert (await api.dispatcher.status(d, run.workflow_id))["status"] == "completed"


# -- list -----------------------------------------------------------------------------------


async def test_list_filters_by_status_and_definition_and_pages(api: Tenancy) -> None:
    org = api.org("lists")
    dispatcher = api.dispatcher
    quick = [await dispatcher.start(org, QUICK, {"n": i}) for i in range(5)]
    asks = [await dispatcher.start(org, ASK) for _ in range(2)]
    quick_ids = {r.workflow_id for r in quick}
    ask_ids = {r.workflow_id for r in asks}
    for run in quick:
        await dispatcher.result(org, run.workflow_id)

    completed = await wait_for_listed(
        dispatcher, org, lambda runs: {r.workflow_id for r in runs} == quick_ids, status="completed"
    )
    waiting = await wait_for_listed(
        dispatcher, org, lambda runs: {r.workflow_id for r in runs} == ask_ids, status="waiting"
    )
    assert {(r.status, r.definition, r.org_id) for r in completed} == {
        ("completed", "quick", "lists")
    }
    assert {(r.status, r.current_step, r.definition) for r in waiting} == {
        ("waiting", "ask", "ask")
    }
    by_definition = await dispatcher.list(org, definition="ask")
    assert {r.workflow_id for r in by_definition.runs} == ask_ids
    assert (await dispatcher.list(org, definition="quick", status="waiting")).runs == []
    assert (await dispatcher.list(org, status="running")).runs == []

    # Pages of two: every run exactly once, most recently closed first, and no token after
    # the last page.
    pages: list[list[str]] = []
    token: bytes | None = None
    closes: list[Any] = []
    while True:
        page = await dispatcher.list(org, definition="quick", page_size=2, page_token=token)
        pages.append([r.workflow_id for r in page.runs])
        closes += [r.close_time for r in page.runs]
        token = page.next_page_token
        if token is None:
            break
        assert len(pages) < 10, "paging does not end"
    assert [len(p) for p in pages] in ([2, 2, 1], [2, 2, 1, 0])
    flat = [workflow_id for p in pages for workflow_id in p]
    assert sorted(flat) == sorted(quick_ids)
    assert closes == sorted(closes, reverse=True)

    for run in asks:
        await dispatcher.cancel(org, run.workflow_id)
    cancelled = await wait_for_listed(
        dispatcher, org, lambda runs: {r.workflow_id for r in runs} == ask_ids, status="cancelled"
    )
    assert {r.status for r in cancelled} == {"cancelled"}


async def test_list_includes_foreach_children_only_when_asked(api: Tenancy) -> None:
    org = api.org("d")
    run = await api.dispatcher.start(org, FANOUT, workflow_id=_id("tree"))
    children = {f"{run.workflow_id}/each/{i}" for i in range(3)}

    everything = await wait_for_listed(
        api.dispatcher,
        org,
        lambda runs: children | {run.workflow_id} <= {r.workflow_id for r in runs},
        include_children=True,
    )
    assert {r.parent_workflow_id for r in everything if r.workflow_id in children} == {
        run.workflow_id
    }
    top = {r.workflow_id for r in (await api.dispatcher.list(org, definition="fanout")).runs}
    assert run.workflow_id in top
    assert not children & top
    waiting_children = await wait_for_listed(
        api.dispatcher,
        org,
        lambda runs: children <= {r.workflow_id for r in runs},
        status="waiting",
        include_children=True,
        definition="fanout",
    )
    assert {r.current_step for r in waiting_children if r.workflow_id in children} == {"name_item"}
    await api.dispatcher.cancel(org, run.workflow_id)


async def test_a_run_closed_by_temporal_is_not_listed_as_waiting(api: Tenancy) -> None:
    org = api.org("d")
    run = await api.dispatcher.start(org, ASK, workflow_id=_id("terminated"))
    await wait_for_action(api.dispatcher, org, run.workflow_id, "ask")
    await wait_for_listed(
        api.dispatcher,
        org,
        lambda runs: run.workflow_id in {r.workflow_id for r in runs},
        status="waiting",
    )
    # An operator terminates it with Temporal's own tools: its EngineStatus still says waiting.
    client = await api.client("d")
    await client.get_workflow_handle(run.workflow_id).terminate("operator")

    failed = await wait_for_listed(
        api.dispatcher,
        org,
        lambda runs: run.workflow_id in {r.workflow_id for r in runs},
        status="failed",
    )
    summary = next(r for r in failed if r.workflow_id == run.workflow_id)
    assert summary.status == "failed"
    waiting = await api.dispatcher.list(org, status="waiting")
    assert run.workflow_id not in {r.workflow_id for r in waiting.runs}
    listed = await inbox(api.dispatcher, org)
    assert run.workflow_id not in {a["workflow_id"] for a in listed}


async def test_list_refuses_a_bad_status_or_page_size(api: Tenancy) -> None:
    org = api.org("lists")
    with pytest.raises(InvalidRequestError) as caught:
        await api.dispatcher.list(org, status="done")
    assert str(caught.value) == (
        "unknown status 'done': use one of running, waiting, completed, failed, cancelled"
    )
    for size in (0, 1001):
        with pytest.raises(InvalidRequestError, match="page_size must be between 1 and 1000"):
            await api.dispatcher.list(org, page_size=size)


# -- submit_result, signal, cancel, update_timeout ------------------------------------------


async def test_submit_result_rejects_without_touching_history(api: Tenancy) -> None:
    d = api.org("d")
    run = await api.dispatcher.start(d, ASK, workflow_id=_id("submit"))
    action = await wait_for_action(api.dispatcher, d, run.workflow_id, "ask")
    before = await _history_length(api, "d", run.workflow_id)

    rejections: dict[str, dict[str, Any]] = {
        "a confirm prompt takes true or false, got 'yes'": {"step_id": "ask", "result": "yes"},
        "no pending action 'nope' in this run": {"action_id": "nope", "result": True},
        "step 'done' is not waiting for a result": {"step_id": "done", "result": True},
    }
    for message, submission in rejections.items():
        with pytest.raises(SubmissionRejectedError) as caught:
            await api.dispatcher.submit_result(d, run.workflow_id, **submission)
        assert str(caught.value) == message
        assert caught.value.code == "INVALID_ARGUMENT"
    with pytest.raises(InvalidRequestError, match="give action_id or step_id"):
        await api.dispatcher.submit_result(d, run.workflow_id, result=True)
    assert await _history_length(api, "d", run.workflow_id) == before

    advance = await api.dispatcher.submit_result(
        d, run.workflow_id, action_id=action["action_id"], result=True
    )
    assert advance["status"] == "completed"
    assert advance["result"] == "hello world"
    assert advance["pending_actions"] == []

    with pytest.raises(WorkflowAlreadyFinishedError) as finished:
        await api.dispatcher.submit_result(
            d, run.workflow_id, action_id=action["action_id"], result=True
        )
    assert str(finished.value) == (
        f"run '{run.workflow_id}' in {_where(api, 'd')} has already ended"
    )


async def test_signals_by_name(api: Tenancy) -> None:
    d = api.org("d")
    run = await api.dispatcher.start(d, ASK, workflow_id=_id("signal"))
    action = await wait_for_action(api.dispatcher, d, run.workflow_id, "ask")
    before = await _history_length(api, "d", run.workflow_id)

    with pytest.raises(InvalidRequestError) as caught:
        await api.dispatcher.signal(d, run.workflow_id, "report_actions", {})
    assert str(caught.value) == (
        "unknown signal 'report_actions': use one of cancel_workflow, send_event, submit_result, "
        "update_timeout"
    )
    assert await _history_length(api, "d", run.workflow_id) == before

    await api.dispatcher.signal(
        d, run.workflow_id, "submit_result", {"action_id": action["action_id"], "result": True}
    )
    assert await api.dispatcher.result(d, run.workflow_id) == "hello world"
    with pytest.raises(WorkflowAlreadyFinishedError):
        await api.dispatcher.signal(d, run.workflow_id, "cancel_workflow", "late")


async def test_the_cancel_workflow_signal_ends_the_run_cancelled(api: Tenancy) -> None:
    d = api.org("d")
    run = await api.dispatcher.start(d, ASK, workflow_id=_id("signal-cancel"))
    await wait_for_action(api.dispatcher, d, run.workflow_id, "ask")

    await api.dispatcher.signal(d, run.workflow_id, "cancel_workflow", "changed my mind")

    status = await eventually(
        lambda: api.dispatcher.status(d, run.workflow_id),
        lambda s: s["status"] == "cancelled",
        what="the run cancelled",
    )
    assert status["error"] == "cancelled: changed my mind"
    assert status["pending_actions"] == []
    listed = await wait_for_listed(
        api.dispatcher,
        d,
        lambda runs: run.workflow_id in {r.workflow_id for r in runs},
        status="cancelled",
    )
    assert next(r for r in listed if r.workflow_id == run.workflow_id).status == "cancelled"


async def test_cancel_ends_the_run_canceled_and_only_once(api: Tenancy) -> None:
    d = api.org("d")
    run = await api.dispatcher.start(d, ASK, workflow_id=_id("cancel"))
    await wait_for_action(api.dispatcher, d, run.workflow_id, "ask")

    await api.dispatcher.cancel(d, run.workflow_id, "no longer needed")

    with pytest.raises(WorkflowFailureError) as failure:
        await api.dispatcher.result(d, run.workflow_id)
    assert isinstance(failure.value.cause, CancelledError)
    described = await (await api.client("d")).get_workflow_handle(run.workflow_id).describe()
    assert described.status == WorkflowExecutionStatus.CANCELED
    status = await api.dispatcher.status(d, run.workflow_id)
    assert status["status"] == "cancelled"
    assert status["pending_actions"] == []
    assert status["history"][-1]["outcome"] == "cancelled"

    with pytest.raises(WorkflowAlreadyFinishedError) as again:
        await api.dispatcher.cancel(d, run.workflow_id)
    assert str(again.value) == f"run '{run.workflow_id}' in {_where(api, 'd')} has already ended"
    assert again.value.code == "FAILED_PRECONDITION"


DEADLINE = definition(
    """
name: deadline
version: 1
steps:
  - {id: ask, type: prompt, prompt_type: confirm, message: "Ship?", timeout: 1h,
     on_error: continue, output_to: ok}
  - {id: settle, type: wait, duration: 1h, message: Letting it settle}
  - {id: done, type: return, value: "${{ steps.ask.status }}"}
"""
)


async def test_update_timeout_moves_an_action_deadline_and_a_wait(api: Tenancy) -> None:
    d = api.org("d")
    run = await api.dispatcher.start(d, DEADLINE, workflow_id=_id("deadline"))
    action = await wait_for_action(api.dispatcher, d, run.workflow_id, "ask")
    assert action["timeout"] > 3500

    await api.dispatcher.update_timeout(d, run.workflow_id, "ask", 600)
    moved = await eventually(
        lambda: api.dispatcher.status(d, run.workflow_id),
        lambda s: s["pending_actions"] and s["pending_actions"][0]["timeout"] <= 600,
        what="the deadline moved",
    )
    assert moved["pending_actions"][0]["action_id"] == action["action_id"]

    # Now: the action times out (on_error: continue), and the run reaches its hour-long wait.
    await api.dispatcher.update_timeout(d, run.workflow_id, "ask", 0)
    waiting = await eventually(
        lambda: api.dispatcher.status(d, run.workflow_id),
        lambda s: (s["waiting"] or {}).get("step_id") == "settle",
        what="the wait",
    )
    assert waiting["steps"]["ask"]["status"] == "failed"
    assert "timed out" in waiting["steps"]["ask"]["error"]
    assert waiting["waiting"]["message"] == "Letting it settle"

    await api.dispatcher.update_timeout(d, run.workflow_id, "settle", 0)
    assert await asyncio.wait_for(api.dispatcher.result(d, run.workflow_id), 15) == "failed"

    with pytest.raises(InvalidRequestError, match="seconds must not be negative, got -1"):
        await api.dispatcher.update_timeout(d, run.workflow_id, "settle", -1)
    with pytest.raises(WorkflowAlreadyFinishedError):
        await api.dispatcher.update_timeout(d, run.workflow_id, "settle", 5)


# -- the inbox and watching -----------------------------------------------------------------


async def test_pending_actions_lists_every_action_of_the_org_once(api: Tenancy) -> None:
    org = api.org("inbox")
    dispatcher = api.dispatcher
    single = await dispatcher.start(org, ASK, workflow_id=_id("single"))
    tree = await dispatcher.start(org, FANOUT, workflow_id=_id("tree"))
    expected_runs = {single.workflow_id} | {f"{tree.workflow_id}/each/{i}" for i in range(3)}

    listed = await eventually(
        lambda: inbox(dispatcher, org),
        lambda actions: {a["workflow_id"] for a in actions} == expected_runs,
        what="four actions in the inbox",
    )

    assert len(listed) == 4
    assert Counter(a["action_id"] for a in listed).most_common(1)[0][1] == 1
    assert Counter(a["workflow_id"] for a in listed) == Counter(dict.fromkeys(expected_runs, 1))
    assert {a["step_id"] for a in listed} == {"ask", "name_item"}
    # A page holds the actions of page_size runs; paging goes through every one, once.
    first = await dispatcher.pending_actions(org, page_size=2)
    assert len(first.actions) == 2 and first.next_page_token is not None
    rest = await dispatcher.pending_actions(org, page_size=2, page_token=first.next_page_token)
    paged = [a["action_id"] for a in [*first.actions, *rest.actions]]
    assert sorted(paged) == sorted(a["action_id"] for a in listed)
    # Filters: by step, by type, by run (its foreach items included).
    assert {a["step_id"] for a in await inbox(dispatcher, org, step_id="ask")} == {"ask"}
    assert len(await inbox(dispatcher, org, action_type="prompt")) == 4
    assert await inbox(dispatcher, org, action_type="shell") == []
    of_tree = await inbox(dispatcher, org, workflow_id=tree.workflow_id)
    assert {a["workflow_id"] for a in of_tree} == expected_runs - {single.workflow_id}

    # Answering a child's action takes it out of the inbox; the others stay, once each.
    child = next(a for a in listed if a["step_id"] == "name_item")
    await dispatcher.submit_result(
        org, child["workflow_id"], action_id=child["action_id"], result="first"
    )
    left = await eventually(
        lambda: inbox(dispatcher, org),
        lambda actions: len(actions) == 3,
        what="three actions left",
    )
    assert child["action_id"] not in {a["action_id"] for a in left}
    assert len({a["action_id"] for a in left}) == 3
    await dispatcher.cancel(org, single.workflow_id)
    await dispatcher.cancel(org, tree.workflow_id)


async def test_watch_yields_each_change_and_stops_at_the_end(api: Tenancy) -> None:
    d = api.org("d")
    run = await api.dispatcher.start(d, ASK, {"who": "dee"}, workflow_id=_id("watch"))
    seen: list[dict[str, Any]] = []

    async def follow() -> None:
        async for status in api.dispatcher.watch(d, run.workflow_id):
            seen.append(status)
            if status["pending_actions"]:
                await api.dispatcher.submit_result(d, run.workflow_id, step_id="ask", result=True)

    await asyncio.wait_for(follow(), 20)  # returns by itself once the run has ended

    statuses = [s["status"] for s in seen]
    assert statuses[-1] == "completed"
    assert "waiting" in statuses
    assert seen[-1]["result"] == "hello dee"
    fingerprints = [
        (s["status"], s["current_step"], len(s["history"]), len(s["pending_actions"])) for s in seen
    ]
    assert all(a != b for a, b in itertools.pairwise(fingerprints))


# -- unknown orgs ---------------------------------------------------------------------------


async def test_an_unprovisioned_org_is_not_found(api: Tenancy) -> None:
    ghost = api.org("ghost")
    calls = {
        "start": api.dispatcher.start(ghost, QUICK),
        "status": api.dispatcher.status(ghost, "any"),
        "list": api.dispatcher.list(ghost),
        "pending_actions": inbox(api.dispatcher, ghost),
        "submit_result": api.dispatcher.submit_result(ghost, "any", step_id="s", result=1),
        "signal": api.dispatcher.signal(ghost, "any", "cancel_workflow"),
        "cancel": api.dispatcher.cancel(ghost, "any"),
    }
    for name, call in calls.items():
        with pytest.raises(OrgNotFoundError) as caught:
            await call
        message = str(caught.value)
        assert message.startswith(
            f"org 'ghost' (namespace '{ghost.namespace}') is not provisioned"
        ), (
            name,
            message,
        )
        assert caught.value.code == "NOT_FOUND"
    with pytest.raises(OrgNotFoundError):
        await api.directory.get("ghost")
    assert OrgContext("ghost", ghost.namespace) == ghost


async def test_a_run_that_cannot_take_a_cancel_is_terminated_and_says_so(api: Tenancy) -> None:
    d = api.org("d")
    client = await api.client("d")
    # An input the interpreter cannot even read: its workflow task fails on every attempt.
    workflow_id = _id("stuck")
    handle = await client.start_workflow(
        "stuck:1", {"definition": "not a definition"}, id=workflow_id, task_queue=TASK_QUEUE
    )

    await eventually(
        handle.describe,
        lambda described: described.raw_description.pending_workflow_task.attempt > 1,
        what="the workflow task failing",
    )
    await api.dispatcher.cancel(d, workflow_id)

    described = await handle.describe()
    assert described.status == WorkflowExecutionStatus.TERMINATED
    terminated = [
        event
        async for event in handle.fetch_history_events()
        if event.HasField("workflow_execution_terminated_event_attributes")
    ]
    reason = terminated[0].workflow_execution_terminated_event_attributes.reason
    assert "terminated because its workflow task failed" in reason
    with pytest.raises(WorkflowAlreadyFinishedError):
        await api.dispatcher.cancel(d, workflow_id)
