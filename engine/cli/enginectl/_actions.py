"""``actions``, ``submit`` and ``answer``: the inbox of pending actions, and results for them."""

from __future__ import annotations

import argparse
import json
import sys
from collections import deque
from dataclasses import dataclass
from typing import Any

import grpc

from engine.api.v1 import resources_pb2, workflow_service_pb2
from engine.cli.enginectl._client import CallFailedError, CliError, EngineClient
from engine.cli.enginectl._common import (
    EXIT_INVALID,
    EXIT_OK,
    Subcommands,
    add_command,
    add_paging_options,
    collect,
    json_or_string,
    json_output,
    next_page_line,
    print_lines,
)
from engine.cli.enginectl._output import action_table, advance_lines, emit, print_json
from engine.wire import from_struct, to_value

__all__ = ["register"]


def register(commands: Subcommands) -> None:
    """Add ``actions``, ``submit`` and ``answer``."""
    actions = add_command(
        commands,
        "actions",
        list_actions,
        "list pending actions (the inbox)",
        "List every action the organization's runs wait for, oldest first. A page ends with "
        "the last action of a waiting run, so --limit may show a few more.",
    )
    add_paging_options(actions, what="actions to list")

    submit = add_command(
        commands,
        "submit",
        submit_result,
        "submit the result of a pending action",
        "Submit the result of the action STEP of run ID waits for (a step inside a foreach "
        "is found in its item's run) and show where the run went next.",
    )
    submit.add_argument("workflow_id", metavar="ID", help="the run's workflow id")
    submit.add_argument("step_id", metavar="STEP", help="the waiting step")
    submit.add_argument(
        "value",
        nargs="?",
        metavar="VALUE",
        help="the result, read as JSON when it is valid JSON, else as a string",
    )
    submit.add_argument("--action", dest="action_id", metavar="ACTION_ID", help="the action's id")
    submit.add_argument("--error", metavar="MSG", help="report that the action failed instead")

    answer = add_command(
        commands,
        "answer",
        answer_prompts,
        "answer waiting prompts on the terminal",
        "Ask each waiting prompt of the inbox on the terminal (confirm: y/n, choice: a "
        "number, text: a line, info: enter) and submit the answer. Other actions are skipped.",
    )
    answer.add_argument("--workflow", metavar="ID", help="only the prompts of this run")


def _inbox(client: EngineClient) -> list[resources_pb2.PendingAction]:
    request = workflow_service_pb2.ListPendingActionsRequest()
    actions, _ = collect(client, client.workflows.ListPendingActions, request, "pending_actions")
    return actions


