"""``enginectl``: what a user sees on the terminal, and the exit status scripts rely on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import enginectl_main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(
    path for path in (ROOT / "examples").glob("*.yaml") if not path.name.endswith(".test.yaml")
)

VALID = """\
name: greet
version: 2
inputs:
  who: {type: string, default: world}
steps:
  - id: hello
    type: set_state
    set: {greeting: "Hello, ${{ inputs.who }}"}
  - id: done
    type: return
    value: "${{ state.greeting }}"
"""

# Two problems at known places: a bad workflow name (line 1) and an unknown step type (line 8).
INVALID = """\
name: Not_Valid
version: 1
steps:
  - id: ok
    type: set_state
    set: {x: 1}
  - id: broken
    type: teleport
"""


def INVALID_LINES(path: Path) -> list[str]:  # noqa: N802 - reads as the constant it stands for
    return [
        f"{path}:1:7: invalid workflow name 'Not_Valid': use lowercase letters, digits and '-', "
        "starting with a letter or digit (at most 63 characters)",
        f"{path}:8:11: unknown step type 'teleport'; expected one of condition, set_state, "
        "foreach, return, shell, mcp_call, prompt, wait, delegate, loop, break, parallel, try, "
        "wait_for, call",
    ]


# Valid, but the loader warns: a value spliced into a shell command (line 8, column 27).
WITH_WARNING = """\
name: warned
version: 1
inputs:
  branch: {type: string, required: true}
steps:
  - id: checkout
    type: shell
    command: git checkout "$BRANCH"
    env: {BRANCH: "${{ inputs.branch }}"}
    when: false
"""


def WARNING_LINES(path: Path) -> list[str]:  # noqa: N802 - reads as the constant it stands for
    return [f"{path}:10:11: warning: step 'checkout' never runs: its 'when' is always false"]


@pytest.fixture
def write(tmp_path: Path):
    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    status = enginectl_main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out.splitlines(), captured.err


def test_valid_file_prints_ok_with_name_version_and_full_hash(write, capsys) -> None:
    from engine.definition import load_definition_file

    path = write("greet.yaml", VALID)
    expected_hash = load_definition_file(path).content_hash

    status, out, err = run(capsys, "validate", str(path))

    assert status == 0
    assert out == [f"OK greet:2 {expected_hash}"]
    assert err == ""


def test_invalid_file_prints_every_problem_with_its_location(write, capsys) -> None:
    path = write("bad.yaml", INVALID)

    status, out, _ = run(capsys, "validate", str(path))

    assert status == 1
    assert out == INVALID_LINES(path)


def test_warnings_follow_the_ok_line(write, capsys) -> None:
    path = write("warned.yaml", WITH_WARNING)

    status, out, _ = run(capsys, "validate", str(path))

    assert status == 0
    assert out[0].startswith("OK warned:1 ")
    assert out[1:] == WARNING_LINES(path)


def test_missing_file_is_reported_not_raised(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.yaml"

    status, out, err = run(capsys, "validate", str(missing))

    assert status == 1
    assert out == [f"{missing}: cannot read: No such file or directory"]
    assert "Traceback" not in err


def test_directory_is_reported_not_raised(tmp_path: Path, capsys) -> None:
    status, out, _ = run(capsys, "validate", str(tmp_path))

    assert status == 1
    assert out == [f"{tmp_path}: cannot read: Is a directory"]


def test_file_that_is_not_utf8_is_reported_not_raised(tmp_path: Path, capsys) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))

    status, out, _ = run(capsys, "validate", str(path))

    assert status == 1
    assert out == [f"{path}: cannot read: not UTF-8 text (invalid continuation byte at byte 9)"]


def test_every_file_is_checked_and_one_bad_file_fails_the_run(write, tmp_path, capsys) -> None:
    good = write("greet.yaml", VALID)
    bad = write("bad.yaml", INVALID)
    missing = tmp_path / "missing.yaml"

    status, out, _ = run(capsys, "validate", str(good), str(missing), str(bad))

    assert status == 1
    assert out[0].startswith("OK greet:2 ")
    assert out[1] == f"{missing}: cannot read: No such file or directory"
    assert out[2:] == INVALID_LINES(bad)


def test_all_examples_validate(capsys) -> None:
    status, out, _ = run(capsys, "validate", *map(str, EXAMPLES))

    assert status == 0, "\n".join(out)
    assert [line.split()[0] for line in out] == ["OK"] * len(EXAMPLES)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "a command is required"),
        (["validate"], "the following arguments are required: FILE"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
        (["--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_usage_errors_exit_2(capsys, argv: list[str], message: str) -> None:
    status, out, err = run(capsys, *argv)

    assert status == 2
    assert out == []
    assert err.startswith("usage: enginectl")
    assert message in err


def test_help_exits_0(capsys) -> None:
    status, out, _ = run(capsys, "validate", "--help")

    assert status == 0
    assert out[0].startswith("usage: enginectl validate")


def launch(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": ""}
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, check=False)


def test_launcher_script_runs_the_cli_and_passes_the_exit_status(write) -> None:
    good = write("greet.yaml", VALID)
    bad = write("bad.yaml", INVALID)
    launcher = str(ROOT / "cmd" / "enginectl")

    # Once through this interpreter, once as an executable from elsewhere (its shebang's
    # python3 may lack the dependencies, and then the launcher re-runs itself under .venv).
    ok = launch(sys.executable, launcher, "validate", str(good), cwd=ROOT)
    failed = launch(launcher, "validate", str(bad), cwd=Path("/"))

    assert (ok.returncode, ok.stderr) == (0, "")
    assert ok.stdout.startswith("OK greet:2 ")
    assert (failed.returncode, failed.stderr) == (1, "")
    assert failed.stdout.splitlines() == INVALID_LINES(bad)


def test_cmd_is_not_a_package() -> None:
    # `cmd` is also a standard-library module; an __init__.py here would shadow it.
    assert not (ROOT / "cmd" / "__init__.py").exists()


_HEAVY = ("temporalio", "engine.workflow", "engine.dispatcher", "engine.server", "engine.stack")

_IMPORTS_PROBE = """\
import contextlib, io, json, sys
from engine.cli import enginectl_main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    status = enginectl_main(sys.argv[1:])
heavy = sorted({m.split(".")[0] if m.startswith("temporalio") else ".".join(m.split(".")[:2])
                for m in sys.modules if m.startswith(%r)})
print(json.dumps({"status": status, "heavy": heavy}))
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["--address", "127.0.0.1:1", "--connect-timeout", "0.1", "ls"],
        ["--address", "127.0.0.1:1", "--connect-timeout", "0.1", "schedule", "ls"],
        ["--address", "127.0.0.1:1", "--connect-timeout", "0.1", "actions"],
    ],
    ids=["help", "ls", "schedule ls", "actions"],
)
def test_remote_commands_load_neither_temporal_nor_the_interpreter(argv: list[str]) -> None:
    # What makes every call start slowly: Temporal's SDK and the engine's stack below the CLI.
    probe = subprocess.run(
        [sys.executable, "-c", _IMPORTS_PROBE % (_HEAVY,), *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        check=True,
    )
    outcome = json.loads(probe.stdout)
    assert outcome["status"] == (0 if argv == ["--help"] else 1)  # 1: nothing listens there
    assert outcome["heavy"] == []
