"""Scripted runs of the definitions in ``examples/``: inputs and an answer per external step.

One script per example drives a run to completion along its main path. The end-to-end tests
(``tests/examples/test_examples_run.py``) run these and vary them for the other branches; the
replay recorder (``tests/replay/record.py``) records their histories. Answers are those of
:mod:`tests.helpers.drive`: a value, :class:`~tests.helpers.drive.Fail`,
:class:`~tests.helpers.drive.Signal` or a callable of the pending action.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from engine.definition import WorkflowDefinition, load_definition_file
from tests.helpers.drive import Answer, Event, Fail, Signal

__all__ = [
    "EXAMPLES_DIR",
    "SCRIPTS",
    "Script",
    "example_names",
    "load_example",
    "mcp_param",
    "script",
    "shell",
]

EXAMPLES_DIR: Final = Path(__file__).resolve().parents[2] / "examples"


def example_names() -> list[str]:
    """The stem of every definition in ``examples/``."""
    return sorted(
        path.stem for path in EXAMPLES_DIR.glob("*.yaml") if not path.name.endswith(".test.yaml")
    )


def load_example(name: str) -> WorkflowDefinition:
    return load_definition_file(EXAMPLES_DIR / f"{name}.yaml")


@dataclass(frozen=True)
class Script:
    """A run of one example: its inputs and the answer of each external step."""

    inputs: dict[str, Any]
    answers: dict[str, Answer]

    def with_answers(self, **answers: Answer) -> Script:
        return Script(dict(self.inputs), {**self.answers, **answers})

    def with_inputs(self, **inputs: Any) -> Script:
        return Script({**self.inputs, **inputs}, dict(self.answers))


def shell(exit_code: int = 0, stdout: str = "", stderr: str = "") -> dict[str, Any]:
    """A shell result."""
    return {"exit_code": exit_code, "stdout": stdout, "stderr": stderr}


def mcp_param(action: dict[str, Any], name: str) -> Any:
    """A rendered ``params`` entry of an mcp_call action."""
    return action["parameters"]["params"].get(name)


def _context(action: dict[str, Any], name: str) -> Any:
    return (action["parameters"].get("context") or {}).get(name)


# -- hello -------------------------------------------------------------------------------------


def _hello() -> Script:
    # The greeting is acknowledged through the signal form of submit_result.
    return Script({"who": "Ada", "shout": True}, {"show": Signal("seen")})


# -- agent-task --------------------------------------------------------------------------------

PLAN: Final = {"summary": "Add a /healthz endpoint", "files": ["app.py", "test_app.py"]}
CHANGE: Final = {"branch": "agent/healthz", "pr_url": "https://github.com/acme/shop/pull/7"}


def _agent_task() -> Script:
    # Medium risk: the plan needs a person's confirmation. The first test run fails, the fixer
    # agent gets its round, the rerun passes, and the reviewer merges.
    return Script(
        {"repository": "acme/shop", "task": "Add a health endpoint", "reviewers": ["bob"]},
        {
            "plan": {**PLAN, "risky": False},
            "approve_plan": True,
            "implement": CHANGE,
            "run_tests": shell(1, "collected 12 items", "FAILED test_app.py::test_healthz"),
            "fix": {"commits": 1},
            "rerun_tests": shell(0, "12 passed"),
            "report": "ok",
            "decide": "merge",
            "merge": {"merged": True, "sha": "9f1c2e"},
        },
    )


# -- data-backfill -----------------------------------------------------------------------------


def _recompute(action: dict[str, Any]) -> dict[str, Any]:
    # The job logs what it does, then prints its JSON summary on its last line.
    env = action["parameters"]["env"]
    rows = 10 + int(env["OFFSET"])
    return shell(0, f'{env["TABLE"]} +{env["OFFSET"]}: recomputed\n{{"rows": {rows}}}\n')


def _data_backfill() -> Script:
    # A quiet hour one hour ahead (the driver shortens the wait), two tables of one day each,
    # snapshots taken (not a dry run), a clean verification.
    not_before = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    return Script(
        {
            "dataset": "analytics",
            "tables": ["events", "users"],
            "start_date": "2026-01-01",
            "days": 1,
            "not_before": not_before.isoformat().replace("+00:00", "Z"),
            "dry_run": False,
        },
        {
            "preflight": shell(0),
            "snapshot": shell(0, "copied"),
            "recompute": _recompute,
            "verify": shell(0, "row counts match"),
        },
    )


# -- deploy-service ----------------------------------------------------------------------------

REVISIONS: Final = {"us-east-1": 41, "eu-west-1": 17, "ap-southeast-2": 5}
ERROR_RATES: Final = {"us-east-1": 0.002, "eu-west-1": 0.004, "ap-southeast-2": 0.001}


def _deploy_service() -> Script:
    # Staging (approved at once), two regions, every SLO check green, a clean smoke test.
    return Script(
        {"service": "shop", "git_ref": "v1.2.3", "regions": ["us-east-1", "eu-west-1"]},
        {
            "build": shell(0, "pushed shop:v1.2.3"),
            "approve": True,
            "announce": {"ok": True},
            "current": lambda a: {"revision": REVISIONS[mcp_param(a, "region")]},
            "canary": {"applied": True},
            "slo_check": lambda a: {"error_rate": ERROR_RATES[mcp_param(a, "region")]},
            "promote": {"promoted": True},
            "smoke": shell(0, "smoke ok"),
            "rollback_canary": {"rolled_back": True},
            "announce_failure": {"ok": True},
        },
    )


# -- incident-triage ---------------------------------------------------------------------------

INCIDENT: Final = {"service": "checkout", "title": "5xx spike on /pay"}
ANALYSIS: Final = {
    "cause": "deploy abc123 broke the payment client",
    "customer_impact": True,
    "fix": "roll back abc123",
    "confidence": 0.92,
}


def _incident(action: dict[str, Any]) -> Any:
    # PagerDuty answers 503 once; the step retries (on_error: retry, 500 ms backoff).
    return Fail("pagerduty: 503") if action["attempt"] == 1 else INCIDENT


def _incident_triage() -> Script:
    # Customer impact escalates; the on-call says "go" (through the signal form) and the
    # confident fix is applied by the agent.
    return Script(
        {
            "incident_id": "PD-42",
            "alert": {"metric": "http_5xx", "value": 312},
            "allow_auto_remediation": True,
        },
        {
            "incident": _incident,
            "deploys": [{"sha": "abc123", "at": "2026-01-01T10:00:00Z"}],
            "logs": {"lines": ["payment client: 500"], "query_url": "https://logs/q/1"},
            "analyse": ANALYSIS,
            "escalate": {"level": 2, "paged": "secondary"},
            "tell_escalated": True,
            "ask_oncall": Signal("  Go "),
            "remediate": {"recovered": True},
            "annotate": {"noted": True},
        },
    )


# -- release-notes -----------------------------------------------------------------------------

PRS: Final[list[dict[str, Any]]] = [
    {"number": 11, "title": "Add search", "labels": ["feature"]},
    {"number": 12, "title": "Fix crash on start", "body": "Closes #9"},
    {"number": 13, "title": "Bump deps"},
]
CLASSIFIED: Final = {
    11: {"category": "Feature", "line": "  Search across projects "},
    12: {"category": "fix", "line": "No more crash on start"},
    13: {},  # the classifier has nothing to say: chore, with the title as the line
}


def _classify(action: dict[str, Any]) -> Any:
    # The child of item i is "{run}/classify/{i}".
    number = PRS[int(action["workflow_id"].rsplit("/", 1)[1])]["number"]
    answer = CLASSIFIED[number]
    return Signal(answer) if number == 12 else answer  # one child answered by signal


def _release_notes() -> Script:
    # Three PRs classified in parallel children, the manager edits the notes, then publishes.
    return Script(
        {"repository": "acme/shop", "from_tag": "v1.0.0", "to_tag": "v1.1.0"},
        {
            "merged": PRS,
            "classify_one": _classify,
            "draft": {"markdown": "## Features\n- Search across projects"},
            "sign_off": "edit",
            "edited": "## Features\n- Search across all projects",
            "publish": {"html_url": "https://github.com/acme/shop/releases/v1.1.0"},
        },
    )


# -- ship-change -------------------------------------------------------------------------------

MERGE: Final = {"repository": "acme/shop", "pr": 42, "sha": "9f1c2e7"}


def _ship_change() -> Script:
    # The checks pass, the merge event arrives (another PR's first: it does not correlate),
    # staging and production deploy through deploy-service (production approved), and the
    # channel hears it.
    deploy = _deploy_service().answers
    return Script(
        {"repository": "acme/shop", "pr": 42, "service": "shop", "regions": ["us-east-1"]},
        {
            **deploy,
            "lint": shell(0, "lint ok"),
            "unit_tests": shell(0, "212 passed"),
            "security_review": {"verdict": "ok", "notes": "no new inputs reach a shell"},
            "merged": Event(MERGE),
            "announce": {"ok": True},
        },
    )


# -- world-clock -------------------------------------------------------------------------------

TOKYO_NOON: Final = {
    "source": {
        "timezone": "UTC",
        "datetime": "2026-12-07T03:00:00+00:00",
        "day_of_week": "Monday",
        "is_dst": False,
    },
    "target": {
        "timezone": "Asia/Tokyo",
        "datetime": "2026-12-07T12:00:00+09:00",
        "day_of_week": "Monday",
        "is_dst": False,
    },
    "time_difference": "+9.0h",
}


def _world_clock() -> Script:
    # What the shell runner and the MCP time server would answer (tests/runners runs them).
    return Script({}, {"now": shell(0, "03:00\n"), "convert": TOKYO_NOON})


_SCRIPTS: Final[dict[str, Callable[[], Script]]] = {
    "agent-task": _agent_task,
    "data-backfill": _data_backfill,
    "deploy-service": _deploy_service,
    "hello": _hello,
    "incident-triage": _incident_triage,
    "release-notes": _release_notes,
    "ship-change": _ship_change,
    "world-clock": _world_clock,
}

SCRIPTS: Final = frozenset(_SCRIPTS)
"""The examples that have a script."""


def script(example: str) -> Script:
    """A fresh script of the main path of ``example`` (inputs computed now)."""
    if example not in _SCRIPTS:
        raise AssertionError(
            f"examples/{example}.yaml has no scripted run: add one to tests/helpers/"
            "example_scripts.py and its checks to tests/examples/test_examples_run.py"
        )
    return _SCRIPTS[example]()
