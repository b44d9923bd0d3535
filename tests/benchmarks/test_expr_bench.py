"""Benchmarks of the expression language against cel-python, jmespath, simpleeval and Python.

Run:  .venv/bin/pytest tests/benchmarks/test_expr_bench.py --benchmark-only -s
Under a plain ``pytest`` run use ``--benchmark-disable``: every test then runs each
implementation once on its expression and checks that all give the expected answer (a smoke
test), and the report skips.

Four typical expressions, each written in every peer's own syntax, evaluated on the same data:

1. comparison with and:   state.count > 3 && inputs.env == "prod"
2. membership:            inputs.region in ["us", "eu", "ap"]
3. arithmetic with size:  size(state.items) * 2 + 1 > 10
4. two-part template:     Deploy ${{ inputs.service }} to ${{ inputs.env }}

cel-python uses its compiled runner (``CompiledRunner``: CEL transpiled to a Python code
object), its fastest mode.

One test per expression and phase: ``test_evaluate[<expression>]`` and
``test_compile[<expression>]``. pytest-benchmark times the engine (``benchmark.pedantic``), each
round running a batch of calls, sized at the start of the test so that the engine's round takes
about ``round_s`` (1-2 ms). The ``setup`` of every round times each peer by hand over the same
batch, in an order that rotates from round to round, so the engine and its peers are measured
interleaved, in the same process, through the machine's same noisy moments. Warm-up rounds are
left out on both sides.

Each test records a gate row (``tests/benchmarks/_gate.py``) with the engine's times and the
peers' medians, all per call: ``expr evaluate: <expression>`` is checked by
``scripts/bench_gate.py`` against ``tests/benchmarks/targets.toml`` (peer median / engine median
at least 3x for simpleeval and jmespath, 20x for cel-python); ``expr compile: <expression>``
has no target (informational). The last test prints, per expression and phase, the engine's
median per call against every peer's, with the ratios; the gate script gives the verdict.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import celpy
import celpy.celparser
import jmespath
import pytest
import simpleeval
from jmespath.parser import Parser as JmesParser

from engine.expr import compile_expression, compile_template
from tests.benchmarks import _gate as gate

DATA = {
    "state": {"count": 5, "items": [1, 2, 3, 4, 5, 6]},
    "inputs": {"env": "prod", "region": "eu", "service": "api"},
}

ENGINE = "engine"
PEERS = ("cel-python", "jmespath", "simpleeval", "python-eval")
IMPLS = (ENGINE, *PEERS)

# name -> {implementation: source}; "expected" is the result every implementation must give.
CASES: dict[str, dict[str, object]] = {
    "1-and-compare": {
        ENGINE: 'state.count > 3 && inputs.env == "prod"',
        "cel-python": 'state.count > 3 && inputs.env == "prod"',
        "jmespath": "state.count > `3` && inputs.env == 'prod'",
        "simpleeval": "state['count'] > 3 and inputs['env'] == 'prod'",
        "python-eval": "state['count'] > 3 and inputs['env'] == 'prod'",
        "expected": True,
    },
    "2-membership": {
        ENGINE: 'inputs.region in ["us", "eu", "ap"]',
        "cel-python": 'inputs.region in ["us", "eu", "ap"]',
        "jmespath": 'contains(`["us", "eu", "ap"]`, inputs.region)',
        # plain SimpleEval has no list literals; EvalWithCompoundTypes is its subclass that does
        "simpleeval": "inputs['region'] in ['us', 'eu', 'ap']",
        "python-eval": "inputs['region'] in ['us', 'eu', 'ap']",
        "expected": True,
    },
    "3-arith-size": {
        ENGINE: "size(state.items) * 2 + 1 > 10",
        "cel-python": "size(state.items) * 2 + 1 > 10",
        # JMESPath has no arithmetic: the same logic (n*2+1 > 10 <=> n > 4.5) in its syntax
        "jmespath": "length(state.items) > `4.5`",
        "simpleeval": "len(state['items']) * 2 + 1 > 10",
        "python-eval": "len(state['items']) * 2 + 1 > 10",
        "expected": True,
    },
    "4-template": {
        ENGINE: "Deploy ${{ inputs.service }} to ${{ inputs.env }}",
        "cel-python": '"Deploy " + inputs.service + " to " + inputs.env',
        "jmespath": "join('', ['Deploy ', inputs.service, ' to ', inputs.env])",
        "simpleeval": "'Deploy ' + inputs['service'] + ' to ' + inputs['env']",
        "python-eval": "'Deploy ' + inputs['service'] + ' to ' + inputs['env']",
        "expected": "Deploy api to prod",
    },
}

PY_GLOBALS = {"__builtins__": {}, "len": len}
CEL_ACTIVATION = {name: celpy.json_to_cel(value) for name, value in DATA.items()}


@dataclass(frozen=True)
class Phase:
    """How one phase is measured: the engine's time per round, and how many rounds."""

    name: str
    round_s: float  # the engine's batch is sized to take about this long
    rounds: int
    warmup: int


