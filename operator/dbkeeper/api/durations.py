"""Durations as people write them in a resource: ``5s``, ``15m``, ``1h30m``, ``30d``.

Units are days, hours, minutes and seconds, largest first, each at most once. The same
grammar is used by the typed model and, as a regular expression, by the CRD, so the API
server and the operator accept exactly the same strings.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

from dbkeeper.echo import echo

_UNITS: Final = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))

#: The grammar, without anchors. Written for both Python and the API server's RE2 (no
#: look-arounds), so it cannot say "not empty"; callers add a minimum length of 2.
DURATION_REGEX: Final = "".join(f"([0-9]{{1,6}}{unit})?" for unit, _ in _UNITS)
DURATION_PATTERN: Final = f"^{DURATION_REGEX}$"
DURATION_EXAMPLES: Final = "5s, 15m, 1h, 30d, 1h30m"

_COMPILED: Final = re.compile(DURATION_REGEX)


class DurationError(ValueError):
    """A string that is not a duration in dbkeeper's grammar."""


def parse_duration(text: str) -> timedelta:
    """``"1h30m"`` -> ``timedelta(hours=1, minutes=30)``; zero or garbage is an error."""
    match = _COMPILED.fullmatch(text) if text else None
    if match is None:
        raise DurationError(
            f"{echo(text)} is not a duration: write a number and a unit (d, h, m, s), "
            f"largest unit first, e.g. {DURATION_EXAMPLES}"
        )
    seconds = sum(
        int(group[:-1]) * factor
        for group, (_, factor) in zip(match.groups(), _UNITS, strict=True)
        if group is not None
    )
    if seconds == 0:
        raise DurationError(f"{echo(text)} is zero; a duration must be at least 1s")
    return timedelta(seconds=seconds)


_MILLISECONDS: Final = re.compile(r"([0-9]{1,9})ms")


def parse_fine_duration(text: str) -> timedelta:
    """The duration grammar of :func:`parse_duration`, or a whole number of milliseconds
    (``500ms``): for the operator's own timings, which tests and benchmarks set short."""
    millis = _MILLISECONDS.fullmatch(text)
    if millis is None:
        return parse_duration(text)
    value = timedelta(milliseconds=int(millis.group(1)))
    if not value:
        raise DurationError(f"{echo(text)} is zero; a duration must be at least 1ms")
    return value


def format_duration(value: timedelta) -> str:
    """The shortest string :func:`parse_duration` reads back as ``value`` (whole seconds)."""
    remaining = int(value.total_seconds())
    if remaining <= 0 or value != timedelta(seconds=remaining):
        raise DurationError(f"{value} cannot be written as a positive whole number of seconds")
    parts: list[str] = []
    for unit, factor in _UNITS:
        count, remaining = divmod(remaining, factor)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
