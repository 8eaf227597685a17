"""Run server binaries as an unprivileged user when dbkeeper itself runs as root.

``initdb``, ``postgres`` and ``pgbouncer`` refuse to run as root. When we are root we
drop to the ``postgres`` system user (``DBKEEPER_SERVICE_USER`` to change it) for those
processes, and hand it the folders they write to.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ServiceUser:
    uid: int
    gid: int
    name: str

    def preexec(self) -> Callable[[], None] | None:
        """A ``preexec_fn`` that drops to this user, or None when no change is needed."""
        if os.geteuid() != 0 or self.uid == 0:
            return None
        uid, gid = self.uid, self.gid

        def drop() -> None:
            os.setgid(gid)
            os.setgroups([gid])
            os.setuid(uid)

        return drop

    def own(self, *paths: Path) -> None:
        """Give the user these paths (recursively) when we are root."""
        if os.geteuid() != 0:
            return
        for top in paths:
            os.chown(top, self.uid, self.gid)
            if top.is_dir():
                for root, dirs, files in os.walk(top):
                    for name in dirs + files:
                        os.chown(os.path.join(root, name), self.uid, self.gid)


def service_user() -> ServiceUser:
    """The user server processes run as: ourselves, or ``postgres`` when we are root."""
    uid = os.geteuid()
    if uid != 0:
        # A pod may run as any uid (OpenShift assigns one), with no passwd entry for it.
        try:
            name = pwd.getpwuid(uid).pw_name
        except KeyError:
            name = str(uid)
        return ServiceUser(uid, os.getegid(), name)
    name = os.environ.get("DBKEEPER_SERVICE_USER", "postgres")
    try:
        entry = pwd.getpwnam(name)
    except KeyError as exc:
        raise RuntimeError(
            f"running as root needs the system user {name!r} to start PostgreSQL and "
            "PgBouncer (they refuse root); install the postgresql package or set "
            "DBKEEPER_SERVICE_USER"
        ) from exc
    return ServiceUser(entry.pw_uid, entry.pw_gid, name)
