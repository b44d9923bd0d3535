"""Every kind of problem a definition can have: the message an author reads, and exactly
where (line and column) it points. Also: all problems are reported at once."""

from __future__ import annotations

import textwrap

import pytest

from engine.definition import DefinitionError, Problem, load_definition
from engine.errors import EngineError

HEAD = "name: demo\nversion: 1\n"


def problems(text: str) -> list[tuple[int, int, str]]:
    """(line, column, message) of each problem, in source order."""
    with pytest.raises(DefinitionError) as caught:
        load_definition(textwrap.dedent(text), "wf.yaml")
    return [(p.line, p.column, p.message) for p in caught.value.problems]


def errors(text: str) -> list[tuple[int, int, str]]:
    with pytest.raises(DefinitionError) as caught:
        load_definition(textwrap.dedent(text), "wf.yaml")
    return [(p.line, p.column, p.message) for p in caught.value.errors]


def steps(body: str) -> str:
    """A definition whose steps block is ``body`` (steps start on line 4)."""
    return HEAD + "steps:\n" + textwrap.indent(textwrap.dedent(body), "  ")


def at(text: str, marker: str, nth: int = 0) -> tuple[int, int]:
    """1-based (line, column) of the nth occurrence of ``marker`` in ``text``."""
    offset = -1
    for _ in range(nth + 1):
        offset = text.index(marker, offset + 1)
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def one_step(step: str) -> str:
    return steps("- " + step)


# -- the error type ---------------------------------------------------------------------------


def test_definition_error_is_an_engine_error_with_code_and_reason() -> None:
    assert issubclass(DefinitionError, EngineError)
    assert DefinitionError.code == "INVALID_ARGUMENT"
    assert DefinitionError.reason == "INVALID_DEFINITION"


def test_problem_renders_as_source_line_column_message() -> None:
    problem = Problem("wf.yaml", 3, 7, "steps[0].id", "boom")
    assert str(problem) == "wf.yaml:3:7: boom"
    warning = Problem("wf.yaml", 3, 7, "steps[0].id", "careful", "warning")
    assert str(warning) == "wf.yaml:3:7: warning: careful"


def test_error_prints_one_line_per_problem_with_path() -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition("name: Demo\nversion: 0\nsteps: []\n", "wf.yaml")
    assert str(caught.value).splitlines() == [
        "wf.yaml:1:7: invalid workflow name 'Demo': use lowercase letters, digits and '-', "
        "starting with a letter or digit (at most 63 characters)",
        "wf.yaml:2:10: expected a positive integer, got 0",
        "wf.yaml:3:8: 'steps' must not be empty",
    ]
    assert [p.path for p in caught.value.problems] == ["name", "version", "steps"]
    assert all(p.source == "wf.yaml" for p in caught.value.problems)


# -- YAML itself ------------------------------------------------------------------------------


def test_yaml_syntax_error() -> None:
    assert problems("name: demo\nsteps: [a, b\n") == [
        (
            3,
            1,
            "YAML syntax error: did not find expected ',' or ']' "
            "(while parsing a flow sequence at line 2)",
        ),
    ]


def test_yaml_syntax_error_explains_an_unquoted_at_sign() -> None:
    (problem,) = problems(steps("- {id: r, type: delegate, agent: @reviewer, instruction: x}"))
    assert problem[:2] == (4, 36)
    assert problem[2].endswith("a value starting with '@' must be quoted")


def test_yaml_syntax_error_explains_tabs() -> None:
    (problem,) = problems("name: demo\nsteps:\n\t- {id: a}\n")
    assert problem[:2] == (3, 1)
    assert problem[2].endswith("YAML does not allow tabs for indentation, use spaces")


def test_yaml_syntax_error_explains_unquoted_expressions_in_flow_collections() -> None:
    (problem,) = problems(steps("- {id: a, type: return, value: [${{ state.x }}]}"))
    assert problem[0] == 4
    assert problem[2].endswith("quote values containing '${{ }}' inside { } or [ ]")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "- a\n- b\n",
            "expected a mapping with name, version and steps at the top level, got a list",
        ),
        (
            "just text\n",
            "expected a mapping with name, version and steps at the top level, got 'just text'",
        ),
        ("# only a comment\n", "the definition is empty"),
        ("", "the definition is empty"),
    ],
)
def test_document_that_is_not_a_mapping(text: str, expected: str) -> None:
    assert problems(text) == [(1, 1, expected)]


