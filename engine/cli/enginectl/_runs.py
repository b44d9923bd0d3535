"""``run``, ``get``, ``ls``, ``cancel``, ``retry``, ``timeout`` and ``send-event``: runs of
registered definitions."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Final

import grpc
from google.protobuf import duration_pb2

from engine.api.v1 import resources_pb2, workflow_service_pb2
from engine.cli.enginectl._client import CallFailedError, CliError, EngineClient
from engine.cli.enginectl._common import (
    EXIT_INVALID,
    EXIT_OK,
    PAGE,
    Subcommands,
    add_command,
    add_input_options,
    add_paging_options,
    collect,
    duration,
    inputs,
    json_or_string,
    json_output,
    next_page_line,
    positive_int,
    print_lines,
)
from engine.cli.enginectl._follow import follow
from engine.cli.enginectl._output import (
    FAILED,
    TERMINAL,
    action_table,
    advance_lines,
    elapsed,
    emit,
    local_time,
    outcome,
    print_json,
    run_status,
    seconds_text,
    shorten,
    table,
    value_json,
)
from engine.protocol import RUN_STATES
from engine.wire import enum_value, from_struct, to_struct, to_value

__all__ = ["register"]


_RETRYABLE_LATER: Final = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
)
"""Failures ``ls --watch`` outlives (the control plane restarting): it lists again later."""


def register(commands: Subcommands) -> None:
    """Add ``run``, ``get``, ``ls``, ``cancel``, ``retry``, ``timeout`` and ``send-event``."""
    run = add_command(
        commands,
        "run",
        start_run,
        "start a run of a registered definition",
        "Start a run. Without --follow it answers once the run first waits or ends; with "
        "--follow it shows each step as it completes and each action the run waits for, "
        "until the run ends (exit 0 when it completed, 1 when it failed or was cancelled).",
    )
    run.add_argument("name", metavar="NAME", help="the definition's name")
    run.add_argument(
        "--version",
        dest="definition_version",
        type=positive_int,
        metavar="N",
        default=0,
        help="the definition's version (default: the latest)",
    )
    add_input_options(run, of="")
    run.add_argument("--id", dest="workflow_id", metavar="ID", help="the run's workflow id")
    run.add_argument(
        "--request-id", metavar="KEY", help="idempotency key: the same key starts one run only"
    )
    run.add_argument("--follow", "-f", action="store_true", help="show the run live until it ends")

    get = add_command(
        commands,
        "get",
        show_run,
        "show a run",
        "Show a run: status, pending actions, history, state.",
    )
    get.add_argument("workflow_id", metavar="ID", help="the run's workflow id")
    get.add_argument("--run-id", default="", help="a specific run id (default: the latest)")
    get.add_argument("--follow", "-f", action="store_true", help="follow the run until it ends")

    ls = add_command(
        commands,
        "ls",
        list_runs,
        "list runs",
        "List runs, open ones first, filtered by status, definition and a visibility query.",
    )
    ls.add_argument("--status", choices=RUN_STATES, help="only runs with this status")
    ls.add_argument("--definition", metavar="NAME", help="only runs of this definition")
    ls.add_argument(
        "--query",
        metavar="Q",
        help="a Temporal visibility query, e.g. \"StartTime > '2026-01-01'\"",
    )
    ls.add_argument("--children", action="store_true", help="include foreach child runs")
    add_paging_options(ls, what="runs to list", default=100)
    ls.add_argument(
        "--watch",
        "-w",
        action="store_true",
        help="after the list, keep listing (one page each --interval) and print each run that "
        "appeared or changed, until Ctrl-C; with -o json one JSON object a line",
    )
    ls.add_argument(
        "--interval",
        type=_interval,
        default=timedelta(seconds=2),
        metavar="DURATION",
        help="how often --watch lists again (default 2s)",
    )

    cancel = add_command(
        commands, "cancel", cancel_run, "cancel a run", "Cancel a run and its children."
    )
    cancel.add_argument("workflow_id", metavar="ID", help="the run's workflow id")
    cancel.add_argument("--reason", default="", metavar="R", help="why (shown in its status)")

    retry = add_command(
        commands,
        "retry",
        retry_run,
        "run a failed or cancelled run again",
        "Run a failed (or cancelled, terminated, timed-out) run again under the same workflow "
        "id: by default from its failed step (the steps before it keep their results), or "
        "with --from-start from the beginning with the same definition and inputs. Prints the "
        "new run's id.",
    )
    retry.add_argument("workflow_id", metavar="ID", help="the run's workflow id")
    retry.add_argument(
        "--run-id", default="", help="a specific failed run id (default: the latest)"
    )
    retry.add_argument(
        "--from-start",
        action="store_true",
        help="start again from the first step instead of the failed one",
    )
    retry.add_argument(
        "--follow", "-f", action="store_true", help="follow the new run until it ends"
    )

    timeout = add_command(
        commands,
        "timeout",
        update_timeout,
        "move the deadline of a waiting step",
        "Move the deadline of the action step STEP of run ID waits for (or the end of its "
        "wait step): --set DURATION from now, --extend DURATION past its current deadline, or "
        "--now (an action then times out at once: its on_error applies; a wait ends at once).",
    )
    timeout.add_argument("workflow_id", metavar="ID", help="the run's workflow id")
    timeout.add_argument("step_id", metavar="STEP", help="the waiting step")
    change = timeout.add_mutually_exclusive_group(required=True)
    change.add_argument(
        "--set",
        dest="set_to",
        type=duration,
        metavar="DURATION",
        help="the new time left, from now, e.g. 2h",
    )
    change.add_argument(
        "--extend",
        type=duration,
        metavar="DURATION",
        help="add this to the step's current deadline (it must have one), e.g. 30m",
    )
    change.add_argument("--now", action="store_true", help="the deadline is now")

    event = add_command(
        commands,
        "send-event",
        send_event,
        "send an event to wait_for steps",
        "Send an event NAME to one run (--run: kept there until a wait_for step takes it), or "
        "to every run of the org whose wait_for steps wait for NAME now (each takes it if its "
        "correlate holds).",
    )
    event.add_argument("name", metavar="NAME", help="the event's name")
    event.add_argument(
        "payload",
        metavar="PAYLOAD",
        nargs="?",
        default=None,
        help="the payload, read as JSON when it is valid JSON, else as a string (default null)",
    )
    event.add_argument("--run", dest="workflow_id", metavar="ID", help="only this run")
    event.add_argument(
        "--request-id", metavar="KEY", help="idempotency key: the same key is delivered once"
    )


def start_run(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl run NAME``: start a run, answer where it first waits (or follow it)."""
    given = inputs(args)
    request = workflow_service_pb2.StartWorkflowRequest(
        definition_name=args.name,
        definition_version=args.definition_version,
        inputs=to_struct(given),
        workflow_id=args.workflow_id or "",
        request_id=args.request_id or "",
        wait_for_suspension=not args.follow,
    )
    response = client.call(client.workflows.StartWorkflow, request)
    if json_output(args):
        print_json(response, sys.stdout, compact=args.follow)
    else:
        emit(f"started {response.workflow_id} ({response.workflow_type}) run {response.run_id}")
    if args.follow:
        return follow(args, client, response.workflow_id, given)
    if not json_output(args):
        print_lines(
            advance_lines(
                response.workflow_id,
                response.status,
                "",
                response.pending_actions,
                response.result,
                response.error,
            )
        )
    return EXIT_INVALID if response.status in FAILED else EXIT_OK


