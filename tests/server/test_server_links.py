"""Answer links: a prompt answered from a notification, without a session. Made by a member of
the run's org, bound to the action, the org, a person and an expiry; refused when expired,
reused, tampered with, or of another org."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import grpc
import httpx2
from google.protobuf import duration_pb2, struct_pb2

from engine.api.v1 import link_service_pb2 as links_pb
from engine.api.v1 import link_service_pb2_grpc as links_grpc
from engine.api.v1 import workflow_service_pb2 as workflows_pb
from engine.api.v1 import workflow_service_pb2_grpc as workflows_grpc
from engine.gateway import HttpApiServer
from engine.identity import AnswerLink, LinkSigner
from tests.server.harness import LINK_SECRET, ControlPlaneKit, error_info, refused, unique

GOVERNED = """\
name: {name}
version: 1
steps:
  - id: approve
    type: prompt
    prompt_type: confirm
    message: "Ship it?"
    approvers: {{subjects: [dana]}}
    output_to: ok
  - {{id: done, type: return, value: "${{{{ state.ok }}}}"}}
"""


class Links:
    def __init__(self, kit: ControlPlaneKit, org_id: str = "acme") -> None:
        self.kit = kit
        self.org_id = org_id
        channel = kit.channel()
        self.links = links_grpc.LinkServiceStub(channel)
        self.workflows = workflows_grpc.WorkflowServiceStub(channel)

    async def waiting_run(self, subject: str = "ann") -> tuple[str, str]:
        """A run of a fresh governed definition; its workflow id and its prompt's action id."""
        name = unique("linked")
        await self.kit.register(GOVERNED.format(name=name), self.org_id)
        started = await self.workflows.StartWorkflow(
            workflows_pb.StartWorkflowRequest(definition_name=name, wait_for_suspension=True),
            metadata=self.kit.auth(self.org_id, subject=subject),
        )
        [action] = started.pending_actions
        return started.workflow_id, action.action_id

    async def create(self, workflow_id: str, action_id: str, **fields: Any) -> str:
        made = await self.links.CreateAnswerLink(
            links_pb.CreateAnswerLinkRequest(
                workflow_id=workflow_id, action_id=action_id, **fields
            ),
            metadata=self.kit.auth(self.org_id, subject="ann"),
        )
        return made.link


async def test_a_link_shows_its_prompt_and_answers_it_once_as_its_person(
    kit: ControlPlaneKit,
) -> None:
    links = Links(kit)
    workflow_id, action_id = await links.waiting_run()
    link = await links.create(workflow_id, action_id, subject="dana")
    # No token: the link is the credential.
    shown = await links.links.GetAnswerLink(links_pb.GetAnswerLinkRequest(link=link))
    assert shown.action.action_id == action_id and shown.subject == "dana"
    assert shown.action.parameters["message"] == "Ship it?" and not shown.fixed
    advance = await links.links.AnswerWithLink(
        links_pb.AnswerWithLinkRequest(link=link, result=struct_pb2.Value(bool_value=True))
    )
    assert advance.advance.result.bool_value is True
    run = await links.workflows.GetWorkflow(
        workflows_pb.GetWorkflowRequest(workflow_id=workflow_id), metadata=kit.auth("acme")
    )
    [entry] = [e for e in run.workflow.history if e.step_id == "approve"]
    assert [a.subject for a in entry.answers] == ["dana"]  # answered as the link's person
    # Used once: the prompt is closed now.
    error, status = await refused(
        links.links.AnswerWithLink(
            links_pb.AnswerWithLinkRequest(link=link, result=struct_pb2.Value(bool_value=False))
        )
    )
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    error, status = await refused(
        links.links.GetAnswerLink(links_pb.GetAnswerLinkRequest(link=link))
    )
    assert error_info(status).reason == "ACTION_CLOSED"


