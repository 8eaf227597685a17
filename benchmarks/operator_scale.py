"""Operator scale on the test control plane: create->Ready latency, totals, memory.

dbkeeper's operator (``dbkeeper operator``, its own process) watches a real control
plane (etcd + kube-apiserver + kube-controller-manager from ``make tools``, see
tests/k8s/control_plane.py) and reconciles DatabaseSchemas whose databases are already
at the target revision, so there is nothing to migrate: what is measured is the
operator's own path (read the Secret, connect, read the revision, write status). In the
same run a trivial kopf operator (tests/k8s/trivial_operator.py, also its own process,
``kopf run``) handles Widgets on a fresh control plane of the same kind: its figures are
the floor that kopf and the API server alone cost.
"""

from __future__ import annotations

import base64
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from tests.k8s.control_plane import ControlPlane
from tests.k8s.harness import Cluster

from benchmarks.environment import BenchCluster
from benchmarks.report import BenchmarkResult, Cell, TargetCheck
from benchmarks.stats import percentile
from dbkeeper.conninfo import ConnInfo
from dbkeeper.migrate import MigrationOptions, load_set, migrate

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_CRD = REPO_ROOT / "crds" / "databaseschema.yaml"
WIDGET_CRD = REPO_ROOT / "tests" / "k8s" / "fixtures" / "widgets-crd.yaml"
TRIVIAL_OPERATOR = REPO_ROOT / "tests" / "k8s" / "trivial_operator.py"
FIXTURE_SETS = REPO_ROOT / "tests" / "fixtures" / "migration_sets"
MIGRATION_SET = "toy"
OWNER_ROLE = "bench_owner"
TEMPLATE_DB = "toy_at_head"
NAMESPACES = 4

P50_TARGET_MS = 200.0
TOTAL_TARGET_S = 30.0
RSS_TARGET_MB = 200.0
READY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ScaleFigures:
    """What one operator achieved."""

    latencies_ms: list[float]
    total_count: int
    total_s: float
    rss_mb: float
    peak_rss_mb: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "latencies_ms": [round(v, 1) for v in self.latencies_ms],
            "p50_ms": round(percentile(self.latencies_ms, 0.5), 1),
            "p99_ms": round(percentile(self.latencies_ms, 0.99), 1),
            "mean_ms": round(statistics.fmean(self.latencies_ms), 1),
            "total_count": self.total_count,
            "total_s": round(self.total_s, 2),
            "rss_mb": round(self.rss_mb, 1),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
        }


@dataclass(frozen=True)
class Kind:
    """How to create one resource of a kind and tell that it is Ready."""

    api_version: str
    kind: str
    manifest: Callable[[str, str], dict[str, Any]]


def _rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, in MiB."""
    values: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


@contextmanager
def control_plane(work: Path, crd: Path) -> Iterator[Cluster]:
    """A fresh control plane serving ``crd``; the cluster's client is its administrator."""
    with ControlPlane(work / f"control-plane-{crd.stem}") as plane:
        cluster = Cluster(plane.kubeconfig)
        try:
            cluster.apply_crds(crd, timeout=60)
            yield cluster
        finally:
            cluster.close()


@contextmanager
def operator_process(args: list[str], env: dict[str, str], log_path: Path) -> Iterator[int]:
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT
        )
        try:
            yield process.pid
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _phase(cluster: Cluster, kind: Kind, namespace: str, name: str) -> str | None:
    found = cluster.get(kind.api_version, kind.kind, namespace, name)
    return str((found or {}).get("status", {}).get("phase") or "") or None


def _wait_ready(cluster: Cluster, kind: Kind, namespace: str, name: str, poll: float) -> float:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while _phase(cluster, kind, namespace, name) != "Ready":
        if time.monotonic() > deadline:
            raise RuntimeError(f"{kind.kind} {namespace}/{name} not Ready in {READY_TIMEOUT_S} s")
        time.sleep(poll)
    return time.monotonic()


