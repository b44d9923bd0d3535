"""The commands that make ``enginectl`` do what the API does: ``retry``, ``timeout``, ``schedule
update``, a ``schedule trigger`` that a skip policy would drop, ``defs show``, ``apply DIR``,
``ls --watch`` and the paging flags of the listings.

The real CLI (``enginectl_main`` in a thread, the ``ctl`` fixture) against the in-process control
plane of ``conftest.py``; each test names its runs, schedules and definitions uniquely, so the
tests do not see each other's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shlex
import threading
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.cli import enginectl_main
from engine.cli.enginectl import _runs
from engine.definition import load_definition
from tests.cli.plane import Ctl, Plane, Result
from tests.tenancy.orgkit import eventually

ASK = """\
name: cmd-ask
version: 1
inputs:
  who: {type: string, default: world}
steps:
  - {id: ask, type: prompt, prompt_type: confirm, message: "Greet ${{ inputs.who }}?",
     output_to: ok}
  - {id: done, type: return, value: "${{ state.ok ? 'hello ' + inputs.who : 'no' }}"}
"""
"""A run that waits on a prompt with no deadline."""

ASK_BY = """\
name: cmd-ask-by
version: 1
steps:
  - {id: ask, type: prompt, prompt_type: confirm, message: "Go?", output_to: ok, timeout: 1h}
  - {id: done, type: return, value: "${{ state.ok }}"}
"""
"""A run that waits on a prompt with a deadline an hour away."""

NAP = """\
name: cmd-nap
version: 1
steps:
  - {id: nap, type: wait, duration: 1h}
  - {id: done, type: return, value: rested}
"""
"""A run that waits an hour (a timer, not an action)."""

FANOUT = """\
name: cmd-fanout
version: 1
steps:
  - id: each
    type: foreach
    items: '["us", "eu"]'
    as: region
    max_parallel: 2
    steps:
      - {id: ask, type: prompt, prompt_type: confirm, message: "Go ${{ region }}?", timeout: 1h}
"""
"""Two foreach items, each waiting on a prompt with a deadline."""

GREET = """\
name: cmd-greet
version: 1
inputs:
  who: {type: string, default: world}
  times: {type: integer, default: 1}
steps:
  - {id: greet, type: set_state, set: {text: "${{ 'hello ' + inputs.who }}"}}
  - {id: done, type: return, value: "${{ state.text }}"}