def test_two_documents() -> None:
    assert problems(HEAD + "---\nname: other\n") == [
        (3, 1, "expected a single YAML document, found a second one"),
    ]


def test_duplicate_keys_point_at_the_second() -> None:
    text = steps(
        """\
        - id: a
          type: shell
          command: one
          command: two
        """
    )
    assert errors(text) == [(7, 5, "duplicate key 'command' (first at line 6)")]


def test_duplicate_top_level_key() -> None:
    assert errors(HEAD + "version: 2\nsteps: [{id: a, type: return}]\n") == [
        (3, 1, "duplicate key 'version' (first at line 2)"),
    ]


def test_billion_laughs_is_stopped() -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for n in range(1, 9):
        prev, cur = chr(ord("a") + n - 1), chr(ord("a") + n)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    found = problems("\n".join(lines) + "\n")
    assert len(found) == 1
    assert found[0][2] == (
        "the document expands to more than 100000 values; an alias is "
        "probably expanding exponentially"
    )


def test_recursive_alias_is_stopped() -> None:
    assert problems("a: &a [*a]\n") == [
        (1, 4, "an alias refers to a collection that contains it"),
    ]


def test_deep_nesting_is_stopped_without_crashing() -> None:
    # Rejected with one problem, located among the brackets and saying it is the nesting,
    # and no crash. Which layer answers depends on the YAML library: the loader stops at 128
    # levels ("nesting deeper than 128 levels", at the 128th bracket); libyaml, from PyYAML
    # 6.0.4 on, stops first at a limit of its own ("exceeded maximum nesting depth").
    found = problems("a: " + "[" * 50_000 + "]" * 50_000 + "\n")
    assert len(found) == 1
    line, column, message = found[0]
    assert line == 1
    assert 3 < column <= 3 + 50_000
    assert "nesting" in message


def test_unsupported_tag() -> None:
    assert errors(HEAD + "description: !vault secret\nsteps: [{id: a, type: return}]\n") == [
        (3, 14, "unsupported YAML tag '!vault'"),
    ]


def test_non_string_key() -> None:
    assert errors(HEAD + "state: {1: one}\nsteps: [{id: a, type: return}]\n") == [
        (3, 9, "mapping keys must be strings, got '1'; quote it"),
    ]


def test_infinite_numbers_are_rejected() -> None:
    assert errors(HEAD + "state: {x: .inf}\nsteps: [{id: a, type: return}]\n") == [
        (3, 12, "'.inf' is not supported: numbers must be finite"),
    ]


# -- structure and types ----------------------------------------------------------------------


def test_unknown_field_in_a_step_with_did_you_mean() -> None:
    text = one_step("{id: a, type: shell, comand: ls}")
    assert problems(text) == [
        (*at(text, "{id"), "missing required field 'command' in shell step 'a'"),
        (*at(text, "comand"), "unknown field 'comand' in shell step 'a'; did you mean 'command'?"),
    ]


def test_unknown_field_that_belongs_to_another_step_type() -> None:
    text = one_step("{id: a, type: shell, command: ls, items: '[1]'}")
    assert errors(text) == [
        (
            *at(text, "items"),
            "unknown field 'items' in shell step 'a'; 'items' belongs to foreach steps",
        ),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            HEAD + "stps: []\n",
            (3, 1, "unknown field 'stps' in the workflow definition; did you mean 'steps'?"),
        ),
        (
            HEAD + "defaults: {timout: 5m}\n",
            (3, 12, "unknown field 'timout' in defaults; did you mean 'timeout'?"),
        ),
        (
            HEAD + "defaults: {retry: {max_attempt: 3}}\n",
            (3, 20, "unknown field 'max_attempt' in retry; did you mean 'max_attempts'?"),
        ),
        (
            HEAD + "inputs: {env: {typ: string}}\n",
            (3, 16, "unknown field 'typ' in input 'env'; did you mean 'type'?"),
        ),
    ],
)
def test_unknown_fields_everywhere(text: str, expected: tuple[int, int, str]) -> None:
    assert expected in problems(text + "steps: [{id: a, type: return}]\n")


