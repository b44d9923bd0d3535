"""``enginectl`` against a running control plane: what a user sees, and the exit status.

Each test drives the real CLI (``enginectl_main`` in a thread) over a real gRPC channel to the
in-process control plane of ``conftest.py``. Runs are answered the way an executor would: by
``enginectl submit`` from another thread while ``run --follow`` watches.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from pathlib import Path
from typing import Any

import jwt
import pytest

from engine.definition import load_definition
from engine.identity import Claims, TokenVerifier
from tests.cli.plane import SECRET, Ctl, Plane, Result
from tests.cli.test_enginectl import (
    INVALID,
    INVALID_LINES,
    VALID,
    WARNING_LINES,
    WITH_WARNING,
)
from tests.helpers.devserver import free_port
from tests.tenancy.orgkit import eventually
from tests.tenancy.orgkit import inbox as inbox_of

ROLLOUT = """\
name: cli-rollout
version: 1
inputs:
  service: {type: string, required: true}
steps:
  - {id: build, type: shell, command: make build, env: {SERVICE: "${{ inputs.service }}"},
     output_to: build}
  - {id: approve, type: prompt, prompt_type: confirm, message: "Deploy ${{ inputs.service }}?",
     output_to: approved}
  - id: rollout
    type: foreach
    items: '["us", "eu", "ap"]'
    as: region
    max_parallel: 3
    steps:
      - {id: apply, type: mcp_call, tool: k8s.apply, params: {region: "${{ region }}"}}
    output_to: regions
  - {id: review, type: delegate, agent: "@reviewer", instruction: "Check ${{ inputs.service }}",
     output_to: review}
  - {id: done, type: return, value: "${{ {'approved': state.approved, 'review': state.review} }}"}
"""
"""Every kind of external action, and a foreach of three items."""

ASK = """\
name: cli-ask
version: 1
inputs:
  who: {type: string, default: world}
steps:
  - {id: ask, type: prompt, prompt_type: confirm, message: "Greet ${{ inputs.who }}?",
     output_to: ok}
  - {id: done, type: return, value: "${{ state.ok ? 'hello ' + inputs.who : 'no' }}"}
"""

QUICK = """\
name: cli-quick
version: 1
inputs:
  n: {type: integer, required: true}
steps:
  - {id: double, type: set_state, set: {twice: "${{ inputs.n * 2 }}"}}
  - {id: done, type: return, value: "${{ state.twice }}"}
"""

BUILD = """\
name: cli-build
version: 1
steps:
  - {id: build, type: shell, command: make}
"""

QUIZ = """\
name: cli-quiz
version: 1
steps:
  - {id: agree, type: prompt, prompt_type: confirm, message: "Proceed?", output_to: agreed}
  - {id: pick, type: prompt, prompt_type: choice, message: "Which environment?",
     options: [staging, prod], output_to: env}
  - {id: name, type: prompt, prompt_type: text, message: "Release name?", output_to: name}
  - {id: note, type: prompt, prompt_type: info, message: "Deploying now"}
  - {id: done, type: return,
     value: "${{ {'agreed': state.agreed, 'env': state.env, 'name': state.name} }}"}
"""

REVIEW = """\
name: cli-review
version: 1
steps:
  - {id: review, type: delegate, agent: "@cli-worker", instruction: "Review the release",
     output_to: verdict}
  - {id: done, type: return, value: "${{ state.verdict }}"}
