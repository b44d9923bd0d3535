"""Warnings: reported with their location, never fatal on their own."""

from __future__ import annotations

import textwrap

import pytest

from engine.definition import DefinitionError, load_definition

HEAD = "name: demo\nversion: 1\ninputs:\n  service: {type: string}\n"


def at(text: str, marker: str, nth: int = 0) -> tuple[int, int]:
    offset = -1
    for _ in range(nth + 1):
        offset = text.index(marker, offset + 1)
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def warnings(body: str) -> tuple[str, list[tuple[int, int, str]]]:
    text = HEAD + textwrap.dedent(body)
    try:
        definition = load_definition(text, "wf.yaml")
    except DefinitionError as error:
        pytest.fail(str(error))
    assert all(w.severity == "warning" for w in definition.warnings)
    return text, [(w.line, w.column, w.message) for w in definition.warnings]


def test_an_expression_in_a_shell_command_is_an_error() -> None:
    text = HEAD + "steps: [{id: build, type: shell, command: 'make ${{ inputs.service }}'}]\n"
    with pytest.raises(DefinitionError) as caught:
        load_definition(text, "wf.yaml")
    (problem,) = caught.value.problems
    assert (problem.severity, problem.line, problem.column) == ("error", *at(text, "${{"))
    assert problem.message == (
        "'${{ }}' in a shell command would splice a value into the script (script "
        'injection): pass the value in env: and use "$NAME" instead'
    )
    assert problem.path == "steps[0].command"


def test_values_in_env_and_escaped_expressions_are_fine() -> None:
    _, found = warnings(
        """\
        steps:
          - id: build
            type: shell
            command: echo "$SERVICE" '$${{ literal }}'
            env: {SERVICE: "${{ inputs.service }}"}
        """
    )
    assert found == []


def test_warning_format() -> None:
    text = HEAD + "steps: [{id: b, type: shell, command: 'echo hi', when: false}]\n"
    (warning,) = load_definition(text, "wf.yaml").warnings
    line, column = at(text, "false")
    assert str(warning) == (
        f"wf.yaml:{line}:{column}: warning: step 'b' never runs: its 'when' is always false"
    )
    assert warning.path == "steps[0].when"


def test_when_that_is_always_false() -> None:
    text, found = warnings(
        """\
        steps:
          - {id: never, type: shell, command: ls, when: false}
          - {id: also_never, type: shell, command: ls, when: "1 > 2"}
          - {id: null_when, type: shell, command: ls, when: "null"}
          - {id: always, type: shell, command: ls, when: "true"}
        """
    )
    assert found == [
        (*at(text, "false"), "step 'never' never runs: its 'when' is always false"),
        (*at(text, '"1 > 2"'), "step 'also_never' never runs: its 'when' is always false"),
        (*at(text, '"null"'), "step 'null_when' never runs: its 'when' is always false"),
    ]


def test_condition_with_a_constant_if() -> None:
    text, found = warnings(
        """\
        steps:
          - id: always
            type: condition
            if: "true"
            then: [{id: a, type: shell, command: ls}]
            else: [{id: b, type: shell, command: ls}]
          - id: never
            type: condition
            if: "1 == 2"
            then: [{id: c, type: shell, command: ls}]
        """
    )
    assert found == [
        (
            *at(text, "[{id: b"),
            "the else branch of condition 'always' never runs: its 'if' is always true",
        ),
        (
            *at(text, "[{id: c"),
            "the then branch of condition 'never' never runs: its 'if' is always false",
        ),
    ]


def test_steps_after_a_condition_whose_branches_all_return() -> None:
    text, found = warnings(
        """\
        steps:
          - id: gate
            type: condition
            if: inputs.service == "api"
            then: [{id: a, type: return, value: 1}]
            else: [{id: b, type: return, value: 2}]
          - {id: unreachable, type: shell, command: ls}
        """
    )
    assert found == [
        (
            *at(text, "{id: unreachable"),
            "step 'unreachable' never runs: every branch of condition 'gate' ends with return",
        ),
    ]


