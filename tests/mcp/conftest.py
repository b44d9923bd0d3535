"""A control plane with two orgs: `north` has definitions registered, `south` has none."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.helpers.devserver import DevServer
from tests.server.harness import ControlPlaneKit, eventually, open_control_plane

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PICK_ONE = """\
name: pick-one
version: 1
steps:
  - {id: pick, type: prompt, prompt_type: choice, message: "Which one?", options: [a, 2, c],
     output_to: picked}
  - {id: done, type: return, value: "${{ state.picked }}"}
"""
EXAMPLE_NAMES = ("agent-task", "hello")
CONFIRM_AND_BUILD = """\
name: confirm-and-build
version: 1
steps:
  - {id: go, type: prompt, prompt_type: confirm, message: "Build it?", output_to: go}
  - {id: build, type: shell, command: make, output_to: built}
  - {id: done, type: return, value: "${{ state.built.exit_code }}"}
"""


@pytest.fixture(scope="module")
async def kit(temporal_server: DevServer) -> AsyncIterator[ControlPlaneKit]:
    opened = await open_control_plane(temporal_server.address, tag="mcp", orgs=("north", "south"))
    try:
        org = opened.org("north")
        texts = {n: (EXAMPLES / f"{n}.yaml").read_text(encoding="utf-8") for n in EXAMPLE_NAMES}
        texts |= {"confirm-and-build": CONFIRM_AND_BUILD, "pick-one": PICK_ONE}
        for name, text in texts.items():

            async def register(text: str = text) -> object:
                return await opened.stack.registry.register(org, text)

            await eventually(register, lambda _: True, what=f"registering {name}")
        yield opened
    finally:
        await opened.close()
