"""A workflow definition drawn as a Mermaid flowchart (``enginectl graph``).

GitHub renders a ```` ```mermaid ```` block in a README or a pull request, so a definition's
shape can be reviewed where its YAML is. The drawing:

- ``start`` and ``end`` nodes; each step a node labelled ``id: type`` with a short detail (a
  shell step's first command line, a prompt's ``prompt_type``, a wait's duration, a delegate's
  agent, ...) and its ``on_error`` when that is not ``fail``;
- a step's ``when`` is a diamond in front of it, ``true`` into the step and ``skip`` past it;
- ``condition`` is a diamond with ``then`` and ``else`` edges that join at the next step;
- ``foreach`` and ``loop`` are subgraphs; a loop has a back edge labelled with its
  ``while``/``until`` and ``max_iterations``, and each ``break`` an edge to what follows the loop;
- ``parallel`` forks into one subgraph per branch, which join after;
- ``try`` is a subgraph with a dashed ``on failure`` edge into its ``catch`` subgraph, and both
  flow into its ``finally`` subgraph (a return or break in them too: finally runs first);
- ``return`` is an edge to ``end`` (inside a foreach it ends the item: an edge out of it);
- a ``compensate`` block is a subgraph reached by a dotted ``compensate`` edge from its step.

One small function per step type, found by the type's name: a detail function (``_detail``)
for a step drawn as a plain node, a renderer (``_renders``) for one that shapes the flow. A
type with neither is still drawn, as a plain node (with its nested blocks, if it has any, as
subgraphs after it), so a new step type never breaks the command.

Whatever the YAML holds, a label cannot break the diagram: every label is quoted, and the few
characters Mermaid gives a meaning even inside quotes are written as entity codes (``#quot;``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from engine.definition._durations import format_duration
from engine.definition._models import (
    ConditionStep,
    DelegateStep,
    ForeachStep,
    LoopStep,
    McpCallStep,
    ParallelStep,
    PromptStep,
    SetStateStep,
    ShellStep,
    StepBase,
    TryStep,
    WaitForStep,
    WaitStep,
    WorkflowDefinition,
)

__all__ = ["mermaid"]

_START: Final = "wf_start"
_END: Final = "wf_end"
_INDENT: Final = "    "
_DETAIL_LENGTH: Final = 40
"""Longest detail or expression in a label (longer ones end in ``...``): a diagram is an
overview, and Mermaid widens a diamond and heightens it as its text grows."""


def mermaid(definition: WorkflowDefinition) -> str:
    """The definition as a Mermaid flowchart (``flowchart TD``), ending with a newline.

    Args:
        definition: A loaded definition (see :func:`engine.definition.load_definition`).

    Returns:
        Mermaid source: node and subgraph definitions first, then every edge. Node ids are
        derived from step ids (``s_<id>``), so a diagram changes little when a step does.
    """
    graph = _Graph()
    graph.node(_START, _STADIUM, ["start"])
    _, exits = graph.block(definition.steps, [_Exit(_START)])
    graph.node(_END, _STADIUM, ["end"])
    graph.connect(exits, _END)
    return graph.source()


# -- the graph being written ------------------------------------------------------------------


@dataclass(frozen=True)
class _Exit:
    """A loose end of the flow: an edge from ``source`` to whatever comes next."""

    source: str
    label: str | None = None


_Flow = tuple[str, list[_Exit]]
"""What drawing a step or a block gives: its entry node, and the loose ends it leaves."""

# Node shapes: the text goes where {label} is.
_RECTANGLE: Final = '["{label}"]'
_DIAMOND: Final = '{{"{label}"}}'
_STADIUM: Final = '(["{label}"])'
_CIRCLE: Final = '(("{label}"))'


class _Graph:
    """Collects node definitions (nested in subgraphs) and edges, and the drawing's scopes."""

    def __init__(self) -> None:
        self._definitions: list[str] = []
        self._edges: list[str] = []
        self._depth = 1
        # Where a `break` goes: the loose ends of the innermost loop (None: not in a loop).
        self.breaks: list[_Exit] | None = None
        # Where a `return` goes: the loose ends of the innermost foreach, whose item it ends
        # (None: to the end of the run).
        self.returns: list[_Exit] | None = None

    def source(self) -> str:
        return "\n".join(["flowchart TD", *self._definitions, *self._edges]) + "\n"

    def node(self, node_id: str, shape: str, lines: Sequence[str]) -> None:
        label = "<br/>".join(_escape(line) for line in lines)
        self._definitions.append(_INDENT * self._depth + node_id + shape.format(label=label))

    def step_node(self, step: StepBase, shape: str = _RECTANGLE, *details: str | None) -> str:
        """Define the node of a step (``id: type``, details, ``on_error``) and return its id."""
        node_id = _node_id(step.id)
        lines = [f"{step.id}: {step.step_type}", *(d for d in details if d)]
        if step.on_error != "fail":
            lines.append(f"on_error: {step.on_error}")
        self.node(node_id, shape, lines)
        return node_id

    @contextmanager
    def subgraph(self, subgraph_id: str, title: str) -> Iterator[None]:
        self._definitions.append(
            f'{_INDENT * self._depth}subgraph {subgraph_id} ["{_escape(title)}"]'
        )
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            self._definitions.append(f"{_INDENT * self._depth}end")

    @contextmanager
    def scope(self, *, breaks: list[_Exit] | None, returns: list[_Exit] | None) -> Iterator[None]:
        saved = self.breaks, self.returns
        self.breaks, self.returns = breaks, returns
        try:
            yield
        finally:
            self.breaks, self.returns = saved

    def edge(
        self, source: str, target: str, label: str | None = None, *, dotted: bool = False
    ) -> None:
        arrow = "-.->" if dotted else "-->"
        text = f'|"{_escape(label)}"|' if label else ""
        self._edges.append(f"{_INDENT}{source} {arrow}{text} {target}")

    def connect(self, exits: Sequence[_Exit], target: str) -> None:
        for loose in exits:
            self.edge(loose.source, target, loose.label)

    def block(self, steps: Sequence[StepBase], incoming: list[_Exit]) -> _Flow:
        """Draw steps in sequence; ``incoming`` flows into the first. Returns its entry node
        (``""`` for an empty block) and the block's loose ends."""
        entry = ""
        exits = incoming
        for step in steps:
            step_entry, exits = self.step(step, exits)
            entry = entry or step_entry
        return entry, exits

    def step(self, step: StepBase, incoming: list[_Exit]) -> _Flow:
        skipped: list[_Exit] = []
        guard = ""
        if step.when is not None:
            guard = f"when_{_safe(step.id)}"
            self.node(guard, _DIAMOND, [f"when {_clip(step.when)}"])
            self.connect(incoming, guard)
            incoming = [_Exit(guard, "true")]
            skipped = [_Exit(guard, "skip")]
        render = _RENDERERS.get(step.step_type, _plain)
        entry, exits = render(self, step, incoming)
        if step.compensate:
            self.compensate(step)
        return guard or entry, exits + skipped

    def returned(self, source: str) -> None:
        """A ``return`` leaves ``source``: to the end, or out of the foreach it is in."""
        if self.returns is None:
            self.edge(source, _END, "return")
        else:
            self.returns.append(_Exit(source, "return"))

    def broke(self, source: str) -> bool:
        """A ``break`` leaves ``source`` for the end of the loop (False: not in a loop)."""
        if self.breaks is None:
            return False
        self.breaks.append(_Exit(source, "break"))
        return True

    def compensate(self, step: StepBase) -> None:
        subgraph_id = f"comp_{_safe(step.id)}"
        with (
            self.subgraph(subgraph_id, f"{step.id}: compensate"),
            self.scope(breaks=None, returns=None),
        ):
            self.block(step.compensate, [])
        self.edge(_node_id(step.id), subgraph_id, "compensate", dotted=True)


