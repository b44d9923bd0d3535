"""``enginectl graph``: a definition as a Mermaid flowchart that GitHub renders.

No Mermaid parser runs offline, so :func:`parse_flowchart` checks the output against the small
subset of Mermaid's flowchart grammar the renderer writes (one statement per line), and the
things Mermaid does to the whole source before it parses (comments, directives, entity codes,
the `direction`/`style` scans) cannot be triggered from a label.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from engine.cli import enginectl_main
from engine.definition import (
    STEP_TYPES,
    ShellStep,
    WorkflowDefinition,
    load_definition,
    load_definition_file,
    mermaid,
)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(
    path for path in (ROOT / "examples").glob("*.yaml") if not path.name.endswith(".test.yaml")
)

# -- a checker for the Mermaid the renderer writes --------------------------------------------

_ID = r"[A-Za-z_][A-Za-z0-9_]*"
# Inside quotes: characters with no meaning to Mermaid, entity codes, and the renderer's <br/>.
_LABEL = r"(?:[A-Za-z0-9 .,:;_\-+=/()\[\]{}'!?@$*^~\\]|#[A-Za-z0-9]+;|<br/>)*"
_SHAPES = {
    "rectangle": (r"\[", r"\]"),
    "diamond": (r"\{", r"\}"),
    "stadium": (r"\(\[", r"\]\)"),
    "circle": (r"\(\(", r"\)\)"),
}
_NODE = re.compile(
    "|".join(
        rf'(?P<{shape}>{opening}"{_LABEL}"{closing})'
        for shape, (opening, closing) in _SHAPES.items()
    )
)
_NODE_LINE = re.compile(rf"\s*(?P<id>{_ID})(?P<shape>.*)")
_SUBGRAPH_LINE = re.compile(rf'\s*subgraph (?P<id>{_ID}) \["(?P<title>{_LABEL})"\]')
_EDGE_LINE = re.compile(
    rf'\s*(?P<source>{_ID}) (?P<arrow>-->|-\.->)(?:\|"(?P<label>{_LABEL})"\|)? (?P<target>{_ID})'
)
_KEYWORDS = {"end", "subgraph", "graph", "flowchart", "style", "class", "classdef", "click"}
_KEYWORDS |= {"call", "href", "linkstyle", "default", "direction", "interpolate"}
# What Mermaid scans the whole source for, labels included (see the renderer's _SCANNED_WORDS).
_SCANNED = re.compile(r"direction\s+(?:TB|BT|RL|LR)|style.*:\S*#.*;|classDef.*:\S*#.*;|%%|`")


def decode(label: str) -> list[str]:
    """A label as the reader sees it: entity codes decoded, one string per line."""
    named = {"quot": '"', "lt": "<", "gt": ">", "amp": "&"}

    def entity(match: re.Match[str]) -> str:
        code = match[1]
        return chr(int(code)) if code.isdigit() else named[code]

    return [re.sub(r"#(\w+);", entity, line) for line in label.split("<br/>")]


@dataclass
class Flowchart:
    """What a flowchart defines: nodes and subgraphs (with their labels) and edges."""

    nodes: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # id -> (shape, lines)
    subgraphs: dict[str, str] = field(default_factory=dict)  # id -> title
    parents: dict[str, str | None] = field(default_factory=dict)  # node or subgraph -> subgraph
    edges: list[tuple[str, str, str | None, str]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    def members(self, subgraph: str) -> set[str]:
        """The nodes inside a subgraph, at any depth."""
        inside = set()
        for node in self.nodes:
            parent = self.parents[node]
            while parent is not None:
                if parent == subgraph:
                    inside.add(node)
                parent = self.parents[parent]
        return inside

    def reachable(self, start: str) -> set[str]:
        """Nodes reachable from ``start``; an edge to a subgraph reaches every node in it."""
        seen = {start}
        todo = [start]
        while todo:
            current = todo.pop()
            for source, _, _, target in self.edges:
                sources = {source} | (self.members(source) if source in self.subgraphs else set())
                if current not in sources:
                    continue
                targets = self.members(target) if target in self.subgraphs else {target}
                for node in targets - seen:
                    seen.add(node)
                    todo.append(node)
        return seen

    def step_nodes(self, step_id: str, step_type: str) -> list[str]:
        """Nodes and subgraphs labelled as the step (``id: type``, then details)."""
        own = f"{step_id}: {step_type}"
        found = [n for n, (_, lines) in self.nodes.items() if lines[0] == own]
        found += [
            s for s, title in self.subgraphs.items() if re.fullmatch(rf"{own}(?:[ ,].*)?", title)
        ]
        return found


def parse_flowchart(source: str) -> Flowchart:
    """Check ``source`` line by line against the flowchart subset the renderer writes."""
    assert source.endswith("\n")
    lines = source.splitlines()
    assert lines[0] == "flowchart TD"
    chart = Flowchart(lines=lines)
    stack: list[str] = []
    for number, line in enumerate(lines[1:], start=2):
        where = f"line {number}: {line!r}"
        assert not _SCANNED.search(line), where
        assert "\t" not in line and "\r" not in line, where
        if line.strip() == "end":
            assert stack, where
            stack.pop()
        elif subgraph := _SUBGRAPH_LINE.fullmatch(line):
            name = subgraph["id"]
            assert name not in chart.nodes and name not in chart.subgraphs, where
            chart.subgraphs[name] = decode(subgraph["title"])[0]
            chart.parents[name] = stack[-1] if stack else None
            stack.append(name)
        elif edge := _EDGE_LINE.fullmatch(line):
            label = decode(edge["label"])[0] if edge["label"] is not None else None
            chart.edges.append((edge["source"], edge["arrow"], label, edge["target"]))
        else:
            node = _NODE_LINE.fullmatch(line)
            assert node, where
            shape = _NODE.fullmatch(node["shape"])
            assert shape and shape.lastgroup, where
            name = node["id"]
            assert name not in chart.nodes and name not in chart.subgraphs, where
            label = shape[shape.lastgroup]
            inner = label[len(_SHAPES[shape.lastgroup][0].replace("\\", "")) + 1 : -1]
            inner = inner[: -len(_SHAPES[shape.lastgroup][1].replace("\\", ""))]
            chart.nodes[name] = (shape.lastgroup, decode(inner))
            chart.parents[name] = stack[-1] if stack else None
    assert not stack, "a subgraph is not closed"
    defined = set(chart.nodes) | set(chart.subgraphs)
    for name in defined:
        assert name.lower() not in _KEYWORDS and name[0] not in "ox", name
    for source, _, _, target in chart.edges:
        assert source in defined and target in defined, (source, target)
    return chart


def check_structure(definition: WorkflowDefinition, chart: Flowchart) -> None:
    """Every step is drawn once, every node is reached, and only known nodes end the flow."""
    assert chart.nodes["wf_start"] == ("stadium", ["start"])
    assert chart.nodes["wf_end"] == ("stadium", ["end"])
    for step in definition.iter_steps():
        assert len(chart.step_nodes(step.id, step.step_type)) == 1, step.id
    reached = chart.reachable("wf_start")
    assert set(chart.nodes) <= reached, set(chart.nodes) - reached
    compensating = set().union(
        *(chart.members(s) for s in chart.subgraphs if s.startswith("comp_"))
    )
    for node in set(chart.nodes) - {"wf_end"} - compensating:
        assert any(source == node for source, *_ in chart.edges), f"{node} leads nowhere"


def edges_from(chart: Flowchart, source: str) -> list[tuple[str | None, str]]:
    return [(label, target) for s, _, label, target in chart.edges if s == source]


def edge_lines(source: str) -> list[str]:
    """The edge statements of a flowchart, in order, unindented."""
    return [line.strip() for line in source.splitlines() if _EDGE_LINE.fullmatch(line)]


# -- every example ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_every_example_renders_every_step_once_and_connects_every_node(path: Path) -> None:
    definition = load_definition_file(path)

    chart = parse_flowchart(mermaid(definition))

    check_structure(definition, chart)
    for step in definition.iter_steps():
        if step.step_type == "condition":
            labels = {label for label, _ in edges_from(chart, f"s_{step.id}")}
            assert labels == {"then", "else"}, step.id
        if step.when is not None:
            labels = {label for label, _ in edges_from(chart, f"when_{step.id}")}
            assert labels == {"true", "skip"}, step.id


def test_the_deploy_example_shows_its_gate_rollout_and_rollback() -> None:
    definition = load_definition_file(ROOT / "examples" / "deploy-service.yaml")

    lines = mermaid(definition).splitlines()

    assert lines[0] == "flowchart TD"
    assert (
        '    s_build["build: shell<br/>make image SERVICE=#quot;$SERVICE#quot; REF=#quot;$G...'
        '<br/>on_error: retry"]'
    ) in lines
    assert (
        '    s_gate{"gate: condition<br/>if inputs.env == #quot;prod#quot; #amp;#amp; '
        '!inputs.dry_run"}'
    ) in lines
    assert '    s_gate -->|"then"| s_approve' in lines
    assert '    s_gate -->|"else"| s_auto_approve' in lines
    assert '    s_rejected -->|"return"| wf_end' in lines
    assert (
        '    subgraph s_rollout ["rollout: foreach inputs.regions as region, max_parallel 2"]'
        in lines
    )
    assert '        s_bake["bake: wait<br/>5m"]' in lines
    assert '    s_canary -.->|"compensate"| comp_canary' in lines
    assert '        subgraph comp_canary ["canary: compensate"]' in lines
    assert '    s_region_done -->|"return"| s_settle' in lines  # ends the item, not the run
    assert '    s_done -->|"return"| wf_end' in lines


# -- every construct ----------------------------------------------------------------------------

EVERY_CONSTRUCT = """\
name: all-shapes
version: 1
inputs:
  region: {type: string, default: eu}
