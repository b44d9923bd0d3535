"""The web console in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

A person signs in (with the link ``engined dev`` prints, or a token typed in), sees the prompts
waiting for them with the question rendered, answers a confirm, a choice and a text prompt in
one click each and sees the run move on; a forbidden answer says why; another organization's
prompt is never shown; a run page follows the run live, without a reload, and draws its
definition. ``make test`` installs the browser (``make browser``).

Set ``ENGINE_SCREENSHOTS=DIR`` to keep screenshots of the inbox and a run page in DIR (the
README's come from here).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from engine.api.v1 import resources_pb2 as resources_pb
from engine.api.v1 import schedule_service_pb2 as schedules_pb
from engine.api.v1 import schedule_service_pb2_grpc as schedules_grpc
from engine.api.v1 import workflow_service_pb2 as workflows_pb
from engine.api.v1 import workflow_service_pb2_grpc as workflows_grpc
from engine.gateway import HttpApiServer
from engine.wire import to_value
from tests.server.harness import ControlPlaneKit, unique

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = os.environ.get("ENGINE_SCREENSHOTS")
TIMEOUT_MS = 20_000

REVIEW = """\
name: {name}
version: 1
description: A release review with every kind of prompt
inputs:
  service: {{type: string, default: api}}
steps:
  - id: approve
    type: prompt
    prompt_type: confirm
    message: |-
      Deploy **${{{{ inputs.service }}}}** to `prod`?

      - canary first
      - then every region
    output_to: approved
  - id: region
    type: prompt
    prompt_type: choice
    message: Which region goes first?
    options: [eu-west, us-east]
    output_to: region
  - id: notes
    type: prompt
    prompt_type: text
    message: Release notes, in one line
    output_to: notes
  - id: done
    type: return
    value: {{approved: "${{{{ state.approved }}}}", region: "${{{{ state.region }}}}",
            notes: "${{{{ state.notes }}}}"}}
"""

GOVERNED = """\
name: {name}
version: 1
steps:
  - id: signoff
    type: prompt
    prompt_type: confirm
    message: "Sign off the audit?"
    approvers: {{subjects: [dana]}}
    output_to: ok
  - {{id: done, type: return, value: "${{{{ state.ok }}}}"}}