"""
FAR = "0 0 1 1 *"  # once a year, at new year: never during a test
UUID = r"[0-9a-f-]{36}"
TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _json(result: Result) -> Any:
    assert (result.status, result.err) == (0, ""), result
    return json.loads("\n".join(result.out))


def _definition(name: str, version: int = 1, *, comment: str = "") -> str:
    return (
        f"# {comment or name}\n"
        f"name: {name}\n"
        f"version: {version}\n"
        "steps:\n"
        "  - {id: done, type: return, value: 1}   # the whole run\n"
    )


@pytest.fixture(scope="module")
async def registered(plane: Plane) -> Plane:
    await asyncio.gather(
        *(plane.register(text) for text in (ASK, ASK_BY, NAP, GREET, FANOUT)),
        plane.register(ASK, "inbox"),
    )
    return plane


@pytest.fixture
async def schedules(registered: Plane) -> AsyncIterator[list[str]]:
    """The ids of the schedules (in ``acme``) a test creates; deleted after it."""
    made: list[str] = []
    yield made
    client = await registered.tenancy.client("acme")
    for sid in made:
        with contextlib.suppress(Exception):
            await client.get_schedule_handle(sid).delete()


async def _waiting(ctl: Ctl, name: str, workflow_id: str, **options: Any) -> None:
    started = await ctl("run", name, "--id", workflow_id, **options)
    assert started.status == 0, started
    assert started.out[1].startswith("waiting"), started.out


async def _get(ctl: Ctl, workflow_id: str) -> dict[str, Any]:
    data: dict[str, Any] = _json(await ctl("get", workflow_id, "-o", "json"))
    return data


def _deadline(status: dict[str, Any]) -> datetime:
    [action] = status["pending_actions"]
    return datetime.fromisoformat(action["deadline"].replace("Z", "+00:00"))


# -- retry ----------------------------------------------------------------------------------


async def test_retry_runs_a_failed_run_again_from_its_failed_step_or_the_start(
    ctl: Ctl, registered: Plane
) -> None:
    workflow_id = _id("retry")
    await _waiting(ctl, "cmd-ask", workflow_id)
    failed = await ctl("submit", workflow_id, "ask", "--error", "flaky executor")
    assert failed.out == [f"run {workflow_id}: failed: step 'ask' failed: flaky executor"]
    first_run = (await _get(ctl, workflow_id))["run_id"]

    retried = await ctl("retry", workflow_id)

    assert (retried.status, retried.err) == (0, "")
    [line] = retried.out
    match = re.fullmatch(rf"retried {workflow_id} from its failed step: run ({UUID})", line)
    assert match and match.group(1) != first_run, line
    status = await eventually(
        lambda: _get(ctl, workflow_id),
        lambda s: s["run_id"] == match.group(1) and bool(s.get("pending_actions")),
        what="the retried run waits on ask again",
    )
    assert status["status"] == "waiting"
    assert [a["step_id"] for a in status["pending_actions"]] == ["ask"]

    # Failed again, then from the start: the JSON is the new run's ids.
    await ctl("submit", workflow_id, "ask", "--error", "flaky again")
    again = _json(await ctl("retry", workflow_id, "--from-start", "-o", "json"))
    assert again["workflow_id"] == workflow_id
    assert again["run_id"] not in (first_run, match.group(1))
    await ctl("cancel", workflow_id)


async def test_retry_refuses_a_run_that_did_not_fail_and_an_unknown_run(
    ctl: Ctl, registered: Plane
) -> None:
    workflow_id = _id("retry-waiting")
    await _waiting(ctl, "cmd-ask", workflow_id)

    refused = await ctl("retry", workflow_id)

    assert (refused.status, refused.out) == (1, [])
    assert refused.err == (
        f"enginectl: INVALID_ARGUMENT: run '{workflow_id}' in org 'acme' is running: only a "
        "failed, cancelled, terminated or timed-out run can be retried\n"
    )
    missing = await ctl("retry", "no-such-run", "--from-start")
    assert (missing.status, missing.out) == (1, [])
    assert missing.err.startswith("enginectl: NOT_FOUND: ") and "no-such-run" in missing.err
    await ctl("cancel", workflow_id)


# -- timeout --------------------------------------------------------------------------------


async def test_timeout_sets_extends_and_ends_the_deadline_of_a_waiting_action(
    ctl: Ctl, registered: Plane
) -> None:
    workflow_id = _id("deadline")
    await _waiting(ctl, "cmd-ask-by", workflow_id)
    first = _deadline(await _get(ctl, workflow_id))

    moved = await ctl("timeout", workflow_id, "ask", "--set", "2h")

    assert (moved.status, moved.err) == (0, "")
    assert re.fullmatch(
        rf"deadline of step ask in run {workflow_id} moved to {TIME} \(2h00m from now\)",
        moved.out[0],
    ), moved.out
    status = await eventually(
        lambda: _get(ctl, workflow_id),
        lambda s: _deadline(s) > first + timedelta(minutes=30),
        what="the deadline moved",
    )
    two_hours = _deadline(status)
    assert abs(two_hours - (datetime.now(UTC) + timedelta(hours=2))) < timedelta(seconds=30)

    extended = _json(await ctl("timeout", workflow_id, "ask", "--extend", "30m", "-o", "json"))
    assert (extended["workflow_id"], extended["step_id"]) == (workflow_id, "ask")
    wanted = two_hours + timedelta(minutes=30)
    said = datetime.fromisoformat(extended["deadline"].replace("Z", "+00:00"))
    assert abs(said - wanted) < timedelta(seconds=5)
    status = await eventually(
        lambda: _get(ctl, workflow_id),
        lambda s: _deadline(s) > two_hours + timedelta(minutes=20),
        what="the deadline extended",
    )
    assert abs(_deadline(status) - wanted) < timedelta(seconds=5)

    ended = await ctl("timeout", workflow_id, "ask", "--now")
    assert ended.out == [f"deadline of step ask in run {workflow_id} moved to now"]
    failed = await eventually(
        lambda: _get(ctl, workflow_id),
        lambda s: s["status"] == "failed",
        what="the step timed out",
    )
    assert "timed out" in failed["error"]


async def test_timeout_ends_a_wait_now(ctl: Ctl, registered: Plane) -> None:
    workflow_id = _id("nap")
    started = await ctl("run", "cmd-nap", "--id", workflow_id)
    assert started.status == 0

    await eventually(
        lambda: ctl("timeout", workflow_id, "nap", "--now"),
        lambda r: r.status == 0,
        what="the nap can be cut",
    )

    done = await eventually(
        lambda: _get(ctl, workflow_id),
        lambda s: s["status"] == "completed",
        what="the run went on",
    )
    assert done["result"] == "rested"


async def test_timeout_refuses_what_it_cannot_move(ctl: Ctl, registered: Plane) -> None:
    workflow_id = _id("no-deadline")
    await _waiting(ctl, "cmd-ask", workflow_id)

    no_deadline = await ctl("timeout", workflow_id, "ask", "--extend", "5m")
    assert (no_deadline.status, no_deadline.out) == (1, [])
    assert no_deadline.err == (
        f"enginectl: step ask of run {workflow_id} waits with no deadline, so there is nothing "
        "to extend: give one with --set DURATION\n"
    )
    not_waiting = await ctl("timeout", workflow_id, "done", "--extend", "5m")
    assert not_waiting.err == (
        f"enginectl: step done of run {workflow_id} is not waiting (it waits at ask)\n"
    )
    refused = await ctl("timeout", workflow_id, "done", "--set", "5m")
    assert refused.status == 1
    assert refused.err == (
        "enginectl: FAILED_PRECONDITION: step 'done' is not waiting for a result or a time "
        "(the run is at 'ask')\n"
    )
    missing = await ctl("timeout", "no-such-run", "ask", "--now")
    assert missing.status == 1 and missing.err.startswith("enginectl: NOT_FOUND: ")
    await ctl("cancel", workflow_id)


async def test_timeout_of_a_step_waiting_in_foreach_items(ctl: Ctl, registered: Plane) -> None:
    workflow_id = _id("fanout")
    assert (await ctl("run", "cmd-fanout", "--id", workflow_id)).status == 0
    status = await eventually(
        lambda: _get(ctl, workflow_id),
        lambda s: len(s.get("pending_actions", [])) == 2,
        what="both items wait",
    )
    items = sorted(a["workflow_id"] for a in status["pending_actions"])

    unclear = await ctl("timeout", workflow_id, "ask", "--set", "2h")

    assert (unclear.status, unclear.out) == (1, [])
    assert unclear.err == (
        f"enginectl: step ask waits in 2 foreach items of run {workflow_id}: name the item's "
        f"run instead of {workflow_id} ({', '.join(items)})\n"
    )
    moved = await ctl("timeout", items[0], "ask", "--set", "2h")
    assert (moved.status, moved.err) == (0, "")
    assert moved.out[0].startswith(f"deadline of step ask in run {items[0]} moved to ")
    await ctl("cancel", workflow_id)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("x", "ask", "--set", "5 minutes"), "argument --set: expected a duration"),
        (("x", "ask", "--extend", "5"), "argument --extend: expected a duration"),
        (("x", "ask", "--set", "5m", "--now"), "argument --now: not allowed with argument --set"),
        (("x", "ask"), "one of the arguments --set --extend --now is required"),
        (("x",), "the following arguments are required: STEP"),
    ],
)
def test_timeout_usage_errors_name_the_flag(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    assert enginectl_main(["timeout", *argv]) == 2
    assert message in capsys.readouterr().err


# -- schedule update and trigger ------------------------------------------------------------


async def test_schedule_update_changes_only_the_fields_given(
    ctl: Ctl, schedules: list[str], registered: Plane
) -> None:
    sid = _id("update")
    schedules.append(sid)
    created = await ctl(
        "schedule",
        "create",
        sid,
        "cmd-greet",
        "--cron",
        FAR,
        "--tz",
        "Europe/Paris",
        "--input",
        "who=ada",
        "--input",
        "times=2",
        "--note",
        "first",
        "--paused",
    )
    assert created.status == 0, created

    updated = await ctl("schedule", "update", sid, "--cron", "0 3 * * *", "--input", "who=bob")

    assert (updated.status, updated.err) == (0, ""), updated
    assert updated.out[:10] == [
        f"updated schedule {sid} (spec, inputs)",
        f"schedule:   {sid}",
        "definition: cmd-greet:1",
        'inputs:     {"times": 2, "who": "bob"}',  # times kept
        "when:       cron '0 3 * * *' in Europe/Paris",  # the zone kept
        "overlap:    skip",
        "catch-up:   365d",
        "state:      paused",  # pausing has its own commands
        "note:       first",
        "runs:       0",
    ]

    data = _json(
        await ctl(
            "schedule",
            "update",
            sid,
            "--every",
            "1h",
            "--overlap",
            "allow-all",
            "--note",
            "second",
            "--inputs-json",
            '{"who": "cy"}',
            "-o",
            "json",
        )
    )
    spec = data["spec"]
    assert not spec.get("cron")  # the cron replaced by the interval
    assert [i["every"] for i in spec["intervals"]] == [3600]
    assert spec["time_zone"] == "Europe/Paris"
    assert data["inputs"] == {"who": "cy", "times": 1}  # replaced; the default filled in
    assert data["overlap_policy"] == "allow_all"
    assert (data["note"], data["paused"]) == ("second", True)

    await registered.register(GREET.replace("version: 1", "version: 2"))
    pinned = _json(await ctl("schedule", "update", sid, "--version", "latest", "-o", "json"))
    assert pinned["definition_version"] == 2
    assert (pinned["note"], pinned["inputs"]) == ("second", {"who": "cy", "times": 1})


async def test_schedule_update_refusals(ctl: Ctl, schedules: list[str], registered: Plane) -> None:
    sid = _id("update-bad")
    schedules.append(sid)
    assert (await ctl("schedule", "create", sid, "cmd-greet", "--cron", FAR)).status == 0

    nothing = await ctl("schedule", "update", sid)
    assert (nothing.status, nothing.out) == (1, [])
    assert nothing.err == (
        "enginectl: nothing to change: give --cron, --every, --calendar, --tz, --start, --end, "
        "--jitter, --input, --inputs-json, --version, --overlap, --catchup-window or --note\n"
    )
    bad_cron = await ctl("schedule", "update", sid, "--cron", "61 * * * *")
    assert bad_cron.status == 1
    assert bad_cron.err.startswith(
        "enginectl: INVALID_ARGUMENT: spec.cron[0]: minute 61 is out of range 0-59"
    )
    bad_input = await ctl("schedule", "update", sid, "--input", "times=many")
    assert bad_input.status == 1 and "input 'times'" in bad_input.err
    bad_version = await ctl("schedule", "update", sid, "--version", "9")
    assert bad_version.err.startswith(
        "enginectl: INVALID_ARGUMENT: definition_version: version 9 of definition 'cmd-greet' "
        "is not registered"
    )
    namespace = registered.org("acme").namespace
    missing = await ctl("schedule", "update", "no-such-schedule", "--note", "x")
    assert missing.err == (
        "enginectl: NOT_FOUND: schedule 'no-such-schedule' not found in org 'acme' "
        f"(namespace '{namespace}')\n"
    )
    # Unchanged by the refusals.
    shown = await ctl("schedule", "get", sid)
    assert (
        "when:       cron '0 0 1 1 *'" in shown.out
        and 'inputs:     {"times": 1, "who": "world"}' in shown.out
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--jitter", "soon"), "argument --jitter: expected a duration"),
        (("--every", "5 minutes"), "argument --every: expected a duration"),
        (("--version", "newest"), "argument --version: expected a whole number"),
        (("--overlap", "sometimes"), "argument --overlap: invalid choice"),
        ((), "the following arguments are required: ID"),
    ],
)
def test_schedule_update_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    ids = ["x"] if argv else []
    assert enginectl_main(["schedule", "update", *ids, *argv]) == 2
    assert message in capsys.readouterr().err


async def test_trigger_says_when_the_skip_policy_would_drop_the_run(
    ctl: Ctl, schedules: list[str], registered: Plane
) -> None:
    sid = _id("skip")
    schedules.append(sid)
    created = await ctl("schedule", "create", sid, "cmd-ask", "--cron", FAR, "--paused")
    assert created.status == 0
    first = await ctl("schedule", "trigger", sid)
    assert first.out == [f"triggered schedule {sid} (its runs: enginectl schedule get {sid})"]
    shown = await eventually(
        lambda: ctl("schedule", "get", sid, "-o", "json"),
        lambda r: "recent_runs" in json.loads("\n".join(r.out)),
        what="the first run",
    )
    [run] = _json(shown)["recent_runs"]
    await eventually(
        lambda: _get(ctl, run["workflow_id"]),
        lambda s: bool(s.get("pending_actions")),
        what="the first run waits",
    )
    # What the schedule itself knows to be running, which its overlap policy decides by.
    assert _json(await ctl("schedule", "get", sid, "-o", "json"))["running_workflow_ids"] == [
        run["workflow_id"]
    ]

    skipped = await ctl("schedule", "trigger", sid)

    assert (skipped.status, skipped.out) == (1, [])
    assert skipped.err == (
        f"enginectl: not started: the schedule's overlap policy is skip and run "
        f"{run['workflow_id']} is still running\n"
        f"hint: --overlap allow-all starts one alongside it (or wait for it: enginectl get "
        f"{run['workflow_id']})\n"
    )
    buffered = await ctl("schedule", "trigger", sid, "--overlap", "buffer-one")
    assert (buffered.status, buffered.err) == (0, "")
    assert buffered.out == [
        f"triggered schedule {sid}: it starts once run {run['workflow_id']} ends "
        f"(its runs: enginectl schedule get {sid})"
    ]
    alongside = await ctl("schedule", "trigger", sid, "--overlap", "allow-all")
    assert alongside.out == [f"triggered schedule {sid} (its runs: enginectl schedule get {sid})"]
    both = await eventually(
        lambda: ctl("schedule", "get", sid, "-o", "json"),
        lambda r: len(json.loads("\n".join(r.out)).get("recent_runs", [])) == 2,
        what="a second run alongside the first",
    )
    for started in _json(both)["recent_runs"]:
        await ctl("cancel", started["workflow_id"])


# -- definitions ----------------------------------------------------------------------------


async def test_defs_show_prints_the_yaml_as_registered(
    ctl: Ctl, registered: Plane, capsys: pytest.CaptureFixture[str]
) -> None:
    name = _id("shown")
    v1 = _definition(name, comment="first, with its comments")
    v2 = _definition(name, 2, comment="second")
    await registered.register(v1)
    await registered.register(v2)

    for argv, text in (((name,), v2), ((f"{name}:1",), v1), ((f"{name}:2",), v2)):
        result = await ctl("defs", "show", *argv, capture=False)
        assert result.status == 0
        assert capsys.readouterr() == (text, "")  # byte for byte, comments and all

    data = _json(await ctl("defs", "show", f"{name}:1", "-o", "json"))
    assert (data["name"], data["version"], data["yaml"]) == (name, 1, v1)
    assert data["content_hash"] == load_definition(v1).content_hash


async def test_defs_show_of_what_is_not_there(ctl: Ctl, registered: Plane) -> None:
    name = _id("absent")
    await registered.register(_definition(name))
    missing = await ctl("defs", "show", "no-such-definition")
    assert (missing.status, missing.out) == (1, [])
    assert missing.err.startswith("enginectl: NOT_FOUND: ") and "no-such-definition" in missing.err
    no_version = await ctl("defs", "show", f"{name}:9")
    assert no_version.status == 1
    assert no_version.err.startswith("enginectl: NOT_FOUND: ") and " 9 " in no_version.err
    bad = await ctl("defs", "show", f"{name}:latest")
    assert (bad.status, bad.err) == (
        1,
        f"enginectl: expected NAME or NAME:VERSION with a version from 1, got '{name}:latest'\n",
    )


def test_defs_takes_a_second_word_only_after_show(capsys: pytest.CaptureFixture[str]) -> None:
    assert enginectl_main(["defs", "hello", "extra"]) == 2
    assert "unrecognized arguments: extra (to show a definition: defs show NAME)" in (
        capsys.readouterr().err
    )


async def test_apply_a_directory_registers_its_definition_files(
    ctl: Ctl, registered: Plane, tmp_path: Path
) -> None:
    names = [_id(tag) for tag in ("b", "a", "deep", "loose")]
    folder = tmp_path / "defs"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.yml").write_text(_definition(names[0]))
    (folder / "a.yaml").write_text(_definition(names[1]))
    (folder / "a.test.yaml").write_text("cases: []\n")  # a test file: not a definition
    (folder / "notes.txt").write_text("not yaml")
    (folder / "sub" / "deep.yaml").write_text(_definition(names[2]))
    loose = tmp_path / "loose.yaml"
    loose.write_text(_definition(names[3]))

    def hash_of(name: str) -> str:
        return load_definition(_definition(name)).content_hash

    flat = await ctl("apply", str(folder), str(loose))

    assert (flat.status, flat.err) == (0, "")
    assert flat.out == [  # sorted by file name: a.yaml, then b.yml; then the file given
        f"registered {names[1]}:1 {hash_of(names[1])}",
        f"registered {names[0]}:1 {hash_of(names[0])}",
        f"registered {names[3]}:1 {hash_of(names[3])}",
    ]
    deep = await ctl("apply", "-R", str(folder))
    assert deep.out == [
        f"unchanged {names[1]}:1",
        f"unchanged {names[0]}:1",
        f"registered {names[2]}:1 {hash_of(names[2])}",
    ]


async def test_apply_a_directory_reports_each_file_and_refuses_an_empty_one(
    ctl: Ctl, registered: Plane, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = _id("good")
    (folder / "good.yaml").write_text(_definition(good))
    (folder / "broken.yaml").write_text("name: broken\nversion: 1\nsteps: 3\n")

    mixed = await ctl("apply", str(folder))

    assert mixed.status == 1
    assert mixed.out[0].startswith(f"{folder / 'broken.yaml'}:")  # its problems, located
    assert mixed.out[-1] == f"registered {good}:1 {load_definition(_definition(good)).content_hash}"

    empty = tmp_path / "empty"
    (empty / "nested").mkdir(parents=True)
    (empty / "nested" / "only.yaml").write_text(_definition(_id("nested")))
    (empty / "only.test.yaml").write_text("cases: []\n")
    refused = await ctl("apply", str(empty))
    assert (refused.status, refused.out) == (1, [])
    assert refused.err == (
        f"enginectl: {empty}: no definition files in this directory (*.yaml, *.yml, not "
        "*.test.yaml); -R also looks in its subdirectories\n"
    )
    nothing_at_all = await ctl("apply", "-R", str(empty / "nested"), str(tmp_path / "void"))
    assert nothing_at_all.status == 1  # the missing path is reported like a missing file
    assert nothing_at_all.out[-1] == f"{tmp_path / 'void'}: cannot read: No such file or directory"


# -- ls --watch -----------------------------------------------------------------------------


@pytest.fixture
def stop_watching(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set it, and ``ls --watch`` stops as if Ctrl-C was pressed at its next pause."""
    stop = threading.Event()

    def pause(seconds: float) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        time.sleep(min(seconds, 0.1))

    monkeypatch.setattr(_runs, "_wait", pause)
    return stop