steps:
  - id: prepare
    type: shell
    command: make prepare
    compensate:
      - {id: undo_prepare, type: shell, command: make clean}
  - id: poll
    type: loop
    until: state.status.done
    max_iterations: 5
    steps:
      - {id: check, type: mcp_call, server: ci, tool: status, output_to: status}
      - id: failed
        type: condition
        if: state.status.failed
        then:
          - {id: give_up, type: break}
      - {id: pause, type: wait, duration: 30s}
  - id: fan
    type: parallel
    on_branch_error: wait_all
    branches:
      docs:
        - {id: build_docs, type: shell, command: make docs}
      tests:
        - {id: unit, type: shell, command: make test, on_error: continue}
        - {id: lint, type: shell, command: make lint}
  - id: guarded
    type: try
    steps:
      - {id: deploy, type: delegate, agent: "@deployer", instruction: deploy it}
    catch:
      - {id: report, type: prompt, prompt_type: info, message: "failed: ${{ error.message }}"}
    finally:
      - {id: cleanup, type: shell, command: make cleanup}
  - id: each
    type: foreach
    items: '["a", "b"]'
    as: region
    max_parallel: 3
    steps:
      - {id: skip_b, type: return, when: 'region == "b"', value: skipped}
      - {id: apply, type: shell, command: ./apply.sh}
  - id: stop
    type: return
    when: inputs.region == "none"
    value: stopped
  - id: done
    type: set_state
    set: {finished: true}
