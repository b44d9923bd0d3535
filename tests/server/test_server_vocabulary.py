"""The API's enums and the engine's vocabulary are one: values map by their lower-case names."""

from __future__ import annotations

from typing import Any, get_args

from engine.api.v1 import resources_pb2, schedule_service_pb2
from engine.protocol import RUN_STATES, StepOutcome
from engine.scheduler import OVERLAP_POLICIES
from engine.server._convert import run_status, status_name
from engine.wire import enum_name, enum_names, enum_value, from_struct, plain, to_struct
from engine.workflow import ACTION_STEP_TYPES


def test_every_run_state_is_a_run_status_and_back() -> None:
    assert set(enum_names(resources_pb2.RunStatus).values()) == set(RUN_STATES)
    for state in RUN_STATES:
        assert status_name(run_status(state)) == state
    assert run_status(None) == resources_pb2.RUN_STATUS_UNSPECIFIED
    assert status_name(resources_pb2.RUN_STATUS_UNSPECIFIED) is None
    assert status_name(99) is None  # proto3 enums are open: a number the enum lacks


def test_every_step_outcome_and_action_type_has_its_enum_value() -> None:
    assert set(enum_names(resources_pb2.StepOutcome).values()) == set(get_args(StepOutcome))
    assert set(enum_names(resources_pb2.ActionType).values()) == set(ACTION_STEP_TYPES)
    assert enum_value(resources_pb2.ActionType, "mcp_call") == resources_pb2.ACTION_TYPE_MCP_CALL
    assert enum_name(resources_pb2.ActionType, resources_pb2.ACTION_TYPE_MCP_CALL) == "mcp_call"


def test_every_overlap_policy_of_the_scheduler_has_its_enum_value() -> None:
    names = enum_names(schedule_service_pb2.OverlapPolicy)
    assert set(names.values()) == set(OVERLAP_POLICIES)
    assert enum_value(schedule_service_pb2.OverlapPolicy, "buffer_one") == (
        schedule_service_pb2.OVERLAP_POLICY_BUFFER_ONE
    )
    assert enum_value(schedule_service_pb2.OverlapPolicy, "no-such-policy") == 0


def test_integral_numbers_come_back_as_integers() -> None:
    data = {"n": 10, "x": 1.5, "big": 2**60, "list": [1, 2.0, {"k": 3}]}
    assert from_struct(to_struct(data)) == {
        "n": 10,
        "x": 1.5,
        "big": float(2**60),  # beyond 2**53 a double is not exact: it stays a float
        "list": [1, 2, {"k": 3}],
    }
    assert type(plain(3.0)) is int
    assert type(plain(float(2**53))) is float


def test_what_a_message_cannot_carry_is_carried_as_text_and_the_rest_as_it_is() -> None:
    from engine.api.v1 import resources_pb2
    from engine.wire import WIRE_DEPTH, carried

    plain_data = {"a": [{"b": "é"}] * 3, "n": 1}
    assert carried(plain_data) is plain_data  # nothing to change: no copy
    deep: Any = "bottom"
    for _ in range(WIRE_DEPTH + 10):
        deep = {"k": deep}
    # Deeper than WIRE_DEPTH travels as JSON text; a lone surrogate as U+FFFD.
    message = resources_pb2.Workflow(state=to_struct({"deep": deep, "half": "a\ud800b"}))
    parsed = resources_pb2.Workflow.FromString(message.SerializeToString())  # parses anywhere
    state = from_struct(parsed.state)
    assert state["half"] == "a\ufffdb"
    level = state["deep"]
    for _ in range(WIRE_DEPTH - 1):
        level = level["k"]
    assert isinstance(level, str) and level.startswith('{"k":') and "bottom" in level
