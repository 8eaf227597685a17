"""The closed set of strings a CHECK constraint allows a text column to hold.

``CHECK (kind IN ('a', 'b'))`` and ``CHECK (kind = ANY (ARRAY['a', 'b']))`` are stored
alike; PostgreSQL prints both as ``CHECK ((kind = ANY (ARRAY['a'::text, 'b'::text])))``
(a ``varchar`` column as ``((kind)::text = ANY ((ARRAY['a'::character varying, …])::text[]))``),
and ``CHECK (kind = 'a')`` as ``CHECK ((kind = 'a'::text))``. Anything else (an ``OR``,
a ``NOT``, a function) is not a closed set and gives ``None``.
"""

from __future__ import annotations

import re

_CAST = r"(?:::[a-z][a-z ]*(?:\[\])?)?"
_LITERAL = rf"'(?:[^']|'')*'{_CAST}"
_ANY = re.compile(
    rf"^CHECK \(\(\(?(?P<column>\"(?:[^\"]|\"\")+\"|[a-z_][a-z0-9_$]*)\)?{_CAST} = "
    rf"(?:ANY \(\(?ARRAY\[(?P<values>{_LITERAL}(?:, {_LITERAL})*)\]\)?{_CAST}\)"
    rf"|(?P<value>{_LITERAL}))\)\)$"
)
_ONE_LITERAL = re.compile(rf"'((?:[^']|'')*)'{_CAST}")


def _identifier(text: str) -> str:
    if text.startswith('"'):
        return text[1:-1].replace('""', '"')
    return text


def allowed_values(definition: str, column: str) -> tuple[str, ...] | None:
    """The strings ``definition`` (``pg_get_constraintdef()``) allows in ``column``."""
    match = _ANY.match(definition)
    if match is None or _identifier(match["column"]) != column:
        return None
    listed = match["values"] if match["values"] is not None else match["value"]
    return tuple(value.replace("''", "'") for value in _ONE_LITERAL.findall(listed))
