"""Run filters are parsed and rebuilt: no text of a caller reaches a visibility query as is.

The corpus holds the ways out of a spliced ``(query)``: closing its parentheses, commenting the
rest out, naming the org's own attribute, stacking statements, smuggling quotes. Each is either
refused with the column of the problem or rebuilt into a filter that can only narrow.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.dispatcher import InvalidRequestError
from engine.dispatcher._filter import FIELDS, visibility_filter

INJECTIONS = [
    "WorkflowId = 'x') OR (WorkflowId != ''",
    "WorkflowId = 'x')",
    "(WorkflowId = 'x'",
    "EngineOrg = 'other'",
    "WorkflowId = 'x' OR EngineOrg != ''",
    "WorkflowId = 'x' -- ",
    "WorkflowId = 'x' /* */",
    "WorkflowId = 'x'; DROP TABLE executions",
    "WorkflowId = 'x' ORDER BY StartTime",
    "WorkflowType != 'engine.definition-registry' OR 1 = 1",
    "1 = 1",
    "WorkflowId",
    "WorkflowId =",
    "= 'x'",
    "WorkflowId = x",
    "WorkflowId = 'unterminated",
    "WorkflowId IN ()",
    "WorkflowId IS 'x'",
    "WorkflowId NOT = 'x'",
    "StartTime BETWEEN '2020' AND '2030'",
    "WorkflowId = 'x' AND",
    "OR WorkflowId = 'x'",
    "((((((((((((((((((WorkflowId = 'x'))))))))))))))))))",
    "WorkflowId = 'x'\x00",
    "WorkflowId = 'x' \u202e",
    "x" * 3000,
]


@pytest.mark.parametrize("text", INJECTIONS)
def test_each_way_out_is_refused_with_where(text: str) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        visibility_filter(text)
    message = str(refused.value)
    assert message.startswith("query: ")
    assert "column" in message or "end" in message or "longer than" in message


@pytest.mark.parametrize(
    ("text", "rebuilt"),
    [
        ("WorkflowId = 'x'", "WorkflowId = 'x'"),
        ('EngineStatus = "waiting"', "EngineStatus = 'waiting'"),
        ("WorkflowId = 'a'' OR ''1'' = ''1'", "WorkflowId = 'a\\' OR \\'1\\' = \\'1'"),
        ("WorkflowId = 'a\\' OR 1=1'", "WorkflowId = 'a\\' OR 1=1'"),
        ("WorkflowId = 'x' or WorkflowId != ''", "(WorkflowId = 'x' OR WorkflowId != '')"),
        ("EngineStep in ('a', \"b\")", "EngineStep IN ('a', 'b')"),
        ("EngineStep not in ('a')", "EngineStep NOT IN ('a')"),
        ("WorkflowId starts_with 'deploy-'", "WorkflowId STARTS_WITH 'deploy-'"),
        ("ParentWorkflowId is not null", "ParentWorkflowId IS NOT NULL"),
        (
            "StartTime > '2026-01-01' AND (EngineStatus = 'failed' OR EngineStatus = 'cancelled')",
            "(StartTime > '2026-01-01' AND ((EngineStatus = 'failed' OR EngineStatus = "
            "'cancelled')))",
        ),
    ],
)
def test_filters_are_rebuilt_with_the_engines_quoting(text: str, rebuilt: str) -> None:
    assert visibility_filter(text) == rebuilt


def _balanced(text: str) -> bool:
    depth, quoted = 0, False
    index = 0
    while index < len(text):
        char = text[index]
        if quoted:
            if char == "\\":
                index += 1
            elif char == "'":
                quoted = False
        elif char == "'":
            quoted = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return False
        index += 1
    return depth == 0 and not quoted


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from([*FIELDS, "EngineOrg", "AND", "OR", "IN", "NOT", "IS", "NULL"]),
            st.sampled_from(["=", "!=", "<", "(", ")", ",", "'", '"', "\\", "--", ";"]),
            st.text(max_size=8),
        ),
        max_size=12,
    ).map(" ".join)
)
def test_whatever_is_sent_the_result_stays_inside_its_parentheses(text: str) -> None:
    try:
        built = visibility_filter(text)
    except InvalidRequestError:
        return
    assert _balanced(built), built
    assert "EngineOrg" not in built.replace("\\'", "").split("'")[0::2]
