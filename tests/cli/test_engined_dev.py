"""``engined dev`` as a newcomer runs it: a fresh directory, one command, then Ctrl-C."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.helpers.devserver import free_port

ROOT = Path(__file__).resolve().parents[2]
ENGINED = ROOT / "cmd" / "engined"
ENGINECTL = ROOT / "cmd" / "enginectl"


def _children_of(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc), so nothing it started can hide."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        for child, its_parent in parents.items():
            if its_parent == parent:
                found.append(child)
                frontier.append(child)
    return found


def _alive(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def _health(address: str) -> int | None:
    """The server's overall health status, or None when it does not answer."""
    with grpc.insecure_channel(address) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=2
            )
        except grpc.RpcError:
            return None
    return int(reply.status)


def _serving(address: str) -> bool:
    return _health(address) == health_pb2.HealthCheckResponse.SERVING


def _enginectl(cwd: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
    return subprocess.run(
        [sys.executable, str(ENGINECTL), *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.timeout(180)
def test_engined_dev_runs_an_example_and_stops_everything_on_ctrl_c(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    listen = f"127.0.0.1:{free_port()}"
    process = _start_dev(tmp_path, listen, free_port(), free_port())
    started: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while not _serving(listen):
            assert process.poll() is None, (tmp_path / "engined.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "engined dev did not report SERVING in 120 s"
            time.sleep(0.5)
        dev_env = (tmp_path / ".engine" / "dev.env").read_text()
        assert f"ENGINE_ADDRESS={listen}" in dev_env
        assert "ENGINE_TOKEN=" in dev_env
        # The HTTP/JSON API answers with the same token (dev.env says where it is).
        settings = dict(line.split("=", 1) for line in dev_env.splitlines() if "=" in line)
        listed = urllib.request.urlopen(
            urllib.request.Request(
                settings["ENGINE_HTTP_URL"] + "/v1/definitions?name=hello",
                headers={"Authorization": f"Bearer {settings['ENGINE_TOKEN']}"},
            ),
            timeout=30,
        )
        assert [d["name"] for d in json.load(listed)["definitions"]] == ["hello"]
        # The console's sign-in link: its page, with the dev admin's token in the fragment.
        console = settings["ENGINE_CONSOLE"]
        assert console == f"{settings['ENGINE_HTTP_URL']}/console/#token={settings['ENGINE_TOKEN']}"
        page = urllib.request.urlopen(console.split("#")[0], timeout=30).read().decode()
        assert "<title>engine console</title>" in page
        started = _children_of(process.pid)
        assert started, "engined dev should have started the Temporal dev server"

        # The newcomer's first run, through enginectl alone (it reads .engine/dev.env).
        run = _enginectl(tmp_path, "run", "hello", "--input", "who=newcomer", "-o", "json")
        assert run.returncode == 0, run.stderr
        first = json.loads(run.stdout)
        workflow_id = first["workflow_id"]
        [action] = first["pending_actions"]
        assert action["step_id"] == "show"
        submit = _enginectl(tmp_path, "submit", workflow_id, "show", "null", "-o", "json")
        assert submit.returncode == 0, submit.stderr
        got = _enginectl(tmp_path, "get", workflow_id, "-o", "json")
        assert got.returncode == 0, got.stderr
        got_json = json.loads(got.stdout)
        workflow = got_json.get("workflow", got_json)
        assert workflow["status"] == "completed", workflow
        assert workflow["result"] == {"greeting": "Hello, newcomer", "run": workflow_id}
        # Its Prometheus endpoint (dev.env says where) counted the run, in the dev org.
        scraped = urllib.request.urlopen(settings["ENGINE_METRICS_URL"], timeout=30).read()
        lines = scraped.decode().splitlines()
        assert any(
            line.startswith("engine_runs_completed_total{") and 'org="default"' in line
            for line in lines
        ), [line for line in lines if line.startswith("engine_runs")]
        assert any(line.startswith("temporal_workflow_task_queue_poll") for line in lines)
    finally:
        _interrupt(process)
    assert process.returncode == 0, (tmp_path / "engined.log").read_text()[-3000:]
    deadline = time.monotonic() + 10
    while _alive(started) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _alive(started) == [], "engined dev left processes running"


def _start_dev(
    directory: Path, listen: str, temporal_port: int, ui_port: int, *extra: str
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            str(ENGINED),
            "dev",
            "--listen",
            listen,
            "--temporal-port",
            str(temporal_port),
            "--ui-port",
            str(ui_port),
            "--mcp-listen",
            f"127.0.0.1:{free_port()}",
            "--http-listen",
            f"127.0.0.1:{free_port()}",
            "--metrics-listen",
            f"127.0.0.1:{free_port()}",
            *extra,
        ],
        cwd=directory,
        stdout=(directory / "engined.log").open("w"),
        stderr=subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith(("ENGINE_", "TEMPORAL_"))},
    )


def _interrupt(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, as a person stops it; killed if it has not exited a minute later."""
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()


def _until(what: str, holds: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not holds():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        time.sleep(0.3)


@pytest.mark.timeout(300)
def test_engined_dev_watches_its_temporal_and_refuses_to_run_twice(tmp_path: Path) -> None:
    first_dir, other_dir = tmp_path / "first", tmp_path / "other"
    first_dir.mkdir()
    other_dir.mkdir()
    shutil.copytree(ROOT / "examples", first_dir / "examples")
    listen, temporal_port, ui_port = f"127.0.0.1:{free_port()}", free_port(), free_port()
    process = _start_dev(first_dir, listen, temporal_port, ui_port)
    try:
        _until("SERVING", lambda: _serving(listen), 120)
        dev_env = (first_dir / ".engine" / "dev.env").read_text()

        # A second engined dev on the same home, or on the same ports, refuses to start.
        same_home = _start_dev(first_dir, f"127.0.0.1:{free_port()}", free_port(), free_port())
        assert same_home.wait(timeout=60) == 1
        said = (first_dir / "engined.log").read_text()
        assert f"another engined dev (pid {process.pid}) is using" in said, said
        assert (first_dir / ".engine" / "dev.env").read_text() == dev_env
        same_port = _start_dev(other_dir, f"127.0.0.1:{free_port()}", temporal_port, free_port())
        assert same_port.wait(timeout=60) == 1
        said = (other_dir / "engined.log").read_text()
        assert f"port {temporal_port} (Temporal) is in use" in said, said

        # Its Temporal dies: health says so, it is restarted, and runs go on.
        [temporal] = [
            pid
            for pid in _children_of(process.pid)
            if b"start-dev" in (Path("/proc") / str(pid) / "cmdline").read_bytes()
        ]
        os.kill(temporal, signal.SIGKILL)
        not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
        _until("NOT_SERVING", lambda: _health(listen) == not_serving, 20)
        _until("SERVING again", lambda: _serving(listen), 120)
        log = (first_dir / ".engine" / "temporal.log").exists()
        assert log
        run = _enginectl(first_dir, "run", "hello", "--input", "who=again", "-o", "json")
        assert run.returncode == 0, run.stderr
        assert json.loads(run.stdout)["pending_actions"][0]["step_id"] == "show"
    finally:
        _interrupt(process)
    said = (first_dir / "engined.log").read_text()
    assert "the Temporal dev server (pid" in said and "exited with code" in said, said[-3000:]
    assert "the Temporal dev server is back" in said, said[-3000:]
    assert process.returncode == 0, said[-3000:]


@pytest.mark.timeout(240)
def test_engined_dev_with_executors_runs_shell_and_mcp_steps_with_no_code(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    listen = f"127.0.0.1:{free_port()}"
    process = _start_dev(tmp_path, listen, free_port(), free_port(), "--executors")
    try:
        _until("SERVING", lambda: _serving(listen), 120)
        log = tmp_path / "engined.log"
        _until("the executors", lambda: "ENGINE_TOKEN=" in log.read_text(), 60)
        said = log.read_text()
        assert "executors           shell (under" in said and "mcp (time)" in said, said[-3000:]
        run = _enginectl(tmp_path, "run", "world-clock", "--input", "zone=Asia/Tokyo", "--follow")
        assert run.returncode == 0, run.stdout + run.stderr
        got = _enginectl(tmp_path, "ls", "-o", "json")
        assert "world-clock" in got.stdout, got.stdout
    finally:
        _interrupt(process)
    assert process.returncode == 0, (tmp_path / "engined.log").read_text()[-3000:]
