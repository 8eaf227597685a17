"""Running pg_dump and pg_restore: where they are, and how they get the password.

The password goes to the tools through ``PGPASSWORD`` in their environment, never on
the command line, where other users of the machine could read it. The tools run with
``LC_MESSAGES=C`` so that libpq's messages are English, which is what
``dbkeeper.backup.environment_faults`` recognises.

The tools are looked up in ``DBKEEPER_PG_CLIENT_BINDIR`` when it is set (only there),
else next to the local server binaries (``find_pg_bindir``), else on PATH. pg_dump
refuses a server of a newer major and pg_restore a dump of a newer pg_dump, so the
callers compare majors first (``tool_major``) and refuse with ClientTooOld.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from dbkeeper.conninfo import ConnInfo, redact
from dbkeeper.parent_death import dies_with_parent

CLIENT_BINDIR_ENV = "DBKEEPER_PG_CLIENT_BINDIR"
# "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)", "pg_restore (PostgreSQL) 18.6"
_VERSION_LINE = re.compile(r"\(PostgreSQL\) (\d+)")
_SERVER_VERSION = re.compile(r"^(\d+)")
# What a --verbose tool says of its progress ("pg_dump: dumping contents of table ...",
# "pg_restore: creating TABLE ..."): not a reason for a failure, and a table's name in
# it must never read as one (see environment_faults).
_INFO = re.compile(r"^pg_\w+: (?!error: |warning: |detail: |hint: )")


class ToolFailed(Exception):
    """A PostgreSQL client tool exited non-zero; the message is already redacted.

    ``output`` is the tool's whole error output (redacted), for telling causes apart;
    the message keeps only its last lines.
    """

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


def pg_tool(name: str) -> str:
    """The path of a PostgreSQL client tool: ``DBKEEPER_PG_CLIENT_BINDIR`` when set, else
    the server's bin folder, then PATH."""
    client_dir = os.environ.get(CLIENT_BINDIR_ENV)
    if client_dir:
        chosen = Path(client_dir) / name
        if chosen.is_file():
            return str(chosen)
        raise ToolFailed(
            f"{name} not found in {CLIENT_BINDIR_ENV}={client_dir}: point it at the bin "
            "folder of the PostgreSQL client tools, or unset it"
        )
    # Imported here: the local cluster module is only needed to locate binaries.
    from dbkeeper.local.postgres import find_pg_bindir

    try:
        candidate = find_pg_bindir() / name
    except RuntimeError:
        candidate = None
    if candidate is not None and candidate.exists():
        return str(candidate)
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise ToolFailed(f"{name} not found: install the PostgreSQL client tools")


def tool_dsn_and_env(conninfo: ConnInfo) -> tuple[str, dict[str, str]]:
    """A connection string without the password, and an environment that carries it."""
    env = dict(os.environ)
    env.pop("LC_ALL", None)  # it would override LC_MESSAGES
    env["LC_MESSAGES"] = "C"
    if conninfo.password is not None:
        env["PGPASSWORD"] = conninfo.password
    return replace(conninfo, password=None).dsn(), env


def run_tool(
    args: list[str],
    conninfo: ConnInfo,
    timeout: float | None = None,
    on_line: Callable[[str], None] | None = None,
) -> None:
    """Run ``args`` plus ``--dbname=<dsn>``; raise ToolFailed with the tool's own words.

    ``on_line`` is given each line the tool writes to stderr as it comes (a ``--verbose``
    tool says there which table it is at)."""
    dsn, env = tool_dsn_and_env(conninfo)
    name = Path(args[0]).name
    try:
        # A pg_dump outliving a killed dbkeeper would go on writing into a folder that is
        # no longer locked, and that the next prune may remove.
        with subprocess.Popen(
            [*args, "--no-password", f"--dbname={dsn}"],
            env=env,
            preexec_fn=dies_with_parent(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        ) as process:
            returncode, stderr = _follow(process, timeout, on_line)
    except subprocess.TimeoutExpired:
        raise ToolFailed(f"{name} did not finish within {timeout:.0f} s") from None
    if returncode != 0:
        lines = [line.strip() for line in stderr if line.strip() and not _INFO.match(line)]
        errors = [line for line in lines if " error: " in line] or lines
        detail = "; ".join(errors[-3:]) or f"exit code {returncode}"
        raise ToolFailed(redact(f"{name} failed: {detail}"), redact("\n".join(lines)))


def _follow(
    process: subprocess.Popen[str],
    timeout: float | None,
    on_line: Callable[[str], None] | None,
) -> tuple[int, list[str]]:
    """Read the tool's stderr to its end (handing each line to ``on_line``), then its
    exit code; past ``timeout`` the tool is killed and TimeoutExpired raised."""
    timer = None
    expired = threading.Event()
    if timeout is not None:

        def expire() -> None:
            expired.set()
            process.kill()

        timer = threading.Timer(timeout, expire)
        timer.daemon = True
        timer.start()
    lines: list[str] = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if on_line is not None:
                on_line(line.rstrip("\n"))
        returncode = process.wait()
    finally:
        if timer is not None:
            timer.cancel()
    if expired.is_set():
        raise subprocess.TimeoutExpired(process.args, timeout or 0)
    return returncode, lines


def tool_major(tool: str) -> int:
    """The PostgreSQL major of a client tool, from its ``--version`` line."""
    name = Path(tool).name
    try:
        result = subprocess.run(
            [tool, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolFailed(f"{name} --version failed: {exc}") from None
    match = _VERSION_LINE.search(result.stdout)
    if result.returncode != 0 or match is None:
        detail = (result.stderr or result.stdout).strip()[-200:] or f"exit {result.returncode}"
        raise ToolFailed(f"{name} --version did not say its version: {detail}")
    return int(match.group(1))


def server_major(server_version: str) -> int | None:
    """The major of a server version as ``SHOW server_version`` says it ("18.6",
    "15.18 (Debian 15.18-0+deb12u1)", "17devel"); None when it is not a version."""
    match = _SERVER_VERSION.match(server_version.strip())
    return int(match.group(1)) if match else None
