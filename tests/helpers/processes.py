"""``engined worker`` as a real subprocess, for the tests that kill, stop or overload it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENGINED = ROOT / "cmd" / "engined"
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = str(VENV_PYTHON if VENV_PYTHON.exists() else sys.executable)
READY = ("worker serving namespace", "worker pool serving orgs ")


class WorkerProcess:
    """``python cmd/engined worker`` in a subprocess, its output in a log file.

    Args:
        address: The Temporal frontend.
        task_queue: The interpreter's task queue to poll.
        namespace: The one namespace to serve (``--namespace``); None: the worker pool, for
            the orgs of ``ENGINE_NAMESPACE_PREFIX`` in ``env`` (restricted with ``orgs``).
        orgs: The orgs the pool serves (``--orgs``).
        env: Extra environment (``ENGINE_WORKER_*`` settings, for example).
    """

    def __init__(
        self,
        address: str,
        task_queue: str,
        *,
        namespace: str | None = "default",
        orgs: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.log = Path(tempfile.mkstemp(prefix="engined-worker-", suffix=".log")[1])
        environ = {**os.environ, "TEMPORAL_ADDRESS": address, **(env or {})}
        if not namespace:
            environ.pop("TEMPORAL_NAMESPACE", None)
        command = [PYTHON, str(ENGINED), "worker", "--address", address]
        command += ["--task-queue", task_queue]
        command += ["--namespace", namespace] if namespace else []
        command += ["--orgs", orgs] if orgs else []
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, env=environ, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )

    async def ready(self, timeout: float = 30.0) -> None:
        """Wait until the worker says it polls its task queue (the pool: for some org)."""
        deadline = time.monotonic() + timeout
        while not any(ready in self.output for ready in READY) or "(none yet)" in self.output:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"engined worker exited {self.process.returncode}: {self.output[-3000:]}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"engined worker not ready within {timeout}s: {self.output[-3000:]}"
                )
            await asyncio.sleep(0.05)

    @property
    def output(self) -> str:
        """Everything the worker has written so far."""
        return self.log.read_text(errors="replace")

    def kill9(self) -> None:
        """SIGKILL: the process dies at once, in the middle of whatever it was doing."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        assert self.process.returncode == -signal.SIGKILL

    async def terminate(self, timeout: float) -> float | None:
        """SIGTERM, then wait up to ``timeout`` seconds: how long it took to exit (None: it
        is still running)."""
        began = time.monotonic()
        self.process.terminate()
        while self.process.poll() is None:
            if time.monotonic() - began > timeout:
                return None
            await asyncio.sleep(0.05)
        return time.monotonic() - began

    def stop(self) -> None:
        """Make sure it is gone (SIGTERM, then SIGKILL) and remove its log."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.unlink(missing_ok=True)
