"""What ``enginectl test`` tells: a line per test on the terminal, and JUnit XML for CI."""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

__all__ = ["CaseReport", "FileReport", "print_case", "print_file", "write_junit"]


@dataclass
class CaseReport:
    """How one test went.

    Attributes:
        name: The test's name.
        line: Where it starts in its file.
        seconds: How long it took (start of the run to the verdict).
        failures: One message per failed assertion or script problem (empty: it passed).
        details: What ``-v`` shows of the run (path, state, result), one line each.
    """

    name: str
    line: int
    seconds: float
    failures: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class FileReport:
    """How one test file went: its tests, or why it could not run."""

    path: str
    definition: str = ""
    seconds: float = 0.0
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    cases: list[CaseReport] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(1 for case in self.cases if not case.passed)


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def print_case(report: FileReport, case: CaseReport, out: TextIO, *, verbose: bool) -> None:
    """``PASS  FILE: NAME (12 ms)``, or ``FAIL  FILE:LINE: NAME (...)`` and each failure."""
    if case.passed:
        print(f"PASS  {report.path}: {case.name} ({_seconds(case.seconds)})", file=out)
    else:
        print(f"FAIL  {report.path}:{case.line}: {case.name} ({_seconds(case.seconds)})", file=out)
        for failure in case.failures:
            first, *rest = failure.splitlines()
            print(f"      {first}", file=out)
            for line in rest:
                print(f"      {line}", file=out)
    if verbose:
        for line in case.details:
            print(f"      | {line}", file=out)
    out.flush()


def print_file(report: FileReport, out: TextIO) -> None:
    """The file's summary line (or its problems, when it could not run)."""
    if report.problems:
        for problem in report.problems:
            print(problem, file=out)
        print(f"ERROR {report.path}: not run (the test file is invalid)", file=out)
    else:
        passed = len(report.cases) - report.failed
        failed = f", {report.failed} failed" if report.failed else ""
        print(f"{report.path}: {passed} passed{failed} in {_seconds(report.seconds)}", file=out)
    out.flush()


def write_junit(reports: Sequence[FileReport], path: str) -> None:
    """JUnit XML: a testsuite per file, a testcase per test with its failures; a file that
    could not run is a suite with one erroring testcase."""
    root = ET.Element("testsuites", name="enginectl test")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    total_time = 0.0
    host = socket.gethostname()
    for report in reports:
        errors = 1 if report.problems else 0
        tests = len(report.cases) or errors
        suite = ET.SubElement(
            root,
            "testsuite",
            _attributes(
                name=report.path,
                tests=tests,
                failures=report.failed,
                errors=errors,
                skipped=0,
                time=f"{report.seconds:.3f}",
                timestamp=report.started.strftime("%Y-%m-%dT%H:%M:%S"),
                hostname=host,
                file=report.path,
            ),
        )
        if report.definition:
            properties = ET.SubElement(suite, "properties")
            ET.SubElement(properties, "property", name="definition", value=report.definition)
        classname = _classname(report.path)
        if report.problems:
            case = ET.SubElement(
                suite, "testcase", _attributes(classname=classname, name="(test file)", time=0)
            )
            error = ET.SubElement(case, "error", message=report.problems[0], type="InvalidTestFile")
            error.text = "\n".join(report.problems)
        for case_report in report.cases:
            case = ET.SubElement(
                suite,
                "testcase",
                _attributes(
                    classname=classname,
                    name=case_report.name,
                    time=f"{case_report.seconds:.3f}",
                    file=report.path,
                    line=case_report.line,
                ),
            )
            if case_report.failures:
                failure = ET.SubElement(
                    case,
                    "failure",
                    message=case_report.failures[0].splitlines()[0],
                    type="AssertionFailure",
                )
                failure.text = "\n".join(case_report.failures)
        totals["tests"] += tests
        totals["failures"] += report.failed
        totals["errors"] += errors
        total_time += report.seconds
    root.attrib.update(_attributes(**totals, time=f"{total_time:.3f}"))
    ET.indent(root)
    target = Path(path)
    if target.parent != Path():
        target.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(target, encoding="utf-8", xml_declaration=True)


def _attributes(**values: Any) -> dict[str, str]:
    return {key: str(value) for key, value in values.items()}


def _classname(path: str) -> str:
    """``examples/agent-task.test.yaml`` -> ``examples.agent-task``: how CI tools group tests."""
    stem = path.removesuffix(".yaml").removesuffix(".yml").removesuffix(".test")
    return stem.strip("./").replace("/", ".") or stem
