"""``enginectl test``: definitions run against test files on the real interpreter.

Most tests run the command in-process against the session's dev server (``--temporal``), so
that they do not each start a server; the subprocess tests at the end run it as a user does,
with the private dev server it starts by itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from engine.cli import enginectl_main
from tests.helpers.devserver import DevServer

ROOT = Path(__file__).resolve().parents[2]

Run = Callable[..., Awaitable[tuple[int, list[str]]]]


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture
def run(temporal_server: DevServer, capsys: pytest.CaptureFixture[str]) -> Run:
    """``enginectl test ARGS`` on the session's dev server: (exit status, stdout lines)."""

    async def _run(*argv: str) -> tuple[int, list[str]]:
        command = ["test", "--temporal", temporal_server.address, *argv]
        status = await asyncio.to_thread(enginectl_main, command)
        captured = capsys.readouterr()
        assert "Traceback" not in captured.out + captured.err
        return status, captured.out.splitlines()

    return _run


def failure_lines(out: list[str], name: str) -> list[str]:
    """The indented lines under the FAIL line of test ``name``."""
    start = next(i for i, line in enumerate(out) if line.startswith("FAIL") and name in line)
    lines = []
    for line in out[start + 1 :]:
        if not line.startswith("      "):
            break
        lines.append(line.strip())
    return lines


GREET = """\
name: greet
version: 1
inputs:
  who: {type: string, default: world}
state: {approved: false}
steps:
  - id: compose
    type: set_state
    set: {greeting: "Hello, ${{ inputs.who }}"}
  - id: approve
    type: prompt
    prompt_type: confirm
    message: "Send '${{ state.greeting }}'?"
    output_to: approved
  - id: send
    type: mcp_call
    when: state.approved
    tool: chat.post
    params: {text: "${{ state.greeting }}"}
    output_to: sent
  - id: done
    type: return
    value: {greeting: "${{ state.greeting }}", sent: "${{ state.sent ?? null }}"}
"""

GREET_TESTS = """\
definition: greet.yaml
tests:
  - name: approved and sent
    inputs: {who: Ada}
    results:
      approve: [true]
      send: [{id: 42}]
    expect:
      path: [compose, approve, send, done]
      state: {approved: true, greeting: "Hello, Ada"}
      result: {greeting: "Hello, Ada", sent: {id: 42}}
      actions:
        send: [{tool: chat.post, params: {text: "Hello, Ada"}}]
  - name: refused
    results:
      approve: [false]
    expect:
      path: [{step: compose}, {step: approve}, {step: send, outcome: skipped}, {step: done}]
      result: {greeting: "Hello, world", sent: null}
"""


async def test_a_passing_file_prints_a_line_per_test_and_exits_0(write, run) -> None:
    write("greet.yaml", GREET)
    tests = write("greet.test.yaml", GREET_TESTS)

    status, out = await run(str(tests))

    assert status == 0
    assert re.fullmatch(rf"PASS  {re.escape(str(tests))}: approved and sent \(\d+ ms\)", out[0])
    assert re.fullmatch(rf"PASS  {re.escape(str(tests))}: refused \(\d+ ms\)", out[1])
    assert re.fullmatch(rf"{re.escape(str(tests))}: 2 passed in \d+ ms", out[2])
    assert len(out) == 3


async def test_a_failing_assertion_names_the_step_and_shows_expected_and_actual(write, run) -> None:
    write("greet.yaml", GREET)
    tests = write(
        "greet.test.yaml",
        """\
tests:
  - name: wrong expectations
    results:
      approve: [false]
    expect:
      path: [compose, approve, send, done]
      state: {approved: true}
      result: {greeting: "Hello, world", sent: {id: 42}}
      steps: {send: {status: completed}}
      actions: {approve: [{message: "Send it?"}]}
""",
    )

    status, out = await run(str(tests))

    assert status == 1
    assert out[0].startswith(f"FAIL  {tests}:2: wrong expectations (")
    assert failure_lines(out, "wrong expectations") == [
        "path: step #3: expected 'send', got 'done' (step 'send' skipped)",
        "expected: compose, approve, send, done",
        "actual:   compose, approve, done",
        "state.approved: expected true, got false (written by step 'approve')",
        "result.sent: expected {\"id\": 42}, got null (returned by step 'done')",
        "step 'send': status expected completed, got skipped",
        "step 'approve': action #1: parameters.message: expected \"Send it?\", got "
        "\"Send 'Hello, world'?\"",
    ]
    assert out[-1] == f"{tests}: 0 passed, 1 failed in {out[-1].split(' in ')[1]}"