async def test_an_approve_link_gives_its_fixed_answer(kit: ControlPlaneKit) -> None:
    links = Links(kit)
    workflow_id, action_id = await links.waiting_run()
    reject = await links.create(
        workflow_id, action_id, subject="dana", answer=struct_pb2.Value(bool_value=False)
    )
    shown = await links.links.GetAnswerLink(links_pb.GetAnswerLinkRequest(link=reject))
    assert shown.fixed and shown.answer.bool_value is False
    advance = await links.links.AnswerWithLink(
        links_pb.AnswerWithLinkRequest(link=reject, result=struct_pb2.Value(bool_value=True))
    )
    assert advance.advance.result.bool_value is False  # the link's answer, not the request's


async def test_the_prompts_rules_apply_to_the_links_person(kit: ControlPlaneKit) -> None:
    links = Links(kit)
    workflow_id, action_id = await links.waiting_run()
    link = await links.create(workflow_id, action_id)  # as ann, who may not approve
    error, status = await refused(
        links.links.AnswerWithLink(
            links_pb.AnswerWithLinkRequest(link=link, result=struct_pb2.Value(bool_value=True))
        )
    )
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(status).reason == "ANSWER_REFUSED"


def _tampered(link: str) -> str:
    header, payload, signature = link.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "dana"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


async def test_expired_tampered_foreign_and_token_links_are_refused(kit: ControlPlaneKit) -> None:
    links = Links(kit)
    workflow_id, action_id = await links.waiting_run()
    link = await links.create(workflow_id, action_id)
    grant = LinkSigner(LINK_SECRET).verify(link)
    expired = LinkSigner(LINK_SECRET).sign(
        AnswerLink(
            org_id="acme",
            workflow_id=workflow_id,
            action_id=action_id,
            subject="dana",
            expires=int(time.time()) - 60,
        )
    )
    other_engine = LinkSigner("another-engine-with-a-key-of-32-bytes").sign(grant)
    for bad, why in (
        (expired, "the link has expired"),
        (_tampered(link), "the link is not valid"),
        (other_engine, "the link is not valid"),
        (kit.token("acme", subject="dana"), "the link is not valid"),  # a token is no link
        ("not-a-link", "the link is not valid"),
    ):
        error, status = await refused(
            links.links.AnswerWithLink(
                links_pb.AnswerWithLinkRequest(link=bad, result=struct_pb2.Value(bool_value=True))
            )
        )
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, why
        assert error_info(status).reason == "LINK_REFUSED" and why in error.details(), why
    # The run still waits: nothing was answered.
    run = await links.workflows.GetWorkflow(
        workflows_pb.GetWorkflowRequest(workflow_id=workflow_id), metadata=kit.auth("acme")
    )
    assert [a.action_id for a in run.workflow.pending_actions] == [action_id]


async def test_a_link_is_made_only_by_a_member_of_the_runs_org_for_a_waiting_prompt(
    kit: ControlPlaneKit,
) -> None:
    links = Links(kit)
    workflow_id, action_id = await links.waiting_run()
    request = links_pb.CreateAnswerLinkRequest(workflow_id=workflow_id, action_id=action_id)
    other_org, _ = await refused(
        links.links.CreateAnswerLink(request, metadata=kit.auth("globex", subject="eve"))
    )
    assert other_org.code() == grpc.StatusCode.NOT_FOUND
    viewer, _ = await refused(
        links.links.CreateAnswerLink(request, metadata=kit.auth("acme", roles=["viewer"]))
    )
    assert viewer.code() == grpc.StatusCode.PERMISSION_DENIED
    anonymous, _ = await refused(links.links.CreateAnswerLink(request))
    assert anonymous.code() == grpc.StatusCode.UNAUTHENTICATED
    unknown, _ = await refused(
        links.links.CreateAnswerLink(
            links_pb.CreateAnswerLinkRequest(workflow_id=workflow_id, action_id="nope"),
            metadata=kit.auth("acme", subject="ann"),
        )
    )
    assert unknown.code() == grpc.StatusCode.FAILED_PRECONDITION
    too_long, _ = await refused(
        links.links.CreateAnswerLink(
            links_pb.CreateAnswerLinkRequest(
                workflow_id=workflow_id,
                action_id=action_id,
                ttl=duration_pb2.Duration(seconds=31 * 24 * 3600),
            ),
            metadata=kit.auth("acme", subject="ann"),
        )
    )
    assert too_long.code() == grpc.StatusCode.INVALID_ARGUMENT and "ttl" in too_long.details()


