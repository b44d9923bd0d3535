"""No traceback ever reaches a client: unexpected exceptions become INTERNAL with an incident id.

The id in the client's message is the one in the server's log line, which carries the
traceback; the client sees neither the exception's text nor its type.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

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
from engine.errors import InvalidFieldError
from engine.tenancy import TemporalUnavailableError
from tests.server.harness import ControlPlaneKit, detail, drain, error_info, rich_status

SECRET_DETAIL = "db password is hunter2"
INTERNAL = re.compile(r"^internal error \(id ([0-9a-f]{12})\); the server log has the details$")


def _explode(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError(SECRET_DETAIL)


def _incident(error: grpc.aio.AioRpcError) -> str:
    assert error.code() == grpc.StatusCode.INTERNAL
    match = INTERNAL.match(error.details() or "")
    assert match, error.details()
    assert SECRET_DETAIL not in str(error) and "Traceback" not in str(error)
    assert "RuntimeError" not in str(error)
    status = rich_status(error)
    info = error_info(status)
    assert (info.reason, info.domain) == ("INTERNAL", "engine")
    assert len(status.details) == 1  # nothing but the ErrorInfo
    return match.group(1)


def _logged(caplog: pytest.LogCaptureFixture, incident: str, method: str) -> logging.LogRecord:
    [record] = [r for r in caplog.records if incident in r.getMessage()]
    assert record.name == "engine.server"
    assert record.levelno == logging.ERROR
    assert record.getMessage() == f"internal error {incident} in {method}"
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    assert str(record.exc_info[1]) == SECRET_DETAIL  # the details stay on the server
    return record


async def test_an_unexpected_exception_is_internal_with_an_id_that_is_in_the_log(
    kit: ControlPlaneKit,
    workflows: workflows_grpc.WorkflowServiceStub,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(kit.dispatcher, "status", _explode)
    caplog.set_level(logging.ERROR, logger="engine.server")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await workflows.GetWorkflow(
            workflows_pb.GetWorkflowRequest(workflow_id="any"), metadata=kit.auth()
        )

    incident = _incident(caught.value)
    _logged(caplog, incident, "/engine.api.v1.WorkflowService/GetWorkflow")

    # Every incident has its own id.
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await workflows.GetWorkflow(
            workflows_pb.GetWorkflowRequest(workflow_id="any"), metadata=kit.auth()
        )
    assert _incident(again.value) != incident


async def test_an_unexpected_exception_in_a_stream_is_internal_too(
    kit: ControlPlaneKit,
    workflows: workflows_grpc.WorkflowServiceStub,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken_watch(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise RuntimeError(SECRET_DETAIL)
        yield  # pragma: no cover - makes this an async generator

    monkeypatch.setattr(kit.dispatcher, "watch", broken_watch)
    caplog.set_level(logging.ERROR, logger="engine.server")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await drain(
            workflows.WatchWorkflow(
                workflows_pb.WatchWorkflowRequest(workflow_id="any"), metadata=kit.auth()
            )
        )

    _logged(caplog, _incident(caught.value), "/engine.api.v1.WorkflowService/WatchWorkflow")


async def test_an_unexpected_exception_in_the_registry_is_internal(
    kit: ControlPlaneKit,
    definitions: definitions_grpc.DefinitionServiceStub,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(kit.stack.registry, "latest", _explode)
    caplog.set_level(logging.ERROR, logger="engine.server")

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await definitions.ListDefinitions(
            definitions_pb.ListDefinitionsRequest(), metadata=kit.auth()
        )

    _logged(caplog, _incident(caught.value), "/engine.api.v1.DefinitionService/ListDefinitions")


async def test_temporal_being_unavailable_is_unavailable_with_a_retry_delay(
    kit: ControlPlaneKit,
    workflows: workflows_grpc.WorkflowServiceStub,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise TemporalUnavailableError("Temporal did not answer for org 'acme': connection refused")

    monkeypatch.setattr(kit.dispatcher, "status", unavailable)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await workflows.GetWorkflow(
            workflows_pb.GetWorkflowRequest(workflow_id="any"), metadata=kit.auth()
        )

    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert caught.value.details() == "Temporal did not answer for org 'acme': connection refused"
    status = rich_status(caught.value)
    assert error_info(status).reason == "TEMPORAL_UNAVAILABLE"
    assert detail(status, error_details_pb2.RetryInfo).retry_delay.seconds == 1


async def test_a_bad_field_reported_by_a_lower_layer_is_a_field_violation(
    kit: ControlPlaneKit,
    workflows: workflows_grpc.WorkflowServiceStub,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise InvalidFieldError("spec.cron[1]", "expected 5 fields, got 3")

    monkeypatch.setattr(kit.dispatcher, "status", refuse)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await workflows.GetWorkflow(
            workflows_pb.GetWorkflowRequest(workflow_id="any"), metadata=kit.auth()
        )

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "spec.cron[1]: expected 5 fields, got 3"
    status = rich_status(caught.value)
    violations = detail(status, error_details_pb2.BadRequest).field_violations
    assert [(v.field, v.description) for v in violations] == [
        ("spec.cron[1]", "expected 5 fields, got 3")
    ]
    assert error_info(status).reason == "INVALID_FIELD"
