"""Migration sets an application team ships itself: from a ConfigMap or an OCI image,
described and run as Jobs in the resource's namespace, never inside the operator.

On the test control plane with real PostgreSQL; the `kubelet` fixture runs the Jobs'
pods (`dbkeeper migrate describe`, `dbkeeper migrate`) on the test node, and the
`bundle_images` fixture gives it the images a team would push.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dbkeeper.manifests.migration import MIGRATOR_COMPONENT
from tests.k8s.bundle_images import BundleImages, write_bundle
from tests.k8s.harness import Cluster
from tests.k8s.pod_runner import PodRunner
from tests.k8s.scenarios.conftest import (
    API_VERSION,
    KIND,
    OwnedDatabase,
    secret_manifest,
    status_of,
    wait_for_phase,
)

NAMESPACE = "team-sets"
NAME = "clinic"
SECRET = "clinic-owner"
CONFIG_MAP = "clinic-set"
SET_LABEL = "dbkeeper.dev/migration-set"
# Set in the importing process when a revision file of these sets is imported: the
# operator runs in this test process, so the mark showing up here would mean it ran the
# team's code itself.
IMPORT_MARK = "dbkeeper_team_set_was_imported"
TIMEOUT = 180.0


def _revision(revision: str, down: str | None, upgrade: str, downgrade: str) -> str:
    return f'''"""Revision {revision} of the team's set."""
import sys
import types

from alembic import op

sys.modules.setdefault({IMPORT_MARK!r}, types.ModuleType({IMPORT_MARK!r}))

revision = {revision!r}
down_revision = {down!r}


def upgrade() -> None:
    op.execute({upgrade!r})


def downgrade() -> None:
    op.execute({downgrade!r})