async def test_ls_watch_prints_the_list_then_each_change(
    ctl: Ctl,
    registered: Plane,
    capsys: pytest.CaptureFixture[str],
    stop_watching: threading.Event,
) -> None:
    workflow_id = _id("watched")
    await _waiting(ctl, "cmd-ask", workflow_id)
    query = f"WorkflowId = '{workflow_id}'"
    await eventually(
        lambda: ctl("ls", "--query", query),
        lambda r: any(line.startswith(workflow_id) and " waiting " in line for line in r.out),
        what="the run listed as waiting",
    )
    printed: list[str] = []

    async def output() -> list[str]:
        printed.extend(capsys.readouterr().out.splitlines())
        return printed

    watching = asyncio.create_task(
        ctl("ls", "--watch", "--interval", "100ms", "--query", query, capture=False)
    )
    await eventually(output, lambda lines: len(lines) >= 2, what="the first listing")
    await ctl("submit", workflow_id, "ask", "true", capture=False)
    await eventually(
        output,
        lambda lines: any(" completed " in line for line in lines),
        what="the change printed",
    )
    stop_watching.set()

    watched = await watching

    assert watched.status == 130
    await output()
    assert printed[0].split() == ["WORKFLOW", "TYPE", "STATUS", "STEP", "STARTED", "CLOSED"]
    rows = [line for line in printed if line.startswith(workflow_id)]
    assert rows[0].split()[1:4] == ["cmd-ask:1", "waiting", "ask"]
    assert rows[-1].split()[1:3] == ["cmd-ask:1", "completed"]
    assert len(rows) == len(set(rows))  # a row only when it changed
    # The columns of later rows line up with the first listing's.
    assert rows[-1].index("completed") == printed[0].index("STATUS")


