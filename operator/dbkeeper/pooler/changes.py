"""Whether a pooler settings change can be applied online (RELOAD) or needs a restart.

PgBouncer re-reads most settings on RELOAD but keeps its listening sockets, pid file
and Unix socket as they were at start; those few need the process restarted (in a
cluster: a rolling restart of the Deployment).
"""

from __future__ import annotations

import enum

from dbkeeper.pooler.settings import PgBouncerSettings

# PgBouncer reports these as not changeable in SHOW CONFIG; the integration tests check
# this list against the real pgbouncer.
RESTART_FIELDS = frozenset({"listen_addr", "listen_port", "unix_socket_dir", "pidfile"})


class ChangeKind(enum.Enum):
    NONE = "none"
    RELOAD = "reload"
    RESTART = "restart"


def changed_fields(old: PgBouncerSettings, new: PgBouncerSettings) -> set[str]:
    before, after = old.to_mapping(), new.to_mapping()
    return {name for name in after if before.get(name) != after[name]}


def change_kind(old: PgBouncerSettings, new: PgBouncerSettings) -> ChangeKind:
    """NONE when equal, RESTART when a field PgBouncer cannot re-read changed, else RELOAD."""
    changed = changed_fields(old, new)
    if not changed:
        return ChangeKind.NONE
    if changed & RESTART_FIELDS:
        return ChangeKind.RESTART
    return ChangeKind.RELOAD
