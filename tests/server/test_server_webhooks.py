"""The org's outgoing webhook: set by its admin, sent each action that starts waiting, signed,
retried with backoff until the receiver takes it, and never for another org's runs."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import pytest

from engine.api.v1 import link_service_pb2 as links_pb
from engine.api.v1 import link_service_pb2_grpc as links_grpc
from engine.api.v1 import workflow_service_pb2 as workflows_pb
from engine.api.v1 import workflow_service_pb2_grpc as workflows_grpc
from engine.wire import to_value
from engine.workflow import SIGNATURE_HEADER, sign
from tests.helpers.runs import assert_replays
from tests.server.harness import ControlPlaneKit, eventually, refused, unique

SECRET = "whsec-0123456789abcdef"
ASK = """\
name: {name}
version: 1
steps:
  - {{id: approve, type: prompt, prompt_type: confirm, message: "Ship it?", output_to: ok}}
  - {{id: done, type: return, value: "${{{{ state.ok }}}}"}}
"""


@dataclass
class Delivery:
    at: float
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """A webhook receiver on loopback that answers each request with the next status of
    ``answers`` (then 200) and keeps what it got."""

    answers: list[int] = field(default_factory=list)
    got: list[Delivery] = field(default_factory=list)
    url: str = ""

    def by_delivery(self, delivery_id: str) -> list[Delivery]:
        return [d for d in self.got if d.headers.get("Engine-Delivery") == delivery_id]

    def probe(self, delivery_id: str) -> Callable[[], Awaitable[list[Delivery]]]:
        async def attempts() -> list[Delivery]:
            return self.by_delivery(delivery_id)

        return attempts


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                state.got.append(Delivery(time.monotonic(), dict(self.headers.items()), body))
                status = state.answers.pop(0) if state.answers else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/engine"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def verify(delivery: Delivery, secret: str) -> bool:
    """What a receiver does: recompute the signature over the raw body."""
    parts = dict(item.split("=", 1) for item in delivery.headers[SIGNATURE_HEADER].split(","))
    expected = hmac.new(
        secret.encode(), f"{parts['t']}.".encode() + delivery.body, hashlib.sha256
    ).hexdigest()
    fresh = abs(time.time() - int(parts["t"])) < 300
    return fresh and hmac.compare_digest(expected, parts["v1"])


class Org:
    def __init__(self, kit: ControlPlaneKit, org_id: str) -> None:
        self.kit = kit
        self.org_id = org_id
        channel = kit.channel()
        self.links = links_grpc.LinkServiceStub(channel)
        self.workflows = workflows_grpc.WorkflowServiceStub(channel)

    async def set_webhook(self, url: str, secret: str = SECRET) -> None:
        await self.links.SetWebhook(
            links_pb.SetWebhookRequest(url=url, secret=secret),
            metadata=self.kit.auth(self.org_id, roles=["admin"]),
        )

    async def start(self) -> Any:
        name = unique("hooked")
        await self.kit.register(ASK.format(name=name), self.org_id)
        return await self.workflows.StartWorkflow(
            workflows_pb.StartWorkflowRequest(definition_name=name, wait_for_suspension=True),
            metadata=self.kit.auth(self.org_id, subject="ann"),
        )


async def test_a_waiting_action_is_delivered_signed_and_retried_with_backoff(
    kit: ControlPlaneKit, receiver: Receiver
) -> None:
    acme, globex = Org(kit, "acme"), Org(kit, "globex")
    receiver.answers = [500, 503]  # taken at the third attempt
    await acme.set_webhook(receiver.url)
    try:
        shown = await acme.links.GetWebhook(
            links_pb.GetWebhookRequest(), metadata=kit.auth("acme", roles=["viewer"])
        )
        assert shown.url == receiver.url  # and never the secret: the message has no field
        other = await globex.links.GetWebhook(
            links_pb.GetWebhookRequest(), metadata=kit.auth("globex")
        )
        assert other.url == ""

        started = await acme.start()
        # The run does not wait for the delivery: the prompt is there at once.
        [action] = started.pending_actions
        delivery_id = f"{started.workflow_id}/{action.action_id}"
        attempts = await eventually(
            receiver.probe(delivery_id), lambda got: len(got) >= 3, timeout=60, what="3 attempts"
        )
        assert len(attempts) == 3
        first, second, third = attempts
        # Temporal's retry policy: 1 s, then twice as long (lower bounds only: a slow machine
        # makes the gaps longer, never shorter).
        assert second.at - first.at >= 0.9
        assert third.at - second.at >= 1.8
        for attempt in attempts:
            assert verify(attempt, SECRET)
            assert not verify(attempt, "another-secret-of-16")
            assert attempt.headers["Engine-Event"] == "action.waiting"
        event = third.event
        assert event["type"] == "action.waiting" and event["org_id"] == "acme"
        assert event["workflow_id"] == started.workflow_id
        assert event["action"]["action_id"] == action.action_id
        assert event["action"]["parameters"]["message"] == "Ship it?"
        assert event["definition"]["version"] == 1
        await asyncio.sleep(0.5)
        assert len(receiver.by_delivery(delivery_id)) == 3, "delivered once taken, not again"
        # The signing helper is the one a receiver can reuse.
        assert sign(SECRET, third.body, 1700000000).startswith("t=1700000000,v1=")
        # The run goes on, and its history (with the delivery in it) replays.
        await acme.workflows.SubmitResult(
            workflows_pb.SubmitResultRequest(
                workflow_id=started.workflow_id, action_id=action.action_id, result=to_value(True)
            ),
            metadata=kit.auth("acme", subject="ann"),
        )
        await assert_replays(await kit.dispatcher.client(kit.org("acme")), started.workflow_id)
    finally:
        await acme.set_webhook("")


async def test_runs_notify_only_while_the_org_has_a_webhook_and_410_stops_retrying(
    kit: ControlPlaneKit, receiver: Receiver
) -> None:
    acme, globex = Org(kit, "acme"), Org(kit, "globex")
    before = await acme.start()  # no webhook yet: never sent
    receiver.answers = [410]
    await acme.set_webhook(receiver.url)
    try:
        gone = await acme.start()
        theirs = await globex.start()  # another org's run: never sent to acme's webhook
        [action] = gone.pending_actions
        delivery_id = f"{gone.workflow_id}/{action.action_id}"
        await eventually(receiver.probe(delivery_id), bool, timeout=30, what="a delivery")
        await asyncio.sleep(2.5)  # past the first retry's 1 s: 410 Gone is not retried
        assert len(receiver.by_delivery(delivery_id)) == 1
        sent = {d.event["workflow_id"] for d in receiver.got}
        assert sent == {gone.workflow_id}
        assert before.workflow_id not in sent and theirs.workflow_id not in sent
        # Not merely unsent: neither run asked for a delivery at all (the one sent did).
        runs = [("acme", gone, True), ("acme", before, False), ("globex", theirs, False)]
        for org_id, run, asked in runs:
            client = await kit.dispatcher.client(kit.org(org_id))
            history = await client.get_workflow_handle(run.workflow_id).fetch_history()
            scheduled = [
                event.activity_task_scheduled_event_attributes.activity_type.name
                for event in history.events
                if event.HasField("activity_task_scheduled_event_attributes")
            ]
            assert ("engine.notify" in scheduled) is asked, (org_id, scheduled)
        # The run is unharmed by a refused delivery: it still waits and can be answered.
        advance = await acme.workflows.SubmitResult(
            workflows_pb.SubmitResultRequest(
                workflow_id=gone.workflow_id, action_id=action.action_id, result=to_value(True)
            ),
            metadata=kit.auth("acme", subject="ann"),
        )
        assert advance.result.bool_value is True
        # Only an org with a webhook has a delivery worker (none polls for the others).
        pool = kit.stack.pool
        assert pool is not None and pool.webhooks.delivering == ["acme"]
    finally:
        await acme.set_webhook("")
    cleared = await acme.links.GetWebhook(links_pb.GetWebhookRequest(), metadata=kit.auth("acme"))
    assert cleared.url == ""
    await eventually(
        _delivering(kit), lambda orgs: "acme" not in orgs, timeout=10, what="acme's worker gone"
    )


def _delivering(kit: ControlPlaneKit) -> Callable[[], Awaitable[list[str]]]:
    async def delivering() -> list[str]:
        assert kit.stack.pool is not None
        return kit.stack.pool.webhooks.delivering

    return delivering


async def test_only_the_orgs_admin_sets_its_webhook_and_bad_ones_are_refused(
    kit: ControlPlaneKit,
) -> None:
    links = links_grpc.LinkServiceStub(kit.channel())
    error, _ = await refused(
        links.SetWebhook(
            links_pb.SetWebhookRequest(url="https://example.com/hook", secret=SECRET),
            metadata=kit.auth("acme"),
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "admin" in (error.details() or "")
    for request, field_name in [
        (links_pb.SetWebhookRequest(url="ftp://example.com/x", secret=SECRET), "url"),
        (links_pb.SetWebhookRequest(url="https:///no-host", secret=SECRET), "url"),
        (links_pb.SetWebhookRequest(url="https://example.com/x", secret="short"), "secret"),
    ]:
        error, _ = await refused(
            links.SetWebhook(request, metadata=kit.auth("acme", roles=["admin"]))
        )
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_name in (error.details() or ""), error.details()
