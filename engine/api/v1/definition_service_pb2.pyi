from engine.api.v1 import resources_pb2 as _resources_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ValidateDefinitionRequest(_message.Message):
    __slots__ = ("yaml", "source")
    YAML_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    yaml: str
    source: str
    def __init__(self, yaml: _Optional[str] = ..., source: _Optional[str] = ...) -> None: ...

class ValidateDefinitionResponse(_message.Message):
    __slots__ = ("valid", "problems", "name", "version", "content_hash")
    VALID_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    problems: _containers.RepeatedCompositeFieldContainer[_resources_pb2.DefinitionProblem]
    name: str
    version: int
    content_hash: str
    def __init__(self, valid: _Optional[bool] = ..., problems: _Optional[_Iterable[_Union[_resources_pb2.DefinitionProblem, _Mapping]]] = ..., name: _Optional[str] = ..., version: _Optional[int] = ..., content_hash: _Optional[str] = ...) -> None: ...

class RegisterDefinitionRequest(_message.Message):
    __slots__ = ("yaml",)
    YAML_FIELD_NUMBER: _ClassVar[int]
    yaml: str
    def __init__(self, yaml: _Optional[str] = ...) -> None: ...

class RegisterDefinitionResponse(_message.Message):
    __slots__ = ("definition", "created", "warnings")
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    definition: _resources_pb2.Definition
    created: bool
    warnings: _containers.RepeatedCompositeFieldContainer[_resources_pb2.DefinitionProblem]
    def __init__(self, definition: _Optional[_Union[_resources_pb2.Definition, _Mapping]] = ..., created: _Optional[bool] = ..., warnings: _Optional[_Iterable[_Union[_resources_pb2.DefinitionProblem, _Mapping]]] = ...) -> None: ...

class GetDefinitionRequest(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class GetDefinitionResponse(_message.Message):
    __slots__ = ("definition",)
    DEFINITION_FIELD_NUMBER: _ClassVar[int]
    definition: _resources_pb2.Definition
    def __init__(self, definition: _Optional[_Union[_resources_pb2.Definition, _Mapping]] = ...) -> None: ...

class ListDefinitionsRequest(_message.Message):
    __slots__ = ("name", "page_size", "page_token")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    name: str
    page_size: int
    page_token: str
    def __init__(self, name: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDefinitionsResponse(_message.Message):
    __slots__ = ("definitions", "next_page_token")
    DEFINITIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    definitions: _containers.RepeatedCompositeFieldContainer[_resources_pb2.Definition]
    next_page_token: str
    def __init__(self, definitions: _Optional[_Iterable[_Union[_resources_pb2.Definition, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
