"""Schedule specs, validated before Temporal is asked: every bad field is named (no server).

The same cases reach the API as INVALID_ARGUMENT (``test_scheduler_api.py``); here they are
checked one by one, fast, with what Temporal would receive for the good ones.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import ScheduleRange

from engine.errors import InvalidFieldError
from engine.scheduler import Calendar, InvalidScheduleError, Spec, validate_cron
from engine.scheduler._spec import describe_ranges, to_temporal_spec

EVERY_MINUTE = Spec(cron=("* * * * *",))


def _error(spec: Spec) -> InvalidScheduleError:
    with pytest.raises(InvalidScheduleError) as caught:
        to_temporal_spec(spec)
    return caught.value


# --------------------------------------------------------------------------- good specs


@pytest.mark.parametrize(
    ("expression", "sent"),
    [
        ("*/5 * * * *", "*/5 * * * *"),
        ("  0 9 * * 1-5 ", "0 9 * * 1-5"),
        ("0 9 * * MON-FRI", "0 9 * * MON-FRI"),
        ("0 9 * * mon,wed,fri", "0 9 * * mon,wed,fri"),
        ("0 0 1 jan,jul *", "0 0 1 jan,jul *"),
        ("0 12 * * 7", "0 12 * * 7"),  # 7 is Sunday too
        ("5/15 * * * *", "5/15 * * * *"),
        ("0-30/10 8-18 1,15 * *", "0-30/10 8-18 1,15 * *"),
        ("0 0 31 2 *", "0 0 31 2 *"),  # valid syntax that never fires
        ("@hourly", "@hourly"),
        ("@Daily", "@daily"),
        ("@MIDNIGHT", "@midnight"),
        ("@weekly", "@weekly"),
        ("@monthly", "@monthly"),
        ("@yearly", "@yearly"),
        ("@annually", "@annually"),
    ],
)
def test_cron_expressions_and_macros_are_accepted(expression: str, sent: str) -> None:
    assert validate_cron(expression, "spec.cron[0]") == sent


def test_a_full_spec_becomes_temporals() -> None:
    start = datetime(2027, 1, 1, tzinfo=UTC)
    spec = to_temporal_spec(
        Spec(
            cron=("*/5 * * * *", "@Daily"),
            intervals=(
                (timedelta(hours=1), timedelta(minutes=15)),
                (timedelta(seconds=1), timedelta(0)),
            ),
            calendars=(
                Calendar(hour="9", minute="0,30", day_of_week="MON-FRI", comment="office"),
                Calendar(second="*/20", month="DEC", day_of_month="24-26"),
            ),
            time_zone="Europe/Paris",
            start_time=start,
            end_time=start + timedelta(days=30),
            jitter=timedelta(seconds=30),
        )
    )
    assert spec.cron_expressions == ["*/5 * * * *", "@daily"]
    assert [(i.every, i.offset) for i in spec.intervals] == [
        (timedelta(hours=1), timedelta(minutes=15)),
        (timedelta(seconds=1), None),  # no offset: Temporal's default
    ]
    office, christmas = spec.calendars
    assert list(office.hour) == [ScheduleRange(9, 9, 1)]
    assert list(office.minute) == [ScheduleRange(0, 0, 1), ScheduleRange(30, 30, 1)]
    assert list(office.day_of_week) == [ScheduleRange(1, 5, 1)]
    assert office.comment == "office"
    assert list(christmas.second) == [ScheduleRange(0, 59, 20)]
    assert list(christmas.month) == [ScheduleRange(12, 12, 1)]
    assert list(christmas.day_of_month) == [ScheduleRange(24, 26, 1)]
    assert describe_ranges(office.minute) == "0,30"
    assert describe_ranges(christmas.second) == "0-59/20"
    assert spec.time_zone_name == "Europe/Paris"
    assert spec.start_at == start and spec.end_at == start + timedelta(days=30)
    assert spec.jitter == timedelta(seconds=30)


@pytest.mark.parametrize(
    "zone", ["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata", "Etc/GMT+5", "US/Pacific"]
)
def test_iana_time_zones_are_accepted(zone: str) -> None:
    assert to_temporal_spec(Spec(cron=("0 9 * * *",), time_zone=zone)).time_zone_name == zone


# --------------------------------------------------------------------------- bad specs


def test_an_error_names_its_field_as_every_field_error_does() -> None:
    error = _error(Spec(cron=("61 * * * *",)))
    assert isinstance(error, InvalidFieldError)
    assert error.code == "INVALID_ARGUMENT" and error.reason == "INVALID_SCHEDULE"
    assert error.field == "spec.cron[0]"
    assert error.description == "minute 61 is out of range 0-59"
    assert str(error) == "spec.cron[0]: minute 61 is out of range 0-59"


def test_a_spec_must_say_when() -> None:
    error = _error(Spec(time_zone="Europe/Paris"))
    assert error.field == "spec"
    assert "at least one cron expression, interval or calendar" in error.description


@pytest.mark.parametrize(
    ("expression", "description"),
    [
        ("", "has 0 fields; a cron expression has 5"),
        ("* * * *", "has 4 fields; a cron expression has 5"),
        ("0 * * * * *", "has 6 fields; a cron expression has 5"),  # no seconds field
        ("CRON_TZ=Europe/Paris 0 9 * * *", "has 6 fields"),  # the zone is spec.time_zone
        ("60 * * * *", "minute 60 is out of range 0-59"),
        ("* 24 * * *", "hour 24 is out of range 0-23"),
        ("* * 0 * *", "day of month 0 is out of range 1-31"),
        ("* * 32 * *", "day of month 32 is out of range 1-31"),
        ("* * * 13 *", "month 13 is out of range 1-12"),
        ("* * * * 8", "day of week 8 is out of range 0-7"),
        ("*/0 * * * *", "step 0 in '*/0'"),
        ("30-10 * * * *", "range '30-10' runs backwards"),
        ("x * * * *", "'x' is not a valid minute"),
        ("* * * FOO *", "'FOO' is not a valid month"),
        ("* * * * MON-FUN", "'FUN' is not a valid day of week"),
        ("1,,2 * * * *", "'' is not a value, range or step"),
        ("*/5/2 * * * *", "'*/5/2' is not a value, range or step"),
        ("@every 5m", "unknown macro '@every 5m'"),
        ("@reboot", "unknown macro '@reboot'"),
    ],
)
def test_bad_cron_syntax_names_the_expression(expression: str, description: str) -> None:
    error = _error(Spec(cron=("@hourly", expression)))
    assert error.field == "spec.cron[1]"
    assert description in error.description


@pytest.mark.parametrize(
    ("every", "offset", "field", "description"),
    [
        (timedelta(0), timedelta(0), "spec.intervals[0].every", "must be at least 1s"),
        (timedelta(milliseconds=500), timedelta(0), "spec.intervals[0].every", "at least 1s"),
        (timedelta(seconds=-60), timedelta(0), "spec.intervals[0].every", "at least 1s"),
        (timedelta(minutes=1), timedelta(minutes=1), "spec.intervals[0].offset", "less than"),
        (timedelta(minutes=1), timedelta(hours=1), "spec.intervals[0].offset", "less than"),
        (timedelta(minutes=1), timedelta(seconds=-1), "spec.intervals[0].offset", "at least 0"),
    ],
)
def test_bad_intervals(every: timedelta, offset: timedelta, field: str, description: str) -> None:
    error = _error(Spec(intervals=((every, offset),)))
    assert error.field == field
    assert description in error.description


@pytest.mark.parametrize(
    ("calendar", "field", "description"),
    [
        (Calendar(second="60"), "second", "second 60 is out of range 0-59"),
        (Calendar(minute="75"), "minute", "minute 75 is out of range 0-59"),
        (Calendar(hour="9-25"), "hour", "hour 25 is out of range 0-23"),
        (Calendar(day_of_month="0"), "day_of_month", "day of month 0 is out of range 1-31"),
        (Calendar(month="JANUARY"), "month", "'JANUARY' is not a valid month"),
        (Calendar(day_of_week="7"), "day_of_week", "day of week 7 is out of range 0-6"),
        (Calendar(hour="*/0"), "hour", "step 0"),
        (Calendar(hour="nine"), "hour", "'nine' is not a valid hour"),
    ],
)
def test_bad_calendar_fields_are_named(calendar: Calendar, field: str, description: str) -> None:
    error = _error(Spec(calendars=(Calendar(hour="9"), calendar)))
    assert error.field == f"spec.calendars[1].{field}"
    assert description in error.description


@pytest.mark.parametrize(
    "zone",
    [
        "Mars/Olympus_Mons",
        "Europe/paris",  # the names are case-sensitive
        "Paris",
        "CEST",
        "localtime",  # a file of the server's machine, not a zone
        "posixrules",
        "posix/Europe/Paris",
        "/etc/localtime",
        "../zoneinfo/UTC",
        "Europe/Paris ",
    ],
)
def test_unknown_time_zones_are_rejected(zone: str) -> None:
    error = _error(Spec(cron=("0 9 * * *",), time_zone=zone))
    assert error.field == "spec.time_zone"
    assert (
        error.description == f"unknown time zone {zone!r}: use an IANA name such as 'Europe/Paris'"
    )


def test_the_end_must_come_after_the_start() -> None:
    start = datetime(2027, 1, 1, tzinfo=UTC)
    for end in (start, start - timedelta(seconds=1)):
        error = _error(Spec(cron=("@daily",), start_time=start, end_time=end))
        assert (error.field, error.description) == (
            "spec.end_time",
            "must be after spec.start_time",
        )


def test_jitter_must_not_be_negative() -> None:
    error = _error(Spec(cron=("@daily",), jitter=timedelta(seconds=-1)))
    assert (error.field, error.description) == ("spec.jitter", "must not be negative")
    assert to_temporal_spec(Spec(cron=("@daily",), jitter=timedelta(0))).jitter == timedelta(0)


def test_the_first_bad_field_is_reported() -> None:
    """Cron expressions are checked first, then intervals, calendars, the zone, the bounds."""
    error = _error(
        Spec(
            cron=("@daily", "bad"),
            intervals=((timedelta(0), timedelta(0)),),
            time_zone="Nowhere/Land",
        )
    )
    assert error.field == "spec.cron[1]"
    assert _error(
        Spec(cron=("@daily",), intervals=((timedelta(0), timedelta(0)),), time_zone="Nowhere")
    ).field == ("spec.intervals[0].every")
    assert _error(Spec(cron=("@daily",), time_zone="Nowhere")).field == "spec.time_zone"


def test_every_minute_is_a_valid_spec() -> None:
    assert to_temporal_spec(EVERY_MINUTE).cron_expressions == ["* * * * *"]
