"""Fixtures of the CLI tests: a clean environment, and a control plane for the remote commands.

Every CLI test runs in an empty working directory with no ``ENGINE_*`` connection settings, so a
developer's ``.engine/dev.env`` or exported token never leaks into a test. The remote tests get
an in-process control plane (``tests/cli/plane.py``) on the session's dev server.
"""

from __future__ import annotations

import asyncio
import io
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.cli import enginectl_main
from tests.cli.plane import Ctl, Plane, Result, open_plane
from tests.helpers.devserver import DevServer

_CONNECTION_VARIABLES = (
    "ENGINE_ADDRESS",
    "ENGINE_TOKEN",
    "ENGINE_TLS_CA",
    "ENGINE_TOKEN_SECRET",
    "ENGINE_HOME",
    "ENGINE_HTTP_URL",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An empty working directory (no .engine/) and no connection settings."""
    for name in _CONNECTION_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    # No developer's contexts either (~/.config/engine/config.yaml).
    monkeypatch.setenv("ENGINE_CONFIG", str(tmp_path / "no-config.yaml"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="module")
async def plane(temporal_server: DevServer) -> AsyncIterator[Plane]:
    async with open_plane(temporal_server.address) as running:
        yield running


@pytest.fixture
def ctl(plane: Plane, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Ctl:
    """Run ``enginectl`` against the plane (in a thread: the server's loop keeps running).

    ``org`` picks whose token to send (``None``: none at all), ``admin`` adds the admin
    role; ``stdin`` is what the person types; ``connect=False`` leaves out ``--address`` and
    ``--token``; ``capture=False`` leaves the output to be read (with ``capsys``) by the
    caller, for invocations that run at the same time.
    """

    async def run(
        *argv: str,
        org: str | None = "acme",
        admin: bool = False,
        stdin: str | None = None,
        connect: bool = True,
        capture: bool = True,
    ) -> Result:
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        options: list[str] = []
        if connect:
            options = ["--address", plane.address]
            if org is not None:
                options += ["--token", plane.token(org, admin=admin)]
        status = await asyncio.to_thread(enginectl_main, [*options, *argv])
        if not capture:  # concurrent invocations: the caller reads the output of them all
            return Result(status, [], "")
        captured = capsys.readouterr()
        return Result(status, captured.out.splitlines(), captured.err)

    return run
