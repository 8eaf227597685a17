"""The only module that drives Alembic: one step online, one step rendered as SQL.

Alembic is configured in code (no ``alembic.ini``): ``script_location`` is the set's
folder and the open connection is passed in ``config.attributes["connection"]``, already
inside the transaction the runner opened, so Alembic does not commit on its own.

An online revision (``dbkeeper_transaction = False``) is not run through ``env.py``: its
``env.py`` would wrap it in a transaction. Its ``upgrade()`` or ``downgrade()`` runs
under an Alembic context of dbkeeper's own on the session in autocommit, and the runner
then writes ``alembic_version`` (:func:`stamp`) with the history row in one transaction.
Alembic's ``autocommit_block()`` cannot work inside the runner's transaction (it commits
only a transaction Alembic began itself): :class:`AutocommitBlockUnsupported` says what
to do instead.

Alembic publishes its running context through module-level proxies (``alembic.op``,
``alembic.context``), which one process cannot share between threads; a process-wide
lock serialises the Alembic calls of concurrent migrations in one process. Moves that
must not wait for each other run in processes of their own
(:func:`dbkeeper.migrate.isolated.migrate_isolated`).
"""

from __future__ import annotations

import functools
import io
import re
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from dbkeeper.migrate.sets import MigrationSet

_ALEMBIC_LOCK = threading.RLock()
# Offline rendering needs a dialect, not a server: no host, user or password.
_OFFLINE_URL = "postgresql+psycopg://"
# How Alembic's offline mode frames a step (``impl.emit_begin``/``emit_commit``).
_BEGIN = "BEGIN;"
_COMMIT = "COMMIT;"
# Where each revision starts in Alembic's offline output (``MigrationContext``).
_RUNNING = re.compile(r"^-- Running (?:upgrade|downgrade) ", re.MULTILINE)


class AutocommitBlockUnsupported(RuntimeError):
    """A revision used ``op.get_context().autocommit_block()``."""

    def __init__(self) -> None:
        super().__init__(
            "op.get_context().autocommit_block() cannot run under dbkeeper, which runs "
            "each revision in a transaction of its own: put the statements that must run "
            "outside a transaction in a revision of their own that declares "
            "dbkeeper_transaction = False (an online revision, see docs/migrations.md) "
            "and drop the autocommit_block"
        )


@contextmanager
def _autocommit_block_explained() -> Iterator[None]:
    try:
        yield
    except AssertionError as exc:
        frames = traceback.walk_tb(exc.__traceback__)
        if any(frame.f_code.co_name == "autocommit_block" for frame, _ in frames):
            raise AutocommitBlockUnsupported() from exc
        raise


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
    """The revision recorded in ``alembic_version``; ``None`` when nothing is applied.

    The table is found on the search path, as Alembic's default context finds it, with
    two short queries instead of Alembic's catalog inspection (which a move would pay
    once more on top of its own)."""
    found = connection.exec_driver_sql("SELECT to_regclass('alembic_version')::text").scalar()
    if found is None:
        return None
    heads = [
        str(row[0])
        for row in connection.exec_driver_sql(f"SELECT version_num FROM {found}").fetchall()
    ]
    if len(heads) > 1:
        raise RuntimeError(
            f"alembic_version holds several revisions ({', '.join(heads)}); "
            "dbkeeper only moves databases on one linear chain"
        )
    return heads[0] if heads else None


@functools.lru_cache(maxsize=8)
def _scripts(path: str, checksums: tuple[str, ...]) -> ScriptDirectory:
    """The set's revision scripts, read once per version of the set (``checksums``): a
    move of n revisions would otherwise import every revision file n times."""
    config = Config()
    config.set_main_option("script_location", path.replace("%", "%%"))
    return ScriptDirectory.from_config(config)


def _trust_version_table(environment: EnvironmentContext, from_revision: str) -> None:
    """Let a step whose start is a revision skip Alembic's reads of ``alembic_version``:
    the runner read it when the move started and holds the migration lock, so the table
    exists and holds ``from_revision``. Alembic looks the table up and reads it at the
    start of every run, so a move of n steps would pay that n times instead of once."""
    run = environment.run_migrations

    def run_migrations(**kw: Any) -> None:
        context = environment.get_context()
        context._has_version_table = lambda: True  # type: ignore[method-assign]
        context.get_current_heads = lambda: (from_revision,)  # type: ignore[method-assign]
        run(**kw)

    # The alembic.context proxy env.py calls forwards to this instance's attribute.
    environment.run_migrations = run_migrations  # type: ignore[method-assign]


def run_step(
    migration_set: MigrationSet,
    connection: sa.Connection,
    to_revision: str | None,
    downgrade: bool,
    *,
    from_revision: str | None = None,
) -> None:
    """Move one revision up or down inside the connection's open transaction.

    As ``alembic upgrade``/``downgrade`` do, with the set's scripts read once for a
    whole move: env.py runs for each step, on ``connection``. ``from_revision`` is the
    revision the runner read from ``alembic_version`` (``None``: base or unknown).
    """
    config = make_config(migration_set, connection)
    with _ALEMBIC_LOCK, _autocommit_block_explained():
        _run_env(
            config,
            migration_set,
            to_revision,
            downgrade,
            known_start=from_revision,
        )


