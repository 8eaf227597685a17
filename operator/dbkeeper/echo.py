"""How a value the user gave is quoted back in a message: whole when short, cut when not.

A 10,000-character target or set name must not be printed back whole into a terminal,
an Event or a status condition; the first characters and the length say enough.
"""

from __future__ import annotations

ECHO_LIMIT = 64


def echo(value: object, limit: int = ECHO_LIMIT) -> str:
    """``value`` quoted as Python shows it (``repr``), cut to about ``limit`` characters."""
    if isinstance(value, str):
        if len(value) <= limit:
            return repr(value)
        return f"{value[:limit]!r}… ({len(value)} characters)"
    shown = repr(value)
    return shown if len(shown) <= limit else f"{shown[:limit]}… ({len(shown)} characters)"
