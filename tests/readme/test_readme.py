"""Every shell command of the README, run as a reader would run it, against a dev engine.

The README's fenced ``sh`` blocks are read from the file (so a command added there is run here
with no change to this test), in order, each line (with its ``\\`` continuations) one command
run by ``bash`` in a scratch directory that holds the checkout's ``.venv``, ``cmd`` and
``examples``. The engine is the one the README starts, ``engined dev --executors``, with its
own home and free ports: the README's default ports are rewritten to those, and its
placeholders filled in (``RUN_ID``: the newest run waiting at a step, ``/srv/work``: a scratch
directory). How a command is run, when it is not simply "exits 0", is in :data:`HOW`, keyed by
the start of the command. Three kinds of commands are not run: those that would start what
this test is (``make test``), what CI already runs on its own (``make bench``), and the
engine itself, which this test starts. Two need a program that cannot be installed from the
package registries (grpcurl, Claude Code's ``claude``): the test makes their calls itself, as
that program would (the same gRPC method found by reflection; the same MCP endpoint).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import re
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from tests.helpers.devserver import free_port

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PYTHON = ROOT / ".venv" / "bin" / "python"
ENGINED = ROOT / "cmd" / "engined"


@dataclass(frozen=True)
class Command:
    """One command of the README: its text (continuations joined) and where it is."""

    text: str
    line: int

    @property
    def where(self) -> str:
        return f"README.md:{self.line}"


@dataclass(frozen=True)
class How:
    """How to run a command that is not simply "exits 0 within a minute".

    Attributes:
        skip: Not run, and why (the reason is shown in the test's output).
        stdin: What the person types.
        background: Started and left running; it must exit 0 by the end of its block (a
            later command of the block lets it finish).
        service: A long-running process: started, ready when its output shows this text,
            then stopped with Ctrl-C (SIGINT); it must exit 0 (or 130, interrupted).
        emulate: The program is not installable here: the test makes the same call itself.
        output: A text the command's output must contain.
    """

    skip: str = ""
    stdin: str = ""
    background: bool = False
    service: str = ""
    emulate: str = ""
    output: str = ""


HOW: dict[str, How] = {
    "make run": How(skip="engined dev, which this test starts (with --executors)"),
    "make test": How(skip="it runs this test"),
    "make bench": How(skip="CI runs it after make test (.ci/run)"),
    ".venv/bin/engined dev --executors &": How(skip="the engine this test starts"),
    ".venv/bin/enginectl run hello --input who=bob -f": How(background=True),
    ".venv/bin/enginectl answer": How(stdin="\n", output="answered 1"),
    "TEMPORAL_ADDRESS=": How(service="worker serving namespace"),
    ".venv/bin/enginectl work shell": How(service="running shell actions under"),
    ".venv/bin/enginectl work mcp": How(service="performing mcp_call actions with time"),
    "grpcurl": How(emulate="grpcurl"),
    "claude mcp add": How(emulate="claude"),
    "curl": How(output="{"),
    "curl -s http://127.0.0.1:9464/metrics": How(output="engine_runs_started_total{"),
    ".venv/bin/enginectl ls --watch": How(service="WORKFLOW"),
}
"""By the start of the command's text (the longest matching key wins)."""


def readme_commands(text: str) -> list[list[Command]]:
    """The commands of each fenced ``sh`` block, in order."""
    blocks: list[list[Command]] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        if lines[index].strip() != "```sh":
            index += 1
            continue
        block: list[Command] = []
        index += 1
        pending, start = "", 0
        while index < len(lines) and lines[index].strip() != "```":
            line = lines[index]
            if not pending:
                start = index + 1
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
            else:
                joined = (pending + line).strip()
                pending = ""
                if joined and not joined.startswith("#"):
                    block.append(Command(joined, start))
            index += 1
        blocks.append(block)
        index += 1
    return blocks


def how(command: Command) -> How:
    keys = [key for key in HOW if command.text.startswith(key)]
    return HOW[max(keys, key=len)] if keys else How()


# -- the engine -----------------------------------------------------------------------------


@dataclass
class Engine:
    """``engined dev --executors`` on free ports, and what a reader's shell would have."""

    home: Path
    workspace: Path
    ports: dict[int, int]
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path
    scratch: Path
    run_id: str = ""

    def rewrite(self, text: str) -> str:
        """The command with the README's ports and placeholders made this engine's."""
        for default, port in self.ports.items():
            text = re.sub(rf"(?<=[:/]){default}\b", str(port), text)
            text = text.replace(f"127.0.0.1:{default}", f"127.0.0.1:{port}")
        text = text.replace("/srv/work", str(self.scratch))
        if "RUN_ID" in text:
            if not self.run_id:
                self.run_id = self.newest_waiting_run()
            text = text.replace("RUN_ID", self.run_id)
        return text

    def newest_waiting_run(self) -> str:
        """The run a reader means by RUN_ID: the newest one waiting (at its first mention in
        a block; the same run for the rest of the block)."""
        deadline = time.monotonic() + 30
        while True:
            runs = json.loads(self.ctl("ls", "--status", "waiting", "-o", "json"))
            runs = runs.get("workflows", []) if isinstance(runs, dict) else runs
            if runs:
                newest = max(runs, key=lambda run: str(run.get("start_time", "")))
                return str(newest["workflow_id"])
            assert time.monotonic() < deadline, "RUN_ID: no run is waiting"
            time.sleep(0.5)

    def ctl(self, *arguments: str) -> str:
        done = subprocess.run(
            [str(PYTHON), str(ROOT / "cmd" / "enginectl"), *arguments],
            cwd=self.workspace,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


def _wait_for(what: str, holds: object, seconds: float, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while not holds():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what} not within {seconds} s:\n{_tail(log)}"
        time.sleep(0.3)


def _tail(path: Path, size: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-size:]
    except OSError:
        return ""


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    base = tmp_path_factory.mktemp("readme")
    workspace, home, scratch = base / "checkout", base / "home", base / "work"
    workspace.mkdir()
    scratch.mkdir()
    for name in (".venv", "cmd", "examples"):
        (workspace / name).symlink_to(ROOT / name)
    ports = {default: free_port() for default in (50051, 7233, 8233, 8765, 8766, 9464)}
    log = base / "engined.log"
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ENGINE_", "TEMPORAL_", "OTEL_", "XDG_"))
    }
    environ.update(HOME=str(base), ENGINE_HOME=str(home))
    command = [
        str(PYTHON),
        str(ENGINED),
        "dev",
        "--executors",
        "--listen",
        f"127.0.0.1:{ports[50051]}",
        "--temporal-port",
        str(ports[7233]),
        "--ui-port",
        str(ports[8233]),
        "--mcp-listen",
        f"127.0.0.1:{ports[8765]}",
        "--http-listen",
        f"127.0.0.1:{ports[8766]}",
        *_metrics_flag(ports[9464]),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=workspace, env=environ, stdout=out, stderr=subprocess.STDOUT
        )
    dev_env = home / "dev.env"

    def ready() -> bool:
        assert process.poll() is None, _tail(log)
        return dev_env.exists() and "executors" in log.read_text(errors="replace")

    try:
        _wait_for("engined dev ready", ready, 150, log)
        settings = dict(
            line.split("=", 1) for line in dev_env.read_text().splitlines() if "=" in line
        )
        env = {
            **environ,
            "ENGINE_ADDRESS": settings["ENGINE_ADDRESS"],
            "ENGINE_TOKEN": settings["ENGINE_TOKEN"],
        }
        yield Engine(home, workspace, ports, env, process, log, scratch)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()


def _metrics_flag(port: int) -> list[str]:
    """``--metrics-listen``, when this engined has it."""
    done = subprocess.run(
        [str(PYTHON), str(ENGINED), "dev", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return ["--metrics-listen", f"127.0.0.1:{port}"] if "--metrics-listen" in done.stdout else []


# -- running a command ------------------------------------------------------------------------


def _run(
    engine: Engine, command: Command, background: list[tuple[Command, subprocess.Popen[str], Path]]
) -> None:
    rule = how(command)
    text = engine.rewrite(command.text)
    if rule.emulate:
        _EMULATORS[rule.emulate](engine, text, command)
        return
    if rule.background or rule.service:
        output = engine.scratch.parent / f"command-{command.line}.log"
        with output.open("w") as out:
            process = subprocess.Popen(
                ["bash", "-c", text],
                cwd=engine.workspace,
                env=engine.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        if rule.background:
            background.append((command, process, output))
            time.sleep(1.0)
            return
        _await_service(command, process, output, rule.service)
        return
    done = subprocess.run(
        ["bash", "-c", text],
        cwd=engine.workspace,
        env=engine.env,
        input=rule.stdin or None,
        stdin=None if rule.stdin else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    said = done.stdout + done.stderr
    assert done.returncode == 0, f"{command.where}: `{text}` exited {done.returncode}:\n{said}"
    assert rule.output in said, f"{command.where}: `{text}` did not say {rule.output!r}:\n{said}"
    if text.startswith("curl") and done.stdout.startswith("{"):
        answer = json.loads(done.stdout)
        assert "error" not in answer, f"{command.where}: `{text}` was refused:\n{said}"


def _await_service(
    command: Command, process: subprocess.Popen[str], output: Path, ready: str
) -> None:
    """Start a long-running command, see it ready, stop it as a person would."""
    deadline = time.monotonic() + 90
    try:
        while ready not in _tail(output, 100_000):
            assert process.poll() is None, (
                f"{command.where}: `{command.text}` exited {process.returncode}:\n{_tail(output)}"
            )
            assert time.monotonic() < deadline, (
                f"{command.where}: never said {ready!r}:\n{_tail(output)}"
            )
            time.sleep(0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C, as the person at the terminal
        try:
            code = process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
    assert code in (0, 130), f"{command.where}: stopped with {code}:\n{_tail(output)}"


# -- the programs that cannot be installed here --------------------------------------------------


def _grpcurl(engine: Engine, text: str, command: Command) -> None:
    """grpcurl, as far as the README uses it: ``list``, and a call with ``-H`` and ``-d``, the
    method and its messages found by server reflection (as grpcurl finds them)."""
    from google.protobuf import descriptor_pool, json_format, message_factory
    from google.protobuf.descriptor_pb2 import FileDescriptorProto
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    words = shlex.split(
        os.path.expandvars(text.replace("$ENGINE_TOKEN", engine.env["ENGINE_TOKEN"]))
    )
    assert words[0] == "grpcurl" and "-plaintext" in words, f"{command.where}: {text}"
    headers, body, rest = [], None, []
    iterator = iter(words[1:])
    for word in iterator:
        if word == "-H":
            name, value = next(iterator).split(":", 1)
            headers.append((name.strip().lower(), value.strip()))
        elif word == "-d":
            body = next(iterator)
        elif word != "-plaintext":
            rest.append(word)
    address, *what = rest
    with grpc.insecure_channel(address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)

        def ask(
            request: reflection_pb2.ServerReflectionRequest,
        ) -> reflection_pb2.ServerReflectionResponse:
            return next(iter(stub.ServerReflectionInfo(iter([request]), timeout=10)))

        if what == ["list"]:
            services = ask(reflection_pb2.ServerReflectionRequest(list_services=""))
            names = {service.name for service in services.list_services_response.service}
            assert "engine.api.v1.WorkflowService" in names, names
            return
        [method] = what
        service_name, method_name = method.rsplit("/", 1)
        pool = descriptor_pool.DescriptorPool()
        files = ask(reflection_pb2.ServerReflectionRequest(file_containing_symbol=service_name))
        protos = {}
        for raw in files.file_descriptor_response.file_descriptor_proto:
            proto = FileDescriptorProto.FromString(raw)
            protos[proto.name] = proto
        added: set[str] = set()

        def add(name: str) -> None:
            if name in added:
                return
            if name not in protos:
                more = ask(reflection_pb2.ServerReflectionRequest(file_by_filename=name))
                for raw in more.file_descriptor_response.file_descriptor_proto:
                    proto = FileDescriptorProto.FromString(raw)
                    protos.setdefault(proto.name, proto)
            for dependency in protos[name].dependency:
                add(dependency)
            pool.Add(protos[name])
            added.add(name)

        for name in list(protos):
            add(name)
        descriptor = pool.FindServiceByName(service_name).FindMethodByName(method_name)
        request_class = message_factory.GetMessageClass(descriptor.input_type)
        response_class = message_factory.GetMessageClass(descriptor.output_type)
        request = json_format.Parse(body or "{}", request_class())
        call = channel.unary_unary(
            f"/{service_name}/{method_name}",
            request_serializer=lambda message: message.SerializeToString(),
            response_deserializer=response_class.FromString,
        )
        response = call(request, metadata=headers, timeout=30)
        assert json_format.MessageToDict(response), f"{command.where}: an empty answer"


def _claude(engine: Engine, text: str, command: Command) -> None:
    """``claude mcp add``: connect to the MCP server it registers, as Claude Code would, and
    list the engine's tools."""
    import asyncio

    import httpx2
    from mcp import Client, StdioServerParameters
    from mcp.client.streamable_http import streamable_http_client

    words = shlex.split(text.replace("$ENGINE_TOKEN", engine.env["ENGINE_TOKEN"]))

    async def listed(client: Client) -> set[str]:
        return {tool.name for tool in (await client.list_tools()).tools}

    async def tools() -> set[str]:
        if "--transport" in words:
            url = next(word for word in words if word.startswith(("http://", "https://")))
            name, value = words[words.index("--header") + 1].split(":", 1)
            async with (
                httpx2.AsyncClient(headers={name: value.strip()}, timeout=60) as http,
                Client(streamable_http_client(url, http_client=http)) as client,
            ):
                return await listed(client)
        program, *arguments = words[words.index("--") + 1 :]
        server = StdioServerParameters(
            command=str(engine.workspace / program),
            args=arguments,
            env=engine.env,
            cwd=str(engine.workspace),
        )
        async with Client(server) as client:
            return await listed(client)

    # In a thread of its own: asyncio.run would leave this thread with no event loop, which
    # the async fixtures of the tests after this one still need.
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        found = thread.submit(asyncio.run, asyncio.wait_for(tools(), 60)).result()
    assert {"start_run", "take_action", "submit_result"} <= found, f"{command.where}: {found}"


_EMULATORS = {"grpcurl": _grpcurl, "claude": _claude}


# -- the tests ---------------------------------------------------------------------------------

BLOCKS = readme_commands(README.read_text())


def test_the_readme_has_commands_and_every_rule_is_used() -> None:
    commands = [command for block in BLOCKS for command in block]
    assert len(commands) > 20, commands
    used = {key for command in commands for key in HOW if command.text.startswith(key)}
    assert set(HOW) == used, f"rules no README command uses any more: {set(HOW) - used}"


@pytest.mark.timeout(900)
@pytest.mark.parametrize(
    "block", BLOCKS, ids=[f"README.md:{block[0].line}" if block else "empty" for block in BLOCKS]
)
def test_readme_block(engine: Engine, block: list[Command]) -> None:
    background: list[tuple[Command, subprocess.Popen[str], Path]] = []
    engine.run_id = ""
    try:
        for command in block:
            rule = how(command)
            if rule.skip:
                continue
            _run(engine, command, background)
        for command, process, output in background:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{command.where}: `{command.text}` did not end with its block")
            said = _tail(output)
            assert process.returncode == 0, f"{command.where}: exited {process.returncode}:\n{said}"
    finally:
        for _, process, _ in background:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
    assert engine.process.poll() is None, _tail(engine.log)