def measure(
    cluster: Cluster,
    kind: Kind,
    pid: int,
    latency_count: int,
    total_count: int,
    log: Callable[[str], None],
) -> ScaleFigures:
    # The first resource also waits for the operator to come up; it is not counted.
    cluster.create(kind.manifest("bench-latency", "warmup"))
    _wait_ready(cluster, kind, "bench-latency", "warmup", 0.1)
    latencies: list[float] = []
    for index in range(latency_count):
        name = f"one-{index}"
        started = time.monotonic()
        cluster.create(kind.manifest("bench-latency", name))
        latencies.append(
            (_wait_ready(cluster, kind, "bench-latency", name, 0.005) - started) * 1000
        )
    log(f"operator: {kind.kind} create->Ready p50 {percentile(latencies, 0.5):.0f} ms")
    names = [(f"bench-{i % NAMESPACES}", f"many-{i}") for i in range(total_count)]
    started = time.monotonic()
    for namespace, name in names:
        cluster.create(kind.manifest(namespace, name))
    pending = set(names)
    deadline = started + max(120.0, total_count * 1.0)
    while pending:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(pending)} of {total_count} {kind.kind}s never became Ready")
        for namespace in {ns for ns, _ in pending}:
            for item in cluster.list(kind.api_version, kind.kind, namespace):
                if item.get("status", {}).get("phase") == "Ready":
                    pending.discard((namespace, item["metadata"]["name"]))
        if pending:
            time.sleep(0.1)
    total = time.monotonic() - started
    rss, peak = _rss_mb(pid)
    log(f"operator: {total_count} {kind.kind}s Ready in {total:.1f} s, RSS {rss:.0f} MiB")
    return ScaleFigures(latencies, total_count, total, rss, peak)


def _secret(namespace: str, username: str, password: str) -> dict[str, Any]:
    def encode(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "owner", "namespace": namespace},
        "type": "Opaque",
        "data": {"username": encode(username), "password": encode(password)},
    }


def prepare_databases(cluster: BenchCluster, count: int) -> tuple[ConnInfo, list[str]]:
    """``count`` databases at the toy set's head, owned by one login role."""
    admin = cluster.postgres.admin_conninfo()
    owner = ConnInfo(admin.host, admin.port, TEMPLATE_DB, OWNER_ROLE, cluster.client_password)
    with psycopg.connect(admin.dsn(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(OWNER_ROLE), sql.Literal(cluster.client_password)
            )
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(
                sql.Identifier(TEMPLATE_DB), sql.Identifier(OWNER_ROLE)
            )
        )
    migrate(
        owner,
        load_set(MIGRATION_SET, root=FIXTURE_SETS),
        MigrationOptions(target="head", lint_mode="off"),
    )
    names = [f"toy_{index}" for index in range(count)]
    with psycopg.connect(admin.dsn(), autocommit=True) as conn:
        for name in names:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {} OWNER {}").format(
                    sql.Identifier(name), sql.Identifier(TEMPLATE_DB), sql.Identifier(OWNER_ROLE)
                )
            )
    return owner, names


