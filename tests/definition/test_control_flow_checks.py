"""loop, break, parallel and try at load time: what the checker rejects or warns about, exactly
where (line and column) it points, and that the definitions it accepts load back from their
canonical JSON unchanged."""

from __future__ import annotations

import json
import textwrap

import pytest

from engine.definition import (
    BreakStep,
    DefinitionError,
    LoopStep,
    ParallelStep,
    TryStep,
    WorkflowDefinition,
    load_definition,
)

HEAD = "name: demo\nversion: 1\n"


def problems(text: str) -> list[tuple[int, int, str]]:
    """(line, column, message) of each problem (errors and warnings), in source order."""
    with pytest.raises(DefinitionError) as caught:
        load_definition(textwrap.dedent(text), "wf.yaml")
    return [(p.line, p.column, p.message) for p in caught.value.problems]


def errors(text: str) -> list[tuple[int, int, str]]:
    with pytest.raises(DefinitionError) as caught:
        load_definition(textwrap.dedent(text), "wf.yaml")
    return [(p.line, p.column, p.message) for p in caught.value.errors]


def load(text: str) -> WorkflowDefinition:
    try:
        return load_definition(text, "wf.yaml")
    except DefinitionError as error:
        pytest.fail(str(error))


def warnings(text: str) -> list[tuple[int, int, str]]:
    definition = load(text)
    assert all(w.severity == "warning" for w in definition.warnings)
    return [(w.line, w.column, w.message) for w in definition.warnings]


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


BODY = "[{id: a, type: set_state, set: {x: 1}}]"
"""A block of one harmless step."""

LOOP_SCOPE = "'loop' is only defined inside the steps of a loop (and in its while/until)"
ERROR_SCOPE = "'error' is only defined inside the catch block of a try"
RETURN_IN_BRANCH = (
    "'return' is not allowed in a parallel branch (the branches run at once): let the branch "
    "end, and return after the parallel step"
)


# -- loop -------------------------------------------------------------------------------------


def test_loop_without_max_iterations() -> None:
    text = one_step(f"{{id: l, type: loop, while: 'true', steps: {BODY}}}")
    assert problems(text) == [
        (*at(text, "{id: l"), "missing required field 'max_iterations' in loop step 'l'"),
    ]


@pytest.mark.parametrize(
    ("value", "shown"),
    [("0", "0"), ("-1", "-1"), ("many", "'many'"), ("'${{ 3 }}'", "'${{ 3 }}'"), ("2.5", "2.5")],
)
def test_max_iterations_must_be_a_positive_integer(value: str, shown: str) -> None:
    text = one_step(f"{{id: l, type: loop, max_iterations: {value}, steps: {BODY}}}")
    assert problems(text) == [
        (*at(text, value), f"expected a positive integer, got {shown}"),
    ]


def test_unknown_field_in_a_loop_with_did_you_mean() -> None:
    text = one_step(f"{{id: l, type: loop, max_iterations: 3, whle: 'true', steps: {BODY}}}")
    assert problems(text) == [
        (*at(text, "whle"), "unknown field 'whle' in loop step 'l'; did you mean 'while'?"),
    ]


@pytest.mark.parametrize(
    ("field", "owner"),
    [
        ("max_iterations: 3", "loop"),
        ("branches: {}", "parallel"),
        ("catch: []", "try"),
        ("finally: []", "try"),
    ],
)
def test_the_new_fields_belong_to_their_step_types(field: str, owner: str) -> None:
    text = one_step(f"{{id: s, type: shell, command: ls, {field}}}")
    name = field.partition(":")[0]
    assert problems(text) == [
        (
            *at(text, name),
            f"unknown field '{name}' in shell step 's'; '{name}' belongs to {owner} steps",
        ),
    ]


def test_loop_steps_must_not_be_empty() -> None:
    text = one_step("{id: l, type: loop, max_iterations: 3, steps: []}")
    assert problems(text) == [(*at(text, "[]"), "'steps' must not be empty")]


def test_constant_while_false_is_a_warning() -> None:
    text = one_step(f"{{id: l, type: loop, max_iterations: 3, while: 'false', steps: {BODY}}}")
    assert warnings(text) == [
        (*at(text, "'false'"), "the steps of loop 'l' never run: its 'while' is always false"),
    ]