def test_unknown_step_type_with_did_you_mean() -> None:
    text = one_step("{id: a, type: shel, command: ls}")
    assert problems(text) == [
        (*at(text, "shel"), "unknown step type 'shel'; did you mean 'shell'?"),
    ]


def test_unknown_step_type_without_a_close_match() -> None:
    text = one_step("{id: a, type: teleport}")
    assert problems(text) == [
        (
            *at(text, "teleport"),
            "unknown step type 'teleport'; expected one of condition, "
            "set_state, foreach, return, shell, mcp_call, prompt, wait, "
            "delegate, loop, break, parallel, try, wait_for, call",
        ),
    ]


def test_step_without_type() -> None:
    assert problems(steps("- {id: a, command: ls}")) == [
        (
            4,
            5,
            "step has no 'type'; expected one of condition, set_state, foreach, return, "
            "shell, mcp_call, prompt, wait, delegate, loop, break, parallel, try, wait_for, call",
        ),
    ]


def test_step_that_is_not_a_mapping() -> None:
    assert problems(steps("- build")) == [
        (4, 5, "expected a step (a mapping with 'id' and 'type'), got 'build'"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: demo\nversion: three\n", (2, 10, "expected a positive integer, got 'three'")),
        ("name: demo\nversion: 0\n", (2, 10, "expected a positive integer, got 0")),
        ("name: demo\nversion: -2\n", (2, 10, "expected a positive integer, got -2")),
        ("name: demo\nversion: '3'\n", (2, 10, "expected a positive integer, got '3'")),
        ("name: demo\nversion: 1.5\n", (2, 10, "expected a positive integer, got 1.5")),
        ("name: 5\nversion: 1\n", (1, 7, "expected workflow name (a string), got 5")),
        ("name: demo\nversion: 1\ndescription: [a]\n", (3, 14, "expected a string, got a list")),
        ("name: demo\nversion: 1\ninputs: [a]\n", (3, 9, "expected a mapping, got a list")),
        ("name: demo\nversion: 1\nstate: 5\n", (3, 8, "expected a mapping, got 5")),
    ],
)
def test_wrong_types_at_the_top(text: str, expected: tuple[int, int, str]) -> None:
    assert expected in problems(text + "steps: [{id: a, type: return}]\n")


def test_missing_top_level_fields() -> None:
    assert problems("description: nothing\n") == [
        (1, 1, "missing required field 'name' in the workflow definition"),
        (1, 1, "missing required field 'version' in the workflow definition"),
        (1, 1, "missing required field 'steps' in the workflow definition"),
    ]


