"""Schedule specs: validated here, field by field, before Temporal is asked.

Bad cron syntax, unknown time zones and malformed calendar rules are reported with the field
that holds them (``spec.cron[1]``, ``spec.time_zone``, ``spec.calendars[0].month``), the way a
person fixing a request needs them.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar, Final

from temporalio.client import (
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleRange,
    ScheduleSpec,
)

from engine.errors import InvalidFieldError

__all__ = ["Calendar", "InvalidScheduleError", "Spec", "to_temporal_spec", "validate_cron"]

_MACROS: Final = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
_MONTHS: Final = {
    m: i for i, m in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), 1)
}
_DAYS: Final = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split())}
_NOT_ZONES: Final = frozenset({"localtime", "posixrules", "Factory"})
_ITEM: Final = re.compile(r"^(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(\d+))?$")


class InvalidScheduleError(InvalidFieldError):
    """A schedule request with a bad field (the message and ``field`` name it)."""

    reason: ClassVar[str] = "INVALID_SCHEDULE"


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int] | None = None


_CRON_FIELDS: Final = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, _MONTHS),
    _Field("day of week", 0, 7, _DAYS),  # 7 is Sunday too, as in most crons
)
_CALENDAR_FIELDS: Final = {
    "second": _Field("second", 0, 59),
    "minute": _Field("minute", 0, 59),
    "hour": _Field("hour", 0, 23),
    "day_of_month": _Field("day of month", 1, 31),
    "month": _Field("month", 1, 12, _MONTHS),
    "day_of_week": _Field("day of week", 0, 6, _DAYS),
}


@dataclass(frozen=True)
class Calendar:
    """A calendar rule: each field a list of values or ranges ("1-5", "*/15"); "" = default."""

    second: str = ""
    minute: str = ""
    hour: str = ""
    day_of_month: str = ""
    month: str = ""
    day_of_week: str = ""
    comment: str = ""


@dataclass(frozen=True)
class Spec:
    """When a schedule fires."""

    cron: tuple[str, ...] = ()
    intervals: tuple[tuple[timedelta, timedelta], ...] = ()
    calendars: tuple[Calendar, ...] = ()
    time_zone: str = ""
    start_time: datetime | None = None
    end_time: datetime | None = None
    jitter: timedelta | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _value(text: str, spec: _Field, where: str) -> int:
    if spec.names and text.upper() in spec.names:
        return spec.names[text.upper()]
    if not text.isdigit():
        raise InvalidScheduleError(where, f"{text!r} is not a valid {spec.name}")
    number = int(text)
    if not spec.low <= number <= spec.high:
        raise InvalidScheduleError(
            where, f"{spec.name} {number} is out of range {spec.low}-{spec.high}"
        )
    return number


def _ranges(text: str, spec: _Field, where: str) -> list[ScheduleRange]:
    out: list[ScheduleRange] = []
    for item in text.split(","):
        match = _ITEM.match(item.strip())
        if match is None:
            raise InvalidScheduleError(where, f"{item!r} is not a value, range or step")
        body, step_text = match.groups()
        step = int(step_text) if step_text else 1
        if step == 0:
            raise InvalidScheduleError(where, f"step 0 in {item!r}")
        if body == "*":
            start, end = spec.low, spec.high
        elif "-" in body:
            first, last = body.split("-", 1)
            start, end = _value(first, spec, where), _value(last, spec, where)
            if start > end:
                raise InvalidScheduleError(where, f"range {body!r} runs backwards")
        else:
            start = _value(body, spec, where)
            end = spec.high if step_text else start
        out.append(ScheduleRange(start, end, step))
    return out


def validate_cron(expression: str, where: str) -> str:
    """Check a 5-field cron expression or macro, returning it as Temporal takes it.

    Raises:
        InvalidScheduleError: Naming the field and what is wrong.
    """
    text = expression.strip()
    if text.startswith("@"):
        if text.lower() not in _MACROS:
            raise InvalidScheduleError(
                where, f"unknown macro {text!r}: use one of {', '.join(sorted(_MACROS))}"
            )
        return text.lower()
    fields = text.split()
    if len(fields) != 5:
        raise InvalidScheduleError(
            where,
            f"{expression!r} has {len(fields)} fields; a cron expression has 5: "
            "minute hour day-of-month month day-of-week",
        )
    for value, spec in zip(fields, _CRON_FIELDS, strict=True):
        _ranges(value, spec, where)
    return text


@functools.cache
def _zone_names() -> frozenset[str]:
    """The IANA names this machine knows (tzdata), less the ones that are no zone at all."""
    return frozenset(zoneinfo.available_timezones()) - _NOT_ZONES


def _known_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone.

    ``zoneinfo.ZoneInfo`` alone would take any file under the zoneinfo directories, such as
    ``localtime`` (whatever zone the machine of the Temporal server is set to) or
    ``posix/Europe/Paris``; without a tz database to list, it is the only check there is.
    """
    names = _zone_names()
    if names:
        return name in names
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return name not in _NOT_ZONES


def _calendar(calendar: Calendar, where: str) -> ScheduleCalendarSpec:
    kwargs: dict[str, list[ScheduleRange]] = {}
    for name, spec in _CALENDAR_FIELDS.items():
        text = getattr(calendar, name).strip()
        if text:
            kwargs[name] = _ranges(text, spec, f"{where}.{name}")
    return ScheduleCalendarSpec(comment=calendar.comment or None, **kwargs)


def to_temporal_spec(spec: Spec) -> ScheduleSpec:
    """Validate a spec and build Temporal's.

    Raises:
        InvalidScheduleError: The first bad field, named.
    """
    if not (spec.cron or spec.intervals or spec.calendars):
        raise InvalidScheduleError(
            "spec", "give at least one cron expression, interval or calendar"
        )
    cron = [validate_cron(c, f"spec.cron[{i}]") for i, c in enumerate(spec.cron)]
    intervals = []
    for i, (every, offset) in enumerate(spec.intervals):
        if every < timedelta(seconds=1):
            raise InvalidScheduleError(f"spec.intervals[{i}].every", "must be at least 1s")
        if not timedelta(0) <= offset < every:
            raise InvalidScheduleError(
                f"spec.intervals[{i}].offset", "must be at least 0 and less than the interval"
            )
        intervals.append(ScheduleIntervalSpec(every=every, offset=offset or None))
    calendars = [_calendar(c, f"spec.calendars[{i}]") for i, c in enumerate(spec.calendars)]
    if spec.time_zone and not _known_zone(spec.time_zone):
        raise InvalidScheduleError(
            "spec.time_zone",
            f"unknown time zone {spec.time_zone!r}: use an IANA name such as 'Europe/Paris'",
        )
    if spec.start_time and spec.end_time and spec.end_time <= spec.start_time:
        raise InvalidScheduleError("spec.end_time", "must be after spec.start_time")
    if spec.jitter is not None and spec.jitter < timedelta(0):
        raise InvalidScheduleError("spec.jitter", "must not be negative")
    return ScheduleSpec(
        cron_expressions=cron,
        intervals=intervals,
        calendars=calendars,
        time_zone_name=spec.time_zone or None,
        start_at=spec.start_time,
        end_at=spec.end_time,
        jitter=spec.jitter,
    )


def describe_ranges(ranges: Sequence[ScheduleRange]) -> str:
    """Ranges back as text (``1-5/2,7``)."""
    parts = []
    for r in ranges:
        end = r.end if r.end >= r.start else r.start
        text = str(r.start) if end == r.start else f"{r.start}-{end}"
        parts.append(f"{text}/{r.step}" if r.step and r.step != 1 else text)
    return ",".join(parts)
