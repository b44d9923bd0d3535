"""``run``, ``get``, ``ls``, ``cancel`` and ``send-event``: runs of registered definitions."""

from __future__ import annotations

import argparse
import json
import sys

from engine.api.v1 import resources_pb2, workflow_service_pb2
from engine.cli.enginectl._client import EngineClient
from engine.cli.enginectl._common import (
    EXIT_INVALID,
    EXIT_OK,
    Subcommands,
    add_command,
    add_input_options,
    collect,
    inputs,
    json_or_string,
    json_output,
    positive_int,
    print_lines,
)
from engine.cli.enginectl._follow import follow
from engine.cli.enginectl._output import (
    FAILED,
    action_table,
    advance_lines,
    elapsed,
    emit,
    local_time,
    outcome,
    print_json,
    run_status,
    shorten,
    table,
    value_json,
)
from engine.protocol import RUN_STATES
from engine.wire import enum_value, from_struct, to_struct, to_value

__all__ = ["register"]


def register(commands: Subcommands) -> None:
    """Add ``run``, ``get``, ``ls`` and ``cancel``."""
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
    ls.add_argument(
        "--limit", type=positive_int, default=100, metavar="N", help="most runs to list (100)"
    )

    cancel = add_command(
        commands, "cancel", cancel_run, "cancel a run", "Cancel a run and its children."
    )
    cancel.add_argument("workflow_id", metavar="ID", help="the run's workflow id")
    cancel.add_argument("--reason", default="", metavar="R", help="why (shown in its status)")

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


def list_runs(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl ls``: runs, open ones first."""
    request = workflow_service_pb2.ListWorkflowsRequest(
        status=resources_pb2.RunStatus.ValueType(enum_value(resources_pb2.RunStatus, args.status)),
        definition_name=args.definition or "",
        query=args.query or "",
        include_children=args.children,
    )
    found, token = collect(
        client, client.workflows.ListWorkflows, request, "workflows", limit=args.limit
    )
    if json_output(args):
        response = workflow_service_pb2.ListWorkflowsResponse(
            workflows=found, next_page_token=token
        )
        print_json(response, sys.stdout)
        return EXIT_OK
    if not found:
        emit("no runs")
        return EXIT_OK
    rows = [
        (
            w.workflow_id,
            w.workflow_type,
            run_status(w.status),
            w.current_step,
            local_time(w, "start_time"),
            local_time(w, "close_time"),
        )
        for w in found
    ]
    print_lines(table(("WORKFLOW", "TYPE", "STATUS", "STEP", "STARTED", "CLOSED"), rows))
    return EXIT_OK


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
