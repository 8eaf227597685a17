"""Fixtures for tests against a Kubernetes API: a real control plane of our own.

- `k8s_cluster`: a fresh control plane per test (etcd, kube-apiserver and
  kube-controller-manager from `.tools/bin`, see tests/k8s/control_plane.py) with the Helm
  chart installed (CRDs, RBAC; tests/k8s/chart_install.py). Operators the tests start log
  in as the chart's ServiceAccount. With DBKEEPER_E2E_KUBECONFIG set it wraps that real
  cluster instead, so the same scenario tests run against kind.
- `kubelet`: the cluster's one node, which runs pods of the dbkeeper image as local
  processes (tests/k8s/pod_runner.py). Without it pods stay Pending.
- `bundle_images`: the migration bundle images that node can pull
  (tests/k8s/bundle_images.py): `bundle_images.add(reference, folder)` makes a folder an
  image's content, `bundle_images.refuse(reference, message)` makes its pulls fail until
  it is added. Usable before or after the `kubelet` starts.
- `run_operator`: starts kopf operators in threads against `k8s_cluster`; every run still
  going is stopped at teardown.

Markers: `@pytest.mark.k8s_chart(values={...})` installs the chart with those values;
`@pytest.mark.k8s_crds(path, ...)` applies more CRDs, and operators then log in as the
administrator (the chart's RBAC knows nothing of them).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import pytest

from dbkeeper.local.postgres import find_pg_bindir
from tests.k8s.bundle_images import BundleImages
from tests.k8s.chart_install import install_chart
from tests.k8s.control_plane import ControlPlane
from tests.k8s.harness import Cluster, HandlerTargets, OperatorRun
from tests.k8s.pod_runner import PodRunner

REPO_ROOT = Path(__file__).resolve().parents[2]
DBKEEPER_CRD_PATH = REPO_ROOT / "crds" / "databaseschema.yaml"
WIDGET_CRD_PATH = Path(__file__).parent / "fixtures" / "widgets-crd.yaml"
E2E_KUBECONFIG_VARIABLE = "DBKEEPER_E2E_KUBECONFIG"
# The image of the pooler and backup pods of the operators the tests run: the only image
# the test node runs. (The chart's own operator pods use the chart's image and stay
# Pending: the operator under test runs in the test process.)
WORKLOAD_IMAGE = "dbkeeper:under-test"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "k8s_crds(path, ...): more CRDs; operators log in as the administrator"
    )
    config.addinivalue_line(
        "markers", "k8s_chart(values={}): Helm values the chart is installed with"
    )


class RunOperator(Protocol):
    def __call__(
        self,
        targets: HandlerTargets,
        *,
        namespaces: Iterable[str] | None = None,
        peering: str | None = None,
        priority: int = 0,
        env: Mapping[str, str] | None = None,
        log_level: int = logging.DEBUG,
        memo: Mapping[str, Any] | None = None,
    ) -> OperatorRun: ...


@pytest.fixture
def k8s_cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    """A Kubernetes API for one test: a fresh control plane, or the e2e kubeconfig's."""
    marker = request.node.get_closest_marker("k8s_crds")
    extra_crds: list[Path] = [Path(p) for p in marker.args] if marker else []

    real_kubeconfig = os.environ.get(E2E_KUBECONFIG_VARIABLE)
    if real_kubeconfig:
        # A real cluster (kind): not exercised on the machines these tests are written on.
        cluster = Cluster(Path(real_kubeconfig))
        for crd in [DBKEEPER_CRD_PATH, *extra_crds]:
            cluster.apply_crds(crd)
        try:
            yield cluster
        finally:
            cluster.close()
        return

    chart = request.node.get_closest_marker("k8s_chart")
    values: dict[str, Any] = dict(chart.kwargs.get("values", {})) if chart else {}
    with ControlPlane(tmp_path / "control-plane") as plane:
        cluster = Cluster(plane.kubeconfig, etcd_url=plane.etcd_url)
        try:
            # The chart brings the CRDs and the operator's RBAC; operators started by the
            # tests log in as its ServiceAccount.
            installed = install_chart(cluster, tmp_path, values)
            cluster.operator_kubeconfig = None if extra_crds else installed.kubeconfig
            for crd in [DBKEEPER_CRD_PATH, *extra_crds]:
                cluster.apply_crds(crd, timeout=60)
            yield cluster
        finally:
            cluster.close()


@pytest.fixture
def bundle_images() -> BundleImages:
    """The migration bundle images the test's node (`kubelet`) can pull; empty at first."""
    return BundleImages()


@pytest.fixture
def kubelet(
    k8s_cluster: Cluster, tmp_path: Path, bundle_images: BundleImages
) -> Iterator[PodRunner]:
    """The cluster's node: runs the pods of the image the operator puts in its pods and
    of the test's `bundle_images` (tests/k8s/pod_runner.py); every pod is stopped at
    teardown."""
    if k8s_cluster.etcd_url is None:
        raise RuntimeError("pods run only on the test control plane")
    if os.geteuid() != 0:
        pytest.fail(
            "the test node runs pods in mount namespaces as their runAsUser: run the tests "
            "as root (CI does)",
            pytrace=False,
        )
    with PodRunner(
        k8s_cluster.kubeconfig_path,
        tmp_path / "node",
        WORKLOAD_IMAGE,
        find_pg_bindir(),
        images=bundle_images,
    ) as runner:
        yield runner


@pytest.fixture
def run_operator(k8s_cluster: Cluster) -> Iterator[RunOperator]:
    """Start a kopf operator against `k8s_cluster`: `with run_operator([...]) as op: ...`."""
    runs: list[OperatorRun] = []

    def start(
        targets: HandlerTargets,
        *,
        namespaces: Iterable[str] | None = None,
        peering: str | None = None,
        priority: int = 0,
        env: Mapping[str, str] | None = None,
        log_level: int = logging.DEBUG,
        memo: Mapping[str, Any] | None = None,
    ) -> OperatorRun:
        run = OperatorRun(
            k8s_cluster,
            targets,
            namespaces=namespaces,
            peering=peering,
            priority=priority,
            env=env,
            log_level=log_level,
            memo=memo,
        )
        runs.append(run)
        return run

    yield start
    for run in reversed(runs):
        run.stop()
