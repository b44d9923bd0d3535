"""``enginectl``'s config file: named contexts (a control plane and how to sign in to it) and
the current one, kubectl-style.

The file is YAML, at :func:`engine.config.client_config_path`::

    current-context: prod
    contexts:
      prod:
        address: engine.example.com:443
        token_file: /run/secrets/engine-token   # or token: ..., or token_env: VARIABLE
        org: acme                               # informational: the token decides
        tls: true
        ca: /etc/engine/ca.pem                  # implies tls

It holds tokens, so it is written with mode 0600, and atomically (a temporary file renamed
over it), so an interrupted write never leaves half a file. PyYAML is imported only when
there is a file to read or write: a command run without one starts no slower.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from engine.cli.enginectl._client import CliError
from engine.config import ClientContext, client_config_path

if TYPE_CHECKING:
    import yaml

__all__ = ["CONTEXT_KEYS", "ContextFile", "selected_context"]

CONTEXT_KEYS: Final = ("address", "token", "token_file", "token_env", "org", "tls", "ca")
"""What a context may hold, in the order the file lists them."""
_TOKEN_KEYS: Final = ("token", "token_file", "token_env")
_HOW_TO_ADD: Final = "add one with: enginectl config set-context NAME --address HOST:PORT"


@dataclass
class ContextFile:
    """The config file's contents.

    Attributes:
        path: Where it is (it may not exist yet).
        current: The current context's name, if one is set.
        contexts: Each context's settings (the keys of :data:`CONTEXT_KEYS`), by name, in the
            file's order.
    """

    path: Path
    current: str | None = None
    contexts: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None = None) -> ContextFile:
        """Read the file (``client_config_path()`` unless given); empty when it does not exist.

        Raises:
            CliError: It cannot be read, or it is malformed (naming the file and the line).
        """
        path = client_config_path() if path is None else path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(path)
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) else str(error)
            raise CliError(f"cannot read the config file {path}: {reason or error}") from None
        current, contexts = _parse(path, text)
        return cls(path, current, contexts)

    def known(self) -> str:
        """The names of the contexts, for a message: ``dev, prod`` or ``none``."""
        return ", ".join(self.contexts) or "none"

    def context(self, name: str | None) -> ClientContext | None:
        """The context called ``name``, else the current one; None when neither is set.

        Raises:
            CliError: There is no context of that name (naming the ones there are).
        """
        chosen = name if name is not None else self.current
        if chosen is None:
            return None
        settings = self.contexts.get(chosen)
        if settings is None:
            raise self.unknown(chosen, current=name is None)
        ca = settings.get("ca")
        return ClientContext(
            name=chosen,
            source=str(self.path),
            address=settings.get("address"),
            token=settings.get("token"),
            token_file=self._path(settings.get("token_file")),
            token_env=settings.get("token_env"),
            org=settings.get("org"),
            tls=bool(settings.get("tls")) or bool(ca),
            ca_file=self._path(ca),
        )

    def unknown(self, name: str, *, current: bool = False) -> CliError:
        """The error for a context ``name`` the file does not define, naming those it does."""
        if current:
            what = f"the current context '{name}' is not defined"
        else:
            what = f"unknown context '{name}'"
        if not self.contexts:
            where = f"{self.path} has none" if self.path.exists() else f"there is no {self.path}"
            return CliError(f"{what}: {where}; {_HOW_TO_ADD}")
        return CliError(f"{what} (known: {self.known()}; in {self.path})")

    def _path(self, value: str | None) -> str | None:
        """A path of the file: ``~`` expanded, a relative one taken from the file's directory."""
        if not value:
            return None
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else self.path.parent / path)

    def text(self) -> str:
        """The file's contents, as :meth:`save` writes them."""
        import yaml

        contexts = {
            name: {key: settings[key] for key in CONTEXT_KEYS if settings.get(key) is not None}
            for name, settings in self.contexts.items()
        }
        data: dict[str, Any] = {"current-context": self.current} if self.current else {}
        data["contexts"] = contexts
        body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
        return (
            "# enginectl's contexts (enginectl config --help); it holds tokens: keep it 0600\n"
            + body
        )

    def save(self) -> None:
        """Write the file: mode 0600, atomically (through a temporary file in its directory).

        Raises:
            CliError: It cannot be written.
        """
        # Through a symbolic link (a dotfiles repository), the file it points to is replaced.
        target = self.path.resolve() if self.path.is_symlink() else self.path
        text = self.text()
        try:
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            handle, temporary = tempfile.mkstemp(prefix=".config-", dir=target.parent)
        except OSError as error:
            raise CliError(f"cannot write {target}: {error.strerror or error}") from None
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                os.fchmod(out.fileno(), 0o600)  # mkstemp's mode already, whatever the umask
                out.write(text)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except OSError as error:
            with suppress(OSError):
                os.unlink(temporary)
            raise CliError(f"cannot write {target}: {error.strerror or error}") from None


