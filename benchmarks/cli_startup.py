"""CLI start-up: how long ``dbkeeper --help`` and the help of each command take, as a
CI pipeline or an init container pays them on every call.

Each command runs as its own process, rounds alternating the order; the figure is the
median wall time of a round's run. ``python -c pass`` in the same rounds is the floor
the interpreter itself costs.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.environment import BenchCluster
from benchmarks.report import BenchmarkResult, Cell, TargetCheck

STARTUP_TARGET_S = 0.3
_DBKEEPER = str(Path(sys.executable).parent / "dbkeeper")
VARIANTS: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "dbkeeper --help": [_DBKEEPER, "--help"],
    "dbkeeper status --help": [_DBKEEPER, "status", "--help"],
    "dbkeeper migrate --help": [_DBKEEPER, "migrate", "--help"],
    "dbkeeper backup create --help": [_DBKEEPER, "backup", "create", "--help"],
    "dbkeeper wait --help": [_DBKEEPER, "wait", "--help"],
}
TARGETED = ("dbkeeper --help", "dbkeeper status --help")


def _timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=True, timeout=120)
    return time.perf_counter() - started


def measure(rounds: int, log: Callable[[str], None]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    names = list(VARIANTS)
    for argv in VARIANTS.values():  # warm the file cache
        _timed(argv)
    for number in range(rounds):
        shift = number % len(names)
        for name in names[shift:] + names[:shift]:
            times[name].append(_timed(VARIANTS[name]))
    log(f"cli-startup: {rounds} rounds done")
    return times


def build_result(times: dict[str, list[float]], rounds: int) -> BenchmarkResult:
    rows: list[list[Cell]] = [
        [name, statistics.median(values), max(values)] for name, values in times.items()
    ]
    checks = [
        TargetCheck(
            name=f"{name} (median)",
            limit=STARTUP_TARGET_S,
            measured=statistics.median(times[name]),
            unit="s",
        )
        for name in TARGETED
    ]
    return BenchmarkResult(
        name="cli-startup",
        title="CLI start-up (s per process)",
        columns=["command", "median", "max"],
        rows=rows,
        checks=checks,
        notes=[f"{rounds} alternating rounds after one warm-up run of each"],
        data={"rounds": rounds, "times": times},
    )


def run_cli_startup(
    cluster: BenchCluster, rounds: int, log: Callable[[str], None]
) -> BenchmarkResult:
    del cluster  # no database: the commands only print their help
    return build_result(measure(rounds, log), rounds)
