"""The org's outgoing webhook: where it is kept, and the activity that delivers to it.

An org's webhook (a URL and a signing secret) is kept in its Temporal namespace's ``data``, so
every process that serves the org reads the same one and nothing else has to be stored. A run
started while the org has a webhook carries ``notify`` in its input; each action that starts
waiting in it then runs the :func:`notify` activity on the org's webhook task queue
(:func:`webhook_queue`), in the background (the run does not wait for it); a worker from
:func:`notifier_worker` serves that queue in each org that has a webhook (the worker pool
keeps them, see :mod:`engine.worker._webhooks`). The activity reads the webhook at delivery time (a
new URL or secret applies to deliveries still retrying), POSTs the event as JSON and fails on
anything but a 2xx answer, so Temporal retries it with backoff (:data:`DELIVERY_RETRY`) for up
to a day.

The signature follows the scheme the big webhook senders use: header
``Engine-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>``; a
receiver recomputes it over the raw body and refuses a stale ``t`` (replays).
``Engine-Delivery`` is the same on every attempt of one event (a receiver's dedupe key).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from temporalio import activity
from temporalio.api.namespace.v1 import UpdateNamespaceInfo
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, UpdateNamespaceRequest
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

__all__ = [
    "ATTEMPT_TIMEOUT",
    "DELIVERY_RETRY",
    "DELIVERY_WINDOW",
    "NOTIFY_ACTIVITY",
    "SIGNATURE_HEADER",
    "WEBHOOKS",
    "Webhook",
    "WebhookFlags",
    "notifier_worker",
    "notify",
    "read_webhook",
    "sign",
    "webhook_queue",
    "write_webhook",
]

NOTIFY_ACTIVITY: Final = "engine.notify"
WEBHOOKS: Final = "webhooks"
"""The patch behind which runs deliver to webhooks."""
SIGNATURE_HEADER: Final = "Engine-Signature"
URL_KEY: Final = "engine.webhook.url"
SECRET_KEY: Final = "engine.webhook.secret"
DELIVERY_RETRY: Final = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=["WebhookGone"],
)
DELIVERY_WINDOW: Final = timedelta(days=1)
"""How long an event is retried before it is given up (logged by the run)."""
ATTEMPT_TIMEOUT: Final = timedelta(seconds=30)
_REQUEST_TIMEOUT: Final = 10.0
_LOOKUP_TIMEOUT: Final = timedelta(seconds=10)
"""Bound on reading a namespace's webhook (every start may ask, when not remembered)."""


@dataclass(frozen=True)
class Webhook:
    """An org's webhook."""

    url: str
    secret: str


async def read_webhook(client: Client, *, timeout: timedelta = _LOOKUP_TIMEOUT) -> Webhook | None:
    """The webhook of the client's namespace, if it has one (asked within ``timeout``)."""
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=client.namespace), timeout=timeout
    )
    data = described.namespace_info.data
    url, secret = data.get(URL_KEY, ""), data.get(SECRET_KEY, "")
    return Webhook(url, secret) if url and secret else None


async def write_webhook(client: Client, webhook: Webhook | None) -> None:
    """Set (or, with None, clear) the webhook of the client's namespace."""
    data = (
        {URL_KEY: webhook.url, SECRET_KEY: webhook.secret}
        if webhook
        else {URL_KEY: "", SECRET_KEY: ""}
    )
    await client.workflow_service.update_namespace(
        UpdateNamespaceRequest(
            namespace=client.namespace, update_info=UpdateNamespaceInfo(data=data)
        )
    )


class WebhookFlags:
    """Whether each namespace has a webhook, remembered for ``ttl`` seconds: every start asks
    (to set ``notify`` in the run's input), and a webhook changes rarely.

    A change made through this process is seen at once (:meth:`forget`); one made through
    another process, within ``ttl``.
    """

    def __init__(self, ttl: float = 15.0) -> None:
        self.ttl = ttl
        self._known: dict[str, tuple[float, bool]] = {}

    async def notifies(self, client: Client) -> bool:
        """Whether runs started now in the client's namespace are to notify its webhook."""
        now = time.monotonic()
        known = self._known.get(client.namespace)
        if known is not None and known[0] > now:
            return known[1]
        has = await read_webhook(client) is not None
        self._known[client.namespace] = (now + self.ttl, has)
        return has

    def forget(self, namespace: str) -> None:
        """The namespace's webhook changed: ask again at the next start."""
        self._known.pop(namespace, None)


def webhook_queue(task_queue: str) -> str:
    """The task queue of an org's webhook deliveries, beside the interpreter's ``task_queue``
    (``engine/webhooks``; no action type is called ``webhooks``)."""
    return f"{task_queue}/webhooks"


def notifier_worker(client: Client, task_queue: str) -> Worker:
    """A worker delivering the webhook events of the client's namespace (one poller)."""
    return Worker(
        client,
        task_queue=webhook_queue(task_queue),
        activities=[notify],
        max_concurrent_activity_task_polls=1,
        graceful_shutdown_timeout=timedelta(seconds=5),
    )


def sign(secret: str, body: bytes, at: int) -> str:
    """The ``Engine-Signature`` header's value for ``body`` sent at unix time ``at``."""
    digest = hmac.new(secret.encode(), f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


@activity.defn(name=NOTIFY_ACTIVITY)
async def notify(event: dict[str, Any]) -> int:
    """POST ``event`` to the org's webhook, signed; returns the HTTP status it answered.

    Raises:
        ApplicationError: The webhook did not take it (retried), or answered 410 Gone
            (``WebhookGone``, not retried).
    """
    import httpx2  # here: the interpreter's package is imported in the sandbox, the activity not

    webhook = await read_webhook(activity.client())
    if webhook is None:
        activity.logger.info("no webhook any more: event %s not sent", event.get("delivery_id"))
        return 0
    body = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "engine-webhooks/1",
        "Engine-Event": str(event.get("type", "")),
        "Engine-Delivery": str(event.get("delivery_id", "")),
        SIGNATURE_HEADER: sign(webhook.secret, body, int(time.time())),
    }
    try:
        async with httpx2.AsyncClient(timeout=_REQUEST_TIMEOUT, follow_redirects=False) as http:
            response = await http.post(webhook.url, content=body, headers=headers)
    except httpx2.HTTPError as error:
        raise ApplicationError(
            f"the webhook could not be reached: {error!r}", type="WebhookUnreachable"
        ) from None
    if response.status_code == 410:
        raise ApplicationError(
            "the webhook answered 410 Gone", type="WebhookGone", non_retryable=True
        )
    if not 200 <= response.status_code < 300:
        raise ApplicationError(
            f"the webhook answered {response.status_code}", type="WebhookRefused"
        )
    return response.status_code
