"""``enginectl config`` (contexts), ``completion``, ``token create``'s dev secret, and the one
shape of ``-o json``.

Every test here has a config file of its own: ``HOME`` is a temporary directory and neither
``ENGINE_CONFIG`` nor ``XDG_CONFIG_HOME`` is set, unless a test sets them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from google.protobuf import duration_pb2

from engine.api.v1 import resources_pb2, schedule_service_pb2, workflow_service_pb2
from engine.cli import enginectl_main
from engine.cli.enginectl._output import to_dict
from engine.config import ClientContext, ClientSettings, client_config_path
from engine.identity import Claims, TokenVerifier
from engine.wire import to_struct, to_value
from tests.cli.plane import Ctl, Plane, Result
from tests.helpers.devserver import free_port
from tests.tenancy.orgkit import eventually

ROOT = Path(__file__).resolve().parents[2]

QUICK = """\
name: cfg-quick
version: 1
inputs:
  n: {type: integer, required: true}
steps:
  - {id: done, type: return, value: "${{ inputs.n * 2 }}"}
"""


@pytest.fixture(autouse=True)
def config_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A HOME of the test's own; the config file is ``HOME/.config/engine/config.yaml``."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("ENGINE_CONFIG", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return home / ".config" / "engine" / "config.yaml"


def _ctl(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    """``enginectl`` in this thread, for the commands that need no server."""
    status = enginectl_main(list(argv))
    captured = capsys.readouterr()
    return Result(status, captured.out.splitlines(), captured.err)


# -- where the file is, and what wins over what ---------------------------------------------


def test_the_config_file_is_engine_config_else_xdg_else_home(tmp_path: Path) -> None:
    home = str(tmp_path)
    assert client_config_path({"HOME": home}) == tmp_path / ".config/engine/config.yaml"
    assert client_config_path({"HOME": home, "XDG_CONFIG_HOME": "/xdg"}) == Path(
        "/xdg/engine/config.yaml"
    )
    assert client_config_path(
        {"HOME": home, "XDG_CONFIG_HOME": "/xdg", "ENGINE_CONFIG": "/etc/e.yaml"}
    ) == Path("/etc/e.yaml")


def test_settings_come_from_flags_then_environment_then_context_then_dev_env(
    tmp_path: Path,
) -> None:
    (tmp_path / "dev.env").write_text(
        "ENGINE_ADDRESS=dev:1\nENGINE_TOKEN=dev-token\n", encoding="utf-8"
    )
    context = ClientContext("prod", "/c.yaml", address="prod:443", token="prod-token", tls=True)

    def resolve(env: dict[str, str], **kwargs: Any) -> ClientSettings:
        return ClientSettings.resolve(env, tmp_path, **kwargs)

    assert resolve({}) == ClientSettings(
        "dev:1", "dev-token", False, None, str(tmp_path / "dev.env")
    )
    assert ClientSettings.resolve({}, tmp_path / "nowhere") == ClientSettings()
    # A context replaces dev.env altogether: the dev token never goes to the context's address.
    with_context = resolve({}, context=context)
    assert with_context == ClientSettings(
        "prod:443", "prod-token", True, None, "context 'prod' (/c.yaml)"
    )
    no_token = resolve({}, context=ClientContext("bare", address="bare:1"))
    assert (no_token.address, no_token.token) == ("bare:1", None)
    environment = resolve({"ENGINE_ADDRESS": "env:2", "ENGINE_TOKEN": "env-token"}, context=context)
    assert (environment.address, environment.token, environment.origin) == (
        "env:2",
        "env-token",
        "ENGINE_ADDRESS",
    )
    assert environment.tls  # what the context says and nothing stronger overrides
    flags = resolve(
        {"ENGINE_ADDRESS": "env:2", "ENGINE_TOKEN": "env-token"},
        context=context,
        address="flag:3",
        token="flag-token",
    )
    assert (flags.address, flags.token, flags.origin) == ("flag:3", "flag-token", "--address")


def test_a_context_reads_its_token_file_or_variable_only_when_nothing_stronger_gives_one(
    tmp_path: Path,
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n", encoding="utf-8")
    by_file = ClientContext("f", address="a:1", token_file=str(token_file))
    missing = ClientContext("m", address="a:1", token_file=str(tmp_path / "absent"))
    by_variable = ClientContext("v", address="a:1", token_env="MY_ENGINE_TOKEN")

    assert ClientSettings.resolve({}, context=by_file).token == "from-file"
    assert ClientSettings.resolve({"MY_ENGINE_TOKEN": "t"}, context=by_variable).token == "t"
    assert ClientSettings.resolve({}, context=missing, token="flag").token == "flag"
    with pytest.raises(
        ValueError, match=r"^context 'm': cannot read its token file .*absent: No such file"
    ):
        ClientSettings.resolve({}, context=missing)
    with pytest.raises(
        ValueError, match=r"^context 'v' takes its token from \$MY_ENGINE_TOKEN, which is not set$"
    ):
        ClientSettings.resolve({}, context=by_variable)


# -- config commands ------------------------------------------------------------------------


def test_set_use_get_current_and_delete_contexts(
    capsys: pytest.CaptureFixture[str], config_home: Path, tmp_path: Path
) -> None:
    (tmp_path / "prod.token").write_text("secret-token\n", encoding="utf-8")

    dev = _ctl(
        capsys,
        "config",
        "set-context",
        "dev",
        "--address",
        "127.0.0.1:50051",
        "--token",
        "dev-token",
        "--org",
        "acme",
    )
    prod = _ctl(
        capsys,
        "config",
        "set-context",
        "prod",
        "--address",
        "engine.example:443",
        "--token-file",
        "prod.token",
        "--tls",
        "--use",
    )
    mode = stat.S_IMODE(config_home.stat().st_mode)
    listed = _ctl(capsys, "config", "get-contexts")
    as_json = _ctl(capsys, "config", "get-contexts", "-o", "json")
    current = _ctl(capsys, "config", "current-context")
    switched = _ctl(capsys, "config", "use-context", "dev")
    current_after = _ctl(capsys, "config", "current-context")
    changed = _ctl(capsys, "config", "set-context", "dev", "--token-env", "DEV_TOKEN")
    text = config_home.read_text(encoding="utf-8")
    deleted = _ctl(capsys, "config", "delete-context", "dev")
    none_current = _ctl(capsys, "config", "current-context")

    assert (dev.status, dev.err) == (0, "")
    assert dev.out == [f"context 'dev' created in {config_home}"]
    assert prod.out == [f"context 'prod' created in {config_home} (the current context)"]
    assert mode == 0o600  # it holds tokens
    assert not list(config_home.parent.glob(".config-*"))  # no temporary file left behind
    assert listed.out == [
        "CURRENT  NAME  ADDRESS             ORG   TLS  TOKEN",
        "         dev   127.0.0.1:50051     acme  no   inline",
        f"*        prod  engine.example:443        yes  file {tmp_path / 'prod.token'}",
    ]
    assert "dev-token" not in "\n".join(listed.out + as_json.out)  # never shown
    assert json.loads("\n".join(as_json.out)) == {
        "current_context": "prod",
        "contexts": [
            {
                "name": "dev",
                "current": False,
                "address": "127.0.0.1:50051",
                "org": "acme",
                "tls": False,
                "ca": "",
                "token": "inline",
                "token_file": "",
                "token_env": "",
            },
            {
                "name": "prod",
                "current": True,
                "address": "engine.example:443",
                "org": "",
                "tls": True,
                "ca": "",
                "token": "file",
                "token_file": str(tmp_path / "prod.token"),
                "token_env": "",
            },
        ],
    }
    assert current.out == ["prod"]
    assert switched.out == ["switched to context 'dev' (127.0.0.1:50051)"]
    assert current_after.out == ["dev"]
    # A new way to the token replaces the old one; the other settings stay.
    assert changed.out == [f"context 'dev' changed in {config_home} (the current context)"]
    assert "token_env: DEV_TOKEN" in text and "dev-token" not in text and "org: acme" in text
    assert deleted.out == ["deleted context 'dev'; it was the current one: there is none now"]
    assert none_current.status == 1
    assert none_current.err == (
        f"enginectl: no current context in {config_home}; choose one with: enginectl config "
        "use-context NAME (known: prod)\n"
    )
    assert stat.S_IMODE(config_home.stat().st_mode) == 0o600


def test_set_context_refuses_what_it_cannot_keep(
    capsys: pytest.CaptureFixture[str], config_home: Path
) -> None:
    no_address = _ctl(capsys, "config", "set-context", "new", "--token", "t")
    two_tokens = _ctl(
        capsys,
        "config",
        "set-context",
        "x",
        "--address",
        "a:1",
        "--token",
        "t",
        "--token-file",
        "f",
    )
    ca_without_tls = _ctl(
        capsys, "config", "set-context", "x", "--address", "a:1", "--ca", "ca.pem", "--no-tls"
    )
    spaced = _ctl(capsys, "config", "set-context", "my ctx", "--address", "a:1")

    assert (no_address.status, no_address.out) == (1, [])
    assert no_address.err == "enginectl: context 'new' is new: give its --address HOST:PORT\n"
    assert two_tokens.status == 2
    assert "argument --token-file: not allowed with argument --token" in two_tokens.err
    assert (ca_without_tls.status, ca_without_tls.err) == (
        1,
        "enginectl: --ca implies TLS: leave out --no-tls\n",
    )
    assert spaced.err == "enginectl: a context's name is one word, got 'my ctx'\n"
    assert not config_home.exists()  # nothing was written


def test_an_unknown_context_is_named_with_the_known_ones(
    capsys: pytest.CaptureFixture[str], config_home: Path
) -> None:
    no_file = _ctl(capsys, "config", "use-context", "stage")
    _ctl(capsys, "config", "set-context", "dev", "--address", "a:1")
    _ctl(capsys, "config", "set-context", "prod", "--address", "b:2")
    use = _ctl(capsys, "config", "use-context", "stage")
    delete = _ctl(capsys, "config", "delete-context", "stage")
    remote = _ctl(capsys, "--context", "stage", "ls")
    after = _ctl(capsys, "ls", "--context", "stage")

    assert no_file.status == 1
    assert no_file.err == (
        f"enginectl: unknown context 'stage': there is no {config_home}; add one with: "
        "enginectl config set-context NAME --address HOST:PORT\n"
    )
    known = f"(known: dev, prod; in {config_home})"
    for result in (use, delete, remote, after):
        assert (result.status, result.out) == (1, [])
        assert result.err == f"enginectl: unknown context 'stage' {known}\n"

    # A current context the file no longer defines (edited by hand).
    text = config_home.read_text(encoding="utf-8")
    config_home.write_text("current-context: gone\n" + text, encoding="utf-8")
    dangling = _ctl(capsys, "ls")
    assert (dangling.status, dangling.out) == (1, [])
    assert dangling.err == f"enginectl: the current context 'gone' is not defined {known}\n"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "contexts:\n  dev:\n    address: [a:1\n",
            4,
            "not valid YAML: ",  # then the parser's words (libyaml's or PyYAML's)
        ),
        (
            "contexts:\n  dev:\n    adress: a:1\n",
            3,
            "unknown key 'adress' in context 'dev' (known: address, token, token_file, "
            "token_env, org, tls, ca)",
        ),
        (
            "current-context: dev\ncontexts:\n  dev:\n    address: a:1\n    tls: maybe\n",
            5,
            "'tls' of context 'dev' must be true or false, got 'maybe'",
        ),
        (
            "contexts:\n  dev:\n    address: a:1\n    token: t\n    token_file: f\n",
            3,
            "context 'dev' has token and token_file: keep one",
        ),
        (
            "contexts:\n  dev: {address: a:1}\n  dev: {address: b:2}\n",
            3,
            "'dev' appears twice in contexts",
        ),
        ("- dev\n", 1, "expected a mapping with 'current-context' and 'contexts'"),
        ("context:\n  dev: {}\n", 1, "unknown key 'context' (known: current-context, contexts)"),
        (
            "contexts:\n  dev:\n    address: {host: a}\n",
            3,
            "'address' of context 'dev' must be a string",
        ),
    ],
    ids=["yaml", "unknown key", "tls", "two tokens", "twice", "not a mapping", "top key", "type"],
)
def test_a_malformed_file_is_named_with_its_line(
    capsys: pytest.CaptureFixture[str], config_home: Path, text: str, line: int, message: str
) -> None:
    config_home.parent.mkdir(parents=True)
    config_home.write_text(text, encoding="utf-8")

    listed = _ctl(capsys, "config", "get-contexts")
    remote = _ctl(capsys, "ls")

    for result in (listed, remote):
        assert (result.status, result.out) == (1, [])
        expected = f"enginectl: {config_home}:{line}: {message}"
        assert (
            result.err.startswith(expected)
            if message.endswith(": ")
            else (result.err == f"{expected}\n")
        )


def test_engine_config_and_xdg_config_home_move_the_file(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    config_home: Path,
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    _ctl(capsys, "config", "set-context", "x", "--address", "a:1")
    monkeypatch.setenv("ENGINE_CONFIG", str(tmp_path / "elsewhere" / "engine.yaml"))
    _ctl(capsys, "config", "set-context", "y", "--address", "b:2")

    assert (tmp_path / "xdg" / "engine" / "config.yaml").exists()
    assert "address: b:2" in (tmp_path / "elsewhere" / "engine.yaml").read_text(encoding="utf-8")
    assert not config_home.exists()


# -- contexts against a control plane --------------------------------------------------------


@pytest.fixture(scope="module")
async def registered(plane: Plane) -> Plane:
    await plane.register(QUICK)
    return plane


async def test_remote_commands_connect_with_the_context_and_what_overrides_it(
    plane: Plane,
    ctl: Ctl,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    config_home: Path,
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    token_file = tmp_path / "acme.token"
    token_file.write_text(plane.token() + "\n", encoding="utf-8")
    # A dev engine's settings here: the current context wins over them.
    (tmp_path / ".engine").mkdir()
    (tmp_path / ".engine" / "dev.env").write_text(
        f"ENGINE_ADDRESS={dead}\nENGINE_TOKEN=dev-token\n", encoding="utf-8"
    )
    quick = ("--connect-timeout", "0.3")

    await ctl(
        "config",
        "set-context",
        "plane",
        "--address",
        plane.address,
        "--token-file",
        str(token_file),
        "--org",
        "acme",
        "--use",
        connect=False,
    )
    await ctl("config", "set-context", "dead", "--address", dead, "--token", "t", connect=False)
    await ctl(
        "config",
        "set-context",
        "unsigned",
        "--address",
        plane.address,
        "--token-env",
        "ACME_TOKEN",
        connect=False,
    )
    current = await ctl("defs", connect=False)
    chosen = await ctl("--context", "dead", *quick, "defs", connect=False)
    chosen_after = await ctl("defs", "--context", "dead", *quick, connect=False)
    flag_over_context = await ctl(
        "defs",
        "--context",
        "dead",
        "--address",
        plane.address,
        "--token",
        plane.token(),
        connect=False,
    )
    unset_variable = await ctl("defs", "--context", "unsigned", connect=False)
    monkeypatch.setenv("ACME_TOKEN", plane.token())
    from_variable = await ctl("defs", "--context", "unsigned", connect=False)
    monkeypatch.setenv("ENGINE_ADDRESS", dead)
    environment_over_context = await ctl(*quick, "defs", connect=False)
    monkeypatch.delenv("ENGINE_ADDRESS")
    token_file.unlink()
    no_token_file = await ctl("defs", connect=False)
    config_home.unlink()
    dev_env_without_context = await ctl(*quick, "defs", connect=False)

    assert (current.status, current.err) == (0, "")
    for result in (chosen, chosen_after):
        assert (result.status, result.out) == (1, [])
        assert result.err.startswith(
            f"enginectl: cannot connect to the control plane at {dead} (plaintext, address "
            f"from context 'dead' ({config_home})): no answer within 0.3s"
        )
    assert (flag_over_context.status, flag_over_context.err) == (0, "")
    assert unset_variable.status == 1
    assert unset_variable.err == (
        "enginectl: context 'unsigned' takes its token from $ACME_TOKEN, which is not set\n"
    )
    assert (from_variable.status, from_variable.err) == (0, "")
    assert environment_over_context.status == 1
    assert f"at {dead} (plaintext, address from ENGINE_ADDRESS)" in environment_over_context.err
    assert no_token_file.status == 1
    assert no_token_file.err == (
        f"enginectl: context 'plane': cannot read its token file {token_file}: "
        "No such file or directory\n"
    )
    assert dev_env_without_context.status == 1
    assert f"at {dead} (plaintext, address from .engine/dev.env)" in dev_env_without_context.err


# -- -o json: one shape for every command ----------------------------------------------------


def test_json_has_enum_names_numbers_and_rfc3339_times() -> None:
    summary = resources_pb2.WorkflowSummary(
        workflow_id="w", status=resources_pb2.RUN_STATUS_COMPLETED
    )
    summary.start_time.FromDatetime(datetime(2026, 1, 2, 15, 4, 5, tzinfo=UTC))
    summary.close_time.FromDatetime(datetime(2026, 1, 2, 15, 4, 6, 500000, tzinfo=UTC))
    workflow = resources_pb2.Workflow(
        definition_version=3,
        status=resources_pb2.RUN_STATUS_WAITING,
        status_version=2**40,
        state=to_struct({"n": 3, "ratio": 0.5, "items": [1, "a"]}),
        result=to_value(None),
        pending_actions=[resources_pb2.PendingAction(type=resources_pb2.ACTION_TYPE_MCP_CALL)],
    )
    schedule = schedule_service_pb2.Schedule(
        definition_version=1,
        overlap_policy=schedule_service_pb2.OVERLAP_POLICY_ALLOW_ALL,
        run_count=7,
        catchup_window=duration_pb2.Duration(seconds=600),
        spec=schedule_service_pb2.ScheduleSpec(jitter=duration_pb2.Duration(nanos=250_000_000)),
    )

    assert to_dict(workflow_service_pb2.ListWorkflowsResponse(workflows=[summary])) == {
        "workflows": [
            {
                "workflow_id": "w",
                "status": "completed",
                "start_time": "2026-01-02T15:04:05Z",
                "close_time": "2026-01-02T15:04:06.500Z",
            }
        ]
    }
    assert to_dict(workflow) == {
        "definition_version": 3,
        "status": "waiting",
        "status_version": 2**40,
        "state": {"n": 3, "ratio": 0.5, "items": [1, "a"]},
        "result": None,
        "pending_actions": [{"type": "mcp_call"}],
    }
    assert to_dict(schedule) == {
        "definition_version": 1,
        "overlap_policy": "allow_all",
        "run_count": 7,
        "catchup_window": 600,
        "spec": {"jitter": 0.25},
    }


async def test_json_of_runs_and_definitions_from_the_server(registered: Plane, ctl: Ctl) -> None:
    workflow_id = f"cfg-{uuid.uuid4().hex[:8]}"
    started = await ctl("run", "cfg-quick", "--id", workflow_id, "--input", "n=21", "-o", "json")
    got = await ctl("get", workflow_id, "-o", "json")
    listed = await eventually(
        lambda: ctl("ls", "--query", f"WorkflowId = '{workflow_id}'", "-o", "json"),
        lambda r: any(
            w.get("close_time") for w in json.loads("\n".join(r.out)).get("workflows", [])
        ),
        what="the run closed in visibility",
    )
    defs = await ctl("defs", "cfg-quick", "-o", "json")

    start = json.loads("\n".join(started.out))
    assert start["status"] == "completed" and start["result"] == 42
    workflow = json.loads("\n".join(got.out))
    assert workflow["status"] == "completed"
    assert workflow["definition_version"] == 1
    assert isinstance(workflow.get("status_version", 0), int)
    assert _rfc3339(workflow["start_time"]) <= _rfc3339(workflow["close_time"])
    [run] = json.loads("\n".join(listed.out))["workflows"]
    assert run["status"] == "completed"
    assert _rfc3339(run["start_time"]) <= _rfc3339(run["close_time"])
    [definition] = json.loads("\n".join(defs.out))["definitions"]
    assert (definition["name"], definition["version"]) == ("cfg-quick", 1)
    for text in (*started.out, *got.out, *listed.out, *defs.out):
        assert not re.search(r"[A-Z]+_[A-Z_]+", text.split(":", 1)[-1]), text  # no enum names


def _rfc3339(text: str) -> datetime:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", text), text
    return datetime.fromisoformat(text)


# -- completion ---------------------------------------------------------------------------------


def _script(capsys: pytest.CaptureFixture[str], shell: str, tmp_path: Path) -> Path:
    result = _ctl(capsys, "completion", shell)
    assert (result.status, result.err) == (0, "")
    path = tmp_path / f"enginectl.{shell}"
    path.write_text("\n".join(result.out) + "\n", encoding="utf-8")
    return path


def _shim(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has an ``enginectl`` that runs this checkout's."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    shim = bin_dir / "enginectl"
    shim.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "cmd" / "enginectl"}" "$@"\n',
        encoding="utf-8",
    )
    shim.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}


def test_bash_completion_registers_and_completes_commands_flags_and_choices(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    script = _script(capsys, "bash", tmp_path)
    lines = {
        "enginectl con": "config",
        "enginectl config ": "set-context use-context get-contexts current-context delete-context",
        "enginectl config set-context prod --token": "--token --token-file --token-env",
        "enginectl --address 127.0.0.1:50051 -o ": "table json",
        "enginectl -o json --context prod l": "ls link",
        "enginectl ls --status w": "waiting",
        "enginectl ls --output=j": "json",
        "enginectl completion ": "bash zsh fish",
        "enginectl schedule create x y --overlap s": "skip",
        "enginectl token create --r": "--role",
    }
    probe = "".join(
        f"COMP_LINE={json.dumps(line)}; COMP_POINT=${{#COMP_LINE}}; COMPREPLY=(); _enginectl; "
        'echo "${COMPREPLY[*]}"\n'
        for line in lines
    )

    registered = subprocess.run(
        ["bash", "-c", "source <(enginectl completion bash); complete -p enginectl"],
        env=_shim(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    completed = subprocess.run(
        ["bash", "-c", f"source {script}\n{probe}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert (registered.returncode, registered.stderr) == (0, "")
    assert registered.stdout == "complete -F _enginectl enginectl\n"
    assert completed.stderr == ""
    assert completed.stdout.splitlines() == list(lines.values())
    text = script.read_text(encoding="utf-8")
    for command in ("run", "ls", "get", "schedule", "config", "completion", "token"):
        assert f'"|{command}") at="{command}"' in text
    assert '"schedule|create") at="schedule create"' in text


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_zsh_and_fish_scripts_parse_and_name_every_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, shell: str
) -> None:
    script = _script(capsys, shell, tmp_path)
    text = script.read_text(encoding="utf-8")

    for command in ("run", "ls", "schedule", "config", "set-context", "completion"):
        assert command in text
    if shell == "zsh":
        assert text.startswith("#compdef enginectl\n")
        assert "compdef _enginectl enginectl" in text
    else:
        assert "complete -c enginectl -n \"__enginectl_at ''\" -a 'validate graph" in text
        assert "complete -c enginectl -n \"__enginectl_at 'ls'\" -l status -x -a 'running" in text
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed: the script's syntax is not checked")
    checked = subprocess.run(
        [shell, "-n", str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert (checked.returncode, checked.stderr) == (0, "")


def test_completion_of_an_unknown_shell_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = _ctl(capsys, "completion", "tcsh")

    assert (result.status, result.out) == (2, [])
    assert "argument shell: invalid choice: 'tcsh' (choose from 'bash', 'zsh', 'fish')" in (
        result.err
    )


# -- token create: the dev engine's secret --------------------------------------------------


def test_token_create_reads_the_dev_engines_secret_from_its_home(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from engine.cli.engined import _dev_secret

    no_home = _ctl(capsys, "token", "create", "--org", "acme")
    (tmp_path / ".engine").mkdir()
    no_secret = _ctl(capsys, "token", "create", "--org", "acme")
    (tmp_path / ".engine" / "secret").write_text("", encoding="utf-8")
    empty = _ctl(capsys, "token", "create", "--org", "acme")
    # What engined dev keeps, where it keeps it: its home (ENGINE_HOME) moves it.
    home = tmp_path / "elsewhere"
    secret = _dev_secret(home)
    monkeypatch.setenv("ENGINE_HOME", str(home))
    signed = _ctl(capsys, "token", "create", "--org", "acme", "--subject", "ada")

    prefix = (
        "enginectl: no token secret: set ENGINE_TOKEN_SECRET, or run it where engined dev "
        "keeps its home (ENGINE_HOME=.engine): "
    )
    assert (no_home.status, no_home.out) == (1, [])
    assert no_home.err == f"{prefix}no {tmp_path / '.engine'} here\n"
    assert no_secret.err == (
        f"{prefix}no secret in {tmp_path / '.engine'} (has engined dev run there?)\n"
    )
    assert empty.err == f"{prefix}.engine/secret is empty\n"
    assert stat.S_IMODE((home / "secret").stat().st_mode) == 0o600
    assert _dev_secret(home) == secret  # made once, kept: its tokens survive a restart
    assert (signed.status, signed.err) == (0, "")
    assert TokenVerifier(secret).verify(f"Bearer {signed.out[0]}") == Claims("acme", (), "ada")
    assert jwt.decode(signed.out[0], secret, algorithms=["HS256"])["sub"] == "ada"