'''


FIRST = {
    "0001_patients.py": _revision(
        "0001",
        None,
        "CREATE TABLE patients (id bigint PRIMARY KEY, name text NOT NULL)",
        "DROP TABLE patients",
    ),
    "0002_notes.py": _revision(
        "0002",
        "0001",
        "CREATE TABLE notes (id bigint PRIMARY KEY, body text)",
        "DROP TABLE notes",
    ),
}
THIRD = {
    "0003_note_author.py": _revision(
        "0003",
        "0002",
        "ALTER TABLE notes ADD COLUMN author text",
        "ALTER TABLE notes DROP COLUMN author",
    )
}
BROKEN = {
    "0004_broken.py": _revision(
        "0004",
        "0003",
        "ALTER TABLE no_such_table ADD COLUMN x int",
        "SELECT 1",
    )
}


def _config_map(files: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": CONFIG_MAP, "namespace": NAMESPACE, "labels": {SET_LABEL: "true"}},
        "data": files,
    }


def _resource(database: OwnedDatabase, migrations: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": NAME, "namespace": NAMESPACE},
        "spec": {
            "database": {
                "host": database.conninfo.host,
                "port": database.conninfo.port,
                "name": database.conninfo.dbname,
                "credentialsSecret": SECRET,
                "sslMode": "disable",
            },
            "migrations": migrations,
        },
    }


def _prepare(cluster: Cluster, database: OwnedDatabase) -> None:
    cluster.ensure_namespace(NAMESPACE)
    cluster.create(secret_manifest(NAMESPACE, SECRET, database.username, database.password))


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    for condition in status.get("conditions") or []:
        if condition["type"] == kind:
            return dict(condition)
    return {}


def _wait_for_revision(cluster: Cluster, revision: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        status = status_of(cluster, NAMESPACE, NAME)
        ready = status.get("phase") == "Ready" and status.get("currentRevision") == revision
        return status if ready else None

    return cluster.wait_for(
        check, TIMEOUT, f"Ready at {revision} (now {status_of(cluster, NAMESPACE, NAME)})"
    )


def _wait_for_reason(cluster: Cluster, reason: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        status = status_of(cluster, NAMESPACE, NAME)
        found = _condition(status, "SchemaCurrent").get("reason") == reason
        return status if found else None

    return cluster.wait_for(
        check, TIMEOUT, f"SchemaCurrent {reason} (now {status_of(cluster, NAMESPACE, NAME)})"
    )


def _database_revision(database: OwnedDatabase) -> str | None:
    with psycopg.connect(database.conninfo.dsn()) as conn:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(row[0]) if row else None


def _columns(database: OwnedDatabase, table: str) -> list[str]:
    with psycopg.connect(database.conninfo.dsn()) as conn:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
            "ORDER BY ordinal_position",
            (table,),
        ).fetchall()
    return [str(row[0]) for row in rows]


def _migrator_jobs(cluster: Cluster, purpose: str) -> list[dict[str, Any]]:
    selector = (
        f"app.kubernetes.io/instance={NAME},app.kubernetes.io/component={MIGRATOR_COMPONENT},"
        f"dbkeeper.dev/purpose={purpose}"
    )
    return cluster.list("batch/v1", "Job", NAMESPACE, label_selector=selector)


def _history_sources(database: OwnedDatabase) -> list[tuple[str, str, str | None]]:
    with psycopg.connect(database.conninfo.dsn()) as conn:
        rows = conn.execute(
            "SELECT revision, outcome, set_source FROM dbkeeper.migration_history ORDER BY id"
        ).fetchall()
    return [(str(r[0]), str(r[1]), r[2]) for r in rows]


def test_the_import_mark_is_set_by_importing_a_revision_file(tmp_path: Path) -> None:
    """The check the scenarios rely on can fail: importing a revision sets the mark."""
    path = tmp_path / "rev.py"
    path.write_text(FIRST["0001_patients.py"])
    probe = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('rev', {str(path)!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        f"print({IMPORT_MARK!r} in sys.modules)\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert shown.stdout.strip() == "True"


def test_a_set_from_a_configmap_runs_as_jobs_forward_back_and_failing(
    k8s_cluster: Cluster,
    kubelet: PodRunner,
    start_dbkeeper: Any,
    owned_database: OwnedDatabase,
) -> None:
    cluster, database = k8s_cluster, owned_database
    _prepare(cluster, database)
    with start_dbkeeper():
        # The ConfigMap does not exist yet: a waiting condition that names it.
        cluster.create(_resource(database, {"configMap": {"name": CONFIG_MAP}}))
        waiting = _wait_for_reason(cluster, "MigrationSourceUnavailable")
        assert CONFIG_MAP in _condition(waiting, "SchemaCurrent")["message"]
        assert waiting["phase"] == "Pending"

        # Created: healed, described and migrated to head by Jobs.
        cluster.create(_config_map(FIRST))
        ready = _wait_for_revision(cluster, "0002")
        assert ready["migrationSet"]["source"] == "configMap"
        assert ready["migrationSet"]["name"] == CONFIG_MAP
        identity = ready["migrationSet"]["identity"]
        assert identity.startswith(f"configMap {CONFIG_MAP} resourceVersion ")
        assert _database_revision(database) == "0002"
        assert [s for _, _, s in _history_sources(database)] == [identity, identity]
        first_jobs = _migrator_jobs(cluster, "migrate")
        assert len(first_jobs) == 1
        pod = first_jobs[0]["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False
        assert "serviceAccountName" not in pod
        assert _migrator_jobs(cluster, "describe")

        # A revision added to the ConfigMap moves the database forward.
        cluster.patch("v1", "ConfigMap", NAMESPACE, CONFIG_MAP, {"data": THIRD})
        moved = _wait_for_revision(cluster, "0003")
        assert moved["migrationSet"]["identity"] != identity
        assert "author" in _columns(database, "notes")

        # A failing revision: Failed with the Job's message, the database at 0003.
        cluster.patch("v1", "ConfigMap", NAMESPACE, CONFIG_MAP, {"data": BROKEN})
        failed = wait_for_phase(cluster, NAMESPACE, NAME, "Failed", timeout=TIMEOUT)
        assert "no_such_table" in failed["message"], failed
        assert failed["lastMigration"]["result"] == "Failed"
        assert failed["currentRevision"] == "0003"
        assert _database_revision(database) == "0003"
        assert failed["migrationSet"]["job"].startswith(f"{NAME}-migrate-")

        # Rolled back with consent, by a Job too, once the broken file is gone.
        cluster.patch("v1", "ConfigMap", NAMESPACE, CONFIG_MAP, {"data": {"0004_broken.py": None}})
        cluster.patch(
            API_VERSION,
            KIND,
            NAMESPACE,
            NAME,
            {"spec": {"migrations": {"targetRevision": "0002", "allowDowngrade": True}}},
        )
        _wait_for_revision(cluster, "0002")
        assert "author" not in _columns(database, "notes")
        downgrades = [
            job
            for job in _migrator_jobs(cluster, "migrate")
            if "--allow-downgrade" in job["spec"]["template"]["spec"]["containers"][0]["args"]
        ]
        assert downgrades

        # deletionPolicy Drop takes the set down to base with a Job as well.
        cluster.patch(API_VERSION, KIND, NAMESPACE, NAME, {"spec": {"deletionPolicy": "Drop"}})
        cluster.wait_for(
            lambda: status_of(cluster, NAMESPACE, NAME).get("observedGeneration") == 3 or None,
            TIMEOUT,
            "the Drop policy to be observed",
        )
        cluster.delete(API_VERSION, KIND, NAMESPACE, NAME)
        cluster.wait_for(
            lambda: cluster.get(API_VERSION, KIND, NAMESPACE, NAME) is None or None,
            TIMEOUT,
            "the resource to be dropped and deleted",
        )
        assert _columns(database, "patients") == []
        assert _database_revision(database) is None
    reasons = [e["reason"] for e in cluster.events(NAMESPACE, NAME)]
    assert "MigrationFailed" in reasons
    assert "RolledBack" in reasons
    assert IMPORT_MARK not in sys.modules


ENV_PY = (
    Path(__file__).resolve().parents[3] / "operator" / "dbkeeper" / "migrate" / "default_env"
).joinpath("env.py")
IMAGE = "registry.example.com/clinic/migrations:1.0"


def _bundle(tmp_path: Path) -> Path:
    files: dict[str, str | bytes] = {
        "migrations/clinic/env.py": ENV_PY.read_text(),
        **{f"migrations/clinic/versions/{key}": text for key, text in FIRST.items()},
    }
    return write_bundle(tmp_path / "bundle", files)


@pytest.mark.parametrize("mount", ["copy", "auto"])
def test_a_set_from_an_image_is_fetched_by_the_job_and_waits_for_a_pullable_image(
    k8s_cluster: Cluster,
    kubelet: PodRunner,
    bundle_images: BundleImages,
    start_dbkeeper: Any,
    owned_database: OwnedDatabase,
    tmp_path: Path,
    mount: str,
) -> None:
    cluster, database = k8s_cluster, owned_database
    _prepare(cluster, database)
    bundle_images.refuse(IMAGE, f"pull access denied for {IMAGE}")
    with start_dbkeeper(image_set_mount=mount):
        cluster.create(
            _resource(database, {"image": {"reference": IMAGE, "path": "/migrations/clinic"}})
        )
        waiting = _wait_for_reason(cluster, "MigrationSourceUnavailable")
        assert "ErrImagePull" in _condition(waiting, "SchemaCurrent")["message"] or (
            "ImagePullBackOff" in _condition(waiting, "SchemaCurrent")["message"]
        )
        (describe,) = _migrator_jobs(cluster, "describe")
        pod = describe["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        if mount == "copy":
            assert [c["name"] for c in pod["initContainers"]] == ["fetch-set"]
            assert pod["initContainers"][0]["image"] == IMAGE
        else:
            # Kubernetes 1.37: image volumes are served, the set is mounted, not copied.
            assert any(v.get("image", {}).get("reference") == IMAGE for v in volumes.values())
            assert not pod.get("initContainers")

        bundle_images.add(IMAGE, _bundle(tmp_path))
        ready = _wait_for_revision(cluster, "0002")
        assert ready["migrationSet"]["source"] == "image"
        assert ready["migrationSet"]["name"] == "clinic"
        if mount == "copy":
            assert "@sha256:" in ready["migrationSet"]["identity"]
        assert _database_revision(database) == "0002"
    assert IMPORT_MARK not in sys.modules


HOLD = "hold_0002"
HELD = {
    "0002_held.py": _revision(
        "0002",
        "0001",
        # Runs until the test drops the table HOLD (each loop reads the catalog afresh).
        "DO $$ BEGIN WHILE EXISTS (SELECT 1 FROM pg_tables WHERE tablename = 'hold_0002') "
        "LOOP PERFORM pg_sleep(0.2); END LOOP; CREATE TABLE notes (id bigint); END $$",
        "DROP TABLE notes",
    )
}


def _admin(database: OwnedDatabase, statement: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database.admin.dsn(), autocommit=True) as conn:
        cursor = conn.execute(statement)
        return cursor.fetchall() if cursor.description else []


def _kill_migrators(dbname: str) -> list[int]:
    """SIGKILL the `dbkeeper migrate` processes working on database ``dbname``."""
    killed = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "cmdline").read_bytes().split(b"\0")
            environ = (proc / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        migrating = any(part.endswith(b"dbkeeper") for part in command) and b"migrate" in command
        dsn = next((v for v in environ if v.startswith(b"DBKEEPER_DSN=")), b"")
        if migrating and f"dbname={dbname} ".encode() in dsn + b" ":
            os.kill(int(proc.name), signal.SIGKILL)
            killed.append(int(proc.name))
    return killed


def test_a_migrator_killed_mid_revision_leaves_a_whole_revision_and_says_so(
    k8s_cluster: Cluster,
    kubelet: PodRunner,
    start_dbkeeper: Any,
    owned_database: OwnedDatabase,
) -> None:
    cluster, database = k8s_cluster, owned_database
    _prepare(cluster, database)
    _admin(database, f"CREATE TABLE {HOLD} ()")
    with start_dbkeeper():
        cluster.create(_config_map({"0001_patients.py": FIRST["0001_patients.py"], **HELD}))
        cluster.create(_resource(database, {"configMap": {"name": CONFIG_MAP}}))
        cluster.wait_for(
            lambda: (
                _admin(
                    database,
                    "SELECT pid FROM pg_stat_activity WHERE query LIKE 'DO $$ BEGIN WHILE%' "
                    "AND pid <> pg_backend_pid()",
                )
                or None
            ),
            TIMEOUT,
            "revision 0002 to be running in the migrate Job",
        )
        (job,) = [
            j
            for j in _migrator_jobs(cluster, "migrate")
            if not j.get("status", {}).get("conditions")
        ]
        # The migrating process dies at once, as with the OOM killer: no result, no
        # chance to roll back itself.
        killed = _kill_migrators(database.conninfo.dbname)
        assert killed, "no migrating process of this database was found"
        failed = _wait_for_reason(cluster, "MigrationJobFailed")
        message = _condition(failed, "SchemaCurrent")["message"]
        assert "without a result" in message, message
        assert job["metadata"]["name"] in message, message
        # PostgreSQL rolled the revision back: the database is at the last whole one.
        assert _database_revision(database) == "0001"
        assert _columns(database, "notes") == []
        # Once the cause is gone, a change of the spec runs the move again.
        _admin(database, f"DROP TABLE {HOLD}")
        cluster.patch(
            API_VERSION, KIND, NAMESPACE, NAME, {"spec": {"migrations": {"lockRetries": 2}}}
        )
        _wait_for_revision(cluster, "0002")
    assert IMPORT_MARK not in sys.modules


def test_a_job_whose_pod_cannot_be_created_says_why_and_heals(
    k8s_cluster: Cluster,
    kubelet: PodRunner,
    start_dbkeeper: Any,
    owned_database: OwnedDatabase,
) -> None:
    cluster, database = k8s_cluster, owned_database
    _prepare(cluster, database)
    with start_dbkeeper():
        cluster.create(_config_map(FIRST))
        cluster.create(
            _resource(
                database,
                {"configMap": {"name": CONFIG_MAP}, "job": {"serviceAccountName": "migrator"}},
            )
        )
        waiting = _wait_for_reason(cluster, "MigrationSourceUnavailable")
        message = _condition(waiting, "SchemaCurrent")["message"]
        assert "cannot be created" in message, message
        assert "migrator" in message, message
        cluster.create(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": "migrator", "namespace": NAMESPACE},
            }
        )
        ready = _wait_for_revision(cluster, "0002")
        assert ready["migrationSet"]["source"] == "configMap"
