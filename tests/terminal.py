"""Run the CLI with stderr on a pseudo-terminal, where it draws progress bars."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from collections.abc import Mapping, Sequence


def on_a_terminal(args: Sequence[str], env: Mapping[str, str]) -> tuple[int, str, str]:
    """``dbkeeper ARGS`` (``env`` added to this process's environment) with stderr on a
    pseudo-terminal 100 columns wide: (exit code, stdout, what the terminal received)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "dbkeeper.cli", *args],
        env={**os.environ, "COLUMNS": "100", **env},
        stdout=subprocess.PIPE,
        stderr=follower,
        text=True,
    )
    os.close(follower)
    chunks: list[bytes] = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    stdout, _ = process.communicate(timeout=300)
    return process.returncode, stdout, b"".join(chunks).decode(errors="replace")
