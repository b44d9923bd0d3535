"""How YAML text becomes data: YAML 1.2 core schema, anchors and merge keys, files."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.definition import DefinitionError, load_definition, load_definition_file

HEAD = "name: demo\nversion: 1\n"


def initial_state(state_yaml: str) -> dict[str, object]:
    definition = load_definition(HEAD + f"state:\n{state_yaml}steps: [{{id: a, type: return}}]\n")
    return definition.state


def test_yaml_1_1_booleans_are_strings() -> None:
    state = initial_state("  a: yes\n  b: no\n  c: on\n  d: off\n  e: y\n  f: true\n  g: False\n")
    assert state == {"a": "yes", "b": "no", "c": "on", "d": "off", "e": "y", "f": True, "g": False}


def test_dates_and_times_stay_strings() -> None:
    state = initial_state("  day: 2024-01-31\n  at: 2024-01-31T10:00:00Z\n  clock: 12:30\n")
    assert state == {"day": "2024-01-31", "at": "2024-01-31T10:00:00Z", "clock": "12:30"}


def test_core_schema_numbers_and_nulls() -> None:
    state = initial_state(
        "  i: 42\n  neg: -7\n  octal: 0o17\n  hex: 0x1F\n  leading: 012\n  f: 1.5\n"
        "  e: 1e3\n  n1: null\n  n2: ~\n  n3:\n  s: '42'\n  sexagesimal: 1:30\n  under: 1_000\n"
    )
    assert state == {
        "i": 42,
        "neg": -7,
        "octal": 15,
        "hex": 31,
        "leading": 12,
        "f": 1.5,
        "e": 1000.0,
        "n1": None,
        "n2": None,
        "n3": None,
        "s": "42",
        "sexagesimal": "1:30",
        "under": "1_000",
    }


def test_anchors_and_aliases_expand() -> None:
    text = HEAD + (
        "state:\n  base: &labels {team: platform, tier: web}\n  copy: *labels\n"
        "steps: [{id: a, type: return}]\n"
    )
    definition = load_definition(text)
    assert definition.state["copy"] == {"team": "platform", "tier": "web"}


def test_merge_keys_let_steps_share_settings() -> None:
    text = HEAD + (
        "steps:\n"
        "  - &shell_defaults {id: first, type: shell, command: one, timeout: 5m}\n"
        "  - <<: *shell_defaults\n"
        "    id: second\n"
        "    command: two\n"
    )
    definition = load_definition(text)
    second = definition.step("second")
    assert second.timeout is not None
    assert second.render_params({})["command"] == "two"


def test_merge_key_problems_point_at_the_explicit_key() -> None:
    text = HEAD + (
        "steps:\n"
        "  - &base {id: first, type: shell, command: one}\n"
        "  - <<: *base\n"
        "    id: second\n"
        "    comand: two\n"
    )
    with pytest.raises(DefinitionError) as caught:
        load_definition(text)
    assert [(p.line, p.column, p.message) for p in caught.value.errors] == [
        (7, 5, "unknown field 'comand' in shell step 'second'; did you mean 'command'?"),
    ]


def test_merge_of_a_non_mapping() -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition(HEAD + "state:\n  <<: [1]\nsteps: [{id: a, type: return}]\n")
    assert [(p.line, p.column, p.message) for p in caught.value.errors] == [
        (4, 3, "'<<' must be followed by a mapping or a list of mappings"),
    ]


def test_explicit_string_tag_is_honoured() -> None:
    assert initial_state("  a: !!str 5\n  b: !!int '7'\n") == {"a": "5", "b": 7}


def test_load_definition_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(HEAD + "steps: [{id: a, type: retrun}]\n", encoding="utf-8")
    with pytest.raises(DefinitionError) as caught:
        load_definition_file(path)
    (problem,) = caught.value.problems
    assert problem.source == str(path)
    assert str(problem) == f"{path}:3:23: unknown step type 'retrun'; did you mean 'return'?"


def test_load_definition_file_success(tmp_path: Path) -> None:
    path = tmp_path / "flow.yaml"
    path.write_text(HEAD + "steps: [{id: a, type: return}]\n", encoding="utf-8")
    definition = load_definition_file(str(path))
    assert definition.source == str(path)
    assert definition.workflow_type == "demo:1"


def test_load_definition_file_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_definition_file(tmp_path / "nope.yaml")


def test_default_source_name() -> None:
    with pytest.raises(DefinitionError) as caught:
        load_definition("name: demo\n")
    assert all(p.source == "<string>" for p in caught.value.problems)


def test_text_is_required() -> None:
    with pytest.raises(TypeError, match="expected the definition as text, got bytes"):
        load_definition(b"name: demo")  # type: ignore[arg-type]


def test_oversized_text_is_rejected() -> None:
    text = HEAD + "description: '" + "x" * 1_100_000 + "'\nsteps: [{id: a, type: return}]\n"
    with pytest.raises(DefinitionError) as caught:
        load_definition(text)
    assert [p.message for p in caught.value.problems] == [
        "the definition is longer than 1048576 characters",
    ]


def test_json_text_is_yaml_too() -> None:
    text = '{"name": "demo", "version": 1, "steps": [{"id": "a", "type": "return"}]}'
    assert load_definition(text).workflow_type == "demo:1"


def test_json_problems_have_locations() -> None:
    text = '{\n  "name": "demo",\n  "version": 1,\n  "steps": [{"id": "a", "type": "retrun"}]\n}'
    with pytest.raises(DefinitionError) as caught:
        load_definition(text)
    assert [(p.line, p.column, p.message) for p in caught.value.problems] == [
        (4, 33, "unknown step type 'retrun'; did you mean 'return'?"),
    ]


def test_json_with_duplicate_keys_is_caught() -> None:
    text = (
        '{"name": "demo", "name": "other", "version": 1, "steps": [{"id": "a", "type": "return"}]}'
    )
    with pytest.raises(DefinitionError) as caught:
        load_definition(text)
    assert [(p.line, p.column, p.message) for p in caught.value.problems] == [
        (1, 18, "duplicate key 'name' (first at line 1)"),
    ]
