"""Prometheus metrics of an ``engined`` process, labelled by organization.

What a scrape of ``/metrics`` shows, and where each series comes from:

=========================================  ===================================================
series                                     recorded by
=========================================  ===================================================
``engine_runs_started_total``,             the interpreter workflow itself, through Temporal's
``engine_runs_completed_total``,           replay-safe ``workflow.metric_meter()`` (labels
``engine_runs_failed_total``,              ``org``, ``definition``, and the SDK's
``engine_runs_cancelled_total``            ``namespace``, ``task_queue``, ``workflow_type``):
                                           every run, whoever started it
``engine_action_answer_seconds``           the workflow, when an action's answer arrives
                                           (``org``, ``action_type``)
``engine_actions_waiting``,                computed at scrape time from Temporal visibility
``engine_actions_oldest_waiting_seconds``  for the orgs this process serves (``org``,
                                           ``action_type``), cached for a few seconds
``engine_grpc_requests_total``,            the control plane's outermost interceptor
``engine_grpc_request_seconds``            (``method``, ``code``, ``org`` where known)
``engine_http_requests_total``,            the HTTP/JSON gateway's middleware (``route``,
``engine_http_request_seconds``            ``method``, ``status``)
``temporal_*``                             the Temporal SDK's core (worker polls, task
                                           latencies, ...), with their attributes as labels
=========================================  ===================================================

The Temporal SDK records into a :class:`~temporalio.runtime.MetricBuffer` of a
:class:`~temporalio.runtime.Runtime` of its own (:attr:`EngineMetrics.runtime`, handed to every
``Client.connect`` of the process); :class:`SdkMetricsCollector` drains it, on each scrape and
every second (so it never fills up and drops updates), and keeps the cumulative values.

Nothing here runs unless metrics are on: without an :class:`EngineMetrics`, the engine connects
with the SDK's default runtime (no metrics), adds no interceptor and no middleware, and the
workflow's meter is the SDK's no-op one.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import grpc
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as _exposition
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
)

from engine.context import CALL_ORG

if TYPE_CHECKING:
    from temporalio.runtime import BufferedMetricUpdate

__all__ = [
    "HTTP_ROUTE_KEY",
    "ActionGauges",
    "EngineMetrics",
    "MetricsEndpoint",
    "SdkMetricsCollector",
    "WaitingActions",
]

log = logging.getLogger(__name__)

DURATION_BUCKETS: Final = (
    0.001,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
    1800.0,
    3600.0,
    6 * 3600.0,
    86400.0,
)
"""Buckets of every histogram (seconds): the SDK's task latencies (milliseconds) and an
action's answer time (up to a day) alike."""
BUFFER_SIZE: Final = 200_000
"""Updates the SDK's buffer holds between drains (it drops, and logs, beyond that)."""
DRAIN_INTERVAL: Final = 1.0
"""Seconds between drains of the SDK's buffer besides the scrapes."""
HTTP_ROUTE_KEY: Final = "engine.route"
"""The ASGI scope key where an app names the route template a request matched (the gateway's
``/v1/workflows/{workflow_id}``), for the ``route`` label."""

WaitingActions: TypeAlias = Callable[[str], Awaitable[Sequence[Mapping[str, Any]]]]
"""The pending actions of an org's waiting runs (each with ``type`` and ``created_at``), from
visibility only: one call per page, bounded, never a query per run, never waking the org."""

_LABEL: Final = re.compile(r"[^a-zA-Z0-9_]")
_LABEL_SETS_KEPT: Final = 50_000


# -- the SDK's metrics ------------------------------------------------------------------------


@dataclass
class _Family:
    """The cumulative values of one buffered metric, by label set."""

    name: str
    kind: int
    documentation: str
    values: dict[tuple[tuple[str, str], ...], float] = field(default_factory=dict)
    buckets: dict[tuple[tuple[str, str], ...], list[float]] = field(default_factory=dict)