# -- one function per step type ---------------------------------------------------------------

_Renderer = Callable[[_Graph, Any, list[_Exit]], _Flow]
_Detail = Callable[[Any], str | None]
_RENDERERS: Final[dict[str, _Renderer]] = {}
"""Step type -> the function that draws a step of that type (the rest: :func:`_plain`)."""
_DETAILS: Final[dict[str, _Detail]] = {}
"""Step type -> the short detail under a plain node's ``id: type``."""

_R = TypeVar("_R", bound=_Renderer)
_D = TypeVar("_D", bound=_Detail)


def _renders(step_type: str) -> Callable[[_R], _R]:
    def register(function: _R) -> _R:
        _RENDERERS[step_type] = function
        return function

    return register


def _detail(step_type: str) -> Callable[[_D], _D]:
    def register(function: _D) -> _D:
        _DETAILS[step_type] = function
        return function

    return register


def _plain(graph: _Graph, step: StepBase, incoming: list[_Exit]) -> _Flow:
    """A step that is one node; a type with no renderer of its own is drawn so, its nested
    blocks (if any) as subgraphs that the flow goes through after it."""
    detail = _DETAILS.get(step.step_type)
    node_id = graph.step_node(step, _RECTANGLE, detail(step) if detail else None)
    graph.connect(incoming, node_id)
    exits = [_Exit(node_id)]
    blocks = [(name, block) for name, block in step.blocks() if name != "compensate"]
    if blocks:
        exits = []
        for index, (name, block) in enumerate(blocks):
            with graph.subgraph(f"block_{_safe(step.id)}_{index}", f"{step.id}: {name}"):
                _, block_exits = graph.block(block, [_Exit(node_id, name)])
            exits += block_exits
    return node_id, exits


