"""Configuration read from the environment, in one place.

Every setting the engine, ``engined`` and ``enginectl`` read from the environment is declared
here, with its default; no other module reads ``os.environ``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

__all__ = [
    "DEFAULT_ADDRESS",
    "DEV_ENV_FILE",
    "ClientContext",
    "ClientSettings",
    "ServerSettings",
    "TemporalSettings",
    "TenancySettings",
    "WorkerSettings",
    "client_config_path",
    "read_env_file",
]

_N = TypeVar("_N", int, float)

DEFAULT_ADDRESS: Final = "127.0.0.1:50051"
"""Where ``engined dev`` listens unless told otherwise (``ENGINE_LISTEN``)."""
DEV_ENV_FILE: Final = "dev.env"
"""The file ``engined dev`` writes in its home directory: the address and an admin token."""


@dataclass(frozen=True, slots=True)
class TemporalSettings:
    """Where the engine's Temporal server is and which task queue its workers poll.

    Attributes:
        address: ``host:port`` of the Temporal frontend (``TEMPORAL_ADDRESS``).
        namespace: One namespace for ``engined worker`` to serve, outside any organization
            (``TEMPORAL_NAMESPACE``); None to serve the organizations.
        task_queue: The task queue of the interpreter's workers (``TEMPORAL_TASK_QUEUE``).
        action_lease: Seconds an executor may hold a pending action without a heartbeat
            before it is given to another (``ENGINE_ACTION_LEASE``; None: 60). Runs carry the
            value they started with.
    """

    address: str = "127.0.0.1:7233"
    namespace: str | None = None
    task_queue: str = "engine"
    action_lease: float | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TemporalSettings:
        """Read ``TEMPORAL_ADDRESS``, ``TEMPORAL_NAMESPACE``, ``TEMPORAL_TASK_QUEUE`` and
        ``ENGINE_ACTION_LEASE``.

        Raises:
            ValueError: ``ENGINE_ACTION_LEASE`` is not a number of seconds above 0.
        """
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            address=env.get("TEMPORAL_ADDRESS", defaults.address),
            namespace=env.get("TEMPORAL_NAMESPACE") or None,
            task_queue=env.get("TEMPORAL_TASK_QUEUE", defaults.task_queue),
            action_lease=_positive(env, "ENGINE_ACTION_LEASE", float, "a number of seconds"),
        )


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How each worker of the pool runs.

    Attributes:
        cached_runs: Runs a namespace's worker keeps in memory between their tasks
            (``ENGINE_WORKER_CACHED_RUNS``); a run not kept is replayed from its history for
            its next task or query.
        grace: Seconds in-flight tasks get to finish when the worker stops
            (``ENGINE_WORKER_GRACE``); the process exits a few seconds later in any case.
        max_active: Orgs with a running Temporal worker at once in a process, at most, in a
            burst of work (``ENGINE_WORKER_MAX_ACTIVE``).
        keep_active: Orgs that keep their Temporal worker however idle, the most recently used
            (``ENGINE_WORKER_KEEP_ACTIVE``); the others are dormant while they have no work.
        membership_namespace: The Temporal namespace where the worker processes that share
            the orgs keep their membership (``ENGINE_MEMBERSHIP_NAMESPACE``).
    """

    cached_runs: int = 1000
    grace: float = 10.0
    max_active: int = 200
    keep_active: int = 50
    membership_namespace: str = "default"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerSettings:
        """Read ``ENGINE_WORKER_CACHED_RUNS``, ``ENGINE_WORKER_GRACE``,
        ``ENGINE_WORKER_MAX_ACTIVE``, ``ENGINE_WORKER_KEEP_ACTIVE`` and
        ``ENGINE_MEMBERSHIP_NAMESPACE``.

        Raises:
            ValueError: A value is not a number above 0.
        """
        env = os.environ if environ is None else environ
        defaults = cls()
        cached = _positive(env, "ENGINE_WORKER_CACHED_RUNS", int, "a whole number")
        grace = _positive(env, "ENGINE_WORKER_GRACE", float, "a number of seconds")
        active = _positive(env, "ENGINE_WORKER_MAX_ACTIVE", int, "a whole number")
        kept = _positive(env, "ENGINE_WORKER_KEEP_ACTIVE", int, "a whole number")
        return cls(
            cached_runs=defaults.cached_runs if cached is None else cached,
            grace=defaults.grace if grace is None else grace,
            max_active=defaults.max_active if active is None else active,
            keep_active=defaults.keep_active if kept is None else kept,
            membership_namespace=env.get("ENGINE_MEMBERSHIP_NAMESPACE")
            or defaults.membership_namespace,
        )


def _positive(env: Mapping[str, str], name: str, kind: Callable[[str], _N], what: str) -> _N | None:
    """The variable's value if set, as ``kind``; None if unset.

    Raises:
        ValueError: It is set but not a value of ``kind`` above 0 (a year at most).
    """
    value = env.get(name) or None
    if value is None:
        return None
    try:
        number = kind(value)
    except ValueError:
        number = kind("0")
    if not 0 < number < 86400 * 365:
        raise ValueError(f"{name} must be {what} above 0, got {value!r}")
    return number


