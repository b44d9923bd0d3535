"""A control plane with a short action lease and two orgs, for the reference runners."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from tests.executor.kit import LEASE
from tests.helpers.devserver import DevServer
from tests.server.harness import ControlPlaneKit, eventually, open_control_plane

COMMANDS = {
    "echo-value": "printf '%s' \"$VALUE\"",
    "slow": "echo started; sleep 30; echo late",
    "loud": "head -c 300000 /dev/zero | tr '\\0' x; echo; echo oops >&2",
    "pid-sleep": "echo $$ > pid; exec sleep 60",
    "where": "pwd",
}
"""Each becomes a definition of one shell step (its name), with ``VALUE`` and ``workdir`` from
the inputs, returning the step's result as it came, even when the command failed."""


def shell_definition(name: str, command: str) -> str:
    return f"""\
name: {name}
version: 1
inputs:
  value: {{type: string, default: ""}}
  workdir: {{type: string, default: ""}}
steps:
  - id: run
    type: shell
    command: {json.dumps(command)}
    workdir: "${{{{ inputs.workdir }}}}"
    env: {{VALUE: "${{{{ inputs.value }}}}"}}
    on_error: continue
    output_to: out
  - {{id: done, type: return, value: "${{{{ state.out }}}}"}}
"""


ON_GPU = """\
name: on-gpu
version: 1
steps:
  - {id: run, type: shell, command: pwd, runs_on: gpu, output_to: out}
  - {id: done, type: return, value: "${{ state.out }}"}
"""
"""A shell step for runners labelled ``gpu`` only."""


@pytest.fixture(scope="module")
async def kit(temporal_server: DevServer) -> AsyncIterator[ControlPlaneKit]:
    opened = await open_control_plane(
        temporal_server.address,
        tag="runners",
        orgs=("east", "west"),
        action_lease=timedelta(seconds=LEASE),
    )
    try:
        org = opened.org("east")
        texts = {name: shell_definition(name, command) for name, command in COMMANDS.items()}
        for name, text in {**texts, "on-gpu": ON_GPU}.items():

            async def register(text: str = text) -> object:
                return await opened.stack.registry.register(org, text)

            await eventually(register, lambda _: True, what=f"registering {name}")
        yield opened
    finally:
        await opened.close()