def list_actions(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl actions``: every action the org's runs wait for, oldest first."""
    request = workflow_service_pb2.ListPendingActionsRequest()
    actions, token = collect(
        client,
        client.workflows.ListPendingActions,
        request,
        "pending_actions",
        limit=args.limit,
        page_token=args.page_token,
    )
    if json_output(args):
        print_json(
            workflow_service_pb2.ListPendingActionsResponse(
                pending_actions=actions, next_page_token=token
            ),
            sys.stdout,
        )
        return EXIT_OK
    if not actions:
        emit("no pending actions")
    else:
        print_lines(action_table(actions))
    if token:
        limit = ["--limit", str(args.limit)] if args.limit is not None else []
        emit(next_page_line(["actions", *limit], token))
    return EXIT_OK


def submit_result(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl submit ID STEP VALUE``: the result of an action, and where the run went."""
    if args.value is None and args.error is None:
        raise CliError("give the result VALUE, or --error MSG to report that the action failed")
    target = submission_target(client, args.workflow_id, args.step_id, args.action_id)
    workflow_id, action_id = target.workflow_id, target.action_id
    request = workflow_service_pb2.SubmitResultRequest(workflow_id=workflow_id)
    if action_id:
        request.action_id = action_id
    else:
        request.step_id = args.step_id
    if args.value is not None:
        request.result.CopyFrom(to_value(json_or_string(args.value)))
    if args.error is not None:
        request.error = args.error
    response = client.call(client.workflows.SubmitResult, request, metadata=target.trace)
    if json_output(args):
        print_json(response, sys.stdout)
    else:
        lines = advance_lines(
            workflow_id,
            response.status,
            response.current_step,
            response.pending_actions,
            response.result,
            response.error,
        )
        print_lines([f"run {workflow_id}: {lines[0]}", *lines[1:]] if lines else [])
    return EXIT_OK


@dataclass(frozen=True)
class Target:
    """Where an answer goes: the run that owns the action, the action (when found), and the
    trace context the action carries (sent with the answer, so it joins the run's trace)."""

    workflow_id: str
    action_id: str | None
    trace: tuple[tuple[str, str], ...] = ()


def trace_of(action: resources_pb2.PendingAction) -> tuple[tuple[str, str], ...]:
    """The action's trace context as gRPC metadata (``traceparent``, ``tracestate``)."""
    return tuple((key, value) for key, value in sorted(action.trace.items()) if value)


def submission_target(
    client: EngineClient, workflow_id: str, step_id: str, action_id: str | None
) -> Target:
    """The run an action waits in (a foreach item's run for a step inside a foreach).

    Results go to the run that owns the action; a person naturally names the top-level run,
    so the action is looked up in its status (which lists the actions of the whole tree).
    """
    request = workflow_service_pb2.GetWorkflowRequest(workflow_id=workflow_id)
    try:
        workflow = client.call(client.workflows.GetWorkflow, request).workflow
    except CallFailedError:
        return Target(workflow_id, action_id)  # the submission itself reports what is wrong
    matches = [
        a
        for a in workflow.pending_actions
        if (a.action_id == action_id if action_id else a.step_id == step_id)
    ]
    if not matches:
        return Target(workflow_id, action_id)
    owners = {a.workflow_id or workflow_id for a in matches}
    if len(matches) > 1 and len(owners) > 1:
        listed = ", ".join(f"{a.action_id} (in {a.workflow_id})" for a in matches)
        raise CliError(
            f"step {step_id} waits in {len(matches)} foreach items of run {workflow_id}: "
            f"name one with --action ({listed})"
        )
    match = matches[0]
    return Target(match.workflow_id or workflow_id, match.action_id, trace_of(match))


# -- answering prompts ----------------------------------------------------------------------


class _EndOfInputError(Exception):
    """The person (or the pipe) has no more answers."""


def _ask(question: str) -> str:
    print(question, end="", flush=True)
    line = sys.stdin.readline()
    if not line:
        print()
        raise _EndOfInputError
    return line.rstrip("\r\n")


def _answer_prompt(action: resources_pb2.PendingAction) -> Any:
    """Ask the person for the answer to one prompt; returns the result to submit."""
    parameters = from_struct(action.parameters)
    kind = parameters.get("prompt_type") or "info"
    message = str(parameters.get("message") or "")
    default = parameters.get("default")
    emit(f"{action.workflow_id} / {action.step_id} ({kind})")
    if kind == "confirm":
        hint = "[Y/n]" if default is True else "[y/N]" if default is False else "[y/n]"
        while True:
            reply = _ask(f"{message} {hint} ").strip().lower()
            if not reply and isinstance(default, bool):
                return default
            if reply in ("y", "yes"):
                return True
            if reply in ("n", "no"):
                return False
            emit("please answer y or n")
    if kind == "choice":
        options = parameters.get("options") or []
        emit(message)
        for number, option in enumerate(options, 1):
            text = option if isinstance(option, str) else json.dumps(option)
            emit(f"  {number}) {text}" + ("  (default)" if option == default else ""))
        while True:
            reply = _ask(f"choose 1-{len(options)}: ").strip()
            if not reply and default is not None:
                return default
            if reply.isdigit() and 1 <= int(reply) <= len(options):
                return options[int(reply) - 1]
            if reply in [o for o in options if isinstance(o, str)]:
                return reply
            emit(f"please answer with a number from 1 to {len(options)}")
    if kind == "text":
        shown = f" [{default}]" if isinstance(default, str) and default else ""
        reply = _ask(f"{message}{shown}\n> ")
        return default if not reply and isinstance(default, str) else reply
    _ask(f"{message}\n(press enter) ")
    return True


def answer_prompts(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl answer``: ask each waiting prompt on the terminal and submit the answer."""

    def wanted(action: resources_pb2.PendingAction) -> bool:
        return action.action_id not in seen and (
            not args.workflow
            or action.workflow_id == args.workflow
            or action.workflow_id.startswith(args.workflow + "/")
        )

    status = EXIT_OK
    seen: set[str] = set()
    answered = skipped = 0
    stopped = False
    queue = deque(a for a in _inbox(client) if wanted(a))
    while queue:
        action = queue.popleft()
        if not wanted(action):
            continue
        seen.add(action.action_id)
        if action.type != resources_pb2.ACTION_TYPE_PROMPT:
            skipped += 1
            continue
        try:
            result = _answer_prompt(action)
        except _EndOfInputError:
            emit("stopped: no more input")
            stopped = True
            break
        request = workflow_service_pb2.SubmitResultRequest(
            workflow_id=action.workflow_id, action_id=action.action_id, result=to_value(result)
        )
        try:
            response = client.call(
                client.workflows.SubmitResult, request, metadata=trace_of(action)
            )
        except CallFailedError as failure:
            if failure.code in (
                grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.PERMISSION_DENIED,
            ):
                raise
            emit(f"not submitted: {failure.lines()[0]}")
            status = EXIT_INVALID
            continue
        answered += 1
        if json_output(args):
            print_json(response, sys.stdout, compact=True)
        else:
            lines = advance_lines(
                action.workflow_id,
                response.status,
                response.current_step,
                [],
                response.result,
                response.error,
            )
            emit(f"-> run {action.workflow_id}: {lines[0] if lines else 'submitted'}")
        # The run's next questions come next, in the order it asks them (the inbox is listed
        # through visibility, which may not show them yet).
        following = []
        for next_action in response.pending_actions:
            if not next_action.workflow_id:
                next_action.workflow_id = action.workflow_id
            following.append(next_action)
        queue.extendleft(reversed(following))
        if not queue:
            queue.extend(a for a in _inbox(client) if wanted(a))
    if not json_output(args):
        if answered == skipped == 0 and status == EXIT_OK and not stopped:
            emit("no prompts are waiting")
        else:
            note = f", skipped {skipped} other action(s) (enginectl actions)" if skipped else ""
            emit(f"answered {answered} prompt(s){note}")
    return status
