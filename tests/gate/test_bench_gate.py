"""``scripts/bench_gate.py``: the verdicts, the table, ``--rerun`` and the exit status CI reads.

Results files are written here the way pytest-benchmark writes them (``--benchmark-json``); the
re-run's pytest is replaced by a fake that writes a prepared results file, so no benchmark runs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bench_gate.py"


def _load_gate() -> ModuleType:
    """Import the script as a module (``scripts/`` is not a package)."""
    spec = importlib.util.spec_from_file_location("bench_gate", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before running it: dataclasses look their module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gate = _load_gate()

SUSPENSION = "tests/benchmarks/test_interpreter_bench.py::test_suspension"
GRPC = "tests/benchmarks/test_control_plane_bench.py::test_grpc_overhead"
EXPR = "tests/benchmarks/test_expr_bench.py::test_evaluate[1-and-compare]"
CREATION = "tests/benchmarks/test_definition_bench.py::test_workflow_creation"

TARGETS = """\
[targets."suspension"]
median_ms = 20.0
max_ratio = 1.25
why = "workflow reaches an external step -> the action is visible to a client"

[targets."gRPC StartWorkflow"]
max_added_ms = 2.0

[targets."expr evaluate: 1-and-compare"]
min_speedup = { simpleeval = 3.0, jmespath = 3.0, cel-python = 20.0 }
"""


def gate_row(operation: str, median_s: float, **fields: Any) -> dict[str, Any]:
    """A gate row as ``tests/benchmarks/_gate.py`` records it."""
    return {
        "operation": operation,
        "median_s": median_s,
        "p90_s": median_s * 1.2,
        "rounds": 20,
        "raw_median_s": None,
        "raw_p90_s": None,
        "added_s": None,
        "unit": "per call",
        **fields,
    }


def passing_rows() -> dict[str, list[dict[str, Any]]]:
    """Rows by benchmark node id that meet every target of ``TARGETS``."""
    return {
        SUSPENSION: [gate_row("suspension", 0.015, raw_median_s=0.014)],
        GRPC: [gate_row("gRPC StartWorkflow", 0.0105, raw_median_s=0.009, added_s=0.0015)],
        EXPR: [
            gate_row(
                "expr evaluate: 1-and-compare",
                1e-6,
                peers={"simpleeval": 3.9e-6, "jmespath": 6.2e-6, "cel-python": 3.2e-5},
            )
        ],
    }


def write_results(path: Path, rows: dict[str, list[dict[str, Any]]]) -> Path:
    """A pytest-benchmark JSON file, with one ungated benchmark that the gate must ignore."""
    benchmarks = [
        {
            "group": None,
            "name": fullname.split("::")[-1],
            "fullname": fullname,
            "params": None,
            "stats": {"min": 0.001, "median": 0.002, "rounds": 20},
            "options": {},
            "extra_info": {"gate": gate},
        }
        for fullname, gate in rows.items()
    ]
    benchmarks.append(
        {
            "name": "test_ungated",
            "fullname": "tests/benchmarks/test_other.py::test_ungated",
            "stats": {"median": 0.5},
            "extra_info": {"raw_median_s": 0.4},
        }
    )
    path.write_text(json.dumps({"machine_info": {}, "benchmarks": benchmarks}), encoding="utf-8")
    return path


@pytest.fixture
def targets(tmp_path: Path) -> Path:
    """The small targets file ``TARGETS``."""
    path = tmp_path / "targets.toml"
    path.write_text(TARGETS, encoding="utf-8")
    return path


def run_gate(
    capsys: pytest.CaptureFixture[str],
    results: Path,
    targets: Path,
    *extra: str,
    runner: Callable[[Sequence[str]], int] | None = None,
) -> tuple[int, str, str]:
    """``main`` on ``results``: its exit status, stdout and stderr."""
    arguments = [str(results), "--targets", str(targets), *extra]
    status = gate.main(arguments) if runner is None else gate.main(arguments, runner=runner)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def table_line(output: str, operation: str) -> str:
    """The table line of ``operation`` (its first line, where the verdict starts)."""
    return next(line for line in output.splitlines() if line.startswith(operation + " "))


def table_cells(output: str, operation: str) -> dict[str, str]:
    """The cells of ``operation``'s row by column header, wrapped lines joined back."""
    lines = output.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("---"))
    spans = [match.span() for match in re.finditer(r"-+", lines[rule])]

    def cell(block: Sequence[str], column: int) -> str:
        start, end = spans[column]
        end = end if column < len(spans) - 1 else len(max(block, key=len))
        return " ".join(part for line in block if (part := line[start:end].strip()))

    rows: list[list[str]] = []
    for line in lines[rule + 1 :]:
        if not line.strip():
            break
        if cell([line], 0):
            rows.append([line])
        else:
            rows[-1].append(line)
    header = [cell(lines[:rule], column) for column in range(len(spans))]
    block = next(b for b in rows if cell(b, 0) == operation or cell(b, 0).startswith(operation))
    return {name: cell(block, column) for column, name in enumerate(header)}


