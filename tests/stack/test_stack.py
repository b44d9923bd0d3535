"""The composition root builds every part once, wired through constructors, from settings."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from engine.config import TemporalSettings, TenancySettings, WorkerSettings
from engine.stack import Stack
from engine.tenancy import Endpoint, MapResolver, PrefixResolver
from engine.worker import WorkerOptions


def test_parts_are_wired_through_their_constructors() -> None:
    stack = Stack(
        PrefixResolver(Endpoint("127.0.0.1:1"), "p-"),
        task_queue="q",
        workers=WorkerOptions(task_queue="ignored", workflow_task_threads=2),
        orgs=("a",),
        retention=timedelta(days=5),
    )
    assert stack.pool is not None
    assert stack.pool.options.task_queue == "q"  # the stack's queue wins over the options'
    assert stack.pool.options.workflow_task_threads == 2
    assert stack.pool.orgs == frozenset({"a"})
    assert stack.provisioner.workers is stack.pool
    assert stack.provisioner.directory is stack.directory
    assert stack.provisioner.retention == timedelta(days=5)
    assert stack.dispatcher.definitions is stack.registry
    assert stack.scheduler.definitions is stack.registry
    assert stack.dispatcher.factory.task_queue == stack.scheduler.factory.task_queue == "q"
    assert stack.registry.task_queue == "q"
    # One pool of connections for every part.
    for part in (stack.dispatcher, stack.registry, stack.scheduler):
        assert part.router.clients is stack.clients
    assert stack.directory.clients is stack.clients
    assert stack.clients.connection_count == 0  # nothing connects before it is used


def test_a_control_plane_replica_runs_no_workers() -> None:
    stack = Stack(PrefixResolver(Endpoint("127.0.0.1:1")))
    assert stack.pool is None
    assert stack.provisioner.workers is None


def test_settings_choose_the_resolver_the_task_queue_and_the_retention(tmp_path: Path) -> None:
    temporal = TemporalSettings.from_env(
        {"TEMPORAL_ADDRESS": "t:7233", "TEMPORAL_TASK_QUEUE": "jobs"}
    )
    prefixed = Stack.from_settings(
        temporal, TenancySettings.from_env({"ENGINE_NAMESPACE_PREFIX": "acme-"})
    )
    assert prefixed.resolver.resolve("x").namespace == "acme-x"
    assert prefixed.resolver.resolve("x").endpoint == Endpoint("t:7233")
    assert prefixed.task_queue == "jobs"

    unset = TenancySettings.from_env({"ENGINE_RETENTION_DAYS": "9"})
    assert Stack.from_settings(temporal, unset).resolver.resolve("x").namespace == "x"
    dev = Stack.from_settings(temporal, unset, default_prefix="engine-")
    assert dev.resolver.resolve("x").namespace == "engine-x"
    assert dev.provisioner.retention == timedelta(days=9)
    # An empty prefix given on purpose is a prefix, not "unset".
    empty = TenancySettings.from_env({"ENGINE_NAMESPACE_PREFIX": ""})
    explicit = Stack.from_settings(temporal, empty, default_prefix="engine-")
    assert explicit.resolver.resolve("x").namespace == "x"

    path = tmp_path / "map.json"
    path.write_text(
        json.dumps({"orgs": {"acme": {"address": "c:7233", "api_key_env": "ACME_KEY"}}})
    )
    mapped = Stack.from_settings(
        temporal,
        TenancySettings.from_env({"ENGINE_NAMESPACE_MAP": str(path), "ACME_KEY": "secret"}),
    )
    assert isinstance(mapped.resolver, MapResolver)
    assert mapped.resolver.resolve("acme").endpoint.api_key == "secret"


def test_numeric_settings_default_and_name_what_is_wrong() -> None:
    assert WorkerSettings.from_env({}) == WorkerSettings(cached_runs=1000, grace=10.0)
    tuned = WorkerSettings.from_env(
        {"ENGINE_WORKER_CACHED_RUNS": "250", "ENGINE_WORKER_GRACE": "2.5"}
    )
    assert (tuned.cached_runs, tuned.grace) == (250, 2.5)
    assert TemporalSettings.from_env({}).action_lease is None
    assert TemporalSettings.from_env({"ENGINE_ACTION_LEASE": "15"}).action_lease == 15.0
    assert TenancySettings.from_env({}).retention_days == 3

    for name, value, expected in [
        ("ENGINE_WORKER_CACHED_RUNS", "lots", "ENGINE_WORKER_CACHED_RUNS must be a whole number"),
        ("ENGINE_WORKER_CACHED_RUNS", "0", "ENGINE_WORKER_CACHED_RUNS must be a whole number"),
        ("ENGINE_WORKER_GRACE", "-1", "ENGINE_WORKER_GRACE must be a number of seconds"),
        ("ENGINE_ACTION_LEASE", "1m", "ENGINE_ACTION_LEASE must be a number of seconds"),
        ("ENGINE_RETENTION_DAYS", "1.5", "ENGINE_RETENTION_DAYS must be a whole number of days"),
    ]:
        reader = {
            "ENGINE_WORKER_CACHED_RUNS": WorkerSettings.from_env,
            "ENGINE_WORKER_GRACE": WorkerSettings.from_env,
            "ENGINE_ACTION_LEASE": TemporalSettings.from_env,
            "ENGINE_RETENTION_DAYS": TenancySettings.from_env,
        }[name]
        with pytest.raises(ValueError, match=expected) as error:
            reader({name: value})
        assert f"got {value!r}" in str(error.value)
