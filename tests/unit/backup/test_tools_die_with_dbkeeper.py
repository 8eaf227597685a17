"""A tool dbkeeper runs (pg_dump, pg_restore) does not outlive a dbkeeper killed with
SIGKILL: an orphaned pg_dump would go on writing into a backup folder whose lock died
with its owner, and which the next prune may remove."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.waiting import DEADLINE, wait_for

# Stands in for dbkeeper running a long pg_dump: run_tool with a tool that sleeps.
_RUNNER = textwrap.dedent(
    """
    import sys
    from dbkeeper.backup.pg_tools import run_tool
    from dbkeeper.conninfo import ConnInfo

    tool = [sys.executable, "-c", "import os, sys, time; "
            "open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(600)", sys.argv[1]]
    run_tool(tool, ConnInfo("localhost", 5432, "db", "user", "secret"))
    """
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_tool_dies_with_the_dbkeeper_process_that_ran_it(tmp_path: Path) -> None:
    pid_file = tmp_path / "tool.pid"
    runner = subprocess.Popen([sys.executable, "-c", _RUNNER, str(pid_file)])
    try:
        wait_for(lambda: pid_file.exists() and pid_file.read_text(), what="the tool to start")
        tool = int(pid_file.read_text())
        assert _alive(tool)

        runner.send_signal(signal.SIGKILL)
        runner.wait(DEADLINE)

        wait_for(lambda: not _alive(tool), what="the tool to die with its parent")
    finally:
        runner.kill()
        runner.wait()
        if pid_file.exists() and pid_file.read_text() and _alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