def test_constant_while_true_and_until_true_are_not_warned_about() -> None:
    # `while: true` (bounded by max_iterations) and `until: true` (exactly once) are both ways
    # to spell a loop that does something useful.
    assert (
        warnings(
            one_step(f"{{id: l, type: loop, max_iterations: 3, while: 'true', steps: {BODY}}}")
        )
        == []
    )
    assert (
        warnings(
            one_step(f"{{id: l, type: loop, max_iterations: 3, until: 'true', steps: {BODY}}}")
        )
        == []
    )


@pytest.mark.parametrize("field", ["while", "until"])
def test_constant_condition_must_be_a_boolean(field: str) -> None:
    text = one_step(f"{{id: l, type: loop, max_iterations: 3, {field}: '5', steps: {BODY}}}")
    assert problems(text) == [(*at(text, "'5'"), f"'{field}' must be a boolean, got 5")]


def test_condition_expression_errors_point_into_the_expression() -> None:
    text = one_step(f"{{id: l, type: loop, max_iterations: 3, until: 'stat.done', steps: {BODY}}}")
    assert errors(text) == [(*at(text, "stat.done"), "unknown name 'stat'; did you mean 'state'?")]


def test_loop_iteration_outside_any_loop_when_the_definition_has_none() -> None:
    text = one_step("{id: a, type: set_state, set: {x: '${{ loop.iteration }}'}}")
    assert errors(text) == [
        (
            *at(text, "loop.iteration"),
            "unknown name 'loop'; the names in scope are inputs, state, steps, workflow, org",
        ),
    ]


def test_loop_iteration_after_a_loop() -> None:
    text = steps(
        f"""\
        - {{id: l, type: loop, max_iterations: 3, steps: {BODY}}}
        - {{id: after, type: set_state, set: {{x: '${{{{ loop.iteration }}}}'}}}}
        """
    )
    assert errors(text) == [(*at(text, "loop.iteration"), LOOP_SCOPE)]


def test_loop_in_the_loops_own_when_and_compensate() -> None:
    # Its `when` is decided before the first iteration; its compensate runs after the loop.
    text = steps(
        f"""\
        - id: l
          type: loop
          when: loop.iteration == 0
          max_iterations: 3
          steps: {BODY}
          compensate:
            - {{id: undo, type: mcp_call, tool: undo, params: {{i: "${{{{ loop.id }}}}"}}}}
        """
    )
    assert errors(text) == [
        (*at(text, "loop.iteration"), LOOP_SCOPE),
        (*at(text, "loop.id"), LOOP_SCOPE),
    ]


def test_loop_is_in_scope_in_its_conditions_steps_and_nested_blocks() -> None:
    text = steps(
        """\
        - id: l
          type: loop
          max_iterations: 5
          while: loop.iteration < 4
          until: loop.iteration >= 2 && loop.id == "l"
          steps:
            - {id: a, type: set_state, set: {i: "${{ loop.iteration }}"}}
            - id: c
              type: condition
              if: loop.iteration > 0
              then:
                - {id: b, type: break, when: loop.iteration == 3}
            - id: each
              type: foreach
              items: "[loop.iteration]"
              steps:
                - {id: r, type: return, value: "${{ [item, loop.iteration] }}"}
            - id: s
              type: mcp_call
              tool: t
              compensate:
                - {id: undo, type: mcp_call, tool: undo, params: {i: "${{ loop.iteration }}"}}
        """
    )
    assert warnings(text) == []


# -- error ------------------------------------------------------------------------------------


def test_error_outside_any_try_when_the_definition_has_none() -> None:
    text = one_step("{id: a, type: set_state, set: {x: '${{ error.message }}'}}")
    assert errors(text) == [
        (
            *at(text, "error.message"),
            "unknown name 'error'; the names in scope are inputs, state, steps, workflow, org",
        ),
    ]