async def test_ls_watch_json_is_one_object_a_line(
    ctl: Ctl, registered: Plane, stop_watching: threading.Event
) -> None:
    workflow_id = _id("watched-json")
    await _waiting(ctl, "cmd-ask", workflow_id)
    query = f"WorkflowId = '{workflow_id}'"
    await eventually(
        lambda: ctl("ls", "--query", query),
        lambda r: any(line.startswith(workflow_id) for line in r.out),
        what="the run listed",
    )
    stop_watching.set()  # stop at the first pause: after the first listing

    watched = await ctl("ls", "-w", "--query", query, "-o", "json")

    assert watched.status == 130
    [line] = watched.out
    data = json.loads(line)
    assert (data["workflow_id"], data["status"]) == (workflow_id, "waiting")
    await ctl("cancel", workflow_id)


def test_ls_watch_interval_must_be_a_duration(capsys: pytest.CaptureFixture[str]) -> None:
    assert enginectl_main(["ls", "--watch", "--interval", "2"]) == 2
    assert "argument --interval: expected a duration" in capsys.readouterr().err
    assert enginectl_main(["ls", "--watch", "--interval", "10ms"]) == 2
    assert "argument --interval: must be at least 100ms, got '10ms'" in capsys.readouterr().err


# -- paging ---------------------------------------------------------------------------------