def selected_context(name: str | None) -> ClientContext | None:
    """The context a remote command uses: ``--context NAME``, else the file's current one.

    Raises:
        CliError: The file is malformed, or names no such context.
    """
    path = client_config_path()
    if name is None and not path.exists():  # the common case: no file, and no YAML to load
        return None
    return ContextFile.load(path).context(name)


# -- parsing --------------------------------------------------------------------------------

_STRING_TAGS: Final = frozenset(
    {"tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
)
_NULL_TAG: Final = "tag:yaml.org,2002:null"
_BOOL_TAG: Final = "tag:yaml.org,2002:bool"


class _MalformedError(Exception):
    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.line = node.start_mark.line + 1
        self.message = message


def _parse(path: Path, text: str) -> tuple[str | None, dict[str, dict[str, Any]]]:
    """The current context and the contexts of the file's text.

    The nodes are read rather than the loaded data, so that every complaint names its line.
    """
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        root = yaml.compose(text, Loader=loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise CliError(f"{path}{line}: not valid YAML: {error.problem or error}") from None
    except yaml.YAMLError as error:
        raise CliError(f"{path}: not valid YAML: {error}") from None
    try:
        return _document(root)
    except _MalformedError as error:
        raise CliError(f"{path}:{error.line}: {error.message}") from None


def _document(root: yaml.Node | None) -> tuple[str | None, dict[str, dict[str, Any]]]:
    import yaml

    if root is None:  # an empty file
        return None, {}
    if not isinstance(root, yaml.MappingNode):
        raise _MalformedError(root, "expected a mapping with 'current-context' and 'contexts'")
    current: str | None = None
    contexts: dict[str, dict[str, Any]] = {}
    for key_node, value_node in _pairs(root, "the file"):
        key = _key(key_node)
        if key == "current-context":
            current = _string(value_node, "current-context")
        elif key == "contexts":
            if _string_or_null(value_node):
                continue  # `contexts:` with nothing under it
            if not isinstance(value_node, yaml.MappingNode):
                raise _MalformedError(value_node, "'contexts' must map each context's name to it")
            for name_node, settings_node in _pairs(value_node, "contexts"):
                name = _key(name_node)
                contexts[name] = _context(name, settings_node)
        else:
            raise _MalformedError(
                key_node, f"unknown key '{key}' (known: current-context, contexts)"
            )
    return current, contexts


def _context(name: str, node: yaml.Node) -> dict[str, Any]:
    import yaml

    if not isinstance(node, yaml.MappingNode):
        raise _MalformedError(
            node, f"context '{name}' must be a mapping ({', '.join(CONTEXT_KEYS)})"
        )
    settings: dict[str, Any] = {}
    for key_node, value_node in _pairs(node, f"context '{name}'"):
        key = _key(key_node)
        if key not in CONTEXT_KEYS:
            raise _MalformedError(
                key_node,
                f"unknown key '{key}' in context '{name}' (known: {', '.join(CONTEXT_KEYS)})",
            )
        if key == "tls":
            settings[key] = _bool(value_node, f"'tls' of context '{name}'")
        else:
            settings[key] = _string(value_node, f"'{key}' of context '{name}'")
    tokens = [key for key in _TOKEN_KEYS if settings.get(key)]
    if len(tokens) > 1:
        raise _MalformedError(node, f"context '{name}' has {' and '.join(tokens)}: keep one")
    return settings


def _pairs(node: yaml.MappingNode, where: str) -> list[tuple[yaml.Node, yaml.Node]]:
    """The key and value nodes of a mapping; a key given twice is an error."""
    seen: set[str] = set()
    for key_node, _ in node.value:
        key = _key(key_node)
        if key in seen:
            raise _MalformedError(key_node, f"'{key}' appears twice in {where}")
        seen.add(key)
    return list(node.value)


def _key(node: yaml.Node) -> str:
    if _string_or_null(node) is None or node.tag not in _STRING_TAGS:
        raise _MalformedError(node, "expected a name as the key")
    return str(node.value)


def _string_or_null(node: yaml.Node) -> bool | None:
    """True for a null scalar, False for another scalar, None for a mapping or sequence."""
    import yaml

    if not isinstance(node, yaml.ScalarNode):
        return None
    return node.tag == _NULL_TAG


def _string(node: yaml.Node, what: str) -> str | None:
    """A scalar as its text, as written (a token of digits stays as it is); None for null."""
    null = _string_or_null(node)
    if null is None or (not null and node.tag not in _STRING_TAGS | {_BOOL_TAG}):
        raise _MalformedError(node, f"{what} must be a string")
    return None if null or node.value == "" else str(node.value)


def _bool(node: yaml.Node, what: str) -> bool:
    null = _string_or_null(node)
    if null:
        return False
    if null is None:
        raise _MalformedError(node, f"{what} must be true or false")
    if node.tag != _BOOL_TAG:
        raise _MalformedError(node, f"{what} must be true or false, got {node.value!r}")
    return str(node.value).lower() in ("true", "yes", "on")