def test_error_outside_catch() -> None:
    text = steps(
        """\
        - id: t
          type: try
          when: error == null
          steps:
            - {id: a, type: set_state, set: {m: "${{ error.message }}"}}
          catch:
            - {id: c, type: set_state, set: {m: "${{ error.message }}"}}
          finally:
            - {id: f, type: set_state, set: {m: "${{ error.step }}"}}
        - {id: after, type: set_state, set: {m: "${{ error.type }}"}}
        """
    )
    assert errors(text) == [
        (*at(text, "error == null"), ERROR_SCOPE),
        (*at(text, "error.message"), ERROR_SCOPE),
        (*at(text, "error.step"), ERROR_SCOPE),
        (*at(text, "error.type"), ERROR_SCOPE),
    ]


def test_error_is_in_scope_anywhere_inside_catch() -> None:
    text = steps(
        """\
        - id: t
          type: try
          steps: [{id: a, type: mcp_call, tool: t}]
          catch:
            - id: c
              type: condition
              if: error.attempts > 1 && error.type == "mcp_call"
              then:
                - {id: s, type: set_state, set: {m: "${{ error.step }}: ${{ error.message }}"}}
            - id: again
              type: loop
              max_iterations: 2
              until: error.attempts > 0
              steps:
                - {id: note, type: set_state, set: {m: "${{ error.message }}"}}
            - id: each
              type: foreach
              items: "[error.step]"
              steps:
                - {id: r, type: return, value: "${{ item + error.message }}"}
        """
    )
    assert warnings(text) == []


# -- break ------------------------------------------------------------------------------------


def test_break_outside_a_loop() -> None:
    text = one_step("{id: b, type: break}")
    assert errors(text) == [
        (*at(text, "break"), "'break' ends the innermost loop, and step 'b' is outside a loop"),
    ]


def test_break_in_a_foreach_inside_a_loop() -> None:
    text = steps(
        """\
        - id: l
          type: loop
          max_iterations: 3
          steps:
            - id: each
              type: foreach
              items: "[1, 2]"
              steps:
                - {id: b, type: break}
        """
    )
    assert errors(text) == [
        (
            *at(text, "break"),
            "'break' ends the innermost loop, and step 'b' is in the steps of a foreach "
            "(an item cannot end the loop around it)",
        ),
    ]


def test_break_in_a_parallel_branch_inside_a_loop() -> None:
    text = steps(
        """\
        - id: l
          type: loop
          max_iterations: 3
          steps:
            - id: p
              type: parallel
              branches:
                left:
                  - id: t
                    type: try
                    steps: [{id: a, type: set_state, set: {x: 1}}]
                    finally:
                      - {id: b, type: break}
        """
    )
    assert errors(text) == [
        (
            *at(text, "break"),
            "'break' ends the innermost loop, and step 'b' is in a parallel branch "
            "(it cannot end the loop around the parallel)",
        ),
    ]


def test_break_in_compensate() -> None:
    text = steps(
        """\
        - id: l
          type: loop
          max_iterations: 3
          steps:
            - id: a
              type: set_state
              set: {x: 1}
              compensate:
                - {id: b, type: break}
        """
    )
    assert errors(text) == [
        (
            *at(text, "break"),
            "'break' ends the innermost loop, and step 'b' is in a compensate block",
        ),
    ]


def test_break_must_be_the_last_step_of_its_block() -> None:
    text = steps(
        """\
        - id: l
          type: loop
          max_iterations: 3
          steps:
            - {id: b, type: break}
            - {id: late, type: set_state, set: {x: 1}}
        """
    )
    assert errors(text) == [
        (
            *at(text, "break"),
            "'break' must be the last step of its block: step 'late' (line 9) would never run",
        ),
    ]


def test_break_with_a_when_may_be_anywhere() -> None:
    text = steps(
        """\
        - id: l
          type: loop
          max_iterations: 3
          steps:
            - {id: b, type: break, when: loop.iteration == 1}
            - {id: late, type: set_state, set: {x: 1}}
        """
    )
    assert warnings(text) == []


def test_break_takes_no_value() -> None:
    text = one_step(
        "{id: l, type: loop, max_iterations: 3, steps: [{id: b, type: break, value: 1}]}"
    )
    assert errors(text) == [
        (
            *at(text, "value"),
            "unknown field 'value' in break step 'b'; 'value' belongs to return steps",
        ),
    ]


