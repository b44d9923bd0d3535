"""``link create``, ``link show`` and ``link answer``: answer links, which answer one waiting
prompt each from a notification (mail, chat), without a session."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import timedelta
from typing import Any

from engine.api.v1 import link_service_pb2, workflow_service_pb2
from engine.cli.enginectl._actions import submission_target
from engine.cli.enginectl._client import CliError, EngineClient
from engine.cli.enginectl._common import (
    EXIT_OK,
    Subcommands,
    add_command,
    duration,
    json_or_string,
    json_output,
    print_lines,
)
from engine.cli.enginectl._output import advance_lines, local_time, print_json, value_json
from engine.wire import from_struct, to_value

__all__ = ["register"]


def register(commands: Subcommands) -> None:
    """Add ``link`` and its commands."""
    link = commands.add_parser(
        "link",
        help="make and use answer links",
        description="Answer links: each answers one waiting prompt, as one person, until it "
        "expires, with no token (the link is the credential).",
    )
    link_commands = link.add_subparsers(title="commands", metavar="COMMAND", required=True)

    create = add_command(
        link_commands,
        "create",
        create_link,
        "make a link that answers a waiting prompt",
        "Make a link for the prompt STEP_ID of run RUN_ID waits for (a step inside a foreach is "
        "found in its item's run), to send to the person who answers it. Prints the link and, "
        "when the HTTP API's address is known (ENGINE_HTTP_URL, else .engine/dev.env), the "
        "URL of its page.",
    )
    create.add_argument("workflow_id", metavar="RUN_ID", help="the run's workflow id")
    create.add_argument("step_id", metavar="STEP_ID", help="the waiting prompt's step")
    create.add_argument("--action", dest="action_id", metavar="ACTION_ID", help="the action's id")
    create.add_argument(
        "--subject", default="", metavar="WHO", help="who answers through it (default: you)"
    )
    create.add_argument(
        "--ttl",
        type=_ttl,
        metavar="TTL",
        help="how long it works: a duration such as 30m, 12h, 7d (default 1d, at most 30d)",
    )
    fixed = create.add_mutually_exclusive_group()
    fixed.add_argument(
        "--approve",
        dest="answer",
        action="store_const",
        const="true",
        help="a link that answers yes (a confirm prompt)",
    )
    fixed.add_argument(
        "--reject",
        dest="answer",
        action="store_const",
        const="false",
        help="a link that answers no (a confirm prompt)",
    )
    fixed.add_argument(
        "--answer",
        dest="answer",
        metavar="JSON",
        help="a link with this fixed answer, read as JSON when it is valid JSON, else as a "
        "string (default: the link opens the prompt's form)",
    )

    show = add_command(
        link_commands,
        "show",
        show_link,
        "show the prompt a link answers",
        "Show the prompt LINK answers (its question, type and options), who it answers as, "
        "and when it expires. Needs no token.",
    )
    show.add_argument("link", metavar="LINK", help="the link's token")

    answer = add_command(
        link_commands,
        "answer",
        answer_link,
        "answer a prompt through a link",
        "Answer the prompt LINK is for, as the link's person, and show where the run went. "
        "An approve or reject link gives its own answer: no VALUE. Needs no token.",
    )
    answer.add_argument("link", metavar="LINK", help="the link's token")
    answer.add_argument(
        "value",
        nargs="?",
        metavar="VALUE",
        help="the answer, read as JSON when it is valid JSON, else as a string",
    )


def _ttl(text: str) -> timedelta:
    """A duration above zero (the server enforces the upper bound, 30 days)."""
    span = duration(text)
    if span <= timedelta(0):
        raise argparse.ArgumentTypeError(f"must be more than 0s, got {text!r}")
    return span


def create_link(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl link create RUN_ID STEP_ID``: a link, and the URL of its page."""
    target = submission_target(client, args.workflow_id, args.step_id, args.action_id)
    workflow_id, action_id = target.workflow_id, target.action_id
    if not action_id:
        # Not waiting at that step, or no such run: GetWorkflow's own error says the latter.
        lookup = workflow_service_pb2.GetWorkflowRequest(workflow_id=args.workflow_id)
        workflow = client.call(client.workflows.GetWorkflow, lookup).workflow
        waiting = ", ".join(dict.fromkeys(a.step_id for a in workflow.pending_actions))
        raise CliError(
            f"run {args.workflow_id} waits for no action at step {args.step_id}"
            + (f" (it waits at: {waiting})" if waiting else " (it waits for nothing)")
        )
    request = link_service_pb2.CreateAnswerLinkRequest(
        workflow_id=workflow_id, action_id=action_id, subject=args.subject
    )
    if args.ttl is not None:
        request.ttl.FromTimedelta(args.ttl)
    if args.answer is not None:
        request.answer.CopyFrom(to_value(json_or_string(args.answer)))
    response = client.call(client.links.CreateAnswerLink, request)
    base = client.settings.http_url
    url = f"{base}/answer/{response.link}" if base else ""
    if json_output(args):
        print_json(
            {
                "link": response.link,
                "url": url or None,
                "expire_time": response.expire_time.ToJsonString()
                if response.HasField("expire_time")
                else None,
            },
            sys.stdout,
        )
        return EXIT_OK
    lines = [f"link:       {response.link}"]
    if url:
        lines.append(f"url:        {url}")
    lines.append(f"expires:    {local_time(response, 'expire_time')}")
    print_lines(lines)
    return EXIT_OK


