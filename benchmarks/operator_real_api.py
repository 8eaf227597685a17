"""Operator scale on a real control plane: 1,000 resources to Ready, then idle CPU.

dbkeeper's operator (``dbkeeper operator``, its own process) runs against etcd +
kube-apiserver + kube-controller-manager built by ``make tools`` (tests/k8s), with the
administrator's kubeconfig. The resources point at databases already at the toy set's
head (several resources share one database), so what is measured is the operator's own
path: watch, pass (Secret, connect, revision), conditional status write. After all are
Ready, the operator's CPU time is read over a window of a few re-check intervals: the
cost of keeping that many resources checked.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.k8s.control_plane import ControlPlane, missing_binaries
from tests.k8s.harness import Cluster

from benchmarks.environment import BenchCluster
from benchmarks.operator_scale import (
    FIXTURE_SETS,
    MIGRATION_SET,
    OWNER_ROLE,
    SCHEMA_CRD,
    _rss_mb,
    _secret,
    operator_process,
    prepare_databases,
)
from benchmarks.report import BenchmarkResult, TargetCheck

RESOURCES_PER_DATABASE = 20
NAMESPACES = 10
RECHECK_SECONDS = 60
CPU_WINDOW_S = 2 * RECHECK_SECONDS
TOTAL_TARGET_S = 60.0
CPU_TARGET_CORES = 0.25
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (its threads and reaped children too)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + cutime + cstime) / CLOCK_TICKS


def _ready_count(cluster: Cluster, namespaces: list[str]) -> int:
    return sum(
        1
        for namespace in namespaces
        for item in cluster.list("dbkeeper.dev/v1alpha1", "DatabaseSchema", namespace)
        if item.get("status", {}).get("phase") == "Ready"
    )


def run_operator_real_api(
    cluster: BenchCluster, count: int, log: Callable[[str], None]
) -> BenchmarkResult:
    missing = missing_binaries()
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not built: run `make tools`")
    databases = max(1, -(-count // RESOURCES_PER_DATABASE))
    log(f"operator (real API): {databases} databases at the {MIGRATION_SET} set's head")
    owner, names = prepare_databases(cluster, databases)
    namespaces = [f"scale-{i}" for i in range(NAMESPACES)]
    bindir = Path(sys.executable).parent
    with (
        tempfile.TemporaryDirectory(prefix="dbkeeper-bench-api-") as work,
        ControlPlane(Path(work) / "control-plane") as plane,
    ):
        api = Cluster(plane.kubeconfig)
        api.apply_crds(SCHEMA_CRD, timeout=60)
        for namespace in namespaces:
            api.ensure_namespace(namespace)
            api.create(_secret(namespace, OWNER_ROLE, cluster.client_password))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("DBKEEPER_")},
            "KUBECONFIG": str(plane.kubeconfig),
            "DBKEEPER_MIGRATIONS_DIR": str(FIXTURE_SETS),
            "DBKEEPER_METRICS_PORT": "0",
            "DBKEEPER_HEALTH_PORT": "0",
            "DBKEEPER_LOG_LEVEL": "WARNING",
            "DBKEEPER_RECHECK_INTERVAL": f"{RECHECK_SECONDS}s",
        }
        log_path = Path(work) / "operator.log"
        with operator_process([str(bindir / "dbkeeper"), "operator"], env, log_path) as pid:
            started = time.monotonic()
            for index in range(count):
                api.create(_schema(namespaces[index % NAMESPACES], index, owner, names))
            created = time.monotonic() - started
            deadline = started + max(300.0, count * 0.5)
            ready = 0
            while ready < count:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {ready} of {count} resources became Ready")
                time.sleep(0.5)
                ready = _ready_count(api, namespaces)
            total = time.monotonic() - started
            log(f"operator (real API): {count} Ready in {total:.1f} s (created in {created:.1f})")
            cpu_before, wall_before = _cpu_seconds(pid), time.monotonic()
            time.sleep(CPU_WINDOW_S)
            cores = (_cpu_seconds(pid) - cpu_before) / (time.monotonic() - wall_before)
            rss, peak = _rss_mb(pid)
            log(f"operator (real API): idle {cores:.3f} cores, RSS {rss:.0f} MiB")
        api.close()
    return BenchmarkResult(
        name="operator_real_api",
        title="Operator scale on a real control plane (etcd, kube-apiserver, own process)",
        columns=["resources", "created s", "all Ready s", "idle cores", "RSS MiB", "peak MiB"],
        rows=[[count, created, total, cores, rss, peak]],
        checks=[
            TargetCheck(f"{count} resources Ready, total", TOTAL_TARGET_S, total, "s"),
            TargetCheck(
                f"CPU at {count} resources, re-check every {RECHECK_SECONDS}s",
                CPU_TARGET_CORES,
                cores,
                "cores",
            ),
        ],
        notes=[
            f"{RESOURCES_PER_DATABASE} resources per database, all at head (nothing to move);"
            f" idle CPU over {CPU_WINDOW_S} s after all were Ready",
        ],
        data={
            "count": count,
            "created_s": round(created, 2),
            "total_s": round(total, 2),
            "idle_cores": round(cores, 4),
            "rss_mb": round(rss, 1),
            "peak_rss_mb": round(peak, 1),
        },
    )


def _schema(namespace: str, index: int, owner: Any, names: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "dbkeeper.dev/v1alpha1",
        "kind": "DatabaseSchema",
        "metadata": {"name": f"many-{index}", "namespace": namespace},
        "spec": {
            "database": {
                "host": owner.host, "port": owner.port,
                "name": names[index // RESOURCES_PER_DATABASE],
                "credentialsSecret": "owner", "sslMode": "disable",
            },
            "migrations": {"set": MIGRATION_SET, "targetRevision": "head"},
        },
    }  # fmt: skip