def test_break_in_the_places_that_end_the_innermost_loop() -> None:
    # In a condition, a catch or a finally inside a loop; in a loop inside a parallel branch,
    # a foreach item or a compensate block: each ends the loop around it.
    text = steps(
        """\
        - id: outer
          type: loop
          max_iterations: 3
          steps:
            - id: c
              type: condition
              if: loop.iteration > 0
              then: [{id: b1, type: break}]
            - id: t
              type: try
              steps: [{id: a, type: mcp_call, tool: t}]
              catch: [{id: b2, type: break}]
              finally: [{id: b3, type: break, when: loop.iteration == 2}]
        - id: p
          type: parallel
          branches:
            left:
              - {id: l2, type: loop, max_iterations: 2, steps: [{id: b4, type: break}]}
        - id: each
          type: foreach
          items: "[1]"
          steps:
            - {id: l3, type: loop, max_iterations: 2, steps: [{id: b5, type: break}]}
          compensate:
            - {id: l4, type: loop, max_iterations: 2, steps: [{id: b6, type: break}]}
        """
    )
    assert warnings(text) == []


def test_condition_whose_branches_all_break_makes_the_next_step_unreachable() -> None:
    text = steps(
        """\
        - id: l
          type: loop
          max_iterations: 3
          steps:
            - id: c
              type: condition
              if: loop.iteration == 1
              then: [{id: b1, type: break}]
              else: [{id: b2, type: break}]
            - {id: after, type: set_state, set: {x: 1}}
        """
    )
    assert warnings(text) == [
        (
            *at(text, "{id: after"),
            "step 'after' never runs: every branch of condition 'c' ends with break",
        ),
    ]


# -- parallel ---------------------------------------------------------------------------------


def test_return_in_a_parallel_branch() -> None:
    text = steps(
        """\
        - id: p
          type: parallel
          branches:
            left:
              - {id: r1, type: return, value: 1}
            right:
              - id: t
                type: try
                steps: [{id: a, type: mcp_call, tool: t}]
                catch: [{id: r2, type: return}]
              - id: l
                type: loop
                max_iterations: 2
                steps: [{id: r3, type: return}]
        """
    )
    assert errors(text) == [
        (*at(text, "return"), RETURN_IN_BRANCH),
        (*at(text, "return", 1), RETURN_IN_BRANCH),
        (*at(text, "return", 2), RETURN_IN_BRANCH),
    ]


def test_empty_branches_map() -> None:
    text = one_step("{id: p, type: parallel, branches: {}}")
    assert problems(text) == [(*at(text, "{}"), "'branches' must not be empty")]


def test_branches_must_be_a_mapping_of_lists_of_steps() -> None:
    text = one_step("{id: p, type: parallel, branches: [a]}")
    assert problems(text) == [(*at(text, "[a]"), "expected a mapping, got a list")]
    text = one_step("{id: p, type: parallel, branches: {a: 5}}")
    assert problems(text) == [(*at(text, "5}"), "expected a list, got 5")]
    text = one_step("{id: p, type: parallel, branches: {a: [oops]}}")
    assert problems(text) == [
        (*at(text, "oops"), "expected a step (a mapping with 'id' and 'type'), got 'oops'"),
    ]


@pytest.mark.parametrize(
    ("name", "shown"),
    [("bad-name", "'bad-name'"), ("2nd", "'2nd'"), ("'a b'", "'a b'")],
)
def test_bad_branch_name(name: str, shown: str) -> None:
    text = one_step(f"{{id: p, type: parallel, branches: {{{name}: {BODY}}}}}")
    assert problems(text) == [
        (
            *at(text, name),
            f"invalid variable name {shown}: use letters, digits and '_', starting with a "
            "letter or '_' (at most 64 characters)",
        ),
    ]


def test_on_branch_error_values() -> None:
    text = one_step(f"{{id: p, type: parallel, on_branch_error: waitall, branches: {{a: {BODY}}}}}")
    assert problems(text) == [
        (
            *at(text, "waitall"),
            "on_branch_error must be one of 'fail_fast', 'wait_all', got 'waitall'; "
            "did you mean 'wait_all'?",
        ),
    ]


