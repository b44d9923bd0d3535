"""The smallest end-to-end run: suspend on a prompt, resume through the update, complete."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.worker import Worker

from tests.helpers.runs import start, submit, wait_for_action

HELLO = """
name: hello-test
version: 1
inputs:
  who: {type: string, default: world}
steps:
  - {id: ask, type: prompt, prompt_type: confirm, message: "Greet ${{ inputs.who }}?",
     output_to: ok}
  - {id: done, type: return, value: "${{ state.ok ? 'hello ' + inputs.who : 'no' }}"}
"""


async def test_prompt_suspends_and_update_resumes(client: Client, worker: Worker) -> None:
    handle = await start(client, HELLO, {"who": "bob"})
    action = await wait_for_action(client, handle, "ask")
    assert action["type"] == "prompt"
    assert action["parameters"]["message"] == "Greet bob?"
    advance = await submit(client, action, True)
    assert advance["status"] == "completed"
    assert advance["result"] == "hello bob"
    assert await handle.result() == "hello bob"