def show_run(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl get ID``: a run's status, actions, history and state (or follow it)."""
    if args.follow:
        return follow(args, client, args.workflow_id, {})
    request = workflow_service_pb2.GetWorkflowRequest(
        workflow_id=args.workflow_id, run_id=args.run_id
    )
    workflow = client.call(client.workflows.GetWorkflow, request).workflow
    if json_output(args):
        print_json(workflow, sys.stdout)
        return EXIT_OK
    print_lines(_workflow_lines(workflow))
    return EXIT_OK


def _workflow_lines(workflow: resources_pb2.Workflow) -> list[str]:
    fields = [
        ("workflow", workflow.workflow_id),
        ("run", workflow.run_id),
        (
            "definition",
            f"{workflow.definition_name}:{workflow.definition_version} "
            f"{workflow.definition_hash}".strip(),
        ),
        ("org", workflow.org_id),
        ("status", run_status(workflow.status)),
        ("step", workflow.current_step),
        ("started", local_time(workflow, "start_time")),
    ]
    if workflow.HasField("close_time"):
        fields.append(("ended", local_time(workflow, "close_time")))
    if workflow.HasField("waiting"):
        wait = workflow.waiting
        text = f"{wait.step_id} until {local_time(wait, 'until')}"
        fields.append(("timer", text + (f": {wait.message}" if wait.message else "")))
    if workflow.status == resources_pb2.RUN_STATUS_COMPLETED:
        fields.append(("result", value_json(workflow.result)))
    if workflow.error:
        fields.append(("error", workflow.error))
    lines = [f"{name + ':':<12}{value}" for name, value in fields if value]
    if workflow.pending_actions:
        lines += ["", "pending actions:"]
        lines += ["  " + line for line in action_table(workflow.pending_actions)]
    if workflow.history:
        rows = [
            (
                r.step_id,
                r.type,
                outcome(r.outcome) or "running",
                str(r.attempts),
                local_time(r, "start_time"),
                elapsed(r, "start_time", "finish_time"),
                shorten(r.error, 60),
            )
            for r in workflow.history
        ]
        lines += ["", "history:"]
        headers = ("STEP", "TYPE", "OUTCOME", "ATTEMPTS", "STARTED", "TOOK", "ERROR")
        lines += ["  " + line for line in table(headers, rows)]
    state = from_struct(workflow.state)
    if state:
        lines += ["", "state:"]
        lines += ["  " + line for line in json.dumps(state, indent=2).splitlines()]
    return lines


_RUN_HEADERS: Final = ("WORKFLOW", "TYPE", "STATUS", "STEP", "STARTED", "CLOSED")


def _run_row(workflow: resources_pb2.WorkflowSummary) -> tuple[str, ...]:
    return (
        workflow.workflow_id,
        workflow.workflow_type,
        run_status(workflow.status),
        workflow.current_step,
        local_time(workflow, "start_time"),
        local_time(workflow, "close_time"),
    )


def list_runs(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl ls``: runs, open ones first (``--watch``: and then each change)."""
    request = workflow_service_pb2.ListWorkflowsRequest(
        status=resources_pb2.RunStatus.ValueType(enum_value(resources_pb2.RunStatus, args.status)),
        definition_name=args.definition or "",
        query=args.query or "",
        include_children=args.children,
    )
    if args.watch:
        return _watch_runs(args, client, request)
    found, token = collect(
        client,
        client.workflows.ListWorkflows,
        request,
        "workflows",
        limit=args.limit,
        page_token=args.page_token,
    )
    if json_output(args):
        response = workflow_service_pb2.ListWorkflowsResponse(
            workflows=found, next_page_token=token
        )
        print_json(response, sys.stdout)
        return EXIT_OK
    if not found:
        emit("no runs")
    else:
        print_lines(table(_RUN_HEADERS, [_run_row(w) for w in found]))
    if token:
        emit(next_page_line(_ls_command(args), token))
    return EXIT_OK


def _ls_command(args: argparse.Namespace) -> list[str]:
    """``ls`` with the filters of ``args``: a page token holds only with the same ones."""
    command = ["ls"]
    for flag, value in (
        ("--status", args.status),
        ("--definition", args.definition),
        ("--query", args.query),
    ):
        if value:
            command += [flag, value]
    if args.children:
        command.append("--children")
    command += ["--limit", str(args.limit)]
    return command


def _wait(seconds: float) -> None:
    """The pause between two listings of ``ls --watch`` (the tests replace it)."""
    time.sleep(seconds)


def _watch_runs(
    args: argparse.Namespace,
    client: EngineClient,
    request: workflow_service_pb2.ListWorkflowsRequest,
) -> int:
    """``enginectl ls --watch``: the list, then each run that appears or changes, until
    Ctrl-C (which ends it with exit status 130).

    Each round is one ListWorkflows page (``--limit`` runs from ``--page-token``), however
    many runs it holds: a watch of a busy org must not cost a call per run.
    """
    request.page_size = min(args.limit, PAGE)
    request.page_token = args.page_token
    seen: dict[tuple[str, str], bytes] = {}
    widths: list[int] = []
    first = True
    while True:
        try:
            page = client.call(client.workflows.ListWorkflows, request)
        except CallFailedError as failure:
            if first or failure.code not in _RETRYABLE_LATER:
                raise
            print(f"enginectl: {failure.lines()[0]} (listing again)", file=sys.stderr)
        else:
            changed = []
            for workflow in page.workflows:
                key = (workflow.workflow_id, workflow.run_id)
                content = workflow.SerializeToString(deterministic=True)
                if seen.get(key) != content:
                    seen[key] = content
                    changed.append(workflow)
            if not first:
                changed.reverse()  # oldest change first: the newest run ends up at the bottom
            if json_output(args):
                for workflow in changed:
                    print_json(workflow, sys.stdout, compact=True)
            else:
                rows = [_run_row(w) for w in changed]
                if first:
                    widths = _widths(_RUN_HEADERS, rows)
                    print_lines(table(_RUN_HEADERS, rows))
                else:
                    print_lines([_aligned(row, widths) for row in rows])
            sys.stdout.flush()
            first = False
        _wait(args.interval.total_seconds())


def _widths(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[int]:
    widths = [len(header) for header in headers]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    return widths


def _aligned(row: Sequence[str], widths: Sequence[int]) -> str:
    """A row in the columns of the table printed first (a longer cell pushes the rest)."""
    cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
    return "  ".join([*cells, row[-1]]).rstrip()


def _interval(text: str) -> timedelta:
    """``--interval``: a duration of at least 100ms (a tighter loop only loads the server)."""
    span = duration(text)
    if span < timedelta(milliseconds=100):
        raise argparse.ArgumentTypeError(f"must be at least 100ms, got {text!r}")
    return span


def send_event(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl send-event NAME [PAYLOAD]``: deliver an event; lists the runs it reached."""
    request = workflow_service_pb2.SendEventRequest(
        name=args.name,
        payload=to_value(json_or_string(args.payload) if args.payload is not None else None),
        workflow_id=args.workflow_id or "",
        request_id=args.request_id or "",
    )
    response = client.call(client.workflows.SendEvent, request)
    if json_output(args):
        print_json(response, sys.stdout)
    else:
        emit(f"event '{args.name}' delivered to {len(response.workflow_ids)} run(s)")
        print_lines(list(response.workflow_ids))
    return EXIT_OK


def cancel_run(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl cancel ID``: cancel a run and its children."""
    request = workflow_service_pb2.CancelWorkflowRequest(
        workflow_id=args.workflow_id, reason=args.reason
    )
    response = client.call(client.workflows.CancelWorkflow, request)
    if json_output(args):
        print_json(response, sys.stdout)
    else:
        emit(f"cancel requested: {args.workflow_id}")
    return EXIT_OK


def retry_run(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl retry ID``: run a failed run again; prints the new run's id."""
    mode = (
        workflow_service_pb2.RETRY_MODE_FROM_START
        if args.from_start
        else workflow_service_pb2.RETRY_MODE_FROM_FAILED_STEP
    )
    request = workflow_service_pb2.RetryWorkflowRequest(
        workflow_id=args.workflow_id, run_id=args.run_id, mode=mode
    )
    response = client.call(client.workflows.RetryWorkflow, request)
    if json_output(args):
        print_json(response, sys.stdout, compact=args.follow)
    else:
        where = "the start" if args.from_start else "its failed step"
        emit(f"retried {response.workflow_id} from {where}: run {response.run_id}")
    if args.follow:
        return follow(args, client, response.workflow_id, {})
    return EXIT_OK


def update_timeout(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl timeout ID STEP --set|--extend|--now``: move a waiting step's deadline."""
    request = workflow_service_pb2.GetWorkflowRequest(workflow_id=args.workflow_id)
    workflow = client.call(client.workflows.GetWorkflow, request).workflow
    owner, deadline = _step_deadline(workflow, args.step_id)
    now = datetime.now(UTC)
    if args.now:
        left = timedelta(0)
    elif args.set_to is not None:
        left = args.set_to
    else:
        if deadline is None:
            raise CliError(_no_deadline(workflow, args.step_id))
        left = max(deadline - now, timedelta(0)) + args.extend
    timeout = duration_pb2.Duration()
    timeout.FromTimedelta(left)
    client.call(
        client.workflows.UpdateTimeout,
        workflow_service_pb2.UpdateTimeoutRequest(
            workflow_id=owner, step_id=args.step_id, timeout=timeout
        ),
    )
    moved_to = now + left
    if json_output(args):
        print_json(
            {
                "workflow_id": owner,
                "step_id": args.step_id,
                "deadline": moved_to.isoformat().replace("+00:00", "Z"),
            },
            sys.stdout,
        )
    elif left:
        local = moved_to.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        emit(
            f"deadline of step {args.step_id} in run {owner} moved to {local} "
            f"({seconds_text(left.total_seconds())} from now)"
        )
    else:
        emit(f"deadline of step {args.step_id} in run {owner} moved to now")
    return EXIT_OK


def _step_deadline(workflow: resources_pb2.Workflow, step_id: str) -> tuple[str, datetime | None]:
    """The run the waiting step belongs to (a foreach item's, for a step inside a foreach)
    and its deadline (None when it has none, or is not waiting: the server then says why).

    Raises:
        CliError: The step waits in several foreach items: which one is meant is unclear.
    """
    matches = [action for action in workflow.pending_actions if action.step_id == step_id]
    owners = sorted({action.workflow_id or workflow.workflow_id for action in matches})
    if len(owners) > 1:
        raise CliError(
            f"step {step_id} waits in {len(owners)} foreach items of run {workflow.workflow_id}: "
            f"name the item's run instead of {workflow.workflow_id} ({', '.join(owners)})"
        )
    for action in matches:
        deadline = action.deadline.ToDatetime(tzinfo=UTC) if action.HasField("deadline") else None
        return action.workflow_id or workflow.workflow_id, deadline
    if workflow.HasField("waiting") and workflow.waiting.step_id == step_id:
        return workflow.workflow_id, workflow.waiting.until.ToDatetime(tzinfo=UTC)
    return workflow.workflow_id, None


def _no_deadline(workflow: resources_pb2.Workflow, step_id: str) -> str:
    waiting = {action.step_id for action in workflow.pending_actions}
    if workflow.HasField("waiting"):
        waiting.add(workflow.waiting.step_id)
    if step_id in waiting:
        return (
            f"step {step_id} of run {workflow.workflow_id} waits with no deadline, so there is "
            "nothing to extend: give one with --set DURATION"
        )
    if workflow.status in TERMINAL:
        where = f"the run is {run_status(workflow.status)}"
    elif waiting:
        where = f"it waits at {', '.join(sorted(waiting))}"
    else:
        where = f"the run is {run_status(workflow.status) or 'running'}"
        if workflow.current_step:
            where += f" at {workflow.current_step}"
    return f"step {step_id} of run {workflow.workflow_id} is not waiting ({where})"