def test_problems_inside_a_branch_point_into_the_branch() -> None:
    text = steps(
        """\
        - id: p
          type: parallel
          branches:
            left:
              - {id: s, type: set_state, set: {x: 1}, bogus: 1}
            right:
              - {id: m, type: mcp_call, tol: t}
        """
    )
    assert problems(text) == [
        (*at(text, "bogus"), "unknown field 'bogus' in set_state step 's'"),
        (*at(text, "{id: m"), "missing required field 'tool' in mcp_call step 'm'"),
        (*at(text, "tol"), "unknown field 'tol' in mcp_call step 'm'; did you mean 'tool'?"),
    ]


def test_step_ids_are_unique_across_branches() -> None:
    text = one_step(f"{{id: p, type: parallel, branches: {{a: {BODY}, b: {BODY}}}}}")
    assert errors(text) == [
        (*at(text, "a, type", 1), "duplicate step id 'a' (first used at line 4)")
    ]


def test_templates_in_branches_see_the_parallels_scope() -> None:
    # Inside a loop and a catch, a branch's steps see `loop` and `error` like any nested step.
    text = steps(
        """\
        - id: t
          type: try
          steps: [{id: a, type: mcp_call, tool: t}]
          catch:
            - id: l
              type: loop
              max_iterations: 2
              steps:
                - id: p
                  type: parallel
                  when: loop.iteration == 0
                  branches:
                    left:
                      - {id: s, type: set_state, set: {i: "${{ loop.iteration }}"}}
                    right:
                      - {id: m, type: set_state, set: {m: "${{ error.message }}"}}
        """
    )
    assert warnings(text) == []


_INNER_VARIABLES = {
    "foreach-item": (
        """\
        - id: p
          type: parallel
          branches:
            left:
              - id: each
                type: foreach
                items: "[1, 2]"
                steps:
                  - {id: s, type: set_state, set: {v: "${{ item * index }}"}}
        """
    ),
    "loop-iteration": (
        """\
        - id: p
          type: parallel
          branches:
            left:
              - id: l
                type: loop
                max_iterations: 2
                steps:
                  - {id: s, type: set_state, set: {v: "${{ loop.iteration }}"}}
        """
    ),
    "catch-error": (
        """\
        - id: p
          type: parallel
          branches:
            left:
              - id: t
                type: try
                steps: [{id: a, type: mcp_call, tool: t}]
                catch:
                  - {id: s, type: set_state, set: {v: "${{ error.message }}"}}
        """
    ),
    "needs-state-of-the-parallel": (
        """\
        - id: p
          type: parallel
          needs_state: [v]
          branches:
            left:
              - {id: s, type: set_state, set: {w: "${{ state.v }}"}}
              - {id: z, type: set_state, set: {v: "${{ state.w }}"}}
        """
    ),
}


@pytest.mark.parametrize("body", _INNER_VARIABLES.values(), ids=_INNER_VARIABLES.keys())
def test_templates_in_branches_see_the_variables_of_their_own_blocks(body: str) -> None:
    assert warnings(steps(body)) == []


def test_names_in_branches_are_checked_once_in_their_own_scope() -> None:
    text = steps(
        """\
        - id: p
          type: parallel
          branches:
            left:
              - {id: a, type: set_state, set: {v: "${{ stat.x }}"}}
              - {id: b, type: set_state, set: {v: "${{ loop.iteration }}"}}
            right:
              - {id: c, type: set_state, set: {v: "${{ inputs.nope }}"}}
              - {id: d, type: set_state, set: {v: "${{ steps.missing }}"}}
          compensate:
            - {id: undo, type: mcp_call, tool: undo, params: {v: "${{ error.message }}"}}
        - {id: l, type: loop, max_iterations: 1, steps: [{id: e, type: set_state, set: {w: 1}}]}
        - id: t
          type: try
          steps: [{id: f, type: mcp_call, tool: t}]
          finally: [{id: g, type: set_state, set: {w: 2}}]
        """
    )
    assert errors(text) == [
        (*at(text, "stat.x"), "unknown name 'stat'; did you mean 'state'?"),
        (*at(text, "loop.iteration"), LOOP_SCOPE),
        (*at(text, "inputs.nope"), "input 'nope' is not declared in inputs"),
        (*at(text, "steps.missing"), "no step has id 'missing'"),
        (*at(text, "error.message"), ERROR_SCOPE),
    ]