def test_a_condition_with_one_returning_branch_is_fine() -> None:
    _, found = warnings(
        """\
        steps:
          - id: gate
            type: condition
            if: inputs.service == "api"
            then: [{id: a, type: return, value: 1}]
          - {id: reachable, type: shell, command: ls}
        """
    )
    assert found == []


def test_output_to_overwriting_a_key_copied_from_inputs_in_state() -> None:
    text, found = warnings(
        """\
        state:
          service: "${{ inputs.service }}"
        steps:
          - {id: build, type: shell, command: make, output_to: service}
        """
    )
    assert found == [
        (
            *at(text, "service}"),
            "output_to 'service' overwrites state key 'service', which "
            "holds a value copied from inputs (line 6); write the result to "
            "another key",
        ),
    ]


def test_output_to_overwriting_a_key_copied_from_inputs_by_set_state() -> None:
    text, found = warnings(
        """\
        steps:
          - {id: copy, type: set_state, set: {target: {name: "${{ inputs.service }}"}}}
          - {id: build, type: shell, command: make, output_to: target}
        """
    )
    assert found == [
        (
            *at(text, "target}"),
            "output_to 'target' overwrites state key 'target', which holds "
            "a value copied from inputs (line 6); write the result to "
            "another key",
        ),
    ]


def test_output_to_a_key_not_derived_from_inputs_is_fine() -> None:
    _, found = warnings(
        """\
        state: {approved: false}
        steps:
          - {id: ask, type: prompt, prompt_type: confirm, message: ok?, output_to: approved}
        """
    )
    assert found == []


def test_reading_a_state_key_that_is_never_set() -> None:
    text, found = warnings(
        """\
        state: {approved: false}
        steps:
          - {id: done, type: return, value: "${{ state.aproved }}"}
        """
    )
    assert found == [
        (
            *at(text, "state.aproved"),
            "state key 'aproved' is never set (by state, output_to or "
            "set_state); did you mean 'approved'?",
        ),
    ]


def test_reading_state_with_a_computed_key_under_needs_state() -> None:
    text, found = warnings(
        """\
        state: {a: 1}
        steps:
          - {id: s, type: shell, command: ls, needs_state: [a],
             env: {X: "${{ state[inputs.service] }}"}}
        """
    )
    assert found == [
        (
            *at(text, "state["),
            "step 's' reads state with a computed key, but it only sees the "
            "keys listed in needs_state",
        ),
    ]


def test_retry_policy_with_another_on_error() -> None:
    text, found = warnings(
        "steps: [{id: s, type: shell, command: ls, on_error: continue, retry: {max_attempts: 2}}]\n"
    )
    assert found == [
        (*at(text, "{max_attempts"), "retry of step 's' has no effect unless on_error is 'retry'"),
    ]


def test_options_on_a_prompt_that_is_not_a_choice() -> None:
    text, found = warnings(
        "steps: [{id: p, type: prompt, prompt_type: text, message: hi, options: [a]}]\n"
    )
    assert found == [(*at(text, "[a]"), "options are only used by choice prompts, not text")]


def test_required_input_with_a_default() -> None:
    text = (
        "name: demo\nversion: 1\ninputs:\n  x: {type: string, required: true, default: a}\n"
        "steps: [{id: s, type: return}]\n"
    )
    (warning,) = load_definition(text).warnings
    assert (warning.line, warning.column, warning.message) == (
        *at(text, "true"),
        "input 'x' is required, so its default is never used",
    )


def test_warnings_are_listed_with_errors_when_the_definition_fails() -> None:
    text = HEAD + "steps: [{id: s, type: shell, command: 'x', when: false, timeout: soon}]\n"
    with pytest.raises(DefinitionError) as caught:
        load_definition(text)
    assert [p.severity for p in caught.value.problems] == ["warning", "error"]
    assert len(caught.value.errors) == 1
    assert len(caught.value.warnings) == 1