EVALUATE = Phase("evaluate", round_s=1.5e-3, rounds=30, warmup=2)
COMPILE = Phase("compile", round_s=2e-3, rounds=40, warmup=2)
PHASES = (EVALUATE, COMPILE)


# --------------------------------------------------------------------------- compilers / runners
# Each returns (callable, args): the benchmarks time callable(*args), so that no wrapper closure
# is charged to any implementation.

Call = tuple[Callable[..., Any], tuple[Any, ...]]


def _engine_compile(case: str, src: str) -> Any:
    if case == "4-template":
        return compile_template(src)
    return compile_expression(src)


def _engine_runner(case: str, src: str) -> Call:
    compiled = _engine_compile(case, src)
    if case == "4-template":
        return compiled.render, (DATA,)
    return compiled.evaluate, (DATA,)


def _cel_environment() -> celpy.Environment:
    """A cel-python environment with the compiled (transpiling) runner.

    cel-python keeps one Lark parser per process, built with the tree class of the first
    environment created; the compiled runner needs its own tree class, so reset a parser that
    an interpreted environment may have built earlier in the session.
    """
    parser = celpy.celparser.CELParser.CEL_PARSER
    if parser is not None and parser.options.tree_class is not celpy.CompiledRunner.tree_node_class:
        celpy.celparser.CELParser.CEL_PARSER = None
    return celpy.Environment(runner_class=celpy.CompiledRunner)


def _cel_compile(case: str, src: str) -> Any:
    env = _cel_environment()
    return env.program(env.compile(src))


def _cel_runner(case: str, src: str) -> Call:
    return _cel_compile(case, src).evaluate, (CEL_ACTIVATION,)


def _jmespath_compile(case: str, src: str) -> Any:
    JmesParser.purge()  # jmespath caches parsed expressions; time a real parse
    return jmespath.compile(src)


def _jmespath_runner(case: str, src: str) -> Call:
    return jmespath.compile(src).search, (DATA,)


def _simpleeval_class(case: str) -> type[simpleeval.SimpleEval]:
    return simpleeval.EvalWithCompoundTypes if case == "2-membership" else simpleeval.SimpleEval


def _simpleeval_compile(case: str, src: str) -> Any:
    return _simpleeval_class(case).parse(src)


def _simpleeval_runner(case: str, src: str) -> Call:
    evaluator = _simpleeval_class(case)(names=DATA, functions={"len": len})
    parsed = evaluator.parse(src)
    return evaluator.eval, (src, parsed)


def _python_compile(case: str, src: str) -> Any:
    return compile(src, "<expr>", "eval")


def _python_runner(case: str, src: str) -> Call:
    return eval, (_python_compile(case, src), PY_GLOBALS, DATA)


COMPILERS: dict[str, Callable[[str, str], Any]] = {
    ENGINE: _engine_compile,
    "cel-python": _cel_compile,
    "jmespath": _jmespath_compile,
    "simpleeval": _simpleeval_compile,
    "python-eval": _python_compile,
}
RUNNERS: dict[str, Callable[[str, str], Call]] = {
    ENGINE: _engine_runner,
    "cel-python": _cel_runner,
    "jmespath": _jmespath_runner,
    "simpleeval": _simpleeval_runner,
    "python-eval": _python_runner,
}


def _calls(phase: Phase, case: str) -> dict[str, Call]:
    """What one call of ``phase`` is, for every implementation, on ``case``."""
    sources = CASES[case]
    if phase is EVALUATE:
        return {impl: RUNNERS[impl](case, str(sources[impl])) for impl in IMPLS}
    return {impl: (COMPILERS[impl], (case, str(sources[impl]))) for impl in IMPLS}


# --------------------------------------------------------------------------- measurement


def _loop(func: Callable[..., Any], args: tuple[Any, ...], batch: int) -> Any:
    """``batch`` calls of ``func(*args)``: what every implementation's round runs, timed whole."""
    outcome = None
    for _ in range(batch):
        outcome = func(*args)
    return outcome


def _batch_size(func: Callable[..., Any], args: tuple[Any, ...], round_s: float) -> int:
    """How many calls of ``func(*args)`` take about ``round_s`` (two significant digits)."""
    _loop(func, args, 3)  # warm
    n = 1
    while True:
        began = time.perf_counter()
        _loop(func, args, n)
        took = time.perf_counter() - began
        if took >= round_s / 5 or n >= 1 << 20:
            break
        n *= 2
    best = took
    for _ in range(2):
        began = time.perf_counter()
        _loop(func, args, n)
        best = min(best, time.perf_counter() - began)
    batch = max(1, round(round_s * n / best))
    scale = 10 ** max(0, len(str(batch)) - 2)
    return max(1, round(batch / scale) * scale)


@dataclass
class Measured:
    batch: int
    outcomes: dict[str, Any]  # implementation -> the last call's result
    peer_times: dict[str, list[float]]  # peer -> seconds per round (a batch of calls)