@pytest.mark.parametrize(
    ("step", "marker", "message"),
    [
        ("{id: a, type: shell, command: 5}", "5", "expected a string, got 5"),
        ("{id: a, type: shell, command: ls, env: [A]}", "[A]", "expected a mapping, got a list"),
        (
            "{id: a, type: shell, command: ls, env: {A: [1]}}",
            "[1]",
            "expected a string, number or boolean, got a list",
        ),
        (
            "{id: a, type: shell, command: ls, on_error: skip}",
            "skip",
            "on_error must be one of 'fail', 'continue', 'retry', got 'skip'",
        ),
        (
            "{id: a, type: shell, command: ls, on_error: contineu}",
            "contineu",
            "on_error must be one of 'fail', 'continue', 'retry', got 'contineu'; "
            "did you mean 'continue'?",
        ),
        (
            "{id: a, type: shell, command: ls, retry: {max_attempts: many}}",
            "many",
            "expected a positive integer, got 'many'",
        ),
        (
            "{id: a, type: shell, command: ls, retry: {backoff: 0.5}}",
            "0.5",
            "backoff must be between 1.0 and 100, got 0.5",
        ),
        ("{id: a, type: shell, command: ls, needs_state: x}", "x}", "expected a list, got 'x'"),
        (
            "{id: a, type: shell, command: ls, when: 5}",
            "5",
            "expected an expression (a string), got 5",
        ),
        (
            "{id: a, type: shell, command: ls, when: ''}",
            "''",
            "expected an expression, got an empty string",
        ),
        (
            "{id: a, type: foreach, items: 5, steps: [{id: b, type: return}]}",
            "5",
            "expected an expression (a string), got 5",
        ),
        (
            "{id: a, type: foreach, items: '[1]', max_parallel: 0, steps: [{id: b, type: return}]}",
            "0",
            "expected a positive integer, got 0",
        ),
        ("{id: a, type: foreach, items: '[1]', steps: []}", "[]", "'steps' must not be empty"),
        (
            "{id: a, type: condition, if: 'true', then: {id: b}}",
            "{id: b}",
            "expected a list, got a mapping",
        ),
        (
            "{id: a, type: prompt, prompt_type: pick, message: x}",
            "pick",
            "prompt_type must be one of 'info', 'confirm', 'text', 'choice', got 'pick'",
        ),
        (
            "{id: a, type: prompt, prompt_type: choice, message: x, options: {a: 1}}",
            "{a: 1}",
            "expected a list of options (or one '${{ }}' expression that produces a list), "
            "got a mapping",
        ),
        ("{id: a, type: set_state, set: {}}", "{}", "'set' must not be empty"),
        ("{id: a, type: return, timeout: 5m, compensate: x}", "x}", "expected a list, got 'x'"),
        # Values that load but could not run: each would fail the run's workflow task.
        (
            "{id: a, type: shell, command: ls, retry: {backoff: 1e308}}",
            "1e308",
            "backoff must be between 1.0 and 100, got 1e+308",
        ),
        (
            "{id: a, type: shell, command: ls, retry: {max_attempts: 9999999999}}",
            "9999999999",
            "max_attempts must be at most 1000, got 9999999999",
        ),
        (
            "{id: a, type: shell, command: ls, timeout: 36526d}",
            "36526d",
            "the duration must be at most 100 years, got '36526d'",
        ),
    ],
)
def test_wrong_types_in_steps(step: str, marker: str, message: str) -> None:
    text = one_step(step)
    assert (*at(text, marker), message) in problems(text)


_IDENTIFIER_RULE = (
    "use letters, digits and '_', starting with a letter or '_' (at most 64 characters)"
)


@pytest.mark.parametrize(
    ("step", "marker", "message"),
    [
        (
            "{id: build-image, type: return}",
            "build",
            f"invalid step id 'build-image': {_IDENTIFIER_RULE}",
        ),
        ("{id: 1st, type: return}", "1st", f"invalid step id '1st': {_IDENTIFIER_RULE}"),
        (
            "{id: a, type: return, output_to: my key}",
            "my key",
            f"invalid state key 'my key': {_IDENTIFIER_RULE}",
        ),
        (
            "{id: a, type: return, needs_state: [ok, bad-key]}",
            "bad-key",
            f"invalid state key 'bad-key': {_IDENTIFIER_RULE}",
        ),
    ],
)
def test_identifier_patterns(step: str, marker: str, message: str) -> None:
    text = one_step(step)
    assert errors(text) == [(*at(text, marker), message)]


def test_workflow_state_and_input_names_are_checked() -> None:
    text = (
        "name: my_flow\nversion: 1\nstate: {bad-key: 1}\ninputs: {'x y': {}}\n"
        "steps: [{id: a, type: return}]\n"
    )
    assert errors(text) == [
        (
            *at(text, "my_flow"),
            "invalid workflow name 'my_flow': use lowercase letters, digits "
            "and '-', starting with a letter or digit (at most 63 "
            "characters)",
        ),
        (*at(text, "bad-key"), f"invalid state key 'bad-key': {_IDENTIFIER_RULE}"),
        (*at(text, "'x y'"), f"invalid input name 'x y': {_IDENTIFIER_RULE}"),
    ]


def test_env_names_are_checked() -> None:
    text = one_step("{id: a, type: shell, command: ls, env: {1BAD: x}}")
    assert errors(text) == [
        (
            *at(text, "1BAD"),
            "invalid environment variable name '1BAD': use letters, digits and "
            "'_', not starting with a digit",
        ),
    ]