@dataclass(frozen=True, slots=True)
class TenancySettings:
    """How organizations map to namespaces.

    Attributes:
        namespace_prefix: Namespace = prefix + org id (``ENGINE_NAMESPACE_PREFIX``); None when
            unset (no prefix, but ``engine-`` for ``engined dev``).
        namespace_map: A YAML/JSON file mapping orgs to namespaces and endpoints
            (``ENGINE_NAMESPACE_MAP``); when set, it takes precedence over the prefix.
        retention_days: Retention of closed runs in new namespaces (``ENGINE_RETENTION_DAYS``).
        environ: The environment, for the API keys a namespace map names by variable
            (``api_key_env``).
    """

    namespace_prefix: str | None = None
    namespace_map: str | None = None
    retention_days: int = 3
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TenancySettings:
        """Read ``ENGINE_NAMESPACE_PREFIX``, ``ENGINE_NAMESPACE_MAP``, ``ENGINE_RETENTION_DAYS``."""
        env = os.environ if environ is None else environ
        days = _positive(env, "ENGINE_RETENTION_DAYS", int, "a whole number of days")
        return cls(
            namespace_prefix=env.get("ENGINE_NAMESPACE_PREFIX"),
            namespace_map=env.get("ENGINE_NAMESPACE_MAP") or None,
            retention_days=cls().retention_days if days is None else days,
            environ=dict(env),
        )


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The control plane's listener and token settings.

    Attributes:
        listen: ``host:port`` of the gRPC listener (``ENGINE_LISTEN``).
        token_secret: HS256 secret of bearer tokens (``ENGINE_TOKEN_SECRET``).
        token_public_key: PEM public key (or a path to one) for RS256/ES256 tokens
            (``ENGINE_TOKEN_PUBLIC_KEY``); takes precedence over the secret.
        token_algorithm: ``HS256``, ``RS256`` or ``ES256`` (``ENGINE_TOKEN_ALGORITHM``).
        tls_cert: PEM certificate of the listener (``ENGINE_TLS_CERT``); TLS when set.
        tls_key: PEM private key of the listener (``ENGINE_TLS_KEY``).
        home: Where ``engined dev`` keeps its state (``ENGINE_HOME``, default ``.engine``).
        link_secret: The key answer links are signed with (``ENGINE_LINK_SECRET``); links are
            refused without one (``engined dev`` derives one from its token secret).
        metrics_listen: ``host:port`` of the Prometheus ``/metrics`` endpoint of ``engined``
            (``ENGINE_METRICS_LISTEN``; ``off`` for none); None when unset (``engined dev``:
            ``127.0.0.1:9464``; ``serve`` and ``worker``: none).
    """

    listen: str = "127.0.0.1:50051"
    token_secret: str | None = None
    token_public_key: str | None = None
    token_algorithm: str = "HS256"
    tls_cert: str | None = None
    tls_key: str | None = None
    home: str = ".engine"
    link_secret: str | None = None
    metrics_listen: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerSettings:
        """Read the ``ENGINE_*`` settings of the control plane."""
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            listen=env.get("ENGINE_LISTEN", defaults.listen),
            token_secret=env.get("ENGINE_TOKEN_SECRET") or None,
            token_public_key=env.get("ENGINE_TOKEN_PUBLIC_KEY") or None,
            token_algorithm=env.get("ENGINE_TOKEN_ALGORITHM", defaults.token_algorithm),
            tls_cert=env.get("ENGINE_TLS_CERT") or None,
            tls_key=env.get("ENGINE_TLS_KEY") or None,
            home=env.get("ENGINE_HOME", defaults.home),
            link_secret=env.get("ENGINE_LINK_SECRET") or None,
            metrics_listen=env.get("ENGINE_METRICS_LISTEN") or None,
        )


def client_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """Where ``enginectl`` keeps its contexts: ``$ENGINE_CONFIG``, else
    ``$XDG_CONFIG_HOME/engine/config.yaml``, else ``~/.config/engine/config.yaml``."""
    env = os.environ if environ is None else environ
    if env.get("ENGINE_CONFIG"):
        return Path(env["ENGINE_CONFIG"]).expanduser()
    if env.get("XDG_CONFIG_HOME"):
        return Path(env["XDG_CONFIG_HOME"]) / "engine" / "config.yaml"
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return home / ".config" / "engine" / "config.yaml"


@dataclass(frozen=True, slots=True)
class ClientContext:
    """A named context of ``enginectl``'s config file: a control plane and how to sign in.

    Attributes:
        name: The context's name.
        source: The config file it comes from (for messages).
        address: ``host:port`` of the control plane.
        token: The bearer token itself.
        token_file: A file holding the token (read at each call, so it can be rotated).
        token_env: An environment variable holding the token.
        org: The organization its token speaks for (informational: the token decides).
        tls: Whether to use TLS.
        ca_file: PEM file of the CA to trust; implies TLS.
    """

    name: str
    source: str = ""
    address: str | None = None
    token: str | None = None
    token_file: str | None = None
    token_env: str | None = None
    org: str | None = None
    tls: bool = False
    ca_file: str | None = None

    def read_token(self, environ: Mapping[str, str]) -> str | None:
        """The token, from wherever the context keeps it; None if it has none.

        Raises:
            ValueError: Its token file cannot be read, or its variable is not set.
        """
        if self.token:
            return self.token
        if self.token_file:
            try:
                text = Path(self.token_file).expanduser().read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as error:
                reason = error.strerror if isinstance(error, OSError) else str(error)
                raise ValueError(
                    f"context '{self.name}': cannot read its token file {self.token_file}: "
                    f"{reason or error}"
                ) from None
            if not text:
                raise ValueError(
                    f"context '{self.name}': its token file {self.token_file} is empty"
                )
            return text
        if self.token_env:
            if not environ.get(self.token_env):
                raise ValueError(
                    f"context '{self.name}' takes its token from ${self.token_env}, "
                    "which is not set"
                )
            return environ[self.token_env]
        return None


@dataclass(frozen=True)
class ClientSettings:
    """How ``enginectl`` reaches the control plane.

    Where the settings come from, weakest first: ``.engine/dev.env`` (written by ``engined
    dev``; ``ENGINE_HOME`` moves the directory), or instead of it the context (``--context``,
    else the config file's current context), then the environment (``ENGINE_ADDRESS``,
    ``ENGINE_TOKEN``, ``ENGINE_TLS_CA``), then the command-line flags, which win over
    everything. A context replaces ``dev.env`` rather than sitting above it, so that a dev
    engine's token never goes to the context's address.

    Attributes:
        address: ``host:port`` of the gRPC listener.
        token: The bearer token, if any.
        tls: Whether to use TLS.
        ca_file: PEM file of the CA to trust (TLS); the system's roots when None.
        origin: Where the address came from, for error messages.
        http_url: The base URL of the HTTP API (``ENGINE_HTTP_URL``, which ``engined dev``
            writes to ``dev.env``), where answer links' pages are; None when unknown.
    """

    address: str = DEFAULT_ADDRESS
    token: str | None = None
    tls: bool = False
    ca_file: str | None = None
    origin: str = "the default"
    http_url: str | None = None

    @classmethod
    def resolve(
        cls,
        environ: Mapping[str, str] | None = None,
        home: Path | None = None,
        *,
        address: str | None = None,
        token: str | None = None,
        tls: bool = False,
        ca_file: str | None = None,
        context: ClientContext | None = None,
    ) -> ClientSettings:
        """Combine ``home/dev.env`` (or the context), the environment and the flags (strongest
        last).

        Args:
            environ: The environment (``os.environ`` unless given).
            home: ``engined dev``'s home (``ServerSettings.home`` unless given).
            address: ``--address``.
            token: ``--token``.
            tls: ``--tls``.
            ca_file: ``--ca``.
            context: The selected context of the config file, if any.

        Raises:
            ValueError: The token is the context's, and its file or variable is missing.
        """
        env = os.environ if environ is None else environ
        settings: dict[str, Any] = {"origin": "the default"}
        if context is None:
            home = Path(ServerSettings.from_env(env).home) if home is None else home
            base: tuple[str, Mapping[str, str]] = (
                str(home / DEV_ENV_FILE),
                read_env_file(home / DEV_ENV_FILE),
            )
        else:
            where = f"context '{context.name}'" + (f" ({context.source})" if context.source else "")
            base = (
                where,
                {"ENGINE_ADDRESS": context.address or "", "ENGINE_TLS_CA": context.ca_file or ""},
            )
            settings["tls"] = context.tls
        for origin, layer in (base, ("ENGINE_ADDRESS", env)):
            if layer.get("ENGINE_ADDRESS"):
                settings["address"] = layer["ENGINE_ADDRESS"]
                settings["origin"] = origin
            if layer.get("ENGINE_TOKEN"):
                settings["token"] = layer["ENGINE_TOKEN"]
            if layer.get("ENGINE_TLS_CA"):
                settings["ca_file"] = layer["ENGINE_TLS_CA"]
            # ``engined dev --no-http`` writes "off": no HTTP API, so no URL to give.
            if layer.get("ENGINE_HTTP_URL") and layer["ENGINE_HTTP_URL"] != "off":
                settings["http_url"] = layer["ENGINE_HTTP_URL"].rstrip("/")
        if address:
            settings["address"] = address
            settings["origin"] = "--address"
        if token:
            settings["token"] = token
        elif context is not None and not settings.get("token"):
            # Read only when nothing stronger gives a token: a context's missing token file
            # must not fail a call that passes --token.
            settings["token"] = context.read_token(env)
        if ca_file:
            settings["ca_file"] = ca_file
        settings["tls"] = tls or settings.get("tls", False) or bool(settings.get("ca_file"))
        return cls(**settings)


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (blank lines, ``#`` comments and ``export`` allowed); {} if absent."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values
