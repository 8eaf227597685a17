"""``python -m benchmarks``: run the selected benchmarks, print tables, write the JSON.

Options: ``--only latency,pooler`` (default: all), ``--scale N`` patients for the
workload (default 100000), ``--duration S`` seconds per latency cell, ``--repeat N``
alternating rounds of the overhead benchmarks, ``--backup-scale N`` patients in the
database the backup benchmark dumps, ``--operator-count N`` resources for the operator
total, ``--operator-real-count N`` resources on the real control plane, ``--results DIR``.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmarks.environment import BenchCluster
from benchmarks.machine import load_average, machine_info
from benchmarks.report import (
    BenchmarkResult,
    render_result,
    render_summary,
    run_document,
    write_results,
)

RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class RunOptions:
    scale: int
    duration: float
    repeat: int
    backup_scale: int
    operator_latency_count: int
    operator_count: int
    operator_real_count: int


Runner = Callable[[BenchCluster, RunOptions, Callable[[str], None]], BenchmarkResult]


def _latency(
    cluster: BenchCluster, options: RunOptions, log: Callable[[str], None]
) -> BenchmarkResult:
    from benchmarks.workload import run_workload

    return run_workload(cluster, options.scale, options.duration, log)


def _pooler(
    cluster: BenchCluster, options: RunOptions, log: Callable[[str], None]
) -> BenchmarkResult:
    from benchmarks.pooler_overhead import run_pooler_overhead

    return run_pooler_overhead(cluster, options.duration, options.repeat, log)


def _pooler_prepared(
    cluster: BenchCluster, options: RunOptions, log: Callable[[str], None]
) -> BenchmarkResult:
    from benchmarks.pooler_prepared import run_pooler_prepared

    return run_pooler_prepared(cluster, options.duration, options.repeat, log)


def _engine(
    cluster: BenchCluster, options: RunOptions, log: Callable[[str], None]
) -> BenchmarkResult:
    from benchmarks.engine_overhead import run_engine_overhead

    return run_engine_overhead(cluster, options.repeat, log)


def _audit_cost(
    cluster: BenchCluster, options: RunOptions, log: Callable[[str], None]
) -> BenchmarkResult:
    from benchmarks.audit_write_cost import run_audit_write_cost

    return run_audit_write_cost(cluster, max(options.repeat, 1), log)


def _backup(
    cluster: BenchCluster, options: RunOptions, log: Callable[[str], None]
) -> BenchmarkResult:
    from benchmarks.backup_overhead import run_backup_overhead

    return run_backup_overhead(cluster, options.backup_scale, options.repeat, log)


def _object_storage(
    cluster: BenchCluster, options: RunOptions, log: Callable[[str], None]
) -> BenchmarkResult:
    from benchmarks.object_storage import run_object_storage

    return run_object_storage(cluster, options.repeat, log)


def _operator(
    cluster: BenchCluster, options: RunOptions, log: Callable[[str], None]
) -> BenchmarkResult:
    from benchmarks.operator_scale import run_operator_scale

    return run_operator_scale(cluster, options.operator_latency_count, options.operator_count, log)


def _operator_real_api(
    cluster: BenchCluster, options: RunOptions, log: Callable[[str], None]
) -> BenchmarkResult:
    from benchmarks.operator_real_api import run_operator_real_api

    return run_operator_real_api(cluster, options.operator_real_count, log)


def _cli_startup(
    cluster: BenchCluster, options: RunOptions, log: Callable[[str], None]
) -> BenchmarkResult:
    from benchmarks.cli_startup import run_cli_startup

    return run_cli_startup(cluster, max(options.repeat, 1) * 10, log)


BENCHMARKS: dict[str, Runner] = {
    "cli-startup": _cli_startup,
    "latency": _latency,
    "pooler": _pooler,
    "pooler-prepared": _pooler_prepared,
    "engine": _engine,
    "audit-cost": _audit_cost,
    "backup": _backup,
    "object-storage": _object_storage,
    "operator": _operator,
    "operator-real-api": _operator_real_api,
}


def selection(text: str | None) -> list[str]:
    """The benchmarks named in a comma-separated list, in the suite's order."""
    if not text:
        return list(BENCHMARKS)
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown benchmark {', '.join(unknown) or '(none given)'}: "
            f"choose from {', '.join(BENCHMARKS)}"
        )
    return [name for name in BENCHMARKS if name in names]


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, got {value}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Run dbkeeper's benchmarks."
    )
    p.add_argument(
        "--only",
        type=selection,
        default=list(BENCHMARKS),
        help=f"comma-separated selection of: {', '.join(BENCHMARKS)} (default: all)",
    )
    p.add_argument(
        "--scale",
        type=positive_int,
        default=100_000,
        help="patients in the workload database (default 100000)",
    )
    p.add_argument(
        "--duration",
        type=positive_seconds,
        default=5.0,
        help="seconds per latency cell and per pgbench run (default 5)",
    )
    p.add_argument(
        "--repeat",
        type=positive_int,
        default=3,
        help="alternating rounds of the overhead benchmarks (default 3)",
    )
    p.add_argument(
        "--backup-scale",
        type=positive_int,
        default=None,
        help="patients in the database the backup benchmark dumps "
        "(default: --scale, at most 20000)",
    )
    p.add_argument(
        "--operator-latency-count",
        type=positive_int,
        default=50,
        help="resources created one by one for create->Ready (default 50)",
    )
    p.add_argument(
        "--operator-count",
        type=positive_int,
        default=200,
        help="resources created at once for the total time (default 200)",
    )
    p.add_argument(
        "--operator-real-count",
        type=positive_int,
        default=1000,
        help="resources for the real control plane's total and idle CPU (default 1000)",
    )
    p.add_argument(
        "--results",
        type=Path,
        default=RESULTS_DIR,
        help="folder for the JSON results (default benchmarks/results)",
    )
    return p  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    options = RunOptions(
        scale=args.scale,
        duration=args.duration,
        repeat=args.repeat,
        backup_scale=args.backup_scale or min(args.scale, 20_000),
        operator_latency_count=args.operator_latency_count,
        operator_count=args.operator_count,
        operator_real_count=args.operator_real_count,
    )
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:7.1f}s] {message}", file=sys.stderr, flush=True)

    machine = machine_info()
    results: list[BenchmarkResult] = []
    failures: dict[str, str] = {}
    with BenchCluster() as cluster:
        for name in args.only:
            log(f"running {name}")
            try:
                result = BENCHMARKS[name](cluster, options, log)
            except Exception as exc:
                failures[name] = f"{type(exc).__name__}: {exc}"
                log(f"{name} failed:\n{traceback.format_exc()}")
                continue
            result.data["load_average_after"] = load_average()
            results.append(result)
            print(render_result(result), flush=True)
            print(flush=True)
    machine["load_average_at_end"] = load_average()
    document = run_document(
        machine,
        {**vars(options), "only": args.only, "seconds_total": round(time.monotonic() - started)},
        results,
    )
    document["failures"] = failures
    path = write_results(args.results, document)
    print(render_summary(results))
    for name, failure in failures.items():
        print(f"FAILED {name}: {failure}")
    print(f"results: {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
