#!/usr/bin/env python3
"""Capacity: one ``engined serve`` holding N organizations, beside a raw Temporal SDK fleet.

    make bench-capacity                                  # N = 50, 200, 500
    .venv/bin/python scripts/bench_capacity.py --orgs 20,50 --svg /tmp/capacity.svg
    .venv/bin/python scripts/bench_capacity.py --quick   # N = 10: a smoke run
    .venv/bin/python scripts/bench_capacity.py --replot .benchmarks/capacity-<time>.json

Everything goes through the product's real surfaces: the engine is a real ``engined serve``
subprocess (control plane and worker pool in one process, as an operator runs it), driven only
over its gRPC API with bearer tokens, exactly like a client would. For each N, on a FRESH
``temporal server start-dev --headless`` (in-memory SQLite, free ports, the server's default
dynamic config unless ``--dynamic-config`` says otherwise):

1. ``engined serve`` starts with an HS256 secret (``ENGINE_TOKEN_SECRET``), a namespace prefix
   (``ENGINE_NAMESPACE_PREFIX``) and one day of retention; the benchmark mints a platform token
   (role ``platform``) and, per org, an org-member token (no role), as the tests do.
2. **Provisioning**: N ``OrganizationService.CreateOrganization`` calls, 8 at a time: orgs/s, the
   median call, and every error code.
3. **Registration**: ``DefinitionService.RegisterDefinition`` of a tiny definition (a
   ``set_state`` and a ``return``: a run that completes without any executor) in every org, with
   the org's token, 8 at a time. It lands in each org's registry workflow, so it also proves
   that the pool serves the org.
4. **Idle**: once the server sees a poller on the engine's task queue in every namespace
   (``DescribeTaskQueue``), ``engined``'s RSS and thread count (``/proc/<pid>/status``) and its
   CPU over 10 idle seconds (``utime + stime`` of ``/proc/<pid>/stat``), and the dev server's.
5. **One run in each org at once**: for every org concurrently, ``WorkflowService.StartWorkflow``
   with ``wait_for_suspension`` (update-with-start: the answer comes when the run has ended),
   with the org's token, over one channel. A run whose answer is not its end (a retried start
   answers with the run as it is) is followed with ``WatchWorkflow`` until it ends. The client
   honours ``google.rpc.RetryInfo``: a call refused with UNAVAILABLE or RESOURCE_EXHAUSTED that
   carries it (read from the ``grpc-status-details-bin`` trailer) is retried after the delay it
   gives, with the same request id, within a budget of 120 s per run; nothing else is
   retried. Each attempt's deadline is 60 s, or what is left of the budget, so a final
   DEADLINE_EXCEEDED after retries means the budget ran out. Reported: the wall time until every
   run ended, the first-try outcomes (the first answer was the completed run) and the final
   ones, by gRPC code, and for each UNAVAILABLE / RESOURCE_EXHAUSTED whether it carried
   RetryInfo. Provisioning and registration use the same policy.
6. **Raw SDK fleet** (``scripts/bench_capacity_raw.py``, a subprocess importing only
   ``temporalio``): in every org's namespace a default ``temporalio.worker.Worker`` running a
   trivial workflow on a task queue of its own, all over one client connection; idle RSS, threads
   and CPU once every namespace has its poller, then one ``client.execute_workflow`` per
   namespace, all at once.

The phases run one after the other: ``engined`` stays up (idle) through the raw phase, so the
raw fleet shares the dev server with an idle engine, and the engine's run phase happened before
the raw fleet existed. Then everything stops, and the next N starts from nothing. Both Python
subprocesses cache bytecode in a directory of the run's own (see :func:`python_environ`): the
workflow sandbox re-imports the workflow modules for every worker, and compiling them from
source each time (under ``PYTHONDONTWRITEBYTECODE``) is a cost no installed package pays.

Output: a table on stdout (one column per N), a JSON file (``--out``, default
``.benchmarks/capacity-<time>.json``: every figure, a message of each kind of error, the commit
and the uncommitted files measured, and where the logs of the run are kept), and an SVG plot
(``--svg``, default ``docs/capacity.svg``; with ``--quick`` it goes beside the JSON, so a smoke
run leaves the README's plot alone): threads, RSS and one-run-each seconds against N, engine
against raw. Linux only (``/proc``). Exit status 0 when every N was measured (failed calls and
runs are results, reported, not errors), 1 when an N could not be measured (the JSON says why),
2 on bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import types
import typing
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final, TypeVar
from xml.sax.saxutils import escape

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest, GetSystemInfoRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from engine.api.v1 import (
    definition_service_pb2,
    definition_service_pb2_grpc,
    organization_service_pb2,
    organization_service_pb2_grpc,
    resources_pb2,
    workflow_service_pb2,
    workflow_service_pb2_grpc,
)
from engine.cli._temporalbin import dev_server_command, free_port, temporal_cli
from engine.identity import PLATFORM, issue_token
from engine.wire import from_value, to_struct

ROOT: Final = Path(__file__).resolve().parent.parent
RAW_FLEET: Final = Path(__file__).resolve().with_name("bench_capacity_raw.py")
DEFAULT_ORGS: Final = (50, 200, 500)
QUICK_ORGS: Final = (10,)
DEFAULT_SVG: Final = ROOT / "docs" / "capacity.svg"

CONCURRENCY: Final = 8
"""Provisioning and registration calls in flight at once."""
IDLE_SECONDS: Final = 10.0
SETTLE_SECONDS: Final = 2.0
"""Quiet before an idle measurement, once every poller is seen (the pollers' first calls)."""
BUDGET: Final = 120.0
"""Seconds a call (with its retries), or a run from its start to its end, may take."""
CALL_TIMEOUT: Final = 60.0
"""The gRPC deadline of one attempt (the budget's remainder when that is shorter)."""
POLLING_TIMEOUT: Final = 180.0
"""Seconds for every namespace to show a poller."""
POLLING_STALL: Final = 10.0
"""Seconds without a namespace more showing the engine's poller after which the count stands."""
READY_TIMEOUT: Final = 90.0
"""Seconds for the dev server, engined or the raw fleet to come up."""
STOP_TIMEOUT: Final = 30.0
"""Seconds a process gets after SIGTERM (engined's own bound is 25 s by default)."""
DESCRIBE_RATE: Final = 100.0
"""DescribeTaskQueue calls a second at most while waiting for pollers."""

NAMESPACE_PREFIX: Final = "cap-"
ENGINE_TASK_QUEUE: Final = "engine"
RAW_TASK_QUEUE: Final = "raw-fleet"
ADMIN_ORG: Final = "capacity-admin"
"""The org claim of the platform token (a platform token needs an org claim, not an org)."""
TOKEN_TTL: Final = 4 * 3600
DEFINITION_NAME: Final = "cap-tiny"
DEFINITION_YAML: Final = """
name: cap-tiny
version: 1
description: The capacity benchmark's run, complete without any executor
inputs:
  n: {type: integer, required: true}
steps:
  - {id: double, type: set_state, set: {doubled: "${{ inputs.n * 2 }}"}}
  - {id: done, type: return, value: {org: "${{ org.id }}", doubled: "${{ state.doubled }}"}}
"""

RETRYABLE: Final = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})
ENDED: Final = frozenset(
    {
        resources_pb2.RUN_STATUS_COMPLETED,
        resources_pb2.RUN_STATUS_FAILED,
        resources_pb2.RUN_STATUS_CANCELLED,
    }
)
OK: Final = "OK"
MESSAGES_KEPT: Final = 12
"""Distinct (code, reason) messages kept per phase: every INTERNAL id, for example."""
MIB: Final = 1024 * 1024

