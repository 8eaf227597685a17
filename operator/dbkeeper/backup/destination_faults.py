"""A backup destination that refuses writes, and what to tell the person who can fix it.

The destination is a folder on a volume, and the volume can be full, over its quota,
mounted read-only, or closed to the user the command runs as. Whatever the command
(``backup create``, the drill recording its outcome, ``backup prune``), the report is
one line naming the destination, the operating system's reason and what to do, built
here. The same causes are recognised in pg_dump's output, since pg_dump writes the dump
into the destination itself.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

# What to do, by errno; a cause not listed gets the general advice.
_ADVICE = {
    errno.ENOSPC: "free space in it (prune old backups) or give it a bigger volume",
    errno.EDQUOT: "free space in it or raise its quota",
    errno.EROFS: "mount it read-write",
    errno.EACCES: "let the user the command runs as (uid {uid}) write to it",
    errno.EPERM: "let the user the command runs as (uid {uid}) write to it",
}
_GENERAL_ADVICE = "check the volume it is on"
CANNOT_WRITE = frozenset(_ADVICE)
"""The errnos of a destination that refuses writes, as opposed to a missing file."""

# pg_dump's own error lines ("pg_dump: error: could not write to output file: No space
# left on device"); the server's errors carry a severity and are not the destination's.
_TOOL_ERROR_LINE = re.compile(r"^pg_dump: error: ")
_SERVER_SEVERITY = ("ERROR:", "FATAL:", "PANIC:")


def advice(code: int | None) -> str:
    """What to do about a destination that refused a write with ``code``."""
    text = _ADVICE.get(code or 0, _GENERAL_ADVICE)
    return text.format(uid=os.geteuid())


def unwritable(destination: Path | str, exc: OSError, then: str) -> str:
    """``cannot write to the backup destination D: <reason>; <advice>, then <then>``."""
    if isinstance(exc, ObjectStoreError):
        return (
            f"cannot write to the backup destination {destination}: {exc.reason}; "
            f"{exc.advice}, then {then}"
        )
    reason = exc.strerror or str(exc)
    return (
        f"cannot write to the backup destination {destination}: {reason}; "
        f"{advice(exc.errno)}, then {then}"
    )


def tool_write_error(output: str) -> OSError | None:
    """The write error pg_dump met in its output folder, from its own error lines; None
    when its failure has another cause. pg_dump runs with LC_MESSAGES=C (see pg_tools),
    so the reasons are the C library's English ones."""
    own = [
        line
        for line in output.splitlines()
        if _TOOL_ERROR_LINE.match(line) and not any(s in line for s in _SERVER_SEVERITY)
    ]
    for code in sorted(CANNOT_WRITE):
        reason = os.strerror(code)
        if any(line.endswith(reason) for line in own):
            return OSError(code, reason)
    return None


class ObjectStoreError(OSError):
    """An object store refused or failed a request. It is an OSError so that the paths
    that handle a folder refusing a write (a drill recording its verdict, a prune
    removing a backup) handle a bucket alike; ``reason`` and ``advice`` are its words."""

    def __init__(self, code: int, reason: str, advice: str) -> None:
        super().__init__(code, reason)
        self.reason = reason
        self.advice = advice
