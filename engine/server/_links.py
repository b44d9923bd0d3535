"""The LinkService servicer: answer links for prompts (see ``link_service.proto``).

A link is signed by the engine (:class:`~engine.identity.LinkSigner`) and names its org, its run,
its action, the person it answers as, its expiry and, for an approve or reject link, its answer.
Reading it and answering with it need no token, so both verify the link first, then act as its
person in its org: the prompt's approver rules, and its one answer per person, apply as to a
token of theirs. So a link answers once: after that its action is closed, or that person has
answered it already.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any, ClassVar, Final
from urllib.parse import urlsplit

from engine.api.v1 import link_service_pb2 as pb
from engine.api.v1 import link_service_pb2_grpc as pb_grpc
from engine.context import OrgContext
from engine.dispatcher import TemporalDispatcher
from engine.errors import EngineError
from engine.identity import LONGEST_LINK_TTL, AnswerLink, LinkSigner, PermissionDeniedError
from engine.server._convert import action_to_proto, advance_to_proto, timestamp
from engine.server._errors import FieldError
from engine.server._requests import json_value, org_of, required, seconds
from engine.tenancy import NamespaceResolver
from engine.wire import to_value
from engine.workflow import Webhook

__all__ = ["PUBLIC_LINK_METHODS", "LinkServicer"]

PUBLIC_LINK_METHODS: Final = (
    "/engine.api.v1.LinkService/GetAnswerLink",
    "/engine.api.v1.LinkService/AnswerWithLink",
)
"""The methods a link, not a token, authorizes."""
_DEFAULT_TTL: Final = 24 * 3600
_LONGEST_URL: Final = 2048
_SHORTEST_SECRET: Final = 16


class LinksNotConfiguredError(EngineError):
    """This engine has no key to sign answer links with."""

    code: ClassVar[str] = "FAILED_PRECONDITION"
    reason: ClassVar[str] = "LINKS_NOT_CONFIGURED"


class LinkClosedError(EngineError):
    """The link's prompt no longer waits (answered, timed out, or its run moved on)."""

    code: ClassVar[str] = "FAILED_PRECONDITION"
    reason: ClassVar[str] = "ACTION_CLOSED"