class SdkMetricsCollector(Collector):
    """Exposes what the Temporal SDK recorded in a :class:`MetricBuffer`: counters as
    ``<name>_total``, gauges, and histograms bucketed with :data:`DURATION_BUCKETS` (durations
    in seconds), each metric's attributes as labels.

    The buffer hands out deltas (counters) and single observations (histograms): they are
    summed here, so :meth:`drain` must see every update, hence the periodic drain.
    """

    def __init__(self, buffer: MetricBuffer) -> None:
        self.buffer = buffer
        self._families: dict[str, _Family] = {}
        # Labels by attributes as they come (sorted and made label-safe once per set seen).
        self._labels: dict[tuple[tuple[str, Any], ...], tuple[tuple[str, str], ...]] = {}
        self._lock = threading.Lock()

    def drain(self) -> int:
        """Take every update from the buffer into the cumulative values; returns how many."""
        with self._lock:
            updates = self.buffer.retrieve_updates()
            for update in updates:
                self._apply(update)
            return len(updates)

    def _apply(self, update: BufferedMetricUpdate) -> None:
        metric = update.metric
        family = self._families.get(metric.name)
        if family is None:
            family = self._families[metric.name] = _Family(
                _LABEL.sub("_", metric.name), metric.kind, metric.description or metric.name
            )
        raw = tuple(update.attributes.items())
        labels = self._labels.get(raw)
        if labels is None:
            if len(self._labels) > _LABEL_SETS_KEPT:  # a bound, whatever the attributes
                self._labels.clear()
            labels = tuple(sorted((_LABEL.sub("_", str(k)), str(v)) for k, v in raw))
            self._labels[raw] = labels
        value = float(update.value)
        if family.kind == BUFFERED_METRIC_KIND_COUNTER:
            family.values[labels] = family.values.get(labels, 0.0) + value
        elif family.kind == BUFFERED_METRIC_KIND_GAUGE:
            family.values[labels] = value
        else:
            counts = family.buckets.get(labels)
            if counts is None:
                # One count per bucket, then +Inf, then the sum.
                counts = family.buckets[labels] = [0.0] * (len(DURATION_BUCKETS) + 2)
            counts[bisect.bisect_left(DURATION_BUCKETS, value)] += 1
            counts[-1] += value

    def collect(self) -> Iterator[Metric]:
        """Drain, then every metric seen so far with its cumulative values."""
        with contextlib.suppress(RuntimeError):  # the runtime is gone (the process stops)
            self.drain()
        with self._lock:
            for family in self._families.values():
                yield _exposed(family)


def _exposed(family: _Family) -> Metric:
    if family.kind == BUFFERED_METRIC_KIND_COUNTER:
        metric = Metric(family.name, family.documentation, "counter")
        for labels, value in family.values.items():
            metric.add_sample(f"{family.name}_total", dict(labels), value)
        return metric
    if family.kind == BUFFERED_METRIC_KIND_GAUGE:
        metric = Metric(family.name, family.documentation, "gauge")
        for labels, value in family.values.items():
            metric.add_sample(family.name, dict(labels), value)
        return metric
    metric = Metric(family.name, family.documentation, "histogram")
    for labels, counts in family.buckets.items():
        cumulative = 0.0
        for bound, count in zip((*DURATION_BUCKETS, float("inf")), counts, strict=False):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            metric.add_sample(f"{family.name}_bucket", {**dict(labels), "le": le}, cumulative)
        metric.add_sample(f"{family.name}_count", dict(labels), cumulative)
        metric.add_sample(f"{family.name}_sum", dict(labels), counts[-1])
    return metric


# -- waiting actions ----------------------------------------------------------------------


@dataclass
class _OrgActions:
    fetched_at: float
    waiting: dict[str, tuple[int, datetime | None]]