def test_missing_required_step_fields() -> None:
    text = one_step("{type: delegate, agent: '@task'}")
    assert problems(text) == [
        (*at(text, "{type"), "missing required field 'id' in delegate step"),
        (*at(text, "{type"), "missing required field 'instruction' in delegate step"),
    ]


# -- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "10",
            "expected a duration such as '30s', '5m', '1h30m', '1d' or 'PT5M', got 10 "
            "(add a unit: '10s')",
        ),
        ("5x", "expected a duration such as '30s', '5m', '1h30m', '1d' or 'PT5M', got '5x'"),
        ("30m1h", "invalid duration '30m1h': give each unit once, largest first (like '1h30m')"),
        (
            "P1M",
            "invalid duration 'P1M': years and months have no fixed length; use days (like 'P30D')",
        ),
        ("0s", "the duration must be positive, got '0s'"),
        ("'-5m'", "expected a duration such as '30s', '5m', '1h30m', '1d' or 'PT5M', got '-5m'"),
    ],
)
def test_bad_durations(value: str, message: str) -> None:
    text = one_step(f"{{id: a, type: shell, command: ls, timeout: {value}}}")
    assert errors(text) == [(*at(text, value), message)]


def test_wait_may_last_zero_but_timeouts_may_not() -> None:
    load_definition(one_step("{id: a, type: wait, duration: 0s}"))
    text = HEAD + "defaults: {timeout: 0s}\nsteps: [{id: a, type: return}]\n"
    assert errors(text) == [(*at(text, "0s"), "the duration must be positive, got '0s'")]


def test_retry_intervals_must_be_ordered() -> None:
    text = (
        HEAD + "defaults:\n  retry: {initial_interval: 1m, max_interval: 10s}\n"
        "steps: [{id: a, type: return}]\n"
    )
    assert errors(text) == [
        (*at(text, "10s"), "max_interval must not be shorter than initial_interval"),
    ]


# -- ids ---------------------------------------------------------------------------------------


def test_duplicate_step_ids_point_at_the_second_and_name_the_first() -> None:
    text = steps(
        """\
        - id: build
          type: shell
          command: make
        - id: gate
          type: condition
          if: "true"
          then:
            - {id: build, type: return}
          compensate:
            - {id: gate, type: shell, command: undo}
        """
    )
    assert errors(text) == [
        (*at(text, "build", 1), "duplicate step id 'build' (first used at line 4)"),
        (*at(text, "gate", 1), "duplicate step id 'gate' (first used at line 7)"),
    ]


# -- expressions ------------------------------------------------------------------------------


def test_expression_syntax_error_column_in_a_plain_scalar() -> None:
    text = steps("- id: a\n  type: shell\n  command: ls\n  when: state.x >\n")
    line, column = at(text, ">")
    assert errors(text) == [(line, column + 1, "unexpected end of expression")]


def test_expression_error_column_in_a_quoted_scalar() -> None:
    for quote in "'\"":
        text = steps(
            f"- id: a\n  type: shell\n  command: ls\n  when: {quote}${{{{ stat.x }}}}{quote}\n"
        )
        assert errors(text) == [(*at(text, "stat"), "unknown name 'stat'; did you mean 'state'?")]


def test_expression_error_column_in_a_flow_mapping() -> None:
    text = one_step('{id: a, type: return, value: {x: [1, "${{ 1 + }}"]}}')
    line, column = at(text, "+")
    assert errors(text) == [(line, column + 1, "unexpected end of expression")]


def test_expression_error_column_deep_in_params() -> None:
    text = steps(
        """\
        - id: call
          type: mcp_call
          tool: t
          params:
            outer:
              - plain
              - {inner: "value ${{ inputs.nope }}"}
        """
    )
    assert errors(text) == [(*at(text, "inputs.nope"), "input 'nope' is not declared in inputs")]


def test_expression_error_line_in_a_literal_block() -> None:
    text = steps(
        """\
        - id: a
          type: delegate
          agent: "@task"
          instruction: |
            Look at this:
              ${{ stat.x }}
        """
    )
    assert errors(text) == [(*at(text, "stat"), "unknown name 'stat'; did you mean 'state'?")]


