"""What a user meets with kubectl against a real API server: the CRD as it is served.

Every example is accepted by the server's own validation (`--dry-run=server`), `kubectl
get dbs` shows the printer columns, and `kubectl explain` reads the schema's
descriptions.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.k8s.conftest import REPO_ROOT
from tests.k8s.control_plane import TOOLS_BIN
from tests.k8s.harness import Cluster

EXAMPLES = sorted((REPO_ROOT / "examples").glob("*.yaml"))
# Built with the control plane by `make tools`, at the same version.
KUBECTL = TOOLS_BIN / "kubectl"


def kubectl(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KUBECTL), f"--kubeconfig={cluster.kubeconfig_path}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _namespaces(path: Path) -> set[str]:
    return {
        doc["metadata"]["namespace"]
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc.get("metadata", {}).get("namespace")
    }


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_example_is_accepted_by_the_api_server(k8s_cluster: Cluster, example: Path) -> None:
    for namespace in _namespaces(example) | {"default"}:
        k8s_cluster.ensure_namespace(namespace)

    applied = kubectl(k8s_cluster, "apply", "--dry-run=server", "-f", str(example))

    assert applied.returncode == 0, applied.stderr
    assert "(server dry run)" in applied.stdout


def test_an_invalid_resource_is_refused_by_the_server_naming_the_field(
    k8s_cluster: Cluster, tmp_path: Path
) -> None:
    document = yaml.safe_load(EXAMPLES[0].read_text())
    document["metadata"]["namespace"] = "default"
    document["spec"]["migrations"]["lockTimeout"] = "soon"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(document))

    applied = kubectl(k8s_cluster, "apply", "--dry-run=server", "-f", str(bad))

    assert applied.returncode != 0
    assert "spec.migrations.lockTimeout" in applied.stderr


def test_kubectl_get_shows_the_printer_columns(k8s_cluster: Cluster) -> None:
    k8s_cluster.ensure_namespace("health")
    document = yaml.safe_load((REPO_ROOT / "examples" / "minimal.yaml").read_text())
    document["metadata"]["namespace"] = "health"
    k8s_cluster.create(document)

    listed = kubectl(k8s_cluster, "get", "dbs", "-A")

    assert listed.returncode == 0, listed.stderr
    header = listed.stdout.splitlines()[0].split()
    assert header == ["NAMESPACE", "NAME", "PHASE", "CURRENT", "TARGET", "LAST", "BACKUP", "AGE"]
    assert document["metadata"]["name"] in listed.stdout


def test_kubectl_explain_reads_the_schema(k8s_cluster: Cluster) -> None:
    def explained() -> subprocess.CompletedProcess[str] | None:
        result = kubectl(k8s_cluster, "explain", "databaseschema.spec.migrations")
        return result if result.returncode == 0 else None

    # The server publishes a new CRD's OpenAPI a moment after it is served.
    found = k8s_cluster.wait_for(explained, 90, "kubectl explain to find the schema")

    for field in ("targetRevision", "allowDowngrade", "lockTimeout"):
        assert field in found.stdout
