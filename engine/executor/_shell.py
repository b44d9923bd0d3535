"""The reference runner of ``shell`` actions (``enginectl work shell``).

Security model: a shell step's command is part of its definition, so this runner runs what the
definitions of its org say, as the user it runs as. Run it only for definitions you trust. What
varies from run to run travels in the action's ``env`` (values rendered from inputs and state):
each is an environment variable of the command, data that the shell never parses as syntax. The
command's working directory is the action's ``workdir`` taken under the runner's root (a path
that would leave the root is refused), and its environment holds only ``PATH`` and ``HOME``
besides the action's ``env``, so the runner's own secrets (its token among them) are not
handed down.

Each action: ``/bin/sh -c COMMAND`` in its own process group, with the action's timeout (or
the runner's ``max_time``, when shorter; the process group is killed past it: exit code 124,
and a marker at the end of stderr); stdout and stderr are kept up to a cap each (the last
bytes, behind a marker saying how much was cut); the claim's lease is kept by heartbeats while
it runs; when the engine says to stop (the action was answered elsewhere, or its run
cancelled), the process group is killed and nothing is reported. The result is
``{exit_code, stdout, stderr}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from engine.executor._executor import ClaimedAction, Executor, report_or_log

__all__ = ["TIMED_OUT", "ShellRunner"]

log = logging.getLogger("engine.executor.shell")

TIMED_OUT: Final = 124
"""The exit code reported for a command killed past its timeout (as ``timeout(1)`` does)."""
_DEFAULT_TIMEOUT: Final = 3600.0
_CHUNK: Final = 65536
_KILL_GRACE: Final = 2.0


@dataclass(frozen=True)
class ShellRunner:
    """Runs the shell actions of one org, at most ``concurrency`` at a time.

    Attributes:
        executor: The connection to the control plane (its token names the org).
        root: Every command runs under this directory.
        concurrency: Actions held (and running) at once.
        max_output: Bytes of stdout and of stderr kept, each.
        max_time: Seconds a command may run at most, whatever its action's timeout (None:
            its action's timeout, or an hour when it has none).
        labels: Runner labels: besides the shell actions of steps with no ``runs_on``, it
            takes those of steps that run on one of these. Each queue's poll holds one of the
            ``concurrency`` slots while it waits: give at least one slot per queue.
    """

    executor: Executor
    root: Path
    concurrency: int = 1
    max_output: int = 64 * 1024
    max_time: float | None = None
    labels: tuple[str, ...] = ()

    async def run(self, *, wait: float = 30.0) -> None:
        """Claim and run actions until cancelled; a running command is killed then."""
        await self.executor.perform_all(
            "shell",
            self.perform,
            routes=(None, *self.labels),
            concurrency=self.concurrency,
            wait=wait,
        )

    async def perform(self, claimed: ClaimedAction) -> None:
        """Run one claimed action and report its outcome."""
        parameters = claimed.parameters
        try:
            workdir = self.workdir(parameters.get("workdir"))
            env = _environment(parameters.get("env"))
        except ValueError as refusal:
            await report_or_log(claimed, claimed.fail(str(refusal)))
            return
        command = str(parameters.get("command", ""))
        timeout = _seconds(claimed.action.get("timeout")) or _DEFAULT_TIMEOUT
        if self.max_time is not None:
            timeout = min(timeout, self.max_time)
        log.info("running %s (%s)", claimed.action_id, claimed.action.get("step_id"))
        outcome = await self.execute(command, workdir, env, timeout, claimed.stopped)
        if outcome is None:
            log.info("action %s stopped by the engine: killed, not reported", claimed.action_id)
            await claimed.abandon()
            return
        await report_or_log(claimed, claimed.complete(outcome))

    def workdir(self, workdir: Any) -> Path:
        """The directory a command runs in: ``workdir`` under the root (made if missing).

        Raises:
            ValueError: ``workdir`` would leave the root.
        """
        root = self.root.resolve()
        relative = str(workdir or "").lstrip("/")
        path = (root / relative).resolve()
        if path != root and root not in path.parents:
            raise ValueError(f"workdir {workdir!r} is outside the runner's root {root}")
        path.mkdir(parents=True, exist_ok=True)
        return path

    async def execute(
        self,
        command: str,
        workdir: Path,
        env: dict[str, str],
        timeout: float,
        stop: asyncio.Event,
    ) -> dict[str, Any] | None:
        """Run ``command``; its result, or None when ``stop`` was set (it was killed)."""
        process = await asyncio.create_subprocess_exec(
            "/bin/sh",
            "-c",
            command,
            cwd=workdir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: killed whole
        )
        assert process.stdout is not None and process.stderr is not None
        stdout = asyncio.create_task(_tail(process.stdout, self.max_output))
        stderr = asyncio.create_task(_tail(process.stderr, self.max_output))
        exited = asyncio.create_task(process.wait())
        stopped = asyncio.create_task(stop.wait())
        try:
            done, _ = await asyncio.wait(
                {exited, stopped}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stopped.cancel()
            if not exited.done():
                await _kill(process)
        exit_code = process.returncode if exited in done else TIMED_OUT
        out, err = await stdout, await stderr
        if stop.is_set() and exited not in done:
            return None
        if exited not in done:
            err += f"\n[killed: still running after its timeout of {timeout:g}s]"
        return {"exit_code": exit_code, "stdout": out, "stderr": err}


def _environment(env: Any) -> dict[str, str]:
    """The command's environment: ``PATH`` and ``HOME`` of the runner, then the action's.

    Raises:
        ValueError: A name that cannot be an environment variable.
    """
    base = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    if not env:
        return base
    if not isinstance(env, dict):
        raise ValueError(f"env must be a map of names to values, got {type(env).__name__}")
    for name in env:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(name)):
            raise ValueError(f"env name {name!r} is not a valid environment variable name")
    return base | {str(k): v if isinstance(v, str) else _text(v) for k, v in env.items()}


def _text(value: Any) -> str:
    import json

    return "" if value is None else json.dumps(value, ensure_ascii=False)


def _seconds(timeout: Any) -> float | None:
    """An action's ``timeout`` as seconds (``"300s"`` in the action's JSON)."""
    if isinstance(timeout, int | float):
        return float(timeout) or None
    if isinstance(timeout, str) and timeout.endswith("s"):
        with contextlib.suppress(ValueError):
            return float(timeout[:-1]) or None
    return None


async def _tail(stream: asyncio.StreamReader, cap: int) -> str:
    """Read a stream to its end, keeping its last ``cap`` bytes (with a marker if cut)."""
    kept = bytearray()
    total = 0
    while chunk := await stream.read(_CHUNK):
        total += len(chunk)
        kept += chunk
        if len(kept) > cap:
            del kept[: len(kept) - cap]
    text = kept.decode("utf-8", errors="replace")
    if total > cap:
        return f"[truncated: the first {total - cap:,} of {total:,} bytes were cut]\n{text}"
    return text


async def _kill(process: asyncio.subprocess.Process) -> None:
    """Stop the command's whole process group: TERM, then KILL after a grace period."""
    for sig, grace in ((signal.SIGTERM, _KILL_GRACE), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            await asyncio.wait_for(process.wait(), grace)
            return
        except TimeoutError:
            continue
