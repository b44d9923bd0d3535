import datetime

from engine.api.v1 import resources_pb2 as _resources_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RetryMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RETRY_MODE_UNSPECIFIED: _ClassVar[RetryMode]
    RETRY_MODE_FROM_FAILED_STEP: _ClassVar[RetryMode]
    RETRY_MODE_FROM_START: _ClassVar[RetryMode]
RETRY_MODE_UNSPECIFIED: RetryMode
RETRY_MODE_FROM_FAILED_STEP: RetryMode
RETRY_MODE_FROM_START: RetryMode

class StartWorkflowRequest(_message.Message):
    __slots__ = ("definition_name", "definition_yaml", "definition_version", "inputs", "workflow_id", "request_id", "wait_for_suspension")
    DEFINITION_NAME_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_YAML_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_VERSION_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WAIT_FOR_SUSPENSION_FIELD_NUMBER: _ClassVar[int]
    definition_name: str
    definition_yaml: str
    definition_version: int
    inputs: _struct_pb2.Struct
    workflow_id: str
    request_id: str
    wait_for_suspension: bool
    def __init__(self, definition_name: _Optional[str] = ..., definition_yaml: _Optional[str] = ..., definition_version: _Optional[int] = ..., inputs: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., workflow_id: _Optional[str] = ..., request_id: _Optional[str] = ..., wait_for_suspension: _Optional[bool] = ...) -> None: ...

class StartWorkflowResponse(_message.Message):
    __slots__ = ("workflow_id", "run_id", "workflow_type", "status", "pending_actions", "result", "error")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_TYPE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PENDING_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    run_id: str
    workflow_type: str
    status: _resources_pb2.RunStatus
    pending_actions: _containers.RepeatedCompositeFieldContainer[_resources_pb2.PendingAction]
    result: _struct_pb2.Value
    error: str
    def __init__(self, workflow_id: _Optional[str] = ..., run_id: _Optional[str] = ..., workflow_type: _Optional[str] = ..., status: _Optional[_Union[_resources_pb2.RunStatus, str]] = ..., pending_actions: _Optional[_Iterable[_Union[_resources_pb2.PendingAction, _Mapping]]] = ..., result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

class GetWorkflowRequest(_message.Message):
    __slots__ = ("workflow_id", "run_id")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    run_id: str
    def __init__(self, workflow_id: _Optional[str] = ..., run_id: _Optional[str] = ...) -> None: ...

class GetWorkflowResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: _resources_pb2.Workflow
    def __init__(self, workflow: _Optional[_Union[_resources_pb2.Workflow, _Mapping]] = ...) -> None: ...

class ListWorkflowsRequest(_message.Message):
    __slots__ = ("status", "definition_name", "query", "include_children", "page_size", "page_token")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_NAME_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_CHILDREN_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    status: _resources_pb2.RunStatus
    definition_name: str
    query: str
    include_children: bool
    page_size: int
    page_token: str
    def __init__(self, status: _Optional[_Union[_resources_pb2.RunStatus, str]] = ..., definition_name: _Optional[str] = ..., query: _Optional[str] = ..., include_children: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListWorkflowsResponse(_message.Message):
    __slots__ = ("workflows", "next_page_token")
    WORKFLOWS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    workflows: _containers.RepeatedCompositeFieldContainer[_resources_pb2.WorkflowSummary]
    next_page_token: str
    def __init__(self, workflows: _Optional[_Iterable[_Union[_resources_pb2.WorkflowSummary, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SubmitResultRequest(_message.Message):
    __slots__ = ("workflow_id", "action_id", "step_id", "result", "error")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    action_id: str
    step_id: str
    result: _struct_pb2.Value
    error: str
    def __init__(self, workflow_id: _Optional[str] = ..., action_id: _Optional[str] = ..., step_id: _Optional[str] = ..., result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

class SubmitResultResponse(_message.Message):
    __slots__ = ("status", "current_step", "pending_actions", "result", "error")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_STEP_FIELD_NUMBER: _ClassVar[int]
    PENDING_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    status: _resources_pb2.RunStatus
    current_step: str
    pending_actions: _containers.RepeatedCompositeFieldContainer[_resources_pb2.PendingAction]
    result: _struct_pb2.Value
    error: str
    def __init__(self, status: _Optional[_Union[_resources_pb2.RunStatus, str]] = ..., current_step: _Optional[str] = ..., pending_actions: _Optional[_Iterable[_Union[_resources_pb2.PendingAction, _Mapping]]] = ..., result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

class CancelWorkflowRequest(_message.Message):
    __slots__ = ("workflow_id", "reason")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    reason: str
    def __init__(self, workflow_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelWorkflowResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class UpdateTimeoutRequest(_message.Message):
    __slots__ = ("workflow_id", "step_id", "timeout")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    step_id: str
    timeout: _duration_pb2.Duration
    def __init__(self, workflow_id: _Optional[str] = ..., step_id: _Optional[str] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class UpdateTimeoutResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListPendingActionsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListPendingActionsResponse(_message.Message):
    __slots__ = ("pending_actions", "next_page_token")
    PENDING_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    pending_actions: _containers.RepeatedCompositeFieldContainer[_resources_pb2.PendingAction]
    next_page_token: str
    def __init__(self, pending_actions: _Optional[_Iterable[_Union[_resources_pb2.PendingAction, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchWorkflowRequest(_message.Message):
    __slots__ = ("workflow_id",)
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    def __init__(self, workflow_id: _Optional[str] = ...) -> None: ...

class WatchWorkflowResponse(_message.Message):
    __slots__ = ("workflow",)
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    workflow: _resources_pb2.Workflow
    def __init__(self, workflow: _Optional[_Union[_resources_pb2.Workflow, _Mapping]] = ...) -> None: ...

class RetryWorkflowRequest(_message.Message):
    __slots__ = ("workflow_id", "run_id", "mode")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    run_id: str
    mode: RetryMode
    def __init__(self, workflow_id: _Optional[str] = ..., run_id: _Optional[str] = ..., mode: _Optional[_Union[RetryMode, str]] = ...) -> None: ...

class RetryWorkflowResponse(_message.Message):
    __slots__ = ("workflow_id", "run_id")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    run_id: str
    def __init__(self, workflow_id: _Optional[str] = ..., run_id: _Optional[str] = ...) -> None: ...