async def test_a_failed_run_shows_why_it_failed(write, run) -> None:
    write("greet.yaml", GREET)
    tests = write(
        "greet.test.yaml",
        """\
tests:
  - name: the post fails
    results:
      approve: [true]
      send: [{error: "chat is down"}]
""",
    )

    status, out = await run(str(tests))

    assert status == 1
    assert failure_lines(out, "the post fails") == [
        "status: expected completed, got failed (step 'send' failed: chat is down)"
    ]


async def test_a_step_asking_for_more_results_than_given_fails_clearly(write, run) -> None:
    write(
        "twice.yaml",
        """\
name: twice
version: 1
steps:
  - {id: ask, type: delegate, agent: "@a", instruction: first}
  - {id: again, type: delegate, agent: "@a", instruction: second}
  - id: flaky
    type: shell
    command: make
    retry: {max_attempts: 3, initial_interval: 1s}
""",
    )
    tests = write(
        "twice.test.yaml",
        """\
tests:
  - name: too few results
    results:
      ask: [one]
      again: [two]
      flaky: [{exit_code: 1, stderr: boom}]
  - name: too many results
    results:
      ask: [one, one more]
      again: [two]
      flaky: [{exit_code: 0}]
""",
    )

    status, out = await run(str(tests))

    assert status == 1
    assert failure_lines(out, "too few results") == [
        "step 'flaky' asked for a result (the 2nd time; shell, attempt 2) but the test "
        "answers it only once"
    ]
    assert failure_lines(out, "too many results") == [
        "step 'ask' was given 2 result(s) but asked for 1 (the first unused is at line 9)"
    ]


async def test_a_wait_of_an_hour_and_timeouts_take_no_real_time(write, run, tmp_path) -> None:
    write(
        "slow.yaml",
        """\
name: slow
version: 1
steps:
  - {id: settle, type: wait, duration: 1h, message: Letting it settle}
  - {id: check, type: mcp_call, tool: check, timeout: 2h, on_error: continue}
  - {id: merged, type: wait_for, event: merged, timeout: 1d, on_error: continue}
  - {id: later, type: wait, duration: 24h}
  - {id: done, type: return, value: "${{ [steps.check.status, steps.merged.status] }}"}
""",
    )
    tests = write(
        "slow.test.yaml",
        """\
tests:
  - name: an hour, two hours and a day
    results:
      check: [{timeout: true}]
    expect:
      path: [settle, later, done]
      result: [failed, failed]
      steps:
        check: {error: timed out}
        merged: {error: "no event 'merged' arrived"}
""",
    )
    junit = tmp_path / "slow.xml"

    started = time.monotonic()
    status, out = await run(str(tests), "--junit", str(junit))
    elapsed = time.monotonic() - started

    assert status == 0, out
    case = ET.parse(junit).find("testsuite/testcase")
    assert case is not None
    assert float(case.get("time", "")) < 1.0  # the run itself
    assert elapsed < 10  # the whole command, worker start-up included


LOOP = """\
name: rounds
version: 1
state: {green: false}
steps:
  - id: until_green
    type: loop
    until: state.green
    max_iterations: 5
    steps:
      - {id: run_tests, type: shell, command: make test, on_error: continue, output_to: tests}
      - {id: mark, type: set_state, set: {green: "${{ state.tests.exit_code == 0 }}"}}
      - id: fix
        type: delegate
        when: "!state.green"
        agent: "@fixer"
        instruction: "round ${{ loop.iteration }}: ${{ state.tests.stderr }}"
        output_to: fix
  - {id: done, type: return, value: "${{ {'rounds': steps.until_green.output.iterations,
     'last_fix': state.fix} }}"}
"""


