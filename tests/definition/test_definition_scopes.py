"""Names in expressions: roots, foreach variables, step ids, declared inputs, needs_state."""

from __future__ import annotations

import textwrap

import pytest

from engine.definition import DefinitionError, WorkflowDefinition, load_definition

HEAD = "name: demo\nversion: 1\ninputs:\n  service: {type: string}\n  env: {type: string}\n"


def definition(body: str) -> str:
    return HEAD + textwrap.dedent(body)


def at(text: str, marker: str, nth: int = 0) -> tuple[int, int]:
    offset = -1
    for _ in range(nth + 1):
        offset = text.index(marker, offset + 1)
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def errors(text: str) -> list[tuple[int, int, str]]:
    with pytest.raises(DefinitionError) as caught:
        load_definition(text, "wf.yaml")
    return [(p.line, p.column, p.message) for p in caught.value.errors]


def load(text: str) -> WorkflowDefinition:
    try:
        return load_definition(text, "wf.yaml")
    except DefinitionError as error:
        pytest.fail(str(error))


def test_every_default_root_is_in_scope() -> None:
    text = definition(
        """\
        state: {x: 1}
        steps:
          - id: first
            type: shell
            command: ls
          - id: show
            type: return
            value: "${{ [inputs.service, state.x, steps.first, workflow.id, org.id] }}"
        """
    )
    assert load(text).warnings == ()


def test_unknown_root_with_did_you_mean() -> None:
    text = definition("steps: [{id: a, type: return, value: '${{ input.service }}'}]\n")
    assert errors(text) == [(*at(text, "input."), "unknown name 'input'; did you mean 'inputs'?")]


def test_undeclared_input_with_did_you_mean() -> None:
    text = definition("steps: [{id: a, type: shell, command: ls, when: inputs.servce != ''}]\n")
    assert errors(text) == [
        (
            *at(text, "inputs.servce"),
            "input 'servce' is not declared in inputs; did you mean 'service'?",
        ),
    ]


def test_undeclared_input_without_inputs_at_all() -> None:
    text = "name: demo\nversion: 1\nsteps: [{id: a, type: return, value: '${{ inputs.x }}'}]\n"
    assert errors(text) == [(*at(text, "inputs.x"), "input 'x' is not declared in inputs")]


def test_computed_input_keys_are_allowed() -> None:
    load(definition("steps: [{id: a, type: return, value: '${{ inputs[inputs.env] }}'}]\n"))


def test_unknown_step_id_with_did_you_mean() -> None:
    text = definition(
        """\
        steps:
          - {id: build, type: shell, command: make}
          - {id: show, type: return, value: "${{ steps.biuld.output }}"}
        """
    )
    assert errors(text) == [
        (*at(text, "steps.biuld"), "no step has id 'biuld'; did you mean 'build'?")
    ]


def test_step_ids_in_nested_blocks_can_be_referenced() -> None:
    load(
        definition(
            """\
        steps:
          - id: gate
            type: condition
            if: "true"
            then: [{id: nested, type: shell, command: ls}]
          - {id: show, type: return, value: "${{ steps.nested ?? steps['gate'] }}"}
        """
        )
    )


def test_step_ids_in_bracket_form_are_checked() -> None:
    text = definition("steps: [{id: show, type: return, value: \"${{ steps['shw'] }}\"}]\n")
    assert errors(text) == [(*at(text, "steps["), "no step has id 'shw'; did you mean 'show'?")]


def test_foreach_variable_and_index_are_in_scope_inside() -> None:
    definition_ = load(
        definition(
            """\
        steps:
          - id: each
            type: foreach
            items: '["a", "b"]'
            as: region
            steps:
              - {id: show, type: return, value: "${{ region + string(index) }}",
                 when: "index >= 0"}
        """
        )
    )
    step = definition_.step("show")
    assert step.render("value", {"region": "eu", "index": 1}) == "eu1"


def test_nested_foreach_sees_both_variables() -> None:
    definition_ = load(
        definition(
            """\
        steps:
          - id: regions
            type: foreach
            items: '["us", "eu"]'
            as: region
            steps:
              - id: zones
                type: foreach
                items: '[region + "-1", region + "-2"]'
                as: zone
                steps:
                  - {id: show, type: return, value: "${{ [region, zone, index] }}"}
        """
        )
    )
    assert definition_.step("zones").evaluate_items({"region": "us"}) == ["us-1", "us-2"]
    show = definition_.step("show")
    assert show.render("value", {"region": "us", "zone": "us-2", "index": 1}) == ["us", "us-2", 1]


def test_foreach_variable_used_outside_its_foreach() -> None:
    text = definition(
        """\
        steps:
          - id: regions
            type: foreach
            items: '["us"]'
            as: region
            steps: [{id: apply, type: shell, command: ls}]
          - {id: after, type: return, value: "${{ region }}"}
        """
    )
    assert errors(text) == [
        (
            *at(text, "region }}"),
            "'region' is only defined inside the steps of foreach 'regions' (line 7)",
        ),
    ]