def show_link(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl link show LINK``: the prompt a link answers, as whom, until when."""
    shown = client.call(
        client.links.GetAnswerLink, link_service_pb2.GetAnswerLinkRequest(link=args.link)
    )
    if json_output(args):
        print_json(shown, sys.stdout)
        return EXIT_OK
    action = shown.action
    parameters = from_struct(action.parameters)
    options = parameters.get("options")
    fields = [
        ("question", str(parameters.get("message") or "")),
        ("type", str(parameters.get("prompt_type") or "prompt")),
        ("options", ", ".join(map(_option_text, options)) if isinstance(options, list) else ""),
        ("run", action.workflow_id),
        ("step", action.step_id),
        ("action", action.action_id),
        ("answers as", shown.subject),
        ("answer", f"{value_json(shown.answer)} (fixed)" if shown.fixed else "any (a form)"),
        ("expires", local_time(shown, "expire_time")),
    ]
    print_lines([f"{name + ':':<12}{value}" for name, value in fields if value])
    return EXIT_OK


def _option_text(option: Any) -> str:
    return option if isinstance(option, str) else json.dumps(option, ensure_ascii=False)


def answer_link(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl link answer LINK [VALUE]``: answer through the link; where the run went."""
    # Looked at first: an expired or closed link fails here with its reason, and a form link
    # without a VALUE is caught before it submits a null.
    shown = client.call(
        client.links.GetAnswerLink, link_service_pb2.GetAnswerLinkRequest(link=args.link)
    )
    if args.value is None and not shown.fixed:
        raise CliError("this link opens the prompt's form: give the answer VALUE")
    if args.value is not None and shown.fixed:
        raise CliError(
            f"this link gives its own answer ({value_json(shown.answer)}): give no VALUE"
        )
    request = link_service_pb2.AnswerWithLinkRequest(link=args.link)
    if args.value is not None:
        request.result.CopyFrom(to_value(json_or_string(args.value)))
    advance = client.call(client.links.AnswerWithLink, request).advance
    if json_output(args):
        print_json(advance, sys.stdout)
        return EXIT_OK
    workflow_id = shown.action.workflow_id
    lines = advance_lines(
        workflow_id,
        advance.status,
        advance.current_step,
        advance.pending_actions,
        advance.result,
        advance.error,
    )
    prefix = f"run {workflow_id}: " if workflow_id else ""
    print_lines([f"{prefix}{lines[0]}", *lines[1:]] if lines else [])
    return EXIT_OK