_T = TypeVar("_T")


# -------------------------------------------------------------------------- /proc readings


@dataclass(frozen=True)
class Usage:
    """A process's resident memory and thread count at one moment."""

    rss_mib: float
    threads: int

    @classmethod
    def of(cls, pid: int) -> Usage:
        """Read ``VmRSS`` and ``Threads`` from ``/proc/<pid>/status``."""
        fields = {}
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.split()
        return cls(int(fields["VmRSS"][0]) * 1024 / MIB, int(fields["Threads"][0]))


def cpu_seconds(pid: int) -> float:
    """CPU time the process has used (user + system, every thread), from ``/proc/<pid>/stat``."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces: count fields from after its parenthesis.
    after_name = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(after_name[11]), int(after_name[12])  # fields 14 and 15
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def thread_names(pid: int, top: int = 3) -> str:
    """The most common thread names of the process (``/proc/<pid>/task/*/comm``)."""
    names: Counter[str] = Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread may end while we look
            names[(task / "comm").read_text().strip()] += 1
    return ", ".join(f"{name} x{count}" for name, count in names.most_common(top))


async def idle_cpu(pids: Mapping[str, int], seconds: float) -> dict[str, float]:
    """Each process's CPU over the same ``seconds``, in percent of one core."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    began = time.monotonic()
    await asyncio.sleep(seconds)
    wall = time.monotonic() - began
    return {name: (cpu_seconds(pid) - before[name]) / wall * 100 for name, pid in pids.items()}


@dataclass
class ProcessFigures:
    """What one process costs: idle, and after the runs of its phase.

    Attributes:
        rss_mib: Resident memory, idle (every namespace served, nothing to do).
        threads: Threads of the process (native ones included), idle.
        idle_cpu_percent: CPU over the idle window, in percent of one core.
        top_threads: Its most common thread names, idle.
        rss_after_runs_mib: Resident memory once the one-run-each phase has ended.
        threads_after_runs: Threads then.
    """

    rss_mib: float
    threads: int
    idle_cpu_percent: float
    top_threads: str
    rss_after_runs_mib: float | None = None
    threads_after_runs: int | None = None

    def after_runs(self, pid: int) -> None:
        """Record the usage of ``pid`` now, as after the runs."""
        usage = Usage.of(pid)
        self.rss_after_runs_mib, self.threads_after_runs = usage.rss_mib, usage.threads


# -------------------------------------------------------------------------- processes


def stop_process(process: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> float:
    """SIGTERM, then SIGKILL after ``timeout``: the seconds it took to exit."""
    began = time.monotonic()
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return time.monotonic() - began


def python_environ(pycache: Path) -> dict[str, str]:
    """The environment of a Python subprocess (engined, the raw fleet): bytecode cached.

    Both run their workflows in Temporal's sandbox, which imports the workflow modules anew
    for every worker; without cached bytecode (``PYTHONDONTWRITEBYTECODE``, set on some
    machines) each import compiles them from source again, a cost no installed package pays.
    So the cache is on, in a directory of the benchmark's own (``PYTHONPYCACHEPREFIX``): the
    checkout stays clean, and every N starts with the same cache.
    """
    environ = dict(os.environ)
    environ.pop("PYTHONDONTWRITEBYTECODE", None)
    environ["PYTHONPYCACHEPREFIX"] = str(pycache)
    return environ


def _log_tail(path: Path, size: int = 3000) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-size:]
    return ""


class DevServer:
    """``temporal server start-dev --headless`` on free ports, in memory, logging to a file.

    Args:
        workdir: Where its log goes.
        dynamic_config: ``KEY=VALUE`` values for ``--dynamic-config-value``.
    """

    def __init__(self, workdir: Path, dynamic_config: Sequence[str]) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        self.log = workdir / "temporal.log"
        self.dynamic_config = list(dynamic_config)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> Client:
        """Start it and wait until it answers; a client of its ``default`` namespace."""
        port = int(self.address.rsplit(":", 1)[1])
        command = dev_server_command(port, dynamic_config=self.dynamic_config, log_level="warn")
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the dev server exited: {_log_tail(self.log)}")
            with contextlib.suppress(Exception):
                client = await Client.connect(self.address)
                await client.workflow_service.get_system_info(GetSystemInfoRequest())
                return client
            if time.monotonic() > deadline:
                raise RuntimeError(f"the dev server did not answer within {READY_TIMEOUT:g} s")
            await asyncio.sleep(0.2)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


class Engined:
    """``engined serve`` (control plane and worker pool) as an operator starts it.

    Args:
        temporal_address: The dev server's frontend.
        secret: The HS256 token secret.
        workdir: Where its log goes.
        environ: Its environment (see :func:`python_environ`), less any ``ENGINE_*`` and
            ``TEMPORAL_*`` setting: the benchmark sets those.
    """

    READY: Final = "control plane listening on port"

    def __init__(
        self, temporal_address: str, secret: str, workdir: Path, environ: Mapping[str, str]
    ) -> None:
        self.address = f"127.0.0.1:{free_port()}"
        self.temporal_address = temporal_address
        self.secret = secret
        self.log = workdir / "engined.log"
        self.environ = {
            key: value
            for key, value in environ.items()
            if not key.startswith(("ENGINE_", "TEMPORAL_"))
        } | {
            "TEMPORAL_ADDRESS": temporal_address,
            "ENGINE_TOKEN_SECRET": secret,
            "ENGINE_NAMESPACE_PREFIX": NAMESPACE_PREFIX,
            "ENGINE_RETENTION_DAYS": "1",
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def check_alive(self) -> None:
        """Raise if the process has exited."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(
                f"engined exited with status {self.process.returncode}: {_log_tail(self.log)}"
            )

    async def start(self) -> None:
        """Start it and wait until its control plane listens."""
        # The installed console script (what `pip install` gives an operator); its process is
        # the Python process itself, so its pid is the engine's.
        launcher = Path(sys.executable).with_name("engined")
        command = [str(launcher)] if launcher.exists() else [sys.executable, "cmd/engined"]
        command += ["serve", "--listen", self.address]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.environ, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + READY_TIMEOUT
        while self.READY not in self.log.read_text(errors="replace"):
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"engined did not listen within {READY_TIMEOUT:g} s")
            await asyncio.sleep(0.1)

    def stop(self) -> float:
        """Stop it (SIGTERM): the seconds it took."""
        return stop_process(self.process) if self.process is not None else 0.0


class RawFleet:
    """``scripts/bench_capacity_raw.py`` as a subprocess: a default SDK worker per namespace.

    Args:
        temporal_address: The dev server's frontend.
        namespaces: A worker for each.
        workdir: Where its log (its standard error) goes.
        environ: Its environment (see :func:`python_environ`).
    """

    def __init__(
        self,
        temporal_address: str,
        namespaces: Sequence[str],
        workdir: Path,
        environ: Mapping[str, str],
    ) -> None:
        self.temporal_address = temporal_address
        self.namespaces = list(namespaces)
        self.log = workdir / "raw-fleet.log"
        self.environ = dict(environ)
        self.process: asyncio.subprocess.Process | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self) -> None:
        """Start the fleet and wait until every worker runs."""
        self._log_file = self.log.open("wb")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(RAW_FLEET),
            "--address",
            self.temporal_address,
            "--namespaces",
            ",".join(self.namespaces),
            "--task-queue",
            RAW_TASK_QUEUE,
            "--budget",
            str(BUDGET),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log_file,
            env=self.environ,
            # Large answers (every run's seconds) on one line.
            limit=16 * MIB,
        )
        await self._event("started", READY_TIMEOUT)

    async def run_one_each(self) -> dict[str, Any]:
        """One workflow per namespace, at once: the fleet's report."""
        await self._send("run")
        return await self._event("ran", BUDGET + 60)

    async def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(Exception):
            await self._send("stop")
            await self._event("stopped", STOP_TIMEOUT)
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        if self._log_file is not None:
            self._log_file.close()

    async def _send(self, command: str) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(f"{command}\n".encode())
        await self.process.stdin.drain()

    async def _event(self, expected: str, timeout: float) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            await self.process.wait()
            raise RuntimeError(
                f"the raw fleet exited with status {self.process.returncode} before "
                f"'{expected}': {_log_tail(self.log)}"
            )
        event: dict[str, Any] = json.loads(line)
        if event.get("event") != expected:
            raise RuntimeError(f"the raw fleet said {event!r}, expected '{expected}'")
        return event


@dataclass
class Polling:
    """What waiting for pollers found.

    Attributes:
        seconds: How long it took.
        polled: How many namespaces showed a poller.
        refused: DescribeTaskQueue calls the server refused (its rate limits), then retried.
    """

    seconds: float
    polled: int
    refused: int


class Pacer:
    """Spaces calls at least ``1 / rate`` seconds apart."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self.next_at = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        delay = self.next_at - now
        self.next_at = max(now, self.next_at) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


async def wait_polling(
    temporal: Client,
    namespaces: Sequence[str],
    task_queue: str,
    *,
    stall: float | None = None,
    timeout: float = POLLING_TIMEOUT,
) -> Polling:
    """Wait until the server sees a workflow poller on ``task_queue`` in every namespace.

    The server lists the pollers it saw in the last minutes (``DescribeTaskQueue``). The calls
    are paced (:data:`DESCRIBE_RATE`): the server's rate limits are shared with what is being
    measured; a call it refuses counts as "not yet".

    Args:
        temporal: A client of the server (the namespace is in each request).
        namespaces: Where to look.
        task_queue: The task queue to look at.
        stall: Give up (without an error) once this many seconds pass without one more
            namespace showing a poller: for a pool that need not poll every namespace.
        timeout: Give up after this many seconds in all.

    Raises:
        RuntimeError: Some namespaces had no poller after ``timeout`` (a few named), and
            ``stall`` was not given.
    """
    pacer = Pacer(DESCRIBE_RATE)
    refused = 0

    async def polled(namespace: str) -> bool:
        nonlocal refused
        await pacer.wait()
        try:
            response = await temporal.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=namespace,
                    task_queue=TaskQueue(name=task_queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                )
            )
        except RPCError as error:
            if error.status not in (RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.UNAVAILABLE):
                raise
            refused += 1
            return False
        return len(response.pollers) > 0

    began = grew = time.monotonic()
    waiting = list(namespaces)
    while waiting:
        answers = await asyncio.gather(*(polled(n) for n in waiting))
        still = [n for n, seen in zip(waiting, answers, strict=True) if not seen]
        now = time.monotonic()
        grew = now if len(still) < len(waiting) else grew
        waiting = still
        if waiting and stall is not None and (now - grew > stall or now - began > timeout):
            break
        if waiting and now - began > timeout:
            raise RuntimeError(
                f"{len(waiting)} namespaces have no poller on '{task_queue}' after "
                f"{timeout:g} s, e.g. {', '.join(waiting[:5])}"
            )
        if waiting:
            await asyncio.sleep(0.5)
    return Polling(time.monotonic() - began, len(namespaces) - len(waiting), refused)


# -------------------------------------------------------------------------- the client


@dataclass(frozen=True)
class Failure:
    """One failed attempt of a gRPC call, as the client saw it.

    Attributes:
        code: The gRPC status code's name.
        message: The status message.
        reason: The ``ErrorInfo`` reason of the rich status ("" when there is none).
        retry_delay: The ``RetryInfo`` delay in seconds; None when the status carried none.
    """

    code: str
    message: str
    reason: str
    retry_delay: float | None

    @classmethod
    def of(cls, error: grpc.aio.AioRpcError) -> Failure:
        """Read the code, message, ErrorInfo and RetryInfo of a failed call."""
        reason, delay = "", None
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
        for packed in status.details if status is not None else ():
            assert isinstance(packed, any_pb2.Any)
            if packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                packed.Unpack(info)
                reason = info.reason
            elif packed.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                packed.Unpack(retry)
                delay = retry.retry_delay.seconds + retry.retry_delay.nanos / 1e9
        return cls(error.code().name, error.details() or "", reason, delay)

    @property
    def label(self) -> str:
        """The code, and for the codes that may be retried, whether RetryInfo came with it."""
        if self.code not in {c.name for c in RETRYABLE}:
            return self.code
        return (
            f"{self.code}+RetryInfo" if self.retry_delay is not None else f"{self.code}-noRetryInfo"
        )


class CallFailedError(Exception):
    """A call that failed for good: not retryable, or out of budget."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(f"{failure.code}: {failure.message}")
        self.failure = failure


async def with_retries(
    attempt: Callable[[float], Awaitable[_T]], deadline: float, failures: list[Failure]
) -> _T:
    """Call ``attempt(timeout)`` until it succeeds, honouring RetryInfo.

    A failure with a code of :data:`RETRYABLE` that carries RetryInfo is retried after the
    delay it gives, while that leaves time before ``deadline`` (``time.monotonic()``); any
    other failure ends the call. Every failed attempt is appended to ``failures``.

    Raises:
        CallFailedError: With the last failure.
    """
    while True:
        remaining = deadline - time.monotonic()
        try:
            return await attempt(max(min(CALL_TIMEOUT, remaining), 0.1))
        except grpc.aio.AioRpcError as error:
            failure = Failure.of(error)
            failures.append(failure)
            retryable = error.code() in RETRYABLE and failure.retry_delay is not None
            if not retryable or time.monotonic() + (failure.retry_delay or 0) >= deadline:
                raise CallFailedError(failure) from None
            await asyncio.sleep(failure.retry_delay or 0)


class EngineClient:
    """The benchmark as a client of the control plane: one channel, a token per caller.

    Args:
        address: The control plane's ``host:port``.
        secret: The HS256 secret its tokens are signed with.
    """

    def __init__(self, address: str, secret: str) -> None:
        self.channel = grpc.aio.insecure_channel(address)
        self.organizations = organization_service_pb2_grpc.OrganizationServiceStub(self.channel)
        self.definitions = definition_service_pb2_grpc.DefinitionServiceStub(self.channel)
        self.workflows = workflow_service_pb2_grpc.WorkflowServiceStub(self.channel)
        self.secret = secret
        self.platform = self._bearer(
            issue_token(secret, ADMIN_ORG, roles=[PLATFORM], ttl_seconds=TOKEN_TTL)
        )
        self._members: dict[str, tuple[tuple[str, str], ...]] = {}

    @staticmethod
    def _bearer(token: str) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {token}"),)

    def member(self, org_id: str) -> tuple[tuple[str, str], ...]:
        """Call metadata with a member token of ``org_id`` (no role: may start and register)."""
        if org_id not in self._members:
            self._members[org_id] = self._bearer(
                issue_token(self.secret, org_id, ttl_seconds=TOKEN_TTL)
            )
        return self._members[org_id]

    async def close(self) -> None:
        await self.channel.close()


# -------------------------------------------------------------------------- outcomes


@dataclass
class Outcome:
    """One logical call (with its retries), or one run from its start to its end.

    Attributes:
        org_id: The org it was for.
        first: ``OK``, or what the first attempt ended with: a :attr:`Failure.label` (a gRPC
            code, with ``+RetryInfo`` or ``-noRetryInfo`` for the retryable ones); for a run,
            also the status of a run that had not ended when the first answer came, or how an
            ended run was wrong (``RUN_FAILED``, ``WRONG_RESULT``).
        final: ``OK``, or what it ended with in the end (likewise).
        seconds: From the first attempt to the final outcome.
        failures: Every failed attempt, in order.
    """

    org_id: str
    first: str
    final: str
    seconds: float
    failures: list[Failure] = field(default_factory=list)


@dataclass
class Phase:
    """A phase of calls (or runs), one per org: rates, latencies and every error seen.

    Attributes:
        calls: Calls (or runs) made.
        succeeded: How many ended ``OK`` (after retries).
        first_try_ok: How many were ``OK`` at the first attempt.
        seconds: Wall time of the whole phase.
        per_second: ``calls / seconds``.
        median_s: Median seconds of one call (with its retries).
        max_s: The slowest.
        first_try: First-attempt outcomes (:attr:`Outcome.first`), with counts.
        final: Final outcomes, with counts.
        failed_attempts: Every failed attempt by code (``UNAVAILABLE+RetryInfo`` and
            ``UNAVAILABLE-noRetryInfo`` told apart, likewise RESOURCE_EXHAUSTED).
        retries: Attempts beyond the first.
        messages: ``CODE reason`` -> one message of that kind (the first few kinds seen).
    """

    calls: int
    succeeded: int
    first_try_ok: int
    seconds: float
    per_second: float
    median_s: float
    max_s: float
    first_try: dict[str, int]
    final: dict[str, int]
    failed_attempts: dict[str, int]
    retries: int
    messages: dict[str, str]

    @classmethod
    def of(cls, outcomes: Sequence[Outcome], seconds: float) -> Phase:
        durations = sorted(o.seconds for o in outcomes) or [0.0]
        attempts = [f for o in outcomes for f in o.failures]
        messages: dict[str, str] = {}
        for failure in attempts:
            kind = f"{failure.code} {failure.reason}".strip()
            if kind not in messages and len(messages) < MESSAGES_KEPT:
                messages[kind] = failure.message
        return cls(
            calls=len(outcomes),
            succeeded=sum(o.final == OK for o in outcomes),
            first_try_ok=sum(o.first == OK for o in outcomes),
            seconds=seconds,
            per_second=len(outcomes) / seconds if seconds > 0 else 0.0,
            median_s=statistics.median(durations),
            max_s=durations[-1],
            first_try=dict(Counter(o.first for o in outcomes).most_common()),
            final=dict(Counter(o.final for o in outcomes).most_common()),
            failed_attempts=dict(Counter(f.label for f in attempts).most_common()),
            retries=sum(max(len(o.failures) - (o.final != OK), 0) for o in outcomes),
            messages=messages,
        )

    def failures_text(self) -> str:
        """First-try failures by code, then the final ones: ``-`` when there were none."""
        first = {k: v for k, v in self.first_try.items() if k != OK}
        final = {k: v for k, v in self.final.items() if k != OK}
        if not first and not final:
            return "-"
        text = " ".join(f"{k} {v}" for k, v in first.items()) or "none"
        return f"{text}; final: " + (" ".join(f"{k} {v}" for k, v in final.items()) or "none")


async def bounded(
    items: Iterable[_T], concurrency: int, call: Callable[[_T], Awaitable[Outcome]]
) -> list[Outcome]:
    """``call`` on every item, at most ``concurrency`` at a time."""
    limit = asyncio.Semaphore(concurrency)

    async def one(item: _T) -> Outcome:
        async with limit:
            return await call(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


async def _unary(org_id: str, attempt: Callable[[float], Awaitable[object]]) -> Outcome:
    """One unary call through :func:`with_retries`, as an outcome."""
    failures: list[Failure] = []
    began = time.monotonic()
    try:
        await with_retries(attempt, began + BUDGET, failures)
    except CallFailedError as failed:
        return Outcome(
            org_id, failures[0].label, failed.failure.label, time.monotonic() - began, failures
        )
    first = failures[0].label if failures else OK
    return Outcome(org_id, first, OK, time.monotonic() - began, failures)


async def provision(client: EngineClient, org_ids: Sequence[str]) -> Phase:
    """CreateOrganization for every org, :data:`CONCURRENCY` at a time."""

    async def create(org_id: str) -> Outcome:
        request = organization_service_pb2.CreateOrganizationRequest(org_id=org_id)
        return await _unary(
            org_id,
            lambda timeout: client.organizations.CreateOrganization(
                request, metadata=client.platform, timeout=timeout
            ),
        )

    began = time.monotonic()
    outcomes = await bounded(org_ids, CONCURRENCY, create)
    return Phase.of(outcomes, time.monotonic() - began)


async def register(client: EngineClient, org_ids: Sequence[str]) -> Phase:
    """RegisterDefinition of the tiny definition in every org, with the org's own token."""

    async def register_in(org_id: str) -> Outcome:
        request = definition_service_pb2.RegisterDefinitionRequest(yaml=DEFINITION_YAML)
        return await _unary(
            org_id,
            lambda timeout: client.definitions.RegisterDefinition(
                request, metadata=client.member(org_id), timeout=timeout
            ),
        )

    began = time.monotonic()
    outcomes = await bounded(org_ids, CONCURRENCY, register_in)
    return Phase.of(outcomes, time.monotonic() - began)


def _status_name(status: int) -> str:
    return str(resources_pb2.RunStatus.Name(status)).removeprefix("RUN_STATUS_")  # type: ignore[arg-type]


async def run_once(client: EngineClient, org_id: str, index: int) -> Outcome:
    """Start the tiny definition in ``org_id`` and wait for its end, as a client would.

    ``StartWorkflow`` with ``wait_for_suspension`` answers when the run ended (it never
    suspends). A retried start (same request id) answers with the run as it is then: if it has
    not ended, ``WatchWorkflow`` follows it to its end.
    """
    metadata = client.member(org_id)
    request = workflow_service_pb2.StartWorkflowRequest(
        definition_name=DEFINITION_NAME,
        inputs=to_struct({"n": index}),
        request_id=f"capacity-{org_id}-{uuid.uuid4().hex}",
        wait_for_suspension=True,
    )
    expected = {"org": org_id, "doubled": 2 * index}
    failures: list[Failure] = []
    began = time.monotonic()
    deadline = began + BUDGET

    async def watch(workflow_id: str, timeout: float) -> resources_pb2.Workflow | None:
        """The run once it has ended; None if the stream ends before it does."""
        stream = client.workflows.WatchWorkflow(
            workflow_service_pb2.WatchWorkflowRequest(workflow_id=workflow_id),
            metadata=metadata,
            timeout=timeout,
        )
        async for message in stream:
            if message.workflow.status in ENDED:
                stream.cancel()
                return message.workflow
        return None

    first: str | None = None
    try:
        started = await with_retries(
            lambda timeout: client.workflows.StartWorkflow(
                request, metadata=metadata, timeout=timeout
            ),
            deadline,
            failures,
        )
        ended = started.status in ENDED
        first = failures[0].label if failures else (OK if ended else _status_name(started.status))
        run: workflow_service_pb2.StartWorkflowResponse | resources_pb2.Workflow | None = started
        if not ended:
            run = await with_retries(
                lambda timeout: watch(started.workflow_id, timeout), deadline, failures
            )
    except CallFailedError as failed:
        first = first or failures[0].label
        return Outcome(org_id, first, failed.failure.label, time.monotonic() - began, failures)
    seconds = time.monotonic() - began
    if run is None:
        wrong = Failure("WATCH_ENDED", "WatchWorkflow ended before the run did", "", None)
    elif run.status != resources_pb2.RUN_STATUS_COMPLETED:
        wrong = Failure(f"RUN_{_status_name(run.status)}", run.error, "", None)
    elif from_value(run.result) != expected:
        wrong = Failure("WRONG_RESULT", f"{from_value(run.result)!r} != {expected!r}", "", None)
    else:
        return Outcome(org_id, first, OK, seconds, failures)
    failures.append(wrong)
    return Outcome(org_id, wrong.code if first == OK else first, wrong.code, seconds, failures)


async def one_run_each(client: EngineClient, org_ids: Sequence[str]) -> Phase:
    """A run in every org, all at once; the phase ends when the last has ended."""
    began = time.monotonic()
    outcomes = await asyncio.gather(*(run_once(client, o, i) for i, o in enumerate(org_ids)))
    return Phase.of(outcomes, time.monotonic() - began)


# -------------------------------------------------------------------------- one N


@dataclass
class EngineFigures:
    """``engined serve`` at one N, through its gRPC API.

    Attributes:
        provision: CreateOrganization of every org.
        register: RegisterDefinition in every org.
        empty: engined's usage once listening, before any org.
        polling: Once registered: how many namespaces showed the engine's poller, and how long
            that took to stop growing.
        process: engined idle (every org registered), and after its runs.
        dev_server: The dev server over the same idle window, and after the runs.
        runs: One run in each org at once.
    """

    provision: Phase
    register: Phase
    empty: Usage
    polling: Polling
    process: ProcessFigures
    dev_server: ProcessFigures
    runs: Phase


@dataclass
class RawFigures:
    """The raw SDK fleet at one N.

    Attributes:
        seconds: One ``execute_workflow`` per namespace at once, until the last returned.
        succeeded: How many returned the expected result.
        failures: Failures by kind (``RPCError <status>`` or the exception's type).
        messages: One message per failure kind.
        median_s: Median start-to-result seconds of the runs that returned.
        max_s: The slowest of them.
        polling: From the fleet's start until every namespace showed its poller.
        process: Its RSS, threads and idle CPU, and after its runs.
        dev_server_idle_cpu_percent: The dev server's CPU over the same idle window (both
            fleets polling).
        engined_idle_cpu_percent: engined's CPU over that window.
    """

    seconds: float
    succeeded: int
    failures: dict[str, int]
    messages: dict[str, str]
    median_s: float
    max_s: float
    polling: Polling
    process: ProcessFigures
    dev_server_idle_cpu_percent: float
    engined_idle_cpu_percent: float


@dataclass
class CapacityResult:
    """Everything measured at one N.

    Attributes:
        orgs: N.
        engine: engined serve, through gRPC.
        raw: The raw SDK fleet; None when it could not be measured (``raw_error`` says why).
        raw_error: Why the raw fleet could not be measured.
        ratio: One run in each org: the engine's seconds over the raw fleet's.
        engined_stop_s: engined's SIGTERM to exit.
        logs: Where the dev server's, engined's and the raw fleet's logs are.
    """

    orgs: int
    engine: EngineFigures
    raw: RawFigures | None
    raw_error: str | None
    ratio: float | None
    engined_stop_s: float
    logs: dict[str, str]


def _org_ids(count: int) -> list[str]:
    width = max(3, len(str(count - 1)))
    return [f"org-{i:0{width}d}" for i in range(count)]


async def _idle(pids: Mapping[str, int]) -> dict[str, ProcessFigures]:
    """Settle, then each process's CPU over the idle window, and its RSS and threads."""
    await asyncio.sleep(SETTLE_SECONDS)
    cpu = await idle_cpu(pids, IDLE_SECONDS)
    figures = {}
    for name, pid in pids.items():
        usage = Usage.of(pid)
        figures[name] = ProcessFigures(usage.rss_mib, usage.threads, cpu[name], thread_names(pid))
    return figures


def _say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def engine_phase(
    org_ids: Sequence[str], temporal: Client, server: DevServer, engined: Engined
) -> EngineFigures:
    """Provision, register, idle, one run each: the engine's phase."""
    count = len(org_ids)
    empty = Usage.of(engined.pid)
    client = EngineClient(engined.address, engined.secret)
    try:
        provisioned = await provision(client, org_ids)
        _say(f"N={count}: provisioned {provisioned.succeeded} in {provisioned.seconds:.1f} s")
        registered = await register(client, org_ids)
        _say(f"N={count}: registered {registered.succeeded} in {registered.seconds:.1f} s")
        # Registration went through every org's registry workflow, so the pool serves them
        # all; how many namespaces it polls at once is the pool's business: counted, not required.
        namespaces = [NAMESPACE_PREFIX + o for o in org_ids]
        polling = await wait_polling(temporal, namespaces, ENGINE_TASK_QUEUE, stall=POLLING_STALL)
        engined.check_alive()
        idle = await _idle({"engined": engined.pid, "dev_server": server.pid})
        _say(f"N={count}: engined idle at {idle['engined'].rss_mib:.0f} MiB; one run in each org")
        runs = await one_run_each(client, org_ids)
        engined.check_alive()
        idle["engined"].after_runs(engined.pid)
        idle["dev_server"].after_runs(server.pid)
        _say(f"N={count}: engine runs: {runs.succeeded} in {runs.seconds:.1f} s")
    finally:
        await client.close()
    return EngineFigures(
        provisioned, registered, empty, polling, idle["engined"], idle["dev_server"], runs
    )


async def raw_phase(
    namespaces: Sequence[str],
    temporal: Client,
    server: DevServer,
    engined: Engined,
    workdir: Path,
    environ: Mapping[str, str],
) -> RawFigures:
    """The raw SDK fleet beside the (idle) engine: start, idle, one run each, stop."""
    fleet = RawFleet(server.address, namespaces, workdir, environ)
    try:
        began = time.monotonic()
        await fleet.start()
        polling = await wait_polling(temporal, namespaces, RAW_TASK_QUEUE)  # every one, or raise
        polling.seconds = time.monotonic() - began
        idle = await _idle({"raw": fleet.pid, "dev_server": server.pid, "engined": engined.pid})
        ran = await fleet.run_one_each()
        idle["raw"].after_runs(fleet.pid)
    finally:
        await fleet.stop()
    run_seconds: list[float] = ran["run_seconds"] or [0.0]
    _say(f"N={len(namespaces)}: raw runs: {ran['succeeded']} in {ran['seconds']:.1f} s")
    return RawFigures(
        seconds=ran["seconds"],
        succeeded=ran["succeeded"],
        failures=ran["failures"],
        messages=ran["messages"],
        median_s=statistics.median(run_seconds),
        max_s=max(run_seconds),
        polling=polling,
        process=idle["raw"],
        dev_server_idle_cpu_percent=idle["dev_server"].idle_cpu_percent,
        engined_idle_cpu_percent=idle["engined"].idle_cpu_percent,
    )


async def measure(
    count: int, workdir: Path, dynamic_config: Sequence[str], environ: Mapping[str, str]
) -> CapacityResult:
    """Measure one N, from a fresh dev server to the end of the raw phase; stop everything.

    Args:
        count: N, the number of organizations.
        workdir: Where the logs of this N go.
        dynamic_config: The dev server's ``--dynamic-config-value`` values.
        environ: The environment of the Python subprocesses (:func:`python_environ`).

    Raises:
        Exception: The dev server or engined failed, or the engine's phase could not finish
            (a failure of the raw phase is recorded in the result instead).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    org_ids = _org_ids(count)
    server = DevServer(workdir, dynamic_config)
    engined: Engined | None = None
    try:
        temporal = await server.start()
        engined = Engined(server.address, secrets.token_urlsafe(32), workdir, environ)
        await engined.start()
        _say(f"N={count}: dev server {server.address}, engined {engined.address}")
        engine = await engine_phase(org_ids, temporal, server, engined)
        raw: RawFigures | None = None
        raw_error: str | None = None
        try:
            namespaces = [NAMESPACE_PREFIX + o for o in org_ids]
            raw = await raw_phase(namespaces, temporal, server, engined, workdir, environ)
        except Exception as error:
            raw_error = f"{type(error).__name__}: {error}"
            _say(f"N={count}: the raw fleet could not be measured: {raw_error}")
        stop_s = engined.stop()
    finally:
        if engined is not None:
            engined.stop()
        server.stop()
    return CapacityResult(
        orgs=count,
        engine=engine,
        raw=raw,
        raw_error=raw_error,
        ratio=engine.runs.seconds / raw.seconds if raw is not None and raw.seconds > 0 else None,
        engined_stop_s=stop_s,
        logs={
            "dev_server": str(server.log),
            "engined": str(engined.log),
            "raw_fleet": str(workdir / "raw-fleet.log"),
        },
    )


# -------------------------------------------------------------------------- report


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _engine_rows() -> list[tuple[str, Callable[[EngineFigures], str]]]:
    return [
        ("provision: orgs/s", lambda e: f"{e.provision.per_second:.1f}"),
        ("provision: median call (ms)", lambda e: f"{e.provision.median_s * 1e3:.0f}"),
        ("provision: failures (first; final)", lambda e: e.provision.failures_text()),
        ("register: definitions/s", lambda e: f"{e.register.per_second:.1f}"),
        ("register: failures (first; final)", lambda e: e.register.failures_text()),
        ("engined: namespaces with a poller", lambda e: str(e.polling.polled)),
        ("engined RSS, no org (MiB)", lambda e: _mib(e.empty.rss_mib)),
        ("engined RSS, idle (MiB)", lambda e: _mib(e.process.rss_mib)),
        ("engined RSS, after runs (MiB)", lambda e: _mib(e.process.rss_after_runs_mib)),
        (
            "engined threads, idle / after runs",
            lambda e: f"{e.process.threads} / {e.process.threads_after_runs}",
        ),
        ("engined idle CPU (% of a core)", lambda e: f"{e.process.idle_cpu_percent:.1f}"),
        ("dev server RSS, idle (MiB)", lambda e: _mib(e.dev_server.rss_mib)),
        ("dev server idle CPU, engine only (%)", lambda e: f"{e.dev_server.idle_cpu_percent:.1f}"),
        ("engine one run each (s)", lambda e: f"{e.runs.seconds:.2f}"),
        ("  per run median / max (s)", lambda e: f"{e.runs.median_s:.2f} / {e.runs.max_s:.2f}"),
        (
            "  completed: first try / final",
            lambda e: f"{e.runs.first_try_ok} / {e.runs.succeeded}",
        ),
        ("  failures (first; final)", lambda e: e.runs.failures_text()),
        ("  retries (attempts after the first)", lambda e: str(e.runs.retries)),
    ]


def _raw_rows() -> list[tuple[str, Callable[[RawFigures], str]]]:
    return [
        ("raw fleet one run each (s)", lambda w: f"{w.seconds:.2f}"),
        ("  per run median / max (s)", lambda w: f"{w.median_s:.2f} / {w.max_s:.2f}"),
        ("  completed", lambda w: str(w.succeeded)),
        ("  failures", lambda w: " ".join(f"{k} {v}" for k, v in w.failures.items()) or "-"),
        (
            "raw fleet RSS, idle / after runs (MiB)",
            lambda w: f"{_mib(w.process.rss_mib)} / {_mib(w.process.rss_after_runs_mib)}",
        ),
        (
            "raw fleet threads, idle / after runs",
            lambda w: f"{w.process.threads} / {w.process.threads_after_runs}",
        ),
        ("raw fleet idle CPU (% of a core)", lambda w: f"{w.process.idle_cpu_percent:.1f}"),
        ("dev server idle CPU, both fleets (%)", lambda w: f"{w.dev_server_idle_cpu_percent:.1f}"),
        ("DescribeTaskQueue refused (rate limit)", lambda w: str(w.polling.refused)),
    ]


def table(results: Sequence[CapacityResult]) -> str:
    """The results as text: one row per figure, one column per N."""
    cells = [[label, *(value(r.engine) for r in results)] for label, value in _engine_rows()]
    for label, raw_value in _raw_rows():
        cells.append([label, *(raw_value(r.raw) if r.raw else "(failed)" for r in results)])
    cells.append(
        ["engine / raw (one run each)", *(f"{r.ratio:.2f}x" if r.ratio else "-" for r in results)]
    )
    header = ["orgs", *(str(r.orgs) for r in results)]
    widths = [max(len(row[i]) for row in [header, *cells]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        first, *rest = row
        return "  ".join(
            [first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))]
        )

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    return "\n".join([line(header), rule, *(line(row) for row in cells)])


@dataclass(frozen=True)
class Series:
    """One line of a panel: a name, a colour, a dash pattern and a y per x (None: missing)."""

    name: str
    colour: str
    values: list[float | None]
    dashed: bool = False
    notes: list[str] | None = None
    """Text beside each point ("" for none)."""


def _nice_step(span: float, ticks: int = 4) -> float:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about ``ticks`` ticks."""
    raw = span / ticks if span > 0 else 1.0
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * power >= raw)


def _number(value: float) -> str:
    return f"{value:g}" if value < 1e4 else f"{value:.0f}"


def _line(x1: float, y1: float, x2: float, y2: float, stroke: str, extra: str = "") -> str:
    return (
        f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{stroke}"{extra}/>'
    )


def _text(x: float, y: float, text: str, extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{escape(text)}</text>'


def _panels(results: Sequence[CapacityResult]) -> list[tuple[str, list[Series]]]:
    engine, raw, server = "#c2410c", "#1d4ed8", "#6b7280"

    def raw_values(value: Callable[[RawFigures], float]) -> list[float | None]:
        return [value(r.raw) if r.raw is not None else None for r in results]

    def incomplete(done: Callable[[CapacityResult], int | None]) -> list[str]:
        """ "374/500 ok" beside a point where not every run completed."""
        marks = []
        for r in results:
            count = done(r)
            marks.append(f"{count}/{r.orgs} ok" if count is not None and count < r.orgs else "")
        return marks

    return [
        (
            "threads, idle",
            [
                Series("engined", engine, [float(r.engine.process.threads) for r in results]),
                Series("raw SDK fleet", raw, raw_values(lambda w: float(w.process.threads))),
            ],
        ),
        (
            "RSS, MiB, idle",
            [
                Series("engined", engine, [r.engine.process.rss_mib for r in results]),
                Series("raw SDK fleet", raw, raw_values(lambda w: w.process.rss_mib)),
            ],
        ),
        (
            "one run in each org at once, seconds",
            [
                Series(
                    "engined (gRPC)",
                    engine,
                    [r.engine.runs.seconds for r in results],
                    notes=incomplete(lambda r: r.engine.runs.succeeded),
                ),
                Series(
                    "raw SDK fleet",
                    raw,
                    raw_values(lambda w: w.seconds),
                    notes=incomplete(lambda r: r.raw.succeeded if r.raw else None),
                ),
            ],
        ),
        (
            "idle CPU, % of one core",
            [
                Series("engined", engine, [r.engine.process.idle_cpu_percent for r in results]),
                Series("raw SDK fleet", raw, raw_values(lambda w: w.process.idle_cpu_percent)),
                Series(
                    "dev server (engine only)",
                    server,
                    [r.engine.dev_server.idle_cpu_percent for r in results],
                    dashed=True,
                ),
            ],
        ),
    ]


def _panel(title: str, series: Sequence[Series], xs: Sequence[int], x0: int, y0: int) -> str:
    """One small multiple: its title, grid, axes, lines and legend, its plot area at (x0, y0)."""
    plot_w, plot_h = 300, 170
    x_max = max(xs) * 1.05
    top_value = max((v for s in series for v in s.values if v is not None), default=1.0)
    step = _nice_step(top_value * 1.1)
    y_max = math.ceil(top_value * 1.1 / step) * step or step

    def px(x: float) -> float:
        return x0 + x / x_max * plot_w

    def py(y: float) -> float:
        return y0 + plot_h - y / y_max * plot_h

    parts = [_text(x0, y0 - 10, title, ' font-weight="bold"')]
    for tick in range(math.floor(y_max / step + 0.5) + 1):
        y = py(tick * step)
        parts.append(_line(x0, y, x0 + plot_w, y, "#e5e7eb"))
        parts.append(_text(x0 - 6, y + 4, _number(tick * step), ' text-anchor="end" fill="#555"'))
    parts.append(_line(x0, y0 + plot_h, x0 + plot_w, y0 + plot_h, "#333"))
    parts.append(_line(x0, y0, x0, y0 + plot_h, "#333"))
    for x in xs:
        parts.append(_text(px(x), y0 + plot_h + 16, str(x), ' text-anchor="middle" fill="#555"'))
    for row, line in enumerate(series):
        dash = ' stroke-dasharray="5,4"' if line.dashed else ""
        known = [(x, y) for x, y in zip(xs, line.values, strict=True) if y is not None]
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in known)
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{line.colour}" '
            f'stroke-width="2"{dash}/>'
        )
        for x, y in known:
            parts.append(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{line.colour}">'
                f"<title>{escape(line.name)}, N={x}: {y:.3g}</title></circle>"
            )
        for x, value, note in zip(xs, line.values, line.notes or [""] * len(xs), strict=True):
            if note and value is not None:
                extra = f' text-anchor="end" font-size="11" fill="{line.colour}"'
                parts.append(_text(px(x) - 8, py(value) - 12, note, extra))
        legend_y = y0 + plot_h + 36 + row * 15
        stroke = f' stroke-width="2"{dash}'
        parts.append(_line(x0, legend_y - 4, x0 + 18, legend_y - 4, line.colour, stroke))
        parts.append(_text(x0 + 24, legend_y, line.name))
    return "\n".join(parts)


def svg(results: Sequence[CapacityResult], created: str) -> str:
    """Four small multiples against N: threads, RSS, one-run-each seconds and idle CPU.

    Args:
        results: What was measured, one entry per N.
        created: When (the date goes in the subtitle).
    """
    xs = [r.orgs for r in results]
    width, height = 860, 660
    origins = [(70, 90), (500, 90), (70, 395), (500, 395)]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        _text(
            20,
            26,
            "One engined serve holding N organizations, beside a raw Temporal SDK fleet",
            ' font-size="16" font-weight="bold"',
        ),
        _text(
            20,
            46,
            "x: organizations (N); a fresh dev server for each N, shared by both; "
            f"{created[:10]}; scripts/bench_capacity.py (make bench-capacity)",
            ' fill="#555"',
        ),
    ]
    for (title, series), (x0, y0) in zip(_panels(results), origins, strict=True):
        parts.append(_panel(title, series, xs, x0, y0))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def load_results(path: Path) -> tuple[list[CapacityResult], str]:
    """The results of a JSON file this script wrote, and when it was written."""
    report = json.loads(path.read_text())
    return [_load(CapacityResult, r) for r in report["results"]], str(report["created"])


def _load(kind: Any, data: Any) -> Any:
    """``data`` (from :func:`dataclasses.asdict`) as ``kind``: nested dataclasses rebuilt."""
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        fields = dataclasses.fields(kind)
        return kind(**{f.name: _load(hints[f.name], data[f.name]) for f in fields})
    if isinstance(kind, types.UnionType) and data is not None:
        inner = [a for a in typing.get_args(kind) if a is not type(None)]
        return _load(inner[0], data)
    return data


# -------------------------------------------------------------------------- main


def _orgs(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated counts, got {text!r}") from None
    if not counts or any(c < 1 for c in counts):
        raise argparse.ArgumentTypeError(f"expected counts of at least 1, got {text!r}")
    return counts


def _source() -> dict[str, Any]:
    """The commit measured, and the files that differed from it (the engine runs from here)."""

    def git(*arguments: str) -> str:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            done = subprocess.run(
                ["git", *arguments], cwd=ROOT, check=True, capture_output=True, text=True
            )
            return done.stdout
        return ""

    # Porcelain lines are "XY path": two status letters (either may be a space), then the path.
    changed = [line[3:] for line in git("status", "--porcelain").splitlines()]
    return {"commit": git("rev-parse", "HEAD").strip() or "unknown", "uncommitted": changed}


def _temporal_version() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            [temporal_cli(), "--version"], check=False, capture_output=True, text=True, timeout=30
        )
        return done.stdout.strip()
    return "unknown"


async def _main(arguments: argparse.Namespace) -> int:
    counts: list[int] = arguments.orgs or list(QUICK_ORGS if arguments.quick else DEFAULT_ORGS)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    out = Path(arguments.out or ROOT / ".benchmarks" / f"capacity-{stamp}.json")
    plot = (
        Path(arguments.svg)
        if arguments.svg
        else (out.with_suffix(".svg") if arguments.quick else DEFAULT_SVG)
    )
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-capacity-{stamp}-"))
    report: dict[str, Any] = {
        "benchmark": "capacity",
        "created": datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()},
        "temporal": _temporal_version(),
        "source": _source(),
        "settings": {
            "orgs": counts,
            "concurrency": CONCURRENCY,
            "idle_seconds": IDLE_SECONDS,
            "budget_seconds": BUDGET,
            "call_timeout_seconds": CALL_TIMEOUT,
            "dynamic_config": arguments.dynamic_config,
            "storage": "in-memory SQLite (start-dev without --db-filename)",
            "bytecode": "cached, in a directory of this run's own (PYTHONPYCACHEPREFIX)",
        },
        "results": [],
        "errors": [],
    }
    environ = python_environ(workdir / "pycache")
    results: list[CapacityResult] = []
    out.parent.mkdir(parents=True, exist_ok=True)
    for count in counts:
        _say(f"N={count}: starting (logs in {workdir / f'n{count}'})")
        try:
            result = await measure(count, workdir / f"n{count}", arguments.dynamic_config, environ)
        except Exception as error:
            _say(f"N={count}: could not be measured: {error}")
            report["errors"].append(
                {
                    "orgs": count,
                    "error": f"{type(error).__name__}: {error}",
                    "traceback": traceback.format_exc(),
                }
            )
        else:
            results.append(result)
            report["results"].append(asdict(result))
            if result.raw_error is not None:
                report["errors"].append({"orgs": count, "error": f"raw fleet: {result.raw_error}"})
        # After each N, so that an interrupted run keeps what it measured.
        out.write_text(json.dumps(report, indent=2) + "\n")
    if results:
        print(table(results))
        plot.parent.mkdir(parents=True, exist_ok=True)
        plot.write_text(svg(results, report["created"]))
    print(f"\nJSON: {out}\nSVG:  {plot if results else '(none: nothing measured)'}")
    print(f"logs: {workdir}")
    return 1 if report["errors"] else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the capacity benchmark; the exit status."""
    parser = argparse.ArgumentParser(
        prog="bench_capacity.py",
        description="Capacity of one engined serve at N organizations, beside a raw SDK fleet.",
    )
    parser.add_argument("--orgs", type=_orgs, help="organization counts (default: 50,200,500)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 10 orgs (unless --orgs)")
    parser.add_argument("--out", help="the JSON file (default: .benchmarks/capacity-<time>.json)")
    parser.add_argument(
        "--svg", help="the plot (default: docs/capacity.svg; beside the JSON with --quick)"
    )
    parser.add_argument(
        "--dynamic-config",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a dev server --dynamic-config-value (repeatable; default: none)",
    )
    parser.add_argument(
        "--replot",
        metavar="JSON",
        help="measure nothing: print the table of a JSON this script wrote, and redraw --svg",
    )
    arguments = parser.parse_args(argv)
    if arguments.replot:
        results, created = load_results(Path(arguments.replot))
        print(table(results))
        plot = Path(arguments.svg or DEFAULT_SVG)
        plot.parent.mkdir(parents=True, exist_ok=True)
        plot.write_text(svg(results, created))
        print(f"\nSVG:  {plot}")
        return 0
    if not Path("/proc/self/status").exists():
        print("bench_capacity.py: needs Linux /proc to read RSS, threads and CPU", file=sys.stderr)
        return 2
    return asyncio.run(_main(arguments))


if __name__ == "__main__":
    sys.exit(main())