def test_foreach_items_cannot_read_its_own_variable() -> None:
    text = definition(
        """\
        steps:
          - id: each
            type: foreach
            items: "[item]"
            steps: [{id: apply, type: shell, command: ls}]
        """
    )
    assert errors(text) == [
        (*at(text, "item]"), "'item' is only defined inside the steps of foreach 'each' (line 7)"),
    ]


def test_index_outside_any_foreach() -> None:
    text = definition(
        """\
        steps:
          - {id: each, type: foreach, items: "[1]", steps: [{id: a, type: shell, command: ls}]}
          - {id: after, type: return, value: "${{ index }}"}
        """
    )
    assert errors(text) == [
        (*at(text, "index }}"), "'index' is only defined inside the steps of a foreach"),
    ]


@pytest.mark.parametrize("root", ["inputs", "state", "steps", "workflow", "org"])
def test_as_cannot_shadow_a_root(root: str) -> None:
    text = definition(
        f"""\
        steps:
          - {{id: each, type: foreach, items: "[1]", as: {root},
             steps: [{{id: a, type: shell, command: ls}}]}}
        """
    )
    line, column = at(text, f"as: {root}")
    assert errors(text) == [
        (
            line,
            column + 4,
            f"foreach variable '{root}' would hide the root name '{root}'; "
            "choose another name for 'as'",
        ),
    ]


def test_as_cannot_shadow_an_outer_as() -> None:
    text = definition(
        """\
        steps:
          - id: outer
            type: foreach
            items: "[1]"
            as: thing
            steps:
              - id: inner
                type: foreach
                items: "[2]"
                as: thing
                steps: [{id: a, type: shell, command: ls}]
        """
    )
    assert errors(text) == [
        (
            *at(text, "thing", 1),
            "foreach variable 'thing' would hide the variable of the "
            "enclosing foreach 'outer' (line 7); choose another name for "
            "'as'",
        ),
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("index", "'index' is the position of the item; choose another name for 'as'"),
        ("true", "'true' is a reserved word of expressions; choose another name for 'as'"),
        ("null", "'null' is a reserved word of expressions; choose another name for 'as'"),
    ],
)
def test_as_cannot_be_index_or_a_keyword(name: str, message: str) -> None:
    text = definition(
        f"""\
        steps:
          - {{id: each, type: foreach, items: "[1]", as: "{name}",
             steps: [{{id: a, type: shell, command: ls}}]}}
        """
    )
    assert errors(text) == [(*at(text, f'"{name}"'), message)]


def test_sibling_foreach_steps_may_reuse_a_name() -> None:
    load(
        definition(
            """\
        steps:
          - {id: one, type: foreach, items: "[1]", as: x, steps: [{id: a, type: return,
             value: "${{ x }}"}]}
          - {id: two, type: foreach, items: "[2]", as: x, steps: [{id: b, type: return,
             value: "${{ x }}"}]}
        """
        )
    )


def test_compensate_of_a_step_inside_a_foreach_sees_the_item() -> None:
    load(
        definition(
            """\
        steps:
          - id: each
            type: foreach
            items: '["a"]'
            steps:
              - id: make
                type: shell
                command: make "$X"
                env: {X: "${{ item }}"}
                compensate:
                  - {id: unmake, type: shell, command: rm "$X", env: {X: "${{ item }}"}}
        """
        )
    )


def test_initial_state_can_only_read_inputs_workflow_and_org() -> None:
    text = definition(
        """\
        state:
          ok: "${{ inputs.service + workflow.id + org.id }}"
          bad: "${{ state.ok }}"
          worse: "${{ steps.x }}"
        steps: [{id: x, type: return}]
        """
    )
    assert errors(text) == [
        (
            *at(text, "state.ok"),
            "the initial state can only read inputs, workflow and org, not 'state'",
        ),
        (
            *at(text, "steps.x"),
            "the initial state can only read inputs, workflow and org, not 'steps'",
        ),
    ]


def test_needs_state_limits_what_a_step_reads() -> None:
    text = definition(
        """\
        state: {a: 1, b: 2}
        steps:
          - id: only_a
            type: shell
            command: ls
            needs_state: [a]
            when: state.a > 0
            env: {B: "${{ state.b }}"}
        """
    )
    assert errors(text) == [
        (*at(text, "state.b"), "step 'only_a' reads state.b, but needs_state does not list 'b'"),
    ]


def test_needs_state_applies_to_the_step_itself_not_nested_steps() -> None:
    load(
        definition(
            """\
        state: {a: 1, b: 2}
        steps:
          - id: gate
            type: condition
            needs_state: [a]
            if: state.a > 0
            then: [{id: inner, type: return, value: "${{ state.b }}"}]
        """
        )
    )


def test_an_empty_needs_state_sees_no_state() -> None:
    text = definition(
        "state: {a: 1}\nsteps: [{id: s, type: shell, command: ls, needs_state: [], "
        "when: state.a == 1}]\n"
    )
    assert errors(text) == [
        (*at(text, "state.a"), "step 's' reads state.a, but needs_state does not list 'a'"),
    ]
