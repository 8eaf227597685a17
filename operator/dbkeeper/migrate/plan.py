"""Plan a move: the steps from the current revision to the target, their SQL and lint.

The SQL is what Alembic's offline mode renders for each step; it needs no database.
Given a connection, the plan starts from the database's current revision, else from base.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from typing import Protocol

from dbkeeper.conninfo import ConnInfo
from dbkeeper.json_shapes.migrate import PlanJson, PlanStepJson
from dbkeeper.migrate.alembic_bridge import current_revision, render_move, render_step
from dbkeeper.migrate.connection import sqlalchemy_connection
from dbkeeper.migrate.errors import MigrationError
from dbkeeper.migrate.history import Direction
from dbkeeper.migrate.lint import IGNORED_RULES, ONLINE_IGNORED_RULES, LintFinding, lint_many
from dbkeeper.migrate.options import MigrationOptions
from dbkeeper.migrate.sets import MigrationSet
from dbkeeper.migrate.targets import resolve_target


@dataclass(frozen=True)
class Step:
    """One revision applied (upgrade) or reverted (downgrade)."""

    revision: str
    direction: Direction
    from_revision: str | None
    to_revision: str | None
    description: str
    checksum: str
    sql: str = ""
    findings: tuple[LintFinding, ...] = ()
    online: bool = False
    """Runs outside a transaction (the revision declares ``dbkeeper_transaction = False``)."""

    @property
    def risky(self) -> bool:
        return any(finding.risky for finding in self.findings)

    def to_dict(self) -> PlanStepJson:
        return {
            "revision": self.revision,
            "direction": self.direction,
            "from_revision": self.from_revision,
            "to_revision": self.to_revision,
            "description": self.description,
            "checksum": self.checksum,
            "sql": self.sql,
            "findings": [finding.to_dict() for finding in self.findings],
            "risky": self.risky,
            "online": self.online,
        }


@dataclass(frozen=True)
class MovePlan:
    """Where a database is, where it goes, and each step on the way."""

    migration_set: str
    from_revision: str | None
    to_revision: str | None
    steps: tuple[Step, ...] = field(default_factory=tuple)

    @property
    def direction(self) -> Direction | None:
        return self.steps[0].direction if self.steps else None

    @property
    def is_downgrade(self) -> bool:
        return self.direction == "downgrade"

    @property
    def risky(self) -> bool:
        return any(step.risky for step in self.steps)

    def to_dict(self) -> PlanJson:
        return {
            "migration_set": self.migration_set,
            "from_revision": self.from_revision,
            "to_revision": self.to_revision,
            "direction": self.direction,
            "risky": self.risky,
            "steps": [step.to_dict() for step in self.steps],
        }


def steps_between(
    migration_set: MigrationSet, current: str | None, target: str | None
) -> list[Step]:
    """The steps from ``current`` to ``target`` (both in the set, ``None`` = base), no SQL."""
    here = migration_set.position(current)
    there = migration_set.position(target)
    ids: list[str | None] = [None, *migration_set.ids]
    steps: list[Step] = []
    if there > here:
        for position in range(here + 1, there + 1):
            revision = migration_set.revisions[position - 1]
            steps.append(
                Step(
                    revision=revision.id,
                    direction="upgrade",
                    from_revision=ids[position - 1],
                    to_revision=revision.id,
                    description=revision.description,
                    checksum=revision.checksum,
                    online=revision.online,
                )
            )
    else:
        for position in range(here, there, -1):
            revision = migration_set.revisions[position - 1]
            steps.append(
                Step(
                    revision=revision.id,
                    direction="downgrade",
                    from_revision=revision.id,
                    to_revision=ids[position - 1],
                    description=revision.description,
                    checksum=revision.checksum,
                    online=revision.online,
                )
            )
    return steps


def with_sql(migration_set: MigrationSet, steps: Sequence[Step], lint: bool) -> list[Step]:
    """``steps`` with their offline SQL and (when ``lint``) squawk's findings on each:
    the SQL of the whole move from one offline run, and one squawk run for the online
    steps and one for the others, however many."""
    sqls = _move_sql(migration_set, steps)
    rendered = [replace(step, sql=sql) for step, sql in zip(steps, sqls, strict=True)]
    if not lint:
        return rendered
    for online, ignored in ((False, IGNORED_RULES), (True, ONLINE_IGNORED_RULES)):
        group = [i for i, step in enumerate(rendered) if step.online == online]
        findings = lint_many([rendered[i].sql for i in group], ignored)
        for i, found in zip(group, findings, strict=True):
            sql = rendered[i].sql
            rendered[i] = replace(rendered[i], findings=tuple(_not_bookkeeping(sql, found)))
    return rendered


def _move_sql(migration_set: MigrationSet, steps: Sequence[Step]) -> list[str]:
    """Each step's SQL: cut from one render when the steps make one move (each starts
    where the one before it ends, all one way), else rendered step by step."""
    if not steps:
        return []
    one_move = all(
        later.from_revision == earlier.to_revision and later.direction == earlier.direction
        for earlier, later in itertools.pairwise(steps)
    )
    if one_move:
        whole = render_at_once(migration_set, steps)
        if whole is not None:
            return whole
    return render_each(migration_set, steps)


def render_at_once(migration_set: MigrationSet, steps: Sequence[Step]) -> list[str] | None:
    """Each step's SQL, cut from one offline run of the move the (non-empty, contiguous,
    one-way) ``steps`` make; None when the output cannot be cut (see ``render_move``)."""
    return render_move(
        migration_set,
        steps[0].from_revision,
        steps[-1].to_revision,
        steps[0].direction == "downgrade",
        [step.online for step in steps],
    )


def render_each(migration_set: MigrationSet, steps: Sequence[Step]) -> list[str]:
    """Each step's SQL from an offline run of its own."""
    return [
        render_step(
            migration_set,
            step.from_revision,
            step.to_revision,
            step.direction == "downgrade",
            online=step.online,
        )
        for step in steps
    ]


