import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RunStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RUN_STATUS_UNSPECIFIED: _ClassVar[RunStatus]
    RUN_STATUS_RUNNING: _ClassVar[RunStatus]
    RUN_STATUS_WAITING: _ClassVar[RunStatus]
    RUN_STATUS_COMPLETED: _ClassVar[RunStatus]
    RUN_STATUS_FAILED: _ClassVar[RunStatus]
    RUN_STATUS_CANCELLED: _ClassVar[RunStatus]

class ActionType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTION_TYPE_UNSPECIFIED: _ClassVar[ActionType]
    ACTION_TYPE_SHELL: _ClassVar[ActionType]
    ACTION_TYPE_MCP_CALL: _ClassVar[ActionType]
    ACTION_TYPE_PROMPT: _ClassVar[ActionType]
    ACTION_TYPE_DELEGATE: _ClassVar[ActionType]

class StepOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STEP_OUTCOME_UNSPECIFIED: _ClassVar[StepOutcome]
    STEP_OUTCOME_COMPLETED: _ClassVar[StepOutcome]
    STEP_OUTCOME_FAILED: _ClassVar[StepOutcome]
    STEP_OUTCOME_SKIPPED: _ClassVar[StepOutcome]
    STEP_OUTCOME_CANCELLED: _ClassVar[StepOutcome]
RUN_STATUS_UNSPECIFIED: RunStatus
RUN_STATUS_RUNNING: RunStatus
RUN_STATUS_WAITING: RunStatus
RUN_STATUS_COMPLETED: RunStatus
RUN_STATUS_FAILED: RunStatus
RUN_STATUS_CANCELLED: RunStatus
ACTION_TYPE_UNSPECIFIED: ActionType
ACTION_TYPE_SHELL: ActionType
ACTION_TYPE_MCP_CALL: ActionType
ACTION_TYPE_PROMPT: ActionType
ACTION_TYPE_DELEGATE: ActionType
STEP_OUTCOME_UNSPECIFIED: StepOutcome
STEP_OUTCOME_COMPLETED: StepOutcome
STEP_OUTCOME_FAILED: StepOutcome
STEP_OUTCOME_SKIPPED: StepOutcome
STEP_OUTCOME_CANCELLED: StepOutcome

class PendingAction(_message.Message):
    __slots__ = ("action_id", "type", "step_id", "parameters", "timeout", "deadline", "attempt", "create_time", "workflow_id", "run_id", "state")
    ACTION_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    action_id: str
    type: ActionType
    step_id: str
    parameters: _struct_pb2.Struct
    timeout: _duration_pb2.Duration
    deadline: _timestamp_pb2.Timestamp
    attempt: int
    create_time: _timestamp_pb2.Timestamp
    workflow_id: str
    run_id: str
    state: _struct_pb2.Struct
    def __init__(self, action_id: _Optional[str] = ..., type: _Optional[_Union[ActionType, str]] = ..., step_id: _Optional[str] = ..., parameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempt: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., workflow_id: _Optional[str] = ..., run_id: _Optional[str] = ..., state: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class StepRecord(_message.Message):
    __slots__ = ("step_id", "type", "start_time", "finish_time", "outcome", "attempts", "error")
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    FINISH_TIME_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    step_id: str
    type: str
    start_time: _timestamp_pb2.Timestamp
    finish_time: _timestamp_pb2.Timestamp
    outcome: StepOutcome
    attempts: int
    error: str
    def __init__(self, step_id: _Optional[str] = ..., type: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., outcome: _Optional[_Union[StepOutcome, str]] = ..., attempts: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class WaitInfo(_message.Message):
    __slots__ = ("step_id", "message", "until")
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    step_id: str
    message: str
    until: _timestamp_pb2.Timestamp
    def __init__(self, step_id: _Optional[str] = ..., message: _Optional[str] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Workflow(_message.Message):
    __slots__ = ("workflow_id", "run_id", "workflow_type", "definition_name", "definition_version", "definition_hash", "status", "current_step", "pending_actions", "waiting", "history", "state", "result", "error", "start_time", "org_id")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_TYPE_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_NAME_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_VERSION_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_HASH_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_STEP_FIELD_NUMBER: _ClassVar[int]
    PENDING_ACTIONS_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    run_id: str
    workflow_type: str
    definition_name: str
    definition_version: int
    definition_hash: str
    status: RunStatus
    current_step: str
    pending_actions: _containers.RepeatedCompositeFieldContainer[PendingAction]
    waiting: WaitInfo
    history: _containers.RepeatedCompositeFieldContainer[StepRecord]
    state: _struct_pb2.Struct
    result: _struct_pb2.Value
    error: str
    start_time: _timestamp_pb2.Timestamp
    org_id: str
    def __init__(self, workflow_id: _Optional[str] = ..., run_id: _Optional[str] = ..., workflow_type: _Optional[str] = ..., definition_name: _Optional[str] = ..., definition_version: _Optional[int] = ..., definition_hash: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., current_step: _Optional[str] = ..., pending_actions: _Optional[_Iterable[_Union[PendingAction, _Mapping]]] = ..., waiting: _Optional[_Union[WaitInfo, _Mapping]] = ..., history: _Optional[_Iterable[_Union[StepRecord, _Mapping]]] = ..., state: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., error: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., org_id: _Optional[str] = ...) -> None: ...

class WorkflowSummary(_message.Message):
    __slots__ = ("workflow_id", "run_id", "workflow_type", "definition_name", "status", "current_step", "start_time", "close_time", "parent_workflow_id")
    WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_TYPE_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_STEP_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    CLOSE_TIME_FIELD_NUMBER: _ClassVar[int]
    PARENT_WORKFLOW_ID_FIELD_NUMBER: _ClassVar[int]
    workflow_id: str
    run_id: str
    workflow_type: str
    definition_name: str
    status: RunStatus
    current_step: str
    start_time: _timestamp_pb2.Timestamp
    close_time: _timestamp_pb2.Timestamp
    parent_workflow_id: str
    def __init__(self, workflow_id: _Optional[str] = ..., run_id: _Optional[str] = ..., workflow_type: _Optional[str] = ..., definition_name: _Optional[str] = ..., status: _Optional[_Union[RunStatus, str]] = ..., current_step: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., close_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., parent_workflow_id: _Optional[str] = ...) -> None: ...

class Definition(_message.Message):
    __slots__ = ("name", "version", "description", "content_hash", "yaml", "workflow_type", "create_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CONTENT_HASH_FIELD_NUMBER: _ClassVar[int]
    YAML_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_TYPE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: int
    description: str
    content_hash: str
    yaml: str
    workflow_type: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., version: _Optional[int] = ..., description: _Optional[str] = ..., content_hash: _Optional[str] = ..., yaml: _Optional[str] = ..., workflow_type: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Organization(_message.Message):
    __slots__ = ("org_id", "namespace", "address", "retention")
    ORG_ID_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    RETENTION_FIELD_NUMBER: _ClassVar[int]
    org_id: str
    namespace: str
    address: str
    retention: _duration_pb2.Duration
    def __init__(self, org_id: _Optional[str] = ..., namespace: _Optional[str] = ..., address: _Optional[str] = ..., retention: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class DefinitionProblem(_message.Message):
    __slots__ = ("line", "column", "path", "message", "warning")
    LINE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    line: int
    column: int
    path: str
    message: str
    warning: bool
    def __init__(self, line: _Optional[int] = ..., column: _Optional[int] = ..., path: _Optional[str] = ..., message: _Optional[str] = ..., warning: _Optional[bool] = ...) -> None: ...
