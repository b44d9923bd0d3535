"""``work``, ``complete``, ``fail``, ``heartbeat``: the executor protocol, for scripts.

``enginectl work --type shell`` claims actions and prints each as one JSON line (the action,
its claim token, its lease); the script performs it and reports with ``enginectl complete
TOKEN RESULT`` or ``enginectl fail TOKEN MESSAGE`` before the lease runs out, or keeps it with
``enginectl heartbeat TOKEN``. A Python executor uses :mod:`engine.executor` instead, which
heartbeats by itself.
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from datetime import timedelta
from typing import Any, Final

from google.protobuf import duration_pb2

from engine.api.v1 import executor_service_pb2 as pb
from engine.api.v1 import resources_pb2
from engine.cli.enginectl._client import CliError, EngineClient
from engine.cli.enginectl._common import (
    EXIT_OK,
    Subcommands,
    add_command,
    json_or_string,
    positive_float,
    positive_int,
)
from engine.cli.enginectl._output import emit, to_dict
from engine.protocol import CLAIMED_ACTION_TYPES
from engine.wire import enum_name, enum_value, from_struct, to_value

__all__ = ["register"]

EXIT_NOTHING: Final = 3
"""Nothing to do: ``work --once`` got no action in time; ``heartbeat`` was told to stop."""


def register(commands: Subcommands) -> None:
    """Add ``work``, ``complete``, ``fail`` and ``heartbeat``."""
    work = add_command(
        commands,
        "work",
        claim_actions,
        "perform actions: a shell runner, an MCP executor, or JSON lines for a script",
        "'enginectl work shell' runs the org's shell actions; 'enginectl work mcp --server "
        "NAME=COMMAND' performs its mcp_call actions with those MCP servers. 'enginectl work "
        "--type T' claims the actions of one queue (a type, and for delegate an agent) as they "
        "come, and prints each as a JSON line: {action, claim_token, lease_seconds, delivery}; "
        "report each with 'enginectl complete' or 'enginectl fail' before its lease runs out "
        "(or keep it with 'enginectl heartbeat'); an action whose lease runs out goes to "
        "another executor. With --once, exits 3 when none came within --wait. Security: a "
        "runner performs what the org's definitions say; run it only for definitions you "
        "trust (see the README's Executors section).",
    )
    work.add_argument(
        "runner",
        nargs="?",
        choices=("shell", "mcp"),
        help="run the reference runner of shell actions, or of mcp_call actions",
    )
    work.add_argument(
        "--type",
        dest="action_type",
        choices=sorted(CLAIMED_ACTION_TYPES),
        help="without a runner: the actions to claim and print",
    )
    work.add_argument(
        "--root",
        default=".",
        metavar="DIR",
        help="shell: every command runs under DIR (its workdir taken below it; default .)",
    )
    work.add_argument(
        "--concurrency",
        type=positive_int,
        default=None,
        metavar="N",
        help="shell, mcp: actions performed at once (default: for shell 1 and one more per "
        "--label, for mcp 4)",
    )
    work.add_argument(
        "--max-output",
        type=positive_int,
        default=64 * 1024,
        metavar="BYTES",
        help="shell: bytes of stdout and of stderr kept, each (the last ones; default 65536)",
    )
    work.add_argument(
        "--label",
        dest="labels",
        action="append",
        default=[],
        metavar="LABEL",
        help="shell: also take the actions of steps that run_on LABEL (repeatable)",
    )
    work.add_argument(
        "--max-time",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="shell: kill a command after this long, if its action's timeout is longer",
    )
    work.add_argument(
        "--server",
        action="append",
        default=[],
        metavar="NAME=COMMAND",
        help="mcp: an MCP server to start (stdio) under NAME (repeatable)",
    )
    work.add_argument(
        "--org",
        metavar="ORG",
        help="shell, mcp: refuse to start unless the token is of this org",
    )
    work.add_argument("--agent", default="", help="for delegate: the agent, e.g. @reviewer")
    work.add_argument(
        "--once", action="store_true", help="claim one action and exit (3: none came in time)"
    )
    work.add_argument(
        "--wait",
        type=positive_float,
        default=30.0,
        metavar="SECONDS",
        help="longest to wait for an action per claim (at most 60, default 30)",
    )

    complete = add_command(
        commands,
        "complete",
        complete_action,
        "report the result of a claimed action",
        "Report the result of an action claimed with 'enginectl work'. The result is checked "
        "against the action's shape first (shell: {exit_code, stdout, stderr}).",
    )
    complete.add_argument("claim_token", metavar="TOKEN", help="the claim's token")
    complete.add_argument(
        "value", metavar="RESULT", help="the result, read as JSON when it is valid JSON"
    )
    complete.add_argument(
        "--request-id", metavar="KEY", help="idempotency key (default: a new one)"
    )

    fail = add_command(
        commands,
        "fail",
        fail_action,
        "report that a claimed action could not be performed",
        "Report that an action claimed with 'enginectl work' failed; the step's on_error "
        "decides what the run does next.",
    )
    fail.add_argument("claim_token", metavar="TOKEN", help="the claim's token")
    fail.add_argument("message", metavar="MESSAGE", help="what went wrong")
    fail.add_argument("--request-id", metavar="KEY", help="idempotency key (default: a new one)")

    heartbeat = add_command(
        commands,
        "heartbeat",
        heartbeat_action,
        "keep the lease of a claimed action",
        "Renew the lease of an action claimed with 'enginectl work'. Exits 3 when the engine "
        "says to stop (answered elsewhere, timed out, or the run was cancelled).",
    )
    heartbeat.add_argument("claim_token", metavar="TOKEN", help="the claim's token")


def claim_actions(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl work shell|mcp``: run a runner; ``enginectl work --type T``: claim actions
    and print each as a JSON line."""
    if args.runner is not None:
        from engine.cli.enginectl._runners import run_runner  # asyncio, and MCP, only here

        return run_runner(args)
    if args.action_type is None:
        raise CliError("say what to work on: 'work shell', 'work mcp' or 'work --type TYPE'")
    request = pb.PollActionRequest(
        action_type=resources_pb2.ActionType.ValueType(
            enum_value(resources_pb2.ActionType, args.action_type)
        ),
        agent=args.agent,
        wait=_duration(min(args.wait, 60.0)),
        identity=f"enginectl:{uuid.uuid4().hex[:8]}",
    )
    timeout = min(args.wait, 60.0) + 30
    while True:
        response = client.call(client.executors.PollAction, request, timeout=timeout)
        if response.HasField("action"):
            emit(json.dumps(_claim_json(response.action), ensure_ascii=False))
            sys.stdout.flush()
            if args.once:
                return EXIT_OK
        elif args.once:
            return EXIT_NOTHING


