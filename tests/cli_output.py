"""Reading what a dbkeeper command wrote on stderr: its error line(s) apart from the
progress lines a long run prints (dbkeeper/cli/progress.py)."""

from __future__ import annotations

from dbkeeper.cli.progress import PLAIN_PREFIX


def error_lines(stderr: str) -> list[str]:
    """stderr's lines without progress lines: a failed command leaves exactly one."""
    return [line for line in stderr.strip().splitlines() if not line.startswith(PLAIN_PREFIX)]
