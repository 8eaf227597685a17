"""Parse the short durations people write in specs and on the command line: ``5s``, ``15m``."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}


def parse_duration(text: str) -> timedelta:
    """``"1m30s"`` -> 90 seconds; raises ``ValueError`` naming what is allowed."""
    cleaned = text.strip()
    position = 0
    total = timedelta()
    for match in _PART.finditer(cleaned):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if not cleaned or position != len(cleaned):
        raise ValueError(
            f"{text!r} is not a duration: use a number with a unit ms, s, m, h or d, "
            "e.g. 500ms, 5s, 15m, 1h30m"
        )
    return total


def format_duration(value: timedelta) -> str:
    """The shortest readable form: ``5s``, ``15m``, ``250ms``."""
    ms = round(value.total_seconds() * 1000)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"