async def test_a_loop_step_gets_its_next_result_each_iteration(write, run) -> None:
    write("rounds.yaml", LOOP)
    tests = write(
        "rounds.test.yaml",
        """\
tests:
  - name: green on the third round
    results:
      run_tests:
        - {exit_code: 1, stderr: 2 failed}
        - {exit_code: 1, stderr: 1 failed}
        - {exit_code: 0, stdout: all passed}
      fix: [first patch, second patch]
    expect:
      path: [until_green, mark, fix, mark, fix, run_tests, mark, done]
      result: {rounds: 3, last_fix: second patch}
      actions:
        fix: [{instruction: "round 0: 2 failed"}, {instruction: "round 1: 1 failed"}]
      steps:
        run_tests: {status: completed, output: {stdout: all passed}}
  - name: never green
    results:
      run_tests: [{result: {exit_code: 1, stderr: still red}, times: 5}]
      fix: [{result: patch, times: 5}]
    expect:
      error: "loop 'until_green' ran max_iterations (5)"
""",
    )

    status, out = await run(str(tests))

    assert status == 0, out


async def test_events_parallel_branches_and_try_catch_finally(write, run) -> None:
    write(
        "flow.yaml",
        """\
name: flow
version: 1
state: {log: []}
steps:
  - id: both
    type: parallel
    branches:
      build:
        - {id: compile, type: shell, command: make, output_to: compiled}
      review:
        - {id: pr_merged, type: wait_for, event: merged, correlate: event.pr == 7,
           output_to: merged}
  - id: guarded
    type: try
    steps:
      - {id: deploy, type: mcp_call, tool: deploy}
    catch:
      - {id: rollback, type: mcp_call, tool: rollback,
         params: {reason: "${{ error.message }}"}}
    finally:
      - {id: notify, type: mcp_call, tool: notify}
  - {id: done, type: return, value: "${{ state.merged }}"}
""",
    )
    tests = write(
        "flow.test.yaml",
        """\
results:
  compile: [{exit_code: 0}]
  notify: [{ok: true}]
tests:
  - name: the right pull request, deployed
    events:
      merged: [{pr: 8}, {pr: 7}]     # the first does not correlate
    results:
      deploy: [{ok: true}]
    expect:
      path: [both, compile, pr_merged, guarded, deploy, notify, done]
      result: {pr: 7}
  - name: a failed deploy is rolled back
    events:
      merged: [{pr: 7}]
    results:
      deploy: [{error: quota exceeded}]
      rollback: [{ok: true}]
    expect:
      path: [both, compile, pr_merged, guarded, rollback, notify, done]
      actions:
        rollback: [{params: {reason: quota exceeded}}]
  - name: never merged
    expect:
      status: failed
      error: "no event 'merged' arrived"
""",
    )

    status, out = await run(str(tests))

    assert status == 0, out


async def test_foreach_items_get_the_results_that_match_them(write, run) -> None:
    write(
        "regions.yaml",
        """\
name: regions
version: 1
steps:
  - id: rollout
    type: foreach
    items: '["us", "eu", "ap"]'
    as: region
    max_parallel: 3
    steps:
      - {id: deploy, type: mcp_call, tool: deploy, params: {region: "${{ region }}"},
         output_to: deployed}
      - {id: bake, type: wait, duration: 30m}
      - {id: item_done, type: return, value: "${{ state.deployed }}"}
    output_to: results
  - {id: done, type: return, value: "${{ state.results }}"}
""",
    )
    tests = write(
        "regions.test.yaml",
        """\
tests:
  - name: each region its own answer
    results:
      deploy:
        - {match: {params: {region: eu}}, result: {v: eu}}
        - {result: {v: other}, times: 2}
    expect:
      result: [{v: other}, {v: eu}, {v: other}]
""",
    )

    status, out = await run(str(tests))

    assert status == 0, out


