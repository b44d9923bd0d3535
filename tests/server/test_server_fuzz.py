"""Fuzzing the control plane's edge: nothing a client sends ends a call in INTERNAL or UNKNOWN.

Definitions: the shipped examples mutated at random (lines deleted, duplicated and swapped,
characters inserted, control and bidi characters among them, numbers made huge, indentation
changed, text cut short), and documents crafted to hit the loader's limits (deep flow and block
nesting, alias bombs, text near and over 1 MiB, huge numbers where integers and durations go,
JSON, random unicode, empty text). Each goes through ValidateDefinition, a share of them through
RegisterDefinition as well:

* ValidateDefinition answers OK, valid or not; an invalid definition comes with problems that
  each have a location (line and column from 1, within the text) and a message;
* RegisterDefinition registers, or refuses with INVALID_ARGUMENT (located field violations) or
  ALREADY_EXISTS, always with an ErrorInfo; it refuses exactly what ValidateDefinition calls
  invalid.

Runs: StartWorkflow, GetWorkflow, ListWorkflows and SubmitResult with random workflow ids, run
ids, visibility queries, page tokens and Struct inputs and results (NaN and infinities among
them): every call answers, or fails with a typed code carrying an ErrorInfo.

The bulk (over 10,000 definitions) comes from a seeded ``random.Random``, so a failure is
reproducible; smaller hypothesis-driven tests shrink a failing mutation to a minimal one. The
documents are built by :func:`fuzz_documents`, which the ``enginectl validate`` fuzz test
(``tests/cli/test_enginectl_fuzz.py``) shares.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import random
import re
import struct
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.api.v1 import (
    definition_service_pb2 as definitions_pb,
)
from engine.api.v1 import (
    definition_service_pb2_grpc as definitions_grpc,
)
from engine.api.v1 import (
    workflow_service_pb2 as workflows_pb,
)
from engine.api.v1 import (
    workflow_service_pb2_grpc as workflows_grpc,
)
from engine.workflow import EngineWorkflow
from tests.server.harness import (
    ControlPlaneKit,
    ask_yaml,
    detail,
    error_info,
    quick_yaml,
    rich_status,
    unique,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES: tuple[tuple[str, str], ...] = tuple(
    (path.name, path.read_text(encoding="utf-8"))
    for path in sorted((ROOT / "examples").glob("*.yaml"))
    if not path.name.endswith(".test.yaml")
)
CALL_PROBLEM = re.compile(
    r"definition '[^']*' (is not registered|cannot call itself|\(version \d+\) has no input|"
    r"\(version \d+\) needs input|calls back into)|input '[^']*' of definition '|"
    r"is not registered in org"
)
MAX_TEXT = 1_048_576
"""The loader's limit on definition text, in characters."""

SEED = 20260131
BULK_DOCUMENTS = 10_200
"""Definitions the bulk test sends (the issue asks for 10,000 at least)."""
CONCURRENCY = 24
REGISTER_SHARE = 0.06
"""The share of the bulk's (smaller) documents also sent to RegisterDefinition."""
WORKFLOW_CALLS = 1_600

FORBIDDEN = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN})
HASH = re.compile(r"sha256:[0-9a-f]{64}")
VIOLATION = re.compile(r"(\d+):(\d+): .")
LINE_BREAKS = ("\n", "\r", "\x85", "\u2028", "\u2029")

# -- building documents ------------------------------------------------------------------------

CONTROL = tuple(chr(code) for code in range(0x20)) + ("\x7f",)
ODD_UNICODE = (
    "\u202e",  # right-to-left override
    "\u202d",
    "\u2066",
    "\u2069",
    "\ufeff",  # byte order mark, mid-text
    "\u200b",
    "\u2028",
    "\u2029",
    "\x85",
    "\xa0",
    "\u0301",  # a combining mark with nothing to combine with
    "é",
    "İ",
    "ß",
    "中文",
    "😀",
    "\U0001f468\u200d\U0001f469\u200d\U0001f467",
    "\U0010ffff",
    "\ufffe",
    "\uffff",
    "\ufffd",
    "\ue000",
    "\U000e0041",
    "\x80",
    "\x9f",
)
YAML_BITS = (
    ":", ": ", "-", "- ", "{", "}", "[", "]", ",", "&a ", "*a", "*zz", "!", "!!str ", "!!int ",
    "!!float ", "!!binary ", "!!set ", "!!python/object/apply:os.system ", "!custom ", "|", "|-",
    ">", "'", '"', "%", "@", "`", "#", "? ", "<<: ", "<<: *a", "---\n", "...\n", "\t", "\n", "  ",
    "${{", "}}", "${{ }}", "${{ inputs. }}", "${{ state.x }}", "$${{", "\\", "\\u0000", "\\x",
    "~", "null", "true", ".inf", "=", "%YAML 1.1\n", "%TAG ! tag:x,2000:\n", "\r\n", "\r",
)  # fmt: skip
NUMBERS = (
    "0", "-0", "-1", "1e400", "-1e400", "1e-400", ".inf", "-.inf", ".nan", "NaN", "Infinity",
    str(10**30), str(-(10**30)), str(2**31), str(2**31 - 1), str(2**63), str(2**63 - 1),
    str(2**64), str(-(2**63) - 1), "0x7fffffffffffffffffff", "0o7777777777777777777777777",
    "1_000", "+1", "1.5", "1e5", "9" * 5000, "1" + "0" * 400 + "s", "99999999999999999999d",
    "-5m", "0s", "1e400s", "1.7976931348623157e308", "4.9e-324", "00001", "0b101", "1:30",
)  # fmt: skip
WORDS = (
    "name", "version", "description", "inputs", "state", "defaults", "steps", "id", "type",
    "set", "if", "then", "else", "items", "as", "max_parallel", "on_item_error", "value",
    "command", "workdir", "env", "server", "tool", "params", "prompt_type", "message",
    "options", "default", "duration", "until", "agent", "instruction", "context", "needs_state",
    "output_to", "timeout", "retry", "on_error", "compensate", "when", "max_attempts",
    "initial_interval", "backoff", "max_interval", "condition", "set_state", "foreach",
    "return", "shell", "mcp_call", "prompt", "wait", "delegate", "teleport", "item", "index",
    "inputs.x", "state", "steps", "workflow", "org", "required", "enum", "string", "integer",
    "number", "boolean", "list", "map", "any", "continue", "fail", "confirm", "choice", "text",
    "info", "__proto__", "constructor", "None", "yes", "no", "on", "off", "",
)  # fmt: skip
SOURCES = (
    "",
    "fuzz.yaml",
    "a/b/c.yaml",
    "\u202edlrow.yaml",
    "line\nbreak.yaml",
    "nul\x00.yaml",
    "x" * 3000,
    "😀.yaml",
)


def _text_from(rng: random.Random, pools: tuple[tuple[str, ...], ...], count: int) -> str:
    return "".join(rng.choice(rng.choice(pools)) for _ in range(count))


def random_unicode(rng: random.Random, length: int) -> str:
    """``length`` code points from all of Unicode but the surrogates (protobuf cannot send them)."""
    out: list[str] = []
    while len(out) < length:
        code = rng.choice(
            (rng.randrange(0x80), rng.randrange(0x800), rng.randrange(0x10000))
            if rng.random() < 0.8
            else (rng.randrange(0x110000),)
        )
        if not 0xD800 <= code <= 0xDFFF:
            out.append(chr(code))
    return "".join(out)


