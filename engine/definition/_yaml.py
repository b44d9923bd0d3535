"""YAML to plain Python data, keeping where every value came from.

PyYAML's own loaders are unfit for definitions in four ways, each fixed here:

* they resolve scalars with YAML 1.1 rules (``on``/``no`` become booleans, ``2024-01-01`` a
  date); this module resolves plain scalars with the YAML 1.2 core schema instead;
* they keep the last of two duplicate keys silently; here each duplicate is a problem;
* they expand aliases without limit ("billion laughs"); here construction counts the nodes it
  produces and stops past :data:`MAX_NODES`;
* the C composer recurses once per nesting level and crashes the interpreter on deeply nested
  flow collections; here the tree is composed iteratively from the C *parser's* events, with a
  depth limit.

The result is plain data (``dict``/``list``/``str``/``int``/``float``/``bool``/``None``) plus a
:class:`LocationIndex` that maps every path in the data back to its line and column.

Why one long module: the composer, the constructor and the location index share one node
type and one notion of a path, and together they are the one replacement for PyYAML's loader.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, Final

import yaml

from engine.definition._problems import Problem

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_TEXT_LENGTH",
    "LocationIndex",
    "Path",
    "YamlLoadError",
    "format_path",
    "load_json_fast",
    "parse_yaml",
]

Path = tuple[str | int, ...]

MAX_NODES: Final = 100_000
"""Most nodes a document may produce once aliases are expanded."""

MAX_DEPTH: Final = 128
"""Deepest nesting of collections accepted."""

MAX_TEXT_LENGTH: Final = 1_048_576
_LONGEST_INTEGER: Final = 40
"""Digits (and sign, prefix) an integer literal may have; 64-bit numbers need 20."""
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_LINE_BREAK: Final = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
"""What YAML counts as a line break (its marks count lines the same way)."""
"""Longest definition text accepted, in characters."""

# The C parser when libyaml is present (it is in the supported environments), else the pure
# Python one: both expose the same event API.
_ParserClass: Callable[[str], Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"
_MERGE = "tag:yaml.org,2002:merge"

# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1032-tag-resolution).
_NULL_WORDS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOL_WORDS = {
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
}
_INT_RE = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT_RE = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)
_NUMBER_START = frozenset("0123456789+-.")


class _Node:
    """A composed YAML node: kind, resolved tag, value and marks (0-based)."""

    __slots__ = ("column", "end_column", "end_line", "kind", "line", "style", "tag", "value")

    def __init__(
        self, kind: str, tag: str, value: Any, style: str | None, line: int, column: int
    ) -> None:
        self.kind = kind  # "scalar", "seq" or "map"
        self.tag = tag
        # str for scalars, list[_Node] for sequences, list[tuple[_Node, _Node]] for mappings.
        self.value = value
        self.style = style
        self.line = line
        self.column = column
        self.end_line = line
        self.end_column = column


class YamlLoadError(Exception):
    """The text could not be turned into data at all; ``problems`` says why."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(problems)


