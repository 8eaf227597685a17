"""Turn what a user asked for (``head``, ``base``, an id, ``-1``, ``+2``) into a revision."""

from __future__ import annotations

import re

from dbkeeper.echo import echo
from dbkeeper.migrate.errors import MigrationError
from dbkeeper.migrate.sets import MigrationSet

# Up to six digits: more is no real step count (and Python refuses very long numbers).
_RELATIVE = re.compile(r"^([+-])(\d{1,6})$")


def _known(migration_set: MigrationSet) -> str:
    ids = migration_set.ids
    shown = ", ".join(ids) if len(ids) <= 12 else ", ".join([*ids[:5], "…", *ids[-5:]])
    return f"head, base, -N, +N or one of: {shown or '(the set has no revisions)'}"


def resolve_target(migration_set: MigrationSet, current: str | None, target: str) -> str | None:
    """The revision id to move to; ``None`` means base (nothing applied)."""
    wanted = target.strip()
    if wanted == "head" or wanted == "heads":
        return migration_set.head
    if wanted == "base":
        return None
    relative = _RELATIVE.match(wanted)
    if relative:
        if current is not None and current not in migration_set:
            raise MigrationError(
                "UnknownRevision",
                f"cannot move {echo(wanted)} from revision {current}: it is not in set "
                f"{migration_set.name!r}; give an explicit target instead",
            )
        step = int(relative.group(2)) * (1 if relative.group(1) == "+" else -1)
        here = migration_set.position(current)
        there = here + step
        if there < 0 or there > len(migration_set.revisions):
            where = current or "base"
            raise MigrationError(
                "UnknownRevision",
                f"target {echo(wanted)} from {where} is outside the set {migration_set.name!r}, "
                f"which has {len(migration_set.revisions)} revisions "
                f"({here} applied); allowed: {_known(migration_set)}",
            )
        return None if there == 0 else migration_set.ids[there - 1]
    if wanted in migration_set:
        return wanted
    raise MigrationError(
        "UnknownRevision",
        f"revision {echo(wanted)} is not in migration set {migration_set.name!r}; "
        f"allowed: {_known(migration_set)}",
    )
