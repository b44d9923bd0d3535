"""Durations: ``500ms``, ``5m``, ``1h30m``, ``1d`` or ISO-8601 (``PT5M``, ``P1D``).

Every spelling parses to a :class:`datetime.timedelta`; :func:`format_duration` renders one in a
single canonical spelling (largest unit first, each unit once, no zero parts), so equivalent
spellings (``5m``, ``300s``, ``PT5M``) hash the same in canonical JSON.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

__all__ = ["DURATION_EXAMPLES", "DurationSyntaxError", "format_duration", "parse_duration"]

_MICROS = {
    "d": 86_400_000_000,
    "h": 3_600_000_000,
    "m": 60_000_000,
    "s": 1_000_000,
    "ms": 1_000,
    "us": 1,
    "µs": 1,
}
# Rank of each unit, to insist on largest-first order: `30m1h` is far more likely a typo than
# an intent, and one order keeps the language easy to read.
_RANK = {"d": 0, "h": 1, "m": 2, "s": 3, "ms": 4, "us": 5, "µs": 5}
_COMPACT_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|d|h|m|s)")
_COMPACT = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|us|µs|d|h|m|s))+")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")
_ISO = re.compile(
    r"P(?:(?P<W>\d+(?:[.,]\d+)?)W)?(?:(?P<D>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?:(?P<H>\d+(?:[.,]\d+)?)H)?(?:(?P<M>\d+(?:[.,]\d+)?)M)?(?:(?P<S>\d+(?:[.,]\d+)?)S)?)?"
)
_ISO_MICROS = {
    "W": 7 * 86_400_000_000,
    "D": 86_400_000_000,
    "H": 3_600_000_000,
    "M": 60_000_000,
    "S": 1_000_000,
}
# timedelta's own limit; anything past it is certainly a mistake, and must not overflow.
_MAX_MICROS = (timedelta.max.days + 1) * 86_400_000_000 - 1

DURATION_EXAMPLES = "such as '30s', '5m', '1h30m', '1d' or 'PT5M'"


class DurationSyntaxError(ValueError):
    """A duration that does not parse; ``str()`` is a message for a workflow author."""


def _scaled(number: str, unit_micros: int) -> int:
    # Decimal keeps `1.1s` exact: a float would make it 1.1000000000000000888 seconds.
    return int((Decimal(number.replace(",", ".")) * unit_micros).to_integral_value())


def parse_duration(text: str) -> timedelta:
    """Parse one duration spelling.

    Args:
        text: ``<number><unit>...`` with units ``d h m s ms us`` (largest first, e.g. ``1h30m``,
            ``1.5s``), or an ISO-8601 duration with weeks, days, hours, minutes and seconds.

    Returns:
        The duration; never negative.

    Raises:
        DurationSyntaxError: The text is not a duration.
    """
    stripped = text.strip()
    if not stripped:
        raise DurationSyntaxError(f"expected a duration {DURATION_EXAMPLES}, got an empty string")
    if stripped[0] in "Pp":
        micros = _parse_iso(stripped.upper(), text)
    elif _COMPACT.fullmatch(stripped):
        micros = 0
        last_rank = -1
        for match in _COMPACT_PART.finditer(stripped):
            number, unit = match.groups()
            rank = _RANK[unit]
            if rank <= last_rank:
                raise DurationSyntaxError(
                    f"invalid duration {text!r}: give each unit once, largest first (like '1h30m')"
                )
            last_rank = rank
            micros += _scaled(number, _MICROS[unit])
    else:
        hint = ""
        if _NUMBER.fullmatch(stripped):
            hint = f" (add a unit: '{stripped}s')"
        raise DurationSyntaxError(f"expected a duration {DURATION_EXAMPLES}, got {text!r}{hint}")
    if micros > _MAX_MICROS:
        raise DurationSyntaxError(f"duration {text!r} is too long")
    return timedelta(microseconds=micros)


def _parse_iso(upper: str, text: str) -> int:
    match = _ISO.fullmatch(upper)
    if match is None or upper.endswith(("P", "T")):
        if "Y" in upper.split("T", maxsplit=1)[0] or "M" in upper.split("T", maxsplit=1)[0]:
            raise DurationSyntaxError(
                f"invalid duration {text!r}: years and months have no fixed length; use days "
                "(like 'P30D')"
            )
        raise DurationSyntaxError(f"expected a duration {DURATION_EXAMPLES}, got {text!r}")
    return sum(
        _scaled(value, _ISO_MICROS[unit])
        for unit, value in match.groupdict().items()
        if value is not None
    )


def format_duration(value: timedelta) -> str:
    """Render a duration in its canonical spelling.

    Args:
        value: A non-negative duration.

    Returns:
        The shortest largest-unit-first spelling, such as ``1h30m``, ``1s500ms`` or ``0s``.
    """
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    if micros <= 0:
        # Negative durations are rejected at load; rendering them as 0s would hide a bug, so
        # only zero takes this branch in practice.
        return "0s" if micros == 0 else "-" + format_duration(-value)
    parts: list[str] = []
    for unit in ("d", "h", "m", "s", "ms", "us"):
        size = _MICROS[unit]
        count, micros = divmod(micros, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