def _run_env(
    config: Config,
    migration_set: MigrationSet,
    to_revision: str | None,
    downgrade: bool,
    *,
    as_sql: bool = False,
    from_revision: str | None = None,
    known_start: str | None = None,
) -> None:
    """What ``alembic upgrade``/``downgrade`` (``--sql FROM:TO``) do, on the cached
    scripts of the set."""
    checksums = tuple(revision.checksum for revision in migration_set.revisions)
    script = _scripts(str(migration_set.path), checksums)
    target = to_revision or "base"

    def steps(current: Any, context: Any) -> Any:
        if downgrade:
            return script._downgrade_revs(target, current)
        return script._upgrade_revs(target, current)

    with EnvironmentContext(
        config,
        script,
        fn=steps,
        as_sql=as_sql,
        starting_rev=from_revision,
        destination_rev=target,
    ) as environment:
        if known_start is not None:
            _trust_version_table(environment, known_start)
        script.run_env()


def run_online_step(
    migration_set: MigrationSet, connection: sa.Connection, revision: str, downgrade: bool
) -> None:
    """Run ``revision``'s ``upgrade()`` (or ``downgrade()``) on ``connection``, which is
    in autocommit; ``alembic_version`` is left to :func:`stamp`."""
    script = ScriptDirectory(str(migration_set.path))
    module = script.get_revision(revision).module
    function: Callable[[], None] = module.downgrade if downgrade else module.upgrade
    with _ALEMBIC_LOCK, _autocommit_block_explained():
        context = MigrationContext.configure(connection)
        with connection.begin(), Operations.context(context):
            function()


def stamp(migration_set: MigrationSet, connection: sa.Connection, revision: str | None) -> None:
    """Record ``revision`` (``None``: base) in ``alembic_version``, creating the table if
    needed, inside the connection's open transaction."""
    script = ScriptDirectory(str(migration_set.path))
    with _ALEMBIC_LOCK:
        MigrationContext.configure(connection).stamp(script, revision or "base")


def render_step(
    migration_set: MigrationSet,
    from_revision: str | None,
    to_revision: str | None,
    downgrade: bool,
    online: bool = False,
) -> str:
    """The SQL of one step as Alembic's offline mode renders it, framed the way dbkeeper
    runs it: in ``BEGIN``/``COMMIT``, or (``online``) in none, whatever ``env.py`` says
    about transactions."""
    return _framed(_rendered(migration_set, from_revision, to_revision, downgrade), online)


def render_move(
    migration_set: MigrationSet,
    from_revision: str | None,
    to_revision: str | None,
    downgrade: bool,
    online: Sequence[bool],
) -> list[str] | None:
    """The SQL of each step of a whole move (``online``: one flag per step), from one
    offline run instead of one per step, framed as :func:`render_step` frames it.

    Alembic marks where each revision starts (``-- Running upgrade A -> B``); the move's
    output is cut there. What env.py writes before the first revision (the version
    table of a move from base) belongs to the first step, as it does when the first step
    is rendered alone. None when the output does not have one mark per step (an env.py
    that renders otherwise): render the steps one by one then.
    """
    if not online:
        return []
    sql = _rendered(migration_set, from_revision, to_revision, downgrade)
    starts = [match.start() for match in _RUNNING.finditer(sql)]
    if len(starts) != len(online):
        return None
    ends = [*starts[1:], len(sql)]
    parts = [sql[start:end] for start, end in zip(starts, ends, strict=True)]
    parts[0] = sql[: starts[0]] + parts[0]
    return [_framed(_unframed(part), flag) for part, flag in zip(parts, online, strict=True)]


def _unframed(sql: str) -> str:
    """``sql`` without the BEGIN/COMMIT lines (and blank lines) at its two ends: in a
    move's output they frame the move, or each revision, not the part cut out."""
    lines = sql.splitlines(keepends=True)
    while lines and lines[0].strip() in ("", _BEGIN, _COMMIT):
        lines.pop(0)
    while lines and lines[-1].strip() in ("", _BEGIN, _COMMIT):
        lines.pop()
    return "".join(lines)


def _framed(sql: str, online: bool) -> str:
    """``sql`` in ``BEGIN``/``COMMIT`` (``online``: in none), ending in one newline."""
    lines = sql.splitlines(keepends=True)
    filled = [index for index, line in enumerate(lines) if line.strip()]
    framed = (
        len(filled) >= 2
        and lines[filled[0]].strip() == _BEGIN
        and lines[filled[-1]].strip() == _COMMIT
    )
    if online and framed:
        del lines[filled[-1]], lines[filled[0]]
        return "".join(lines).strip("\n") + "\n"
    if not online and not framed and filled:
        return f"{_BEGIN}\n\n{sql.strip()}\n\n{_COMMIT}\n"
    return sql.strip("\n") + "\n" if filled else sql


def _rendered(
    migration_set: MigrationSet,
    from_revision: str | None,
    to_revision: str | None,
    downgrade: bool,
) -> str:
    output = io.StringIO()
    config = make_config(migration_set, output=output)
    if downgrade:
        assert from_revision is not None
    else:
        assert to_revision is not None
    with _ALEMBIC_LOCK:
        _run_env(
            config, migration_set, to_revision, downgrade, as_sql=True, from_revision=from_revision
        )
    return output.getvalue()
