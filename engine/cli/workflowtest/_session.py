"""One ``enginectl test`` invocation: check every file, start one Temporal dev server and one
interpreter worker for all of them, run each test, report."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Final, TextIO

from temporalio.client import Client
from temporalio.exceptions import TemporalError, WorkflowAlreadyStartedError
from temporalio.service import RPCError

from engine.cli._temporalbin import MemoryServer, start_memory_server
from engine.cli.workflowtest._driver import Drive, Runnable, drive, runnable
from engine.cli.workflowtest._report import (
    CaseReport,
    FileReport,
    print_case,
    print_file,
    write_junit,
)
from engine.cli.workflowtest._spec import TestCase, TestFile, TestFileError, load_test_file
from engine.cli.workflowtest._values import show
from engine.cli.workflowtest._verdict import judge, path_of
from engine.context import OrgContext
from engine.definition import load_definition
from engine.workflow import (
    SEARCH_ATTRIBUTES,
    build_worker,
    ensure_search_attributes,
    start_workflow,
)

__all__ = ["EXIT_FAILED", "EXIT_INVALID", "EXIT_PASSED", "Options", "run_test_files"]

EXIT_PASSED: Final = 0
EXIT_FAILED: Final = 1
EXIT_INVALID: Final = 2

_WARM_UP_LIMIT: Final = 30.0
_FAST_SERVER: Final = (
    'history.timerProcessorMaxTimeShift="1ms"',
    "history.transferProcessorMaxPollRPS=1000",
)
"""Settings of the private dev server, so that no test waits on its pacing:

- its timers fire on whole seconds by default (a 1 ms timer takes a second): a retry's
  millisecond backoff (see ``_driver.fast_retries``) would cost a second per retry;
- it reads its transfer queue (workflow tasks to dispatch, signals between runs, children to
  start) at most 20 times a second by default, so every hop between a parent and its child runs
  waited up to 50 ms."""


@dataclass(frozen=True)
class Options:
    """How to run the tests.

    Attributes:
        junit: Where to write JUnit XML (None: nowhere).
        select: Run only the tests whose name contains one of these (case-insensitive).
        run_timeout: Seconds one test's run may take before it fails as stuck.
        temporal_address: A Temporal server to use instead of a private dev server.
        namespace: Its namespace.
        verbose: Show each run's path, state and result.
        jobs: How many tests of a file run at once.
    """

    junit: str | None = None
    select: tuple[str, ...] = ()
    run_timeout: float = 15.0
    temporal_address: str | None = None
    namespace: str = "default"
    verbose: bool = False
    jobs: int = 4


def run_test_files(paths: Sequence[str], options: Options, out: TextIO | None = None) -> int:
    """Run the test files; the exit status: 0 all passed, 1 a test failed (or Temporal could
    not be started), 2 a test file (or its definition) is invalid."""
    out = out or sys.stdout
    return asyncio.run(_run(paths, options, out))


async def _run(paths: Sequence[str], options: Options, out: TextIO) -> int:
    began = time.monotonic()
    reports: list[FileReport] = []
    loaded: list[tuple[FileReport, TestFile, Runnable]] = []
    for path in paths:
        report = FileReport(path)
        reports.append(report)
        try:
            test_file = load_test_file(path)
            runs = await runnable(test_file)
        except TestFileError as error:
            report.problems = error.problems
            print_file(report, out)
            continue
        report.definition = test_file.definition.workflow_type
        loaded.append((report, test_file, runs))
    selected = [
        (report, runs, _selected(test_file, options.select)) for report, test_file, runs in loaded
    ]
    status = EXIT_INVALID if len(loaded) < len(paths) else EXIT_PASSED
    startup = 0.0
    if any(cases for _, _, (_, cases) in selected):
        try:
            starting = time.monotonic()
            async with _engine(options) as engine:
                startup = time.monotonic() - starting
                for report, runs, (test_file, cases) in selected:
                    await _run_file(engine, test_file, runs, cases, report, options, out)
        except _EngineUnavailableError as error:
            print(f"enginectl test: {error}", file=out)
            return EXIT_FAILED
    elif loaded and options.select:
        print(f"enginectl test: no test name contains {' or '.join(options.select)}", file=out)
    failed = sum(report.failed for report in reports)
    passed = sum(len(report.cases) for report in reports) - failed
    if len(paths) > 1:
        invalid = len(paths) - len(loaded)
        parts = [f"{passed} passed"]
        if failed:
            parts.append(f"{failed} failed")
        if invalid:
            parts.append(f"{invalid} invalid file(s)")
        started = f" (Temporal and the worker started in {startup:.2f} s)" if startup else ""
        print(
            f"{len(paths)} files: {', '.join(parts)} in {time.monotonic() - began:.2f} s{started}",
            file=out,
        )
    if options.junit:
        try:
            write_junit(reports, options.junit)
        except OSError as error:
            print(f"enginectl test: cannot write {options.junit}: {error.strerror}", file=out)
            return EXIT_FAILED if status == EXIT_PASSED else status
    if status == EXIT_INVALID:
        return status
    return EXIT_FAILED if failed else EXIT_PASSED


def _selected(test_file: TestFile, select: Sequence[str]) -> tuple[TestFile, list[TestCase]]:
    if not select:
        return test_file, list(test_file.tests)
    words = [word.lower() for word in select]
    return test_file, [t for t in test_file.tests if any(w in t.name.lower() for w in words)]


async def _drive(
    engine: _Engine, runs: Runnable, org: str, case: TestCase, options: Options
) -> Drive:
    """Drive one test's run; a run that cannot even start is the test's failure."""
    try:
        return await drive(
            engine.client,
            runs,
            case,
            org=org,
            task_queue=engine.task_queue,
            timeout=options.run_timeout,
        )
    except WorkflowAlreadyStartedError:
        problem = (
            f"the workflow id '{case.workflow_id}' is taken by a run still going on this "
            "Temporal server: give the test another workflow_id"
        )
    except (RPCError, TemporalError) as error:
        problem = f"the run could not be driven: {type(error).__name__}: {error}"
    return Drive(problems=[problem])


# -- the engine: a Temporal server and an interpreter worker -----------------------------------


class _EngineUnavailableError(Exception):
    """No Temporal server to run the tests on."""


@dataclass(frozen=True)
class _Engine:
    client: Client
    task_queue: str


@contextlib.asynccontextmanager
async def _engine(options: Options) -> AsyncIterator[_Engine]:
    # The SDK logs a failed workflow task with its traceback; a test's failure is reported by
    # the test, and the person at the terminal never sees a traceback.
    sdk_log = logging.getLogger("temporalio")
    level = sdk_log.level
    sdk_log.setLevel(logging.CRITICAL)
    try:
        async with _engine_on(options) as engine:
            yield engine
    finally:
        sdk_log.setLevel(level)


@contextlib.asynccontextmanager
async def _engine_on(options: Options) -> AsyncIterator[_Engine]:
    server: MemoryServer | None = None
    try:
        if options.temporal_address is None:
            kinds = [
                (
                    key.name,
                    "KeywordList" if key.indexed_value_type.name == "KEYWORD_LIST" else "Keyword",
                )
                for key in SEARCH_ATTRIBUTES
            ]
            server = await start_memory_server(kinds, _FAST_SERVER)
            address = server.address
        else:
            address = options.temporal_address
        client = await Client.connect(address, namespace=options.namespace)
        await ensure_search_attributes(client)
    except (ValueError, RuntimeError, RPCError) as error:
        if server is not None:
            server.stop()
        where = options.temporal_address or "the Temporal dev server"
        raise _EngineUnavailableError(f"cannot use {where}: {error}") from None
    task_queue = f"enginectl-test-{uuid.uuid4().hex[:12]}"
    try:
        async with build_worker(client, task_queue=task_queue, max_cached_workflows=100):
            await _warm_up(client, task_queue)
            yield _Engine(client, task_queue)
    finally:
        if server is not None:
            server.stop()


_WARM_UP: Final = """\
name: enginectl-test-warm-up
version: 1
steps: [{id: done, type: return, value: 1}]
"""


async def _warm_up(client: Client, task_queue: str) -> None:
    """Run a one-step definition: the first run of a process pays for setting up the workflow
    sandbox, and that belongs to the start-up, not to the first test file's time."""
    definition = load_definition(_WARM_UP)
    handle = await start_workflow(
        client,
        definition,
        {},
        org=OrgContext(org_id="default", namespace=client.namespace),
        workflow_id=f"{task_queue}-warm-up",
        task_queue=task_queue,
    )
    with contextlib.suppress(TemporalError):
        await asyncio.wait_for(handle.result(), _WARM_UP_LIMIT)


