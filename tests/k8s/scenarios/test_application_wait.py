"""An application's Deployment held back by `dbkeeper wait` until its schema is there.

On the test control plane, with the node running the pods and real PostgreSQL. The
Deployment is examples/applications/clinic-web.yaml (the one docs/applications.md
shows), with only what this node and this database need changed: the namespace, the
database's address, the app role's name, one replica, the images (the node runs only
the dbkeeper image, so the web container is a small HTTP server of that image), and a
readiness probe on the web container.
"""

from __future__ import annotations

import copy
import secrets
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg import sql

from dbkeeper.local.postgres import LocalPostgres, free_port
from tests.k8s.conftest import WORKLOAD_IMAGE
from tests.k8s.harness import Cluster
from tests.k8s.pod_runner import PodRunner
from tests.k8s.scenarios.conftest import (
    OwnedDatabase,
    create_owned_database,
    schema_manifest,
    secret_manifest,
    status_of,
    wait_for_phase,
)
from tests.secret_watch import watched

EXAMPLE = Path(__file__).parents[3] / "examples" / "applications" / "clinic-web.yaml"
NAMESPACE = "clinic-apps"
NAME = "clinic"
DEPLOYMENT = "clinic-web"
APP_SECRET = "clinic-app"  # the Secret the example's init container reads
NEEDED = "0007"  # the revision the example's release needs
BEFORE = "0005"


@pytest.fixture
def managing_owner(pg_cluster: LocalPostgres) -> Iterator[OwnedDatabase]:
    """A database owned by a role that may create roles, so the operator manages `app`."""
    database = create_owned_database(pg_cluster)
    with psycopg.connect(database.admin.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER ROLE {} CREATEROLE").format(sql.Identifier(database.username)))
    yield database
    pg_cluster.drop_database(database.conninfo.dbname)


def _example() -> dict[str, Any]:
    loaded = yaml.safe_load(EXAMPLE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _deployment_for(database: OwnedDatabase, app_user: str, port: int) -> dict[str, Any]:
    deployment = copy.deepcopy(_example())
    deployment["metadata"]["namespace"] = NAMESPACE
    deployment["spec"]["replicas"] = 1  # pods share the node's network
    pod = deployment["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    init["image"] = WORKLOAD_IMAGE
    address = {
        "PGHOST": database.conninfo.host,
        "PGPORT": str(database.conninfo.port),
        "PGDATABASE": database.conninfo.dbname,
        "PGUSER": app_user,
    }
    for variable in init["env"]:
        if variable["name"] in address:
            variable["value"] = address[variable["name"]]
    (web,) = pod["containers"]
    serve = f"""
        from http.server import HTTPServer, SimpleHTTPRequestHandler
        HTTPServer(("127.0.0.1", {port}), SimpleHTTPRequestHandler).serve_forever()
    """
    web.update(
        image=WORKLOAD_IMAGE,
        command=["python3", "-c", textwrap.dedent(serve)],
        ports=[{"name": "web", "containerPort": port}],
        readinessProbe={"tcpSocket": {"port": "web"}, "periodSeconds": 1},
    )
    return deployment


def _revision(database: OwnedDatabase) -> str:
    with psycopg.connect(database.admin.dsn()) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert row is not None
    return str(row[0])


def _pods(cluster: Cluster) -> list[dict[str, Any]]:
    return cluster.list("v1", "Pod", NAMESPACE, label_selector=f"app={DEPLOYMENT}")


def _ready_replicas(cluster: Cluster) -> int:
    found = cluster.get("apps/v1", "Deployment", NAMESPACE, DEPLOYMENT) or {}
    return int((found.get("status") or {}).get("readyReplicas") or 0)


def _init_state(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("initContainerStatuses") or [{}]
    return dict(statuses[0].get("state") or {})


def test_the_deployments_pod_is_ready_only_once_the_resource_reaches_the_revision(
    k8s_cluster: Cluster, kubelet: PodRunner, start_dbkeeper: Any, managing_owner: OwnedDatabase
) -> None:
    example = _example()
    init_args = example["spec"]["template"]["spec"]["initContainers"][0]["args"]
    assert init_args[:3] == ["wait", "--revision", NEEDED], "the test follows the example"

    k8s_cluster.ensure_namespace(NAMESPACE)
    owner = managing_owner
    app_user, app_password = f"app_{secrets.token_hex(5)}", watched(secrets.token_urlsafe(18))
    k8s_cluster.create(secret_manifest(NAMESPACE, "clinic-owner", owner.username, owner.password))
    k8s_cluster.create(secret_manifest(NAMESPACE, APP_SECRET, app_user, app_password))
    manifest = schema_manifest(NAMESPACE, NAME, owner, "clinic-owner", target=BEFORE)
    manifest["spec"]["roles"] = {"app": {"secret": APP_SECRET, "username": app_user}}

    with start_dbkeeper() as operator:
        k8s_cluster.create(manifest)
        wait_for_phase(k8s_cluster, NAMESPACE, NAME, "Ready", timeout=90)
        assert status_of(k8s_cluster, NAMESPACE, NAME)["currentRevision"] == BEFORE

        k8s_cluster.create(_deployment_for(owner, app_user, free_port()))

        # The init container runs, connected with the app role, and reports where the
        # database is: the pod is neither initialized nor ready while it is behind.
        def waiting_at_before() -> dict[str, Any] | None:
            pods = _pods(k8s_cluster)
            if len(pods) != 1 or "running" not in _init_state(pods[0]):
                return None
            log = kubelet.logs(NAMESPACE, pods[0]["metadata"]["name"], "wait-for-schema")
            behind = f"at revision {BEFORE}" in log and f"waiting for revision {NEEDED}" in log
            return pods[0] if behind else None

        pod = k8s_cluster.wait_for(
            waiting_at_before, 120, f"the init container to report the database at {BEFORE}"
        )
        pod_name = pod["metadata"]["name"]
        pod = k8s_cluster.get("v1", "Pod", NAMESPACE, pod_name) or {}
        conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions") or []}
        assert conditions.get("Initialized") == "False"
        assert conditions.get("Ready") == "False"
        assert _ready_replicas(k8s_cluster) == 0
        web = (pod["status"].get("containerStatuses") or [{}])[0]
        assert "running" not in (web.get("state") or {}), "the web container has not started"

        # The release bumps the resource's target; the operator migrates, and only then
        # does the init container let the web container start.
        k8s_cluster.patch(
            "dbkeeper.dev/v1alpha1",
            "DatabaseSchema",
            NAMESPACE,
            NAME,
            {"spec": {"migrations": {"targetRevision": NEEDED}}},
        )
        k8s_cluster.wait_for(
            lambda: _ready_replicas(k8s_cluster) == 1 or None, 180, "the clinic-web pod to be ready"
        )
        assert _revision(owner) == NEEDED, "the pod started only with the schema in place"
        k8s_cluster.wait_for(
            lambda: status_of(k8s_cluster, NAMESPACE, NAME).get("currentRevision") == NEEDED,
            60,
            f"the resource's status to say {NEEDED}",
        )

        pod = k8s_cluster.get("v1", "Pod", NAMESPACE, pod_name) or {}
        finished = _init_state(pod).get("terminated") or {}
        assert finished.get("exitCode") == 0, pod["status"]
        log = kubelet.logs(NAMESPACE, pod_name, "wait-for-schema")
        assert f"revision {NEEDED} is reached" in log, log
        assert app_password not in log
    assert app_password not in operator.log_text()
