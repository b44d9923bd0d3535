"""A client with no generated engine code discovers and calls the API through reflection.

This is what ``grpcurl`` does: list the services, fetch the file descriptors that define one,
build message classes from them at run time and call a method by its name. Nothing in this
module imports ``engine.api``: its message classes come from the server's descriptors alone.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.server.harness import ControlPlaneKit

ENGINE_SERVICES = {
    "engine.api.v1.OrganizationService",
    "engine.api.v1.DefinitionService",
    "engine.api.v1.WorkflowService",
}
BROKEN = """\
name: Not_Valid
version: 1
steps:
  - {id: broken, type: teleport}
"""


class Reflection:
    """A reflection client over a channel: one request, one answer, on the bidi stream."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = reflection_pb2_grpc.ServerReflectionStub(channel)

    async def ask(self, **request: Any) -> reflection_pb2.ServerReflectionResponse:
        call = self.stub.ServerReflectionInfo()
        await call.write(reflection_pb2.ServerReflectionRequest(**request))
        await call.done_writing()
        answers = [answer async for answer in call]
        assert len(answers) == 1
        assert not answers[0].HasField("error_response"), answers[0].error_response
        return answers[0]

    async def pool_for(self, symbol: str) -> descriptor_pool.DescriptorPool:
        """A fresh descriptor pool holding ``symbol``'s file and every file it imports."""
        files: dict[str, descriptor_pb2.FileDescriptorProto] = {}

        def take(answer: reflection_pb2.ServerReflectionResponse) -> None:
            for raw in answer.file_descriptor_response.file_descriptor_proto:
                proto = descriptor_pb2.FileDescriptorProto.FromString(raw)
                files.setdefault(proto.name, proto)

        take(await self.ask(file_containing_symbol=symbol))
        # Like grpcurl: ask for any import the server did not send along.
        while missing := {d for f in files.values() for d in f.dependency} - set(files):
            for name in sorted(missing):
                take(await self.ask(file_by_filename=name))

        pool = descriptor_pool.DescriptorPool()
        added: set[str] = set()

        def add(name: str) -> None:
            if name in added:
                return
            for dependency in files[name].dependency:
                add(dependency)
            pool.Add(files[name])
            added.add(name)

        for name in sorted(files):
            add(name)
        return pool


async def test_services_are_listed_without_a_token(kit: ControlPlaneKit) -> None:
    answer = await Reflection(kit.channel()).ask(list_services="")

    listed = {service.name for service in answer.list_services_response.service}
    assert ENGINE_SERVICES | {"grpc.health.v1.Health"} <= listed
    assert any(name.startswith("grpc.reflection.") for name in listed)


async def test_a_method_is_called_by_name_with_classes_built_from_reflection(
    kit: ControlPlaneKit,
) -> None:
    channel = kit.channel()
    pool = await Reflection(channel).pool_for("engine.api.v1.DefinitionService")

    service = pool.FindServiceByName("engine.api.v1.DefinitionService")
    assert set(service.methods_by_name) == {
        "ValidateDefinition",
        "RegisterDefinition",
        "GetDefinition",
        "ListDefinitions",
    }
    method = service.methods_by_name["ValidateDefinition"]
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    assert request_class.DESCRIPTOR.file.pool is pool  # not the generated code's pool
    assert [f.name for f in request_class.DESCRIPTOR.fields] == ["yaml", "source"]

    validate = channel.unary_unary(
        f"/{service.full_name}/{method.name}",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    answer = await validate(
        json_format.ParseDict({"yaml": BROKEN, "source": "broken.yaml"}, request_class()),
        metadata=kit.auth(),
    )

    assert json_format.MessageToDict(answer) == {
        "problems": [
            {
                "line": 1,
                "column": 7,
                "path": "name",
                "message": "invalid workflow name 'Not_Valid': use lowercase letters, digits "
                "and '-', starting with a letter or digit (at most 63 characters)",
            },
            {
                "line": 4,
                "column": 24,
                "path": "steps[0]",
                "message": "unknown step type 'teleport'; expected one of condition, "
                "set_state, foreach, return, shell, mcp_call, prompt, wait, delegate, loop, break, "
                "parallel, try, wait_for, call",
            },
        ]
    }

    # Reflection is public; the engine's own methods still want a token.
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await validate(request_class(yaml=BROKEN))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_every_engine_service_resolves_with_its_resources(kit: ControlPlaneKit) -> None:
    reflection = Reflection(kit.channel())
    listed = await reflection.ask(list_services="")
    engine_services = {
        s.name for s in listed.list_services_response.service if s.name.startswith("engine.")
    }
    assert engine_services >= ENGINE_SERVICES
    for name in sorted(engine_services):
        pool = await reflection.pool_for(name)
        service = pool.FindServiceByName(name)
        for method in service.methods:
            # Every message a method takes or returns is complete enough to build a class.
            message_factory.GetMessageClass(method.input_type)
            message_factory.GetMessageClass(method.output_type)
    workflow = pool.FindMessageTypeByName("engine.api.v1.Workflow")
    assert workflow.fields_by_name["state"].message_type.full_name == "google.protobuf.Struct"
    watch = pool.FindServiceByName("engine.api.v1.WorkflowService").methods_by_name["WatchWorkflow"]
    assert watch.server_streaming and not watch.client_streaming
