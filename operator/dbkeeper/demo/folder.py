"""The demo's folder: where each piece of local state lives, and who may read it.

Everything the demo creates sits in one folder (``$DBKEEPER_DEMO_DIR``, else
``.dbkeeper/`` under the current directory), so ``dbkeeper demo down`` can remove all of
it at once::

    postgres/       the PostgreSQL cluster (data, socket, server log)
    pooler/         pgbouncer.ini, userlist.txt, its log and pid
    backups/        the backup catalog (one folder per backup)
    objects/        objects a reconciler asked to apply (kept for reading; none run)
    secrets.json    the Secrets the resource names (mode 0600)
    resource.yaml   the DatabaseSchema as last applied
    status.json     its status as last written
    events.log      every Event, one per line
"""

from __future__ import annotations

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


class DemoError(Exception):
    """Something stops the demo; the message says what and how to fix it."""


def demo_dir() -> Path:
    """The demo's folder, absolute: ``$DBKEEPER_DEMO_DIR`` or ``./.dbkeeper``."""
    configured = os.environ.get(DEMO_DIR_VARIABLE) or DEFAULT_DEMO_DIR
    return Path(configured).expanduser().absolute()


@dataclass(frozen=True)
class DemoFolder:
    root: Path

    @property
    def postgres(self) -> Path:
        return self.root / "postgres"

    @property
    def pooler(self) -> Path:
        return self.root / "pooler"

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
        tmp = self.secrets_file.with_name(f".{self.secrets_file.name}.tmp")
        # Created 0600 from the start: the password is never readable by others.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(stored, indent=2, sort_keys=True) + "\n")
        os.chmod(tmp, 0o600)
        tmp.replace(self.secrets_file)
        return stored[name]


def _can_traverse(mode: os.stat_result, user: ServiceUser) -> bool:
    if user.uid == mode.st_uid:
        return bool(mode.st_mode & stat.S_IXUSR)
    if user.gid == mode.st_gid:
        return bool(mode.st_mode & stat.S_IXGRP)
    return bool(mode.st_mode & stat.S_IXOTH)


def check_traversable(folder: Path, user: ServiceUser) -> None:
    """Refuse a folder the server's user cannot reach (it runs as ``postgres`` for root).

    Only the existing ancestors are checked: the demo creates the rest and hands them to
    that user. Nothing is changed here; the error names the folder and the fix.
    """
    if user.uid == os.geteuid():
        return
    for ancestor in [folder, *folder.parents]:
        if not ancestor.exists():
            continue
        if not _can_traverse(ancestor.stat(), user):
            raise DemoError(
                f"PostgreSQL runs as the {user.name!r} user, which cannot enter {ancestor} "
                f"(needed to reach {folder}); put the demo in a folder it can reach, e.g. "
                f"`export {DEMO_DIR_VARIABLE}=/tmp/dbkeeper-demo`, or allow it in with "
                f"`chmod o+x {ancestor}`"
            )