@_renders("condition")
def _condition(graph: _Graph, step: ConditionStep, incoming: list[_Exit]) -> _Flow:
    node_id = graph.step_node(step, _DIAMOND, f"if {_clip(step.if_)}")
    graph.connect(incoming, node_id)
    _, exits = graph.block(step.then, [_Exit(node_id, "then")])
    _, else_exits = graph.block(step.else_, [_Exit(node_id, "else")])
    return node_id, exits + else_exits


@_renders("foreach")
def _foreach(graph: _Graph, step: ForeachStep, incoming: list[_Exit]) -> _Flow:
    items = step.items if isinstance(step.items, str) else json.dumps(step.items)
    title = f"foreach {_clip(items)} as {step.as_}, max_parallel {step.max_parallel}"
    if step.on_item_error != "fail":
        title += f", on_item_error {step.on_item_error}"
    returns: list[_Exit] = []
    # A break cannot cross a foreach, and a return in one ends the item, not the run.
    with (
        graph.subgraph(_node_id(step.id), _title(step, title)),
        graph.scope(breaks=None, returns=returns),
    ):
        entry, exits = graph.block(step.steps, incoming)
    return entry, exits + returns


@_renders("loop")
def _loop(graph: _Graph, step: LoopStep, incoming: list[_Exit]) -> _Flow:
    again = [f"while {_clip(step.while_)}"] if step.while_ is not None else []
    again += [f"until {_clip(step.until)}"] if step.until is not None else []
    again.append(f"max_iterations {step.max_iterations}")
    breaks: list[_Exit] = []
    with graph.subgraph(_node_id(step.id), _title(step, "loop")):
        with graph.scope(breaks=breaks, returns=graph.returns):
            entry, exits = graph.block(step.steps, incoming)
        if not exits:  # every path breaks or returns: nothing goes round
            return entry, breaks
        end_of_body = exits[0].source
        if len(exits) > 1 or exits[0].label is not None:
            # The loose ends meet first, so that one edge goes back (and one leaves).
            end_of_body = f"again_{_safe(step.id)}"
            graph.node(end_of_body, _CIRCLE, [" "])
            graph.connect(exits, end_of_body)
    graph.edge(end_of_body, entry, ", ".join(again))
    return entry, [_Exit(end_of_body), *breaks]


@_renders("break")
def _break(graph: _Graph, step: StepBase, incoming: list[_Exit]) -> _Flow:
    node_id = graph.step_node(step)
    graph.connect(incoming, node_id)
    if graph.broke(node_id):
        return node_id, []
    return node_id, [_Exit(node_id)]  # not in a loop: the loader rejects that; draw it plainly


@_renders("return")
def _return(graph: _Graph, step: StepBase, incoming: list[_Exit]) -> _Flow:
    node_id = graph.step_node(step)
    graph.connect(incoming, node_id)
    graph.returned(node_id)
    return node_id, []


@_renders("parallel")
def _parallel(graph: _Graph, step: ParallelStep, incoming: list[_Exit]) -> _Flow:
    node_id = graph.step_node(step, _RECTANGLE, step.on_branch_error)
    graph.connect(incoming, node_id)
    exits: list[_Exit] = []
    with graph.scope(breaks=None, returns=graph.returns):
        for index, (name, steps) in enumerate(step.branches.items()):
            with graph.subgraph(f"lane_{_safe(step.id)}_{index}", f"branch {name}"):
                _, lane_exits = graph.block(steps, [_Exit(node_id)])
            exits += lane_exits
    join = f"join_{_safe(step.id)}"
    graph.node(join, _CIRCLE, ["join"])
    graph.connect(exits, join)
    return node_id, [_Exit(join)]


@_renders("try")
def _try(graph: _Graph, step: TryStep, incoming: list[_Exit]) -> _Flow:
    body = _node_id(step.id)
    # With a finally, a return or break in steps or catch runs it first: they lead into it,
    # and leave from its end.
    returns = [] if step.finally_ else graph.returns
    breaks = [] if step.finally_ and graph.breaks is not None else graph.breaks
    with graph.scope(breaks=breaks, returns=returns):
        with graph.subgraph(body, _title(step, "try")):
            entry, exits = graph.block(step.steps, incoming)
        if step.catch:
            catch = f"catch_{_safe(step.id)}"
            with graph.subgraph(catch, f"{step.id}: catch"):
                _, caught = graph.block(step.catch, [])
            graph.edge(body, catch, "on failure", dotted=True)
            exits = exits + caught
    if not step.finally_:
        return entry, exits
    final = f"finally_{_safe(step.id)}"
    with graph.subgraph(final, f"{step.id}: finally"):
        _, after = graph.block(step.finally_, exits + (returns or []) + (breaks or []))
    if not step.catch:  # finally runs on a failure too (which then goes on)
        graph.edge(body, final, "on failure", dotted=True)
    for loose in after if returns else []:
        graph.returned(loose.source)
    for loose in after if breaks else []:
        graph.broke(loose.source)
    return entry, after