class ActionGauges(Collector):
    """``engine_actions_waiting`` and ``engine_actions_oldest_waiting_seconds`` of the orgs this
    process serves, by action type, from visibility (see :data:`WaitingActions`).

    An org's figures are kept ``ttl`` seconds; a refresh lists at most ``orgs_per_refresh`` of
    the stalest orgs, ``concurrency`` at once, within ``timeout`` seconds, so a scrape costs
    Temporal a bounded number of visibility calls however many orgs there are. An action type
    an org had waiting stays in its series at 0 once none waits.

    Args:
        orgs: The org ids this process serves.
        waiting: Lists an org's pending actions.
        ttl: Seconds an org's figures are kept before it is listed again.
        orgs_per_refresh: Most orgs listed by one refresh.
        concurrency: Most listings at once.
        timeout: Seconds a refresh may take (what did not finish keeps its old figures).
    """

    def __init__(
        self,
        orgs: Callable[[], Iterable[str]],
        waiting: WaitingActions,
        *,
        ttl: float = 15.0,
        orgs_per_refresh: int = 200,
        concurrency: int = 8,
        timeout: float = 5.0,
    ) -> None:
        self.orgs = orgs
        self.waiting = waiting
        self.ttl = ttl
        self.orgs_per_refresh = orgs_per_refresh
        self.concurrency = concurrency
        self.timeout = timeout
        self._cache: dict[str, _OrgActions] = {}
        self._refreshing: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        """List the orgs whose figures are older than ``ttl`` (one refresh at a time: a scrape
        during a refresh waits for it)."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._refresh())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._refreshing), self.timeout)

    async def _refresh(self) -> None:
        served = set(self.orgs())
        for gone in self._cache.keys() - served:
            del self._cache[gone]
        now = time.monotonic()
        stale = sorted(
            (org for org in served if now - self._fetched_at(org) >= self.ttl),
            key=self._fetched_at,
        )[: self.orgs_per_refresh]
        slots = asyncio.Semaphore(self.concurrency)

        async def list_org(org_id: str) -> None:
            async with slots:
                try:
                    actions = await self.waiting(org_id)
                except Exception as error:  # keeps its old figures; tried again next time
                    log.debug("cannot list the waiting actions of org %s: %s", org_id, error)
                    return
            self._store(org_id, actions)

        await asyncio.gather(*(list_org(org_id) for org_id in stale))

    def _fetched_at(self, org_id: str) -> float:
        kept = self._cache.get(org_id)
        return kept.fetched_at if kept is not None else float("-inf")

    def _store(self, org_id: str, actions: Sequence[Mapping[str, Any]]) -> None:
        previous = self._cache.get(org_id)
        # A type that had actions waiting stays, at 0: its series drops to 0, not out.
        seen = previous.waiting if previous is not None else {}
        waiting: dict[str, tuple[int, datetime | None]] = dict.fromkeys(seen, (0, None))
        for action in actions:
            kind = str(action.get("type", ""))
            count, oldest = waiting.get(kind, (0, None))
            created = _instant(action.get("created_at"))
            if created is not None and (oldest is None or created < oldest):
                oldest = created
            waiting[kind] = (count + 1, oldest)
        self._cache[org_id] = _OrgActions(time.monotonic(), waiting)

    def collect(self) -> Iterator[Metric]:
        """The cached figures (a scrape refreshes them first, see ``MetricsEndpoint``)."""
        counts = GaugeMetricFamily(
            "engine_actions_waiting",
            "Pending actions of waiting runs, by org and action type (from visibility).",
            labels=("org", "action_type"),
        )
        ages = GaugeMetricFamily(
            "engine_actions_oldest_waiting_seconds",
            "Age of the oldest pending action, by org and action type (0: none waits).",
            labels=("org", "action_type"),
        )
        now = datetime.now(UTC)
        for org_id, kept in sorted(self._cache.items()):
            for kind, (count, oldest) in sorted(kept.waiting.items()):
                counts.add_metric((org_id, kind), count)
                age = max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
                ages.add_metric((org_id, kind), age)
        yield counts
        yield ages


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        return None
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


# -- gRPC and HTTP ------------------------------------------------------------------------


ASGIApp: TypeAlias = Callable[[Any, Any, Any], Awaitable[None]]


def _http_metrics(app: Any, requests: Counter, latency: Histogram) -> ASGIApp:
    """``app`` (an ASGI app, Starlette's) with every HTTP request counted and timed by route
    template, method and status."""
    paths: dict[Any, str] = {}
    for route in getattr(app, "routes", ()):
        endpoint = getattr(route, "endpoint", None) or getattr(route, "app", None)
        if endpoint is not None and isinstance(getattr(route, "path", None), str):
            paths[endpoint] = route.path or "/"

    async def measured(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        status = 500
        start = time.perf_counter()

        async def sending(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await app(scope, receive, sending)
        finally:
            route = scope.get(HTTP_ROUTE_KEY)
            if route is None:
                endpoint = scope.get("endpoint") or scope.get("app")
                route = paths.get(endpoint, "other") if endpoint is not None else "other"
            labels = (route, scope.get("method", ""), str(status))
            requests.labels(*labels).inc()
            latency.labels(*labels).observe(time.perf_counter() - start)

    return measured


# -- the whole -----------------------------------------------------------------------------


class EngineMetrics:
    """The metrics of one process: a registry of its own, the SDK runtime whose buffer feeds
    it, and the pieces that record into it (see the module's table).

    A dedicated :class:`~temporalio.runtime.Runtime` (the SDK's runtime is per object, not per
    process: each makes its own thread pool), never ``Runtime.default``: hand :attr:`runtime`
    to the engine's ``Stack`` (its ``ClientPool`` connects with it).

    Args:
        buffer_size: Updates the SDK's buffer holds between drains.
        registry: Where the series go (a new registry unless given).
    """

    def __init__(
        self, *, buffer_size: int = BUFFER_SIZE, registry: CollectorRegistry | None = None
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        buffer = MetricBuffer(buffer_size, MetricBufferDurationFormat.SECONDS)
        self.runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
        self.sdk = SdkMetricsCollector(buffer)
        self.registry.register(self.sdk)
        self.actions: ActionGauges | None = None
        self.grpc_requests = Counter(
            "engine_grpc_requests",
            "gRPC calls of the control plane, by method, status code and org (where known).",
            ("method", "code", "org"),
            registry=self.registry,
        )
        self.grpc_latency = Histogram(
            "engine_grpc_request_seconds",
            "Time the control plane took to answer a gRPC call (a stream: its whole length).",
            ("method", "code", "org"),
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.http_requests = Counter(
            "engine_http_requests",
            "HTTP requests of the gateway, by route template, method and status.",
            ("route", "method", "status"),
            registry=self.registry,
        )
        self.http_latency = Histogram(
            "engine_http_request_seconds",
            "Time the gateway took to answer an HTTP request (a stream: its whole length).",
            ("route", "method", "status"),
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )

    def record_grpc(self, method: str, code: grpc.StatusCode, seconds: float) -> None:
        """Count and time a call of the control plane (its server's metering interceptor
        calls it as each call ends), with the org its token named (``CALL_ORG``)."""
        labels = (method, code.name, CALL_ORG.get() or "")
        self.grpc_requests.labels(*labels).inc()
        self.grpc_latency.labels(*labels).observe(seconds)

    def http_middleware(self, app: Any) -> ASGIApp:
        """``app`` (the gateway's ASGI app) with its requests counted and timed."""
        return _http_metrics(app, self.http_requests, self.http_latency)

    def watch_actions(
        self, orgs: Callable[[], Iterable[str]], waiting: WaitingActions, **options: Any
    ) -> ActionGauges:
        """Expose the waiting actions of ``orgs()`` (options: those of :class:`ActionGauges`)."""
        if self.actions is not None:
            self.registry.unregister(self.actions)
        self.actions = ActionGauges(orgs, waiting, **options)
        self.registry.register(self.actions)
        return self.actions

    async def scrape(self) -> bytes:
        """The exposition of every series, waiting actions refreshed first (if stale)."""
        if self.actions is not None:
            await self.actions.refresh()
        return _exposition(self.registry)


class MetricsEndpoint:
    """``GET /metrics`` over HTTP at ``host:port`` on the caller's event loop (the waiting
    actions are listed on it, with the process's Temporal clients); it also drains the SDK's
    buffer every :data:`DRAIN_INTERVAL` seconds.

    A deliberately small HTTP/1.1 server (one request a connection): Prometheus and curl are
    its clients, and it needs no thread or framework of its own.
    """

    def __init__(self, metrics: EngineMetrics, *, host: str, port: int) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._drainer: asyncio.Task[None] | None = None

    @classmethod
    def parse(cls, listen: str) -> tuple[str, int]:
        """``host:port`` as a pair.

        Raises:
            ValueError: It is not ``host:port``.
        """
        host, _, port = listen.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"the metrics listen address must be host:port, got {listen!r}")
        return host.strip("[]"), int(port)

    @property
    def url(self) -> str:
        """``http://host:port/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    async def start(self) -> None:
        """Listen, and start draining.

        Raises:
            OSError: It could not listen (the port is taken, say).
        """
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self._drainer = asyncio.create_task(self._drain())

    async def stop(self) -> None:
        """Stop listening and draining."""
        if self._drainer is not None:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    async def _drain(self) -> None:
        while True:
            await asyncio.sleep(DRAIN_INTERVAL)
            try:
                self.metrics.sdk.drain()
            except Exception as error:  # never stops draining
                log.warning("cannot drain the Temporal SDK's metrics: %s", error)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10.0)
            verb, _, rest = request.split(b"\r\n", 1)[0].decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            if verb not in ("GET", "HEAD"):
                status, kind, body = "405 Method Not Allowed", "text/plain", b"use GET\n"
            elif path != "/metrics":
                status, kind, body = "404 Not Found", "text/plain", b"see /metrics\n"
            else:
                status, kind, body = "200 OK", CONTENT_TYPE_LATEST, await self.metrics.scrape()
            head = (
                f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode("latin-1") + (body if verb != "HEAD" else b""))
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            pass
        except Exception:
            log.exception("cannot answer a metrics scrape")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
