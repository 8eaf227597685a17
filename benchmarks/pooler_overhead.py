"""Pooler overhead: pgbench select-only directly against PostgreSQL and through PgBouncer.

Both in the same run, alternating direct and pooled rounds, with 1 and 4 clients, the
simple query protocol (``-M prepared`` cannot work through transaction pooling). The
per-round-trip overhead is the difference of pgbench's average latencies: one
select-only transaction is one round trip in autocommit.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.environment import BenchCluster
from benchmarks.report import BenchmarkResult, Cell, TargetCheck
from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import find_pg_bindir

OVERHEAD_TARGET_US = 25.0
CLIENT_COUNTS = (1, 4)
PGBENCH_SCALE = 10
DATABASE = "pgbench"


@dataclass(frozen=True)
class PgbenchRun:
    tps: float
    latency_ms: float
    transactions: int


def parse_pgbench(output: str) -> PgbenchRun:
    """tps (without connection time), average latency and transactions from pgbench."""
    tps = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", output)
    latency = re.search(r"latency average = ([0-9.]+) ms", output)
    done = re.search(r"number of transactions actually processed: (\d+)", output)
    if not (tps and latency and done):
        raise ValueError(f"pgbench output not understood: {output.strip()[-400:]}")
    return PgbenchRun(float(tps.group(1)), float(latency.group(1)), int(done.group(1)))


def run_pgbench(args: list[str], conninfo: ConnInfo, timeout: float) -> str:
    env = {**os.environ, "PGPASSWORD": conninfo.password or ""}
    command = [
        str(find_pg_bindir() / "pgbench"),
        "-h", conninfo.host, "-p", str(conninfo.port), "-U", conninfo.user,
        *args, conninfo.dbname,
    ]  # fmt: skip
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"pgbench failed: {result.stderr.strip()[-400:]}")
    return result.stdout + result.stderr


def select_only(
    conninfo: ConnInfo, clients: int, seconds: float, protocol: str = "simple"
) -> PgbenchRun:
    """pgbench -S with ``protocol`` (simple, extended or prepared)."""
    output = run_pgbench(
        ["-n", "-S", "-M", protocol, "-c", str(clients), "-j", str(clients),
         "-T", str(max(1, round(seconds)))],
        conninfo,
        timeout=seconds + 60,
    )  # fmt: skip
    return parse_pgbench(output)


def run_pooler_overhead(
    cluster: BenchCluster, seconds: float, rounds: int, log: Callable[[str], None]
) -> BenchmarkResult:
    direct = cluster.create_database(DATABASE)
    log(f"pooler: pgbench -i -s {PGBENCH_SCALE}")
    run_pgbench(["-i", "-q", "-s", str(PGBENCH_SCALE)], direct, timeout=600)
    pooler = cluster.start_pooler(DATABASE)
    runs = direct_and_pooled_runs(direct, cluster.pooled_conninfo(pooler), seconds, rounds, log)
    return build_result(runs, seconds, rounds)


def direct_and_pooled_runs(
    direct: ConnInfo,
    pooled: ConnInfo,
    seconds: float,
    rounds: int,
    log: Callable[[str], None],
    *,
    label: str = "pooler",
    protocol: str = "simple",
) -> dict[tuple[str, int], list[PgbenchRun]]:
    """``rounds`` select-only runs per client count, direct and through the pooler."""
    runs: dict[tuple[str, int], list[PgbenchRun]] = {}
    for clients in CLIENT_COUNTS:
        for round_number in range(rounds):
            # Alternate which side goes first so drift in the machine's load hits both.
            order = [("direct", direct), ("pgbouncer", pooled)]
            if round_number % 2:
                order.reverse()
            for mode, target in order:
                log(f"{label}: {mode}, {clients} clients, round {round_number + 1}")
                run = select_only(target, clients, seconds, protocol=protocol)
                runs.setdefault((mode, clients), []).append(run)
    return runs


@dataclass(frozen=True)
class Medians:
    """The median runs of one client count, direct and through the pooler."""

    direct: list[PgbenchRun]
    pooled: list[PgbenchRun]

    @classmethod
    def of(cls, runs: dict[tuple[str, int], list[PgbenchRun]], clients: int) -> Medians:
        return cls(runs[("direct", clients)], runs[("pgbouncer", clients)])

    @property
    def direct_tps(self) -> float:
        return statistics.median(r.tps for r in self.direct)

    @property
    def pooled_tps(self) -> float:
        return statistics.median(r.tps for r in self.pooled)

    @property
    def direct_ms(self) -> float:
        return statistics.median(r.latency_ms for r in self.direct)

    @property
    def pooled_ms(self) -> float:
        return statistics.median(r.latency_ms for r in self.pooled)

    @property
    def added_latency_us(self) -> float:
        return (self.pooled_ms - self.direct_ms) * 1000.0

    def runs_data(self) -> dict[str, Any]:
        return {
            "direct": [r.__dict__ for r in self.direct],
            "pgbouncer": [r.__dict__ for r in self.pooled],
        }


def build_result(
    runs: dict[tuple[str, int], list[PgbenchRun]], seconds: float, rounds: int
) -> BenchmarkResult:
    rows: list[list[Cell]] = []
    checks: list[TargetCheck] = []
    data: dict[str, Any] = {"rounds": rounds, "seconds_per_run": seconds, "by_clients": {}}
    for clients in CLIENT_COUNTS:
        medians = Medians.of(runs, clients)
        direct_tps, pooled_tps = medians.direct_tps, medians.pooled_tps
        direct_ms, pooled_ms = medians.direct_ms, medians.pooled_ms
        overhead_us = medians.added_latency_us
        # Machine time the pooler adds per round trip, from throughput: with several
        # clients on few cores, latency also holds the queueing of the other clients
        # (latency = clients / tps), so the latency difference is `clients` times this.
        added_us = (1.0 / pooled_tps - 1.0 / direct_tps) * 1e6 if pooled_tps else float("inf")
        ratio = direct_tps / pooled_tps if pooled_tps else float("inf")
        rows.append(
            [clients, direct_tps, pooled_tps, ratio, direct_ms * 1000, pooled_ms * 1000,
             overhead_us, added_us]
        )  # fmt: skip
        checks.append(
            TargetCheck(
                name=f"pooler latency added per round trip, {clients} client(s)",
                limit=OVERHEAD_TARGET_US,
                measured=overhead_us,
                unit="µs",
            )
        )
        if clients > 1:
            checks.append(
                TargetCheck(
                    name=f"pooler machine time added per round trip, {clients} clients",
                    limit=OVERHEAD_TARGET_US,
                    measured=added_us,
                    unit="µs",
                )
            )
        data["by_clients"][str(clients)] = {
            **medians.runs_data(),
            "tps_ratio_direct_over_pooled": round(ratio, 3),
            "latency_added_us": round(overhead_us, 1),
            "machine_time_added_us": round(added_us, 1),
        }
    return BenchmarkResult(
        name="pooler",
        title="Pooler overhead (pgbench -S, simple protocol, median of rounds)",
        columns=[
            "clients",
            "direct tps",
            "pooled tps",
            "direct/pooled",
            "direct µs/tx",
            "pooled µs/tx",
            "added latency µs",
            "added time µs",
        ],
        rows=rows,
        checks=checks,
        notes=[
            f"pgbench scale {PGBENCH_SCALE}, {rounds} alternating rounds of {seconds:g} s;"
            " PgBouncer in transaction mode on the same 127.0.0.1 host"
        ],
        data=data,
    )