def format_path(path: Path) -> str:
    """Render a path the way authors read it: ``steps[2].then[0].options``."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _PLAIN_KEY.fullmatch(part):
            out.append(f".{part}" if out else part)
        else:
            out.append(f"[{json.dumps(part, ensure_ascii=False)}]")
    return "".join(out)


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _resolve_plain(value: str) -> str:
    if value in _NULL_WORDS:
        return _NULL
    if value in _BOOL_WORDS:
        return _BOOL
    if value[:1] in _NUMBER_START:
        if _INT_RE.fullmatch(value):
            return _INT
        if _FLOAT_RE.fullmatch(value):
            return _FLOAT
    if value == "<<":
        return _MERGE
    return _STR


def _syntax_problem(error: yaml.MarkedYAMLError, text: str, source: str) -> Problem:
    mark = error.problem_mark or error.context_mark
    line = mark.line if mark is not None else 0
    column = mark.column if mark is not None else 0
    problem = error.problem or "invalid YAML"
    message = f"YAML syntax error: {problem}"
    if error.context and error.context_mark is not None and error.problem_mark is not None:
        message += f" ({error.context} at line {error.context_mark.line + 1})"
    lines = text.splitlines()
    current = lines[line] if line < len(lines) else ""
    culprit = current[column : column + 1]
    # The three mistakes authors actually make, each with the fix.
    if culprit in ("@", "`"):
        message += f"; a value starting with {culprit!r} must be quoted"
    elif culprit == "\t":
        message += "; YAML does not allow tabs for indentation, use spaces"
    elif "${{" in current and any(c in current.split("${{")[0] for c in "{["):
        message += "; quote values containing '${{ }}' inside { } or [ ]"
    return Problem(source, line + 1, column + 1, "", message)


def _compose(text: str, source: str) -> _Node | None:
    parser = _ParserClass(text)
    try:
        parser.get_event()  # StreamStart
        if parser.check_event(yaml.StreamEndEvent):
            return None
        parser.get_event()  # DocumentStart
        root = _compose_document(parser, source)
        parser.get_event()  # DocumentEnd
        if not parser.check_event(yaml.StreamEndEvent):
            event: Any = parser.get_event()
            raise YamlLoadError(
                [
                    Problem(
                        source,
                        event.start_mark.line + 1,
                        event.start_mark.column + 1,
                        "",
                        "expected a single YAML document, found a second one",
                    )
                ]
            )
        return root
    except yaml.MarkedYAMLError as error:
        raise YamlLoadError([_syntax_problem(error, text, source)]) from None
    finally:
        parser.dispose()


def _compose_document(parser: Any, source: str) -> _Node:
    anchors: dict[str, _Node] = {}
    # Open collections, each with the key node waiting for its value (mappings only).
    stack: list[list[Any]] = []
    root: _Node | None = None
    while True:
        event: Any = parser.get_event()
        # Typed loosely: PyYAML's stubs make every mark optional, and the parser always sets
        # them on the events of a document.
        mark: Any = event.start_mark
        end_mark: Any = event.end_mark
        anchor: Any = event.anchor if hasattr(event, "anchor") else None
        node: _Node
        if isinstance(event, yaml.ScalarEvent):
            tag = event.tag
            if tag is None and event.implicit[0]:
                tag = _resolve_plain(event.value)
            elif tag is None or tag == "!":
                tag = _STR
            node = _Node("scalar", tag, event.value, event.style or None, mark.line, mark.column)
            node.end_line = end_mark.line
            node.end_column = end_mark.column
            if anchor is not None:
                anchors[anchor] = node
        elif isinstance(event, yaml.AliasEvent):
            target = anchors.get(anchor)
            if target is None:
                raise YamlLoadError(
                    [
                        Problem(
                            source, mark.line + 1, mark.column + 1, "", f"unknown alias '*{anchor}'"
                        )
                    ]
                )
            node = target
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            if len(stack) >= MAX_DEPTH:
                raise YamlLoadError(
                    [
                        Problem(
                            source,
                            mark.line + 1,
                            mark.column + 1,
                            "",
                            f"nesting deeper than {MAX_DEPTH} levels",
                        )
                    ]
                )
            is_seq = isinstance(event, yaml.SequenceStartEvent)
            tag = event.tag if event.tag not in (None, "!") else (_SEQ if is_seq else _MAP)
            node = _Node("seq" if is_seq else "map", tag, [], None, mark.line, mark.column)
            if anchor is not None:
                # Registered before the children, so an alias inside it makes a cycle that the
                # constructor reports, rather than an unknown alias.
                anchors[anchor] = node
            if stack:
                _attach(stack[-1], node)
            else:
                root = node
            stack.append([node, None])
            continue
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            closed: _Node = stack.pop()[0]
            closed.end_line = end_mark.line
            closed.end_column = end_mark.column
            if not stack:
                assert root is not None
                return root
            continue
        else:  # pragma: no cover - the parser emits no other events inside a document
            raise YamlLoadError(
                [Problem(source, mark.line + 1, mark.column + 1, "", "unexpected YAML structure")]
            )
        if not stack:
            return node
        _attach(stack[-1], node)


def _attach(frame: list[Any], node: _Node) -> None:
    parent: _Node = frame[0]
    if parent.kind == "seq":
        parent.value.append(node)
    elif frame[1] is None:
        frame[1] = node
    else:
        parent.value.append((frame[1], node))
        frame[1] = None


def _describe_scalar(node: _Node) -> str:
    return repr(node.value) if node.kind == "scalar" else "a collection"


class _Constructor:
    """Builds plain data from composed nodes, indexing each path's node."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.count = 0
        self.values: dict[Path, _Node] = {}
        self.keys: dict[Path, _Node] = {}
        self.problems: list[Problem] = []
        self.active: set[int] = set()

    def problem(self, node: _Node, path: Path, message: str) -> None:
        self.problems.append(
            Problem(self.source, node.line + 1, node.column + 1, format_path(path), message)
        )

    def fatal(self, node: _Node, path: Path, message: str) -> YamlLoadError:
        self.problem(node, path, message)
        return YamlLoadError(self.problems)

    def construct(self, node: _Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fatal(
                node,
                path,
                (
                    f"the document expands to more than {MAX_NODES} values; "
                    "an alias is probably expanding exponentially"
                ),
            )
        self.values[path] = node
        if node.kind == "scalar":
            return self.scalar(node, path)
        if id(node) in self.active:
            raise self.fatal(node, path, "an alias refers to a collection that contains it")
        self.active.add(id(node))
        try:
            if node.kind == "seq":
                if node.tag != _SEQ:
                    self.problem(node, path, f"unsupported YAML tag {node.tag!r}")
                return [self.construct(child, (*path, i)) for i, child in enumerate(node.value)]
            return self.mapping(node, path)
        finally:
            self.active.discard(id(node))

    def scalar(self, node: _Node, path: Path) -> Any:
        tag = node.tag
        value: str = node.value
        if tag == _STR:
            if _SURROGATE.search(value):
                self.problem(
                    node, path, "a lone surrogate ('\\ud800'-'\\udfff') is not a character"
                )
                return None
            return value
        if tag == _NULL:
            return None
        if tag == _BOOL and value in _BOOL_WORDS:
            return _BOOL_WORDS[value]
        if tag == _INT and _INT_RE.fullmatch(value):
            if value.startswith("0o"):
                return int(value[2:], 8)
            if len(value) > _LONGEST_INTEGER:
                self.problem(
                    node,
                    path,
                    f"integer of {len(value)} digits is too large (numbers must fit in 64 bits)",
                )
                return None
            if value.startswith("0x"):
                return int(value[2:], 16)
            return int(value, 10)
        if tag == _FLOAT and _FLOAT_RE.fullmatch(value):
            lowered = value.lower()
            number = float(lowered.replace(".inf", "inf").replace(".nan", "nan"))
            if not math.isfinite(number):
                self.problem(node, path, f"{value!r} is not supported: numbers must be finite")
                return None
            return number
        if tag in (_BOOL, _INT, _FLOAT, _NULL):
            self.problem(node, path, f"invalid value {value!r} for tag {tag!r}")
        elif tag == _MERGE:
            self.problem(node, path, "'<<' merges mappings; it can only be used as a key")
        else:
            self.problem(node, path, f"unsupported YAML tag {tag!r}")
        return None

    def mapping(self, node: _Node, path: Path) -> dict[str, Any]:
        if node.tag != _MAP:
            self.problem(node, path, f"unsupported YAML tag {node.tag!r}")
        result: dict[str, Any] = {}
        explicit: dict[str, _Node] = {}
        values: dict[str, _Node] = {}
        merges: list[tuple[_Node, _Node]] = []
        for key_node, value_node in node.value:
            if key_node.kind == "scalar" and key_node.tag == _MERGE:
                merges.append((key_node, value_node))
                continue
            if key_node.kind != "scalar" or key_node.tag != _STR:
                shown = _describe_scalar(key_node)
                self.problem(
                    key_node,
                    path,
                    f"mapping keys must be strings, got {shown}"
                    + ("; quote it" if key_node.kind == "scalar" else ""),
                )
                continue
            key: str = key_node.value
            first = explicit.get(key)
            if first is not None:
                self.problem(
                    key_node,
                    (*path, key),
                    f"duplicate key {key!r} (first at line {first.line + 1})",
                )
                continue
            explicit[key] = key_node
            values[key] = value_node
        # Merged keys first, so that explicit keys (and their locations) win.
        for key_node, value_node in merges:
            sources = value_node.value if value_node.kind == "seq" else [value_node]
            # Earlier mappings in a merge list take precedence over later ones.
            for merged in reversed(sources):
                if merged.kind != "map":
                    self.problem(
                        key_node, path, "'<<' must be followed by a mapping or a list of mappings"
                    )
                    continue
                saved = self.values.get(path)
                merged_data = self.construct(merged, path)
                if saved is not None:
                    self.values[path] = saved
                result.update(merged_data)
        for name, name_node in explicit.items():
            child: Path = (*path, name)
            self.keys[child] = name_node
            result[name] = self.construct(values[name], child)
        return result


class LocationIndex:
    """Maps paths in loaded data back to lines and columns of the source text."""

    def __init__(self, text: str, values: dict[Path, _Node], keys: dict[Path, _Node]) -> None:
        self._text = text
        self._values = values
        self._keys = keys
        self._lines: list[str] | None = None
        self._pending_source: str | None = None

    @classmethod
    def deferred(cls, text: str, source: str) -> LocationIndex:
        """An index that parses ``text`` as YAML only when a location is first asked for.

        Text that loaded through the JSON fast path needs locations only when it has problems,
        which canonical JSON almost never has.
        """
        index = cls(text, {}, {})
        index._pending_source = source
        return index

    def _ensure(self) -> None:
        if self._pending_source is None:
            return
        source, self._pending_source = self._pending_source, None
        try:
            _, index, _ = parse_yaml(self._text, source)
        except YamlLoadError:
            return  # JSON that YAML cannot parse: every location stays at 1:1
        self._values, self._keys = index._values, index._keys

    def _nearest(self, path: Path) -> _Node | None:
        self._ensure()
        for end in range(len(path), -1, -1):
            node = self._values.get(path[:end])
            if node is not None:
                return node
        return None

    def value(self, path: Path) -> tuple[int, int]:
        """1-based line and column of the value at ``path`` (or of its nearest ancestor)."""
        node = self._nearest(path)
        return (1, 1) if node is None else (node.line + 1, node.column + 1)

    def key(self, path: Path) -> tuple[int, int]:
        """1-based line and column of the key that names ``path`` (else of its value)."""
        self._ensure()
        node = self._keys.get(path)
        return self.value(path) if node is None else (node.line + 1, node.column + 1)

    def within(self, path: Path, offset: int) -> tuple[int, int]:
        """1-based line and column of character ``offset`` (0-based) of the string at ``path``.

        Exact for plain and quoted scalars on one line without escapes, for multi-line ones
        without blank lines or escapes, and for literal block scalars (``|``); otherwise the
        start of the scalar.
        """
        self._ensure()
        node = self._values.get(path)
        if node is None or node.kind != "scalar":
            return self.value(path)
        if self._lines is None:
            self._lines = _LINE_BREAK.split(self._text)
        found = _position_in_scalar(node, offset, self._lines)
        if found is None or min(found) < 0:
            return node.line + 1, node.column + 1
        return found[0] + 1, found[1] + 1


def _position_in_scalar(node: _Node, offset: int, lines: list[str]) -> tuple[int, int] | None:
    style = node.style
    value: str = node.value
    if style == "|":
        line = node.line + 1 + value.count("\n", 0, offset)
        column = offset - (value.rfind("\n", 0, offset) + 1)
        indent = _block_indent(lines, node.line + 1, node.end_line)
        if indent is None or line >= len(lines):
            return None
        return line, indent + column
    if style not in (None, "'", '"'):
        return None
    quote = 0 if style is None else 1
    if node.line == node.end_line:
        raw = lines[node.line][node.column + quote : node.end_column - quote]
        if raw != value:  # an escape (`''`, `\n`) shifts the columns; stay at the start
            return None
        return node.line, node.column + quote + offset
    # A multi-line flow scalar folds each line break into one space and strips the
    # indentation; without blank lines or escapes, walking the folded pieces is exact.
    remaining = offset
    for number in range(node.line, node.end_line + 1):
        text = lines[number]
        if number == node.line:
            start = node.column + quote
            piece = text[start:].rstrip()
        else:
            stripped = text.lstrip()
            start = len(text) - len(stripped)
            piece = stripped.rstrip()
            if number == node.end_line:
                piece = text[start : node.end_column - quote]
        if not piece:
            return None
        if remaining < len(piece):
            return number, start + remaining
        remaining -= len(piece) + 1  # the space a line break folds into
    return None


def _block_indent(lines: list[str], first: int, last: int) -> int | None:
    for number in range(first, min(last + 1, len(lines))):
        text = lines[number]
        if text.strip():
            return len(text) - len(text.lstrip(" "))
    return None


def parse_yaml(text: str, source: str) -> tuple[Any, LocationIndex, list[Problem]]:
    """Parse one YAML document into plain data.

    Args:
        text: The YAML text.
        source: Name of the text, for problems.

    Returns:
        The data (``None`` for an empty document), the index of locations, and the problems
        that did not stop construction (duplicate keys, unsupported tags...).

    Raises:
        YamlLoadError: The text is not YAML, or too large to expand safely.
    """
    if len(text) > MAX_TEXT_LENGTH:
        raise YamlLoadError(
            [
                Problem(
                    source, 1, 1, "", f"the definition is longer than {MAX_TEXT_LENGTH} characters"
                )
            ]
        )
    root = _compose(text, source)
    constructor = _Constructor(source)
    data = None if root is None else constructor.construct(root, ())
    index = LocationIndex(text, constructor.values, constructor.keys)
    return data, index, constructor.problems


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key")
    return result


def load_json_fast(text: str) -> Any | None:
    """Parse canonical (or any strict) JSON; ``None`` when the text is not such JSON.

    Definitions shipped inside workflow input are canonical JSON; the standard library parses
    them several times faster than a YAML parser. Anything unusual (duplicate keys, ``NaN``,
    syntax errors) returns ``None`` so that the YAML path reports it with a location.
    """
    if not text.lstrip().startswith("{"):
        return None
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs, parse_constant=_reject_constant)
    except (ValueError, RecursionError):  # the YAML path says where, and how deep is too deep
        return None