def test_expression_error_in_a_multi_line_plain_scalar() -> None:
    text = steps(
        """\
        - id: a
          type: delegate
          agent: "@task"
          instruction: Look at
            this ${{ stat.x }}
        """
    )
    assert errors(text) == [(*at(text, "stat"), "unknown name 'stat'; did you mean 'state'?")]


def test_expression_error_in_a_folded_block_points_at_the_scalar() -> None:
    text = steps(
        """\
        - id: a
          type: delegate
          agent: "@task"
          instruction: >
            Look at
            this ${{ stat.x }}
        """
    )
    assert errors(text) == [(*at(text, ">"), "unknown name 'stat'; did you mean 'state'?")]


def test_expression_error_with_escapes_points_at_the_scalar() -> None:
    text = one_step('{id: a, type: return, value: "\\t${{ stat }}"}')
    assert errors(text) == [(*at(text, '"\\t'), "unknown name 'stat'; did you mean 'state'?")]


def test_unterminated_template() -> None:
    text = one_step("{id: a, type: shell, command: ls, env: {A: 'x ${{ inputs'}}")
    assert errors(text) == [(*at(text, "${{"), "unterminated '${{': missing '}}'")]


def test_constant_when_that_is_not_a_boolean() -> None:
    text = one_step("{id: a, type: shell, command: ls, when: \"'yes'\"}")
    assert errors(text) == [(*at(text, "\"'yes'"), "'when' must be a boolean, got 'yes'")]


def test_constant_items_that_are_not_a_list() -> None:
    text = one_step("{id: a, type: foreach, items: '\"abc\"', steps: [{id: b, type: return}]}")
    assert errors(text) == [(*at(text, "'\"abc"), "foreach items must be a list, got 'abc'")]


# -- step rules -------------------------------------------------------------------------------


def test_choice_prompt_without_options() -> None:
    text = one_step("{id: pick, type: prompt, prompt_type: choice, message: Which?}")
    assert errors(text) == [(*at(text, "choice"), "choice prompt 'pick' needs 'options'")]


def test_choice_prompt_default_must_be_an_option() -> None:
    text = steps(
        """\
        - id: pick
          type: prompt
          prompt_type: choice
          message: Which?
          options: [us, eu]
          default: ap
        """
    )
    assert errors(text) == [
        (*at(text, "ap"), "default 'ap' is not one of the options: 'us', 'eu'"),
    ]


def test_choice_prompt_options_must_be_usable() -> None:
    text = one_step("{id: p, type: prompt, prompt_type: choice, message: x, options: [a, b, a]}")
    assert errors(text) == [(*at(text, "a]"), "duplicate option 'a'")]
    text = one_step("{id: p, type: prompt, prompt_type: choice, message: x, options: []}")
    assert errors(text) == [(*at(text, "[]"), "options must not be empty")]
    text = one_step("{id: p, type: prompt, prompt_type: choice, message: x, options: 'a, b'}")
    assert errors(text) == [
        (
            *at(text, "'a, b'"),
            "options must be a list, or one '${{ }}' expression that produces a list",
        ),
    ]


def test_confirm_prompt_default_must_be_boolean() -> None:
    text = one_step("{id: ok, type: prompt, prompt_type: confirm, message: Go?, default: yes}")
    assert errors(text) == [
        (*at(text, "yes"), "the default of a confirm prompt must be true or false, got 'yes'"),
    ]


def test_return_must_be_last_in_its_block() -> None:
    text = steps(
        """\
        - {id: early, type: return}
        - {id: late, type: shell, command: ls}
        """
    )
    assert errors(text) == [
        (
            *at(text, "return"),
            "'return' must be the last step of its block: step 'late' (line 5) would never run",
        ),
    ]


def test_return_in_a_nested_block_must_be_last_too() -> None:
    text = steps(
        """\
        - id: gate
          type: condition
          if: "1 > 0"
          then:
            - {id: early, type: return}
            - {id: late, type: shell, command: ls}
        """
    )
    assert errors(text) == [
        (
            *at(text, "return"),
            "'return' must be the last step of its block: step 'late' (line 9) would never run",
        ),
    ]