@_detail("shell")
def _shell(step: ShellStep) -> str:
    lines = (line.strip() for line in step.command.splitlines())
    return _clip(next((line for line in lines if line), ""))


@_detail("mcp_call")
def _mcp_call(step: McpCallStep) -> str:
    return _clip(f"{step.server}.{step.tool}" if step.server else step.tool)


@_detail("prompt")
def _prompt(step: PromptStep) -> str:
    return step.prompt_type


@_detail("wait")
def _wait(step: WaitStep) -> str | None:
    if step.duration is not None:
        return format_duration(step.duration)
    return f"until {_clip(step.until)}" if step.until is not None else None


@_detail("delegate")
def _delegate(step: DelegateStep) -> str:
    return _clip(step.agent)


@_detail("set_state")
def _set_state(step: SetStateStep) -> str:
    return _clip("set " + ", ".join(step.set_))


@_detail("wait_for")
def _wait_for(step: WaitForStep) -> str:
    timeout = f", timeout {format_duration(step.timeout)}" if step.timeout is not None else ""
    return _clip(f"event {step.event}{timeout}")


# Reads its fields with getattr: the call step's model is newer than this module.
@_detail("call")
def _call(step: Any) -> str:
    version = getattr(step, "version", None)
    name = str(getattr(step, "definition", "?"))
    return _clip(name if version is None else f"{name}:{version}")


def _title(step: StepBase, kind: str) -> str:
    title = f"{step.id}: {kind}"
    return title if step.on_error == "fail" else f"{title}, on_error: {step.on_error}"


# -- ids and labels ---------------------------------------------------------------------------

_ID_CHARACTERS: Final = re.compile(r"[A-Za-z0-9_]+")
_NOT_ID_CHARACTER: Final = re.compile(r"[^A-Za-z0-9_]")


def _safe(name: str) -> str:
    """``name`` as a part of a Mermaid id: letters, digits and ``_``. Step ids are already
    (the loader checks them); anything else gets a digest, so two ids never merge."""
    if _ID_CHARACTERS.fullmatch(name):
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{_NOT_ID_CHARACTER.sub('_', name)}_{digest}"


def _node_id(step_id: str) -> str:
    # Every id has a prefix (s_, when_, join_, ...): no step id can then be a Mermaid keyword
    # (`end`, `graph`, `style`) or start with the `o`/`x` that turn `-->` into another arrow,
    # and the prefixes keep the ids of a step's nodes apart from those of other steps.
    return f"s_{_safe(step_id)}"


def _clip(text: str) -> str:
    """One line of at most ``_DETAIL_LENGTH`` characters."""
    line = " ".join(text.split())
    return line if len(line) <= _DETAIL_LENGTH else line[: _DETAIL_LENGTH - 3].rstrip() + "..."


_PLAIN: Final = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,:;_-+=/()[]{}'!?@$*^~\\"
)
"""Characters that mean nothing to Mermaid inside a quoted label."""
_ENTITIES: Final = {'"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;"}
# Mermaid scans the whole source with a few regular expressions before it parses it: a line
# with `direction TB` in it sets a direction (even inside a label), `style ...:...#...;` and
# `classDef ...` lose a character. Writing the first letter of these words as a code defuses it.
_SCANNED_WORDS: Final = re.compile("direction|style|classdef", re.IGNORECASE)


def _escape(text: str) -> str:
    """Text for inside a quoted label: one line, special characters as entity codes.

    ``"`` ends the label, ``#`` starts an entity code, ``%%`` starts a comment or a directive,
    a backtick starts Markdown, ``|`` ends an edge label, ``<``, ``>`` and ``&`` are HTML;
    anything beyond ASCII is written as a code too, so no character can surprise a parser.
    """
    line = " ".join(text.split()) or (" " if text else "")
    out: list[str] = []
    for char in line:
        if char in _PLAIN:
            out.append(char)
        elif char in _ENTITIES:
            out.append(_ENTITIES[char])
        elif char.isprintable() or ord(char) > 0xFFFF:
            out.append(f"#{ord(char)};")
        else:  # a control character or a lone surrogate: nothing a reader could see
            out.append("#65533;")
    return _SCANNED_WORDS.sub(lambda word: f"#{ord(word[0][0])};{word[0][1:]}", "".join(out))
