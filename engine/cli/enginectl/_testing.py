"""``test``: run definitions against test files, on the real interpreter, with no engine running.

The command is local, like ``validate``: it starts a private Temporal dev server and an
interpreter worker in this process (:mod:`engine.cli.workflowtest`). That package loads
Temporal's SDK, so it is imported only when the command runs: ``--help`` and every other
command stay light (the one import of it is allowed by name in pyproject's import-linter
contract ``clients-start-light``).
"""

from __future__ import annotations

import argparse

from engine.cli.enginectl._common import Subcommands, positive_float

__all__ = ["register"]

_FORMAT = """\
test file format (examples/<name>.test.yaml):
  definition: agent-task.yaml      # relative to the test file; default: <name>.yaml beside
                                   # <name>.test.yaml
  definitions: {deploy-service: deploy.yaml}   # what `call` steps run (default:
                                   # <name>.yaml beside the caller)
  org: default                     # the org the runs serve (org.id in expressions)
  inputs: {...}                    # shared by every test (a test's own inputs override)
  results: {...}                   # shared defaults, by step id (a test's own list replaces)
  events: {...}                    # shared defaults, by event name
  tests:
    - name: fixed on the second round
      workflow_id: ...             # default: <definition name>-<name as a slug>
      inputs: {task: fix the flaky test}
      results:                     # by step id: one entry per time the step asks (each
                                   # attempt, each loop iteration, each foreach item)
        run_tests: [{exit_code: 1, stderr: 1 failed}, {exit_code: 0, stdout: ok}]
        fix: [patched]                             # a result
        deploy: [{error: cluster down}]            # the executor reports an error
        approve: [{timeout: true}]                 # the action times out
        review: [{cancel: "no reviewer"}]          # the run is cancelled there
        check: [{result: {ok: true}, times: 3}]    # the same result three times
        slo: [{match: {params: {region: eu}}, result: {rate: 0.2}}, {result: {rate: 0}}]
                                   # match: only for an action whose parameters contain this
        sign: [{result: true, by: {subject: alice, roles: [release]}}]   # who answers
      events:                      # by event name: payloads, in the order wait_for steps
        pr_merged: [{pr: 7}]       # take them; a wait_for with none left times out
      expect:
        status: completed          # completed (default), failed (default with error),
                                   # cancelled
        path: [run_tests, fix, run_tests, done]    # completed steps, in the order they
                                   # started (or a list of {step, outcome, attempts}: every
                                   # step that started)
        state: {green: true}       # a subset of the final state
        result: {...}              # the exact result
        error: cluster down        # a substring of the run's error
        steps: {fix: {status: completed, output: {...}, error: ..., attempts: 1}}
        actions: {run_tests: [{env: {BRANCH: main}}]}   # each action's parameters
                                                        # (a subset), in order

A mapping made only of result/error/timeout/cancel and match/times/by is an instruction; a
result that is such a mapping is written {result: {...}}. Steps inside foreach items and
called definitions are answered by their ids like the others (the order between items is not
fixed: use match). A step that asks more often than it is answered fails the test, and so do
results of the test's own that are never asked for ([] says: never asks). A `wait`, a retry's
backoff and a wait_for's timeout take no real time.

exit status: 0 every test passed, 1 a test failed (or Temporal could not start), 2 a test
file or its definition is invalid (each problem as FILE:LINE:COL: message)."""


def register(commands: Subcommands) -> None:
    """Add ``test``."""
    test = commands.add_parser(
        "test",
        help="run definitions against test files (no engine needed)",
        description=(
            "Run each test of each test file on the real interpreter, on a private Temporal "
            "dev server started for this command: the results of external steps and the "
            "events come from the test file, waits and timeouts take no real time. Prints "
            "PASS or FAIL per test; a failure names the step and shows expected and actual."
        ),
        epilog=_FORMAT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    test.add_argument("files", nargs="+", metavar="FILE", help="a test file (YAML)")
    test.add_argument("--junit", metavar="PATH", help="also write JUnit XML to PATH")
    test.add_argument(
        "-k",
        dest="select",
        action="append",
        default=[],
        metavar="TEXT",
        help="run only the tests whose name contains TEXT (repeatable; any of them)",
    )
    test.add_argument(
        "--run-timeout",
        type=positive_float,
        default=15.0,
        metavar="SECONDS",
        help="fail a test whose run has not ended after this long (default 15)",
    )
    test.add_argument(
        "--temporal",
        metavar="HOST:PORT",
        help="use this Temporal server instead of starting a private dev server",
    )
    test.add_argument(
        "--namespace",
        default="default",
        help="the namespace to run in, with --temporal (default: default)",
    )
    test.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show each run's status, path, state and result (to write expectations from)",
    )
    test.set_defaults(handler=run_tests)


def run_tests(args: argparse.Namespace) -> int:
    """``enginectl test FILE...``."""
    # The one place enginectl loads Temporal's SDK and the interpreter (see the docstring).
    from engine.cli.workflowtest import Options, run_test_files

    options = Options(
        junit=args.junit,
        select=tuple(args.select),
        run_timeout=args.run_timeout,
        temporal_address=args.temporal,
        namespace=args.namespace,
        verbose=args.verbose,
    )
    return run_test_files(args.files, options)