def test_return_in_a_foreach_item_inside_a_branch_is_allowed() -> None:
    text = steps(
        """\
        - id: p
          type: parallel
          branches:
            left:
              - id: each
                type: foreach
                items: "[1, 2]"
                steps:
                  - {id: r, type: return, value: done}
        """
    )
    assert warnings(text) == []


# -- try --------------------------------------------------------------------------------------


def test_try_without_catch_or_finally() -> None:
    text = one_step(f"{{id: t, type: try, steps: {BODY}}}")
    assert errors(text) == [(*at(text, "{id: t"), "try step 't' needs 'catch', 'finally' or both")]


def test_try_with_empty_catch_and_finally() -> None:
    text = one_step(f"{{id: t, type: try, steps: {BODY}, catch: [], finally: []}}")
    assert errors(text) == [(*at(text, "{id: t"), "try step 't' needs 'catch', 'finally' or both")]


def test_try_steps_are_required_and_not_empty() -> None:
    text = one_step(f"{{id: t, type: try, catch: {BODY}}}")
    assert problems(text) == [
        (*at(text, "{id: t"), "missing required field 'steps' in try step 't'"),
    ]
    text = one_step(f"{{id: t, type: try, steps: [], finally: {BODY}}}")
    assert problems(text) == [(*at(text, "[]"), "'steps' must not be empty")]


def test_return_in_try_must_be_last_of_its_block() -> None:
    text = one_step(
        "{id: t, type: try, steps: [{id: r, type: return}, {id: s, type: mcp_call, tool: t}], "
        f"finally: {BODY}}}"
    )
    assert errors(text) == [
        (
            *at(text, "return"),
            "'return' must be the last step of its block: step 's' (line 4) would never run",
        ),
    ]


# -- foreach `as` -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["loop", "error"])
def test_foreach_as_cannot_take_a_name_the_language_gives_a_meaning(name: str) -> None:
    text = one_step(f"{{id: f, type: foreach, items: '[1]', as: {name}, steps: {BODY}}}")
    assert errors(text) == [
        (
            *at(text, name),
            f"'{name}' is a name the language gives a meaning; choose another for 'as'",
        ),
    ]


# -- what loads -------------------------------------------------------------------------------

SEQUENTIAL = """\
name: control-flow
version: 3
inputs:
  rounds: {type: integer, default: 3}
state:
  done: false
  tries: 0
steps:
  - id: fix
    type: loop
    max_iterations: 3
    until: state.done
    output_to: fixing
    steps:
      - {id: count, type: set_state, set: {tries: "${{ state.tries + 1 }}"}}
      - id: attempt
        type: try
        steps:
          - {id: tests, type: shell, command: make test, output_to: result}
        catch:
          - id: note
            type: set_state
            set: {last_error: "${{ error.step }} (${{ error.type }}): ${{ error.message }}"}
          - {id: give_up, type: break, when: error.attempts > 2}
        finally:
          - {id: mark, type: set_state, set: {done: "${{ steps.tests.status == 'completed' }}"}}
      - id: inner
        type: loop
        max_iterations: 2
        while: loop.iteration < inputs.rounds
        steps:
          - {id: tick, type: wait, duration: 10ms, message: "round ${{ loop.iteration }}"}
  - {id: after, type: return, value: {fixing: "${{ state.fixing }}"}}
"""

PARALLEL = """\
name: control-flow-parallel
version: 1
steps:
  - id: both
    type: parallel
    on_branch_error: wait_all
    on_error: continue
    branches:
      left:
        - {id: ask, type: prompt, prompt_type: confirm, message: Ship?}
      right:
        - id: spin
          type: loop
          max_iterations: 4
          steps:
            - {id: nap, type: wait, duration: 10ms}
            - {id: enough, type: break, when: steps.nap.status == "completed"}
  - {id: after, type: return, value: "${{ steps.both.output }}"}
"""


