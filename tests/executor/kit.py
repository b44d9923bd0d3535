"""Definitions and helpers of the executor tests."""

from __future__ import annotations

from typing import Any, Final

from engine.context import OrgContext
from tests.server.harness import ControlPlaneKit, eventually

LEASE: Final = 1.0
"""Seconds of the test stack's action lease (short, so that expiry is quick to see)."""

SHELL: Final = """\
name: one-shell
version: 1
inputs:
  n: {type: integer, default: 0}
steps:
  - {id: build, type: shell, command: "make build N=$N", env: {N: "${{ inputs.n }}"},
     output_to: built, retry: {max_attempts: 3, initial_interval: 100ms}}
  - {id: done, type: return, value: "${{ state.built.stdout }}"}
"""

ROUTED: Final = """\
name: routed
version: 1
steps:
  - {id: review, type: delegate, agent: "@reviewer", instruction: "Review it", output_to: r}
  - {id: other, type: delegate, agent: "@other", instruction: "Look too", output_to: o}
  - {id: tool, type: mcp_call, tool: "k8s.apply", params: {replicas: 2}, output_to: t}
  - {id: done, type: return, value: "${{ [state.r, state.o, state.t] }}"}
"""

FIVE: Final = """\
name: five
version: 1
steps:
  - {id: s1, type: shell, command: "one", output_to: a}
  - {id: s2, type: shell, command: "two", output_to: b}
  - {id: s3, type: shell, command: "three", output_to: c}
  - {id: s4, type: shell, command: "four", output_to: d}
  - {id: s5, type: shell, command: "five", output_to: e}
  - {id: done, type: return, value: "${{ state.e.stdout }}"}
"""

ONCE: Final = """\
name: once-tool
version: 1
steps:
  - {id: call, type: mcp_call, tool: "db.migrate", params: {to: 7}, output_to: out,
     retry: {max_attempts: 1}}
  - {id: done, type: return, value: "${{ state.out }}"}
"""

ASK: Final = """\
name: ask-cli
version: 1
steps:
  - {id: ask, type: prompt, prompt_type: choice, message: "Which?", options: [a, b],
     output_to: pick}
  - {id: done, type: return, value: "${{ state.pick }}"}
"""


async def register_all(kit: ControlPlaneKit, org_id: str) -> None:
    org = kit.org(org_id)
    for text in (SHELL, ROUTED, FIVE, ONCE, ASK):

        async def register(text: str = text) -> Any:
            return await kit.stack.registry.register(org, text)

        await eventually(register, lambda _: True, what="registering a definition")


def ok(stdout: str = "built") -> dict[str, Any]:
    return {"exit_code": 0, "stdout": stdout, "stderr": ""}


async def start(kit: ControlPlaneKit, org: OrgContext, name: str, **inputs: Any) -> str:
    from engine.dispatcher import DefinitionRef

    run = await kit.dispatcher.start(org, DefinitionRef(name), inputs)
    return run.workflow_id