"""


@pytest.fixture
def write(tmp_path: Path):
    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


def test_every_construct_draws_its_nodes_subgraphs_and_edges() -> None:
    definition = load_definition(EVERY_CONSTRUCT, "all.yaml")

    source = mermaid(definition)
    lines = source.splitlines()

    check_structure(definition, parse_flowchart(source))
    assert edge_lines(source) == [
        # the start, then a step and its compensate block, reached by a dotted edge
        "wf_start --> s_prepare",
        's_prepare -.->|"compensate"| comp_prepare',
        # the loop: in at its first step, a back edge with until and max_iterations, out
        # after its last step; a break leaves for what follows the loop
        "s_prepare --> s_check",
        "s_check --> s_failed",
        's_failed -->|"then"| s_give_up',
        's_failed -->|"else"| s_pause',
        's_pause -->|"until state.status.done, max_iterations 5"| s_check',
        "s_pause --> s_fan",
        's_give_up -->|"break"| s_fan',
        # parallel: a fork into each branch's lane, and a join after them
        "s_fan --> s_build_docs",
        "s_fan --> s_unit",
        "s_unit --> s_lint",
        "s_build_docs --> join_fan",
        "s_lint --> join_fan",
        # try: the body, a dashed edge into catch on failure, both into finally
        "join_fan --> s_deploy",
        's_guarded -.->|"on failure"| catch_guarded',
        "s_deploy --> s_cleanup",
        "s_report --> s_cleanup",
        # foreach: a return ends the item, so it leaves the foreach
        "s_cleanup --> when_skip_b",
        'when_skip_b -->|"true"| s_skip_b',
        'when_skip_b -->|"skip"| s_apply',
        "s_apply --> when_stop",
        's_skip_b -->|"return"| when_stop',
        # a return at the top ends the run
        'when_stop -->|"true"| s_stop',
        's_stop -->|"return"| wf_end',
        'when_stop -->|"skip"| s_done',
        "s_done --> wf_end",
    ]
    for definition_line in [
        '    subgraph comp_prepare ["prepare: compensate"]',
        '        s_undo_prepare["undo_prepare: shell<br/>make clean"]',
        '    subgraph s_poll ["poll: loop"]',
        '        s_check["check: mcp_call<br/>ci.status"]',
        '        s_failed{"failed: condition<br/>if state.status.failed"}',
        '        s_give_up["give_up: break"]',
        '        s_pause["pause: wait<br/>30s"]',
        '    s_fan["fan: parallel<br/>wait_all"]',
        '    subgraph lane_fan_0 ["branch docs"]',
        '    subgraph lane_fan_1 ["branch tests"]',
        '        s_unit["unit: shell<br/>make test<br/>on_error: continue"]',
        '    join_fan(("join"))',
        '    subgraph s_guarded ["guarded: try"]',
        '        s_deploy["deploy: delegate<br/>@deployer"]',
        '    subgraph catch_guarded ["guarded: catch"]',
        '        s_report["report: prompt<br/>info"]',
        '    subgraph finally_guarded ["guarded: finally"]',
        '    subgraph s_each ["each: foreach [#quot;a#quot;, #quot;b#quot;] as region, '
        'max_parallel 3"]',
        '        when_skip_b{"when region == #quot;b#quot;"}',
        '    s_done["done: set_state<br/>set finished"]',
    ]:
        assert definition_line in lines


def test_a_return_or_break_inside_try_runs_finally_first() -> None:
    definition = load_definition(
        """\
