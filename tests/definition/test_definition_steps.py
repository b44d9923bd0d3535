"""Every step type: a valid example parses into its model with the right fields, and the
interpreter-facing API (evaluate_when, evaluate_if, evaluate_items, render, render_params)
works on the compiled parts without recompiling anything."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from typing import Any

import pytest

from engine.definition import (
    ConditionStep,
    DefinitionError,
    DelegateStep,
    ForeachStep,
    InputError,
    McpCallStep,
    PromptStep,
    RetryPolicy,
    ReturnStep,
    SetStateStep,
    ShellStep,
    StepBase,
    WaitStep,
    WorkflowDefinition,
    load_definition,
)
from engine.expr import Expression, ExpressionEvaluationError, Template


def load(body: str, head: str = "name: demo\nversion: 1\n") -> WorkflowDefinition:
    text = head + textwrap.dedent(body)
    try:
        return load_definition(text, "demo.yaml")
    except DefinitionError as error:  # show every problem on failure
        pytest.fail(str(error))


def only_step(body: str, **kwargs: Any) -> StepBase:
    definition = load("steps:\n" + textwrap.indent(textwrap.dedent(body), "  "), **kwargs)
    return definition.steps[0]


INPUTS = "name: demo\nversion: 1\ninputs:\n  service: {type: string}\n  env: {type: string}\n"


def test_shell_step_fields_and_rendering() -> None:
    step = only_step(
        """\
        - id: build
          type: shell
          command: make build SERVICE="$SERVICE"
          workdir: /src/${{ inputs.service }}
          env: {SERVICE: "${{ inputs.service }}", PORT: 8080, DEBUG: true}
          output_to: build
          timeout: 30m
        """,
        head=INPUTS,
    )
    assert isinstance(step, ShellStep)
    assert step.id == "build"
    assert step.type == "shell"
    assert step.command == 'make build SERVICE="$SERVICE"'
    assert step.workdir == "/src/${{ inputs.service }}"
    # Environment values are strings: YAML numbers and booleans are normalised.
    assert step.env == {"SERVICE": "${{ inputs.service }}", "PORT": "8080", "DEBUG": "true"}
    assert step.output_to == "build"
    assert step.timeout == timedelta(minutes=30)
    assert step.on_error == "fail"
    assert step.retry is None
    assert step.compensate == []
    context = {"inputs": {"service": "api"}}
    assert step.render_params(context) == {
        "command": 'make build SERVICE="$SERVICE"',
        "workdir": "/src/api",
        "env": {"SERVICE": "api", "PORT": "8080", "DEBUG": "true"},
    }
    assert isinstance(step.compiled("workdir"), Template)
    # A string without ${{ }} is kept as a plain string: nothing to render.
    assert step.compiled("command") == 'make build SERVICE="$SERVICE"'


def test_mcp_call_step_renders_nested_params_with_types() -> None:
    step = only_step(
        """\
        - id: apply
          type: mcp_call
          server: k8s
          tool: apply
          params:
            name: "${{ inputs.service }}"
            replicas: "${{ 1 + 2 }}"
            labels: {env: "env-${{ inputs.env }}", tier: web}
            regions: ["${{ inputs.env }}", eu, 3]
        """,
        head=INPUTS,
    )
    assert isinstance(step, McpCallStep)
    assert (step.server, step.tool) == ("k8s", "apply")
    rendered = step.render_params({"inputs": {"service": "api", "env": "prod"}})
    assert rendered == {
        "server": "k8s",
        "tool": "apply",
        "params": {
            "name": "api",
            "replicas": 3,  # a single ${{ }} keeps the value's type
            "labels": {"env": "env-prod", "tier": "web"},
            "regions": ["prod", "eu", 3],
        },
    }


def test_a_shell_step_may_name_the_runner_label_it_runs_on() -> None:
    step = only_step("- {id: b, type: shell, command: make, runs_on: gpu-a100}")
    assert isinstance(step, ShellStep)
    assert step.runs_on == "gpu-a100"
    plain = load("steps:\n  - {id: b, type: shell, command: make}\n")
    # Unset, it is not in the canonical form: definitions written before it keep their hash.
    assert "runs_on" not in plain.canonical_json()
    labelled = load("steps:\n  - {id: b, type: shell, command: make, runs_on: gpu}\n")
    assert '"runs_on":"gpu"' in labelled.canonical_json()
    again = load_definition(labelled.canonical_json()).step("b")
    assert isinstance(again, ShellStep) and again.runs_on == "gpu"
    with pytest.raises(DefinitionError) as refused:
        load_definition(
            "name: demo\nversion: 1\nsteps:\n  - {id: b, type: shell, command: make, "
            "runs_on: GPU box}\n"
        )
    [problem] = refused.value.errors
    assert (problem.line, problem.column) == (4, 50)
    assert "invalid runner label 'GPU box'" in problem.message


def test_mcp_call_server_is_optional() -> None:
    step = only_step("- {id: t, type: mcp_call, tool: search}")
    assert isinstance(step, McpCallStep)
    assert step.server is None
    assert step.params == {}
    assert step.render_params({}) == {"server": None, "tool": "search", "params": {}}


def test_condition_step_with_both_branches() -> None:
    definition = load(
        """\
        steps:
          - id: gate
            type: condition
            if: inputs.env == "prod"
            then:
              - {id: approve, type: prompt, prompt_type: confirm, message: Go?}
            else:
              - {id: auto, type: set_state, set: {approved: true}}
        """,
        head=INPUTS,
    )
    step = definition.steps[0]
    assert isinstance(step, ConditionStep)
    assert step.if_ == 'inputs.env == "prod"'
    assert [s.id for s in step.then] == ["approve"]
    assert [s.id for s in step.else_] == ["auto"]
    assert isinstance(step.then[0], PromptStep)
    assert isinstance(step.else_[0], SetStateStep)
    assert isinstance(step.compiled("if"), Expression)
    assert step.evaluate_if({"inputs": {"env": "prod"}}) is True
    assert step.evaluate_if({"inputs": {"env": "dev"}}) is False


def test_condition_accepts_a_wrapped_expression_and_else_is_optional() -> None:
    step = only_step(
        """\
        - id: gate
          type: condition
          if: ${{ state.count > 2 }}
          then: [{id: big, type: return, value: big}]
        """,
        head="name: demo\nversion: 1\nstate: {count: 0}\n",
    )
    assert isinstance(step, ConditionStep)
    assert step.else_ == []
    assert step.evaluate_if({"state": {"count": 3}}) is True


def test_set_state_step_renders_values() -> None:
    step = only_step(
        """\
        - id: remember
          type: set_state
          set:
            who: "${{ inputs.service }}"
            count: 3
            tags: ["a", "${{ inputs.env }}"]
        """,
        head=INPUTS,
    )
    assert isinstance(step, SetStateStep)
    assert step.set_ == {
        "who": "${{ inputs.service }}",
        "count": 3,
        "tags": ["a", "${{ inputs.env }}"],
    }
    assert step.render("set", {"inputs": {"service": "api", "env": "dev"}}) == {
        "who": "api",
        "count": 3,
        "tags": ["a", "dev"],
    }


def test_foreach_step_with_expression_items() -> None:
    definition = load(
        """\
        steps:
          - id: regions
            type: foreach
            items: '["us", "eu"]'
            as: region
            max_parallel: 2
            on_item_error: continue
            steps:
              - {id: apply, type: mcp_call, tool: apply,
                 params: {region: "${{ region }}", position: "${{ index }}"}}
            output_to: deployments
        """
    )
    step = definition.steps[0]
    assert isinstance(step, ForeachStep)
    assert step.items == '["us", "eu"]'
    assert step.as_ == "region"
    assert step.max_parallel == 2
    assert step.on_item_error == "continue"
    assert step.output_to == "deployments"
    assert step.evaluate_items({}) == ["us", "eu"]
    inner = step.steps[0]
    assert inner.render("params", {"region": "eu", "index": 1}) == {"region": "eu", "position": 1}


def test_foreach_defaults_and_list_items() -> None:
    step = only_step(
        """\
        - id: each
          type: foreach
          items: ["${{ inputs.service }}", b]
          steps: [{id: show, type: return, value: "${{ item }}"}]
        """,
        head=INPUTS,
    )
    assert isinstance(step, ForeachStep)
    assert step.as_ == "item"
    assert step.max_parallel == 1
    assert step.on_item_error == "fail"
    assert step.evaluate_items({"inputs": {"service": "api"}}) == ["api", "b"]


def test_foreach_items_that_are_not_a_list_fail_at_run_time() -> None:
    step = only_step(
        """\
        - id: each
          type: foreach
          items: state.things
          steps: [{id: show, type: return}]
        """,
        head="name: demo\nversion: 1\nstate: {things: []}\n",
    )
    assert isinstance(step, ForeachStep)
    with pytest.raises(ExpressionEvaluationError, match="foreach items must be a list, got 'x'"):
        step.evaluate_items({"state": {"things": "x"}})


def test_return_step() -> None:
    step = only_step("- {id: done, type: return, value: {status: ok, n: '${{ 2 * 3 }}'}}")
    assert isinstance(step, ReturnStep)
    assert step.value == {"status": "ok", "n": "${{ 2 * 3 }}"}
    assert step.render("value", {}) == {"status": "ok", "n": 6}


def test_return_without_value() -> None:
    step = only_step("- {id: done, type: return}")
    assert isinstance(step, ReturnStep)
    assert step.value is None
    assert step.render_params({}) == {"value": None}


@pytest.mark.parametrize("prompt_type", ["info", "confirm", "text"])
def test_prompt_types_without_options(prompt_type: str) -> None:
    step = only_step(f"- {{id: ask, type: prompt, prompt_type: {prompt_type}, message: Hi}}")
    assert isinstance(step, PromptStep)
    assert step.prompt_type == prompt_type
    assert step.message == "Hi"
    assert step.options is None


def test_choice_prompt() -> None:
    step = only_step(
        """\
        - id: pick
          type: prompt
          prompt_type: choice
          message: "Which region for ${{ inputs.service }}?"
          options: [us, eu, "${{ inputs.env }}"]
          default: us
          output_to: region
        """,
        head=INPUTS,
    )
    assert isinstance(step, PromptStep)
    assert step.options == ["us", "eu", "${{ inputs.env }}"]
    assert step.default == "us"
    assert step.render_params({"inputs": {"service": "api", "env": "ap"}}) == {
        "message": "Which region for api?",
        "options": ["us", "eu", "ap"],
        "default": "us",
    }


def test_choice_prompt_with_options_from_one_expression() -> None:
    step = only_step(
        """\
        - id: pick
          type: prompt
          prompt_type: choice
          message: Pick one
          options: "${{ state.regions }}"
        """,
        head="name: demo\nversion: 1\nstate: {regions: [a, b]}\n",
    )
    assert step.render("options", {"state": {"regions": ["a", "b"]}}) == ["a", "b"]


def test_confirm_prompt_default() -> None:
    step = only_step("- {id: ok, type: prompt, prompt_type: confirm, message: Go?, default: true}")
    assert isinstance(step, PromptStep)
    assert step.default is True


def test_wait_for_a_duration() -> None:
    step = only_step("- {id: settle, type: wait, duration: 1h30m, message: Letting it settle}")
    assert isinstance(step, WaitStep)
    assert step.duration == timedelta(hours=1, minutes=30)
    assert step.until is None
    assert step.render("message", {}) == "Letting it settle"


def test_wait_until_a_rendered_timestamp() -> None:
    step = only_step(
        "- {id: later, type: wait, until: '${{ inputs.at }}',\n"
        "   message: 'Waiting for ${{ inputs.at }}'}",
        head="name: demo\nversion: 1\ninputs: {at: {type: string}}\n",
    )
    assert isinstance(step, WaitStep)
    assert step.duration is None
    context = {"inputs": {"at": "2030-01-01T00:00:00Z"}}
    assert step.render_params(context) == {
        "until": "2030-01-01T00:00:00Z",
        "message": "Waiting for 2030-01-01T00:00:00Z",
    }


def test_wait_until_a_static_timestamp() -> None:
    step = only_step("- {id: later, type: wait, until: '2030-01-01T09:00:00+02:00'}")
    assert isinstance(step, WaitStep)
    assert step.until == "2030-01-01T09:00:00+02:00"


@pytest.mark.parametrize("agent", ["@task", "@reviewer"])
def test_delegate_step(agent: str) -> None:
    step = only_step(
        f"""\
        - id: review
          type: delegate
          agent: "{agent}"
          instruction: Check ${{{{ inputs.service }}}}
          context: {{service: "${{{{ inputs.service }}}}", links: [a, b]}}
          output_to: review
        """,
        head=INPUTS,
    )
    assert isinstance(step, DelegateStep)
    assert step.agent == agent
    assert step.render_params({"inputs": {"service": "api"}}) == {
        "agent": agent,
        "instruction": "Check api",
        "context": {"service": "api", "links": ["a", "b"]},
    }


def test_common_fields() -> None:
    definition = load(
        """\
        state: {x: 1}
        steps:
          - id: call
            type: shell
            command: deploy
            when: state.x > 0
            needs_state: [x]
            output_to: result
            timeout: 5m
            retry: {max_attempts: 3}
            compensate:
              - {id: undo, type: shell, command: undeploy}
          - id: tolerant
            type: shell
            command: flaky
            on_error: continue
        """
    )
    step, tolerant = definition.steps
    assert isinstance(step, ShellStep)
    assert step.when == "state.x > 0"
    assert step.needs_state == ["x"]
    assert step.output_to == "result"
    assert step.timeout == timedelta(minutes=5)
    # A retry policy alone means "retry this step"; unset fields take their defaults.
    assert step.on_error == "retry"
    assert step.retry == RetryPolicy(
        max_attempts=3,
        initial_interval=timedelta(seconds=1),
        backoff=2.0,
        max_interval=timedelta(seconds=30),
    )
    assert [s.id for s in step.compensate] == ["undo"]
    assert step.evaluate_when({"state": {"x": 1}}) is True
    assert step.evaluate_when({"state": {"x": 0}}) is False
    assert tolerant.on_error == "continue"
    assert tolerant.evaluate_when({}) is True


def test_boolean_when_is_an_expression() -> None:
    step = only_step("- {id: s, type: shell, command: x, when: true}")
    assert step.when == "true"
    assert step.evaluate_when({}) is True


def test_definition_level_fields_and_defaults() -> None:
    definition = load(
        """\
        description: Deploys things
        inputs:
          service: {type: string, required: true, description: What to deploy}
          env: {type: string, enum: [staging, prod], default: staging}
        state: {approved: false, target: "${{ inputs.env }}"}
        defaults:
          timeout: 10m
          retry: {max_attempts: 4, initial_interval: 2s, backoff: 1.5, max_interval: 1m}
        steps:
          - {id: done, type: return}
        """
    )
    assert definition.name == "demo"
    assert definition.version == 1
    assert definition.workflow_type == "demo:1"
    assert definition.description == "Deploys things"
    assert definition.inputs["service"].required is True
    assert definition.inputs["service"].type == "string"
    assert definition.inputs["env"].enum == ["staging", "prod"]
    assert definition.inputs["env"].default == "staging"
    assert definition.defaults.timeout == timedelta(minutes=10)
    assert definition.defaults.retry.max_attempts == 4
    assert definition.defaults.retry.initial_interval == timedelta(seconds=2)
    assert definition.defaults.retry.backoff == 1.5
    assert definition.defaults.retry.max_interval == timedelta(minutes=1)
    assert definition.render_initial_state({"inputs": {"env": "prod"}}) == {
        "approved": False,
        "target": "prod",
    }
    assert definition.source == "demo.yaml"
    assert definition.warnings == ()


def test_retry_defaults() -> None:
    definition = load("steps: [{id: done, type: return}]")
    assert definition.defaults.timeout is None
    assert definition.defaults.retry == RetryPolicy()
    assert RetryPolicy().max_attempts == 5
    assert RetryPolicy().initial_interval == timedelta(seconds=1)
    assert RetryPolicy().backoff == 2.0
    assert RetryPolicy().max_interval == timedelta(seconds=30)


def test_steps_are_found_by_id_in_every_block() -> None:
    definition = load(
        """\
        steps:
          - id: outer
            type: foreach
            items: "[1]"
            steps:
              - id: gate
                type: condition
                if: "true"
                then: [{id: yes_branch, type: return}]
                else: [{id: no_branch, type: return}]
            compensate: [{id: cleanup, type: shell, command: rm -rf x}]
          - {id: last, type: return}
        """
    )
    ids = [step.id for step in definition.iter_steps()]
    assert ids == ["outer", "gate", "yes_branch", "no_branch", "cleanup", "last"]
    assert isinstance(definition.step("cleanup"), ShellStep)
    with pytest.raises(KeyError):
        definition.step("nope")


def test_step_references_list_what_its_own_fields_read() -> None:
    step = only_step(
        "- {id: s, type: shell, command: x, when: 'state.go', env: {A: '${{ inputs.env }}'}}",
        head=INPUTS + "state: {go: true}\n",
    )
    assert sorted((r.root, r.key) for r in step.references) == [("inputs", "env"), ("state", "go")]


def test_escaped_template_renders_literally() -> None:
    step = only_step("- {id: s, type: shell, command: x, env: {A: 'literal $${{ not.an.expr }}'}}")
    assert step.render("env", {}) == {"A": "literal ${{ not.an.expr }}"}


def test_rendering_returns_fresh_containers() -> None:
    step = only_step("- {id: done, type: return, value: {list: [1, 2]}}")
    first = step.render("value", {})
    first["list"].append(3)
    assert step.render("value", {}) == {"list": [1, 2]}


def test_validate_inputs_fills_defaults_and_reports_every_problem() -> None:
    definition = load(
        """\
        inputs:
          service: {type: string, required: true}
          env: {type: string, enum: [staging, prod], default: staging}
          replicas: {type: integer, default: 2}
          labels: {type: map, default: {team: a}}
          extra: {}
        steps: [{id: done, type: return}]
        """
    )
    assert definition.validate_inputs({"service": "api", "replicas": None}) == {
        "service": "api",
        "env": "staging",
        "replicas": 2,
        "labels": {"team": "a"},
        "extra": None,
    }
    # Defaults are copied: a run that changes its inputs cannot change the definition.
    definition.validate_inputs({"service": "api"})["labels"]["team"] = "b"
    assert definition.validate_inputs({"service": "api"})["labels"] == {"team": "a"}
    with pytest.raises(InputError) as caught:
        definition.validate_inputs({"env": "dev", "replicas": "3", "servce": "api"})
    assert caught.value.messages == (
        "unknown input 'servce'; did you mean 'service'?",
        "missing required input 'service'",
        "input 'env' must be one of 'staging', 'prod', got 'dev'",
        "input 'replicas' must be of type integer, got '3'",
    )
    assert InputError.code == "INVALID_ARGUMENT"
    assert InputError.reason == "INVALID_INPUT"