def test_conditional_return_may_be_anywhere() -> None:
    load_definition(
        steps(
            """\
        - {id: early, type: return, when: "1 > 2"}
        - {id: late, type: shell, command: ls}
        """
        )
    )


def test_return_is_not_allowed_in_compensate() -> None:
    text = one_step("{id: a, type: shell, command: ls, compensate: [{id: b, type: return}]}")
    assert errors(text) == [(*at(text, "return"), "'return' is not allowed in compensate steps")]


def test_wait_needs_exactly_one_of_duration_and_until() -> None:
    text = one_step("{id: w, type: wait}")
    assert errors(text) == [(*at(text, "{id"), "wait step 'w' needs 'duration' or 'until'")]
    text = one_step("{id: w, type: wait, duration: 5m, until: '2030-01-01T00:00:00Z'}")
    assert errors(text) == [
        (*at(text, "'2030"), "wait step 'w' takes either 'duration' or 'until', not both"),
    ]


def test_static_until_must_be_a_timestamp_with_a_timezone() -> None:
    text = one_step("{id: w, type: wait, until: tomorrow}")
    assert errors(text) == [
        (
            *at(text, "tomorrow"),
            "until must be an ISO-8601 timestamp such as '2030-01-31T09:00:00Z', got 'tomorrow'",
        ),
    ]
    text = one_step("{id: w, type: wait, until: '2030-01-01T00:00:00'}")
    assert errors(text) == [
        (
            *at(text, "'2030"),
            "timestamp '2030-01-01T00:00:00' needs a timezone, such as 'Z' or '+02:00'",
        ),
    ]


def test_delegate_agent_must_be_task_or_a_name() -> None:
    text = one_step("{id: d, type: delegate, agent: reviewer, instruction: x}")
    assert errors(text) == [
        (*at(text, "reviewer"), "agent must be '@task' or '@<name>', got 'reviewer'"),
    ]


def test_input_defaults_and_enums_must_match_the_type() -> None:
    text = HEAD + textwrap.dedent(
        """\
        inputs:
          count: {type: integer, default: many}
          env: {type: string, enum: [dev, 3]}
          region: {type: string, enum: [us, eu], default: ap}
          kind: {type: array}
        steps: [{id: a, type: return}]
        """
    )
    assert errors(text) == [
        (*at(text, "many"), "the default of input 'count' must be of type integer, got 'many'"),
        (*at(text, "3]"), "enum value 3 of input 'env' is not of type string"),
        (*at(text, "ap}"), "the default of input 'region' must be one of 'us', 'eu', got 'ap'"),
        (
            *at(text, "array"),
            "type must be one of 'string', 'integer', 'number', 'boolean', "
            "'list', 'map', 'any', got 'array'; did you mean 'list'?",
        ),
    ]


# -- all at once ------------------------------------------------------------------------------


def test_four_different_errors_are_all_reported() -> None:
    text = textwrap.dedent(
        """\
        name: demo
        version: three
        steps:
          - id: build
            type: shell
            comand: make
          - id: ask
            type: prompt
            prompt_type: choice
            message: "Pick ${{ stat.x }}"
          - {id: pause, type: wait, duration: soon}
        """
    )
    with pytest.raises(DefinitionError) as caught:
        load_definition(text, "wf.yaml")
    assert str(caught.value).splitlines() == [
        "wf.yaml:2:10: expected a positive integer, got 'three'",
        "wf.yaml:4:5: missing required field 'command' in shell step 'build'",
        "wf.yaml:6:5: unknown field 'comand' in shell step 'build'; did you mean 'command'?",
        "wf.yaml:9:18: choice prompt 'ask' needs 'options'",
        "wf.yaml:10:24: unknown name 'stat'; did you mean 'state'?",
        "wf.yaml:11:39: expected a duration such as '30s', '5m', '1h30m', '1d' or 'PT5M', "
        "got 'soon'",
    ]
    assert [p.path for p in caught.value.problems] == [
        "version",
        "steps[0].command",
        "steps[0].comand",
        "steps[1].prompt_type",
        "steps[1].message",
        "steps[2].duration",
    ]
