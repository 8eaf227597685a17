"""Migration sets: a folder of Alembic revisions (``env.py`` + ``versions/``) under a name.

A set is a single linear chain from base to head. Each revision carries the sha256 of
its file, so a file edited after it was applied can be reported as drift.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from alembic.script import ScriptDirectory
from alembic.util import CommandError as AlembicCommandError

from dbkeeper.migrate.errors import MigrationError
from dbkeeper.paths import migrations_root

_SET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class Revision:
    """One revision file of a set."""

    id: str
    down_revision: str | None
    description: str
    path: Path
    checksum: str


@dataclass(frozen=True)
class MigrationSet:
    """A named chain of revisions, ordered from the first (base side) to head."""

    name: str
    path: Path
    revisions: tuple[Revision, ...]

    @property
    def ids(self) -> list[str]:
        return [revision.id for revision in self.revisions]

    @property
    def head(self) -> str | None:
        return self.revisions[-1].id if self.revisions else None

    def revision(self, revision_id: str) -> Revision:
        for revision in self.revisions:
            if revision.id == revision_id:
                return revision
        raise KeyError(revision_id)

    def position(self, revision_id: str | None) -> int:
        """0 for base, 1 for the first revision, ... ``len`` for head."""
        if revision_id is None:
            return 0
        return self.ids.index(revision_id) + 1

    def __contains__(self, revision_id: object) -> bool:
        return revision_id in self.ids


def _summary(doc: str | None) -> str:
    """The first line of a revision's docstring, without a final full stop."""
    lines = (doc or "").strip().splitlines()
    return lines[0].strip().rstrip(".") if lines else ""


def file_checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_set(name: str, root: Path | None = None) -> MigrationSet:
    """The set ``name`` from ``root`` (default: the bundled or configured sets folder)."""
    base = root if root is not None else migrations_root()
    if not _SET_NAME.match(name):
        raise MigrationError(
            "InvalidMigrationSet",
            f"{name!r} is not a migration set name: use letters, digits, '.', '_' or '-'",
        )
    folder = base / name
    if not (folder / "env.py").is_file():
        available = (
            sorted(p.name for p in base.iterdir() if (p / "env.py").is_file())
            if (base.is_dir())
            else []
        )
        hint = ", ".join(available) if available else "none"
        raise MigrationError(
            "InvalidMigrationSet",
            f"migration set {name!r} not found in {base} (available: {hint})",
        )
    return load_set_from_path(folder, name=name)


def load_set_from_path(folder: Path, name: str | None = None) -> MigrationSet:
    """A set from its folder; ``name`` defaults to the folder's name."""
    set_name = name or folder.name
    try:
        script = ScriptDirectory(str(folder))
        heads = script.get_heads()
        if len(heads) > 1:
            raise MigrationError(
                "InvalidMigrationSet",
                f"migration set {set_name!r} has several heads ({', '.join(sorted(heads))}): "
                "dbkeeper needs one linear chain, merge or re-parent the branches",
            )
        scripts = list(script.walk_revisions("base", "heads"))
    except AlembicCommandError as exc:
        raise MigrationError(
            "InvalidMigrationSet", f"migration set {set_name!r} cannot be read: {exc}"
        ) from exc
    revisions: list[Revision] = []
    for item in reversed(scripts):
        down = item.down_revision
        if not (down is None or isinstance(down, str)):
            raise MigrationError(
                "InvalidMigrationSet",
                f"revision {item.revision} of set {set_name!r} is a merge point: "
                "dbkeeper needs one linear chain",
            )
        assert item.path is not None
        path = Path(item.path)
        revisions.append(
            Revision(
                id=item.revision,
                down_revision=down,
                description=_summary(item.doc),
                path=path,
                checksum=file_checksum(path),
            )
        )
    return MigrationSet(name=set_name, path=folder.resolve(), revisions=tuple(revisions))
