"""Generate the TypeScript module of a live database: connect, read, render.

It only reads, in a read-only session, so an application's own role will do once it may
read the catalog and the migrator's bookkeeping (``dbkeeper wait`` needs the same).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dbkeeper.conninfo import ConnInfo
from dbkeeper.types.catalog import Catalog, application_schemas, read_catalog
from dbkeeper.types.typescript import Origin, render_module
from dbkeeper.wait import read_position

if TYPE_CHECKING:
    import psycopg
    from psycopg.rows import TupleRow

APPLICATION_NAME = "dbkeeper types"
# read_position() compares the database with a revision; "head" is never a revision id
# (Alembic reserves it), so only the position is used.
_NO_REVISION = "head"


class NotMigrated(Exception):
    """The database has no migration set to name in the module's header."""


@dataclass(frozen=True)
class Generated:
    origin: Origin
    catalog: Catalog
    text: str


def read_origin(conn: psycopg.Connection[TupleRow]) -> Origin:
    """The set and revision of the database, from ``alembic_version`` and its history."""
    position = read_position(conn, _NO_REVISION)
    if position.problem is not None:
        raise NotMigrated(f"database {conn.info.dbname} {position.problem}")
    if position.migration_set is None:
        raise NotMigrated(f"database {conn.info.dbname} has no successful move in its history")
    return Origin(position.migration_set, position.revision)


def generate_from(conn: psycopg.Connection[TupleRow], schemas: Sequence[str] = ()) -> Generated:
    """The module of the database of ``conn``: ``schemas``, or every application schema."""
    origin = read_origin(conn)
    catalog = read_catalog(conn, list(schemas) or application_schemas(conn))
    return Generated(origin, catalog, render_module(catalog, origin))


def connect(conninfo: ConnInfo | str) -> psycopg.Connection[TupleRow]:
    """A read-only autocommit session (``""``: libpq's ``PG*`` variables)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    dsn = conninfo.dsn() if isinstance(conninfo, ConnInfo) else conninfo
    params = conninfo_to_dict(dsn)
    params["application_name"] = APPLICATION_NAME
    given = str(params.get("options") or "")
    params["options"] = f"{given} -c default_transaction_read_only=on".strip()
    return psycopg.connect(make_conninfo("", **params), autocommit=True)


def generate(conninfo: ConnInfo | str, schemas: Sequence[str] = ()) -> Generated:
    with connect(conninfo) as conn:
        return generate_from(conn, schemas)