class LinkServicer(pb_grpc.LinkServiceServicer):
    """Makes answer links, shows their prompts, answers through them; keeps the org's webhook
    (its admin's, in the org's namespace: see :mod:`engine.workflow._notify`).

    Args:
        dispatcher: The door to Temporal.
        resolver: An org's namespace (a link's calls have no token to resolve it from).
        signer: The key of answer links; None: links are refused (not configured).
    """

    def __init__(
        self,
        dispatcher: TemporalDispatcher,
        resolver: NamespaceResolver,
        signer: LinkSigner | None,
    ) -> None:
        self.dispatcher = dispatcher
        self.resolver = resolver
        self.signer = signer

    async def CreateAnswerLink(  # noqa: N802 - gRPC method name
        self, request: pb.CreateAnswerLinkRequest, context: Any
    ) -> pb.CreateAnswerLinkResponse:
        signer = self._signer()
        org = org_of(context)
        workflow_id = required(request.workflow_id, "workflow_id")
        action_id = required(request.action_id, "action_id")
        ttl = seconds(request.ttl, "ttl") if request.HasField("ttl") else _DEFAULT_TTL
        if not 0 < ttl <= LONGEST_LINK_TTL:
            raise FieldError("ttl", f"must be more than 0s and at most 30 days, got {ttl:g}s")
        status = await self.dispatcher.status(org, workflow_id)
        action = next((a for a in status["pending_actions"] if a["action_id"] == action_id), None)
        if action is None:
            raise LinkClosedError(
                f"run '{workflow_id}' does not wait for action '{action_id}' (answered, timed "
                "out, or never there)"
            )
        if action["type"] != "prompt":
            raise FieldError(
                "action_id", f"is a {action['type']} action: links answer prompts only"
            )
        subject = request.subject or org.subject
        if not subject:
            raise FieldError("subject", "is required: the token has no subject to answer as")
        expires = int(time.time() + ttl)
        link = AnswerLink(
            org_id=org.org_id,
            workflow_id=action["workflow_id"],  # an item's run, for a prompt inside a foreach
            action_id=action_id,
            subject=subject,
            expires=expires,
            answer=json_value(request.answer, "answer") if request.HasField("answer") else None,
            fixed=request.HasField("answer"),
        )
        return pb.CreateAnswerLinkResponse(
            link=signer.sign(link), expire_time=timestamp(datetime.fromtimestamp(expires, UTC))
        )

    async def GetAnswerLink(  # noqa: N802
        self, request: pb.GetAnswerLinkRequest, context: Any
    ) -> pb.GetAnswerLinkResponse:
        link, org = self._verified(request.link)
        status = await self.dispatcher.status(org, link.workflow_id)
        action = next(
            (a for a in status["pending_actions"] if a["action_id"] == link.action_id), None
        )
        if action is None:
            raise LinkClosedError("the prompt of this link no longer waits: it was answered")
        return pb.GetAnswerLinkResponse(
            action=action_to_proto(action),
            subject=link.subject,
            answer=to_value(link.answer),
            fixed=link.fixed,
            expire_time=timestamp(datetime.fromtimestamp(link.expires, UTC)),
        )

    async def AnswerWithLink(  # noqa: N802
        self, request: pb.AnswerWithLinkRequest, context: Any
    ) -> pb.AnswerWithLinkResponse:
        link, org = self._verified(request.link)
        result = link.answer if link.fixed else json_value(request.result, "result")
        advance = await self.dispatcher.submit_result(
            org, link.workflow_id, action_id=link.action_id, result=result
        )
        return pb.AnswerWithLinkResponse(advance=advance_to_proto(advance))

    async def GetWebhook(  # noqa: N802
        self, request: pb.GetWebhookRequest, context: Any
    ) -> pb.GetWebhookResponse:
        org = org_of(context)
        webhook = await self.dispatcher.webhook(org)
        return pb.GetWebhookResponse(url=webhook.url if webhook else "")

    async def SetWebhook(  # noqa: N802
        self, request: pb.SetWebhookRequest, context: Any
    ) -> pb.SetWebhookResponse:
        org = _admin(context, "SetWebhook")
        if not request.url:
            await self.dispatcher.set_webhook(org, None)
            return pb.SetWebhookResponse(url="")
        parsed = urlsplit(request.url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise FieldError("url", f"must be an http(s) URL with a host, got {request.url!r}")
        if len(request.url) > _LONGEST_URL:
            raise FieldError("url", f"must be at most {_LONGEST_URL} characters")
        if len(request.secret) < _SHORTEST_SECRET:
            raise FieldError("secret", f"must be at least {_SHORTEST_SECRET} characters")
        await self.dispatcher.set_webhook(org, Webhook(request.url, request.secret))
        return pb.SetWebhookResponse(url=request.url)

    def _signer(self) -> LinkSigner:
        if self.signer is None:
            raise LinksNotConfiguredError(
                "answer links are not configured on this engine (set ENGINE_LINK_SECRET)"
            )
        return self.signer

    def _verified(self, token: str) -> tuple[AnswerLink, OrgContext]:
        """The link (verified) and the org context it acts in, as its person."""
        link = self._signer().verify(required(token, "link"))
        namespace = self.resolver.resolve(link.org_id).namespace
        return link, OrgContext(link.org_id, namespace, (), link.subject)


def _admin(context: Any, name: str) -> OrgContext:
    """The caller's org, if the caller is its admin."""
    org = org_of(context)
    if "admin" not in org.roles:
        raise PermissionDeniedError(
            f"{name} needs the org's admin role; the token of org '{org.org_id}' has roles "
            f"{list(org.roles)}"
        )
    return org
