"""The only module that drives Alembic: one step online, one step rendered as SQL.

Alembic is configured in code (no ``alembic.ini``): ``script_location`` is the set's
folder and the open connection is passed in ``config.attributes["connection"]``, already
inside the transaction the runner opened, so Alembic does not commit on its own.

Alembic publishes its running context through module-level proxies (``alembic.op``,
``alembic.context``), which one process cannot share between threads; a process-wide
lock serialises the Alembic calls of concurrent migrations in one process. Moves that
must not wait for each other run in processes of their own
(:func:`dbkeeper.migrate.isolated.migrate_isolated`).
"""

from __future__ import annotations

import io
import threading

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from dbkeeper.migrate.sets import MigrationSet

_ALEMBIC_LOCK = threading.RLock()
# Offline rendering needs a dialect, not a server: no host, user or password.
_OFFLINE_URL = "postgresql+psycopg://"


def make_config(
    migration_set: MigrationSet,
    connection: sa.Connection | None = None,
    output: io.StringIO | None = None,
) -> Config:
    config = Config(output_buffer=output) if output is not None else Config()
    config.set_main_option("script_location", str(migration_set.path).replace("%", "%%"))
    config.set_main_option("sqlalchemy.url", _OFFLINE_URL)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def current_revision(connection: sa.Connection) -> str | None:
    """The revision recorded in ``alembic_version``; ``None`` when nothing is applied."""
    heads = MigrationContext.configure(connection).get_current_heads()
    if len(heads) > 1:
        raise RuntimeError(
            f"alembic_version holds several revisions ({', '.join(heads)}); "
            "dbkeeper only moves databases on one linear chain"
        )
    return heads[0] if heads else None


def run_step(
    migration_set: MigrationSet,
    connection: sa.Connection,
    to_revision: str | None,
    downgrade: bool,
) -> None:
    """Move one revision up or down inside the connection's open transaction."""
    config = make_config(migration_set, connection)
    target = to_revision or "base"
    with _ALEMBIC_LOCK:
        if downgrade:
            command.downgrade(config, target)
        else:
            command.upgrade(config, target)


def render_step(
    migration_set: MigrationSet,
    from_revision: str | None,
    to_revision: str | None,
    downgrade: bool,
) -> str:
    """The SQL of one step, as Alembic's offline mode renders it."""
    output = io.StringIO()
    config = make_config(migration_set, output=output)
    with _ALEMBIC_LOCK:
        if downgrade:
            assert from_revision is not None
            command.downgrade(config, f"{from_revision}:{to_revision or 'base'}", sql=True)
        elif from_revision is None:
            assert to_revision is not None
            command.upgrade(config, to_revision, sql=True)
        else:
            command.upgrade(config, f"{from_revision}:{to_revision}", sql=True)
    return output.getvalue()