name: try-exits
version: 1
steps:
  - id: again
    type: loop
    while: state.more ?? true
    max_iterations: 3
    steps:
      - id: attempt
        type: try
        steps:
          - {id: out, type: return, when: "state.x == 1", value: 1}
          - {id: leave, type: break, when: "state.y == 1"}
          - {id: work, type: shell, command: make}
        finally:
          - {id: tidy, type: shell, command: make tidy}
  - {id: last, type: shell, command: echo}
"""
    )

    source = mermaid(definition)

    check_structure(definition, parse_flowchart(source))
    assert edge_lines(source)[-9:] == [
        "s_work --> s_tidy",
        's_out -->|"return"| s_tidy',
        's_leave -->|"break"| s_tidy',
        's_attempt -.->|"on failure"| finally_attempt',  # no catch: finally, then the failure
        's_tidy -->|"return"| wf_end',
        's_tidy -->|"while state.more ?? true, max_iterations 3"| when_out',
        "s_tidy --> s_last",
        's_tidy -->|"break"| s_last',
        "s_last --> wf_end",
    ]


def test_loose_ends_of_a_loop_body_meet_before_the_back_edge() -> None:
    definition = load_definition(
        """\
name: poll
version: 1
steps:
  - id: poll
    type: loop
    max_iterations: 10
    steps:
      - {id: check, type: mcp_call, tool: status, output_to: status}
      - {id: pause, type: wait, duration: 1m, when: "!state.status.done"}
