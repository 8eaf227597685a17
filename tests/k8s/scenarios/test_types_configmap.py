"""The TypeScript module the operator publishes into a ConfigMap (spec.types).

On the test control plane with real PostgreSQL and the healthcare set: the module
follows the schema's revision, a ConfigMap the resource does not own is never touched,
and removing spec.types removes what the resource published. One operator start for the
whole story, as a team would live it.
"""

from __future__ import annotations

import json
from typing import Any

from tests.k8s.scenarios.conftest import API_VERSION, KIND, wait_for_phase
from tests.k8s.scenarios.workloads import NAME, NAMESPACE, Workload

PUBLISHED = "clinic-schema-types"
FOREIGN = "team-schema-types"
KEY = "schema.ts"


def _module(workload: Workload, name: str = PUBLISHED) -> str | None:
    found = workload.get("v1", "ConfigMap", name)
    return None if found is None else (found.get("data") or {}).get(KEY)


def _wait_for_module(workload: Workload, revision: str) -> str:
    header = f"// The tables of migration set healthcare at revision {revision}, for Drizzle ORM."

    def check() -> str | None:
        published = (workload.status().get("types") or {}).get("revision") == revision
        module = _module(workload)
        return module if published and module and module.startswith(header) else None

    return workload.cluster.wait_for(
        check, 60, f"the module of {revision} in ConfigMap {PUBLISHED} ({workload.status()})"
    )


def _declares(module: str, table: str) -> bool:
    return f'pgTable(\n  "{table}",' in module


def test_the_module_follows_the_revision_and_stays_out_of_configmaps_of_others(
    workload: Workload,
) -> None:
    workload.create(migrations={"target": "0001"}, types={"configMap": PUBLISHED})

    first = _wait_for_module(workload, "0001")
    assert _declares(first, "organizations")
    assert not _declares(first, "patients"), "a table of a later revision"
    configmap = workload.get("v1", "ConfigMap", PUBLISHED)
    resource = workload.cluster.get(API_VERSION, KIND, NAMESPACE, NAME)
    assert configmap is not None
    assert resource is not None
    (owner,) = configmap["metadata"]["ownerReferences"]
    assert (owner["uid"], owner["controller"]) == (resource["metadata"]["uid"], True)
    labels = configmap["metadata"]["labels"]
    assert (labels["dbkeeper.dev/schema-set"], labels["dbkeeper.dev/schema-revision"]) == (
        "healthcare",
        "0001",
    )
    assert workload.status()["types"] == {
        "configMap": PUBLISHED,
        "key": KEY,
        "migrationSet": "healthcare",
        "revision": "0001",
    }
    assert workload.database.password not in json.dumps(configmap)

    # A move: the module follows.
    workload.patch_spec({"migrations": {"targetRevision": "0003"}})
    moved = _wait_for_module(workload, "0003")
    assert _declares(moved, "patients")
    wait_for_phase(workload.cluster, NAMESPACE, NAME, "Ready")

    # A ConfigMap of the team's own by the name asked for: left as it is.
    foreign: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": FOREIGN, "namespace": NAMESPACE},
        "data": {KEY: "// written by the team\n"},
    }
    workload.cluster.create(foreign)
    workload.patch_spec({"types": {"configMap": FOREIGN}})
    refused = workload.wait_condition("TypesPublished", "False", "ConfigMapNotOwned")
    assert FOREIGN in refused["message"]
    degraded = wait_for_phase(workload.cluster, NAMESPACE, NAME, "Degraded")
    ready = next(c for c in degraded["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "ConfigMapNotOwned"
    after = workload.get("v1", "ConfigMap", FOREIGN)
    assert after is not None
    assert after["data"] == foreign["data"]
    assert "ownerReferences" not in after["metadata"]
    assert _module(workload) == moved, "what was published stays until something replaces it"

    # No more types: the resource's own ConfigMap goes, the team's stays.
    workload.patch_spec({"types": None})
    workload.cluster.wait_for(
        lambda: workload.get("v1", "ConfigMap", PUBLISHED) is None,
        60,
        f"ConfigMap {PUBLISHED} to be deleted",
    )
    status = wait_for_phase(workload.cluster, NAMESPACE, NAME, "Ready")
    assert "types" not in status
    assert all(c["type"] != "TypesPublished" for c in status["conditions"])
    assert (workload.get("v1", "ConfigMap", FOREIGN) or {}).get("data") == foreign["data"]
