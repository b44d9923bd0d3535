"""``enginectl org get`` and ``enginectl link``: an organization, and answer links made, shown
and used from the terminal against the in-process control plane of ``conftest.py``."""

from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from engine.identity import LinkSigner
from tests.cli.plane import LINK_SECRET, Ctl, Plane

ASK = """\
name: cli-link-ask
version: 1
steps:
  - {id: ask, type: prompt, prompt_type: confirm, message: "Ship it?", output_to: ok}
  - {id: done, type: return, value: "${{ state.ok ? 'shipped' : 'held' }}"}
"""

PICK = """\
name: cli-link-pick
version: 1
steps:
  - {id: pick, type: prompt, prompt_type: choice, message: "Which region?",
     options: [us, eu], output_to: region}
  - {id: done, type: return, value: "${{ state.region }}"}
"""


@pytest.fixture(scope="module")
async def definitions(plane: Plane) -> Plane:
    await plane.register(ASK)
    await plane.register(PICK)
    return plane


async def _waiting(ctl: Ctl, name: str) -> str:
    workflow_id = f"link-{uuid.uuid4().hex[:8]}"
    started = await ctl("run", name, "--id", workflow_id)
    assert started.status == 0, started.err
    return workflow_id


def _fields(lines: list[str]) -> dict[str, str]:
    return {name: value.strip() for name, _, value in (line.partition(":") for line in lines)}


# -- org get --------------------------------------------------------------------------------


async def test_org_get_shows_one_org_as_org_ls_does(plane: Plane, ctl: Ctl) -> None:
    shown = await ctl("org", "get", "inbox", admin=True)
    as_json = await ctl("org", "get", "inbox", "-o", "json", admin=True)
    listed = await ctl("org", "ls", "-o", "json", admin=True)
    missing = await ctl("org", "get", "nowhere", admin=True)
    denied = await ctl("org", "get", "inbox")

    assert (shown.status, shown.err) == (0, "")
    assert shown.out[0].split() == ["ORG", "NAMESPACE", "ADDRESS", "RETENTION"]
    assert shown.out[1].split()[:2] == ["inbox", f"{plane.prefix}inbox"]
    assert len(shown.out) == 2
    [inbox] = [
        o for o in json.loads("\n".join(listed.out))["organizations"] if o["org_id"] == "inbox"
    ]
    assert json.loads("\n".join(as_json.out)) == inbox
    assert (missing.status, missing.out) == (1, [])
    assert missing.err.startswith("enginectl: NOT_FOUND: ")
    assert "nowhere" in missing.err
    assert (denied.status, denied.out) == (1, [])
    assert denied.err.startswith(
        "enginectl: PERMISSION_DENIED: GetOrganization needs the platform role"
    )


# -- answer links ---------------------------------------------------------------------------