def run_operator_scale(
    cluster: BenchCluster, latency_count: int, total_count: int, log: Callable[[str], None]
) -> BenchmarkResult:
    work = cluster.base_dir / "operator"
    work.mkdir(exist_ok=True)
    needed = 1 + latency_count + total_count
    log(f"operator: {needed} databases at the {MIGRATION_SET} set's head")
    owner, databases = prepare_databases(cluster, needed)
    free = iter(databases)
    assigned: dict[tuple[str, str], str] = {}

    def schema(namespace: str, name: str) -> dict[str, Any]:
        database = assigned.setdefault((namespace, name), next(free))
        return {
            "apiVersion": "dbkeeper.dev/v1alpha1",
            "kind": "DatabaseSchema",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "database": {
                    "host": owner.host, "port": owner.port, "name": database,
                    "credentialsSecret": "owner", "sslMode": "disable",
                },
                "migrations": {"set": MIGRATION_SET, "targetRevision": "head"},
            },
        }  # fmt: skip

    def widget(namespace: str, name: str) -> dict[str, Any]:
        return {
            "apiVersion": "test.dbkeeper.dev/v1",
            "kind": "Widget",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"size": 3},
        }

    namespaces = ["bench-latency", *(f"bench-{i}" for i in range(NAMESPACES))]
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("DBKEEPER_")}
    bindir = Path(sys.executable).parent

    log("operator: trivial kopf handler")
    with control_plane(work, WIDGET_CRD) as api:
        for namespace in namespaces:
            api.ensure_namespace(namespace)
        env = {**base_env, "KUBECONFIG": str(api.kubeconfig_path), "PYTHONPATH": str(REPO_ROOT)}
        args = [str(bindir / "kopf"), "run", "--standalone", "-A", "-q", str(TRIVIAL_OPERATOR)]
        with operator_process(args, env, work / "trivial.log") as pid:
            trivial = measure(
                api, Kind("test.dbkeeper.dev/v1", "Widget", widget), pid,
                latency_count, total_count, log,
            )  # fmt: skip

    log("operator: dbkeeper")
    with control_plane(work, SCHEMA_CRD) as api:
        for namespace in namespaces:
            api.ensure_namespace(namespace)
            api.create(_secret(namespace, OWNER_ROLE, cluster.client_password))
        env = {
            **base_env,
            "KUBECONFIG": str(api.kubeconfig_path),
            "DBKEEPER_MIGRATIONS_DIR": str(FIXTURE_SETS),
            "DBKEEPER_METRICS_PORT": "0",
            "DBKEEPER_HEALTH_PORT": "0",
            "DBKEEPER_LOG_LEVEL": "WARNING",
        }
        with operator_process(
            [str(bindir / "dbkeeper"), "operator"], env, work / "dbkeeper.log"
        ) as pid:
            ours = measure(
                api, Kind("dbkeeper.dev/v1alpha1", "DatabaseSchema", schema), pid,
                latency_count, total_count, log,
            )  # fmt: skip
    return build_result(ours, trivial)


def build_result(ours: ScaleFigures, trivial: ScaleFigures) -> BenchmarkResult:
    rows: list[list[Cell]] = []
    for name, figures in (("dbkeeper operator", ours), ("trivial kopf handler", trivial)):
        lat = figures.latencies_ms
        rows.append(
            [name, len(lat), percentile(lat, 0.5), percentile(lat, 0.99), figures.total_count,
             figures.total_s, figures.rss_mb, figures.peak_rss_mb]
        )  # fmt: skip
    count = ours.total_count
    checks = [
        TargetCheck("create->Ready p50, nothing to migrate", P50_TARGET_MS,
                    percentile(ours.latencies_ms, 0.5), "ms"),
        TargetCheck(f"{count} resources Ready, total", TOTAL_TARGET_S * count / 200
                    if count != 200 else TOTAL_TARGET_S, ours.total_s, "s",
                    note=f"trivial kopf handler floor in the same run: {trivial.total_s:.1f} s"),
        TargetCheck("operator RSS at the end", RSS_TARGET_MB, ours.rss_mb, "MiB"),
    ]  # fmt: skip
    return BenchmarkResult(
        name="operator",
        title="Operator scale on the test control plane (own processes)",
        columns=[
            "operator",
            "one by one",
            "p50 ms",
            "p99 ms",
            "at once",
            "total s",
            "RSS MiB",
            "peak RSS MiB",
        ],
        rows=rows,
        checks=checks,
        notes=[
            "create->Ready: resources created one at a time, Ready polled every 5 ms;"
            " total: all created back to back, then listed every 0.1 s",
            f"trivial kopf floor: p50 {percentile(trivial.latencies_ms, 0.5):.0f} ms,"
            f" {trivial.total_count} in {trivial.total_s:.1f} s;"
            f" dbkeeper/floor total: {ours.total_s / trivial.total_s:.2f}x",
        ],
        data={"dbkeeper": ours.to_dict(), "trivial_kopf": trivial.to_dict()},
    )