def _not_bookkeeping(sql: str, findings: list[LintFinding]) -> list[LintFinding]:
    """Leave out what squawk says of ``alembic_version``: the engine writes it, in a
    transaction, also after an online revision."""
    lines = sql.splitlines()
    return [
        finding
        for finding in findings
        if not (
            finding.line is not None
            and 0 < finding.line <= len(lines)
            and "alembic_version" in lines[finding.line - 1]
        )
    ]


def build_plan(
    migration_set: MigrationSet,
    current: str | None,
    options: MigrationOptions,
    render: bool = True,
) -> MovePlan:
    if current is not None and current not in migration_set:
        raise MigrationError(
            "UnknownRevision",
            f"the database is at revision {current}, which migration set "
            f"{migration_set.name!r} does not contain (changed outside dbkeeper, or the "
            "wrong set?); pick the set that created it or repair alembic_version by hand",
            revision=current,
        )
    target = resolve_target(migration_set, current, options.target)
    steps = steps_between(migration_set, current, target)
    if render:
        lint = options.lint_mode != "off"
        steps = with_sql(migration_set, steps, lint)
    return MovePlan(
        migration_set=migration_set.name,
        from_revision=current,
        to_revision=target,
        steps=tuple(steps),
    )


def plan_move(
    conninfo: ConnInfo | None, migration_set: MigrationSet, options: MigrationOptions
) -> MovePlan:
    """What ``migrate`` would do with ``options``: steps with SQL, findings, risk."""
    current: str | None = None
    if conninfo is not None:
        with sqlalchemy_connection(conninfo) as connection:
            current = current_revision(connection)
            connection.rollback()
    return build_plan(migration_set, current, options)


class MigrationHooks(Protocol):
    """Callbacks the operator plugs around a move (backups, pooler pauses)."""

    def before_move(self, plan: MovePlan) -> str | None:
        """Called once before the first change; returns a backup id, raising aborts."""
        ...

    def around_step(self, step: Step) -> AbstractContextManager[None]:
        """Wraps each revision's transaction, e.g. to pause the pooler when risky."""
        ...