def _next_page(result: Result) -> list[str]:
    """The arguments of the 'next page' line that ends a table."""
    assert result.out[-1].startswith("next page: enginectl "), result.out
    return shlex.split(result.out[-1].removeprefix("next page: enginectl "))


async def test_ls_pages_with_limit_and_page_token(ctl: Ctl, registered: Plane) -> None:
    name = _id("paged")
    await registered.register(_definition(name))
    for _ in range(2):
        assert (await ctl("run", name)).status == 0
    everything = await eventually(
        lambda: ctl("ls", "--definition", name),
        lambda r: len([line for line in r.out if f" {name}:1 " in line]) == 2,
        what="both runs listed",
    )
    assert not everything.out[-1].startswith("next page")

    first = await ctl("ls", "--definition", name, "--limit", "1")

    assert len(first.out) == 3  # the header, one run, the next page
    argv = _next_page(first)
    assert argv[:5] == ["ls", "--definition", name, "--limit", "1"]
    assert argv[5] == "--page-token"
    second = await ctl(*argv)
    assert second.status == 0
    rows = [line for line in (first.out[1], *second.out[1:]) if f" {name}:1 " in line]
    assert sorted(rows) == sorted(line for line in everything.out[1:])

    data = _json(await ctl("ls", "--definition", name, "--limit", "1", "-o", "json"))
    assert len(data["workflows"]) == 1 and data["next_page_token"] == argv[6]
    rest = _json(
        await ctl("ls", "--definition", name, "--limit", "5", "--page-token", argv[6], "-o", "json")
    )
    assert [w["workflow_id"] for w in rest["workflows"]] == [
        w["workflow_id"]
        for w in _json(await ctl("ls", "--definition", name, "-o", "json"))["workflows"][1:]
    ]
    assert "next_page_token" not in rest