def _insertion(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.3:
        return rng.choice(CONTROL)
    if kind < 0.5:
        return rng.choice(ODD_UNICODE)
    if kind < 0.8:
        return rng.choice(YAML_BITS)
    if kind < 0.9:
        return rng.choice(WORDS)
    return random_unicode(rng, rng.randint(1, 8))


# Each mutation takes the text and returns a changed one.
def _delete_line(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    del lines[rng.randrange(len(lines))]
    return "\n".join(lines)


def _duplicate_line(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    at = rng.randrange(len(lines))
    lines.insert(rng.randrange(len(lines) + 1), lines[at])
    return "\n".join(lines)


def _duplicate_block(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    start = rng.randrange(len(lines))
    block = lines[start : start + rng.randint(2, 12)]
    at = rng.randrange(len(lines) + 1)
    return "\n".join(lines[:at] + block + lines[at:])


def _swap_lines(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    a, b = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[a], lines[b] = lines[b], lines[a]
    return "\n".join(lines)


def _insert_chars(rng: random.Random, text: str) -> str:
    at = rng.randrange(len(text) + 1)
    return text[:at] + _insertion(rng) + text[at:]


def _replace_char(rng: random.Random, text: str) -> str:
    if not text:
        return _insertion(rng)
    at = rng.randrange(len(text))
    return text[:at] + _insertion(rng) + text[at + 1 :]


def _delete_span(rng: random.Random, text: str) -> str:
    if not text:
        return text
    at = rng.randrange(len(text))
    return text[:at] + text[at + rng.randint(1, 40) :]


_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?:[smhd]|ms)?(?![\w.])")


def _replace_number(rng: random.Random, text: str) -> str:
    found = list(_NUMBER.finditer(text))
    if not found:
        return _insert_chars(rng, text)
    match = rng.choice(found)
    return text[: match.start()] + rng.choice(NUMBERS) + text[match.end() :]


def _reindent(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    at = rng.randrange(len(lines))
    line = lines[at]
    stripped = line.lstrip(" ")
    indent = len(line) - len(stripped)
    choice = rng.random()
    if choice < 0.35:
        indent += rng.randint(1, 6)
    elif choice < 0.7:
        indent = max(0, indent - rng.randint(1, 6))
    else:
        lines[at] = "\t" * rng.randint(1, 3) + stripped
        return "\n".join(lines)
    lines[at] = " " * indent + stripped
    return "\n".join(lines)


def _truncate(rng: random.Random, text: str) -> str:
    return text[: rng.randrange(len(text) + 1)]


_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def _replace_word(rng: random.Random, text: str) -> str:
    found = list(_WORD.finditer(text))
    if not found:
        return _insert_chars(rng, text)
    match = rng.choice(found)
    return text[: match.start()] + rng.choice(WORDS) + text[match.end() :]


def _splice(rng: random.Random, text: str) -> str:
    other = rng.choice(EXAMPLES)[1]
    cut, other_cut = rng.randrange(len(text) + 1), rng.randrange(len(other) + 1)
    return text[:cut] + other[other_cut:]


def _line_endings(rng: random.Random, text: str) -> str:
    return text.replace("\n", rng.choice(("\r\n", "\r", "\x85", "\u2028", "\n\n")))


def _quote_value(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    at = rng.randrange(len(lines))
    key, colon, value = lines[at].partition(": ")
    if colon:
        quote = rng.choice(("'", '"', "'''", '"\\'))
        lines[at] = f"{key}: {quote}{value}{quote[::-1]}"
    return "\n".join(lines)


MUTATIONS: tuple[Callable[[random.Random, str], str], ...] = (
    _delete_line,
    _duplicate_line,
    _duplicate_block,
    _swap_lines,
    _insert_chars,
    _insert_chars,
    _replace_char,
    _delete_span,
    _replace_number,
    _replace_number,
    _reindent,
    _truncate,
    _replace_word,
    _splice,
    _line_endings,
    _quote_value,
)


def mutate(rng: random.Random, text: str, rounds: int) -> str:
    for _ in range(rounds):
        text = rng.choice(MUTATIONS)(rng, text)
    return text


# Crafted documents: each returns (label, text).
_MINIMAL = "name: crafted\nversion: 1\nsteps:\n  - {id: done, type: return, value: 1}\n"


def _with_state(value: str) -> str:
    return f"name: crafted\nversion: 1\nstate:\n  deep: {value}\n" + _MINIMAL.split("\n", 2)[2]


def _nesting_depth(rng: random.Random) -> int:
    return rng.choice(
        (rng.randint(1, 140), 63, 64, 65, 126, 127, 128, 129, 999, 1000, 1001, 5000)
        + ((rng.randint(1000, 100_000),) if rng.random() < 0.05 else ())
    )


def _deep_flow(rng: random.Random) -> tuple[str, str]:
    depth = _nesting_depth(rng)
    opener, closer = rng.choice((("[", "]"), ("{a: ", "}"), ("[{a: ", "}]"), ('{"a": ', "}")))
    body = opener * depth + rng.choice(("1", "", "*a", "x")) + closer * rng.choice((depth, 0, 1))
    text = _with_state(body) if rng.random() < 0.5 else body
    return f"deep-flow-{depth}", text


def _deep_block(rng: random.Random) -> tuple[str, str]:
    depth = min(_nesting_depth(rng), 1400)
    if rng.random() < 0.5:
        text = "".join(" " * level + "a:\n" for level in range(depth)) + " " * depth + "x\n"
        return f"deep-block-map-{depth}", text
    depth = _nesting_depth(rng)
    return f"deep-block-seq-{depth}", "- " * depth + "x\n"


def _deep_steps(rng: random.Random) -> tuple[str, str]:
    depth = rng.choice((rng.randint(1, 45), 40, 41, 42, 43))
    lines = ["name: nested", "version: 1", "steps:"]
    indent = "  "
    for level in range(depth):
        lines += [f"{indent}- id: c{level}", f"{indent}  type: condition", f"{indent}  if: true"]
        lines.append(f"{indent}  then:")
        indent += "    "
    lines.append(f"{indent}- {{id: leaf, type: set_state, set: {{x: 1}}}}")
    return f"deep-steps-{depth}", "\n".join(lines) + "\n"


def _deep_expression(rng: random.Random) -> tuple[str, str]:
    depth = rng.choice((rng.randint(1, 80), 63, 64, 65, 1000, 2000))
    opener, closer = rng.choice((("(", ")"), ("[", "]"), ("!", ""), ("-", ""), ("{'a': ", "}")))
    expression = opener * depth + "1" + closer * depth
    text = (
        "name: deep-expr\nversion: 1\nsteps:\n"
        f'  - {{id: s, type: set_state, set: {{x: "${{{{ {expression} }}}}"}}}}\n'
    )
    return f"deep-expression-{depth}", text


def _huge_numbers(rng: random.Random) -> tuple[str, str]:
    def number() -> str:
        return rng.choice(NUMBERS)

    text = f"""\
name: numbers
version: {number()}
inputs:
  n: {{type: integer, default: {number()}}}
  f: {{type: number, default: {number()}}}
defaults:
  timeout: {number()}
  retry: {{max_attempts: {number()}, initial_interval: {number()}, backoff: {number()},
          max_interval: {number()}}}
steps:
  - id: each
    type: foreach
    items: "[1, 2]"
    max_parallel: {number()}
    timeout: {number()}
    steps:
      - {{id: w, type: wait, duration: {number()}, timeout: {number()}}}
  - {{id: s, type: set_state, set: {{x: {number()}}}, retry: {{max_attempts: {number()}}}}}
  - {{id: done, type: return, value: "${{{{ {number()} + 1 }}}}"}}
"""
    return "huge-numbers", text


def _alias_bomb(rng: random.Random) -> tuple[str, str]:
    levels, fanout = rng.randint(2, 12), rng.randint(2, 10)
    lines = ["name: bomb", "version: 1", "state:", "  l0: &l0 [lol]"]
    for level in range(1, levels):
        refs = ", ".join([f"*l{level - 1}"] * fanout)
        lines.append(f"  l{level}: &l{level} [{refs}]")
    lines += ["steps:", f"  - {{id: done, type: return, value: *l{levels - 1}}}"]
    return f"alias-bomb-{levels}x{fanout}", "\n".join(lines) + "\n"


_ALIAS_ODDITIES = (
    "a: &a [*a]\n",
    "a: &a {b: *a}\n",
    "name: x\nversion: 1\nsteps: &s\n  - {id: a, type: return, value: *s}\n",
    "*unknown\n",
    "a: *unknown\n",
    "&a a: b\n*a : c\n",
    "? *a\n: b\n",
    "a: &x 1\nb: &x 2\nc: *x\n",
    "base: &b {id: a, type: return, value: 1}\nname: m\nversion: 1\nsteps:\n  - <<: *b\n",
    "name: m\nversion: 1\nsteps:\n  - <<: [*nope]\n",
    "name: m\nversion: 1\n<<: {steps: [{id: a, type: return, value: 1}]}\n",
    "name: m\nversion: 1\nsteps:\n  - {<<: 5, id: a, type: return}\n",
    "a: &a\n  <<: *a\n",
    "- &a [*a, *a]\n",
    "name: &n x\nversion: 1\nsteps:\n  - {id: *n, type: return, value: *n}\n",
)


def _alias_oddity(rng: random.Random) -> tuple[str, str]:
    return "alias-oddity", rng.choice(_ALIAS_ODDITIES)


def _unicode_soup(rng: random.Random) -> tuple[str, str]:
    return "unicode", random_unicode(rng, rng.choice((0, 1, 2, 10, 100, 2000)))


def _json_example(rng: random.Random) -> tuple[str, str]:
    label, text = rng.choice(EXAMPLES)
    data = yaml.safe_load(text)
    encoded = json.dumps(
        data, indent=rng.choice((None, 1, 2)), ensure_ascii=rng.random() < 0.5, sort_keys=True
    )
    choice = rng.random()
    if choice < 0.3:
        return f"json-{label}", encoded
    if choice < 0.5:
        encoded = encoded.replace("1", rng.choice(("NaN", "Infinity", "1e400", "-0", "1" * 400)))
    elif choice < 0.65:
        encoded = encoded.replace('{"', '{"name": "dup", "', 1)
    elif choice < 0.75:
        encoded = encoded[:-1] + ",}"
    return f"json-{label}-mutated", mutate(rng, encoded, rng.randint(0, 3))


_DEGENERATE = (
    "", " ", "\n", "\n\n\n", "\t", "# only a comment\n", "#\n#\n# comments\n", "---\n", "...\n",
    "---\n...\n", "--- \n---\n", "\ufeff", "\ufeffname: x\n", "%YAML 1.2\n---\n",
    "%YAML 1.1\n---\nname: x\n", "%YAML 9.9\n---\n", "%FOO bar\n---\n", "~\n", "null\n",
    "true\n", "0\n", "[]\n", "{}\n", "''\n", '""\n', "- \n", "? \n", ": \n", "name:\n",
    "name: x\nversion: 1\nsteps: []\n", "name: x\nversion: 1\nsteps: {}\n",
    "name: x\nversion: 1\n", "name: x\n---\nname: y\n", "!!binary aGVsbG8=\n",
    "!!set {a, b}\n", "!!omap [a: 1]\n", "!!timestamp 2020-01-01\n", "!<tag:yaml.org,2002:str> x\n",
    "!local x\n", "? [a, b]\n: c\n", "? {a: 1}\n: c\n", "1: a\n", "null: a\n", "true: a\n",
    "[a]: b\n", "a: b\na: c\n", "a:\n  - b\n  c: d\n", "a: 'unterminated\n", 'a: "\\xZZ"\n',
    'a: "\\ud800"\n', 'a: "\\U0010FFFF"\n', 'a: "\\U00110000"\n', "a: |\n  x\n y\n", "a: >-\n",
    "\x00", "name: x\x00\n", "\x1b[31mred\x1b[0m\n", "\u202ename: x\n", "name: x\u2028version: 1\n",
    "{'name': 'x', 'version': 1, 'steps': [{'id': 'a', 'type': 'return'}]}",
    '{"name": "x", "version": 1, "steps": [{"id": "a", "type": "return", "value": NaN}]}',
    '{"name": "x", "version": 1e400, "steps": []}', '{"a": 1, "a": 2}', "{", "[", "}", "]",
    '{"name": "x"', "@x\n", "`x`\n", "a: @b\n", "a: `b`\n", "\ta: b\n", "a:\n\tb: c\n",
)  # fmt: skip


def _degenerate(rng: random.Random) -> tuple[str, str]:
    return "degenerate", rng.choice(_DEGENERATE)


def _long_scalar(rng: random.Random) -> tuple[str, str]:
    length = rng.choice((63, 64, 1000, 10_000, 100_000))
    filler = rng.choice(("a", "é", "😀", "${{ 1 }}", "\\n"))
    value = filler * length
    where = rng.choice(("name", "description", "id", "key", "expression"))
    tail = "steps:\n  - {id: a, type: return, value: 1}\n"
    if where == "name":
        text = f"name: {value}\nversion: 1\n{tail}"
    elif where == "description":
        text = f"name: long\nversion: 1\ndescription: '{value}'\n{tail}"
    elif where == "id":
        text = f"name: long\nversion: 1\nsteps:\n  - {{id: '{value}', type: return}}\n"
    elif where == "key":
        text = f"name: long\nversion: 1\nstate: {{'{value}': 1}}\n{tail}"
    else:
        text = (
            "name: long\nversion: 1\nsteps:\n"
            f"  - {{id: a, type: return, value: \"${{{{ '{value}' }}}}\"}}\n"
        )
    return f"long-{where}-{length}", text


def _random_step_soup(rng: random.Random) -> tuple[str, str]:
    lines = ["name: soup", f"version: {rng.choice(('1', rng.choice(NUMBERS)))}", "steps:"]
    for index in range(rng.randint(1, 12)):
        fields = {"id": f"s{index}", "type": rng.choice(WORDS[45:56])}
        for _ in range(rng.randint(0, 5)):
            value = rng.choice(
                (rng.choice(NUMBERS), rng.choice(WORDS), rng.choice(YAML_BITS), "[]", "{}")
            )
            fields[rng.choice(WORDS)] = json.dumps(value) if rng.random() < 0.5 else value
        body = ", ".join(f"{key}: {value}" for key, value in fields.items())
        lines.append(f"  - {{{body}}}")
    return "step-soup", "\n".join(lines) + "\n"


CRAFTED: tuple[Callable[[random.Random], tuple[str, str]], ...] = (
    _deep_flow,
    _deep_block,
    _deep_steps,
    _deep_expression,
    _huge_numbers,
    _huge_numbers,
    _alias_bomb,
    _alias_oddity,
    _unicode_soup,
    _json_example,
    _json_example,
    _degenerate,
    _degenerate,
    _long_scalar,
    _random_step_soup,
    _random_step_soup,
)


def heavy_documents() -> list[tuple[str, str]]:
    """The few slow documents: near and over the 1 MiB limit, and the deepest nestings."""
    hello = dict(EXAMPLES)["hello.yaml"]
    padding = MAX_TEXT - len(hello)
    at_limit = hello + "#" + "x" * (padding - 2) + "\n"
    assert len(at_limit) == MAX_TEXT
    step = "  - {id: s%05d, type: set_state, set: {k%05d: '%s'}}\n"
    many_steps = "name: many\nversion: 1\nsteps:\n"
    count = 0
    while len(many_steps) < MAX_TEXT - 400:
        many_steps += step % (count, count, "v" * 300)
        count += 1
    laughs = ["name: lol", "version: 1", "state:", "  l0: &l0 lol"]
    for level in range(1, 10):
        laughs.append(f"  l{level}: &l{level} [{', '.join([f'*l{level - 1}'] * 10)}]")
    laughs += ["steps:", "  - {id: done, type: return, value: *l9}"]
    big_json = json.dumps(
        {
            "name": "big-json",
            "version": 1,
            "state": {f"k{index}": "v" * 100 for index in range(9000)},
            "steps": [{"id": "done", "type": "return", "value": 1}],
        }
    )
    return [
        ("at-limit", at_limit),
        ("over-limit", at_limit + "\n"),
        ("twice-the-limit", at_limit * 2),
        ("many-steps", many_steps),
        ("many-steps-over", many_steps + "#" * (MAX_TEXT - len(many_steps) + 1)),
        ("big-json", big_json),
        ("flow-100000", "[" * 100_000),
        ("flow-closed-100000", "[" * 100_000 + "]" * 100_000),
        ("map-100000", "{a: " * 100_000 + "}" * 100_000),
        ("json-100000", '{"a": ' * 100_000 + "1" + "}" * 100_000),
        ("block-seq-100000", "- " * 100_000 + "x\n"),
        ("block-map-1400", "".join(" " * level + "a:\n" for level in range(1400))),
        ("billion-laughs", "\n".join(laughs) + "\n"),
        ("one-long-line", "name: " + "a" * (MAX_TEXT - 10) + "\n"),
        ("many-lines", "\n" * (MAX_TEXT - 1) + "a: b"),
        ("many-keys", "".join(f"k{index}: {index}\n" for index in range(100_000))[:MAX_TEXT]),
    ]


def fuzz_document(rng: random.Random) -> tuple[str, str]:
    """One document: a mutated example (two times in three) or a crafted one."""
    if rng.random() < 0.66:
        label, text = rng.choice(EXAMPLES)
        rounds = rng.choice((1, 1, 1, 2, 2, 3, 4, 6, 10))
        return f"mutated-{label}", mutate(rng, text, rounds)
    return rng.choice(CRAFTED)(rng)


def fuzz_documents(rng: random.Random, count: int) -> Iterator[tuple[str, str]]:
    """``count`` documents (label, text), heavy ones included when ``count`` allows."""
    heavy = heavy_documents() if count >= 1000 else []
    yield from heavy
    for _ in range(count - len(heavy)):
        yield fuzz_document(rng)


# -- checking answers --------------------------------------------------------------------------


@dataclass
class Tally:
    """What the fuzzing saw: calls by outcome, and every broken property."""

    cases: int = 0
    calls: Counter[str] = field(default_factory=Counter)
    faults: list[tuple[str, int, str]] = field(default_factory=list)
    """(kind, size of the input, description) of each broken property."""

    def fault(self, label: str, text: str, what: str) -> None:
        shown = text if len(text) <= 300 else f"{text[:300]!r}... ({len(text):,} characters)"
        kind = what.split(":", 1)[0]
        self.faults.append((kind, len(text), f"[{label}] {what}\n    input: {shown!r}"))

    @property
    def internal(self) -> int:
        return sum(n for key, n in self.calls.items() if key.endswith(("INTERNAL", "UNKNOWN")))

    def summary(self, what: str) -> str:
        codes = ", ".join(f"{key}={n}" for key, n in sorted(self.calls.items()))
        return (
            f"{what}: {self.cases} cases, {self.internal} INTERNAL/UNKNOWN, "
            f"{len(self.faults)} faults; calls: {codes}"
        )

    def verdict(self) -> str:
        """Each kind of fault: how often, and its three smallest inputs."""
        kinds = Counter(kind for kind, _, _ in self.faults)
        out = []
        for kind, count in kinds.most_common():
            out.append(f"== {kind} ({count} cases); the smallest inputs:")
            smallest = sorted((size, shown) for k, size, shown in self.faults if k == kind)
            out += [shown for _, shown in smallest[:3]]
        return "\n".join(out)


def _line_count(text: str) -> int:
    return 1 + sum(text.count(mark) for mark in LINE_BREAKS)


def check_validation(
    tally: Tally, label: str, text: str, answer: definitions_pb.ValidateDefinitionResponse
) -> None:
    """The properties of one ValidateDefinition answer."""
    lines = _line_count(text)
    for problem in answer.problems:
        if problem.line < 1 or problem.column < 1 or not problem.message.strip():
            tally.fault(label, text, f"unlocated or empty problem: {problem}")
        elif problem.line > lines + 1:  # the end of the text may be one line further
            tally.fault(label, text, f"problem past the end of the text ({lines}): {problem}")
    if answer.valid:
        if any(not p.warning for p in answer.problems):
            tally.fault(label, text, "valid, yet with an error among its problems")
        if not answer.name or answer.version < 1 or not HASH.fullmatch(answer.content_hash):
            tally.fault(label, text, f"valid without name, version or hash: {answer}")
    elif not any(not p.warning for p in answer.problems):
        tally.fault(label, text, "invalid without any error")


def check_refusal(
    tally: Tally,
    label: str,
    text: str,
    method: str,
    error: grpc.aio.AioRpcError,
    allowed: frozenset[grpc.StatusCode] | None = None,
) -> Any:
    """A failed call: never INTERNAL/UNKNOWN, typed (in ``allowed``), with an ErrorInfo."""
    code = error.code()
    tally.calls[f"{method}:{code.name}"] += 1
    if code in FORBIDDEN or (allowed is not None and code not in allowed):
        tally.fault(label, text, f"{method} ended with {code.name}: {error.details()}")
        return None
    try:
        status = rich_status(error)
        info = error_info(status)
    except AssertionError as missing:
        tally.fault(label, text, f"{method} {code.name} without an ErrorInfo: {missing}")
        return None
    if not info.reason or info.domain != "engine":
        tally.fault(label, text, f"{method} {code.name} with an empty ErrorInfo: {info}")
    return status


_NAME_LINE = re.compile(r"(?m)^name:[ \t]*([a-z0-9][a-z0-9-]{0,40})[ \t]*$")


def _renamed(text: str) -> str:
    """``text`` with its plain top-level name made unique (if it has one)."""
    suffix = uuid.uuid4().hex[:8]
    return _NAME_LINE.sub(lambda m: f"name: {m.group(1)}-{suffix}", text, count=1)


def _calls_only(details: str) -> bool:
    """Whether every problem of a refused registration is one of its call steps'."""
    lines = [line for line in details.splitlines() if line.strip()]
    return bool(lines) and all(CALL_PROBLEM.search(line) for line in lines)


async def fuzz_definition(
    tally: Tally,
    stub: definitions_grpc.DefinitionServiceStub,
    auth: Any,
    label: str,
    text: str,
    *,
    register: bool,
    source: str = "",
) -> None:
    """Validate (and maybe register) one document, checking every property."""
    tally.cases += 1
    if register:
        text = _renamed(text)
    try:
        answer = await stub.ValidateDefinition(
            definitions_pb.ValidateDefinitionRequest(yaml=text, source=source), metadata=auth
        )
    except grpc.aio.AioRpcError as error:
        tally.calls[f"Validate:{error.code().name}"] += 1
        tally.fault(
            label, text, f"ValidateDefinition ended with {error.code().name}: {error.details()}"
        )
        return
    tally.calls[f"Validate:{'valid' if answer.valid else 'invalid'}"] += 1
    check_validation(tally, label, text, answer)
    if not register:
        return
    try:
        registered = await stub.RegisterDefinition(
            definitions_pb.RegisterDefinitionRequest(yaml=text), metadata=auth
        )
    except grpc.aio.AioRpcError as error:
        allowed = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.ALREADY_EXISTS})
        status = check_refusal(tally, label, text, "Register", error, allowed)
        if status is None:
            return
        if error.code() == grpc.StatusCode.INVALID_ARGUMENT:
            # Offline validation cannot see the org's registry: what a call step asks of the
            # definition it calls is checked at registration only.
            if answer.valid and text and not _calls_only(error.details() or ""):
                tally.fault(label, text, f"valid, yet refused to register: {error.details()}")
            try:
                violations = detail(status, error_details_pb2.BadRequest).field_violations
            except AssertionError as missing:
                tally.fault(label, text, f"Register INVALID_ARGUMENT without BadRequest: {missing}")
                return
            for violation in violations:
                located = VIOLATION.match(violation.description)
                wanted_unlocated = not text and violation.description == "is required"
                if not violation.field or not (located or wanted_unlocated):
                    tally.fault(label, text, f"unlocated field violation {violation}")
                elif located and min(int(located[1]), int(located[2])) < 1:
                    tally.fault(label, text, f"field violation before line 1: {violation}")
        return
    tally.calls["Register:OK"] += 1
    if not answer.valid:
        tally.fault(label, text, "invalid, yet it registered")
    elif registered.definition.content_hash != answer.content_hash:
        tally.fault(label, text, "registered under another hash than ValidateDefinition's")


async def gather_bounded(jobs: Iterator[Awaitable[None]], limit: int = CONCURRENCY) -> None:
    """Await every job, ``limit`` at a time."""
    pending: set[asyncio.Future[None]] = set()
    for job in jobs:
        if len(pending) >= limit:
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        pending.add(asyncio.ensure_future(job))
    if pending:
        await asyncio.gather(*pending)


# -- definitions: the bulk ---------------------------------------------------------------------


@pytest.mark.timeout(600)
async def test_ten_thousand_fuzzed_definitions_never_end_in_internal(
    kit: ControlPlaneKit, definitions: definitions_grpc.DefinitionServiceStub
) -> None:
    rng = random.Random(SEED)
    tally = Tally()
    auth = kit.auth()

    def jobs() -> Iterator[Awaitable[None]]:
        for label, text in fuzz_documents(rng, BULK_DOCUMENTS):
            register = len(text) < 200_000 and rng.random() < REGISTER_SHARE
            source = rng.choice(SOURCES) if rng.random() < 0.1 else ""
            yield fuzz_definition(
                tally, definitions, auth, label, text, register=register, source=source
            )

    await gather_bounded(jobs())

    print("\n" + tally.summary("definitions (bulk)"))
    assert tally.cases >= 10_000
    if tally.internal or tally.faults:
        raise AssertionError(tally.verdict())
    assert tally.calls["Validate:valid"] > 0 and tally.calls["Validate:invalid"] > 0
    assert tally.calls["Register:OK"] > 0 and tally.calls["Register:INVALID_ARGUMENT"] > 0


# -- definitions: hypothesis, to shrink what fails ---------------------------------------------

_OPS = st.one_of(
    st.tuples(st.just("insert"), st.floats(0, 1), st.sampled_from(CONTROL + ODD_UNICODE)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.sampled_from(YAML_BITS)),
    st.tuples(
        st.just("insert"),
        st.floats(0, 1),
        st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=6),
    ),
    st.tuples(st.just("number"), st.floats(0, 1), st.sampled_from(NUMBERS)),
    st.tuples(
        st.just("number"),
        st.floats(0, 1),
        st.sampled_from((19, 20, 309, 310, 4300, 4301, 6000)).map(lambda n: "9" * n),
    ),
    st.tuples(st.just("breaks"), st.just(0.0), st.sampled_from(LINE_BREAKS + ("\r\n",))),
    st.tuples(st.just("word"), st.floats(0, 1), st.sampled_from(WORDS)),
    st.tuples(st.just("delete_line"), st.floats(0, 1), st.just("")),
    st.tuples(st.just("duplicate_line"), st.floats(0, 1), st.floats(0, 1).map(str)),
    st.tuples(st.just("indent"), st.floats(0, 1), st.sampled_from(("+2", "-2", "+1", "\t"))),
    st.tuples(st.just("truncate"), st.floats(0, 1), st.just("")),
)


def _at(position: float, size: int) -> int:
    return min(size, int(position * (size + 1)))


def apply_ops(text: str, ops: list[tuple[str, float, str]]) -> str:
    """Apply hypothesis-drawn edits (positions are fractions of the text, so they shrink)."""
    for op, position, payload in ops:
        lines = text.split("\n")
        line = _at(position, len(lines) - 1)
        if op == "insert":
            at = _at(position, len(text))
            text = text[:at] + payload + text[at:]
        elif op in ("number", "word"):
            pattern = _NUMBER if op == "number" else _WORD
            found = list(pattern.finditer(text))
            if found:
                match = found[_at(position, len(found) - 1)]
                text = text[: match.start()] + payload + text[match.end() :]
        elif op == "breaks":
            text = text.replace("\n", payload)
        elif op == "delete_line":
            del lines[line]
            text = "\n".join(lines)
        elif op == "duplicate_line":
            lines.insert(_at(float(payload), len(lines)), lines[line])
            text = "\n".join(lines)
        elif op == "indent":
            stripped = lines[line].lstrip(" ")
            indent = len(lines[line]) - len(stripped)
            if payload == "\t":
                lines[line] = "\t" + stripped
            else:
                lines[line] = " " * max(0, indent + int(payload)) + stripped
            text = "\n".join(lines)
        else:
            text = text[: _at(position, len(text))]
    return text


@settings(
    max_examples=250,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    example=st.sampled_from(sorted(dict(EXAMPLES))),
    ops=st.lists(_OPS, min_size=1, max_size=6),
    register=st.booleans(),
)
async def test_hypothesis_mutated_examples_never_end_in_internal(
    kit: ControlPlaneKit,
    definitions: definitions_grpc.DefinitionServiceStub,
    example: str,
    ops: list[tuple[str, float, str]],
    register: bool,
) -> None:
    tally = Tally()
    text = apply_ops(dict(EXAMPLES)[example], ops)
    await fuzz_definition(
        tally, definitions, kit.auth(), f"hypothesis-{example}", text, register=register
    )
    if tally.faults:
        raise AssertionError(tally.verdict())


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    text=st.one_of(
        st.text(st.characters(exclude_categories=("Cs",)), max_size=300),
        st.recursive(
            st.one_of(
                st.none(),
                st.booleans(),
                st.integers(),
                st.floats(),
                st.text(st.characters(exclude_categories=("Cs",)), max_size=20),
            ),
            lambda inner: st.one_of(
                st.lists(inner, max_size=4),
                st.dictionaries(st.sampled_from(WORDS), inner, max_size=4),
            ),
            max_leaves=20,
        ).map(lambda data: json.dumps(data, allow_nan=True)),
    )
)
async def test_hypothesis_arbitrary_text_never_ends_in_internal(
    kit: ControlPlaneKit, definitions: definitions_grpc.DefinitionServiceStub, text: str
) -> None:
    tally = Tally()
    await fuzz_definition(tally, definitions, kit.auth(), "hypothesis-text", text, register=False)
    if tally.faults:
        raise AssertionError(tally.verdict())


# -- runs ---------------------------------------------------------------------------------------

QUERY_FIELDS = (
    "WorkflowId", "RunId", "WorkflowType", "ParentWorkflowId", "StartTime", "CloseTime",
    "ExecutionTime", "ExecutionStatus", "TemporalScheduledById", "TemporalScheduledStartTime",
    "EngineStatus", "EngineStep", "EngineDefinition", "EngineOrg", "CustomKeywordField",
    "BogusField", "workflowid",
)  # fmt: skip
QUERY_VALUES = (
    "'x'", "'Running'", "'Completed'", "'running'", "'2026-01-01'", "'2026-01-01T00:00:00Z'",
    "'not a date'", "'9999-99-99'", "'-1'", "''", "'''", "'\\''", '"x"', "1", "-1", "1.5",
    "99999999999999999999999999", "-0.0", "'a' OR 1=1", "'\x00'", "'\u202e'", "'%'", "'_'",
    "'" + "x" * 1500 + "'", "'acme'", "'globex'", "NULL", "'hello:1'",
)  # fmt: skip
QUERY_OPS = ("=", "!=", ">", ">=", "<", "<=", "IN", "NOT IN", "STARTS_WITH", "IS", "IS NOT")


def random_query(rng: random.Random) -> str:
    """A visibility query: well-formed, nearly so, or garbage."""
    choice = rng.random()
    if choice < 0.1:
        return random_unicode(rng, rng.randint(0, 60))
    if choice < 0.15:
        return "(" * rng.randint(1, 40) + "WorkflowId = 'x'" + ")" * rng.randint(0, 40)
    if choice < 0.2:
        return _text_from(rng, (YAML_BITS, CONTROL, QUERY_OPS), rng.randint(1, 20))
    if choice < 0.22:
        return "WorkflowId = 'x' AND " * rng.randint(50, 200) + "WorkflowId = 'y'"
    clauses = []
    for _ in range(rng.randint(1, 4)):
        name, op = rng.choice(QUERY_FIELDS), rng.choice(QUERY_OPS)
        if op.endswith("IN"):
            values = ", ".join(rng.choice(QUERY_VALUES) for _ in range(rng.randint(0, 3)))
            clauses.append(f"{name} {op} ({values})")
        elif op.startswith("IS"):
            clauses.append(f"{name} {op} {rng.choice(('NULL', 'null', 'x', ''))}")
        else:
            clauses.append(f"{name} {op} {rng.choice(QUERY_VALUES)}")
    query = f" {rng.choice(('AND', 'OR', 'and', '&&', ''))} ".join(clauses)
    if rng.random() < 0.3:
        query = mutate(rng, query, 1)
    if rng.random() < 0.1:
        query += rng.choice((" ORDER BY StartTime", " LIMIT 1", ";", " --", " /*"))
    return query


def random_id(rng: random.Random) -> str:
    """A workflow, run, action or request id: empty, plausible, long or strange."""
    choice = rng.random()
    if choice < 0.1:
        return ""
    if choice < 0.3:
        return unique("fuzz")
    if choice < 0.4:
        return str(uuid.uuid4())
    if choice < 0.5:
        return "x" * rng.choice((255, 256, 1000, 1001, 5000, 100_000))
    if choice < 0.6:
        return _text_from(rng, (CONTROL, ODD_UNICODE), rng.randint(1, 10))
    if choice < 0.7:
        return rng.choice((" ", "/", "..", "*", "%", "'", "acme/x", "\x00", "-", "a:b", "\n"))
    return random_unicode(rng, rng.randint(1, 40))


def random_json(rng: random.Random, depth: int = 0) -> Any:
    """JSON-ish data for a Struct: NaN and infinities included, deep sometimes."""
    choice = rng.random()
    if depth < 6 and choice < 0.25:
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if depth < 6 and choice < 0.45:
        return {random_id(rng)[:50]: random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    leaf = rng.random()
    if leaf < 0.1:
        return None
    if leaf < 0.2:
        return rng.random() < 0.5
    if leaf < 0.45:
        return rng.choice(
            (
                math.nan,
                math.inf,
                -math.inf,
                0.0,
                -0.0,
                1e308,
                5e-324,
                2.0**63,
                2.0**53 + 1,
                -1.0,
                1.5,
                float(rng.randint(-(10**6), 10**6)),
            )
        )
    if leaf < 0.55:
        return "x" * rng.choice((1000, 100_000))
    return random_id(rng)


def _value(data: Any) -> struct_pb2.Value:
    """A Value holding ``data`` (Struct.update cannot take a bare NaN, a Value can)."""
    value = struct_pb2.Value()
    if data is None:
        value.null_value = struct_pb2.NULL_VALUE
    elif isinstance(data, bool):
        value.bool_value = data
    elif isinstance(data, float):
        value.number_value = data
    elif isinstance(data, str):
        value.string_value = data
    elif isinstance(data, list):
        value.list_value.values.extend(_value(item) for item in data)
    else:
        for key, item in data.items():
            value.struct_value.fields[key].CopyFrom(_value(item))
    return value


def random_struct(rng: random.Random) -> struct_pb2.Struct:
    choice = rng.random()
    data: Any
    if choice < 0.3:
        data = {"n": random_json(rng)}
    elif choice < 0.4:
        data = {"n": rng.choice((1.0, 2.0**63, -(2.0**63), 1e308, math.nan, math.inf))}
    elif choice < 0.45:
        # As deep as the Python runtime builds (deeper ones go as bytes: see deep_request).
        nested: Any = 1.0
        for _ in range(rng.choice((5, 10, 20))):
            nested = {"a": nested} if rng.random() < 0.5 else [nested]
        data = {"n": nested}
    else:
        data = random_json(rng)
        if not isinstance(data, dict):
            data = {"n": data}
    return _value(data).struct_value


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def deep_value_bytes(depth: int, lists: bool) -> bytes:
    """A google.protobuf.Value nested ``depth`` lists (or structs) deep, encoded by hand.

    The Python protobuf runtime refuses to build (or parse) messages nested past its recursion
    limit, so a client in another language is the only one to send these: the bytes stand in.
    """
    value = _varint(2 << 3 | 1) + struct.pack("<d", 1.0)  # number_value: 1.0
    for _ in range(depth):
        if lists:
            value = _field(6, _field(1, value))  # list_value { values: ... }
        else:
            value = _field(5, _field(1, _field(1, b"a") + _field(2, value)))  # struct_value
    return value


def deep_request(rng: random.Random, targets: Targets) -> tuple[str, int, bytes]:
    """A StartWorkflow or SubmitResult request, as bytes, with a deeply nested Struct/Value."""
    depth = rng.choice((48, 49, 50, 51, 60, 99, 100, 101, 1000))
    value = deep_value_bytes(depth, rng.random() < 0.5)
    if rng.random() < 0.5:
        inputs = _field(1, _field(1, b"n") + _field(2, value))  # Struct { fields { n: ... } }
        body = _field(2, quick_yaml(unique("deep")).encode()) + _field(4, inputs)
        return "StartWorkflow", depth, body
    body = _field(1, rng.choice(targets.waiting).encode()) + _field(3, b"ask") + _field(4, value)
    return "SubmitResult", depth, body


def random_token(rng: random.Random) -> str:
    choice = rng.random()
    if choice < 0.3:
        return ""
    if choice < 0.6:
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
        return base64.urlsafe_b64encode(raw).decode()
    if choice < 0.7:
        return base64.urlsafe_b64encode(str(rng.randint(-5, 10**6)).encode()).decode()
    return random_id(rng)[:500]


@dataclass
class Targets:
    """What the run calls aim at, besides random ids: real definitions and waiting runs."""

    quick: str
    ask: str
    waiting: list[str]


async def _targets(
    kit: ControlPlaneKit,
    definitions: definitions_grpc.DefinitionServiceStub,
    workflows: workflows_grpc.WorkflowServiceStub,
) -> Targets:
    quick, ask = unique("fuzz-quick"), unique("fuzz-ask")
    for text in (quick_yaml(quick), ask_yaml(ask)):
        await definitions.RegisterDefinition(
            definitions_pb.RegisterDefinitionRequest(yaml=text), metadata=kit.auth()
        )
    waiting = []
    for _ in range(8):
        started = await workflows.StartWorkflow(
            workflows_pb.StartWorkflowRequest(definition_name=ask, workflow_id=unique("wait")),
            metadata=kit.auth(),
        )
        waiting.append(started.workflow_id)
    return Targets(quick, ask, waiting)


RawCall = Callable[[str, bytes], Awaitable[Any]]


def raw_caller(channel: grpc.aio.Channel, auth: Any) -> RawCall:
    """Send bytes as a WorkflowService method's request (the answer comes back as bytes)."""

    def send(method: str, body: bytes) -> Awaitable[Any]:
        return channel.unary_unary(f"/engine.api.v1.WorkflowService/{method}")(body, metadata=auth)

    return send


def random_run_call(
    rng: random.Random,
    stub: workflows_grpc.WorkflowServiceStub,
    raw: RawCall,
    targets: Targets,
    auth: Any,
) -> tuple[str, str, Callable[[], Awaitable[Any]]]:
    """One random WorkflowService call: (method, what it sends, how to make it)."""
    choice = rng.random()
    suspension = hasattr(EngineWorkflow, "await_suspension") and rng.random() < 0.2
    if choice < 0.04:
        method, depth, body = deep_request(rng, targets)
        shown = f"{method} request with a Value nested {depth} deep ({len(body):,} bytes)"
        return f"{method}(deep)", shown, lambda: raw(method, body)
    if choice < 0.3:
        fields: dict[str, Any] = {}
        which = rng.random()
        if which < 0.3:
            fields["definition_name"] = rng.choice((targets.quick, targets.ask))
        elif which < 0.5:
            fields["definition_name"] = random_id(rng)[:300]
        elif which < 0.7:
            fields["definition_yaml"] = quick_yaml(unique("inline"))
        elif which < 0.85:
            fields["definition_yaml"] = fuzz_document(rng)[1][:50_000]
        if rng.random() < 0.3:
            fields["definition_version"] = rng.choice((1, 2, -1, 2**63 - 1, -(2**63)))
        request = workflows_pb.StartWorkflowRequest(
            inputs=random_struct(rng),
            workflow_id=random_id(rng) if rng.random() < 0.6 else "",
            request_id=random_id(rng) if rng.random() < 0.3 else "",
            wait_for_suspension=suspension,
            **fields,
        )
        return "Start", str(request)[:2000], lambda: stub.StartWorkflow(request, metadata=auth)
    if choice < 0.5:
        get = workflows_pb.GetWorkflowRequest(
            workflow_id=rng.choice(targets.waiting) if rng.random() < 0.3 else random_id(rng),
            run_id=random_id(rng) if rng.random() < 0.5 else "",
        )
        return "Get", str(get)[:2000], lambda: stub.GetWorkflow(get, metadata=auth)
    if choice < 0.75:
        listing = workflows_pb.ListWorkflowsRequest(
            query=random_query(rng),
            status=rng.choice((0, 1, 2, 3, 4, 5, 6, 7, 99, -1, 2**31 - 1)),
            definition_name=rng.choice(("", targets.quick, random_id(rng)[:300])),
            include_children=rng.random() < 0.5,
            page_size=rng.choice((0, 0, 1, 10, 1000, 1001, -1, 2**31 - 1)),
            page_token=random_token(rng),
        )
        return "List", str(listing)[:2000], lambda: stub.ListWorkflows(listing, metadata=auth)
    target: dict[str, str] = {}
    which = rng.random()
    if which < 0.4:
        target["step_id"] = rng.choice(("ask", "done", random_id(rng)))
    elif which < 0.8:
        target["action_id"] = random_id(rng)
    result = _value(random_json(rng)) if rng.random() < 0.8 else None
    submit = workflows_pb.SubmitResultRequest(
        workflow_id=rng.choice(targets.waiting) if rng.random() < 0.5 else random_id(rng),
        result=result,
        error=random_id(rng) if rng.random() < 0.2 else "",
        request_id=random_id(rng) if rng.random() < 0.3 else "",
        **target,
    )
    return "Submit", str(submit)[:2000], lambda: stub.SubmitResult(submit, metadata=auth)


async def fuzz_run_call(tally: Tally, method: str, shown: str, make: Callable[[], Any]) -> None:
    tally.cases += 1
    try:
        await make()
    except grpc.aio.AioRpcError as error:
        check_refusal(tally, method, shown, method, error)
        return
    tally.calls[f"{method}:OK"] += 1


@pytest.mark.timeout(300)
async def test_run_calls_with_random_ids_queries_and_inputs_never_end_in_internal(
    kit: ControlPlaneKit,
    definitions: definitions_grpc.DefinitionServiceStub,
    workflows: workflows_grpc.WorkflowServiceStub,
) -> None:
    rng = random.Random(SEED + 1)
    targets = await _targets(kit, definitions, workflows)
    tally = Tally()
    auth = kit.auth()
    raw = raw_caller(kit.channel(), auth)

    def jobs() -> Iterator[Awaitable[None]]:
        for _ in range(WORKFLOW_CALLS):
            yield fuzz_run_call(tally, *random_run_call(rng, workflows, raw, targets, auth))

    await gather_bounded(jobs(), limit=16)

    print("\n" + tally.summary("run calls"))
    if tally.internal or tally.faults:
        raise AssertionError(tally.verdict())
    for method in ("Start", "Get", "List", "Submit"):
        assert tally.calls[f"{method}:OK"] > 0, f"no {method} call succeeded: {tally.summary('')}"


ODD_VALUES = (
    "'\\ud800'",
    "'a\\udfffb'",
    "fromJSON('\"\\\\udbff\"')",
    "{ '\\ud800': 1 }",
    "['\\udc00']",
    "'\\u0000'",
    "'\\u202e\\u2028\\ufeff\\u0085'",
    "range(10000)",
    "join(range(10000), 'é')",
    "[" * 30 + "1" + "]" * 30,
    "[" * 50 + "1" + "]" * 50,
    "[" * 63 + "1" + "]" * 63,
    "{ 'a': " * 40 + "1" + " }" * 40,
    "{ 'a': " * 63 + "1" + " }" * 63,
    "fromJSON('" + "[" * 200 + "]" * 200 + "')",
    "9223372036854775807",
    "-9223372036854775807 - 1",
    "1.7976931348623157e308",
    "5e-324",
    "-0.0",
    "format('{0}', '\\ud800')",
    "toJSON('\\ud800')",
    "string(range(10000))",
)
"""Values a run can hold (in its state, in an action's message) that the API must carry."""


def _holding(name: str, source: str) -> str:
    value = json.dumps("${{ " + source + " }}", ensure_ascii=False)
    message = json.dumps("${{ string(state.v) }}", ensure_ascii=False)
    return (
        f"name: {name}\nversion: 1\nsteps:\n"
        f"  - {{id: hold, type: set_state, set: {{v: {value}}}}}\n"
        f"  - {{id: ask, type: prompt, prompt_type: text, message: {message}, output_to: t}}\n"
        '  - {id: done, type: return, value: "${{ state.v }}"}\n'
    )


async def _read_back(
    tally: Tally, stub: workflows_grpc.WorkflowServiceStub, auth: Any, source: str
) -> None:
    """Start a run that holds ``source``'s value, then read it every way the API offers."""
    shown = f"a run holding ${{{{ {source} }}}}"
    text = _holding(unique("odd"), source)
    workflow_id = unique("odd-run")
    await fuzz_run_call(
        tally,
        "Start",
        shown,
        lambda: stub.StartWorkflow(
            workflows_pb.StartWorkflowRequest(
                definition_yaml=text,
                workflow_id=workflow_id,
                wait_for_suspension=hasattr(EngineWorkflow, "await_suspension"),
            ),
            metadata=auth,
        ),
    )

    async def first_watched() -> Any:
        stream = stub.WatchWorkflow(
            workflows_pb.WatchWorkflowRequest(workflow_id=workflow_id), metadata=auth
        )
        try:
            return await stream.read()
        finally:
            stream.cancel()

    reads: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        (
            "Get",
            lambda: stub.GetWorkflow(
                workflows_pb.GetWorkflowRequest(workflow_id=workflow_id), metadata=auth
            ),
        ),
        (
            "Pending",
            lambda: stub.ListPendingActions(
                workflows_pb.ListPendingActionsRequest(workflow_id=workflow_id), metadata=auth
            ),
        ),
        ("Watch", first_watched),
        (
            "Submit",
            lambda: stub.SubmitResult(
                workflows_pb.SubmitResultRequest(
                    workflow_id=workflow_id, step_id="ask", result=_value("ok")
                ),
                metadata=auth,
            ),
        ),
        (
            "Get",
            lambda: stub.GetWorkflow(
                workflows_pb.GetWorkflowRequest(workflow_id=workflow_id), metadata=auth
            ),
        ),
    ]
    for method, make in reads:  # in order: the submission moves the run on
        await fuzz_run_call(tally, method, shown, make)


async def test_runs_holding_odd_values_are_read_back_without_internal(
    kit: ControlPlaneKit, workflows: workflows_grpc.WorkflowServiceStub
) -> None:
    tally = Tally()
    auth = kit.auth()
    await asyncio.gather(*(_read_back(tally, workflows, auth, source) for source in ODD_VALUES))

    print("\n" + tally.summary("runs holding odd values"))
    if tally.faults:
        raise AssertionError(tally.verdict())


@settings(
    max_examples=120,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    workflow_id=st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
    run_id=st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
    query=st.text(st.characters(exclude_categories=("Cs",)), max_size=60),
    inputs=st.dictionaries(
        st.text(st.characters(exclude_categories=("Cs",)), max_size=10),
        st.recursive(
            st.one_of(st.none(), st.booleans(), st.floats(), st.text(max_size=10)),
            lambda inner: st.one_of(
                st.lists(inner, max_size=3),
                st.dictionaries(st.text(max_size=5), inner, max_size=3),
            ),
            max_leaves=10,
        ),
        max_size=4,
    ),
)
async def test_hypothesis_run_calls_never_end_in_internal(
    kit: ControlPlaneKit,
    workflows: workflows_grpc.WorkflowServiceStub,
    workflow_id: str,
    run_id: str,
    query: str,
    inputs: dict[str, Any],
) -> None:
    tally = Tally()
    auth = kit.auth()
    struct = _value(inputs).struct_value
    calls: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        (
            "Start",
            lambda: workflows.StartWorkflow(
                workflows_pb.StartWorkflowRequest(
                    definition_yaml=quick_yaml("hypothesis-quick"),
                    inputs=struct,
                    workflow_id=workflow_id,
                ),
                metadata=auth,
            ),
        ),
        (
            "Get",
            lambda: workflows.GetWorkflow(
                workflows_pb.GetWorkflowRequest(workflow_id=workflow_id, run_id=run_id),
                metadata=auth,
            ),
        ),
        (
            "List",
            lambda: workflows.ListWorkflows(
                workflows_pb.ListWorkflowsRequest(query=query), metadata=auth
            ),
        ),
        (
            "Submit",
            lambda: workflows.SubmitResult(
                workflows_pb.SubmitResultRequest(
                    workflow_id=workflow_id, step_id=run_id or "ask", result=_value(inputs)
                ),
                metadata=auth,
            ),
        ),
    ]
    shown = repr((workflow_id, run_id, query, inputs))
    await asyncio.gather(*(fuzz_run_call(tally, m, shown, make) for m, make in calls))
    if tally.faults:
        raise AssertionError(tally.verdict())
