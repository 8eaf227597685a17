"""Which failures belong to the surroundings of a restore, not to the backup.

A restore drill judges a backup only on what the backup itself can be blamed for. The
server being unreachable, a refused login, a missing privilege or resource, a server
shutting down: none of these says anything about the backup, and a drill that meets
one is an error of the drill (see ``dbkeeper.backup.drill``). This module holds that
rule, for psycopg errors (by SQLSTATE) and for the output of the client tools.
"""

from __future__ import annotations

import re

import psycopg

# SQLSTATE classes: 08 connection exception, 28 invalid authorization, 53 insufficient
# resources, 57 operator intervention (shutdown, cancel, statement timeout), 58 system
# error (I/O, a file of the server missing).
ENVIRONMENT_SQLSTATE_CLASSES = ("08", "28", "53", "57", "58")
# 42501 insufficient privilege, 3D000 no such database (the one connected to),
# 25006 read-only transaction (pointed at a standby).
ENVIRONMENT_SQLSTATES = frozenset({"42501", "3D000", "25006"})

# What pg_dump/pg_restore print for the same causes. libpq's own messages are English
# because the tools run with LC_MESSAGES=C (see pg_tools); the server's follow its
# lc_messages, so on a server speaking another language only the libpq ones (and the
# severity FATAL/PANIC) are recognised, and other failures count against the backup.
_ENVIRONMENT_TOOL_PHRASES = (
    # libpq: connecting, and losing the connection
    "connection to server",
    "could not connect to",
    "server closed the connection unexpectedly",
    "no connection to the server",
    "could not receive data from server",
    "could not send data to server",
    # the server ended the session (authentication, too many connections, shutdown)
    "FATAL:",
    "PANIC:",
    # 42501
    "permission denied",
    "must be owner of",
    "must be superuser",
    "must be member of role",
    # 53xxx
    "out of memory",
    "out of shared memory",
    "No space left on device",
    "could not extend file",
    "Disk quota exceeded",
    "too many connections",
    "temporary file size exceeds",
    # 57xxx
    "canceling statement due to",
    "terminating connection",
    "the database system is",
    # 58P01: an extension the dump needs is not installed on this server
    "could not open extension control file",
    # 25006
    "read-only transaction",
)


# The tools' own lines ("pg_restore: error: …", with the server's message on the same
# line); the rest of the output echoes statements of the dump ("Command was: …"), which
# are the backup's content and may contain any words.
_TOOL_LINE = re.compile(r"^pg_\w+: ")


def is_environment_sqlstate(sqlstate: str | None) -> bool:
    """True for the SQLSTATEs that describe the server, the login or the resources."""
    if not sqlstate:
        return False
    return sqlstate in ENVIRONMENT_SQLSTATES or sqlstate[:2] in ENVIRONMENT_SQLSTATE_CLASSES


def is_environment_error(exc: psycopg.Error) -> bool:
    """True when ``exc`` comes from the surroundings: a failed or lost connection
    (psycopg gives no SQLSTATE for those) or an environment SQLSTATE."""
    if exc.sqlstate is None and isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return True
    return is_environment_sqlstate(exc.sqlstate)


def is_environment_tool_output(output: str) -> bool:
    """True when a client tool's own error lines name a cause of the surroundings."""
    own = [line for line in output.splitlines() if _TOOL_LINE.match(line)]
    return any(phrase in line for line in own for phrase in _ENVIRONMENT_TOOL_PHRASES)
