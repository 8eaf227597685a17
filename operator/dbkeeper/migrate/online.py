"""Online revisions: what a failed concurrent index build leaves behind, and its cleanup.

A revision that declares ``dbkeeper_transaction = False`` runs outside a transaction, so
``CREATE INDEX CONCURRENTLY`` can run in it. A concurrent build that fails or whose
session ends half-way does not roll back: it leaves its index in the catalog, INVALID
(``pg_index.indisvalid`` false), still slowing every write to the table and blocking the
next ``CREATE INDEX CONCURRENTLY`` of that name. A failed ``REINDEX INDEX CONCURRENTLY
name`` leaves ``<name>_ccnew`` (the copy that was being built) or, if it failed after the
swap, ``<name>_ccold`` (the old index it could not drop), both INVALID.

Before each attempt of an online revision the runner drops those leftovers of that
revision's own statements, found by parsing the names out of its rendered SQL. Only
INVALID indexes are dropped, never a valid one, and never one whose build is still in
progress in another session.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa

# PostgreSQL keeps NAMEDATALEN - 1 bytes of an identifier and drops the rest.
NAME_LIMIT = 63
_REINDEX_LABELS = ("ccnew", "ccold")

_TOKEN = re.compile(
    r"""
      (?P<space>\s+)
    | (?P<comment>--[^\n]*|/\*.*?\*/)
    | (?P<quoted>"(?:[^"]|"")*")
    | (?P<string>[Ee]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*')
    | (?P<dollar>\$(?P<tag>[A-Za-z_][A-Za-z_0-9]*|)\$.*?\$(?P=tag)\$)
    | (?P<word>[A-Za-z_\x80-\uffff][A-Za-z_0-9$\x80-\uffff]*)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class _Token:
    text: str
    """An identifier as PostgreSQL reads it (unquoted: lower case), or the character."""
    keyword: str | None
    """Upper case of an unquoted word: what it says as a keyword."""


@dataclass(frozen=True)
class ConcurrentBuild:
    """One statement that builds an index concurrently, and the index it names."""

    kind: Literal["create", "reindex"]
    index: str
    """The index's name as PostgreSQL stores it."""
    schema: str | None
    """Written in the statement (the table's schema for ``create``), else ``None``."""
    table: str | None = None
    """The table a ``create`` builds on; ``None`` for ``reindex``."""

    @property
    def relation(self) -> str:
        """What to look up with ``to_regclass``: the table (create) or the index (reindex)."""
        name = self.table if self.kind == "create" and self.table is not None else self.index
        return ".".join(quote_identifier(part) for part in (self.schema, name) if part)


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def clip_name(name: str, limit: int = NAME_LIMIT) -> str:
    """``name`` cut to ``limit`` bytes of UTF-8 without splitting a character, as
    PostgreSQL does with a long identifier."""
    return name.encode()[:limit].decode(errors="ignore")


def _tokens(sql: str) -> list[_Token]:
    found: list[_Token] = []
    for match in _TOKEN.finditer(sql):
        group = match.lastgroup
        text = match.group()
        if group in ("space", "comment"):
            continue
        if group == "quoted":
            found.append(_Token(clip_name(text[1:-1].replace('""', '"')), None))
        elif group == "word":
            found.append(_Token(clip_name(text.lower()), text.upper()))
        elif group in ("string", "dollar"):
            found.append(_Token("'", None))  # a literal: never a name nor a keyword
        else:
            found.append(_Token(text, None))
    return found


def _statements(sql: str) -> list[list[_Token]]:
    statements: list[list[_Token]] = [[]]
    for token in _tokens(sql):
        if token.text == ";" and token.keyword is None:
            statements.append([])
        else:
            statements[-1].append(token)
    return [statement for statement in statements if statement]


def _is_name(token: _Token) -> bool:
    return token.keyword is not None or (token.text not in ("'", "(", ")", ".", ",", ";"))


class _Reader:
    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.at = 0

    def keyword(self, *words: str) -> bool:
        """Consume ``words`` if they come next."""
        ahead = self.tokens[self.at : self.at + len(words)]
        if len(ahead) == len(words) and all(
            t.keyword == w for t, w in zip(ahead, words, strict=True)
        ):
            self.at += len(words)
            return True
        return False

    def symbol(self, text: str) -> bool:
        if self.at < len(self.tokens) and self.tokens[self.at] == _Token(text, None):
            self.at += 1
            return True
        return False

    def name(self) -> tuple[str | None, str] | None:
        """A possibly qualified name: (schema or None, name); a database part is dropped."""
        parts: list[str] = []
        while self.at < len(self.tokens) and _is_name(self.tokens[self.at]):
            parts.append(self.tokens[self.at].text)
            self.at += 1
            if not self.symbol("."):
                break
        if not parts:
            return None
        return (parts[-2] if len(parts) > 1 else None), parts[-1]

    def options(self) -> list[list[_Token]]:
        """A parenthesised option list ``(a, b c, ...)``, each option's tokens."""
        if not self.symbol("("):
            return []
        options: list[list[_Token]] = [[]]
        depth = 1
        while self.at < len(self.tokens):
            token = self.tokens[self.at]
            self.at += 1
            if token.keyword is None and token.text == "(":
                depth += 1
            elif token.keyword is None and token.text == ")":
                depth -= 1
                if depth == 0:
                    break
            elif token.keyword is None and token.text == "," and depth == 1:
                options.append([])
                continue
            options[-1].append(token)
        return options


def _create(reader: _Reader) -> ConcurrentBuild | None:
    reader.keyword("UNIQUE")
    if not reader.keyword("INDEX", "CONCURRENTLY"):
        return None
    reader.keyword("IF", "NOT", "EXISTS")
    if reader.keyword("ON"):
        return None  # unnamed: PostgreSQL picks the name, so none can be looked for
    named = reader.name()
    if named is None or named[0] is not None or not reader.keyword("ON"):
        return None
    reader.keyword("ONLY")
    table = reader.name()
    if table is None:
        return None
    return ConcurrentBuild("create", named[1], schema=table[0], table=table[1])


_FALSE = frozenset({"FALSE", "OFF", "0"})


def _reindex(reader: _Reader) -> ConcurrentBuild | None:
    concurrently = False
    for option in reader.options():
        if option and option[0].keyword == "CONCURRENTLY":
            value = (option[1].keyword or option[1].text.upper()) if len(option) > 1 else "TRUE"
            concurrently = value not in _FALSE
    if not reader.keyword("INDEX"):
        return None
    if reader.keyword("CONCURRENTLY"):
        concurrently = True
    named = reader.name()
    if not concurrently or named is None:
        return None
    return ConcurrentBuild("reindex", named[1], schema=named[0])


def concurrent_builds(sql: str) -> list[ConcurrentBuild]:
    """Each ``CREATE [UNIQUE] INDEX CONCURRENTLY [IF NOT EXISTS] name ON table`` and
    ``REINDEX [(...)] INDEX CONCURRENTLY name`` in ``sql``, in order. Comments and
    string literals are skipped; an index created without a name is not listed."""
    builds: list[ConcurrentBuild] = []
    for statement in _statements(sql):
        reader = _Reader(statement)
        build = None
        if reader.keyword("CREATE"):
            build = _create(reader)
        elif reader.keyword("REINDEX"):
            build = _reindex(reader)
        if build is not None:
            builds.append(build)
    return builds


def is_reindex_leftover(candidate: str, index: str) -> bool:
    """Whether ``candidate`` is a name ``REINDEX INDEX CONCURRENTLY index`` gives its
    transient indexes: ``<index>_ccnew``, ``_ccnew1``, ... or ``_ccold``..., with
    ``index`` shortened so that the whole stays within the name limit."""
    match = re.fullmatch(r"(?P<stem>.*)_(?P<label>ccnew|ccold)(?P<number>[0-9]*)", candidate)
    if match is None or match.group("label") not in _REINDEX_LABELS:
        return False
    label = match.group("label") + match.group("number")
    return match.group("stem") == clip_name(index, NAME_LIMIT - len(label) - 1)


# The INVALID indexes of one table whose build is not running in some session right now.
_INVALID_ON_TABLE = sa.text(
    """
    SELECT n.nspname, c.relname, c.relnamespace
    FROM pg_index i
    JOIN pg_class c ON c.oid = i.indexrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE i.indrelid = :table AND NOT i.indisvalid
      AND NOT EXISTS (
          SELECT 1 FROM pg_stat_progress_create_index p WHERE p.index_relid = i.indexrelid
      )
    ORDER BY c.relname
    """
)
_TABLE = sa.text("SELECT to_regclass(:relation)::oid")
_TABLE_OF_INDEX = sa.text(
    "SELECT i.indrelid, c.relnamespace FROM pg_index i JOIN pg_class c "
    "ON c.oid = i.indexrelid WHERE i.indexrelid = to_regclass(:relation)"
)


def _leftovers_of(connection: sa.Connection, build: ConcurrentBuild) -> list[tuple[str, str]]:
    if build.kind == "create":
        table = connection.execute(_TABLE, {"relation": build.relation}).scalar()
        if table is None:
            return []
        rows = connection.execute(_INVALID_ON_TABLE, {"table": table}).all()
        # The index of a CREATE INDEX is in its table's schema: the table decides.
        return [(str(schema), str(name)) for schema, name, _ in rows if name == build.index]
    original = connection.execute(_TABLE_OF_INDEX, {"relation": build.relation}).first()
    if original is None:
        return []
    table, namespace = original
    rows = connection.execute(_INVALID_ON_TABLE, {"table": table}).all()
    # The transient indexes of a REINDEX are in the schema of the index rebuilt.
    return [
        (str(schema), str(name))
        for schema, name, where in rows
        if where == namespace and is_reindex_leftover(str(name), build.index)
    ]


def invalid_leftovers(connection: sa.Connection, sql: str) -> list[tuple[str, str]]:
    """(schema, index) of each INVALID index that a failed concurrent build of one of
    ``sql``'s statements left behind, without repeats."""
    found: list[tuple[str, str]] = []
    builds = concurrent_builds(sql)
    if not builds:
        return found
    with connection.begin():
        for build in builds:
            for item in _leftovers_of(connection, build):
                if item not in found:
                    found.append(item)
    return found


def drop_invalid_leftovers(connection: sa.Connection, sql: str) -> list[str]:
    """Drop what :func:`invalid_leftovers` finds, each with ``DROP INDEX CONCURRENTLY IF
    EXISTS``; the names dropped (``schema.index``). ``connection`` must be in autocommit."""
    dropped: list[str] = []
    for schema, name in invalid_leftovers(connection, sql):
        with connection.begin():
            connection.exec_driver_sql(
                "DROP INDEX CONCURRENTLY IF EXISTS "
                f"{quote_identifier(schema)}.{quote_identifier(name)}",
                execution_options={"no_parameters": True},
            )
        dropped.append(f"{schema}.{name}")
    return dropped
