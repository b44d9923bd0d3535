"""Every definition in ``examples/`` runs end to end on a real Temporal dev server.

Each example has a scripted main path (``tests/helpers/example_scripts.py``) that the generic
driver (``tests/helpers/drive.py``) plays: it answers each pending action of the run's tree
through the ``submit_result`` update (or, where the script says so, the signal), shortens every
``wait`` with ``update_timeout``, and stops when the run ends. The checks below then pin the
run's result and the state values a user would look at. The other branches of each example
follow, where they are cheap to reach.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from tests.helpers.drive import LATER, Answered, Drive, Fail, Signal, drive
from tests.helpers.example_scripts import (
    ANALYSIS,
    CHANGE,
    INCIDENT,
    MERGE,
    PLAN,
    REVISIONS,
    SCRIPTS,
    Script,
    example_names,
    load_example,
    mcp_param,
    script,
    shell,
)
from tests.helpers.runs import start

EXAMPLES = example_names()


async def play(client: Client, example: str, run_script: Script) -> tuple[str, Drive]:
    """Start a run of ``example`` and drive it to its end; returns its id and how it ended."""
    definition = load_example(example)
    handle = await start(client, definition, run_script.inputs)
    return handle.id, await drive(client, handle, definition, run_script.answers)


def vias(run: Drive) -> dict[str, set[str]]:
    """Step id -> how its actions were submitted (``update``/``signal``)."""
    found: dict[str, set[str]] = {}
    for answered in run.answered:
        found.setdefault(answered.step_id, set()).add(answered.via)
    return found


def only(run: Drive, step_id: str) -> Answered:
    answered = run.of(step_id)
    assert len(answered) == 1, f"{step_id} answered {len(answered)} times: {run.steps()}"
    return answered[0]


# -- the main path of every example ------------------------------------------------------------


def check_hello(run_id: str, run: Drive) -> None:
    assert run.result == {"greeting": "HELLO, ADA", "run": run_id}
    assert run.status["state"] == {"greeting": "HELLO, ADA"}
    show = only(run, "show")
    # `$${{` renders as a literal `${{`; needs_state sends the greeting along.
    assert show.action["parameters"]["message"] == (
        "HELLO, ADA! (Templates look like ${{ inputs.who }}.)"
    )
    assert show.action["state"] == {"greeting": "HELLO, ADA"}
    assert vias(run) == {"show": {"signal"}}


def check_agent_task(run_id: str, run: Drive) -> None:
    assert run.result == {
        "status": "merge",
        "pull_request": CHANGE["pr_url"],
        "fix_rounds": 1,
        "tests_green": True,
        "org": "default",
    }
    assert run.steps() == [
        "plan",
        "approve_plan",
        "implement",
        "run_tests",
        "fix",
        "rerun_tests",
        "report",
        "decide",
        "merge",
    ]
    state = run.status["state"]
    assert state["approved"] is True
    assert state["plan"] == {**PLAN, "risky": False}
    assert state["change"] == CHANGE
    assert state["decision"] == "merge"
    assert state["tests"] == shell(0, "12 passed")  # the rerun's result replaced the first one
    assert state["fix"] == {"commits": 1}
    steps = run.status["steps"]
    assert steps["run_tests"]["status"] == "failed"  # on_error: continue
    assert steps["rerun_tests"]["status"] == "completed"
    assert steps["close"]["status"] == "skipped"
    approve = only(run, "approve_plan").action
    assert approve["parameters"]["message"] == (
        "Let the agent change acme/shop following this plan?\n"
        "Add a /healthz endpoint\nFiles: app.py, test_app.py\n"
    )
    assert approve["state"] == {"plan": {**PLAN, "risky": False}}  # needs_state: [plan]
    implement = only(run, "implement").action["parameters"]
    assert implement["agent"] == "@task"
    assert "open a draft pull request" in implement["instruction"]
    assert implement["context"] == {"files": PLAN["files"], "reviewers": ["bob"]}
    run_tests = only(run, "run_tests").action["parameters"]
    assert run_tests["env"] == {"BRANCH": "agent/healthz", "FLOOR": "0.8"}
    assert "$BRANCH" in run_tests["command"]  # values travel in env, never in the text
    assert only(run, "report").action["parameters"]["message"] == (
        "https://github.com/acme/shop/pull/7 is ready; the last test run passed after 1 fix "
        "round(s)."
    )
    # The loop gave the fixer one round: the rerun turned the tests green.
    assert run.status["steps"]["fix_until_green"]["output"] == {"iterations": 1, "broke": False}
    assert (
        only(run, "fix")
        .action["parameters"]["instruction"]
        .startswith("Round 1: the tests of branch agent/healthz fail.")
    )
    decide = only(run, "decide").action["parameters"]
    assert decide["options"] == ["merge", "keep_open", "close"]
    assert only(run, "merge").action["parameters"]["params"] == {
        "url": CHANGE["pr_url"],
        "method": "squash",
    }
    assert set().union(*vias(run).values()) == {"update"}


def check_data_backfill(run_id: str, run: Drive) -> None:
    expected_tables = [
        {"table": "events", "days_done": 1, "days": [{"offset": 0, "rows": 10}], "wave": 0},
        {"table": "users", "days_done": 1, "days": [{"offset": 0, "rows": 10}], "wave": 1},
    ]
    assert run.result == {"dataset": "analytics", "tables": expected_tables, "verified": True}
    assert run.status["state"]["results"] == expected_tables
    assert run.status["state"]["verification"] == shell(0, "row counts match")
    # The quiet-hours wait (an hour ahead) was shortened; nothing else waits.
    assert run.shortened == [(run_id, "quiet_hours")]
    # Nested foreach: one child per table, one grandchild per day.
    assert sorted(run.workflows) == sorted(
        [
            run_id,
            f"{run_id}/per_table/0",
            f"{run_id}/per_table/1",
            f"{run_id}/per_table/0/per_day/0",
            f"{run_id}/per_table/1/per_day/0",
        ]
    )
    snapshots = sorted(a.action["parameters"]["env"]["TABLE"] for a in run.of("snapshot"))
    assert snapshots == ["events", "users"]
    recomputes = {a.workflow_id: a.action["parameters"]["env"] for a in run.of("recompute")}
    assert recomputes[f"{run_id}/per_table/1/per_day/0"] == {
        "DATASET": "analytics",
        "TABLE": "users",
        "START": "2026-01-01",
        "OFFSET": "0",
        "DRY_RUN": "",
        "PRIORITY": "batch",
    }
    assert run.steps()[0] == "preflight" and run.steps()[-1] == "verify"
    assert set().union(*vias(run).values()) == {"update"}


def check_deploy_service(run_id: str, run: Drive) -> None:
    deployments = [
        {"region": "us-east-1", "error_rate": 0.002, "promoted": True},
        {"region": "eu-west-1", "error_rate": 0.004, "promoted": True},
    ]
    assert run.result == {
        "service": "shop",
        "ref": "v1.2.3",
        "deployments": deployments,
        "smoke_ok": True,
    }
    state = run.status["state"]
    assert state["approved"] is True  # staging: auto_approve, no prompt
    assert state["deployments"] == deployments
    assert state["build"] == shell(0, "pushed shop:v1.2.3")
    assert run.of("approve") == []
    assert run.status["steps"]["auto_approve"]["status"] == "completed"
    assert sorted(run.shortened) == [
        (run_id, "settle"),
        (f"{run_id}/rollout/0", "bake"),
        (f"{run_id}/rollout/1", "bake"),
    ]
    canaries = {mcp_param(a.action, "region"): a.params for a in run.of("canary")}
    assert canaries["eu-west-1"] == {
        "region": "eu-west-1",
        "name": "shop",
        "image": "shop:v1.2.3",  # the build's result has no image: the fallback
        "weight": 10,
        "labels": {"team": "platform", "region": "eu-west-1", "wave": "1"},
        "dry_run": False,
    }
    assert {a.workflow_id for a in run.of("promote")} == {
        f"{run_id}/rollout/0",
        f"{run_id}/rollout/1",
    }
    assert only(run, "announce").params["text"] == "Deploying shop (v1.2.3) to staging"
    assert run.of("rollback_canary") == [] and run.of("announce_failure") == []
    assert set().union(*vias(run).values()) == {"update"}


def check_incident_triage(run_id: str, run: Drive) -> None:
    assert run.result == {
        "incident": "PD-42",
        "escalated": True,
        "cause": ANALYSIS["cause"],
        "remediated": True,
    }
    # PagerDuty failed once; on_error: retry issued the action again.
    assert [a.action["attempt"] for a in run.of("incident")] == [1, 2]
    assert run.of("incident")[0].error == "pagerduty: 503"
    state = run.status["state"]
    assert state["incident"] == INCIDENT
    assert state["analysis"] == ANALYSIS
    assert state["escalated"] is True
    assert state["escalation"] == {"level": 2, "paged": "secondary"}
    assert state["notes"] == "  Go "  # "go" after lower(trim()): remediation allowed
    assert state["remediation"] == {"recovered": True}
    assert run.steps() == [
        "incident",
        "incident",
        "deploys",
        "logs",
        "analyse",
        "escalate",
        "tell_escalated",
        "ask_oncall",
        "remediate",
    ]
    analyse = only(run, "analyse").action["parameters"]
    assert analyse["context"]["log_lines"] == ["payment client: 500"]
    assert analyse["context"]["alert"] == {"metric": "http_5xx", "value": 312}
    assert analyse["instruction"].startswith("Incident PD-42 (SEV2):\n5xx spike on /pay.\n")
    assert only(run, "logs").params["query"] == "service:checkout level:error"
    assert vias(run) == {
        **{step: {"update"} for step in run.steps() if step != "ask_oncall"},
        "ask_oncall": {"signal"},
    }


def check_release_notes(run_id: str, run: Drive) -> None:
    assert run.result == {
        "tag": "v1.1.0",
        "published": True,
        "url": "https://github.com/acme/shop/releases/v1.1.0",
        "counts": {"merged": 3, "classified": 3, "unclassified": 0},
        "decision": "edit",
    }
    state = run.status["state"]
    assert state["entries"] == [
        {"number": 11, "category": "feature", "line": "Search across projects"},
        {"number": 12, "category": "fix", "line": "No more crash on start"},
        {"number": 13, "category": "chore", "line": "Bump deps"},
    ]
    assert state["notes"] == "## Features\n- Search across all projects"  # the edited text
    assert state["published"] is True
    children = {a.workflow_id: a for a in run.of("classify_one")}
    assert sorted(children) == [f"{run_id}/classify/{i}" for i in range(3)]
    signalled = children[f"{run_id}/classify/1"]
    assert signalled.via == "signal"
    assert signalled.action["parameters"]["instruction"].startswith(
        'Classify pull request #12 "Fix crash on start"'
    )
    sign_off = only(run, "sign_off").action["parameters"]
    assert sign_off["message"] == (
        "Release notes for v1.1.0 (3 pull requests):\n\n## Features\n- Search across projects\n"
    )
    assert only(run, "edited").action["parameters"]["default"] == (
        "## Features\n- Search across projects"
    )
    assert only(run, "publish").params["body"] == "## Features\n- Search across all projects"


def check_ship_change(run_id: str, run: Drive) -> None:
    deployed = {
        "service": "shop",
        "ref": MERGE["sha"],
        "deployments": [{"region": "us-east-1", "error_rate": 0.002, "promoted": True}],
        "smoke_ok": True,
    }
    assert run.result == {
        "status": "shipped",
        "sha": MERGE["sha"],
        "staging": deployed,
        "production": deployed,
        "keep_staging": True,
    }
    # The three checks ran at once (one round of answers), before anything else.
    assert set(run.steps()[:3]) == {"lint", "unit_tests", "security_review"}
    assert run.status["steps"]["checks"]["output"] == {
        "lint": shell(0, "lint ok"),
        # Its last completed step's: the set_state after it did not run (verdict ok).
        "security": {"verdict": "ok", "notes": "no new inputs reach a shell"},
        "tests": shell(0, "212 passed"),
    }
    assert run.status["state"]["merge"] == MERGE
    # Staging and production are runs of deploy-service, called by this one: their actions
    # were answered in them, the production approval included.
    assert {f"{run_id}/staging", f"{run_id}/deploy_prod"} <= set(run.workflows)
    assert [a.workflow_id for a in run.of("approve")] == [f"{run_id}/deploy_prod"]
    assert {a.workflow_id for a in run.of("build")} == {
        f"{run_id}/staging",
        f"{run_id}/deploy_prod",
    }
    announce = [a for a in run.of("announce") if a.workflow_id == run_id]
    assert announce[0].params["text"] == "shop (PR #42): production deployed"
    assert "tell_oncall" not in run.steps()  # nothing failed: the catch did not run


def check_world_clock(run_id: str, run: Drive) -> None:
    assert run.result == {
        "utc": "03:00",
        "zone": "Asia/Tokyo",
        "there": "2026-12-07T12:00:00+09:00",
        "difference": "+9.0h",
    }
    convert = only(run, "convert")
    assert convert.action["parameters"]["server"] == "time"
    assert convert.action["parameters"]["params"] == {
        "source_timezone": "UTC",
        "time": "03:00",
        "target_timezone": "Asia/Tokyo",
    }


CHECKS: dict[str, Callable[[str, Drive], None]] = {
    "agent-task": check_agent_task,
    "data-backfill": check_data_backfill,
    "deploy-service": check_deploy_service,
    "hello": check_hello,
    "incident-triage": check_incident_triage,
    "release-notes": check_release_notes,
    "ship-change": check_ship_change,
    "world-clock": check_world_clock,
}


def test_every_example_has_a_driver() -> None:
    assert EXAMPLES, "no definitions found in examples/"
    missing = [e for e in EXAMPLES if e not in SCRIPTS or e not in CHECKS]
    assert not missing, f"examples without an end-to-end script and checks: {missing}"


@pytest.mark.parametrize("example", EXAMPLES)
async def test_example_main_path(client: Client, worker: Worker, example: str) -> None:
    assert example in CHECKS, f"examples/{example}.yaml has no checks in {__name__}"
    run_id, run = await play(client, example, script(example))
    assert run.failure is None, f"{example} failed: {run.failure_message}"
    assert run.status["status"] == "completed"
    assert run.status["result"] == run.result
    assert run.status["pending_actions"] == []
    CHECKS[example](run_id, run)


# -- deploy-service: prod, rejection, rollback -------------------------------------------------


async def test_deploy_service_prod_confirmed(client: Client, worker: Worker) -> None:
    prod = script("deploy-service").with_inputs(env="prod", regions=["us-east-1"])
    _, run = await play(client, "deploy-service", prod)
    assert run.result == {
        "service": "shop",
        "ref": "v1.2.3",
        "deployments": [{"region": "us-east-1", "error_rate": 0.002, "promoted": True}],
        "smoke_ok": True,
    }
    approve = only(run, "approve")
    assert approve.action["parameters"]["message"] == "Deploy shop @ v1.2.3 to prod in us-east-1?"
    assert approve.result is True and approve.via == "update"
    assert run.status["state"]["approved"] is True
    assert "auto_approve" not in run.status["steps"]
    assert only(run, "announce").params["text"] == "Deploying shop (v1.2.3) to prod"
    assert only(run, "current").params == {"region": "us-east-1", "name": "shop", "env": "prod"}


async def test_deploy_service_prod_rejected(client: Client, worker: Worker) -> None:
    rejected = script("deploy-service").with_inputs(env="prod").with_answers(approve=False)
    run_id, run = await play(client, "deploy-service", rejected)
    assert run.result == {"status": "rejected", "service": "shop"}
    assert run.steps() == ["build", "approve"]
    assert run.status["state"]["approved"] is False
    assert run.workflows == [run_id]  # no rollout child was started
    assert "rollout" not in run.status["steps"]


def _region(action: dict[str, Any]) -> str:
    region: str = mcp_param(action, "region")
    return region


def _slo_failure_script(log: list[Answered], *, held: str | None = None) -> Script:
    """us-east-1 finishes first; eu-west-1's canary goes out after it and its SLO check fails.

    ``held`` names a region whose SLO check is never answered (it is still baking when the
    rollout fails).
    """

    def answered(step_id: str, region: str) -> bool:
        return any(a.step_id == step_id and a.params.get("region") == region for a in log)

    def canary(action: dict[str, Any]) -> Any:
        # eu-west-1's canary completes after us-east-1's: the order of completion is known.
        if _region(action) == "eu-west-1" and not answered("canary", "us-east-1"):
            return LATER
        return {"applied": True}

    def slo_check(action: dict[str, Any]) -> Any:
        region = _region(action)
        if region == held:
            return LATER
        if region != "eu-west-1":
            return {"error_rate": 0.002}
        # Fail only once us-east-1 has completed (and the held region's canary went out).
        if not answered("promote", "us-east-1") or (held and not answered("canary", held)):
            return LATER
        return Fail("error rate 4.2% over budget")

    regions = ["us-east-1", "eu-west-1"] + ([held] if held else [])
    return (
        script("deploy-service")
        .with_inputs(regions=regions)
        .with_answers(canary=canary, slo_check=slo_check)
    )


async def test_deploy_service_failed_slo_rolls_back(client: Client, worker: Worker) -> None:
    log: list[Answered] = []
    definition = load_example("deploy-service")
    run_script = _slo_failure_script(log)
    handle = await start(client, definition, run_script.inputs)
    run = await drive(client, handle, definition, run_script.answers, log=log)
    message = (
        "step 'rollout' failed: item 1 failed: step 'slo_check' failed: error rate 4.2% over budget"
    )
    assert run.result is None and run.failure_message == message
    assert run.status["status"] == "failed" and run.status["error"] == message
    assert run.status["steps"]["rollout"]["status"] == "failed"
    # Completed in this order: announce, canary us-east-1, canary eu-west-1. Undone in reverse:
    # the failing region rolls itself back, then the run rolls back us-east-1, then tells Slack.
    undo = [
        (a.workflow_id, a.step_id, a.params.get("region"))
        for a in run.answered
        if a.step_id in {"rollback_canary", "announce_failure"}
    ]
    assert undo == [
        (f"{handle.id}/rollout/1", "rollback_canary", "eu-west-1"),
        (handle.id, "rollback_canary", "us-east-1"),
        (handle.id, "announce_failure", None),
    ]
    eu_rollback = run.of("rollback_canary")[0]
    assert eu_rollback.params == {"region": "eu-west-1", "name": "shop", "revision": 17}
    assert only(run, "announce_failure").params == {
        "channel": "#deploys",
        "text": "Deploy of shop failed, rolled back",
    }
    assert [_region(a.action) for a in run.of("promote")] == ["us-east-1"]
    assert run.of("smoke") == []
    ran = [(h["step_id"], h["outcome"]) for h in run.status["history"]]
    assert ran[-3:] == [
        ("rollout", "failed"),
        ("rollback_canary", "completed"),
        ("announce_failure", "completed"),
    ]


async def test_deploy_service_rollback_of_a_finished_region_uses_its_revision(
    client: Client, worker: Worker
) -> None:
    log: list[Answered] = []
    definition = load_example("deploy-service")
    run_script = _slo_failure_script(log)
    handle = await start(client, definition, run_script.inputs)
    run = await drive(client, handle, definition, run_script.answers, log=log)
    rollbacks = {_region(a.action): a.params for a in run.of("rollback_canary")}
    assert rollbacks["us-east-1"]["revision"] == REVISIONS["us-east-1"]


async def test_deploy_service_rollback_covers_a_region_stopped_mid_rollout(
    client: Client, worker: Worker
) -> None:
    """ap-southeast-2's canary is out, still baking, when eu-west-1 fails: it is undone too."""
    log: list[Answered] = []
    definition = load_example("deploy-service")
    run_script = _slo_failure_script(log, held="ap-southeast-2")
    handle = await start(client, definition, run_script.inputs)
    run = await drive(client, handle, definition, run_script.answers, log=log)
    assert run.failure_message == (
        "step 'rollout' failed: item 1 failed: step 'slo_check' failed: error rate 4.2% over budget"
    )
    assert [_region(a.action) for a in run.of("canary")] == [
        "us-east-1",
        "eu-west-1",
        "ap-southeast-2",
    ]
    assert [_region(a.action) for a in run.of("promote")] == ["us-east-1"]
    # The failing item undoes its own canary before it fails; the run then undoes the rest,
    # latest completion first: ap-southeast-2 (handed back by the stopped item), us-east-1,
    # then the announcement.
    undo = [
        (a.workflow_id, a.step_id, a.params.get("region"))
        for a in run.answered
        if a.step_id in {"rollback_canary", "announce_failure"}
    ]
    assert undo[0] == (f"{handle.id}/rollout/1", "rollback_canary", "eu-west-1")
    assert undo[1:] == [
        (handle.id, "rollback_canary", "ap-southeast-2"),
        (handle.id, "rollback_canary", "us-east-1"),
        (handle.id, "announce_failure", None),
    ]


