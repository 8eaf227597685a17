"""The Helm chart installed into a test cluster, and a login as its ServiceAccount.

`install_chart` runs `helm install` as the cluster's administrator, once the chart's own
CRDs (its crds/ folder) are served;
`service_account_kubeconfig` asks the API server for a token of the chart's own
ServiceAccount (TokenRequest) and writes a kubeconfig that logs in with it. An operator
run with that kubeconfig can do exactly what the chart's RBAC grants, no more.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.k8s.harness import Cluster

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART = REPO_ROOT / "charts" / "dbkeeper"
HELM = REPO_ROOT / ".tools" / "bin" / "helm"
RELEASE = "keeper"
NAMESPACE = "dbkeeper-system"
# The chart names its objects <release>-dbkeeper (see _helpers.tpl).
SERVICE_ACCOUNT = f"{RELEASE}-dbkeeper"
TOKEN_SECONDS = 3600


@dataclass(frozen=True)
class Installed:
    """A release of the chart and a kubeconfig logging in as its ServiceAccount."""

    release: str
    namespace: str
    kubeconfig: Path


def install_chart(
    cluster: Cluster,
    workdir: Path,
    values: Mapping[str, Any] | None = None,
    *,
    release: str = RELEASE,
    namespace: str = NAMESPACE,
) -> Installed:
    """``helm install`` the chart with ``values``; returns the ServiceAccount's login."""
    if not HELM.exists():
        raise RuntimeError(f"{HELM} not found: run `make tools`")
    # A namespaced install puts a Role into each watched namespace: they must exist.
    for watched in (values or {}).get("watch", {}).get("namespaces", []):
        cluster.ensure_namespace(watched)
    # Helm creates the crds/ folder's CRDs and waits for them to be established, but the
    # API server's discovery can still lag behind on a busy machine, and the install then
    # fails on the chart's ClusterKopfPeering ("ensure CRDs are installed first"). So the
    # CRDs are created first and waited for until discovery serves them, as the chart's
    # README advises for such clusters; helm leaves CRDs that exist alone.
    for crds in sorted((CHART / "crds").glob("*.yaml")):
        cluster.apply_crds(crds, timeout=120)
    result = subprocess.run(
        [
            str(HELM),
            "install",
            release,
            str(CHART),
            f"--kubeconfig={cluster.kubeconfig_path}",
            f"--namespace={namespace}",
            "--create-namespace",
            # Only hooks are waited for: the chart's own operator pods never run here.
            "--wait=hookOnly",
            "--values=-",
        ],
        input=json.dumps(dict(values or {})),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"helm install failed: {result.stderr.strip()}")
    account = f"{release}-dbkeeper"
    kubeconfig = service_account_kubeconfig(
        cluster, namespace, account, workdir / f"{release}-kubeconfig"
    )
    return Installed(release, namespace, kubeconfig)


def service_account_kubeconfig(cluster: Cluster, namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig at ``path`` that logs in with a fresh token of ``account``."""
    answer = cluster.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": TOKEN_SECONDS},
        },
    )
    token = answer["status"]["token"]
    admin = yaml.safe_load(cluster.kubeconfig_path.read_text())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [
            {"name": account, "context": {"cluster": admin["clusters"][0]["name"], "user": account}}
        ],
        "current-context": account,
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path
