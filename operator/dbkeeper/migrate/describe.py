"""What a migration set is, in a form small enough for a Job's termination message.

The operator never runs an application's migration set in its own process: a
*describe* Job loads the set, renders and lints each revision offline, and reports one
line per revision, ``"<id> <first 16 hex of its sha256> <flags>"``, base side first.
The flags are letters, ``-`` when there are none:

- ``u`` / ``d``: the upgrade / downgrade has a risky lint finding (a heavy lock);
- ``f`` / ``g``: the upgrade / downgrade has any lint finding;
- ``o``: the revision runs online (outside a transaction).

:func:`describe_set` and :func:`encode_description` are the Job's side;
:func:`parse_description` is the operator's, and treats what it reads from a pod as
untrusted input.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbkeeper.echo import echo
from dbkeeper.json_shapes.migrate import DescribeJson
from dbkeeper.migrate.errors import MigrationError
from dbkeeper.migrate.plan import Step, steps_between, with_sql
from dbkeeper.migrate.sets import MigrationSet, Revision
from dbkeeper.migrate.status import SHORT_CHECKSUM_LENGTH

REVISION_ID_LIMIT = 64
_REVISION_ID = re.compile(rf"^[A-Za-z0-9_-]{{1,{REVISION_ID_LIMIT}}}$")
_SHORT_CHECKSUM = re.compile(rf"^[0-9a-f]{{{SHORT_CHECKSUM_LENGTH}}}$")
DESCRIBED_REVISIONS_LIMIT = 1000
"""The most revisions :func:`parse_description` accepts (far more than fit in a
termination message: a bound on the work untrusted input can cause)."""

NO_FLAGS = "-"
# The letters in the order they are written.
_FLAG_LETTERS = "udfgo"

DESCRIBED_SET_PATH = Path("/nonexistent/described-migration-set")
"""The folder of a set rebuilt from a description: there are no files behind it."""


@dataclass(frozen=True)
class RevisionFlags:
    """What the lint found in a revision's SQL each way, and whether it runs online."""

    risky_upgrade: bool = False
    risky_downgrade: bool = False
    findings_upgrade: bool = False
    findings_downgrade: bool = False
    online: bool = False

    @property
    def letters(self) -> str:
        chosen = (
            self.risky_upgrade,
            self.risky_downgrade,
            self.findings_upgrade,
            self.findings_downgrade,
            self.online,
        )
        text = "".join(letter for letter, on in zip(_FLAG_LETTERS, chosen, strict=True) if on)
        return text or NO_FLAGS

    @classmethod
    def from_letters(cls, letters: str) -> RevisionFlags:
        """The flags written as ``letters``; ``ValueError`` on anything else."""
        if letters == NO_FLAGS:
            return cls()
        if not letters:
            raise ValueError(f"no flags, where none is written {NO_FLAGS}")
        unknown = sorted(set(letters) - set(_FLAG_LETTERS))
        if unknown:
            raise ValueError(f"unknown flag(s) {echo(''.join(unknown))}")
        if len(set(letters)) != len(letters):
            raise ValueError("a flag appears twice")
        return cls(
            risky_upgrade="u" in letters,
            risky_downgrade="d" in letters,
            findings_upgrade="f" in letters,
            findings_downgrade="g" in letters,
            online="o" in letters,
        )


@dataclass(frozen=True)
class DescribedRevision:
    """One revision as a description carries it."""

    id: str
    checksum: str
    """The file's sha256 on the describing side; its first 16 hex digits once parsed."""
    flags: RevisionFlags

    @property
    def line(self) -> str:
        return f"{self.id} {self.checksum[:SHORT_CHECKSUM_LENGTH]} {self.flags.letters}"


@dataclass(frozen=True)
class SetDescription:
    """A set's revisions in chain order (base side first), with their flags."""

    name: str
    revisions: tuple[DescribedRevision, ...]

    @property
    def lines(self) -> list[str]:
        return [revision.line for revision in self.revisions]


@dataclass(frozen=True)
class DescribedSet:
    """A set rebuilt from a description read back from a pod.

    ``migration_set`` has the revisions' ids, order and checksum prefixes but no files
    (its path is :data:`DESCRIBED_SET_PATH`): it can be compared with a database (status,
    drift, planning which revisions a move crosses) but never run or rendered.
    """

    migration_set: MigrationSet
    flags: Mapping[str, RevisionFlags]
    """By revision id."""


def _upgrade_and_downgrade(
    migration_set: MigrationSet, render: bool
) -> tuple[list[Step], list[Step]]:
    upgrades = steps_between(migration_set, None, migration_set.head)
    downgrades = list(reversed(steps_between(migration_set, migration_set.head, None)))
    if render:
        upgrades = with_sql(migration_set, upgrades, lint=True)
        downgrades = with_sql(migration_set, downgrades, lint=True)
    return upgrades, downgrades


def _check_id(migration_set: MigrationSet, revision: Revision) -> None:
    if not _REVISION_ID.match(revision.id):
        raise MigrationError(
            "InvalidMigrationSet",
            f"revision {echo(revision.id)} of set {migration_set.name!r} cannot be described: "
            f"dbkeeper needs revision ids of up to {REVISION_ID_LIMIT} letters, digits, '_' "
            "or '-'; rename it before it is applied anywhere",
            revision=revision.id,
        )