"""

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists(),
    reason=f"no Chromium at {CHROMIUM}: `make browser` installs Debian's",
)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1100, "height": 900})
    opened = await context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(str(error)))
    try:
        yield opened
    finally:
        await context.close()
    assert not problems, f"script errors on the page: {problems}"


class Runs:
    """Definitions and runs made through gRPC, as another client would."""

    def __init__(self, kit: ControlPlaneKit) -> None:
        self.kit = kit
        self.stub = workflows_grpc.WorkflowServiceStub(kit.channel())

    async def start(self, text: str, org: str = "north", subject: str = "ann") -> Any:
        name = unique("console")
        await self.kit.register(text.format(name=name), org)
        return await self.stub.StartWorkflow(
            workflows_pb.StartWorkflowRequest(definition_name=name, wait_for_suspension=True),
            metadata=self.kit.auth(org, subject=subject),
        )

    async def get(self, workflow_id: str, org: str = "north") -> Any:
        found = await self.stub.GetWorkflow(
            workflows_pb.GetWorkflowRequest(workflow_id=workflow_id), metadata=self.kit.auth(org)
        )
        return found.workflow

    async def answer(self, workflow_id: str, action_id: str, result: Any) -> None:
        await self.stub.SubmitResult(
            workflows_pb.SubmitResultRequest(
                workflow_id=workflow_id, action_id=action_id, result=to_value(result)
            ),
            metadata=self.kit.auth("north", subject="ann"),
        )


async def sign_in(page: Page, api: HttpApiServer, token: str, where: str = "") -> None:
    """Open the sign-in link (the token in the fragment), then go to ``where``."""
    await page.goto(api.url + f"/console/#token={token}")
    await expect(page.locator("h1")).to_have_text("Inbox")
    assert "token=" not in page.url, "the token stays out of the address bar"
    if where:
        await page.goto(api.url + f"/console/{where}")


def card(page: Page, workflow_id: str, step: str) -> Any:
    return page.locator(f'article.prompt[data-step="{step}"]').filter(has_text=workflow_id)


async def test_a_person_answers_a_confirm_a_choice_and_a_text_prompt(
    kit: ControlPlaneKit, api: HttpApiServer, page: Page
) -> None:
    runs = Runs(kit)
    started = await runs.start(REVIEW)
    run_id = started.workflow_id
    await sign_in(page, api, kit.token("north", subject="ann"))

    approve = card(page, run_id, "approve")
    await expect(approve).to_be_visible()
    # The question's Markdown is rendered, and escaped: no markup from the definition runs.
    await expect(approve.locator(".question strong")).to_have_text("api")
    await expect(approve.locator(".question code")).to_have_text("prod")
    await expect(approve.locator(".question li")).to_have_count(2)
    await expect(approve).to_contain_text("Anyone in the organization may answer.")
    await approve.get_by_role("button", name="Approve").click()
    await expect(approve.get_by_role("status")).to_contain_text(
        "Answered. The run is waiting at region"
    )

    await page.reload()
    region = card(page, run_id, "region")
    await expect(region.get_by_role("button")).to_have_text(["eu-west", "us-east"])
    await region.get_by_role("button", name="us-east").click()
    await expect(region.get_by_role("status")).to_contain_text("waiting at notes")

    await page.reload()
    notes = card(page, run_id, "notes")
    # The keyboard alone: the text box, then the Send button.
    await notes.get_by_label("Your answer").fill("Faster <b>cold</b> starts")
    await notes.get_by_label("Your answer").press("Tab")
    await page.keyboard.press("Enter")
    await expect(notes.get_by_role("status")).to_contain_text("The run is completed")

    finished = await runs.get(run_id)
    assert resources_pb.RunStatus.Name(finished.status) == "RUN_STATUS_COMPLETED"
    assert dict(finished.result.struct_value) == {
        "approved": True,
        "region": "us-east",
        "notes": "Faster <b>cold</b> starts",
    }


async def test_a_forbidden_answer_says_why_and_changes_nothing(
    kit: ControlPlaneKit, api: HttpApiServer, page: Page
) -> None:
    runs = Runs(kit)
    started = await runs.start(GOVERNED)
    await sign_in(page, api, kit.token("north", subject="ann"))
    signoff = card(page, started.workflow_id, "signoff")
    await expect(signoff).to_contain_text("May answer: dana.")
    await signoff.get_by_role("button", name="Approve").click()
    status = signoff.get_by_role("status")
    await expect(status).to_contain_text("Not answered")
    await expect(status).to_contain_text("may be answered by subjects ['dana']")
    await expect(status).to_contain_text("ANSWER_REFUSED")
    await expect(signoff.get_by_role("button", name="Approve")).to_be_enabled()
    still = await runs.get(started.workflow_id)
    assert resources_pb.RunStatus.Name(still.status) == "RUN_STATUS_WAITING"


async def test_another_organizations_prompts_and_runs_are_never_shown(
    kit: ControlPlaneKit, api: HttpApiServer, page: Page
) -> None:
    runs = Runs(kit)
    theirs = await runs.start(REVIEW, org="south")
    ours = await runs.start(REVIEW, org="north")
    await sign_in(page, api, kit.token("north", subject="ann"))
    await expect(card(page, ours.workflow_id, "approve")).to_be_visible()
    assert await page.get_by_text(theirs.workflow_id).count() == 0
    await page.goto(api.url + "/console/#/runs")
    await expect(page.get_by_role("link", name=ours.workflow_id)).to_be_visible()
    assert await page.get_by_text(theirs.workflow_id).count() == 0
    # Asking for it by id is refused as if it did not exist.
    await page.goto(api.url + f"/console/#/runs/{theirs.workflow_id}")
    await expect(page.get_by_role("alert")).to_contain_text("WORKFLOW_NOT_FOUND")


async def test_a_run_page_follows_the_run_live_and_draws_its_definition(
    kit: ControlPlaneKit, api: HttpApiServer, page: Page
) -> None:
    runs = Runs(kit)
    started = await runs.start(REVIEW)
    run_id = started.workflow_id
    await sign_in(page, api, kit.token("north", subject="ann"), f"#/runs/{run_id}")
    await expect(page.locator("#run-status")).to_have_text("waiting")
    await expect(page.locator("#run-view article.prompt")).to_have_attribute("data-step", "approve")
    await expect(page.locator("#graph svg")).to_be_visible()
    await expect(page.locator("#graph")).to_contain_text("approve: prompt")
    marker = await page.evaluate("() => { window.notReloaded = true; return true; }")
    assert marker

    # Someone else answers (another client): the page shows the next prompt by itself.
    [action] = started.pending_actions
    await runs.answer(run_id, action.action_id, True)
    await expect(page.locator("#run-view article.prompt")).to_have_attribute("data-step", "region")
    timeline = page.locator("ol.timeline li")
    await expect(timeline.filter(has_text="approve")).to_contain_text("completed")
    await expect(timeline.filter(has_text="approve")).to_contain_text("Answered by ann.")
    assert await page.evaluate("() => window.notReloaded === true"), "the page was reloaded"
    if SCREENSHOTS:
        await page.screenshot(path=str(Path(SCREENSHOTS) / "console-run.png"), full_page=True)
        await page.goto(api.url + "/console/#/inbox")
        await expect(card(page, run_id, "region")).to_be_visible()
        await page.screenshot(path=str(Path(SCREENSHOTS) / "console-inbox.png"))


async def test_definitions_and_schedules_read_pause_unpause_and_trigger(
    kit: ControlPlaneKit, api: HttpApiServer, page: Page
) -> None:
    name = unique("console")
    await kit.register(REVIEW.format(name=name), "north")
    schedules = schedules_grpc.ScheduleServiceStub(kit.channel())
    schedule_id = unique("nightly")
    await schedules.CreateSchedule(
        schedules_pb.CreateScheduleRequest(
            schedule_id=schedule_id,
            definition_name=name,
            spec=schedules_pb.ScheduleSpec(cron=["0 3 * * *"]),
        ),
        metadata=kit.auth("north"),
    )

    # A viewer reads both, and is refused a pause, with the reason.
    await sign_in(page, api, kit.token("north", subject="vic", roles=["viewer"]), "#/definitions")
    await page.get_by_role("link", name=name).click()
    await expect(page.locator("h1")).to_contain_text(name)
    await expect(page.locator("#graph svg")).to_be_visible()
    await expect(page.locator("pre").last).to_contain_text("prompt_type: choice")
    await page.goto(api.url + "/console/#/schedules")
    schedule = page.locator(f'article[data-schedule="{schedule_id}"]')
    await expect(schedule).to_contain_text("0 3 * * *")
    await schedule.get_by_role("button", name="Pause").click()
    await expect(schedule.get_by_role("status")).to_contain_text("PERMISSION_DENIED")

    # A member pauses, unpauses and triggers it.
    await sign_in(page, api, kit.token("north", subject="ann"), "#/schedules")
    await expect(schedule.locator(".badge")).to_have_text("active")
    await schedule.get_by_role("button", name="Pause").click()
    await expect(schedule.locator(".badge")).to_have_text("paused")
    found = await schedules.GetSchedule(
        schedules_pb.GetScheduleRequest(schedule_id=schedule_id), metadata=kit.auth("north")
    )
    assert found.schedule.paused
    await schedule.get_by_role("button", name="Unpause").click()
    await expect(schedule.locator(".badge")).to_have_text("active")
    await schedule.get_by_role("button", name="Trigger now").click()
    await expect(schedule.get_by_role("status")).to_contain_text("trigger: done.")
    await page.goto(api.url + "/console/#/runs")
    await expect(page.locator("tbody tr").filter(has_text=name).first).to_be_visible()


async def test_a_bad_token_is_refused_at_sign_in_and_the_page_works_on_a_phone(
    kit: ControlPlaneKit, api: HttpApiServer, browser: Browser
) -> None:
    context = await browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        await page.goto(api.url + "/console/")
        await expect(page.locator("h1")).to_have_text("Sign in")
        await page.get_by_label("Token").fill("not-a-token")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.locator("#notice")).to_contain_text("That token was refused")
        await expect(page.locator("h1")).to_have_text("Sign in")

        started = await Runs(kit).start(REVIEW)
        await page.get_by_label("Token").fill(kit.token("north", subject="ann"))
        await page.get_by_label("Token").press("Enter")
        prompt = card(page, started.workflow_id, "approve")
        await expect(prompt).to_be_visible()
        width = await page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, f"the inbox scrolls sideways on a phone ({width} px)"
        box = await prompt.get_by_role("button", name="Approve").bounding_box()
        assert box is not None and box["height"] >= 40, "buttons stay large enough to tap"
    finally:
        await context.close()


async def test_the_graph_route_keeps_to_the_callers_organization(
    kit: ControlPlaneKit, api: HttpApiServer
) -> None:
    name = unique("graphed")
    await kit.register(GOVERNED.format(name=name), "north")
    async with httpx2.AsyncClient(timeout=30) as client:
        ours = await client.get(
            api.url + f"/console/graph/{name}",
            headers={"Authorization": f"Bearer {kit.token('north')}"},
        )
        theirs = await client.get(
            api.url + f"/console/graph/{name}",
            headers={"Authorization": f"Bearer {kit.token('south')}"},
        )
        nobody = await client.get(api.url + f"/console/graph/{name}")
        bad = await client.get(
            api.url + f"/console/graph/{name}?version=two",
            headers={"Authorization": f"Bearer {kit.token('north')}"},
        )
    assert ours.status_code == 200 and "signoff: prompt" in ours.json()["mermaid"]
    assert theirs.status_code == 404
    assert theirs.json()["error"]["details"][0]["reason"] == "DEFINITION_NOT_FOUND"
    assert nobody.status_code == 401
    assert bad.status_code == 400 and "version" in bad.json()["error"]["message"]