def test_the_new_step_types_load_as_their_models() -> None:
    definition = load(SEQUENTIAL)
    assert definition.warnings == ()
    fix, _ = definition.steps
    assert isinstance(fix, LoopStep)
    assert (fix.max_iterations, fix.while_, fix.until) == (3, None, "state.done")
    attempt = fix.steps[1]
    assert isinstance(attempt, TryStep)
    assert [s.id for s in attempt.catch] == ["note", "give_up"]
    assert isinstance(attempt.catch[1], BreakStep)
    assert [s.id for s in attempt.finally_] == ["mark"]
    assert [name for name, _ in attempt.blocks()] == ["steps", "catch", "finally", "compensate"]
    [both, _] = load(PARALLEL).steps
    assert isinstance(both, ParallelStep)
    assert both.on_branch_error == "wait_all"
    assert list(both.branches) == ["left", "right"]
    assert [name for name, _ in both.blocks()] == ["branches.left", "branches.right", "compensate"]
    assert [s.id for s in both.nested_steps()] == ["ask", "spin", "nap", "enough"]
    plain = load(one_step(f"{{id: p, type: parallel, branches: {{a: {BODY}}}}}")).steps[0]
    assert isinstance(plain, ParallelStep)
    assert plain.on_branch_error == "fail_fast"


def _round_trip(text: str) -> None:
    definition = load_definition(text)
    canonical = definition.canonical_json()
    reloaded = load_definition(canonical)
    assert reloaded.canonical_json() == canonical
    assert reloaded.content_hash == definition.content_hash
    assert reloaded.model_dump() == definition.model_dump()
    assert reloaded.warnings == definition.warnings == ()
    assert reloaded.steps == definition.steps
    # The whole model too: the compiled expressions and templates each step carries.
    assert reloaded == definition


def test_canonical_json_of_loop_try_and_break() -> None:
    data = json.loads(load(SEQUENTIAL).canonical_json())
    fix = data["steps"][0]
    assert (fix["type"], fix["until"], fix["while"]) == ("loop", "state.done", None)
    assert fix["steps"][1]["finally"][0]["id"] == "mark"
    assert fix["steps"][1]["catch"][1] == {
        "compensate": [],
        "id": "give_up",
        "needs_state": None,
        "on_error": "fail",
        "output_to": None,
        "retry": None,
        "timeout": None,
        "type": "break",
        "when": "error.attempts > 2",
    }
    _round_trip(SEQUENTIAL)


def test_canonical_json_of_parallel() -> None:
    data = json.loads(load(PARALLEL).canonical_json())
    both = data["steps"][0]
    assert both["on_branch_error"] == "wait_all"
    assert both["branches"]["right"][0]["steps"][0]["duration"] == "10ms"
    assert load_definition(load(PARALLEL).canonical_json()).model_dump() == (
        load(PARALLEL).model_dump()
    )


def test_canonical_json_round_trip_of_parallel() -> None:
    _round_trip(PARALLEL)


def test_an_empty_branch_is_an_error() -> None:
    text = steps(
        """\
        - id: p
          type: parallel
          branches:
            left: []
            right: [{id: r, type: set_state, set: {x: 1}}]
        """
    )
    assert errors(text) == [(*at(text, "[]"), "branch 'left' of parallel 'p' has no steps")]


@pytest.mark.parametrize("kind", ["loop", "parallel", "try"])
def test_a_timeout_on_a_block_step_is_a_warning(kind: str) -> None:
    block = {
        "loop": "max_iterations: 2\n  steps: [{id: a, type: set_state, set: {x: 1}}]",
        "parallel": "branches: {one: [{id: a, type: set_state, set: {x: 1}}]}",
        "try": "steps: [{id: a, type: set_state, set: {x: 1}}]\n  finally: "
        "[{id: f, type: set_state, set: {y: 1}}]",
    }[kind]
    text = f"name: t\nversion: 1\nsteps:\n- id: s\n  type: {kind}\n  timeout: 5m\n  {block}\n"
    assert warnings(text) == [
        (*at(text, "5m"), f"timeout has no effect on a {kind} step: give its steps a timeout")
    ]