async def test_a_link_answers_over_http_with_no_token(kit: ControlPlaneKit) -> None:
    links = Links(kit)
    workflow_id, action_id = await links.waiting_run()
    link = await links.create(workflow_id, action_id, subject="dana")
    api = HttpApiServer(kit.address, host="127.0.0.1", port=0)
    await api.start()
    try:
        async with httpx2.AsyncClient(base_url=api.url, timeout=60) as http:
            shown = await http.get(f"/v1/links/{link}")
            assert shown.status_code == 200, shown.text
            assert shown.json()["action"]["parameters"]["message"] == "Ship it?"
            answered = await http.post(f"/v1/links/{link}:answer", json={"result": True})
            assert answered.status_code == 200, answered.text
            assert answered.json()["advance"]["status"] == "RUN_STATUS_COMPLETED"
            again = await http.post(f"/v1/links/{link}:answer", json={"result": True})
            assert again.status_code == 400
    finally:
        await api.stop()


PICK = """\
name: {name}
version: 1
steps:
  - {{id: pick, type: prompt, prompt_type: choice, message: "Which <b>one</b>?",
     options: [a, 2], output_to: picked}}
  - {{id: done, type: return, value: "${{{{ state.picked }}}}"}}
"""


async def test_the_page_a_link_opens_shows_the_prompt_and_its_form_answers_it(
    kit: ControlPlaneKit,
) -> None:
    links = Links(kit)
    name = unique("picked")
    await kit.register(PICK.format(name=name), "acme")
    started = await links.workflows.StartWorkflow(
        workflows_pb.StartWorkflowRequest(definition_name=name, wait_for_suspension=True),
        metadata=kit.auth("acme", subject="ann"),
    )
    [action] = started.pending_actions
    link = await links.create(started.workflow_id, action.action_id)
    api = HttpApiServer(kit.address, host="127.0.0.1", port=0)
    await api.start()
    try:
        async with httpx2.AsyncClient(base_url=api.url, timeout=60) as http:
            page = await http.get(f"/answer/{link}")
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert "Which &lt;b&gt;one&lt;/b&gt;?" in page.text  # the question, escaped
            assert '<button name="choice" value="1">2</button>' in page.text
            # Opening the page answered nothing (a chat's link preview opens it too).
            waiting = await links.workflows.GetWorkflow(
                workflows_pb.GetWorkflowRequest(workflow_id=started.workflow_id),
                metadata=kit.auth("acme"),
            )
            assert len(waiting.workflow.pending_actions) == 1
            wrong = await http.post(f"/answer/{link}", data={"choice": "7"})
            assert wrong.status_code == 400 and "choose one of the options" in wrong.text
            answered = await http.post(f"/answer/{link}", data={"choice": "1"})
            assert answered.status_code == 200 and "completed" in answered.text
            again = await http.get(f"/answer/{link}")
            assert again.status_code == 400 and "no longer waits" in again.text
            forged = await http.get("/answer/not-a-link")
            assert forged.status_code == 403 and "not valid" in forged.text
    finally:
        await api.stop()
    done = await links.workflows.GetWorkflow(
        workflows_pb.GetWorkflowRequest(workflow_id=started.workflow_id), metadata=kit.auth("acme")
    )
    assert done.workflow.result.number_value == 2  # the option itself, a number