def _interleaved(benchmark: Any, phase: Phase, calls: dict[str, Call]) -> Measured:
    """Time the engine's batches with pytest-benchmark, each peer's by hand in every setup.

    The peers run in the setup of every round (warm-up rounds included), in an order rotated by
    one each round; the engine's batch follows. Benchmarks disabled: one round of one call each.
    """
    engine_func, engine_args = calls[ENGINE]
    disabled = benchmark.disabled
    batch = 1 if disabled else _batch_size(engine_func, engine_args, phase.round_s)
    rounds = 1 if disabled else phase.rounds
    warmup = 0 if disabled else phase.warmup
    outcomes: dict[str, Any] = {}
    peer_times: dict[str, list[float]] = {peer: [] for peer in PEERS}
    turn = [0]

    def setup() -> None:
        shift = turn[0] % len(PEERS)
        turn[0] += 1
        for peer in PEERS[shift:] + PEERS[:shift]:
            func, args = calls[peer]
            began = time.perf_counter()
            outcome = _loop(func, args, batch)
            peer_times[peer].append(time.perf_counter() - began)
            outcomes[peer] = outcome  # the last result only: a growing heap would slow the GC

    outcomes[ENGINE] = benchmark.pedantic(
        _loop,
        args=(engine_func, engine_args, batch),
        setup=setup,
        rounds=rounds,
        warmup_rounds=warmup,
    )
    for times in peer_times.values():
        del times[:warmup]
    return Measured(batch, outcomes, peer_times)


# (phase, case) -> the gate row recorded (times per call), read by the report.
RESULTS: dict[tuple[str, str], dict[str, Any]] = {}


def _record(benchmark: Any, phase: Phase, case: str, measured: Measured) -> None:
    if benchmark.disabled:
        return
    peers = {peer: statistics.median(times) for peer, times in measured.peer_times.items()}
    benchmark.extra_info["batch"] = measured.batch
    benchmark.extra_info["peer_round_s"] = measured.peer_times
    row = gate.record(
        benchmark,
        f"expr {phase.name}: {case}",
        gate.engine_times(benchmark),
        per=measured.batch,
        unit="per call",
        peers=peers,
        note=f"{measured.batch} calls per round, peers interleaved in every round's setup",
    )
    if row is not None:
        RESULTS[(phase.name, case)] = {**row, "batch": measured.batch}


# --------------------------------------------------------------------------- benchmarks


@pytest.mark.benchmark(group="expr/evaluate")
@pytest.mark.parametrize("case", list(CASES))
def test_evaluate(benchmark: Any, case: str) -> None:
    measured = _interleaved(benchmark, EVALUATE, _calls(EVALUATE, case))
    expected = CASES[case]["expected"]
    assert measured.outcomes == dict.fromkeys(IMPLS, expected)
    _record(benchmark, EVALUATE, case, measured)


@pytest.mark.benchmark(group="expr/compile")
@pytest.mark.parametrize("case", list(CASES))
def test_compile(benchmark: Any, case: str) -> None:
    measured = _interleaved(benchmark, COMPILE, _calls(COMPILE, case))
    missing = [impl for impl in IMPLS if measured.outcomes.get(impl) is None]
    assert not missing, f"compiled nothing: {missing}"
    _record(benchmark, COMPILE, case, measured)


# --------------------------------------------------------------------------- report (runs last)


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e6:9.2f} us"


def _report() -> str:
    lines: list[str] = []
    for phase in PHASES:
        rows = [
            (case, RESULTS[(phase.name, case)]) for case in CASES if (phase.name, case) in RESULTS
        ]
        if not rows:
            continue
        lines += [
            "",
            f"== expr {phase.name}: median per call, and peer median / engine median ==",
            f"{'expression':<16}{'engine':>13}{'calls/round':>13}"
            + "".join(f"{p:>26}" for p in PEERS),
        ]
        for case, row in rows:
            engine = row["median_s"]
            line = f"{case:<16}{_fmt(engine):>13}{row['batch']:>13}"
            for peer in PEERS:
                med = row["peers"].get(peer)
                cell = "-" if med is None else f"{_fmt(med)} ({med / engine:6.2f}x)"
                line += cell.rjust(26)
            lines.append(line)
    lines += [
        "",
        "Each round: the peers' batches (rotating order) in setup, then the engine's, timed.",
        "Targets (targets.toml) are checked by scripts/bench_gate.py (make bench).",
    ]
    return "\n".join(lines)


@pytest.mark.filterwarnings("ignore::pytest_benchmark.logger.PytestBenchmarkWarning")
def test_zz_ratio_report(benchmark: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Not a benchmark: requests the fixture only so that --benchmark-only keeps it."""
    if benchmark.disabled:
        pytest.skip("benchmarks disabled: no timings to compare")
    if not RESULTS:
        pytest.skip("no expression timings were collected in this run")
    with capsys.disabled():
        sys.stdout.write("\n" + _report() + "\n")
