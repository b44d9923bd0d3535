"""Expressions at run time: 10,000 random ones, each compiling and loading, run on Temporal.

Expressions are built from the language's functions, operators and literals (numbers at the
64-bit limits and past them, 5,000-digit strings, unicode and escapes, nested lists and maps)
and the run's inputs; only those that compile, and that load inside a definition, are kept.
They run 100 to a definition, each the value of a ``set_state`` step with ``on_error:
continue``, about a hundred runs on the real Temporal dev server, ten at a time:

* every run ends (completed or failed) within a bound: none is left running;
* every step whose expression raises (as the same definition, rendered here, says it does) is
  ``failed`` with an error message; every other step is ``completed``, or ``failed`` because
  its value would not fit the run's payload, saying so.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pytest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.worker import Worker

from engine.definition import DefinitionError, WorkflowDefinition, load_definition
from engine.expr import FUNCTIONS, ExpressionError, compile_expression
from tests.helpers.runs import ORG, start, status, unique_id

SEED = 20260301
EXPRESSIONS = 10_000
PER_RUN = 100
PARALLEL = 10
RUN_BOUND = 60.0
"""Seconds a run may take to end before it counts as stuck."""

DIGITS = "1" * 5000
INPUTS: dict[str, tuple[str, Any]] = {
    "s": ("string", "hello, world"),
    "e": ("string", ""),
    "u": ("string", "é中😀\u202e\u0301\ufeff"),
    "digits": ("string", DIGITS),
    "neg_digits": ("string", "-" + "9" * 5000),
    "float_digits": ("string", "1" * 400 + "." + "5" * 400),
    "n": ("integer", 7),
    "zero": ("integer", 0),
    "big": ("integer", 2**63 - 1),
    "small": ("integer", -(2**63)),
    "f": ("number", 1.5),
    "huge": ("number", 1.7976931348623157e308),
    "tiny": ("number", 5e-324),
    "t": ("boolean", True),
    "l": ("list", [1, 2, 3]),
    "strings": ("list", ["b", "a", "c", "a"]),
    "mixed": ("list", [1, "a", None, [2], {"k": 3}, 2.5, True]),
    "deep": ("list", [[[[[[[[[[1]]]]]]]]]]),
    "m": ("map", {"a": 1, "b": [1, {"c": "d"}], "": "empty", "a.b": 2}),
    "any": ("any", None),
}
REFERENCES = (
    *(f"inputs.{name}" for name in INPUTS),
    "inputs.missing",
    "inputs.l[0]",
    "inputs.l[2]",
    "inputs.l[3]",
    "inputs.l[-1]",
    "inputs.m.a",
    "inputs.m['b']",
    "inputs.m.b[1].c",
    "inputs.m.nope.deeper",
    "inputs['s']",
    "inputs.deep[0][0][0]",
    "inputs",
    "state.nope",
    "org.id",
    "workflow.name",
    "workflow.version",
)
"""What expressions read (never what changes between here and the run: the state a step sets,
the records of steps, the run's id and clock)."""
INTS = (
    "0", "1", "2", "7", "10", "255", "1000", "10000", "10001", "1048576", "1048577",
    "2147483647", "2147483648", "9223372036854775807", "9223372036854775808",
    "99999999999999999999", "4" * 4000,
)  # fmt: skip
FLOATS = (
    "0.0", "0.5", "1.5", "2.0", "1e308", "1.7976931348623157e308", "1e309", "5e-324", "1e-400",
    "123456789.123456789", "1" * 300 + ".0",
)  # fmt: skip
STRINGS = (
    "''", "'a'", "'abc'", "'hello, world'", "'é中😀'", "'\\u202e'", "'\\ud800'", "'\\udfff'",
    "'\\u0000'", "'\\n'", "'\\t'", "'\\\\'", "'\\''", "'\"'", "'{0}'", "'{1}'", "'{'", "'{{'",
    "'{0}{0}{0}{0}{0}{0}{0}{0}'", "'{99}'", "'{²}'", "'{-1}'", "'(a+)+$'", "'['", "'.*'",
    "'\\\\d+'", "'(?i)A'", "'a{1000}{1000}'", "'null'", "'true'", "'1e400'", "'NaN'",
    "'Infinity'", "'-0'", "'12'", "'0x10'", "' 3 '", "'[1, 2]'", "'{\"a\": 1}'", "'[[[[[[1]]]]]]'",
    "'{\"a\": 1, \"a\": 2}'", "'\"\\\\ud800\"'", "'x'", "'" + "z" * 3000 + "'",
    "'" + "[" * 1000 + "]" * 1000 + "'", "'" + "9" * 4000 + "'",
)  # fmt: skip
KEYWORDS = ("true", "false", "null")
BINARY = (
    "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "in", "??", "&&", "||", "and",
    "or",
)  # fmt: skip
UNARY = ("!", "-", "not ")
NAMES = tuple(sorted(FUNCTIONS))
SHARP = (
    "inputs.big + 1", "inputs.small - 1", "-inputs.small", "inputs.small / -1",
    "inputs.small % -1", "abs(inputs.small)", "inputs.big * inputs.big", "inputs.huge * 10",
    "inputs.huge + inputs.huge", "1 / 0", "1 % 0", "1.0 / 0", "0 / 0.0", "int(inputs.digits)",
    "int(inputs.neg_digits)", "float(inputs.digits)", "float(inputs.float_digits)",
    "int(inputs.huge)", "round(inputs.huge)", "round(inputs.huge, 400)", "round(1.5, -400)",
    "round(inputs.tiny, 1000)", "int('9223372036854775808')", "float('1e400')", "float('nan')",
    "float('inf')", "fromJSON('1e400')", "fromJSON('NaN')", "fromJSON(inputs.digits)",
    "fromJSON('[' + inputs.digits + ']')", "fromJSON('\"\\\\ud800\"')",
    "range(10000)", "range(10001)", "range(0, 10000000000, 1)", "range(9223372036854775807)",
    "range(-9223372036854775807 - 1, 9223372036854775807, 1000000000000000)", "range(1, 2, 0)",
    "join(range(10000), inputs.digits)", "join(range(10000), 'xxxxxxxxxx')",
    "toJSON(range(10000))", "size(toJSON(range(10000)))", "split(inputs.digits, '')",
    "split(inputs.digits, '1')", "replace(inputs.digits, '1', inputs.digits)",
    "replace(inputs.s, '', 'x')", "format('{0}{0}{0}{0}{0}{0}{0}{0}{0}{0}', inputs.digits)",
    "format(inputs.digits)", "format('{0}', range(10000))", "format('{1000000}')",
    "format('{0:>99999999}', 1)", "format('{0.__class__}', 1)", "format('{0[0]}', inputs.l)",
    "matches(inputs.digits, '(1+)+2')", "matches('a', '[')", "matches('a', '(?P<x>a)(?P=x)')",
    "matches(inputs.s, inputs.digits)", "sort(inputs.mixed)", "sort(inputs.strings)",
    "unique(inputs.mixed)", "flatten(inputs.deep)", "flatten(inputs.mixed)",
    "merge(inputs.m, inputs.m, {'x': inputs.deep})", "merge(inputs.m, 5)", "min()", "max([])",
    "min(inputs.mixed)", "max(inputs.strings)", "keys(inputs.m)", "values(inputs)",
    "inputs.u[0]", "inputs.digits[4999]", "inputs.digits[5000]", "inputs.l[9223372036854775807]",
    "inputs.m[inputs.l]", "inputs.l['a']", "inputs.s.x", "inputs.n.x", "size(inputs)",
    "toJSON(inputs)", "string(inputs)", "type(inputs.any)", "bool('maybe')", "bool(inputs.huge)",
    "int(true)", "float(null)", "string(inputs.huge)", "string(inputs.tiny)",
    "lower(inputs.u) + upper(inputs.u)", "trim(inputs.u)", "'a' < 1", "[1] < [2]", "{} == {}",
    "inputs.l == [1, 2, 3.0]", "1 in inputs.m", "'a' in inputs.m", "inputs.l in inputs.l",
    "null.x", "null[0]", "(inputs.missing ?? inputs.any ?? 3) + 1", "!inputs.s", "-inputs.s",
    "inputs.t ? inputs.digits : inputs.big + 1", "inputs.l[1]",
    "matches(inputs.s, inputs.s + '\\ud800')", "matches(inputs.s + '\\ud800', 'a')",
    "matches('\\ud800', 'a')", "matches('a', '\\ud800')", "contains(inputs.u, '\\ud800')",
    "split(inputs.s + '\\ud800', '\\ud800')", "lower('\\udfff')", "toJSON('\\ud800')",
)  # fmt: skip


def literal(rng: random.Random) -> str:
    choice = rng.random()
    if choice < 0.3:
        return rng.choice(INTS)
    if choice < 0.45:
        return rng.choice(FLOATS)
    if choice < 0.8:
        return rng.choice(STRINGS)
    return rng.choice(KEYWORDS)


def expression(rng: random.Random, depth: int = 0) -> str:
    """A random expression (it may not compile: the caller keeps those that do)."""
    choice = rng.random() if depth else 0.3 + 0.7 * rng.random()  # no bare leaf at the top
    if depth >= 4 or choice < 0.3:
        return rng.choice(REFERENCES) if rng.random() < 0.5 else literal(rng)
    if choice < 0.5:
        name = rng.choice(NAMES)
        args = ", ".join(expression(rng, depth + 1) for _ in range(rng.choice((1, 1, 2, 2, 3, 4))))
        return f"{name}({args})"
    if choice < 0.65:
        op = rng.choice(BINARY)
        return f"({expression(rng, depth + 1)} {op} {expression(rng, depth + 1)})"
    if choice < 0.7:
        return f"{rng.choice(UNARY)}{expression(rng, depth + 1)}"
    if choice < 0.75:
        a, b, c = (expression(rng, depth + 1) for _ in range(3))
        return f"({a} ? {b} : {c})"
    if choice < 0.82:
        items = ", ".join(expression(rng, depth + 1) for _ in range(rng.randint(0, 4)))
        return f"[{items}]"
    if choice < 0.88:
        pairs = ", ".join(
            f"{rng.choice(('a', 'b', 'x_1', repr('k'), repr(''), repr('é')))}: "
            f"{expression(rng, depth + 1)}"
            for _ in range(rng.randint(0, 3))
        )
        return "{ " + pairs + " }"  # spaced: '}}' would end the template early
    if choice < 0.94:
        return f"{expression(rng, depth + 1)}[{expression(rng, depth + 1)}]"
    if choice < 0.97:
        return f"{expression(rng, depth + 1)}.{rng.choice(('a', 'b', 'x', 'length', 'c'))}"
    return rng.choice(SHARP)


def nested(rng: random.Random) -> str:
    """Nesting near the language's depth limit (64)."""
    depth = rng.choice((10, 30, 60, 62, 63, 64))
    opener, closer = rng.choice((("[", "]"), ("(", ")"), ("{ 'a': ", " }"), ("-", ""), ("!", "")))
    return opener * depth + rng.choice(("1", "inputs.n", "true", "'x'")) + closer * depth


def compiles(source: str, findings: Findings) -> bool:
    """Whether ``source`` compiles; a compiler that fails otherwise than with an
    ExpressionError is a fault."""
    if "}}" in source or "${{" in source:  # would end (or open) the template early
        return False
    try:
        compile_expression(source)
    except ExpressionError:
        return False
    except Exception as error:
        kind = f"compiling raised {type(error).__name__}"
        findings.fault(kind, f"compile_expression({source!r}): {error}")
        return False
    return True


def candidates(rng: random.Random, findings: Findings) -> list[str]:
    """Expressions that compile, in a stable order."""
    found: list[str] = [source for source in SHARP if compiles(source, findings)]
    while len(found) < EXPRESSIONS * 1.05:  # a few will not load: room to spare
        source = nested(rng) if rng.random() < 0.03 else expression(rng)
        if compiles(source, findings):
            found.append(source)
    rng.shuffle(found)
    return found


def definition_text(name: str, sources: list[str]) -> str:
    """A definition: one set_state step per expression, each going on past a failure."""
    lines = [f"name: {name}", "version: 1", "inputs:"]
    for key, (kind, default) in INPUTS.items():
        shown = json.dumps(default, ensure_ascii=False)
        lines.append(f"  {key}: {{type: {kind}, default: {shown}}}")
    lines.append("steps:")
    for index, source in enumerate(sources):
        value = json.dumps("${{ " + source + " }}", ensure_ascii=False)
        lines.append(
            f"  - {{id: e{index}, type: set_state, set: {{v: {value}}}, on_error: continue}}"
        )
    lines.append("  - {id: done, type: return, value: done}")
    return "\n".join(lines) + "\n"


def loading(name: str, sources: list[str]) -> tuple[WorkflowDefinition, list[str], list[str]]:
    """Load the definition of ``sources``, leaving out those its loading refuses.

    Returns:
        The definition, the expressions in it, and those left out.
    """
    refused: list[str] = []
    while True:
        try:
            return load_definition(definition_text(name, sources), f"{name}.yaml"), sources, refused
        except DefinitionError as error:
            bad = {
                int(problem.path.split("]")[0].removeprefix("steps["))
                for problem in error.errors
                if problem.path.startswith("steps[")
            }
            assert bad, f"the definition itself is refused: {error}"
            refused += [sources[index] for index in sorted(bad) if index < len(sources)]
            sources = [source for index, source in enumerate(sources) if index not in bad]


@dataclass
class Batch:
    """One run's definition, and what each of its steps should come to."""

    definition: WorkflowDefinition
    sources: list[str]
    raises: list[bool] = field(default_factory=list)


@dataclass
class Findings:
    """What the runs came to, and every broken property."""

    expressions: int = 0
    refused: int = 0
    runs: Counter[str] = field(default_factory=Counter)
    steps: Counter[str] = field(default_factory=Counter)
    faults: list[tuple[str, str]] = field(default_factory=list)
    """(kind, description) of each broken property."""

    def fault(self, kind: str, what: str) -> None:
        self.faults.append((kind, what))

    def verdict(self) -> str:
        """Each kind of fault: how often, and its three shortest cases."""
        kinds = Counter(kind for kind, _ in self.faults)
        out = []
        for kind, count in kinds.most_common():
            out.append(f"== {kind} ({count} cases); the shortest:")
            cases = sorted({what for k, what in self.faults if k == kind}, key=len)
            out += [f"  {what[:1500]}" for what in cases[:3]]
        return "\n".join(out)


def expected_outcomes(batch: Batch, findings: Findings) -> None:
    """Render each step's value here, as the run will: does its expression raise?"""
    definition = batch.definition
    context = {
        "inputs": definition.validate_inputs(None),
        "state": {},
        "steps": {},
        "workflow": {"id": "here", "name": definition.name, "version": 1, "now": ""},
        "org": {"id": ORG.org_id},
    }
    for index, source in enumerate(batch.sources):
        try:
            definition.step(f"e{index}").render("set", context)
        except ExpressionError:
            batch.raises.append(True)
        except Exception as error:  # the language's own checks missed this one
            findings.fault(
                f"evaluating raised {type(error).__name__}",
                f"{source!r}: {str(error)[:300]}",
            )
            batch.raises.append(True)
        else:
            batch.raises.append(False)


async def run_batch(client: Client, batch: Batch, findings: Findings) -> None:
    handle = await start(client, batch.definition, workflow_id=unique_id("expr-fuzz"))
    try:
        await asyncio.wait_for(handle.result(), RUN_BOUND)
        findings.runs["completed"] += 1
    except WorkflowFailureError as failure:
        findings.runs["failed"] += 1
        findings.fault("run failed", f"run {handle.id} failed: {failure.cause}")
    except TimeoutError:
        findings.runs["stuck"] += 1
        described = await handle.describe()
        findings.fault(
            "run stuck",
            f"run {handle.id} still {described.status.name if described.status else '?'} "
            f"after {RUN_BOUND:.0f}s; its expressions: {batch.sources!r:.2000}",
        )
        await handle.terminate("stuck in the expression fuzz test")
        return
    described = await handle.describe()
    if described.status not in (
        WorkflowExecutionStatus.COMPLETED,
        WorkflowExecutionStatus.FAILED,
    ):
        findings.fault("run not closed", f"run {handle.id} ended {described.status}")
    final = await status(client, handle)
    records = final["steps"]
    for index, (source, raises) in enumerate(zip(batch.sources, batch.raises, strict=True)):
        record = records.get(f"e{index}")
        if record is None:
            findings.fault("step never ran", repr(source))
            continue
        outcome = record["status"]
        error = record.get("error") or ""
        findings.steps[outcome] += 1
        if outcome == "failed" and not error.strip():
            findings.fault("failed without an error message", repr(source))
        if raises and outcome != "failed":
            findings.fault(f"raises, yet its step is {outcome}", repr(source))
        elif not raises and outcome != "completed":
            if outcome == "failed" and "payload limit" in error:
                findings.steps["failed (too large)"] += 1
            else:
                findings.fault(
                    f"renders, yet its step is {outcome}: {error[:60]}",
                    f"{source!r}: {error[:300]}",
                )


@pytest.mark.timeout(300)
async def test_ten_thousand_random_expressions_run_and_every_run_ends(
    client: Client, worker: Worker
) -> None:
    rng = random.Random(SEED)
    findings = Findings()
    pool = candidates(rng, findings)
    batches: list[Batch] = []
    position = 0
    while findings.expressions < EXPRESSIONS:
        wanted = min(PER_RUN, EXPRESSIONS - findings.expressions)
        chunk = pool[position : position + wanted]
        position += wanted
        assert len(chunk) == wanted, "not enough expressions"
        name = f"expr-fuzz-{len(batches)}"
        definition, kept, refused = loading(name, chunk)
        findings.refused += len(refused)
        findings.expressions += len(kept)
        batch = Batch(definition, kept)
        expected_outcomes(batch, findings)
        batches.append(batch)

    limit = asyncio.Semaphore(PARALLEL)

    async def bounded(batch: Batch) -> None:
        async with limit:
            await run_batch(client, batch, findings)

    await asyncio.gather(*(bounded(batch) for batch in batches))

    raised = sum(sum(batch.raises) for batch in batches)
    print(
        f"\nexpressions: {findings.expressions} run ({raised} raise), {findings.refused} "
        f"compiled but refused by the loader; runs: {dict(findings.runs)}; "
        f"steps: {dict(findings.steps)}; {len(findings.faults)} faults"
    )
    assert findings.expressions >= EXPRESSIONS
    assert findings.runs["stuck"] == 0 and sum(findings.runs.values()) == len(batches)
    if findings.faults:
        raise AssertionError(findings.verdict())
    assert 0 < raised < findings.expressions