# -- the other branches of the other examples --------------------------------------------------


async def test_agent_task_plan_rejected(client: Client, worker: Worker) -> None:
    rejected = script("agent-task").with_answers(approve_plan=False)
    _, run = await play(client, "agent-task", rejected)
    assert run.result == {"status": "rejected", "plan": "Add a /healthz endpoint"}
    assert run.steps() == ["plan", "approve_plan"]
    assert run.status["state"]["approved"] is False


async def test_agent_task_low_risk_green_and_closed(client: Client, worker: Worker) -> None:
    low = (
        script("agent-task")
        .with_inputs(risk="low", draft_pr=False)
        .with_answers(
            run_tests=shell(0, "12 passed"),
            decide="close",
            close={"closed": True},
        )
    )
    _, run = await play(client, "agent-task", low)
    assert run.result == {
        "status": "close",
        "pull_request": CHANGE["pr_url"],
        "fix_rounds": 0,
        "tests_green": True,
        "org": "default",
    }
    # Low risk and a plan the planner saw nothing risky in: approved without asking.
    assert run.steps() == ["plan", "implement", "run_tests", "report", "decide", "close"]
    assert run.status["steps"]["auto_approve"]["status"] == "completed"
    assert "open a pull request" in only(run, "implement").action["parameters"]["instruction"]
    assert only(run, "close").params == {
        "url": CHANGE["pr_url"],
        "comment": "Closed by the reviewer",
    }
    assert run.status["steps"]["merge"]["status"] == "skipped"