async def test_defs_schedules_and_actions_page_too(
    ctl: Ctl, registered: Plane, schedules: list[str]
) -> None:
    name = _id("versions")
    await registered.register(_definition(name))
    await registered.register(_definition(name, 2))
    first = await ctl("defs", name, "--limit", "1")
    assert [line.split()[:2] for line in first.out[1:-1]] == [[name, "1"]]
    argv = _next_page(first)
    assert argv[:4] == ["defs", name, "--limit", "1"]
    second = await ctl(*argv)
    assert [line.split()[:2] for line in second.out[1:]] == [[name, "2"]]  # and no next page
    as_json = _json(await ctl("defs", name, "--limit", "1", "-o", "json"))
    assert as_json["next_page_token"] == argv[-1]
    assert "next_page_token" not in _json(await ctl("defs", name, "-o", "json"))

    for _ in range(2):
        sid = _id("paged")
        schedules.append(sid)
        assert (await ctl("schedule", "create", sid, "cmd-greet", "--cron", FAR)).status == 0
    page = await ctl("schedule", "ls", "--limit", "1")
    assert len(page.out) == 3
    argv = _next_page(page)
    assert argv[:4] == ["schedule", "ls", "--limit", "1"]
    following = await ctl(*argv)
    assert following.status == 0 and len(following.out) >= 2
    assert following.out[1].split()[0] != page.out[1].split()[0]  # the next page, not the first
    assert "next_page_token" in _json(await ctl("schedule", "ls", "--limit", "1", "-o", "json"))

    # The inbox of `inbox` holds only this test's runs.
    waiting = [_id("inbox-ask"), _id("inbox-ask")]
    for workflow_id in waiting:
        await _waiting(ctl, "cmd-ask", workflow_id, org="inbox")
    await eventually(
        lambda: ctl("actions", org="inbox"),
        lambda r: len([line for line in r.out if line.startswith("inbox-ask-")]) == 2,
        what="both actions in the inbox",
    )
    one = await ctl("actions", "--limit", "1", org="inbox")
    assert len(one.out) == 3
    argv = _next_page(one)
    assert argv[:3] == ["actions", "--limit", "1"]
    other = await ctl(*argv, org="inbox")
    assert {one.out[1].split()[0], other.out[1].split()[0]} == set(waiting)
    for workflow_id in waiting:
        await ctl("cancel", workflow_id, org="inbox")


async def test_a_page_token_the_server_did_not_issue_is_refused(
    ctl: Ctl, registered: Plane
) -> None:
    result = await ctl("defs", "--page-token", "not a token!")
    assert (result.status, result.out) == (1, [])
    assert result.err.startswith(
        "enginectl: INVALID_ARGUMENT: page_token: is not a token this server issued"
    ), result.err