async def test_call_steps_run_the_definitions_the_file_names(write, run) -> None:
    write(
        "caller.yaml",
        """\
name: caller
version: 1
steps:
  - {id: prepare, type: mcp_call, tool: prepare, output_to: prepared}
  - {id: child, type: call, definition: callee, inputs: {n: 2}, output_to: child}
  - {id: done, type: return, value: "${{ state.child }}"}
""",
    )
    write(
        "v2/callee.yaml",
        """\
name: callee
version: 2
inputs: {n: {type: integer, required: true}}
steps:
  - {id: pause, type: wait, duration: 12h}
  - {id: work, type: delegate, agent: "@worker", instruction: "do ${{ inputs.n }}",
     output_to: work}
  - {id: out, type: return, value: {n: "${{ inputs.n }}", work: "${{ state.work }}"}}
""",
    )
    tests = write(
        "caller.test.yaml",
        """\
definitions: {callee: v2/callee.yaml}
tests:
  - name: the called run is answered by its step ids
    results:
      prepare: [{ok: true}]
      work: [done]
    expect:
      path: [prepare, child, done]
      result: {n: 2, work: done}
      actions:
        work: [{instruction: do 2}]
""",
    )
    missing = write(
        "missing-callee.test.yaml",
        "definition: caller.yaml\ntests: [{name: x}]\n",
    )

    status, out = await run(str(tests))
    bad_status, bad_out = await run(str(missing))

    assert status == 0, out
    assert bad_status == 2
    assert bad_out[0] == (
        f"{missing}:1:1: step 'child' calls definition 'callee': cannot read "
        f"{missing.parent / 'callee.yaml'}: No such file or directory (name its file under "
        "'definitions')"
    )


async def test_the_junit_report_has_a_suite_per_file_and_a_case_per_test(
    write, run, tmp_path
) -> None:
    write("greet.yaml", GREET)
    passing = write("greet.test.yaml", GREET_TESTS)
    failing = write(
        "failing.test.yaml",
        """\
definition: greet.yaml
tests:
  - name: expects a refusal
    results:
      approve: [true]
      send: [{id: 1}]
    expect:
      state: {approved: false}
""",
    )
    broken = write("broken.test.yaml", "definition: greet.yaml\ntests: [{name: x, result: {}}]\n")
    junit = tmp_path / "reports" / "junit.xml"

    status, _ = await run(str(passing), str(failing), str(broken), "--junit", str(junit))

    assert status == 2  # an invalid file wins over a failed test
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "1", "1")
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == [str(passing), str(failing), str(broken)]
    assert [(s.get("tests"), s.get("failures"), s.get("errors")) for s in suites] == [
        ("2", "0", "0"),
        ("1", "1", "0"),
        ("1", "0", "1"),
    ]
    cases = suites[0].findall("testcase")
    assert [c.get("name") for c in cases] == ["approved and sent", "refused"]
    assert all(c.find("failure") is None for c in cases)
    assert all(float(c.get("time", "")) > 0 for c in cases)
    failed = suites[1].find("testcase")
    assert failed is not None
    assert (failed.get("name"), failed.get("line"), failed.get("file")) == (
        "expects a refusal",
        "3",
        str(failing),
    )
    failure = failed.find("failure")
    assert failure is not None
    assert failure.get("message") == (
        "state.approved: expected false, got true (written by step 'approve')"
    )
    error = suites[2].find("testcase/error")
    assert error is not None
    assert error.get("message") == (
        f"{broken}:2:19: unknown key 'result' in a test; did you mean 'results'? "
        "(expected name, workflow_id, inputs, results, events, expect)"
    )


