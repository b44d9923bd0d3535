"""``enginectl``'s output and settings without a server: tables, actions, a followed run."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from engine.api.v1 import resources_pb2
from engine.cli import enginectl_main
from engine.cli.enginectl._follow import RunFollower
from engine.cli.enginectl._output import action_summary, short_hash, table
from engine.config import ClientSettings, read_env_file


def _struct(data: dict[str, object]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    json_format.ParseDict(data, struct)
    return struct


def _stamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int((1_800_000_000 + seconds) * 1e9))
    return stamp


def _action(kind: int, **parameters: object) -> resources_pb2.PendingAction:
    return resources_pb2.PendingAction(
        action_id="a-1", type=kind, step_id="s", parameters=_struct(parameters)
    )


def test_table_aligns_columns_and_leaves_the_last_one_ragged() -> None:
    lines = table(("NAME", "VERSION", "NOTE"), [("a", "10", "x"), ("longer-name", "2", "")])

    assert lines == [
        "NAME         VERSION  NOTE",
        "a            10       x",
        "longer-name  2",
    ]


def test_short_hash_keeps_the_algorithm() -> None:
    assert short_hash("sha256:" + "0123456789abcdef" * 4) == "sha256:0123456789ab"
    assert short_hash("") == ""


@pytest.mark.parametrize(
    ("action", "summary"),
    [
        (
            _action(resources_pb2.ACTION_TYPE_SHELL, command="make build", workdir="/src"),
            "$ make build  (in /src)",
        ),
        (
            _action(
                resources_pb2.ACTION_TYPE_PROMPT,
                prompt_type="choice",
                message="Where?",
                options=["staging", "prod", 3],
            ),
            "[choice] Where?  options: staging, prod, 3",
        ),
        (
            _action(resources_pb2.ACTION_TYPE_PROMPT, prompt_type="confirm", message="Go?"),
            "[confirm] Go?",
        ),
        (
            _action(
                resources_pb2.ACTION_TYPE_MCP_CALL,
                tool="k8s.apply",
                server="cluster",
                params={"replicas": 3},
            ),
            'tool k8s.apply on cluster {"replicas":3}',
        ),
        (
            _action(resources_pb2.ACTION_TYPE_DELEGATE, agent="@reviewer", instruction="Check it"),
            "@reviewer: Check it",
        ),
    ],
)
def test_action_summary_shows_what_matters_for_each_type(
    action: resources_pb2.PendingAction, summary: str
) -> None:
    assert action_summary(action) == summary


def test_the_follower_prints_each_change_once() -> None:
    out = io.StringIO()
    progress = iter([(0, 3), (0, 3), (2, 3)])
    follower = RunFollower(out, lambda workflow, step: next(progress))
    build = resources_pb2.StepRecord(
        step_id="build",
        type="shell",
        start_time=_stamp(0),
        finish_time=_stamp(1.5),
        outcome=resources_pb2.STEP_OUTCOME_COMPLETED,
        attempts=2,
    )
    fanout = resources_pb2.StepRecord(step_id="regions", type="foreach", start_time=_stamp(2))
    waiting = resources_pb2.Workflow(
        workflow_id="w",
        status=resources_pb2.RUN_STATUS_WAITING,
        history=[build, fanout],
        pending_actions=[
            resources_pb2.PendingAction(
                action_id="a-9",
                type=resources_pb2.ACTION_TYPE_SHELL,
                step_id="apply",
                workflow_id="w/regions/0",
                parameters=_struct({"command": "deploy"}),
            )
        ],
    )
    failed_fanout = resources_pb2.StepRecord()
    failed_fanout.CopyFrom(fanout)
    failed_fanout.finish_time.CopyFrom(_stamp(5))
    failed_fanout.outcome = resources_pb2.STEP_OUTCOME_FAILED
    failed_fanout.error = "item 0 failed: boom"
    failed = resources_pb2.Workflow(
        workflow_id="w",
        status=resources_pb2.RUN_STATUS_FAILED,
        history=[build, failed_fanout],
        error="step 'regions' failed: item 0 failed: boom",
    )

    follower.update(waiting)
    follower.update(waiting)  # nothing new: nothing printed
    follower.update(waiting)  # progress moved
    follower.update(failed)

    assert out.getvalue().splitlines() == [
        "  build                shell      completed  1.50s  (2 attempts)",
        "running: regions (foreach)",
        "regions: 0/3 items",
        "waiting: shell apply $ deploy  (action a-9 in w/regions/0)",
        "regions: 2/3 items",
        "  regions              foreach    failed  3.00s: item 0 failed: boom",
        "failed: step 'regions' failed: item 0 failed: boom",
    ]


def test_settings_come_from_dev_env_then_environment_then_flags(tmp_path: Path) -> None:
    (tmp_path / "dev.env").write_text(
        "# written by engined dev\n"
        "ENGINE_ADDRESS=127.0.0.1:1111\n"
        "export ENGINE_TOKEN='dev-token'\n"
        "TEMPORAL_UI=http://127.0.0.1:8233\n",
        encoding="utf-8",
    )

    dev = ClientSettings.resolve({}, tmp_path)
    env = ClientSettings.resolve(
        {"ENGINE_ADDRESS": "10.0.0.1:2", "ENGINE_TLS_CA": "ca.pem"}, tmp_path
    )
    flags = ClientSettings.resolve(
        {"ENGINE_ADDRESS": "10.0.0.1:2", "ENGINE_TOKEN": "env-token"},
        tmp_path,
        address="flag:3",
        token="flag-token",
        tls=True,
    )
    nothing = ClientSettings.resolve({}, tmp_path / "absent")

    assert read_env_file(tmp_path / "dev.env")["TEMPORAL_UI"] == "http://127.0.0.1:8233"
    assert dev == ClientSettings(
        "127.0.0.1:1111", "dev-token", False, None, str(tmp_path / "dev.env")
    )
    assert env == ClientSettings("10.0.0.1:2", "dev-token", True, "ca.pem", "ENGINE_ADDRESS")
    assert flags == ClientSettings("flag:3", "flag-token", True, None, "--address")
    assert nothing == ClientSettings("127.0.0.1:50051", None, False, None, "the default")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run"], "the following arguments are required: NAME"),
        (["run", "x", "--version", "0"], "must be positive, got 0"),
        (["ls", "--status", "sleeping"], "invalid choice: 'sleeping'"),
        (["org"], "the following arguments are required: COMMAND"),
        (["token", "create"], "the following arguments are required: --org"),
        (["token", "create", "--org", "a", "--ttl", "0"], "must be at least one second"),
        (["get", "x", "-o", "yaml"], "invalid choice: 'yaml'"),
    ],
)
def test_usage_errors_of_the_remote_commands_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    status = enginectl_main(argv)

    err = capsys.readouterr().err
    assert status == 2
    assert message in err


def test_submit_needs_a_value_or_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    status = enginectl_main(["submit", "run-1", "step"])

    assert status == 1
    assert capsys.readouterr().err == (
        "enginectl: give the result VALUE, or --error MSG to report that the action failed\n"
    )


def test_token_create_prints_json_for_scripts(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGINE_TOKEN_SECRET", "a-secret-long-enough-for-hs256-0123456789")

    status = enginectl_main(
        ["token", "create", "--org", "acme", "--ttl", "2h", "--subject", "ci", "-o", "json"]
    )

    data = json.loads(capsys.readouterr().out)
    assert status == 0
    assert {k: v for k, v in data.items() if k != "token"} == {
        "org": "acme",
        "roles": [],
        "subject": "ci",
        "ttl_seconds": 7200,
    }


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("10", 10),
        ("2.5", 2.5),
        ("true", True),
        ("null", None),
        ('{"a": [1, "b"]}', {"a": [1, "b"]}),
        ('"quoted"', "quoted"),
        ("hello world", "hello world"),
        ("01", "01"),  # not JSON: the string
        ("NaN", "NaN"),  # not a JSON number (RFC 8259): the string
    ],
)
def test_values_are_json_when_they_are_valid_json_else_strings(text: str, value: object) -> None:
    from engine.cli.enginectl._common import json_or_string as _json_or_string

    assert _json_or_string(text) == value


def test_inputs_json_must_be_a_strict_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    status = enginectl_main(["run", "x", "--inputs-json", '{"n": NaN}'])

    assert status == 1
    assert capsys.readouterr().err == (
        "enginectl: --inputs-json is not valid JSON: NaN is not a JSON number\n"
    )
