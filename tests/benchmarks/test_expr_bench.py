"""Benchmarks of the expression language against cel-python, jmespath, simpleeval and Python.

Run:  .venv/bin/pytest tests/benchmarks/test_expr_bench.py --benchmark-only
Under a plain ``pytest`` run use ``--benchmark-disable``: every benchmark then runs its
function once (a smoke test) and the ratio report skips.

Four typical expressions, each written in every peer's own syntax, evaluated on the same data:

1. comparison with and:   state.count > 3 && inputs.env == "prod"
2. membership:            inputs.region in ["us", "eu", "ap"]
3. arithmetic with size:  size(state.items) * 2 + 1 > 10
4. two-part template:     Deploy ${{ inputs.service }} to ${{ inputs.env }}

cel-python uses its compiled runner (``CompiledRunner``: CEL transpiled to a Python code
object), its fastest mode. Compile and evaluation times are measured separately (benchmark groups
``<expression>/compile`` and ``<expression>/evaluate``). The last test prints, per expression,
the engine's median against every peer's and asserts the targets: engine evaluation at least
3x faster than the fastest of jmespath / simpleeval and at least 20x faster than cel-python.
"""

from __future__ import annotations

import sys

import celpy
import celpy.celparser
import jmespath
import pytest
import simpleeval
from jmespath.parser import Parser as JmesParser

from engine.expr import compile_expression, compile_template

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


# --------------------------------------------------------------------------- compilers / runners
# Each compiler returns (callable, args): the evaluation benchmark times callable(*args), so that
# no wrapper closure is charged to any implementation.


def _engine_compile(case: str, src: str):
    if case == "4-template":
        return compile_template(src)
    return compile_expression(src)


def _engine_runner(case: str, src: str):
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


def _cel_compile(case: str, src: str):
    env = _cel_environment()
    return env.program(env.compile(src))


def _cel_runner(case: str, src: str):
    return _cel_compile(case, src).evaluate, (CEL_ACTIVATION,)


def _jmespath_compile(case: str, src: str):
    JmesParser.purge()  # jmespath caches parsed expressions; time a real parse
    return jmespath.compile(src)


def _jmespath_runner(case: str, src: str):
    return jmespath.compile(src).search, (DATA,)


def _simpleeval_class(case: str):
    return simpleeval.EvalWithCompoundTypes if case == "2-membership" else simpleeval.SimpleEval


def _simpleeval_compile(case: str, src: str):
    return _simpleeval_class(case).parse(src)


def _simpleeval_runner(case: str, src: str):
    evaluator = _simpleeval_class(case)(names=DATA, functions={"len": len})
    parsed = evaluator.parse(src)
    return evaluator.eval, (src, parsed)


def _python_compile(case: str, src: str):
    return compile(src, "<expr>", "eval")


def _python_runner(case: str, src: str):
    return eval, (_python_compile(case, src), PY_GLOBALS, DATA)


COMPILERS = {
    ENGINE: _engine_compile,
    "cel-python": _cel_compile,
    "jmespath": _jmespath_compile,
    "simpleeval": _simpleeval_compile,
    "python-eval": _python_compile,
}
RUNNERS = {
    ENGINE: _engine_runner,
    "cel-python": _cel_runner,
    "jmespath": _jmespath_runner,
    "simpleeval": _simpleeval_runner,
    "python-eval": _python_runner,
}

# (case, phase, impl) -> median seconds, filled by the benchmarks, read by the report.
RESULTS: dict[tuple[str, str, str], float] = {}


def _params(phase: str):
    return [
        pytest.param(
            case,
            impl,
            id=f"{case}-{impl}",
            marks=pytest.mark.benchmark(group=f"{case}/{phase}", max_time=0.5, warmup=True),
        )
        for case in CASES
        for impl in IMPLS
    ]


def _record(benchmark, case: str, phase: str, impl: str) -> None:
    if benchmark.stats is not None:
        RESULTS[(case, phase, impl)] = benchmark.stats.stats.median


# --------------------------------------------------------------------------- benchmarks


@pytest.mark.parametrize(("case", "impl"), _params("evaluate"))
def test_evaluate(benchmark, case, impl):
    src = CASES[case][impl]
    func, args = RUNNERS[impl](case, src)
    result = benchmark(func, *args)
    assert result == CASES[case]["expected"]
    _record(benchmark, case, "evaluate", impl)


@pytest.mark.parametrize(("case", "impl"), _params("compile"))
def test_compile(benchmark, case, impl):
    src = CASES[case][impl]
    compiled = benchmark(COMPILERS[impl], case, src)
    assert compiled is not None
    _record(benchmark, case, "compile", impl)


# --------------------------------------------------------------------------- report (runs last)

EVAL_TARGET_VS_FASTEST_OF = ("jmespath", "simpleeval")
EVAL_TARGET_FACTOR = 3.0
EVAL_TARGET_VS_CEL = 20.0


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e6:9.2f} us"


def _report() -> tuple[str, list[str]]:
    lines: list[str] = []
    failures: list[str] = []
    for phase in ("evaluate", "compile"):
        lines.append("")
        lines.append(f"== {phase}: median per call, and peer median / engine median ==")
        header = f"{'expression':<16}{'engine':>13}" + "".join(f"{p:>26}" for p in PEERS)
        lines.append(header)
        for case in CASES:
            eng = RESULTS.get((case, phase, ENGINE))
            if eng is None:
                continue
            row = f"{case:<16}{_fmt(eng):>13}"
            for peer in PEERS:
                med = RESULTS.get((case, phase, peer))
                row += f"{'-':>26}" if med is None else f"{_fmt(med)} ({med / eng:6.2f}x)".rjust(26)
            lines.append(row)
            if phase != "evaluate":
                continue
            fast = [
                RESULTS[(case, phase, p)]
                for p in EVAL_TARGET_VS_FASTEST_OF
                if (case, phase, p) in RESULTS
            ]
            if fast:
                ratio = min(fast) / eng
                if ratio < EVAL_TARGET_FACTOR:
                    failures.append(
                        f"{case}: engine evaluate is only {ratio:.2f}x faster than the fastest of "
                        f"jmespath/simpleeval (target {EVAL_TARGET_FACTOR:g}x)"
                    )
            cel = RESULTS.get((case, phase, "cel-python"))
            if cel is not None and cel / eng < EVAL_TARGET_VS_CEL:
                failures.append(
                    f"{case}: engine evaluate is only {cel / eng:.2f}x faster than cel-python "
                    f"(target {EVAL_TARGET_VS_CEL:g}x)"
                )
    return "\n".join(lines), failures


@pytest.mark.filterwarnings("ignore::pytest_benchmark.logger.PytestBenchmarkWarning")
def test_zz_ratio_report(benchmark, capsys):
    """Not a benchmark: requests the fixture only so that --benchmark-only keeps it."""
    if benchmark.disabled:
        pytest.skip("benchmarks disabled: no timings to compare")
    if not any(key[1] == "evaluate" and key[2] == ENGINE for key in RESULTS):
        pytest.skip("no engine evaluation timings were collected in this run")
    table, failures = _report()
    with capsys.disabled():
        sys.stdout.write("\n" + table + "\n")
        if failures:
            sys.stdout.write("\nTARGETS MISSED:\n  " + "\n  ".join(failures) + "\n")
    assert not failures, "\n".join(failures)
