"""A test file's YAML as plain data, with the line and column of every value and key.

Scalars resolve as in definitions (the YAML 1.2 core schema: ``on``, ``no`` and ``2026-01-01``
stay strings), duplicate keys are errors, and a problem is located as ``FILE:LINE:COL``.

Why not the definition loader's YAML module: it is private to ``engine.definition``. This is
the small subset a test file needs (no merge keys, no size limits beyond :data:`MAX_NODES`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

__all__ = ["MAX_NODES", "Located", "YamlLoadError", "load_located"]

MAX_NODES: Final = 200_000
"""Most values a test file may hold once aliases are expanded."""

Path = tuple[str | int, ...]

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NULLS: Final = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS: Final = {"true": True, "True": True, "TRUE": True}
_BOOLS.update({"false": False, "False": False, "FALSE": False})
_INT: Final = re.compile(r"[-+]?[0-9]+")
_OCTAL: Final = re.compile(r"0o[0-7]+")
_HEX: Final = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT: Final = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_SPECIAL_FLOATS: Final = {
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), math.inf),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), -math.inf),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), math.nan),
}


class YamlLoadError(Exception):
    """The text is not YAML (or not one document of it); ``line`` and ``column`` are 1-based."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.column = column
        self.message = message


@dataclass
class Located:
    """The data of a YAML document and where each of its parts is.

    Attributes:
        data: Plain data: dict, list, str, int, float, bool, None.
        values: Path -> (line, column) of the value there (1-based).
        keys: Path -> (line, column) of the key that leads there (mappings' entries only).
    """

    data: Any
    values: dict[Path, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Path, tuple[int, int]] = field(default_factory=dict)

    def at(self, path: Path, *, key: bool = False) -> tuple[int, int]:
        """Where ``path`` is (its key with ``key``), or its nearest located parent."""
        table = self.keys if key else self.values
        while path:
            if path in table:
                return table[path]
            if path in self.values:
                return self.values[path]
            path = path[:-1]
        return self.values.get((), (1, 1))


def load_located(text: str) -> Located:
    """Parse one YAML document.

    Raises:
        YamlLoadError: A syntax error, a duplicate key, a key that is not a string, more than one
            document, or more than :data:`MAX_NODES` values.
    """
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        message = f"YAML syntax error: {error.problem or error}"
        if error.context and error.context_mark is not None and error.problem_mark is not None:
            message += f" ({error.context} at line {error.context_mark.line + 1})"
        raise YamlLoadError(line, column, message) from None
    except yaml.YAMLError as error:
        raise YamlLoadError(1, 1, f"YAML error: {error}") from None
    located = Located(None)
    if root is not None:
        located.data = _Builder(located).build(root, ())
    return located


class _Builder:
    def __init__(self, located: Located) -> None:
        self.located = located
        self.count = 0

    def build(self, node: yaml.Node, path: Path) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise YamlLoadError(*_where(node), f"more than {MAX_NODES} values (aliases included)")
        self.located.values.setdefault(path, _where(node))
        if isinstance(node, yaml.MappingNode):
            found: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self.build_key(key_node)
                if key in found:
                    raise YamlLoadError(*_where(key_node), f"duplicate key '{key}'")
                self.located.keys.setdefault((*path, key), _where(key_node))
                found[key] = self.build(value_node, (*path, key))
            return found
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        return _scalar(node)

    def build_key(self, node: yaml.Node) -> str:
        if not isinstance(node, yaml.ScalarNode):
            raise YamlLoadError(*_where(node), "a key must be a string, not a list or a mapping")
        value = _scalar(node)
        if isinstance(value, bool) or value is None:
            raise YamlLoadError(*_where(node), f"a key must be a string, got {node.value!r}")
        return str(value)


def _where(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _scalar(node: yaml.Node) -> Any:
    text: str = node.value
    if getattr(node, "style", None) or node.tag not in _IMPLICIT_TAGS:
        # Quoted, a block scalar (| >), or an explicit tag such as !!str: a string.
        return text
    if text in _NULLS:
        return None
    if text in _BOOLS:
        return _BOOLS[text]
    if _INT.fullmatch(text):
        return int(text)
    if _OCTAL.fullmatch(text):
        return int(text[2:], 8)
    if _HEX.fullmatch(text):
        return int(text[2:], 16)
    if _FLOAT.fullmatch(text):
        return float(text)
    if text in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[text]
    return text


# The tags PyYAML's resolver gives plain scalars (by YAML 1.1 rules, which are replaced here).
_IMPLICIT_TAGS: Final = frozenset(
    f"tag:yaml.org,2002:{name}"
    for name in ("str", "int", "float", "bool", "null", "timestamp", "merge", "value")
)