async def _run_file(
    engine: _Engine,
    test_file: TestFile,
    runs: Runnable,
    cases: Sequence[TestCase],
    report: FileReport,
    options: Options,
    out: TextIO,
) -> None:
    """Run a file's tests, ``options.jobs`` at a time, and print them in the file's order."""
    began = time.monotonic()
    slots = asyncio.Semaphore(options.jobs)

    async def run_case(case: TestCase) -> CaseReport:
        async with slots:
            return await _run_case(engine, test_file, runs, case, options)

    tasks = [asyncio.create_task(run_case(case)) for case in cases]
    try:
        for task in tasks:
            case_report = await task
            report.cases.append(case_report)
            print_case(report, case_report, out, verbose=options.verbose)
    finally:
        for task in tasks:
            task.cancel()
    report.seconds = time.monotonic() - began
    print_file(report, out)


async def _run_case(
    engine: _Engine,
    test_file: TestFile,
    runs: Runnable,
    case: TestCase,
    options: Options,
) -> CaseReport:
    started = time.monotonic()
    outcome = await _drive(engine, runs, test_file.org, case, options)
    failures = list(outcome.problems)
    details: list[str] = []
    if outcome.status is not None:
        if not outcome.problems:
            failures += judge(case.expect, outcome.status, outcome.asked, test_file.definition)
        details = _details(outcome)
    report = CaseReport(case.name, case.line, time.monotonic() - started, failures)
    report.details = details
    return report


def _details(outcome: Drive) -> list[str]:
    """What ``-v`` shows of a run: its status, path (every step, when some did not complete),
    state and result."""
    status = outcome.status
    assert status is not None
    history = status["history"]
    error = f" ({status['error']})" if status.get("error") else ""
    lines = [f"status: {status['status']}{error}", f"path: [{', '.join(path_of(history))}]"]
    if any(entry["outcome"] != "completed" for entry in history):
        lines.append(f"every step: [{', '.join(path_of(history, detailed=True))}]")
    lines.append(f"state: {show(status['state'], 400)}")
    lines.append(f"result: {show(status.get('result'), 400)}")
    return lines