def describe_set(migration_set: MigrationSet, render: bool = True) -> SetDescription:
    """Each revision's checksum and flags; renders and lints both ways when ``render``.

    Without ``render`` only ``o`` can be set: a quick description of the smallest size
    the full one can have.
    """
    for revision in migration_set.revisions:
        _check_id(migration_set, revision)
    upgrades, downgrades = _upgrade_and_downgrade(migration_set, render)
    revisions = tuple(
        DescribedRevision(
            id=revision.id,
            checksum=revision.checksum,
            flags=RevisionFlags(
                risky_upgrade=up.risky,
                risky_downgrade=down.risky,
                findings_upgrade=bool(up.findings),
                findings_downgrade=bool(down.findings),
                online=revision.online,
            ),
        )
        for revision, up, down in zip(migration_set.revisions, upgrades, downgrades, strict=True)
    )
    return SetDescription(name=migration_set.name, revisions=revisions)


def encode_description(description: SetDescription) -> DescribeJson:
    """The JSON object a describe Job reports."""
    return {"ok": True, "set": description.name, "revisions": description.lines}


def _invalid(name: str, problem: str) -> MigrationError:
    return MigrationError(
        "InvalidMigrationSet", f"the description of migration set {name!r} {problem}"
    )


def _parse_line(name: str, number: int, line: object) -> DescribedRevision:
    where = f"entry {number}"
    if not isinstance(line, str):
        raise _invalid(name, f"is not valid: {where} is not a string but {echo(line)}")
    parts = line.split(" ")
    if len(parts) != 3:
        raise _invalid(name, f"is not valid: {where} {echo(line)} is not '<id> <checksum> <flags>'")
    revision_id, checksum, letters = parts
    if not _REVISION_ID.match(revision_id):
        raise _invalid(
            name,
            f"is not valid: {where} has the revision id {echo(revision_id)}; ids are up to "
            f"{REVISION_ID_LIMIT} letters, digits, '_' or '-'",
        )
    if not _SHORT_CHECKSUM.match(checksum):
        raise _invalid(
            name,
            f"is not valid: revision {revision_id} has the checksum {echo(checksum)}; "
            f"expected {SHORT_CHECKSUM_LENGTH} lower-case hex digits",
        )
    try:
        flags = RevisionFlags.from_letters(letters)
    except ValueError as exc:
        raise _invalid(
            name,
            f"is not valid: revision {revision_id} has the flags {echo(letters)} ({exc}); "
            f"known flags are {', '.join(_FLAG_LETTERS)}, or {NO_FLAGS} for none",
        ) from None
    return DescribedRevision(id=revision_id, checksum=checksum, flags=flags)


def _reported_failure(name: str, data: Mapping[str, Any]) -> MigrationError:
    reason, message = data.get("reason"), data.get("message")
    said = f"{echo(reason)}: {echo(message, 300)}" if reason or message else "no reason"
    return _invalid(name, f"was not produced: describing the set failed ({said})")


def parse_description(data: object, name: str, source: str | None) -> DescribedSet:
    """The set a describe Job reported (its JSON already decoded), checked thoroughly.

    ``name`` is the set the Job was asked to describe, ``source`` where its files came
    from. Anything unexpected raises :class:`MigrationError` ``InvalidMigrationSet``
    with a message that names the problem.
    """
    if not isinstance(data, Mapping):
        raise _invalid(name, f"is not a JSON object but {echo(data)}")
    if data.get("ok") is not True:
        if data.get("ok") is False:
            raise _reported_failure(name, data)
        raise _invalid(name, 'is not valid: it has no "ok": true')
    if data.get("set") != name:
        raise _invalid(name, f"is not valid: it describes the set {echo(data.get('set'))}")
    lines = data.get("revisions")
    if not isinstance(lines, list):
        raise _invalid(name, f'is not valid: "revisions" is not a list but {echo(lines)}')
    if not lines:
        raise _invalid(name, "is not valid: it lists no revisions")
    if len(lines) > DESCRIBED_REVISIONS_LIMIT:
        raise _invalid(
            name,
            f"is not valid: it lists {len(lines)} revisions, more than the "
            f"{DESCRIBED_REVISIONS_LIMIT} dbkeeper accepts",
        )
    described = [_parse_line(name, number, line) for number, line in enumerate(lines, start=1)]
    seen: set[str] = set()
    for item in described:
        if item.id in seen:
            raise _invalid(name, f"is not valid: revision {item.id} appears twice")
        seen.add(item.id)
    revisions: list[Revision] = []
    for item in described:
        revisions.append(
            Revision(
                id=item.id,
                down_revision=revisions[-1].id if revisions else None,
                description="",
                path=DESCRIBED_SET_PATH / "versions" / f"{item.id}.py",
                checksum=item.checksum,
                online=item.flags.online,
            )
        )
    migration_set = MigrationSet(
        name=name, path=DESCRIBED_SET_PATH, revisions=tuple(revisions), source=source
    )
    return DescribedSet(
        migration_set=migration_set, flags={item.id: item.flags for item in described}
    )