async def test_incident_triage_quiet_hand_over(client: Client, worker: Worker) -> None:
    quiet = (
        script("incident-triage")
        .with_inputs(severity="sev3", allow_auto_remediation=False)
        .with_answers(
            incident=INCIDENT,
            logs=Fail("observability: timeout"),  # on_error: continue
            analyse={**ANALYSIS, "customer_impact": False},
            ask_oncall=Signal(""),
        )
    )
    _, run = await play(client, "incident-triage", quiet)
    assert run.result == {
        "incident": "PD-42",
        "escalated": False,
        "cause": ANALYSIS["cause"],
        "remediated": False,
    }
    assert run.steps() == ["incident", "deploys", "logs", "analyse", "ask_oncall", "annotate"]
    assert run.status["steps"]["logs"]["status"] == "failed"
    assert "logs" not in run.status["state"]
    assert only(run, "analyse").action["parameters"]["context"]["log_lines"] == []
    assert only(run, "annotate").params == {
        "id": "PD-42",
        "note": f"Agent analysis: {ANALYSIS['cause']}. On-call notes: ",
    }
    assert run.status["state"]["escalated"] is False
    assert run.status["state"]["notes"] == ""


async def test_release_notes_discarded(client: Client, worker: Worker) -> None:
    discard = script("release-notes").with_answers(sign_off="discard")
    _, run = await play(client, "release-notes", discard)
    assert run.result == {
        "tag": "v1.1.0",
        "published": False,
        "url": None,
        "counts": {"merged": 3, "classified": 3, "unclassified": 0},
        "decision": "discard",
    }
    assert run.of("publish") == [] and run.of("edited") == []
    assert run.status["steps"]["publish"]["status"] == "skipped"
    assert run.status["state"]["notes"] == "## Features\n- Search across projects"


async def test_data_backfill_dry_run_unverified(client: Client, worker: Worker) -> None:
    dry = (
        script("data-backfill")
        .with_inputs(tables=["events"], days=2, not_before="", dry_run=True)
        .with_answers(verify=shell(1, "", "row counts differ by 3%"))
    )
    _, run = await play(client, "data-backfill", dry)
    assert run.result == {
        "dataset": "analytics",
        "tables": [
            {
                "table": "events",
                "days_done": 2,
                "days": [{"offset": 0, "rows": 10}, {"offset": 1, "rows": 11}],
                "wave": 0,
            }
        ],
        "verified": False,
    }
    assert run.of("snapshot") == []  # a dry run takes no snapshot
    assert run.shortened == []  # no quiet hours asked for
    assert sorted(a.action["parameters"]["env"]["OFFSET"] for a in run.of("recompute")) == [
        "0",
        "1",
    ]
    assert {a.action["parameters"]["env"]["DRY_RUN"] for a in run.of("recompute")} == {"1"}
    assert run.status["steps"]["verify"]["status"] == "failed"
    assert run.status["steps"]["quiet_hours"]["status"] == "skipped"