def _claim_json(claimed: pb.ClaimedAction) -> dict[str, Any]:
    action = to_dict(claimed.action)
    action["parameters"] = from_struct(claimed.action.parameters)
    action["type"] = enum_name(resources_pb2.ActionType, claimed.action.type)
    if claimed.action.HasField("state"):
        action["state"] = from_struct(claimed.action.state)
    return {
        "action": action,
        "claim_token": claimed.claim_token,
        "lease_seconds": claimed.lease.ToTimedelta().total_seconds(),
        "delivery": claimed.delivery,
    }


def complete_action(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl complete TOKEN RESULT``."""
    request = pb.CompleteActionRequest(
        claim_token=args.claim_token,
        result=to_value(json_or_string(args.value)),
        request_id=args.request_id or uuid.uuid4().hex,
    )
    client.call(client.executors.CompleteAction, request)
    emit("completed")
    return EXIT_OK


def fail_action(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl fail TOKEN MESSAGE``."""
    if not args.message.strip():
        raise CliError("say what went wrong: MESSAGE must not be empty")
    request = pb.FailActionRequest(
        claim_token=args.claim_token,
        error=args.message,
        request_id=args.request_id or uuid.uuid4().hex,
    )
    client.call(client.executors.FailAction, request)
    emit("failed")
    return EXIT_OK


def heartbeat_action(args: argparse.Namespace, client: EngineClient) -> int:
    """``enginectl heartbeat TOKEN``: exit 0 while the claim holds, 3 when told to stop."""
    response = client.call(
        client.executors.HeartbeatAction, pb.HeartbeatActionRequest(claim_token=args.claim_token)
    )
    if response.stop:
        emit("stop: the action was answered elsewhere, timed out, or its run was cancelled")
        return EXIT_NOTHING
    deadline = response.lease_deadline.ToDatetime().isoformat()
    emit(f"holding until {deadline}Z")
    return EXIT_OK


def _duration(seconds: float) -> duration_pb2.Duration:
    message = duration_pb2.Duration()
    message.FromTimedelta(timedelta(seconds=seconds))
    return message