async def test_a_link_is_made_shown_and_answered_and_the_run_moves_on(
    definitions: Plane, ctl: Ctl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGINE_HTTP_URL", "http://127.0.0.1:8099/")
    workflow_id = await _waiting(ctl, "cli-link-pick")

    made = await ctl("link", "create", workflow_id, "pick", "--subject", "dana", "--ttl", "2h")
    assert (made.status, made.err) == (0, "")
    fields = _fields(made.out)
    link = fields["link"]
    assert fields["url"] == f"http://127.0.0.1:8099/answer/{link}"
    expires = datetime.strptime(fields["expires"], "%Y-%m-%d %H:%M:%S").astimezone()
    assert abs(expires - (datetime.now(UTC) + timedelta(hours=2))) < timedelta(minutes=1)

    # No token: the link is the credential.
    shown = await ctl("link", "show", link, org=None)
    assert (shown.status, shown.err) == (0, "")
    about = _fields(shown.out)
    assert about["question"] == "Which region?"
    assert about["type"] == "choice"
    assert about["options"] == "us, eu"
    assert (about["run"], about["step"]) == (workflow_id, "pick")
    assert about["answers as"] == "dana"
    assert about["answer"] == "any (a form)"
    assert about["expires"] == fields["expires"]

    without_value = await ctl("link", "answer", link, org=None)
    assert without_value.status == 1
    assert without_value.err == (
        "enginectl: this link opens the prompt's form: give the answer VALUE\n"
    )

    answered = await ctl("link", "answer", link, "eu", org=None)
    assert (answered.status, answered.err) == (0, "")
    assert answered.out == [f'run {workflow_id}: completed: result "eu"']
    run = _fields((await ctl("get", workflow_id)).out)
    assert (run["status"], run["result"]) == ("completed", '"eu"')

    # Used once: its prompt is closed now.
    again = await ctl("link", "answer", link, "us", org=None)
    assert again.status == 1
    assert again.err.startswith("enginectl: FAILED_PRECONDITION: ")
    assert "no longer waits" in again.err


async def test_an_approve_link_answers_yes_and_json_output(
    definitions: Plane, ctl: Ctl, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENGINE_HTTP_URL", raising=False)
    workflow_id = await _waiting(ctl, "cli-link-ask")

    made = await ctl(
        "link", "create", workflow_id, "ask", "--subject", "dana", "--approve", "-o", "json"
    )
    assert (made.status, made.err) == (0, "")
    data = json.loads("\n".join(made.out))
    assert set(data) == {"link", "url", "expire_time"}
    assert data["url"] is None  # no HTTP API known (no ENGINE_HTTP_URL, no dev.env)
    expires = datetime.fromisoformat(data["expire_time"])
    assert abs(expires - (datetime.now(UTC) + timedelta(days=1))) < timedelta(minutes=1)

    shown = await ctl("link", "show", data["link"], "-o", "json", org=None)
    about = json.loads("\n".join(shown.out))
    assert about["fixed"] is True and about["answer"] is True
    assert about["subject"] == "dana" and about["action"]["step_id"] == "ask"

    with_value = await ctl("link", "answer", data["link"], "false", org=None)
    assert with_value.status == 1
    assert with_value.err == "enginectl: this link gives its own answer (true): give no VALUE\n"
    answered = await ctl("link", "answer", data["link"], org=None)
    assert (answered.status, answered.err) == (0, "")
    assert answered.out == [f'run {workflow_id}: completed: result "shipped"']
    run = _fields((await ctl("get", workflow_id)).out)
    assert run["status"] == "completed"


async def test_the_url_comes_from_dev_env(
    definitions: Plane, ctl: Ctl, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ENGINE_HTTP_URL", raising=False)
    home = tmp_path / ".engine"  # the working directory's, where engined dev writes it
    home.mkdir()
    (home / "dev.env").write_text("ENGINE_HTTP_URL=http://localhost:8081\n", encoding="utf-8")
    workflow_id = await _waiting(ctl, "cli-link-ask")

    made = await ctl("link", "create", workflow_id, "ask", "--subject", "dana", "--reject")

    fields = _fields(made.out)
    assert fields["url"] == f"http://localhost:8081/answer/{fields['link']}"
    shown = _fields((await ctl("link", "show", fields["link"], org=None)).out)
    assert shown["answer"] == "false (fixed)"


def _tampered(link: str) -> str:
    header, payload, signature = link.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "someone-else"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


async def test_a_tampered_or_foreign_link_is_refused_with_its_reason(
    definitions: Plane, ctl: Ctl
) -> None:
    workflow_id = await _waiting(ctl, "cli-link-ask")
    made = await ctl("link", "create", workflow_id, "ask", "--subject", "dana")
    link = _fields(made.out)["link"]
    foreign = LinkSigner("another-engine-with-a-key-of-32-bytes").sign(
        LinkSigner(LINK_SECRET).verify(link)
    )

    for bad in (_tampered(link), foreign):
        shown = await ctl("link", "show", bad, org=None)
        answered = await ctl("link", "answer", bad, "true", org=None)
        for refused in (shown, answered):
            assert (refused.status, refused.out) == (1, [])
            assert refused.err == (
                "enginectl: PERMISSION_DENIED: the link is not valid: "
                "Signature verification failed\n"
            )
    # Nothing was answered: the run still waits at its prompt.
    run = _fields((await ctl("get", workflow_id)).out)
    assert (run["status"], run["step"]) == ("waiting", "ask")


async def test_link_create_refuses_a_bad_ttl_and_a_step_that_does_not_wait(
    definitions: Plane, ctl: Ctl
) -> None:
    workflow_id = await _waiting(ctl, "cli-link-ask")

    bad_ttl = await ctl("link", "create", workflow_id, "ask", "--ttl", "soon")
    zero_ttl = await ctl("link", "create", workflow_id, "ask", "--ttl", "0s")
    too_long = await ctl("link", "create", workflow_id, "ask", "--subject", "d", "--ttl", "31d")
    wrong_step = await ctl("link", "create", workflow_id, "done")
    no_run = await ctl("link", "create", "no-such-run", "ask")

    assert (bad_ttl.status, bad_ttl.out) == (2, [])
    assert bad_ttl.err.splitlines()[-1] == (
        "enginectl link create: error: argument --ttl: expected a duration such as '30s', "
        "'5m', '1h30m', '1d' or 'PT5M', got 'soon'"
    )
    assert zero_ttl.status == 2
    assert zero_ttl.err.splitlines()[-1] == (
        "enginectl link create: error: argument --ttl: must be more than 0s, got '0s'"
    )
    assert too_long.status == 1
    assert too_long.err.startswith("enginectl: INVALID_ARGUMENT: ")
    assert re.search(r"ttl: must be more than 0s and at most 30 days", too_long.err)
    assert wrong_step.status == 1
    assert wrong_step.err == (
        f"enginectl: run {workflow_id} waits for no action at step done (it waits at: ask)\n"
    )
    assert no_run.status == 1
    assert no_run.err.startswith("enginectl: NOT_FOUND: ")
