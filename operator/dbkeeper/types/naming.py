"""TypeScript names for database objects: ``given_name`` → ``givenName``.

A name that cannot be an identifier stays the database's own, quoted (``"my col"``);
two objects that would get the same top-level name are an error, not a silent suffix,
so a generated module never changes its names behind an application's back.
"""

from __future__ import annotations

import json
import re

_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
# Words a TypeScript variable cannot be named (reserved, or strict-mode reserved).
_RESERVED = frozenset(
    """
    break case catch class const continue debugger default delete do else enum export
    extends false finally for function if implements import in instanceof interface let
    new null package private protected public return static super switch this throw
    true try typeof var void while with yield await arguments eval
    """.split()  # noqa: SIM905 - a list of 48 words reads better as text
)


class NameClash(Exception):
    """Two database objects would get the same TypeScript name."""


def camel(name: str) -> str:
    """``given_name`` → ``givenName``; characters an identifier cannot hold split words."""
    words = [word for word in re.split(r"[^A-Za-z0-9$]+", name) if word]
    if not words:
        return "_"
    text = words[0][:1].lower() + words[0][1:] + "".join(w[:1].upper() + w[1:] for w in words[1:])
    return f"_{text}" if text[0].isdigit() else text


def pascal(name: str) -> str:
    return name[:1].upper() + name[1:]


def is_identifier(name: str) -> bool:
    return bool(_IDENTIFIER.match(name)) and name not in _RESERVED


def top_level(name: str, suffix: str = "") -> str:
    """A module-level variable name for ``name``: camel case, never a reserved word."""
    base = camel(name)
    variable = f"{base}{suffix}"
    return variable if is_identifier(variable) else f"{variable}Table"


def member_key(name: str) -> str:
    """A column's key in a table object: camel case when that is an identifier."""
    key = camel(name)
    return key if _IDENTIFIER.match(key) else json.dumps(name, ensure_ascii=False)


def member(owner: str, key: str) -> str:
    """``owner.key``, or ``owner["key"]`` for a quoted key."""
    return f"{owner}[{key}]" if key.startswith('"') else f"{owner}.{key}"


class Names:
    """Top-level names handed out so far, refusing the same name for two objects."""

    def __init__(self) -> None:
        self._owners: dict[str, str] = {}

    def claim(self, variable: str, owner: str) -> str:
        taken = self._owners.setdefault(variable, owner)
        if taken != owner:
            raise NameClash(
                f"{owner} and {taken} would both be named {variable} in TypeScript; rename "
                "one of them, or generate their schemas into separate modules with --schema"
            )
        return variable


def column_keys(columns: list[str]) -> dict[str, str]:
    """The key of each column of one table: camel case, or quoted when two would clash."""
    keys = {column: member_key(column) for column in columns}
    counts: dict[str, int] = {}
    for key in keys.values():
        counts[key] = counts.get(key, 0) + 1
    return {
        column: key if counts[key] == 1 else json.dumps(column, ensure_ascii=False)
        for column, key in keys.items()
    }
