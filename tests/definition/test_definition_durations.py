"""Duration spellings and their canonical form."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.definition import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1s", timedelta(seconds=1)),
        ("500ms", timedelta(milliseconds=500)),
        ("5m", timedelta(minutes=5)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        (
            "1d2h3m4s5ms6us",
            timedelta(days=1, hours=2, minutes=3, seconds=4, milliseconds=5, microseconds=6),
        ),
        ("1.5s", timedelta(seconds=1.5)),
        ("0.1s", timedelta(milliseconds=100)),
        ("250µs", timedelta(microseconds=250)),
        ("0s", timedelta(0)),
        ("PT5M", timedelta(minutes=5)),
        ("P1D", timedelta(days=1)),
        ("P1W", timedelta(weeks=1)),
        ("P1DT12H", timedelta(days=1, hours=12)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("PT0.5S", timedelta(milliseconds=500)),
        ("PT1,5S", timedelta(milliseconds=1500)),
        ("pt5m", timedelta(minutes=5)),
        (" 5m ", timedelta(minutes=5)),
    ],
)
def test_spellings(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "",
            "expected a duration such as '30s', '5m', '1h30m', '1d' or 'PT5M', got an empty string",
        ),
        (
            "5",
            "expected a duration such as '30s', '5m', '1h30m', '1d' or 'PT5M', got '5' "
            "(add a unit: '5s')",
        ),
        ("5 m", "expected a duration such as '30s', '5m', '1h30m', '1d' or 'PT5M', got '5 m'"),
        ("-5m", "expected a duration such as '30s', '5m', '1h30m', '1d' or 'PT5M', got '-5m'"),
        ("5min", "expected a duration such as '30s', '5m', '1h30m', '1d' or 'PT5M', got '5min'"),
        ("1m1m", "invalid duration '1m1m': give each unit once, largest first (like '1h30m')"),
        ("30m1h", "invalid duration '30m1h': give each unit once, largest first (like '1h30m')"),
        ("P", "expected a duration such as '30s', '5m', '1h30m', '1d' or 'PT5M', got 'P'"),
        ("PT", "expected a duration such as '30s', '5m', '1h30m', '1d' or 'PT5M', got 'PT'"),
        (
            "P1Y",
            "invalid duration 'P1Y': years and months have no fixed length; use days (like 'P30D')",
        ),
        (
            "P2M",
            "invalid duration 'P2M': years and months have no fixed length; use days (like 'P30D')",
        ),
        ("9999999999d", "duration '9999999999d' is too long"),
    ],
)
def test_invalid_spellings(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="duration") as caught:
        parse_duration(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        (timedelta(0), "0s"),
        (timedelta(minutes=5), "5m"),
        (timedelta(seconds=300), "5m"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(seconds=90_000), "1d1h"),
        (timedelta(seconds=1.5), "1s500ms"),
        (timedelta(microseconds=1), "1us"),
        (timedelta(weeks=1), "7d"),
    ],
)
def test_canonical_form(value: timedelta, canonical: str) -> None:
    assert format_duration(value) == canonical


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10_000)))
def test_canonical_form_round_trips(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value


@given(st.integers(min_value=0, max_value=10**12))
def test_every_spelling_of_a_number_of_seconds_agrees(seconds: int) -> None:
    assert parse_duration(f"{seconds}s") == parse_duration(f"PT{seconds}S")
    assert format_duration(parse_duration(f"{seconds}s")) == format_duration(
        timedelta(seconds=seconds)
    )
