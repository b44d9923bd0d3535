"""What a benchmark hands to the CI gate (``scripts/bench_gate.py``).

A benchmark records one row per gated operation in ``extra_info["gate"]``, which
pytest-benchmark writes into its JSON results: the engine's median and 90th percentile, the raw
Temporal SDK baseline measured interleaved in the same run, and, where a target is about what
the engine adds, the median of the per-round differences. ``tests/benchmarks/targets.toml``
holds the targets, keyed by the operation's name.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any


def p90(times: Sequence[float]) -> float:
    """The 90th percentile (inclusive method: one of the samples' span, never beyond it)."""
    if len(times) == 1:
        return times[0]
    return statistics.quantiles(times, n=10, method="inclusive")[-1]


def engine_times(benchmark: Any) -> list[float]:
    """The durations pytest-benchmark measured for the timed (engine) call, in seconds."""
    return list(benchmark.stats.stats.data) if benchmark.stats is not None else []


def record(
    benchmark: Any,
    operation: str,
    times: Sequence[float],
    *,
    raw: Sequence[float] = (),
    added: float | None = None,
    per: float = 1.0,
    unit: str = "per call",
    peers: Mapping[str, float] | None = None,
    note: str | None = None,
) -> dict[str, Any] | None:
    """Add a gate row for ``operation`` (times in seconds, each divided by ``per``).

    Does nothing when benchmarks are disabled (``make test`` runs each benchmark once, untimed).
    """
    if benchmark.disabled or not times:
        return None
    row: dict[str, Any] = {
        "operation": operation,
        "median_s": statistics.median(times) / per,
        "p90_s": p90(times) / per,
        "rounds": len(times),
        "raw_median_s": statistics.median(raw) / per if raw else None,
        "raw_p90_s": p90(raw) / per if raw else None,
        "added_s": None if added is None else added / per,
        "unit": unit,
    }
    if peers:
        row["peers"] = {name: value / per for name, value in peers.items()}
    if note:
        row["note"] = note
    benchmark.extra_info.setdefault("gate", []).append(row)
    return row


def paired_added(times: Sequence[float], baseline: Sequence[float]) -> float:
    """Median of the per-round differences: each round ran both calls back to back."""
    return statistics.median(t - b for t, b in zip(times, baseline, strict=True))