"""
    )

    lines = mermaid(definition).splitlines()

    assert '        again_poll((" "))' in lines
    assert "    s_pause --> again_poll" in lines
    assert '    when_pause -->|"skip"| again_poll' in lines
    assert '    again_poll -->|"max_iterations 10"| s_check' in lines
    assert "    again_poll --> wf_end" in lines


# -- labels never break the diagram -------------------------------------------------------------

NASTY = [
    '"quoted"',
    "'single' \"double\"",
    "pipe | and ||",
    "[brackets] (parens) {braces}",
    "${{ not a template here }}",
    "<b>html</b> & <br/> &amp;",
    "#quot; #35; # hash",
    "%%{init: {}}%% %% comment",
    "`backticks`",
    "a direction TB here",
    "style:x#y;",
    "classDef c fill:#f00;",
    "end",
    "ﬂ°lt¶ß é 😀",
    "back\\slash",
    "-->|x| B",
    "tab\there",
]


@pytest.mark.parametrize("text", NASTY)
def test_no_label_text_breaks_the_diagram_and_each_reads_as_written(text: str) -> None:
    literal = json.dumps(text, ensure_ascii=False)  # an expression's string literal
    tool = text.replace("${{", "$${{") + " ${{ inputs.x }}"  # a template; `$${{` is literal
    data = {
        "name": "nasty",
        "version": 1,
        "inputs": {"x": {"type": "string", "default": ""}},
        "steps": [
            {"id": "call", "type": "mcp_call", "tool": tool},
            {
                "id": "choose",
                "type": "condition",
                "if": f"inputs.x == {literal}",
                "then": [
                    {"id": "ok", "type": "wait", "duration": "1s", "when": f"{literal} != ''"}
                ],
            },
        ],
    }
    definition = load_definition(json.dumps(data, ensure_ascii=False))

    chart = parse_flowchart(mermaid(definition))

    check_structure(definition, chart)
    # What a reader sees is the source text, on one line, clipped.
    assert chart.nodes["s_call"][1] == ["call: mcp_call", clip(tool)]
    assert chart.nodes["s_choose"][1] == [
        "choose: condition",
        f"if {clip(f'inputs.x == {literal}')}",
    ]
    assert chart.nodes["when_ok"][1] == [f"when {clip(f'{literal} != {chr(39) * 2}')}"]


def clip(text: str, length: int = 40) -> str:
    """The renderer's clipping: one line, at most ``length`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= length else line[: length - 3].rstrip() + "..."


def test_a_long_multiline_command_shows_its_first_line_clipped() -> None:
    definition = load_definition(
        """\
name: long
version: 1
steps:
  - id: build
    type: shell
    command: |

      ./configure --prefix=/opt/something/quite/long --enable-everything
      make -j8
"""
    )

    chart = parse_flowchart(mermaid(definition))

    assert chart.nodes["s_build"][1] == ["build: shell", "./configure --prefix=/opt/something/q..."]


def test_ids_that_are_not_identifiers_are_sanitized_apart() -> None:
    # The loader only accepts identifiers; a definition built in code is not checked.
    steps = [
        ShellStep.model_construct(id=name, type="shell", command="true", compensate=[])
        for name in ('a-b"]', "a_b_", "end", "o-x")
    ]
    definition = WorkflowDefinition.model_construct(name="odd", version=1, steps=steps)

    chart = parse_flowchart(mermaid(definition))

    step_nodes = [node for node in chart.nodes if node.startswith("s_")]
    assert len(step_nodes) == 4
    assert chart.nodes[step_nodes[0]][1] == ['a-b"]: shell', "true"]


# -- step types without a renderer of their own ------------------------------------------------