async def test_bad_test_files_are_reported_with_their_locations_and_exit_2(write, run) -> None:
    write("greet.yaml", GREET)
    bad = write(
        "bad.test.yaml",
        """\
definition: greet.yaml
tests:
  - name: typos
    inputs: {who: 7}
    results:
      aprove: [true]
      compose: [x]
      send: {id: 1}
    events:
      merged: [{}]
    expect:
      status: done
      path: [compose, sned]
  - name: typos
    results:
      approve: [yes please]
""",
    )
    unparsable = write("unparsable.test.yaml", "tests:\n  - name: [unclosed\n")
    broken_definition = write("broken.yaml", "name: Broken\nversion: 1\nsteps: []\n")
    of_broken = write("of-broken.test.yaml", "definition: broken.yaml\ntests: [{name: x}]\n")
    missing = write("missing.test.yaml", "tests: [{name: x}]\n")

    status, out = await run(
        str(bad), str(unparsable), str(of_broken), str(missing), str(Path("nowhere.test.yaml"))
    )

    assert status == 2
    assert out == [
        f"{bad}:4:19: input 'who' must be of type string, got 7",
        f"{bad}:6:7: the definition has no step 'aprove'; did you mean 'approve'?",
        f"{bad}:7:7: step 'compose' is a set_state step: only delegate, mcp_call, prompt, "
        "shell steps take results",
        f"{bad}:8:13: the results of step 'send' must be a list, one entry per time the step "
        "asks (write [a mapping] for one)",
        f"{bad}:10:7: no wait_for step waits for an event 'merged' (events waited for: none)",
        f"{bad}:12:15: status: expected one of completed, failed, cancelled, got 'done'",
        f"{bad}:13:23: the definition has no step 'sned'; did you mean 'send'?",
        f"{bad}:14:11: a second test named 'typos' (the first is at line 3)",
        f"{bad}:16:17: a result of step 'approve' (a confirm prompt): a confirm prompt takes "
        "true or false, got 'yes please'",
        f"ERROR {bad}: not run (the test file is invalid)",
        f"{unparsable}:3:1: YAML syntax error: did not find expected ',' or ']' (while "
        "parsing a flow sequence at line 2)",
        f"ERROR {unparsable}: not run (the test file is invalid)",
        f"{broken_definition}:1:7: invalid workflow name 'Broken': use lowercase letters, "
        "digits and '-', starting with a letter or digit (at most 63 characters)",
        f"{broken_definition}:3:8: 'steps' must not be empty",
        f"ERROR {of_broken}: not run (the test file is invalid)",
        f"{missing}:1:1: cannot read the definition {missing.parent / 'missing.yaml'}: "
        "No such file or directory",
        f"ERROR {missing}: not run (the test file is invalid)",
        "nowhere.test.yaml: cannot read: No such file or directory",
        "ERROR nowhere.test.yaml: not run (the test file is invalid)",
        "5 files: 0 passed, 5 invalid file(s) in " + out[-1].split(" in ")[-1],
    ]
    assert out[-1].endswith(" s")  # no server started: nothing to say about one


async def test_k_runs_only_the_tests_named(write, run) -> None:
    write("greet.yaml", GREET)
    tests = write("greet.test.yaml", GREET_TESTS)

    status, out = await run(str(tests), "-k", "REFUSED")

    assert status == 0
    assert [line.split(":")[1].split(" (")[0] for line in out[:-1]] == [" refused"]


# -- as a user runs it ------------------------------------------------------------------------


def launch(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": ""}
    return subprocess.run(
        [str(ROOT / "cmd" / "enginectl"), *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
        timeout=90,
    )


def test_the_command_starts_its_own_server_and_exits_1_on_a_failure(write, tmp_path: Path) -> None:
    write("greet.yaml", GREET)
    write("greet.test.yaml", GREET_TESTS)
    write(
        "failing.test.yaml",
        """\
definition: greet.yaml
tests:
  - name: expects a refusal
    results: {approve: [true], send: [{id: 1}]}
    expect: {result: {greeting: "Hello, world", sent: null}}
""",
    )

    passed = launch("test", "greet.test.yaml", cwd=tmp_path)
    failed = launch("test", "greet.test.yaml", "failing.test.yaml", cwd=tmp_path)

    assert (passed.returncode, passed.stderr) == (0, "")
    assert passed.stdout.splitlines()[-1].startswith("greet.test.yaml: 2 passed in ")
    assert (failed.returncode, failed.stderr) == (1, "")
    assert "FAIL  failing.test.yaml:3: expects a refusal (" in failed.stdout
    assert "result.sent: expected null, got {\"id\": 1} (returned by step 'done')" in failed.stdout
    assert "Traceback" not in failed.stdout


_IMPORTS_PROBE = """\
import contextlib, io, json, sys
from engine.cli import enginectl_main
with contextlib.redirect_stdout(io.StringIO()) as out:
    status = enginectl_main(sys.argv[1:])
heavy = sorted(m for m in sys.modules if m.startswith(("temporalio", "engine.workflow")))
print(json.dumps({"status": status, "heavy": heavy[:3], "help": out.getvalue()}))
"""


def test_help_documents_the_format_and_loads_no_temporal() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", _IMPORTS_PROBE, "test", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        check=True,
    )
    outcome = json.loads(probe.stdout)

    assert (outcome["status"], outcome["heavy"]) == (0, [])
    for documented in ("results:", "{timeout: true}", "events:", "expect:", "--junit", "match"):
        assert documented in outcome["help"]
