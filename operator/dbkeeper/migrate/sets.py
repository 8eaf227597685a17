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
from alembic.script.revision import RevisionError
from alembic.util import CommandError as AlembicCommandError

from dbkeeper.echo import echo
from dbkeeper.migrate.errors import MigrationError
from dbkeeper.paths import migrations_root

_NAME_LIMIT = 100
_SET_NAME = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9_.-]{{0,{_NAME_LIMIT - 1}}}$")
_VERSIONS = "versions"


@dataclass(frozen=True)
class Revision:
    """One revision file of a set."""

    id: str
    down_revision: str | None
    description: str
    path: Path
    checksum: str
    online: bool = False
    """Runs outside a transaction (``CREATE INDEX CONCURRENTLY`` and the like)."""


@dataclass(frozen=True)
class MigrationSet:
    """A named chain of revisions, ordered from the first (base side) to head."""

    name: str
    path: Path
    revisions: tuple[Revision, ...]
    source: str | None = None
    """Where the files came from when not bundled (a ConfigMap's version and content hash,
    an image digest): recorded with each history row, so a changed bundle is visible."""

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


def _runs_outside_transaction(module: object, revision: str, set_name: str) -> bool:
    """An online revision says ``dbkeeper_transaction = False`` (docs/migrations.md)."""
    declared = getattr(module, "dbkeeper_transaction", True)
    if not isinstance(declared, bool):
        raise MigrationError(
            "InvalidMigrationSet",
            f"revision {revision} of set {set_name!r} sets dbkeeper_transaction to "
            f"{echo(declared)}: it must be True or False (False: an online revision)",
        )
    return not declared


def file_checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_set(name: str, root: Path | None = None) -> MigrationSet:
    """The set ``name`` from ``root`` (default: the bundled or configured sets folder)."""
    base = root if root is not None else migrations_root()
    if not _SET_NAME.match(name):
        raise MigrationError(
            "InvalidMigrationSet",
            f"{echo(name)} is not a migration set name: use up to {_NAME_LIMIT} letters, "
            "digits, '.', '_' or '-', starting with a letter or digit",
        )
    folder = base / name
    try:
        found = (folder / "env.py").is_file()
        available = (
            sorted(p.name for p in base.iterdir() if (p / "env.py").is_file())
            if not found and base.is_dir()
            else []
        )
    except OSError as exc:
        raise _unreadable(name, folder, exc) from None
    if not found:
        hint = ", ".join(available) if available else "none"
        raise MigrationError(
            "InvalidMigrationSet",
            f"migration set {name!r} not found in {base} (available: {hint})",
        )
    return load_set_from_path(folder, name=name)


def _unreadable(name: str, folder: Path, exc: OSError) -> MigrationError:
    return MigrationError(
        "InvalidMigrationSet",
        f"migration set {name!r} cannot be read at {folder}: {exc.strerror or exc}",
    )


def _check_versions_folder(folder: Path, name: str) -> int:
    """The number of revision files in ``versions/``; refuses a folder that is missing,
    not a folder, or a link that leads nowhere (a loop, a dangling target)."""
    versions = folder / _VERSIONS
    try:
        if versions.is_symlink() and not versions.exists():
            problem = "is a symbolic link that leads nowhere (a loop or a missing target)"
        elif not versions.exists():
            problem = "is missing"
        elif not versions.is_dir():
            problem = "is not a folder"
        else:
            return sum(1 for path in versions.iterdir() if path.suffix == ".py")
    except OSError as exc:
        raise _unreadable(name, folder, exc) from None
    raise MigrationError(
        "InvalidMigrationSet",
        f"migration set {name!r} cannot be used: its {_VERSIONS}/ {problem} ({versions}); "
        f"a set is a folder with env.py and a {_VERSIONS}/ folder of revision files",
    )


def load_set_from_path(folder: Path, name: str | None = None) -> MigrationSet:
    """A set from its folder; ``name`` defaults to the folder's name."""
    set_name = name or folder.name
    files = _check_versions_folder(folder, set_name)
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
    except (AlembicCommandError, RevisionError) as exc:
        raise MigrationError(
            "InvalidMigrationSet", f"migration set {set_name!r} cannot be read: {exc}"
        ) from exc
    if not scripts:
        why = (
            f"its {files} revision file(s) form no chain from base to a head (do their "
            "down_revision values make a loop?)"
            if files
            else f"its {_VERSIONS}/ folder holds no revision files"
        )
        raise MigrationError(
            "InvalidMigrationSet", f"migration set {set_name!r} has no revisions: {why}"
        )
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
                online=_runs_outside_transaction(item.module, item.revision, set_name),
            )
        )
    return MigrationSet(name=set_name, path=folder.resolve(), revisions=tuple(revisions))