def test_a_step_type_without_a_renderer_is_a_plain_node(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.definition import _graph

    monkeypatch.delitem(_graph._RENDERERS, "foreach")
    monkeypatch.delitem(_graph._DETAILS, "shell")
    definition = load_definition(EVERY_CONSTRUCT)

    source = mermaid(definition)
    chart = parse_flowchart(source)

    check_structure(definition, chart)
    assert chart.nodes["s_prepare"][1] == ["prepare: shell"]
    # A foreach drawn by the fallback: its node, then its block as a subgraph it flows into.
    assert chart.nodes["s_each"][1] == ["each: foreach"]
    assert chart.subgraphs["block_each_0"] == "each: steps"
    assert '    s_each -->|"steps"| when_skip_b' in source.splitlines()


def test_a_wait_for_step_shows_its_event_and_timeout() -> None:
    definition = load_definition(
        """\
name: waits
version: 1
steps:
  - {id: hold, type: wait_for, event: deploy.done, timeout: 1h}
"""
    )

    chart = parse_flowchart(mermaid(definition))

    assert chart.nodes["s_hold"][1] == ["hold: wait_for", "event deploy.done, timeout 1h"]


@pytest.mark.skipif("call" not in STEP_TYPES, reason="no call step type yet")
def test_a_call_step_shows_the_definition_it_runs() -> None:
    definition = load_definition(
        """\
name: caller
version: 1
steps:
  - {id: pinned, type: call, definition: deploy-service, version: 3}
  - {id: latest, type: call, definition: hello}
"""
    )

    chart = parse_flowchart(mermaid(definition))

    assert chart.nodes["s_pinned"][1] == ["pinned: call", "deploy-service:3"]
    assert chart.nodes["s_latest"][1] == ["latest: call", "hello"]


# -- the command --------------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = enginectl_main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_graph_prints_the_flowchart_of_a_valid_file(capsys) -> None:
    path = ROOT / "examples" / "hello.yaml"

    status, out, err = run(capsys, "graph", str(path))

    assert (status, err) == (0, "")
    assert out == mermaid(load_definition_file(path))
    assert out.splitlines()[:3] == [
        "flowchart TD",
        '    wf_start(["start"])',
        '    s_compose["compose: set_state<br/>set greeting"]',
    ]


def test_markdown_wraps_the_flowchart_in_a_mermaid_block(capsys) -> None:
    path = ROOT / "examples" / "hello.yaml"

    status, out, _ = run(capsys, "graph", "--markdown", str(path))

    assert status == 0
    assert out == f"```mermaid\n{mermaid(load_definition_file(path))}```\n"


def test_a_missing_file_is_reported_on_stderr_with_exit_1(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope.yaml"

    status, out, err = run(capsys, "graph", str(missing))

    assert (status, out) == (1, "")
    assert err.splitlines() == [f"{missing}: cannot read: No such file or directory"]


def test_an_invalid_definition_prints_its_located_problems_and_no_graph(write, capsys) -> None:
    path = write(
        "bad.yaml",
        """\
name: Not_Valid
version: 1
steps:
  - id: build
    type: shell
""",
    )

    status, out, err = run(capsys, "graph", str(path))

    assert (status, out) == (1, "")
    assert err.splitlines() == [
        f"{path}:1:7: invalid workflow name 'Not_Valid': use lowercase letters, digits and '-', "
        "starting with a letter or digit (at most 63 characters)",
        f"{path}:4:5: missing required field 'command' in shell step 'build'",
    ]


def test_a_file_that_is_not_utf8_is_reported(write, tmp_path: Path, capsys) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: caf\xe9\n")

    status, out, err = run(capsys, "graph", str(path))

    assert (status, out) == (1, "")
    assert err.startswith(f"{path}: cannot read: not UTF-8 text")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["graph"], "the following arguments are required: FILE"),
        (["graph", "a.yaml", "b.yaml"], "unrecognized arguments: b.yaml"),
    ],
)
def test_usage_errors_exit_2(capsys, argv: list[str], message: str) -> None:
    status, out, err = run(capsys, *argv)

    assert (status, out) == (2, "")
    assert message in err


_PROBE = """\
import contextlib, io, json, sys
from engine.cli import enginectl_main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    status = enginectl_main(sys.argv[1:])
heavy = sorted(m for m in sys.modules if m.split(".")[0] == "temporalio"
               or m.startswith(("engine.workflow", "engine.dispatcher", "engine.server",
                                "engine.stack", "engine.worker")))
print(json.dumps({"status": status, "graph": out.getvalue(), "heavy": heavy}))
"""


def test_graph_runs_without_temporal_or_the_interpreter() -> None:
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, "graph", str(ROOT / "examples" / "deploy-service.yaml")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        check=True,
    )

    outcome = json.loads(probe.stdout)
    assert outcome["status"] == 0
    assert outcome["graph"].startswith("flowchart TD\n")
    assert outcome["heavy"] == []
