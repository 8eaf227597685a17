"""The demo's folder: where each piece of local state lives, and who may read it.

Everything the demo creates sits in one folder (``$DBKEEPER_DEMO_DIR``, else
``.dbkeeper/`` under the current directory), so ``dbkeeper demo down`` can remove all of
it at once::

    postgres/       the PostgreSQL cluster (data, socket, server log)   [server folder]
    pooler/         pgbouncer.ini, userlist.txt, its log and pid          [server folder]
    backups/        the backup catalog (one folder per backup)
    objects/        objects a reconciler asked to apply (kept for reading; none run)
    secrets.json    the Secrets the resource names (mode 0600)
    resource.yaml   the DatabaseSchema as last applied
    status.json     its status as last written
    events.log      every Event, one per line
    env             `. .dbkeeper/env` points psql and dbkeeper at the demo
    pgpass          the owner's password for libpq (mode 0600)

As root, PostgreSQL and pgbouncer run as the ``postgres`` user, which must be able to
enter the folders of the two marked entries. When it cannot reach the demo's folder (a
checkout under a 0700 home), those two live in a **server folder** of their own instead,
``/var/tmp/dbkeeper-demo-<hash of the demo folder's path>/``, which ``demo down``
removes too. Everything else stays in the demo folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbkeeper.local.service_user import ServiceUser

DEMO_DIR_VARIABLE = "DBKEEPER_DEMO_DIR"
DEFAULT_DEMO_DIR = ".dbkeeper"
# World-writable and sticky: a folder found there is used only when it is ours
# (check_own_folder), so another user cannot plant one for the demo to write into.
SERVER_FOLDERS_ROOT = Path("/var/tmp")  # noqa: S108
_SERVER_ENTRIES = ("postgres", "pooler")


class DemoError(Exception):
    """Something stops the demo; the message says what and how to fix it."""


def demo_dir() -> Path:
    """The demo's folder, absolute: ``$DBKEEPER_DEMO_DIR`` or ``./.dbkeeper``."""
    configured = os.environ.get(DEMO_DIR_VARIABLE) or DEFAULT_DEMO_DIR
    return Path(configured).expanduser().absolute()


@dataclass(frozen=True)
class DemoFolder:
    root: Path
    server_root: Path | None = None
    """Where ``postgres/`` and ``pooler/`` live when not in ``root`` (see above)."""

    @property
    def server_folder(self) -> Path:
        return self.server_root or self.root

    @property
    def postgres(self) -> Path:
        return self.server_folder / "postgres"

    @property
    def pooler(self) -> Path:
        return self.server_folder / "pooler"

    @property
    def env_file(self) -> Path:
        return self.root / "env"

    @property
    def pgpass_file(self) -> Path:
        return self.root / "pgpass"

    @property
    def backups(self) -> Path:
        return self.root / "backups"

    @property
    def objects(self) -> Path:
        return self.root / "objects"

    @property
    def secrets_file(self) -> Path:
        return self.root / "secrets.json"

    @property
    def resource_file(self) -> Path:
        return self.root / "resource.yaml"

    @property
    def status_file(self) -> Path:
        return self.root / "status.json"

    @property
    def events_log(self) -> Path:
        return self.root / "events.log"

    def exists(self) -> bool:
        return self.root.is_dir()

    def write_private(self, path: Path, text: str) -> None:
        """Write ``path`` in the demo folder, readable by us only from the start."""
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        tmp.replace(path)

    def read_status(self) -> dict[str, Any]:
        if not self.status_file.exists():
            return {}
        loaded = json.loads(self.status_file.read_text())
        return loaded if isinstance(loaded, dict) else {}

    def write_status(self, status: dict[str, Any]) -> None:
        tmp = self.status_file.with_name(f".{self.status_file.name}.tmp")
        tmp.write_text(json.dumps(status, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.status_file)

    def read_secrets(self) -> dict[str, dict[str, str]]:
        if not self.secrets_file.exists():
            return {}
        loaded = json.loads(self.secrets_file.read_text())
        if not isinstance(loaded, dict):
            return {}
        return {
            str(name): {str(k): str(v) for k, v in data.items()}
            for name, data in loaded.items()
            if isinstance(data, dict)
        }

    def ensure_secret(self, name: str, username: str) -> dict[str, str]:
        """The Secret ``name``; created with a random password the first time."""
        stored = self.read_secrets()
        if name in stored and stored[name].get("password"):
            return stored[name]
        stored[name] = {"username": username, "password": secrets.token_urlsafe(24)}
        self.write_private(self.secrets_file, json.dumps(stored, indent=2, sort_keys=True) + "\n")
        return stored[name]


def server_folder_for(root: Path) -> Path:
    """The server folder a demo in ``root`` uses when its user cannot reach ``root``."""
    digest = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    return SERVER_FOLDERS_ROOT / f"dbkeeper-demo-{digest}"


def demo_folder(root: Path, user: ServiceUser) -> DemoFolder:
    """The demo in ``root``, with its server folder where ``user`` can reach it.

    A demo that already exists keeps its layout; a new one puts the server's files in
    ``root`` when ``user`` can enter it, else in :func:`server_folder_for`.
    """
    elsewhere = server_folder_for(root)
    if any((root / entry).exists() for entry in _SERVER_ENTRIES):
        return DemoFolder(root)
    if elsewhere.exists() or blocking_ancestor(root, user) is not None:
        return DemoFolder(root, elsewhere)
    return DemoFolder(root)


def _can_traverse(mode: os.stat_result, user: ServiceUser) -> bool:
    if user.uid == mode.st_uid:
        return bool(mode.st_mode & stat.S_IXUSR)
    if user.gid == mode.st_gid:
        return bool(mode.st_mode & stat.S_IXGRP)
    return bool(mode.st_mode & stat.S_IXOTH)


def check_own_folder(path: Path) -> None:
    """Refuse a server folder that is a link, or not ours, or writable by others."""
    try:
        found = path.lstat()
    except FileNotFoundError:
        return
    if (
        not stat.S_ISDIR(found.st_mode)
        or found.st_uid != os.geteuid()
        or found.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    ):
        raise DemoError(
            f"{path} is not a folder this demo made (a link, another user's, or writable "
            "by others): remove it, or keep the whole demo in a folder the server's user "
            f"can enter, e.g. `export {DEMO_DIR_VARIABLE}=/tmp/dbkeeper-demo`"
        )


def blocking_ancestor(folder: Path, user: ServiceUser) -> Path | None:
    """The first existing folder on the way to ``folder`` that ``user`` cannot enter."""
    if user.uid == os.geteuid():
        return None
    for ancestor in [folder, *folder.parents]:
        if ancestor.exists() and not _can_traverse(ancestor.stat(), user):
            return ancestor
    return None


def check_traversable(folder: Path, user: ServiceUser) -> None:
    """Refuse a folder the server's user cannot reach (it runs as ``postgres`` for root).

    Only the existing ancestors are checked: the demo creates the rest and hands them to
    that user. Nothing is changed here; the error names the folder and the fix.
    """
    ancestor = blocking_ancestor(folder, user)
    if ancestor is not None:
        raise DemoError(
            f"PostgreSQL runs as the {user.name!r} user, which cannot enter {ancestor} "
            f"(needed to reach {folder}); put the demo in a folder it can reach, e.g. "
            f"`export {DEMO_DIR_VARIABLE}=/tmp/dbkeeper-demo`, or allow it in with "
            f"`chmod o+x {ancestor}`"
        )
