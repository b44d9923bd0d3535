"""``enginectl work shell`` and ``enginectl work mcp``: the reference runners, run until
interrupted (see :mod:`engine.executor._shell` and :mod:`engine.executor._mcp`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys
from pathlib import Path

import jwt

from engine.cli.enginectl._client import CliError
from engine.cli.enginectl._common import EXIT_OK, client_settings
from engine.config import ClientSettings
from engine.definition import RUNNER_LABEL
from engine.executor import Executor, ExecutorError, McpRunner, ShellRunner, parse_server
from engine.telemetry.tracing import setup_tracing

__all__ = ["run_runner"]


def run_runner(args: argparse.Namespace) -> int:
    """Run the runner ``args.runner`` names until interrupted."""
    settings = client_settings(args)
    if args.org is not None:
        _check_org(settings.token, args.org)
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s: %(message)s"
    )
    try:
        # Spans of the actions performed, when OTEL_* asks for traces (see
        # engine.telemetry.tracing); without, the actions' trace context still reaches the
        # control plane with each report.
        tracing = setup_tracing(service_name="enginectl-work")
    except ValueError as error:
        raise CliError(str(error)) from None
    try:
        return _run(args, settings)
    except ExecutorError as refused:
        raise CliError(f"the control plane refused: {refused}") from None
    finally:
        if tracing is not None:
            tracing.shutdown()


def _run(args: argparse.Namespace, settings: ClientSettings) -> int:
    if args.runner == "shell":
        root = Path(args.root)
        if not root.is_dir():
            raise CliError(f"--root {args.root}: not a directory")
        for label in args.labels:
            if not RUNNER_LABEL.fullmatch(label):
                raise CliError(
                    f"--label {label!r}: use lower-case letters, digits and '.', '_', '-'"
                )
        return asyncio.run(_shell(settings, root, args))
    servers = {}
    for text in args.server:
        try:
            name, argv = parse_server(text)
        except ValueError as error:
            raise CliError(f"--server: {error}") from None
        servers[name] = argv
    if not servers:
        raise CliError("work mcp needs at least one --server NAME=COMMAND")
    return asyncio.run(_mcp(settings, servers, args))


async def _shell(settings: ClientSettings, root: Path, args: argparse.Namespace) -> int:
    async with Executor(settings, identity=f"shell/{socket.gethostname()}") as executor:
        labels = tuple(dict.fromkeys(args.labels))
        runner = ShellRunner(
            executor,
            root,
            concurrency=args.concurrency or 1 + len(labels),
            max_output=args.max_output,
            max_time=args.max_time,
            labels=labels,
        )
        print(f"enginectl work shell: running shell actions under {root.resolve()}", flush=True)
        await runner.run(wait=args.wait)
    return EXIT_OK


async def _mcp(
    settings: ClientSettings, servers: dict[str, list[str]], args: argparse.Namespace
) -> int:
    async with Executor(settings, identity=f"mcp/{socket.gethostname()}") as executor:
        runner = McpRunner(executor, servers, concurrency=args.concurrency or 4)
        ready = asyncio.Event()
        task = asyncio.create_task(runner.run(wait=args.wait, ready=ready))
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            waiter.cancel()
            try:
                task.result()
            except RuntimeError as error:
                raise CliError(str(error)) from None
        names = ", ".join(sorted(servers))
        print(f"enginectl work mcp: performing mcp_call actions with {names}", flush=True)
        await task
    return EXIT_OK


def _check_org(token: str | None, org: str) -> None:
    """Refuse a token of another org than ``--org`` (read from the token, not verified: the
    control plane verifies it on every call)."""
    if not token:
        raise CliError("--org: no token (set ENGINE_TOKEN or --token)")
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        raise CliError(f"--org: the token does not read as a JWT: {error}") from None
    if claims.get("org") != org:
        raise CliError(
            f"--org {org}: the token is of org {claims.get('org')!r}; this runner was started "
            f"for {org!r} only"
        )
