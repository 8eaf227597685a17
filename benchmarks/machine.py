"""What the benchmarks ran on: cores, memory, load, and the versions of the components."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from typing import Any

from dbkeeper.local.postgres import find_pg_bindir
from dbkeeper.pooler.local import find_pgbouncer


def _first_line(args: list[str]) -> str:
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
    except OSError as exc:
        return f"unavailable ({exc.strerror})"
    return (result.stdout or result.stderr).strip().splitlines()[0] if result.stdout else ""


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                match = re.match(r"MemTotal:\s+(\d+) kB", line)
                if match:
                    return round(int(match.group(1)) / 1024 / 1024, 1)
    except OSError:
        return None
    return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def machine_info() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": _memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "postgresql": _first_line([str(find_pg_bindir() / "postgres"), "--version"]),
        "pgbouncer": _first_line([find_pgbouncer(), "--version"]),
        "load_average_at_start": load_average(),
    }
