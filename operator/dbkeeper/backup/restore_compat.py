"""pg_restore of a newer major than the server it restores into.

dbkeeper's image carries one set of client tools, the newest major, since pg_dump dumps
every server up to its own major and none after. Its pg_restore (17 and newer) starts
every connection with ``SET transaction_timeout = 0``, which servers before 17 refuse;
every other statement of a dump taken from such a server they run. So against a server
older than 17, pg_restore runs without ``--exit-on-error`` and its run counts as clean
only when each error it reported is that one statement; any other error still fails the
restore, as it would have stopped it.
"""

from __future__ import annotations

from pathlib import Path

# The first major whose pg_restore sets transaction_timeout, and whose server knows it.
TRANSACTION_TIMEOUT_MAJOR = 17
_UNKNOWN_SETTING = 'unrecognized configuration parameter "transaction_timeout"'
_ERROR = "pg_restore: error:"


def tolerates_unknown_timeout(client_major: int, server_major: int) -> bool:
    """True when this pg_restore sends a setting this server does not know."""
    return client_major >= TRANSACTION_TIMEOUT_MAJOR > server_major


def pg_restore_args(tool: str, dump_path: Path, jobs: int, *, tolerant: bool) -> list[str]:
    """The pg_restore command; a ``tolerant`` run does not stop at the first error."""
    stop = [] if tolerant else ["--exit-on-error"]
    return [tool, f"--jobs={max(1, jobs)}", *stop, str(dump_path)]


def only_unknown_timeout(output: str) -> bool:
    """True when pg_restore's every error was the transaction_timeout it set."""
    errors = [line for line in output.splitlines() if _ERROR in line]
    return bool(errors) and all(_UNKNOWN_SETTING in line for line in errors)