# -- verdicts --------------------------------------------------------------------------------


def test_all_targets_met_exits_0_with_every_row_ok(
    tmp_path: Path, targets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = write_results(tmp_path / "bench.json", passing_rows())
    status, out, err = run_gate(capsys, results, targets)
    assert status == 0, out + err
    assert table_line(out, "suspension").rstrip().endswith("  ok")
    # Checks the ratio column does not show say what they measured.
    assert "ok (adds " in table_line(out, "gRPC StartWorkflow")
    assert "ok (" in table_line(out, "expr evaluate: 1-and-compare")
    assert out.rstrip().splitlines()[-1] == "bench gate: 3/3 targets met"
    assert "FAILED" not in out and "MISSED" not in out
    assert err == ""


def test_a_missed_target_exits_1_naming_the_row_and_the_check(
    tmp_path: Path, targets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = passing_rows()
    rows[SUSPENSION] = [gate_row("suspension", 0.0183, raw_median_s=0.0139)]
    results = write_results(tmp_path / "bench.json", rows)
    status, out, _ = run_gate(capsys, results, targets)
    assert status == 1
    line = table_line(out, "suspension")
    assert "18.3 ms" in line and "1.32x" in line and "MISSED (ratio 1.32x" in line
    assert table_cells(out, "suspension") == {
        "operation": "suspension",
        "median": "18.3 ms",
        "p90": "22.0 ms",
        "target": "< 20 ms, ≤ 1.25x raw",
        "ratio to raw": "1.32x",
        "verdict": "MISSED (ratio 1.32x > 1.25x)",
    }
    assert out.rstrip().splitlines()[-2:] == [
        "bench gate: 2/3 targets met",
        "bench gate: FAILED: suspension",
    ]


def test_the_table_shows_times_targets_and_ratios_in_100_columns(
    tmp_path: Path, targets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = passing_rows()
    rows[EXPR][0]["note"] = "peers evaluate the same expression, compiled once"
    rows[CREATION] = [gate_row("size check / MiB", 0.00231, unit="per MiB")]
    rows[SUSPENSION][0]["unit"] = "per child"
    results = write_results(tmp_path / "bench.json", rows)
    status, out, _ = run_gate(capsys, results, targets)
    assert status == 0
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["operation", "median", "p90", "target", "ratio"]
    assert lines[0].rstrip().endswith("verdict")
    assert all(len(line) <= 100 for line in lines), out
    suspension = table_line(out, "suspension")
    assert suspension.split("  ")[0] == "suspension (per child)"
    assert "15.0 ms" in suspension and "18.0 ms" in suspension
    assert "< 20 ms, ≤ 1.25x raw" in suspension and "1.07x" in suspension
    assert "adds < 2 ms" in table_line(out, "gRPC StartWorkflow")
    expr = table_line(out, "expr evaluate: 1-and-compare")
    assert "1.00 µs" in expr
    assert table_cells(out, "expr evaluate: 1-and-compare")["target"] == (
        "≥ 3x simpleeval, jmespath; ≥ 20x cel-python"
    )
    # A row without a target is shown for information, after the gated ones.
    ungated = table_line(out, "size check / MiB")
    assert "2.31 ms" in ungated and ungated.rstrip().endswith("-")
    assert lines.index(ungated) > lines.index(expr)
    assert "  expr evaluate: 1-and-compare: peers evaluate the same expression" in out
    assert "bench gate: 3/3 targets met" in out


@pytest.mark.parametrize(
    ("node_id", "row", "check"),
    [
        pytest.param(
            SUSPENSION,
            gate_row("suspension", 0.0213, raw_median_s=0.02),
            "median 21.3 ms ≥ 20 ms",
            id="median",
        ),
        pytest.param(
            SUSPENSION,
            gate_row("suspension", 0.015, raw_median_s=0.01),
            "ratio 1.50x > 1.25x",
            id="ratio",
        ),
        pytest.param(
            GRPC,
            gate_row("gRPC StartWorkflow", 0.011, raw_median_s=0.008, added_s=0.00241),
            "adds 2.41 ms ≥ 2 ms",
            id="added",
        ),
        pytest.param(
            EXPR,
            gate_row(
                "expr evaluate: 1-and-compare",
                2e-6,
                peers={"simpleeval": 4.2e-6, "jmespath": 6.2e-6, "cel-python": 4.1e-5},
            ),
            "2.10x simpleeval < 3x",
            id="speedup",
        ),
        pytest.param(
            SUSPENSION,
            gate_row("suspension", 0.015),
            "no raw baseline recorded for the ratio",
            id="raw-missing",
        ),
        pytest.param(
            GRPC,
            gate_row("gRPC StartWorkflow", 0.011, raw_median_s=0.008),
            "no added time (added_s) recorded",
            id="added-missing",
        ),
        pytest.param(
            EXPR,
            gate_row("expr evaluate: 1-and-compare", 1e-6, peers={"simpleeval": 1e-5}),
            "no jmespath median recorded; no cel-python median recorded",
            id="peer-missing",
        ),
    ],
)
def test_each_check_fails_on_its_own(
    tmp_path: Path,
    targets: Path,
    capsys: pytest.CaptureFixture[str],
    node_id: str,
    row: dict[str, Any],
    check: str,
) -> None:
    rows = passing_rows()
    rows[node_id] = [row]
    results = write_results(tmp_path / "bench.json", rows)
    status, out, _ = run_gate(capsys, results, targets)
    assert status == 1
    assert table_cells(out, row["operation"])["verdict"] == f"MISSED ({check})"
    assert out.count("MISSED") == 1
    assert out.rstrip().splitlines()[-1] == f"bench gate: FAILED: {row['operation']}"


def test_evaluate_reports_each_failed_check_of_a_row() -> None:
    target = gate.Target("suspension", median_ms=20.0, max_ratio=1.25)
    row = gate.Row("suspension", SUSPENSION, median_s=0.030, raw_median_s=0.020)
    [outcome] = gate.evaluate([target], [row])
    assert outcome.misses == ("median 30.0 ms ≥ 20 ms", "ratio 1.50x > 1.25x")
    assert outcome.verdict == "MISSED (median 30.0 ms ≥ 20 ms; ratio 1.50x > 1.25x)"


@pytest.mark.parametrize(
    ("median_s", "raw_median_s", "met"),
    [
        pytest.param(0.025, 0.02, True, id="equal-despite-float-noise"),
        pytest.param(5.0, 4.0, True, id="exactly-equal"),
        pytest.param(0.02501, 0.02, False, id="just-above"),
    ],
)
def test_a_ratio_equal_to_max_ratio_passes(median_s: float, raw_median_s: float, met: bool) -> None:
    target = gate.Target("dispatch start", max_ratio=1.25)
    row = gate.Row("dispatch start", SUSPENSION, median_s=median_s, raw_median_s=raw_median_s)
    [outcome] = gate.evaluate([target], [row])
    assert outcome.met is met, outcome.misses
    if not met:
        # Two decimals would read "1.25x > 1.25x": the figure shows what actually missed.
        assert outcome.misses == ("ratio 1.2505x > 1.25x",)


@pytest.mark.parametrize(
    ("median_s", "met"),
    [
        pytest.param(0.02, False, id="equal-fails"),
        pytest.param(0.019999, True, id="just-below"),
    ],
)
def test_a_median_equal_to_median_ms_fails(median_s: float, met: bool) -> None:
    target = gate.Target("suspension", median_ms=20.0)
    [outcome] = gate.evaluate([target], [gate.Row("suspension", SUSPENSION, median_s=median_s)])
    assert outcome.met is met
    if not met:
        assert outcome.misses == ("median 20.0 ms ≥ 20 ms",)


def test_boundaries_of_added_and_speedup() -> None:
    targets = [
        gate.Target("gRPC GetWorkflow", max_added_ms=2.0),
        gate.Target("expr", min_speedup={"simpleeval": 3.0}),
    ]
    at_limits = [
        gate.Row("gRPC GetWorkflow", GRPC, median_s=0.01, added_s=0.002),
        gate.Row("expr", EXPR, median_s=1e-6, peers={"simpleeval": 3e-6}),
    ]
    added, speedup = gate.evaluate(targets, at_limits)
    assert added.misses == ("adds 2.00 ms ≥ 2 ms",)  # "adds under 2 ms": equal misses
    assert speedup.met  # "at least 3x": equal passes


def test_a_missing_row_fails_naming_the_operation(
    tmp_path: Path, targets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = passing_rows()
    del rows[GRPC]
    results = write_results(tmp_path / "bench.json", rows)
    status, out, _ = run_gate(capsys, results, targets)
    assert status == 1
    line = table_line(out, "gRPC StartWorkflow")
    assert "MISSED (no result)" in line
    assert "no result recorded for: gRPC StartWorkflow" in out
    assert out.rstrip().splitlines()[-2:] == [
        "bench gate: 2/3 targets met",
        "bench gate: FAILED: gRPC StartWorkflow",
    ]


def test_every_failing_row_is_named_on_the_last_line(
    tmp_path: Path, targets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = passing_rows()
    rows[SUSPENSION] = [gate_row("suspension", 0.05, raw_median_s=0.01)]
    del rows[EXPR]
    results = write_results(tmp_path / "bench.json", rows)
    status, out, _ = run_gate(capsys, results, targets)
    assert status == 1
    assert out.rstrip().splitlines()[-1] == (
        "bench gate: FAILED: suspension, expr evaluate: 1-and-compare"
    )


def test_format_seconds_keeps_three_digits_across_units() -> None:
    assert gate.format_seconds(0.0123) == "12.3 ms"
    assert gate.format_seconds(0.000456) == "456 µs"
    assert gate.format_seconds(0.0009996) == "1.00 ms"
    assert gate.format_seconds(1.2) == "1.20 s"
    assert gate.format_seconds(3.2e-8) == "32.0 ns"
    assert gate.format_seconds(-0.0004) == "-400 µs"
    assert gate.format_limit(0.0005) == "500 µs"
    assert gate.format_limit(0.02) == "20 ms"


# -- --rerun ---------------------------------------------------------------------------------


class FakePytest:
    """Stands for the re-run's pytest: records the command, writes prepared results."""

    def __init__(self, rows: dict[str, list[dict[str, Any]]] | None, status: int = 0) -> None:
        self.rows = rows
        self.status = status
        self.commands: list[list[str]] = []

    def __call__(self, command: Sequence[str]) -> int:
        self.commands.append(list(command))
        [output] = [a.split("=", 1)[1] for a in command if a.startswith("--benchmark-json=")]
        if self.rows is not None:
            write_results(Path(output), self.rows)
        return self.status


def failing_first_run(tmp_path: Path) -> Path:
    """Suspension misses its ratio; the gRPC benchmark misses its added time."""
    rows = passing_rows()
    rows[SUSPENSION] = [gate_row("suspension", 0.0183, raw_median_s=0.0139)]
    rows[GRPC] = [
        gate_row("gRPC StartWorkflow", 0.011, raw_median_s=0.008, added_s=0.0025),
        gate_row("gRPC GetWorkflow", 0.003, raw_median_s=0.002, added_s=0.0011),
    ]
    return write_results(tmp_path / "bench-20250101.json", rows)


def test_rerun_of_a_miss_that_then_passes_exits_0(
    tmp_path: Path, targets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = failing_first_run(tmp_path)
    fake = FakePytest(
        {
            SUSPENSION: [gate_row("suspension", 0.0151, raw_median_s=0.014)],
            GRPC: [
                gate_row("gRPC StartWorkflow", 0.0101, raw_median_s=0.009, added_s=0.0012),
                gate_row("gRPC GetWorkflow", 0.0031, raw_median_s=0.002, added_s=0.0011),
            ],
        }
    )
    status, out, err = run_gate(capsys, results, targets, "--rerun", runner=fake)
    assert status == 0, out + err
    assert "re-run once: suspension (first run: MISSED (ratio 1.32x > 1.25x))" in out
    assert "re-run once: gRPC StartWorkflow (first run: MISSED (adds 2.50 ms ≥ 2 ms))" in out
    assert "15.1 ms" in table_line(out, "suspension")
    assert table_line(out, "suspension").rstrip().endswith("ok")
    # The re-run's rows replace all of its benchmarks' rows, not only the failing ones.
    assert "3.10 ms" in table_line(out, "gRPC GetWorkflow")
    assert out.rstrip().splitlines()[-1] == "bench gate: 3/3 targets met"


def test_rerun_command_runs_exactly_the_failing_benchmarks(
    tmp_path: Path, targets: Path, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.delenv(gate.PYTEST_ENV, raising=False)
    results = failing_first_run(tmp_path)
    fake = FakePytest(passing_rows())
    status, out, _ = run_gate(
        capsys, results, targets, "--rerun", "--pytest-args", "-p", "no:randomly", runner=fake
    )
    assert status == 0
    assert fake.commands == [
        [
            sys.executable,
            "-m",
            "pytest",
            SUSPENSION,
            GRPC,
            "--benchmark-only",
            "--timeout=0",
            "-q",
            f"--benchmark-json={tmp_path.resolve() / 'bench-20250101.rerun.json'}",
            "-p",
            "no:randomly",
        ]
    ]
    assert f"re-run results: {tmp_path.resolve() / 'bench-20250101.rerun.json'}" in out


def test_rerun_of_a_miss_that_misses_again_exits_1(
    tmp_path: Path, targets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = failing_first_run(tmp_path)
    again = passing_rows()
    again[SUSPENSION] = [gate_row("suspension", 0.0191, raw_median_s=0.014)]
    status, out, _ = run_gate(capsys, results, targets, "--rerun", runner=FakePytest(again))
    assert status == 1
    assert "re-run once: suspension (first run: MISSED (ratio 1.32x > 1.25x))" in out
    assert "MISSED (ratio 1.36x" in table_line(out, "suspension")
    assert out.rstrip().splitlines()[-1] == "bench gate: FAILED: suspension"


def test_rerun_is_skipped_when_every_target_is_met(
    tmp_path: Path, targets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = write_results(tmp_path / "bench.json", passing_rows())
    fake = FakePytest(passing_rows())
    status, out, _ = run_gate(capsys, results, targets, "--rerun", runner=fake)
    assert status == 0
    assert fake.commands == []
    assert "re-run" not in out


def test_a_missing_row_has_nothing_to_rerun(
    tmp_path: Path, targets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = passing_rows()
    del rows[EXPR]
    results = write_results(tmp_path / "bench.json", rows)
    fake = FakePytest(passing_rows())
    status, out, _ = run_gate(capsys, results, targets, "--rerun", runner=fake)
    assert status == 1
    assert fake.commands == []
    assert "not re-run (no result recorded, no benchmark to re-run): expr evaluate" in out


def test_a_failing_rerun_fails_the_gate(
    tmp_path: Path, targets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = failing_first_run(tmp_path)
    status, out, _ = run_gate(
        capsys, results, targets, "--rerun", runner=FakePytest(passing_rows(), status=1)
    )
    assert status == 1
    assert out.rstrip().splitlines()[-1] == (
        f"bench gate: FAILED: suspension, gRPC StartWorkflow; the re-run of {SUSPENSION}, "
        f"{GRPC} failed (pytest exit status 1)"
    )


def test_a_rerun_that_writes_no_results_fails_the_gate(
    tmp_path: Path, targets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = failing_first_run(tmp_path)
    # A stale file from an earlier re-run must not be taken for this one's results.
    write_results(tmp_path / "bench-20250101.rerun.json", passing_rows())
    status, out, _ = run_gate(capsys, results, targets, "--rerun", runner=FakePytest(None))
    assert status == 1
    assert "the re-run's results are unusable" in out
    assert "bench-20250101.rerun.json: results file not found" in out


def test_the_cli_reruns_with_the_pytest_of_bench_gate_pytest(tmp_path: Path) -> None:
    """End to end: ``BENCH_GATE_PYTEST`` replaces ``python -m pytest`` in the re-run."""
    results = failing_first_run(tmp_path)
    targets = tmp_path / "targets.toml"
    targets.write_text(TARGETS, encoding="utf-8")
    prepared = write_results(tmp_path / "prepared.json", passing_rows())
    fake = tmp_path / "fake_pytest.py"
    fake.write_text(
        "import shutil, sys\n"
        "(out,) = [a.split('=', 1)[1] for a in sys.argv if a.startswith('--benchmark-json=')]\n"
        f"shutil.copy({str(prepared)!r}, out)\n"
        "print('fake pytest ran:', *sys.argv[1:3])\n",
        encoding="utf-8",
    )
    environment = {**os.environ, gate.PYTEST_ENV: f"{sys.executable} {fake}"}
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), str(results), "--targets", str(targets), "--rerun"],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert f"fake pytest ran: {SUSPENSION} {GRPC}" in completed.stdout
    assert completed.stdout.rstrip().splitlines()[-1] == "bench gate: 3/3 targets met"


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            '[targets."suspension"]\nmedian_ms = 20\nmedain_ms = 5\n',
            """[targets."suspension"]: unknown key 'medain_ms' (expected one of: median_ms, """,
            id="unknown-key",
        ),
        pytest.param(
            '[targets."suspension"]\nmedian_ms = "20 ms"\n',
            """[targets."suspension"]: median_ms must be a positive number, not '20 ms'""",
            id="wrong-type",
        ),
        pytest.param(
            '[targets."suspension"]\nmax_ratio = true\n',
            """[targets."suspension"]: max_ratio must be a positive number, not True""",
            id="bool-is-not-a-number",
        ),
        pytest.param(
            '[targets."expr"]\nmin_speedup = 3\n',
            """[targets."expr"]: min_speedup must be a table of peer = minimum speedup""",
            id="speedup-not-a-table",
        ),
        pytest.param(
            '[targets."expr"]\nmin_speedup = { simpleeval = "3x" }\n',
            """[targets."expr"]: min_speedup.simpleeval must be a positive number, not '3x'""",
            id="speedup-wrong-type",
        ),
        pytest.param(
            '[targets."suspension"]\nwhy = 5\nmedian_ms = 1\n',
            """[targets."suspension"]: why must be a string, not 5""",
            id="why-not-a-string",
        ),
        pytest.param(
            '[targets."suspension"]\nwhy = "no check here"\n',
            """[targets."suspension"]: no check (set at least one of median_ms, max_ratio""",
            id="no-check",
        ),
        pytest.param(
            '[target."suspension"]\nmedian_ms = 20\n',
            "unknown top-level key 'target' (expected [targets])",
            id="misspelt-table",
        ),
        pytest.param("", 'no [targets."<operation>"] tables', id="empty"),
        pytest.param('[targets."suspension"\n', "not valid TOML", id="not-toml"),
    ],
)
def test_a_bad_targets_file_exits_2_naming_the_file_and_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    targets = tmp_path / "targets.toml"
    targets.write_text(text, encoding="utf-8")
    results = write_results(tmp_path / "bench.json", passing_rows())
    status, out, err = run_gate(capsys, results, targets)
    assert status == 2
    assert out == ""
    assert err.startswith(f"bench gate: error: {targets}: ")
    assert message in err
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1


def _results_text(gate_rows: Any) -> str:
    return json.dumps(
        {"benchmarks": [{"fullname": SUSPENSION, "name": "x", "extra_info": {"gate": gate_rows}}]}
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("{not json", "not a JSON file", id="not-json"),
        pytest.param(
            '{"machine_info": {}}', "no 'benchmarks' list (not a pytest-benchmark", id="no-key"
        ),
        pytest.param("[1, 2]", "no 'benchmarks' list", id="not-an-object"),
        pytest.param(
            _results_text([{"operation": "suspension", "p90_s": 0.02}]),
            f"benchmark {SUSPENSION}: gate row 0 (suspension): missing 'median_s'",
            id="no-median",
        ),
        pytest.param(
            _results_text([{"operation": "suspension", "median_s": "fast"}]),
            "gate row 0 (suspension): 'median_s' must be a positive number of seconds, not 'fast'",
            id="median-not-a-number",
        ),
        pytest.param(
            _results_text([{"median_s": 0.01}]),
            "gate row 0: missing 'operation' (a non-empty string)",
            id="no-operation",
        ),
        pytest.param(
            _results_text({"operation": "suspension"}),
            f"benchmark {SUSPENSION}: extra_info.gate is not a list",
            id="gate-not-a-list",
        ),
        pytest.param(
            _results_text(
                [
                    {"operation": "suspension", "median_s": 0.01},
                    {"operation": "suspension", "median_s": 0.02},
                ]
            ),
            "operation 'suspension' recorded twice",
            id="duplicate-operation",
        ),
        pytest.param(
            _results_text([{"operation": "e", "median_s": 1e-6, "peers": {"jmespath": None}}]),
            "gate row 0 (e): peers.jmespath must be a positive number, not None",
            id="peer-not-a-number",
        ),
    ],
)
def test_a_bad_results_file_exits_2_naming_the_file_and_field(
    tmp_path: Path, targets: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    results = tmp_path / "bench.json"
    results.write_text(text, encoding="utf-8")
    status, out, err = run_gate(capsys, results, targets)
    assert status == 2
    assert out == ""
    assert err.startswith(f"bench gate: error: {results}: ")
    assert message in err
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1


def test_a_missing_results_file_exits_2(
    tmp_path: Path, targets: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run_gate(capsys, tmp_path / "nowhere.json", targets)
    assert status == 2
    assert err == f"bench gate: error: {tmp_path / 'nowhere.json'}: results file not found\n"


def test_the_cli_reports_bad_input_without_a_traceback(tmp_path: Path) -> None:
    results = tmp_path / "bench.json"
    results.write_text("{not json", encoding="utf-8")
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), str(results)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 2
    assert completed.stderr.startswith(f"bench gate: error: {results}: not a JSON file")
    assert "Traceback" not in completed.stderr


# -- the real targets ------------------------------------------------------------------------


def test_the_repository_targets_load_and_each_has_a_check() -> None:
    targets = gate.load_targets(gate.DEFAULT_TARGETS)
    operations = [target.operation for target in targets]
    assert len(operations) == len(set(operations))
    for target in targets:
        checks = (target.median_ms, target.max_ratio, target.max_added_ms)
        assert any(check is not None for check in checks) or target.min_speedup, target
    by_name = {target.operation: target for target in targets}
    assert by_name["suspension"].median_ms == 20.0 and by_name["suspension"].max_ratio == 1.25
    assert by_name["dispatch start"].max_ratio == 1.1
    assert by_name["gRPC SubmitResult"].max_added_ms == 2.0
    assert dict(by_name["expr evaluate: 4-template"].min_speedup) == {
        "simpleeval": 3.0,
        "jmespath": 3.0,
        "cel-python": 20.0,
    }
    assert set(operations) >= {
        "workflow creation",
        "step dispatch",
        "inline step",
        "standard action",
        "foreach spawn / child",
        "state serialization / MiB",
        "resumption",
        "status query",
        "gRPC StartWorkflow",
        "gRPC GetWorkflow",
        "expr evaluate: 1-and-compare",
        "expr evaluate: 2-membership",
        "expr evaluate: 3-arith-size",
    }


# -- absolute limits on a machine slower than the reference -----------------------------------

SCALED_TARGETS = """\
[targets."suspension"]
median_ms = 20.0
max_ratio = 1.25
raw_reference_ms = 14.0

[targets."gRPC StartWorkflow"]
max_added_ms = 2.0
raw_reference_ms = 3.0
"""


def _scaled_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], *rows: dict[str, Any]
) -> tuple[int, str]:
    targets = tmp_path / "scaled.toml"
    targets.write_text(SCALED_TARGETS, encoding="utf-8")
    results = write_results(tmp_path / "bench.json", {SUSPENSION: list(rows)})
    status, out, _ = run_gate(capsys, results, targets)
    return status, out


def test_a_slower_raw_sdk_scales_the_absolute_limits_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = _scaled_gate(
        tmp_path,
        capsys,
        # The raw SDK took 1.5x its reference: 25 ms is within 20 ms x 1.5.
        gate_row("suspension", 0.025, raw_median_s=0.021),
        gate_row("gRPC StartWorkflow", 0.007, raw_median_s=0.0045, added_s=0.0027),
    )
    assert status == 0, out
    words = " ".join(out.split())
    assert "limits x 1.50: raw SDK 21.0 ms vs 14 ms reference" in words
    assert "adds 2.70 ms" in words


def test_scaling_never_tightens_and_never_touches_the_ratio(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    faster_raw, slow_ratio = _scaled_gate(
        tmp_path,
        capsys,
        # A raw SDK faster than the reference leaves 20 ms as it is.
        gate_row("suspension", 0.0205, raw_median_s=0.010),
        # A slow machine scales the added limit (2 ms x 2 = 4 ms) but 4.5 ms still misses.
        gate_row("gRPC StartWorkflow", 0.012, raw_median_s=0.006, added_s=0.0045),
    )
    assert faster_raw == 1
    assert "MISSED (median 20.5 ms ≥ 20 ms; ratio 2.05x > 1.25x)" in " ".join(slow_ratio.split())
    assert "adds 4.50 ms ≥ 2 ms x 2.00 = 4.00 ms" in " ".join(slow_ratio.split())


def test_a_reference_alone_is_not_a_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = tmp_path / "targets.toml"
    targets.write_text('[targets."x"]\nraw_reference_ms = 3.0\n', encoding="utf-8")
    results = write_results(tmp_path / "bench.json", passing_rows())
    status, _, err = run_gate(capsys, results, targets)
    assert status == 2
    assert '[targets."x"]: no check' in err
