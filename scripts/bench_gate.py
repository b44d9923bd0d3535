#!/usr/bin/env python3
"""Check pytest-benchmark results against ``tests/benchmarks/targets.toml`` (the CI gate).

    python scripts/bench_gate.py .benchmarks/bench-20250101-120000.json
    python scripts/bench_gate.py RESULTS.json --targets tests/benchmarks/targets.toml
    python scripts/bench_gate.py RESULTS.json --rerun --pytest-args -p no:randomly

A benchmark opts in by recording rows in ``extra_info["gate"]`` (``tests/benchmarks/_gate.py``):
one per gated operation, with the engine's median and 90th percentile (seconds, already divided
per unit), the raw Temporal SDK baseline measured interleaved in the same run, the paired median
of what the engine adds over it, and the medians of peer libraries. ``targets.toml`` holds one
table per operation; a target may bound the median (``median_ms``), the ratio to the raw
baseline (``max_ratio``), the added time (``max_added_ms``) and the speedup over each peer
(``min_speedup``). Benchmarks without gate rows are ignored.

``--rerun`` re-runs, once, the benchmarks whose rows missed a target (a shared CI machine has
its noisy minutes) and judges the merged results: the re-run's rows replace those benchmarks'
first-run rows. The re-run command is ``python -m pytest <node ids> --benchmark-only
--timeout=0 -q --benchmark-json=<RESULTS stem>.rerun.json [--pytest-args ...]``; the
``BENCH_GATE_PYTEST`` environment variable, when set, replaces its ``python -m pytest`` prefix
(a shell-quoted command), and :func:`main` takes the function that runs it.

Exit status: 0 when every target is met, 1 when one is missed or the re-run fails, 2 on bad
input (a results or targets file that cannot be read or does not fit its schema).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import subprocess
import sys
import textwrap
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TARGETS = ROOT / "tests" / "benchmarks" / "targets.toml"
PYTEST_ENV = "BENCH_GATE_PYTEST"
"""Environment variable: a shell-quoted command replacing ``python -m pytest`` for ``--rerun``."""

TABLE_WIDTH = 100
CHECK_KEYS = ("median_ms", "max_ratio", "max_added_ms", "min_speedup")
TARGET_KEYS = (*CHECK_KEYS, "raw_reference_ms", "why")
# Comparisons at a target's exact value must not depend on float noise: 5.0 / 4.0 is 1.25 but
# 0.025 / 0.02 is not, and "at most 1.25x" has to mean the same for both.
REL_TOL = 1e-9

Runner = Callable[[Sequence[str]], int]
"""Runs a command (the re-run's pytest) and returns its exit status."""


class GateInputError(Exception):
    """A results or targets file that cannot be read or does not fit its schema (exit 2)."""


@dataclass(frozen=True)
class Row:
    """One gated operation as a benchmark recorded it; times in seconds per unit.

    Attributes:
        operation: The key into targets.toml, unique across the run.
        benchmark: The pytest node id of the benchmark that recorded the row (what ``--rerun``
            runs again).
        median_s: The engine's median.
        p90_s: The engine's 90th percentile, if recorded.
        rounds: How many rounds the figures come from, if recorded.
        raw_median_s: The raw Temporal SDK baseline's median, measured in the same run.
        raw_p90_s: The raw baseline's 90th percentile.
        added_s: The median of the paired per-round differences (engine minus baseline).
        peers: Other implementations' medians, by name, for speedup targets.
        unit: What one measurement is of ("per call", "per child", "per MiB").
        note: Shown under the table.
    """

    operation: str
    benchmark: str
    median_s: float
    p90_s: float | None = None
    rounds: int | None = None
    raw_median_s: float | None = None
    raw_p90_s: float | None = None
    added_s: float | None = None
    peers: Mapping[str, float] = field(default_factory=dict)
    unit: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class Target:
    """What one operation must achieve; every check that is set applies.

    Attributes:
        operation: The operation's name, as the benchmarks record it.
        median_ms: The median must be below this.
        max_ratio: The median over the raw baseline's median must be at most this.
        max_added_ms: The paired added time must be below this.
        min_speedup: For each peer, the peer's median over the engine's must be at least this.
        raw_reference_ms: The raw SDK's median on the reference machine. When this run's raw
            median is slower, the machine (or the Temporal server) is slower than the one the
            absolute limits (``median_ms``, ``max_added_ms``) assume, and they scale with it;
            the ratio, which needs no reference, is unchanged.
        why: What the operation is, for the reader of targets.toml.
    """

    operation: str
    median_ms: float | None = None
    max_ratio: float | None = None
    max_added_ms: float | None = None
    min_speedup: Mapping[str, float] = field(default_factory=dict)
    raw_reference_ms: float | None = None
    why: str | None = None


@dataclass(frozen=True)
class Outcome:
    """The verdict on one operation: a target with its row (or none), or an ungated row.

    Attributes:
        operation: The operation's name.
        row: What the benchmarks recorded, or ``None`` when nothing was.
        target: The operation's target, or ``None`` for a row shown for information only.
        misses: One phrase per failed check; empty when the target is met.
        figures: What the checks the ratio column does not show measured (the added time,
            the weakest speedup), shown with an ``ok``.
    """

    operation: str
    row: Row | None
    target: Target | None
    misses: tuple[str, ...] = ()
    figures: tuple[str, ...] = ()

    @property
    def gated(self) -> bool:
        """Whether the operation has a target."""
        return self.target is not None

    @property
    def met(self) -> bool:
        """Whether the operation has a target and meets it."""
        return self.gated and not self.misses

    @property
    def verdict(self) -> str:
        """``ok``, ``MISSED (<which check>)``, or ``-`` for a row without a target."""
        if not self.gated:
            return "-"
        if self.misses:
            return f"MISSED ({'; '.join(self.misses)})"
        return f"ok ({'; '.join(self.figures)})" if self.figures else "ok"


# -- loading ---------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise GateInputError(f"{path}: {what} file not found") from None
    except OSError as error:
        raise GateInputError(f"{path}: cannot read the {what} file: {error.strerror}") from None


def load_targets(path: Path) -> list[Target]:
    """Read and validate a targets file, in the order of its tables.

    Raises:
        GateInputError: The file is missing or not TOML, has a key other than ``targets``, or
            a target has an unknown key, a value of the wrong type, or no check at all.
    """
    try:
        document = tomllib.loads(_read(path, "targets").decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        raise GateInputError(f"{path}: not valid TOML: {error}") from None
    unknown = sorted(set(document) - {"targets"})
    if unknown:
        raise GateInputError(f"{path}: unknown top-level key {unknown[0]!r} (expected [targets])")
    tables = document.get("targets")
    if not isinstance(tables, dict) or not tables:
        raise GateInputError(f'{path}: no [targets."<operation>"] tables')
    return [_target(path, operation, table) for operation, table in tables.items()]


def _target(path: Path, operation: str, table: object) -> Target:
    where = f'{path}: [targets."{operation}"]'
    if not isinstance(table, dict):
        raise GateInputError(f"{where}: must be a table, not {type(table).__name__}")
    for key in table:
        if key not in TARGET_KEYS:
            raise GateInputError(
                f"{where}: unknown key {key!r} (expected one of: {', '.join(TARGET_KEYS)})"
            )
    values: dict[str, float] = {}
    for key in ("median_ms", "max_ratio", "max_added_ms", "raw_reference_ms"):
        if key in table:
            value = table[key]
            if not _is_number(value) or not math.isfinite(value) or value <= 0:
                raise GateInputError(f"{where}: {key} must be a positive number, not {value!r}")
            values[key] = float(value)
    speedups: dict[str, float] = {}
    if "min_speedup" in table:
        peers = table["min_speedup"]
        if not isinstance(peers, dict) or not peers:
            raise GateInputError(
                f"{where}: min_speedup must be a table of peer = minimum speedup, "
                f"such as {{ simpleeval = 3.0 }}, not {peers!r}"
            )
        for peer, value in peers.items():
            if not _is_number(value) or not math.isfinite(value) or value <= 0:
                raise GateInputError(
                    f"{where}: min_speedup.{peer} must be a positive number, not {value!r}"
                )
            speedups[peer] = float(value)
    why = table.get("why")
    if why is not None and not isinstance(why, str):
        raise GateInputError(f"{where}: why must be a string, not {why!r}")
    if not set(values) - {"raw_reference_ms"} and not speedups:
        raise GateInputError(f"{where}: no check (set at least one of {', '.join(CHECK_KEYS)})")
    return Target(operation, **values, min_speedup=speedups, why=why)


def load_results(path: Path) -> list[Row]:
    """Read the gate rows of a pytest-benchmark JSON file (``--benchmark-json``).

    Raises:
        GateInputError: The file is missing or not JSON, has no ``benchmarks`` list, or a gate
            row lacks a field or has one of the wrong type, or two rows share an operation.
    """
    try:
        data = json.loads(_read(path, "results"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise GateInputError(f"{path}: not a JSON file: {error}") from None
    benchmarks = data.get("benchmarks") if isinstance(data, dict) else None
    if not isinstance(benchmarks, list):
        raise GateInputError(
            f"{path}: no 'benchmarks' list (not a pytest-benchmark --benchmark-json file?)"
        )
    rows: list[Row] = []
    for index, benchmark in enumerate(benchmarks):
        if not isinstance(benchmark, dict):
            raise GateInputError(f"{path}: benchmarks[{index}] is not an object")
        extra = benchmark.get("extra_info") or {}
        gate = extra.get("gate") if isinstance(extra, dict) else None
        if gate is None:
            continue
        fullname = benchmark.get("fullname")
        if not isinstance(fullname, str) or not fullname:
            raise GateInputError(f"{path}: benchmarks[{index}] has gate rows but no 'fullname'")
        if not isinstance(gate, list):
            raise GateInputError(f"{path}: benchmark {fullname}: extra_info.gate is not a list")
        rows.extend(_row(path, fullname, number, entry) for number, entry in enumerate(gate))
    _check_unique(path, rows)
    return rows


def _row(path: Path, fullname: str, number: int, entry: object) -> Row:
    where = f"{path}: benchmark {fullname}: gate row {number}"
    if not isinstance(entry, dict):
        raise GateInputError(f"{where} is not an object")
    operation = entry.get("operation")
    if not isinstance(operation, str) or not operation:
        raise GateInputError(f"{where}: missing 'operation' (a non-empty string)")
    where = f"{where} ({operation})"

    def seconds(name: str, *, required: bool = False, signed: bool = False) -> float | None:
        value = entry.get(name)
        if value is None:
            if required:
                raise GateInputError(f"{where}: missing {name!r}")
            return None
        if not _is_number(value) or not math.isfinite(value) or (not signed and value <= 0):
            kind = "a finite number" if signed else "a positive number"
            raise GateInputError(f"{where}: {name!r} must be {kind} of seconds, not {value!r}")
        return float(value)

    median = seconds("median_s", required=True)
    assert median is not None  # required
    rounds = entry.get("rounds")
    if rounds is not None and (not isinstance(rounds, int) or isinstance(rounds, bool)):
        raise GateInputError(f"{where}: 'rounds' must be an integer, not {rounds!r}")
    peers = entry.get("peers") or {}
    if not isinstance(peers, dict):
        raise GateInputError(f"{where}: 'peers' must be an object of name: seconds")
    peer_medians: dict[str, float] = {}
    for name, value in peers.items():
        if not _is_number(value) or not math.isfinite(value) or value <= 0:
            raise GateInputError(f"{where}: peers.{name} must be a positive number, not {value!r}")
        peer_medians[name] = float(value)
    texts: dict[str, str | None] = {}
    for name in ("unit", "note"):
        value = entry.get(name)
        if value is not None and not isinstance(value, str):
            raise GateInputError(f"{where}: {name!r} must be a string, not {value!r}")
        texts[name] = value
    return Row(
        operation=operation,
        benchmark=fullname,
        median_s=median,
        p90_s=seconds("p90_s"),
        rounds=rounds,
        raw_median_s=seconds("raw_median_s"),
        raw_p90_s=seconds("raw_p90_s"),
        added_s=seconds("added_s", signed=True),
        peers=peer_medians,
        unit=texts["unit"],
        note=texts["note"],
    )


def _check_unique(path: Path, rows: Iterable[Row]) -> None:
    seen: dict[str, Row] = {}
    for row in rows:
        if row.operation in seen:
            raise GateInputError(
                f"{path}: operation {row.operation!r} recorded twice "
                f"(by {seen[row.operation].benchmark} and {row.benchmark})"
            )
        seen[row.operation] = row


# -- judging ---------------------------------------------------------------------------------


def evaluate(targets: Sequence[Target], rows: Sequence[Row]) -> list[Outcome]:
    """Judge every target against its row; then the rows without a target, ungated.

    The gated outcomes come in the order of the targets file, the others in recording order.
    """
    by_operation = {row.operation: row for row in rows}
    outcomes: list[Outcome] = []
    for target in targets:
        row = by_operation.get(target.operation)
        outcomes.append(
            Outcome(target.operation, row, target, _misses(target, row), _figures(target, row))
        )
    gated = {target.operation for target in targets}
    outcomes += [Outcome(row.operation, row, None) for row in rows if row.operation not in gated]
    return outcomes


def _below(value: float, limit: float) -> bool:
    """``value < limit``, where a value equal to the limit up to float noise is not below."""
    return value < limit and not math.isclose(value, limit, rel_tol=REL_TOL)


def _at_most(value: float, limit: float) -> bool:
    """``value <= limit``, where a value equal to the limit up to float noise is at most."""
    return value <= limit or math.isclose(value, limit, rel_tol=REL_TOL)


def machine_factor(target: Target, row: Row) -> float:
    """How much slower than the reference machine this run's raw SDK was (1.0 if not slower)."""
    if target.raw_reference_ms is None or row.raw_median_s is None:
        return 1.0
    return max(1.0, row.raw_median_s * 1000 / target.raw_reference_ms)


def _scaled(limit: float, factor: float) -> str:
    if factor == 1.0:
        return format_limit(limit)
    return f"{format_limit(limit)} x {factor:.2f} = {format_seconds(limit * factor)}"


def _figures(target: Target, row: Row | None) -> tuple[str, ...]:
    """The measured added time and weakest speedup, for the checks that set them, and the
    scaling of the absolute limits on a machine slower than the reference."""
    if row is None:
        return ()
    figures: list[str] = []
    factor = machine_factor(target, row)
    if factor > 1.0 and row.raw_median_s is not None:
        figures.append(
            f"limits x {factor:.2f}: raw SDK {format_seconds(row.raw_median_s)}"
            f" vs {target.raw_reference_ms:g} ms reference"
        )
    if target.max_added_ms is not None and row.added_s is not None:
        figures.append(f"adds {format_seconds(row.added_s)}")
    speedups = {p: row.peers[p] / row.median_s for p in target.min_speedup if p in row.peers}
    if speedups:
        weakest = min(speedups, key=lambda p: speedups[p] / target.min_speedup[p])
        figures.append(f"{speedups[weakest]:.1f}x {weakest}")
    return tuple(figures)


def _misses(target: Target, row: Row | None) -> tuple[str, ...]:
    if row is None:
        return ("no result",)
    misses: list[str] = []
    factor = machine_factor(target, row)
    if target.median_ms is not None:
        limit = target.median_ms / 1000
        if not _below(row.median_s, limit * factor):
            misses.append(f"median {format_seconds(row.median_s)} ≥ {_scaled(limit, factor)}")
    if target.max_ratio is not None:
        if row.raw_median_s is None:
            misses.append("no raw baseline recorded for the ratio")
        else:
            ratio = row.median_s / row.raw_median_s
            if not _at_most(ratio, target.max_ratio):
                shown = _format_ratio(ratio, target.max_ratio)
                misses.append(f"ratio {shown} > {target.max_ratio:g}x")
    if target.max_added_ms is not None:
        limit = target.max_added_ms / 1000
        if row.added_s is None:
            misses.append("no added time (added_s) recorded")
        elif not _below(row.added_s, limit * factor):
            misses.append(f"adds {format_seconds(row.added_s)} ≥ {_scaled(limit, factor)}")
    for peer, minimum in target.min_speedup.items():
        if peer not in row.peers:
            misses.append(f"no {peer} median recorded")
            continue
        speedup = row.peers[peer] / row.median_s
        if not _at_most(minimum, speedup):
            misses.append(f"{_format_ratio(speedup, minimum)} {peer} < {minimum:g}x")
    return tuple(misses)


# -- rendering -------------------------------------------------------------------------------


def _three_digits(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 99.95:
        return f"{value:.0f}"
    if magnitude >= 9.995:
        return f"{value:.1f}"
    return f"{value:.2f}"


_UNITS = ((1.0, "s"), (1e-3, "ms"), (1e-6, "µs"), (1e-9, "ns"))


def _unit_for(magnitude: float, threshold: float = 1.0) -> tuple[float, str]:
    """The largest unit of which ``magnitude`` is at least ``threshold`` (else nanoseconds)."""
    return next((u for u in _UNITS if magnitude >= u[0] * threshold), _UNITS[-1])


def format_seconds(seconds: float) -> str:
    """A duration with about three significant digits: ``12.3 ms``, ``456 µs``, ``1.20 s``."""
    # A value that rounds to 1000 of one unit is shown as 1.00 of the next.
    scale, unit = _unit_for(abs(seconds), threshold=0.9995)
    return f"{_three_digits(seconds / scale)} {unit}"


def format_limit(seconds: float) -> str:
    """A target's limit as written, in the largest unit it is at least one of: ``20 ms``."""
    scale, unit = _unit_for(seconds)
    return f"{round(seconds / scale, 9):g} {unit}"


def _format_ratio(value: float, limit: float) -> str:
    """A ratio to two decimals, or four when two would read as the limit it missed."""
    shown = f"{value:.2f}x"
    return f"{value:.4f}x" if shown == f"{limit:.2f}x" else shown


def describe_target(target: Target) -> str:
    """The target column: ``< 20 ms, ≤ 1.25x raw``, ``adds < 2 ms``, ``≥ 3x simpleeval``."""
    parts: list[str] = []
    if target.median_ms is not None:
        parts.append(f"< {format_limit(target.median_ms / 1000)}")
    if target.max_ratio is not None:
        parts.append(f"≤ {target.max_ratio:g}x raw")
    if target.max_added_ms is not None:
        parts.append(f"adds < {format_limit(target.max_added_ms / 1000)}")
    groups: dict[float, list[str]] = {}
    for peer, minimum in target.min_speedup.items():
        groups.setdefault(minimum, []).append(peer)
    if groups:
        parts.append("; ".join(f"≥ {m:g}x {', '.join(peers)}" for m, peers in groups.items()))
    return ", ".join(parts)


def _ratio_cell(row: Row | None) -> str:
    if row is None or row.raw_median_s is None:
        return "-"
    return f"{row.median_s / row.raw_median_s:.2f}x"


# Spaces a wrapped cell must not break at: "2.41 ms", "> 1.25x" (textwrap keeps no-break
# spaces inside words; they become plain spaces again once the cell is laid out).
_NBSP = "\N{NO-BREAK SPACE}"
_GLUE = re.compile(r"(\d|[<>≤≥]) (?=[\d.]|s\b|ms\b|µs\b|ns\b)")


def _table(
    header: Sequence[str],
    body: Sequence[Sequence[str]],
    width: int,
    narrowable: Sequence[tuple[int, int]],
) -> list[str]:
    """Columns two spaces apart, cells wrapped in the columns narrowed to fit ``width``.

    ``narrowable`` lists (column, narrowest width) in the order the columns give up width.
    """
    widths = [max(len(cell) for cell in column) for column in zip(header, *body, strict=True)]
    excess = sum(widths) + 2 * (len(widths) - 1) - width
    for column, narrowest in narrowable:
        if excess <= 0:
            break
        cut = min(excess, max(0, widths[column] - narrowest))
        widths[column] -= cut
        excess -= cut

    def lines(cells: Sequence[str]) -> list[str]:
        wrapped = [
            textwrap.wrap(_GLUE.sub(rf"\1{_NBSP}", cell), widths[i], break_on_hyphens=False) or [""]
            for i, cell in enumerate(cells)
        ]
        return [
            "  ".join(
                (column[k] if k < len(column) else "").ljust(widths[i])
                for i, column in enumerate(wrapped)
            )
            .replace(_NBSP, " ")
            .rstrip()
            for k in range(max(len(column) for column in wrapped))
        ]

    out = lines(header)
    out.append("  ".join("-" * w for w in widths))
    for cells in body:
        out += lines(cells)
    return out


def render(outcomes: Sequence[Outcome], width: int = TABLE_WIDTH) -> str:
    """The table (gated rows first, then the informational ones), the missing rows, the notes.

    Times are per unit; the unit follows the operation's name unless the name already says it
    (``foreach spawn / child`` is per child).
    """
    header = ("operation", "median", "p90", "target", "ratio to raw", "verdict")
    body = [
        (
            _operation_cell(outcome),
            format_seconds(outcome.row.median_s) if outcome.row else "-",
            format_seconds(outcome.row.p90_s) if outcome.row and outcome.row.p90_s else "-",
            describe_target(outcome.target) if outcome.target else "-",
            _ratio_cell(outcome.row),
            outcome.verdict,
        )
        for outcome in sorted(outcomes, key=lambda outcome: not outcome.gated)
    ]
    # Wrap the target first (speedup lists are long), then the ratio column's header, then the
    # verdict; the operation's name wraps only as a last resort.
    lines = _table(header, body, width, narrowable=((3, 20), (4, 6), (5, 20), (0, 16)))
    missing = [outcome.operation for outcome in outcomes if outcome.gated and not outcome.row]
    if missing:
        lines += ["", *textwrap.wrap(f"no result recorded for: {', '.join(missing)}", width)]
    notes = [outcome for outcome in outcomes if outcome.row and outcome.row.note]
    if notes:
        lines += ["", "notes:"]
        for outcome in notes:
            assert outcome.row is not None and outcome.row.note is not None
            lines += textwrap.wrap(
                f"{outcome.operation}: {outcome.row.note}",
                width,
                initial_indent="  ",
                subsequent_indent="    ",
            )
    return "\n".join(lines)


def _operation_cell(outcome: Outcome) -> str:
    unit = outcome.row.unit if outcome.row else None
    if not unit or unit == "per call" or unit.removeprefix("per ") in outcome.operation:
        return outcome.operation
    return f"{outcome.operation} ({unit})"


def summary(outcomes: Sequence[Outcome], reason: str | None = None) -> list[str]:
    """The closing lines: how many targets were met and, if any was not, which (and ``reason``)."""
    gated = [outcome for outcome in outcomes if outcome.gated]
    failed = [outcome.operation for outcome in gated if not outcome.met]
    lines = [f"bench gate: {len(gated) - len(failed)}/{len(gated)} targets met"]
    if failed or reason:
        lines.append(f"bench gate: FAILED: {'; '.join(filter(None, [', '.join(failed), reason]))}")
    return lines


# -- re-running ------------------------------------------------------------------------------


def rerun_path(results: Path) -> Path:
    """Where the re-run writes its JSON: ``<results stem>.rerun.json`` beside the results."""
    return results.with_name(f"{results.stem}.rerun.json")


def rerun_command(node_ids: Sequence[str], output: Path, pytest_args: Sequence[str]) -> list[str]:
    """The pytest command that re-runs ``node_ids`` once, writing JSON results to ``output``.

    ``BENCH_GATE_PYTEST`` (a shell-quoted command), when set, stands for ``python -m pytest``.
    """
    override = os.environ.get(PYTEST_ENV)
    pytest = shlex.split(override) if override else [sys.executable, "-m", "pytest"]
    return [
        *pytest,
        *node_ids,
        "--benchmark-only",
        "--timeout=0",
        "-q",
        f"--benchmark-json={output}",
        *pytest_args,
    ]


def run_command(command: Sequence[str]) -> int:
    """Run ``command`` from the repository root (node ids are relative to it)."""
    return subprocess.run(command, cwd=ROOT, check=False).returncode


def merge(rows: Sequence[Row], rerun: Sequence[Row], node_ids: Iterable[str]) -> list[Row]:
    """``rows`` with the rows of the re-run benchmarks ``node_ids`` replaced by the re-run's."""
    replaced = set(node_ids)
    return [row for row in rows if row.benchmark not in replaced] + [
        row for row in rerun if row.benchmark in replaced
    ]


def _rerun(
    results: Path,
    targets: Sequence[Target],
    rows: Sequence[Row],
    outcomes: Sequence[Outcome],
    runner: Runner,
    pytest_args: Sequence[str],
) -> list[Outcome] | str:
    """Re-run the benchmarks behind the missed rows; the merged outcomes, or why it failed."""
    missed = [outcome for outcome in outcomes if outcome.gated and not outcome.met]
    rerunnable = [outcome for outcome in missed if outcome.row is not None]
    absent = [outcome.operation for outcome in missed if outcome.row is None]
    if absent:
        print(f"not re-run (no result recorded, no benchmark to re-run): {', '.join(absent)}")
    if not rerunnable:
        return list(outcomes)
    node_ids = list(dict.fromkeys(outcome.row.benchmark for outcome in rerunnable if outcome.row))
    for outcome in rerunnable:
        print(f"re-run once: {outcome.operation} (first run: {outcome.verdict})")
    output = rerun_path(results.resolve())
    output.unlink(missing_ok=True)
    command = rerun_command(node_ids, output, pytest_args)
    print(f"re-run command: {shlex.join(command)}", flush=True)
    status = runner(command)
    if status != 0:
        return f"the re-run of {', '.join(node_ids)} failed (pytest exit status {status})"
    try:
        rerun_rows = load_results(output)
        merged = merge(rows, rerun_rows, node_ids)
        _check_unique(output, merged)
    except GateInputError as error:
        return f"the re-run's results are unusable: {error}"
    print(f"re-run results: {output}")
    print()
    return evaluate(targets, merged)


# -- command line ----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, runner: Runner = run_command) -> int:
    """Run the gate; ``runner`` runs the ``--rerun`` pytest command (tests pass a fake).

    Returns:
        0 when every target is met, 1 when one is missed or the re-run fails, 2 on bad input.
    """
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").splitlines()[0],
        epilog="Exit status: 0 all targets met, 1 a target missed, 2 bad input.",
    )
    parser.add_argument("results", type=Path, help="pytest-benchmark JSON (--benchmark-json)")
    parser.add_argument(
        "--targets",
        type=Path,
        default=DEFAULT_TARGETS,
        help="targets file (default: tests/benchmarks/targets.toml)",
    )
    parser.add_argument(
        "--rerun",
        action="store_true",
        help="re-run the benchmarks behind missed targets once and judge the merged results",
    )
    parser.add_argument(
        "--pytest-args",
        nargs=argparse.REMAINDER,
        default=[],
        help="everything after this goes to the re-run's pytest",
    )
    arguments = parser.parse_args(argv)
    try:
        targets = load_targets(arguments.targets)
        rows = load_results(arguments.results)
    except GateInputError as error:
        print(f"bench gate: error: {error}", file=sys.stderr)
        return 2
    outcomes = evaluate(targets, rows)
    if arguments.rerun and not all(outcome.met for outcome in outcomes if outcome.gated):
        rerun = _rerun(arguments.results, targets, rows, outcomes, runner, arguments.pytest_args)
        if isinstance(rerun, str):
            print(render(outcomes))
            print()
            print(*summary(outcomes, reason=rerun), sep="\n")
            return 1
        outcomes = rerun
    print(render(outcomes))
    print()
    print(*summary(outcomes), sep="\n")
    return 0 if all(outcome.met for outcome in outcomes if outcome.gated) else 1


if __name__ == "__main__":
    sys.exit(main())
