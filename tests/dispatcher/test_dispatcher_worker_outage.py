"""While no worker serves an org, a submission says UNAVAILABLE (never INTERNAL), and its
retry with the same request id, once a worker is back, answers the first call's outcome; a
start by name still starts, on the latest version the control plane knew."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.dispatcher import DefinitionRef
from engine.dispatcher import _registry as registry_module
from engine.tenancy import Endpoint, PrefixResolver, TemporalUnavailableError
from tests.helpers.devserver import DevServer
from tests.tenancy.orgkit import ASK, open_tenancy, unique_prefix, wait_for_action

ASK_YAML = """\
name: ask
version: 1
inputs:
  who: {type: string, default: world}
steps:
  - {id: ask, type: prompt, prompt_type: confirm, message: "Greet ${{ inputs.who }}?",
     output_to: ok}
  - {id: done, type: return, value: "${{ state.ok ? 'hello ' + inputs.who : 'no' }}"}
"""


async def test_a_submission_without_a_worker_is_unavailable_and_safe_to_retry(
    temporal_server: DevServer,
) -> None:
    resolver = PrefixResolver(Endpoint(temporal_server.address), unique_prefix("wout"))
    serving = await open_tenancy(resolver, orgs=("w",))
    org = serving.org("w")
    run = await serving.dispatcher.start(org, ASK, {"who": "wes"})
    action = await wait_for_action(serving.dispatcher, org, run.workflow_id, "ask")
    await serving.close()  # the org's only worker stops

    # A control-plane replica with no worker, as during a deploy of the workers.
    replica = await open_tenancy(resolver, workers=False)
    replica.dispatcher.rpc_timeout = timedelta(seconds=2)
    try:
        with pytest.raises(TemporalUnavailableError) as unavailable:
            await replica.dispatcher.submit_result(
                org, run.workflow_id, action_id=action["action_id"], result=True, request_id="r1"
            )
        assert unavailable.value.code == "UNAVAILABLE"
        assert "retry it with the same request id" in str(unavailable.value)

        back = await open_tenancy(resolver)  # a worker again
        try:
            retried = await back.dispatcher.submit_result(
                org, run.workflow_id, action_id=action["action_id"], result=True, request_id="r1"
            )
            assert retried["status"] == "completed"
            assert retried["result"] == "hello wes"
            assert await back.dispatcher.result(org, run.workflow_id) == "hello wes"
        finally:
            await back.close()
    finally:
        await replica.close()


async def test_a_start_by_name_without_a_worker_uses_the_latest_version_it_knew(
    temporal_server: DevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolver = PrefixResolver(Endpoint(temporal_server.address), unique_prefix("wlat"))
    serving = await open_tenancy(resolver, orgs=("w",))
    org = serving.org("w")
    await serving.registry.register(org, ASK_YAML)
    await serving.registry.register(org, ASK_YAML.replace("name: ask", "name: ask-too"))
    replica = await open_tenancy(resolver, workers=False)
    replica.registry.rpc_timeout = timedelta(seconds=2)
    try:
        first = await replica.dispatcher.start(org, DefinitionRef("ask"), {"who": "ann"})
        await serving.close()  # the org's only worker stops: the registry cannot answer
        # Every start by name asks the registry again (none is served from the short cache).
        monkeypatch.setattr(registry_module, "LATEST_CACHED", 0.0)
        second = await replica.dispatcher.start(org, DefinitionRef("ask"), {"who": "bob"})
        assert second.workflow_type == first.workflow_type == "ask:1"

        with pytest.raises(TemporalUnavailableError):  # what it never knew, it cannot guess
            await replica.dispatcher.start(org, DefinitionRef("ask-too"), {})

        back = await open_tenancy(resolver)  # a worker again: the runs go on
        try:
            for run, who in ((first, "ann"), (second, "bob")):
                action = await wait_for_action(back.dispatcher, org, run.workflow_id, "ask")
                await back.dispatcher.submit_result(
                    org, run.workflow_id, action_id=action["action_id"], result=True
                )
                assert await back.dispatcher.result(org, run.workflow_id) == f"hello {who}"
        finally:
            await back.close()
    finally:
        await replica.close()
        await serving.close()