"""
"""One delegate action, on a queue (``delegate/@cli-worker``) no other test uses."""

UUID = r"[0-9a-f-]{36}"


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
async def definitions(plane: Plane) -> Plane:
    """The definitions the run tests start, registered once (in ``acme``; QUIZ and BUILD in
    ``inbox`` too)."""
    await asyncio.gather(
        *(plane.register(text) for text in (ROLLOUT, ASK, QUICK, BUILD, REVIEW)),
        plane.register(QUIZ, "inbox"),
        plane.register(BUILD, "inbox"),
    )
    return plane


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _matches(pattern: str, lines: list[str]) -> list[str]:
    return [line for line in lines if re.fullmatch(pattern, line)]


# -- definitions ----------------------------------------------------------------------------


async def test_apply_registers_then_reports_unchanged_with_warnings(
    ctl: Ctl, tmp_path: Path
) -> None:
    greet = _write(tmp_path, "greet.yaml", VALID)
    warned = _write(tmp_path, "warned.yaml", WITH_WARNING)
    greet_hash = load_definition(VALID).content_hash
    warned_hash = load_definition(WITH_WARNING).content_hash

    first = await ctl("apply", str(greet), str(warned))
    again = await ctl("apply", str(greet), str(warned))

    assert (first.status, first.err) == (0, "")
    assert first.out == [
        f"registered greet:2 {greet_hash}",
        f"registered warned:1 {warned_hash}",
        *WARNING_LINES(warned),
    ]
    assert (again.status, again.err) == (0, "")
    assert again.out == ["unchanged greet:2", "unchanged warned:1", *WARNING_LINES(warned)]


async def test_apply_prints_the_problems_of_an_invalid_file_with_line_and_column(
    ctl: Ctl, tmp_path: Path
) -> None:
    bad = _write(tmp_path, "bad.yaml", INVALID)
    good = _write(tmp_path, "ok.yaml", VALID.replace("name: greet", "name: greet-ok"))
    conflicting = _write(tmp_path, "conflict.yaml", good.read_text().replace("Hello", "Hi"))
    missing = tmp_path / "missing.yaml"
    assert (await ctl("apply", str(good))).status == 0

    result = await ctl("apply", str(bad), str(missing), str(conflicting), str(good))

    assert result.status == 1
    assert result.out[:2] == INVALID_LINES(bad)
    assert result.out[2] == f"{missing}: cannot read: No such file or directory"
    assert result.out[3].startswith(f"{conflicting}: ALREADY_EXISTS: ")
    assert "greet-ok" in result.out[3]
    assert result.out[4] == "unchanged greet-ok:2"  # one bad file does not stop the others
    assert "Traceback" not in result.err


async def test_defs_lists_the_latest_versions_and_every_version_of_one(
    ctl: Ctl, tmp_path: Path
) -> None:
    v2 = _write(tmp_path, "v2.yaml", VALID.replace("name: greet", "name: listed"))
    v1 = _write(tmp_path, "v1.yaml", v2.read_text().replace("version: 2", "version: 1"))
    assert (await ctl("apply", str(v1), str(v2))).status == 0
    hash_v2 = load_definition(v2.read_text()).content_hash
    short = hash_v2.split(":")[0] + ":" + hash_v2.split(":")[1][:12]

    # The latest versions come from visibility, which catches up within moments.
    latest = await eventually(
        lambda: ctl("defs"),
        lambda r: any(line.startswith("listed ") for line in r.out),
        what="listed in defs",
    )
    versions = await ctl("defs", "listed")
    as_json = await ctl("defs", "listed", "-o", "json")

    assert latest.out[0].split() == ["NAME", "VERSION", "HASH", "REGISTERED", "DESCRIPTION"]
    # The latest version of each, with its registration time.
    when = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"
    assert _matches(rf"listed\s+2\s+{re.escape(short)}\s+{when}", latest.out)
    assert versions.out[0].split()[:3] == ["NAME", "VERSION", "HASH"]
    assert [line.split()[:2] for line in versions.out[1:]] == [["listed", "1"], ["listed", "2"]]
    # Registration times are known per version.
    assert re.fullmatch(r"listed\s+2\s+\S+\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", versions.out[2])
    data = json.loads("\n".join(as_json.out))
    assert [(d["name"], d["version"]) for d in data["definitions"]] == [
        ("listed", 1),  # a number, though proto JSON makes an int64 a string
        ("listed", 2),
    ]
    assert data["definitions"][1]["content_hash"] == hash_v2


# -- runs -----------------------------------------------------------------------------------

_RESULTS = {
    "build": '{"exit_code": 0, "stdout": "built", "stderr": ""}',
    "approve": "true",
    "apply": '{"applied": true}',
    "review": "looks good",  # not JSON: submitted as the string
}


async def _answer_until_done(
    plane: Plane,
    ctl: Ctl,
    capsys: pytest.CaptureFixture[str],
    follow: asyncio.Task[Result],
    workflow_id: str,
) -> tuple[list[int], list[str], str]:
    """Submit each action of the run (``enginectl submit``) once ``follow`` has shown it.

    Answering only what the follower has printed makes the test deterministic (an action
    answered within the watch's polling interval would never be shown), and checks that it
    shows each action while the run waits for it. The submissions print JSON, so the
    follower's ``(action ID`` is the only mention of an action in ``waiting:`` form.

    Returns:
        The submissions' exit statuses, and everything printed to stdout and stderr.
    """
    answered: set[str] = set()
    statuses = []
    out = err = ""
    while not follow.done():
        captured = capsys.readouterr()
        out, err = out + captured.out, err + captured.err
        try:
            status = await plane.tenancy.dispatcher.status(plane.org(), workflow_id)
        except Exception:  # not started yet
            status = {"pending_actions": []}
        for action in status["pending_actions"]:
            if action["action_id"] in answered or f"(action {action['action_id']}" not in out:
                continue
            answered.add(action["action_id"])
            # The parent's id and the step, as a person would type them; --action picks the
            # foreach item, and the CLI finds the item's run.
            submitted = await ctl(
                "submit",
                workflow_id,
                action["step_id"],
                _RESULTS[action["step_id"]],
                "--action",
                action["action_id"],
                "-o",
                "json",
                capture=False,
            )
            statuses.append(submitted.status)
        await asyncio.sleep(0.05)
    await follow
    captured = capsys.readouterr()
    return statuses, (out + captured.out).splitlines(), err + captured.err


async def test_run_follow_shows_each_step_action_and_foreach_progress(
    definitions: Plane, ctl: Ctl, capsys: pytest.CaptureFixture[str]
) -> None:
    workflow_id = _id("rollout")
    follow = asyncio.create_task(
        ctl(
            "run",
            "cli-rollout",
            "--id",
            workflow_id,
            "--input",
            "service=api",
            "--follow",
            capture=False,
        )
    )

    submissions, out, err = await _answer_until_done(definitions, ctl, capsys, follow, workflow_id)

    assert follow.result().status == 0, out
    assert err == ""
    assert submissions == [0] * 6  # build, approve, three items, review
    # The submissions' JSON is in the same stream: pick out the follow's lines.
    assert _matches(rf"started {workflow_id} \(cli-rollout:1\) run {UUID}", out)
    step_lines = [line for line in out if re.match("  [a-z]", line)]
    assert [line.split()[:3] for line in step_lines] == [
        ["build", "shell", "completed"],
        ["approve", "prompt", "completed"],
        ["rollout", "foreach", "completed"],
        ["review", "delegate", "completed"],
        ["done", "return", "completed"],
    ]
    assert _matches(rf"waiting: shell build \$ make build  \(action {UUID}\)", out)
    assert _matches(rf"waiting: prompt approve \[confirm\] Deploy api\?  \(action {UUID}\)", out)
    assert "running: rollout (foreach)" in out
    assert _matches(r"rollout: [0-3]/3 items", out)
    for index, region in enumerate(("us", "eu", "ap")):
        assert _matches(
            rf'waiting: mcp_call apply tool k8s\.apply \{{"region":"{region}"\}}  '
            rf"\(action {UUID} in {workflow_id}/rollout/{index}\)",
            out,
        )
    assert _matches(rf"waiting: delegate review @reviewer: Check api  \(action {UUID}\)", out)
    [end] = [line for line in out if line.startswith("completed: result ")]
    assert json.loads(end.removeprefix("completed: result ")) == {
        "approved": True,
        "review": "looks good",
    }
    # Progress only ever moves forwards.
    counts = [int(line.split()[1].split("/")[0]) for line in _matches(r"rollout: \d/3 items", out)]
    assert counts == sorted(counts)


async def test_run_answers_where_the_run_waits_then_get_submit_and_json(
    definitions: Plane, ctl: Ctl
) -> None:
    workflow_id = _id("ask")

    started = await ctl("run", "cli-ask", "--id", workflow_id, "--input", "who=ann")
    shown = await ctl("get", workflow_id)
    wrong = await ctl("submit", workflow_id, "ask", "maybe")
    submitted = await ctl("submit", workflow_id, "ask", "true")
    as_json = await ctl("get", workflow_id, "-o", "json")

    assert (started.status, started.err) == (0, "")
    assert re.fullmatch(rf"started {workflow_id} \(cli-ask:1\) run {UUID}", started.out[0])
    assert started.out[1] == "waiting at step ask"
    assert re.fullmatch(
        rf"waiting: prompt ask \[confirm\] Greet ann\?  \(action {UUID}\)", started.out[2]
    )

    assert shown.status == 0
    fields = dict(line.split(":", 1) for line in shown.out[:7])
    assert fields["workflow"].strip() == workflow_id
    assert fields["status"].strip() == "waiting"
    assert fields["step"].strip() == "ask"
    assert fields["definition"].strip() == f"cli-ask:1 {load_definition(ASK).content_hash}"
    assert "pending actions:" in shown.out
    header = shown.out[shown.out.index("pending actions:") + 1]
    assert header.split() == ["WORKFLOW", "STEP", "TYPE", "ACTION", "CREATED", "DETAILS"]
    assert "[confirm] Greet ann?" in shown.out[shown.out.index("pending actions:") + 2]

    assert wrong.status == 1
    assert wrong.out == []
    assert wrong.err.startswith("enginectl: ")
    assert wrong.err == (
        "enginectl: INVALID_ARGUMENT: a confirm prompt takes true or false, got 'maybe'\n"
    )

    assert (submitted.status, submitted.err) == (0, "")
    assert submitted.out == [f'run {workflow_id}: completed: result "hello ann"']

    data = json.loads("\n".join(as_json.out))
    assert data["workflow_id"] == workflow_id
    assert data["status"] == "completed"
    assert data["result"] == "hello ann"
    assert [h["step_id"] for h in data["history"]] == ["ask", "done"]


async def test_work_claims_an_action_and_complete_heartbeat_report_on_it(
    definitions: Plane, ctl: Ctl
) -> None:
    queue = ("--type", "delegate", "--agent", "@cli-worker", "--once")
    nothing = await ctl("work", *queue, "--wait", "1")
    assert (nothing.status, nothing.out) == (3, [])

    workflow_id = _id("review")
    assert (await ctl("run", "cli-review", "--id", workflow_id)).status == 0
    claimed = await ctl("work", *queue, "--wait", "20")
    assert claimed.status == 0, claimed.err
    (line,) = claimed.out
    claim = json.loads(line)
    assert claim["action"]["workflow_id"] == workflow_id
    assert claim["action"]["type"] == "delegate"
    assert claim["action"]["parameters"]["agent"] == "@cli-worker"
    assert (claim["delivery"], claim["lease_seconds"]) == (1, 60.0)
    token = claim["claim_token"]

    held = await ctl("heartbeat", token)
    assert held.status == 0
    assert re.fullmatch(r"holding until \S+Z", held.out[0])

    done = await ctl("complete", token, '{"verdict": "ship it"}')
    assert (done.status, done.out) == (0, ["completed"])
    result = await definitions.tenancy.dispatcher.result(definitions.org(), workflow_id)
    assert result == {"verdict": "ship it"}

    late = await ctl("complete", token, '{"verdict": "no"}')
    assert late.status == 1
    assert late.err.startswith("enginectl: FAILED_PRECONDITION: ")
    stopped = await ctl("heartbeat", token)
    assert stopped.status == 1
    assert stopped.err.startswith("enginectl: FAILED_PRECONDITION: ")

    forged = await ctl("complete", "not-a-token", "{}")
    assert forged.status == 1
    assert forged.err == "enginectl: NOT_FOUND: claim_token is not a claim this engine issued\n"


async def test_follow_json_streams_the_run_and_a_failed_run_exits_1(
    definitions: Plane, ctl: Ctl, capsys: pytest.CaptureFixture[str]
) -> None:
    quick = await ctl("run", "cli-quick", "--input", "n=21", "--follow", "-o", "json")
    workflow_id = _id("build")
    # The follow and the submit run at the same time: their output is read once both ended.
    follow = asyncio.create_task(
        ctl("run", "cli-build", "--id", workflow_id, "--follow", capture=False)
    )
    await eventually(
        lambda: definitions.tenancy.dispatcher.status(definitions.org(), workflow_id),
        lambda s: bool(s["pending_actions"]),
        what="the build to wait",
    )
    failed = await ctl("submit", workflow_id, "build", "--error", "disk full", capture=False)
    followed = await follow
    out = capsys.readouterr().out.splitlines()

    assert quick.status == 0, quick
    documents = [json.loads(line) for line in quick.out]
    assert documents[0]["workflow_type"] == "cli-quick:1"
    assert documents[-1]["workflow"]["status"] == "completed"
    assert documents[-1]["workflow"]["result"] == 42

    assert failed.status == 0
    assert followed.status == 1
    assert _matches(r"failed: .*disk full.*", out)
    assert _matches(r"  build\s+shell\s+failed.*disk full.*", out)


async def test_bad_inputs_and_unknown_definitions_are_reported_with_details(
    definitions: Plane, ctl: Ctl
) -> None:
    bad_input = await ctl("run", "cli-quick", "--input", "n=abc")
    not_pair = await ctl("run", "cli-quick", "--input", "n")
    not_object = await ctl("run", "cli-quick", "--inputs-json", "[1]")
    unknown = await ctl("run", "no-such-definition")

    assert bad_input.status == 1
    err = bad_input.err.splitlines()
    assert err[0].startswith("enginectl: INVALID_ARGUMENT: ")
    assert err[1].startswith("  inputs: ")
    assert "n" in err[1]
    assert not_pair.status == 1
    assert not_pair.err == "enginectl: --input expects KEY=VALUE, got 'n'\n"
    assert not_object.err.startswith("enginectl: --inputs-json must be a JSON object")
    assert unknown.status == 1
    assert unknown.err.startswith("enginectl: NOT_FOUND: ")
    assert "no-such-definition" in unknown.err
    assert "Traceback" not in bad_input.err + unknown.err


async def test_ls_filters_by_status_and_definition(definitions: Plane, ctl: Ctl) -> None:
    done_id = _id("quick")
    waiting_id = _id("ask")
    assert (await ctl("run", "cli-quick", "--id", done_id, "--input", "n=1")).status == 0
    assert (await ctl("run", "cli-ask", "--id", waiting_id)).status == 0

    completed = await eventually(
        lambda: ctl("ls", "--status", "completed", "--definition", "cli-quick"),
        lambda r: any(line.startswith(done_id) for line in r.out),
        what="the completed run listed",
    )
    waiting = await eventually(
        lambda: ctl("ls", "--status", "waiting"),
        lambda r: any(line.startswith(waiting_id) for line in r.out),
        what="the waiting run listed",
    )
    queried = await ctl("ls", "--query", f"WorkflowId = '{done_id}'", "-o", "json")

    assert completed.out[0].split() == ["WORKFLOW", "TYPE", "STATUS", "STEP", "STARTED", "CLOSED"]
    row = next(line for line in completed.out if line.startswith(done_id)).split()
    assert row[1:3] == ["cli-quick:1", "completed"]
    assert all(line.split()[2] == "completed" for line in completed.out[1:])
    assert not any(line.startswith(waiting_id) for line in completed.out)
    row = next(line for line in waiting.out if line.startswith(waiting_id)).split()
    assert row[1:4] == ["cli-ask:1", "waiting", "ask"]
    assert [w["workflow_id"] for w in json.loads("\n".join(queried.out))["workflows"]] == [done_id]


async def test_submit_into_a_foreach_needs_the_action_when_several_items_wait(
    definitions: Plane, ctl: Ctl
) -> None:
    workflow_id = _id("rollout")
    await ctl("run", "cli-rollout", "--id", workflow_id, "--input", "service=web")
    await ctl("submit", workflow_id, "build", _RESULTS["build"])
    await ctl("submit", workflow_id, "approve", "true")
    await eventually(
        lambda: definitions.tenancy.dispatcher.status(definitions.org(), workflow_id),
        lambda s: len(s["pending_actions"]) == 3,
        what="three items waiting",
    )

    ambiguous = await ctl("submit", workflow_id, "apply", "{}")
    cancelled = await ctl("cancel", workflow_id, "--reason", "changed my mind")
    followed = await ctl("get", workflow_id, "--follow")

    assert ambiguous.status == 1
    assert ambiguous.err.startswith(
        f"enginectl: step apply waits in 3 foreach items of run {workflow_id}: name one with "
        "--action ("
    )
    assert f"(in {workflow_id}/rollout/0)" in ambiguous.err
    assert (cancelled.status, cancelled.out) == (0, [f"cancel requested: {workflow_id}"])
    assert followed.status == 1
    assert followed.out[-1].startswith("cancelled: ")


# -- the inbox ------------------------------------------------------------------------------


async def test_actions_and_answer_walk_a_person_through_every_prompt(
    definitions: Plane, ctl: Ctl
) -> None:
    build_id = _id("build")
    quiz_id = _id("quiz")
    assert (await ctl("run", "cli-build", "--id", build_id, org="inbox")).status == 0
    assert (await ctl("run", "cli-quiz", "--id", quiz_id, org="inbox")).status == 0
    inbox = definitions.org("inbox")
    await eventually(
        lambda: inbox_of(definitions.tenancy.dispatcher, inbox),
        lambda actions: len(actions) == 2,
        what="both runs in the inbox",
    )

    listed = await ctl("actions", org="inbox")
    answered = await ctl("answer", org="inbox", stdin="maybe\ny\n7\n2\nrelease-1\n\n")
    shown = await ctl("get", quiz_id, "-o", "json", org="inbox")
    nothing_left = await ctl("answer", org="inbox", stdin="")

    assert listed.status == 0
    assert listed.out[0].split() == ["WORKFLOW", "STEP", "TYPE", "ACTION", "CREATED", "DETAILS"]
    rows = [line.split() for line in listed.out[1:]]
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (build_id, "build", "shell"),  # oldest first
        (quiz_id, "agree", "prompt"),
    ]
    assert listed.out[1].endswith("$ make")
    assert listed.out[2].endswith("[confirm] Proceed?")

    assert answered.status == 0, answered
    prefix, _, result = answered.out[14].partition(" result ")
    answered.out[14] = f"{prefix} result {{...}}"  # a map's keys come in no particular order
    assert json.loads(result) == {"agreed": True, "env": "prod", "name": "release-1"}
    assert answered.out == [
        f"{quiz_id} / agree (confirm)",
        "Proceed? [y/n] please answer y or n",
        f"Proceed? [y/n] -> run {quiz_id}: waiting at step pick",
        f"{quiz_id} / pick (choice)",
        "Which environment?",
        "  1) staging",
        "  2) prod",
        "choose 1-2: please answer with a number from 1 to 2",
        f"choose 1-2: -> run {quiz_id}: waiting at step name",
        f"{quiz_id} / name (text)",
        "Release name?",
        f"> -> run {quiz_id}: waiting at step note",
        f"{quiz_id} / note (info)",
        "Deploying now",
        f"(press enter) -> run {quiz_id}: completed: result {{...}}",
        "answered 4 prompt(s), skipped 1 other action(s) (enginectl actions)",
    ]
    workflow = json.loads("\n".join(shown.out))
    assert workflow["result"] == {"agreed": True, "env": "prod", "name": "release-1"}
    assert nothing_left.out == [
        "answered 0 prompt(s), skipped 1 other action(s) (enginectl actions)"
    ]

    cancelled = await ctl("cancel", build_id, org="inbox")
    assert cancelled.status == 0


async def test_answer_stops_quietly_when_input_ends(definitions: Plane, ctl: Ctl) -> None:
    workflow_id = _id("ask")
    await ctl("run", "cli-ask", "--id", workflow_id)

    result = await ctl("answer", "--workflow", workflow_id, stdin="")

    assert result.status == 0
    assert result.out == [
        f"{workflow_id} / ask (confirm)",
        "Greet world? [y/n] ",
        "stopped: no more input",
        "answered 0 prompt(s)",
    ]
    await ctl("cancel", workflow_id)


# -- organizations and tokens ---------------------------------------------------------------


async def test_org_create_and_ls_with_an_admin_token(plane: Plane, ctl: Ctl) -> None:
    created = await ctl("org", "create", "extra", "--retention-days", "2", admin=True)
    again = await ctl("org", "create", "extra", admin=True)
    listed = await ctl("org", "ls", admin=True)
    as_json = await ctl("org", "ls", "-o", "json", admin=True)
    denied = await ctl("org", "create", "other")

    namespace = f"{plane.prefix}extra"
    assert (created.status, created.err) == (0, "")
    temporal = plane.tenancy.resolver.resolve("extra").endpoint.address
    assert created.out == [f"created extra: namespace {namespace} at {temporal}, retention 2d"]
    assert again.out[0].startswith(f"exists extra: namespace {namespace} ")
    assert listed.out[0].split() == ["ORG", "NAMESPACE", "ADDRESS", "RETENTION"]
    assert [line.split()[0] for line in listed.out[1:]] == ["acme", "extra", "inbox"]
    assert listed.out[2].split()[1] == namespace
    assert listed.out[2].split()[3] == "2d"
    assert [o["org_id"] for o in json.loads("\n".join(as_json.out))["organizations"]] == [
        "acme",
        "extra",
        "inbox",
    ]
    assert denied.status == 1
    assert denied.err == (
        "enginectl: PERMISSION_DENIED: CreateOrganization needs the platform role (an org's "
        "admin administers only its org); the token of org 'acme' has roles []\n"
    )


async def test_token_create_signs_tokens_the_server_accepts(
    plane: Plane, ctl: Ctl, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ENGINE_TOKEN_SECRET", SECRET)
    admin = await ctl(
        "token", "create", "--org", "acme", "--role", "platform", "--subject", "ops", connect=False
    )
    short = await ctl("token", "create", "--org", "inbox", "--ttl", "15m", connect=False)
    monkeypatch.delenv("ENGINE_TOKEN_SECRET")
    no_secret = await ctl("token", "create", "--org", "acme", connect=False)
    (tmp_path / ".engine").mkdir()
    (tmp_path / ".engine" / "secret").write_text(SECRET + "\n", encoding="utf-8")
    from_file = await ctl("token", "create", "--org", "acme", "--ttl", "90", connect=False)
    bad_ttl = await ctl("token", "create", "--org", "acme", "--ttl", "soon", connect=False)
    bad_org = await ctl("token", "create", "--org", "Not Valid", connect=False)

    verifier = TokenVerifier(SECRET)
    assert (admin.status, len(admin.out)) == (0, 1)
    assert verifier.verify(f"Bearer {admin.out[0]}") == Claims("acme", ("platform",), "ops")
    assert verifier.verify(f"Bearer {short.out[0]}") == Claims("inbox", ())
    claims: dict[str, Any] = jwt.decode(short.out[0], SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 900
    assert no_secret.status == 1
    assert no_secret.err.startswith("enginectl: no token secret: set ENGINE_TOKEN_SECRET")
    claims = jwt.decode(from_file.out[0], SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["iat"] == 90
    assert bad_ttl.status == 2
    assert "expected a duration" in bad_ttl.err
    assert bad_org.status == 1
    assert bad_org.err.startswith("enginectl: ")

    # The server takes it: the platform token lists organizations.
    listed = await ctl("--token", admin.out[0], "org", "ls", org=None)
    assert listed.status == 0


# -- connection and authentication ----------------------------------------------------------


async def test_a_bad_or_missing_token_is_unauthenticated(ctl: Ctl) -> None:
    forged = await ctl("defs", "--token", "not-a-jwt", org=None)
    missing = await ctl("defs", org=None)

    assert (forged.status, forged.out) == (1, [])
    assert forged.err == "enginectl: UNAUTHENTICATED: invalid token: Not enough segments\n"
    assert missing.status == 1
    assert missing.err == (
        "enginectl: UNAUTHENTICATED: missing 'authorization: Bearer <token>' metadata\n"
        "hint: set ENGINE_TOKEN or pass --token (enginectl token create --org ORG)\n"
    )


async def test_an_unreachable_address_is_reported_by_name(ctl: Ctl) -> None:
    address = f"127.0.0.1:{free_port()}"

    result = await ctl("--address", address, "--connect-timeout", "0.3", "ls", connect=False)

    assert (result.status, result.out) == (1, [])
    assert result.err == (
        f"enginectl: cannot connect to the control plane at {address} (plaintext, address "
        "from --address): no answer within 0.3s; is it running ('engined dev')? Set "
        "ENGINE_ADDRESS or pass --address.\n"
    )


async def test_connection_settings_come_from_dev_env_then_environment_then_flags(
    plane: Plane, ctl: Ctl, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    (tmp_path / ".engine").mkdir()
    (tmp_path / ".engine" / "dev.env").write_text(
        f"ENGINE_ADDRESS={plane.address}\nENGINE_TOKEN={plane.token()}\nTEMPORAL_UI=http://x\n",
        encoding="utf-8",
    )

    from_dev_env = await ctl("defs", connect=False)
    monkeypatch.setenv("ENGINE_ADDRESS", dead)
    from_environment = await ctl("--connect-timeout", "0.3", "defs", connect=False)
    from_flag = await ctl("defs", "--address", plane.address, connect=False)
    monkeypatch.setenv("ENGINE_TOKEN", "not-a-jwt")
    token_from_environment = await ctl("defs", "--address", plane.address, connect=False)

    assert (from_dev_env.status, from_dev_env.err) == (0, "")
    assert from_environment.status == 1
    assert f"at {dead} (plaintext, address from ENGINE_ADDRESS)" in from_environment.err
    assert (from_flag.status, from_flag.err) == (0, "")
    assert token_from_environment.err.startswith("enginectl: UNAUTHENTICATED: invalid token")


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (its own CA) and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_tls_with_the_ca_from_a_flag_or_the_environment(
    plane: Plane, ctl: Ctl, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cert, key = _self_signed(tmp_path)
    secure = plane.tenancy.control_plane(
        TokenVerifier(SECRET), address="127.0.0.1:0", tls_cert=str(cert), tls_key=str(key)
    )
    await secure.start()
    address = f"127.0.0.1:{secure.port}"
    try:
        with_flag = await ctl("--address", address, "--ca", str(cert), "ls", "--limit", "1")
        plaintext = await ctl("--address", address, "--connect-timeout", "0.5", "ls")
        monkeypatch.setenv("ENGINE_TLS_CA", str(cert))
        from_environment = await ctl("--address", address, "ls", "--limit", "1")
        missing_ca = await ctl("--address", address, "--ca", str(tmp_path / "nope.pem"), "ls")
    finally:
        await secure.stop(0)

    assert (with_flag.status, with_flag.err) == (0, "")
    assert plaintext.status == 1
    assert f"cannot connect to the control plane at {address} (plaintext," in plaintext.err
    assert (from_environment.status, from_environment.err) == (0, "")
    assert missing_ca.status == 1
    assert missing_ca.err == (
        f"enginectl: cannot read the CA certificate {tmp_path / 'nope.pem'}: "
        "No such file or directory\n"
    )
