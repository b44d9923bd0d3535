"""The HTTP routes of the API, read from the ``google.api.http`` options of the protos.

The mapping lives in the contracts (``proto/engine/api/v1/*_service.proto``): each RPC names its
HTTP method, its path template (AIP-127: ``POST /v1/workflows/{workflow_id}:submitResult``) and
which part of the request is the body. Nothing here names an RPC.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Final

from google.api import annotations_pb2
from google.protobuf import descriptor, message_factory
from google.protobuf.message import Message

from engine.api.v1 import (
    definition_service_pb2,
    executor_service_pb2,
    link_service_pb2,
    organization_service_pb2,
    schedule_service_pb2,
    workflow_service_pb2,
)

__all__ = ["SERVICE_MODULES", "Route", "routes"]

SERVICE_MODULES: Final[tuple[ModuleType, ...]] = (
    workflow_service_pb2,
    definition_service_pb2,
    schedule_service_pb2,
    executor_service_pb2,
    organization_service_pb2,
    link_service_pb2,
)
_VARIABLE: Final = re.compile(r"\{([a-z_][a-z0-9_.]*)\}")


@dataclass(frozen=True)
class Route:
    """One RPC as HTTP.

    Attributes:
        service: The service's full name (``engine.api.v1.WorkflowService``).
        method: The RPC's name (``SubmitResult``).
        verb: ``GET``, ``POST``, ``PATCH`` or ``DELETE``.
        template: The path template (``/v1/workflows/{workflow_id}:submitResult``).
        body: ``*`` (the whole request), a field name, or "" (no body: the query string).
        request: The request message class.
        response: The response message class.
        streaming: Whether the RPC streams its responses.
    """

    service: str
    method: str
    verb: str
    template: str
    body: str
    request: type[Message]
    response: type[Message]
    streaming: bool

    @property
    def variables(self) -> list[str]:
        """The request fields the path carries, in order (``schedule.schedule_id``)."""
        return _VARIABLE.findall(self.template)

    @property
    def grpc_path(self) -> str:
        """The gRPC method's path (``/engine.api.v1.WorkflowService/SubmitResult``)."""
        return f"/{self.service}/{self.method}"

    def pattern(self) -> re.Pattern[str]:
        """The template as a regular expression over a request's path; a variable may hold
        slashes (a foreach item's workflow id does), so the longest match wins and a custom
        verb (``:cancel``) is matched first by the caller's ordering."""
        parts = []
        last = 0
        for match in _VARIABLE.finditer(self.template):
            parts.append(re.escape(self.template[last : match.start()]))
            parts.append(f"(?P<{match.group(1).replace('.', '__')}>.+)")
            last = match.end()
        parts.append(re.escape(self.template[last:]))
        return re.compile("^" + "".join(parts) + "$")


def routes() -> list[Route]:
    """Every RPC of the API that has an HTTP mapping, custom verbs first (so that
    ``/v1/workflows/{id}:cancel`` is never read as a workflow id ending in ``:cancel``)."""
    found = list(_all_routes())
    return sorted(found, key=lambda r: (":" not in r.template.rsplit("/", 1)[-1], r.template))


def _all_routes() -> Iterator[Route]:
    for module in SERVICE_MODULES:
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                rule = method.GetOptions().Extensions[annotations_pb2.http]
                verb = rule.WhichOneof("pattern")
                if verb is None or verb == "custom":
                    continue
                yield Route(
                    service=service.full_name,
                    method=method.name,
                    verb=verb.upper(),
                    template=getattr(rule, verb),
                    body=rule.body,
                    request=_message_class(method.input_type),
                    response=_message_class(method.output_type),
                    streaming=method.server_streaming,
                )


def _message_class(message: descriptor.Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(message)
