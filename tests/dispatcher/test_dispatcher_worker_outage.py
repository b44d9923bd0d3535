"""While no worker serves an org, a submission says UNAVAILABLE (never INTERNAL), and its
retry with the same request id, once a worker is back, answers the first call's outcome."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.tenancy import Endpoint, PrefixResolver, TemporalUnavailableError
from tests.helpers.devserver import DevServer
from tests.tenancy.orgkit import ASK, open_tenancy, unique_prefix, wait_for_action


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
