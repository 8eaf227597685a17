"""How a value the user gave is quoted back in a message: whole when short, cut when not.

A 10,000-character target or set name must not be printed back whole into a terminal,
an Event or a status condition; the first characters and the length say enough.
"""

from __future__ import annotations

ECHO_LIMIT = 64


def echo(value: str, limit: int = ECHO_LIMIT) -> str:
    """``value`` quoted as Python shows strings, cut to ``limit`` characters."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value)} characters)"
