"""The migration Job: one pod layout per kind of set, checked against Kubernetes schemas."""

from __future__ import annotations

import copy
import json
from typing import Any

import kubernetes_validate
import pytest

from dbkeeper.manifests import HASH_ANNOTATION
from dbkeeper.manifests.migration import (
    IMAGE_VOLUME_ANNOTATION,
    MIGRATOR_COMPONENT,
    PURPOSE_LABEL,
    ConfigMapSet,
    ImageSet,
    MigratorJobSettings,
    build_migration_job,
    image_path_problem,
    image_volume_kept,
    image_volumes_supported,
    migration_job_name,
    revision_keys_problem,
    set_location,
)

OWNER = {
    "apiVersion": "dbkeeper.dev/v1alpha1",
    "kind": "DatabaseSchema",
    "name": "clinic",
    "uid": "6f0c6bde-1d5e-4b0a-9c55-0f6a8c1e2b3d",
    "controller": True,
    "blockOwnerDeletion": True,
}
REVISIONS = ("0001_create_patients.py", "0002_add_visits.py")
WITH_ENV = ConfigMapSet("clinic-migrations", ("env.py", *REVISIONS, "README.md"))
WITHOUT_ENV = ConfigMapSet("clinic-migrations", REVISIONS)
IMAGE_VOLUME = ImageSet("registry.example/clinic-app:2.3", "/migrations/clinic", "Always")
IMAGE_COPY = ImageSet("registry.example/clinic-app:2.3", "/migrations/clinic", "Always", "copy")
JOB_NAME = "clinic-migrate-0123456789"
RESULT_ARGS = ["--result-file", "/dev/termination-log"]


def _settings(**changes: Any) -> MigratorJobSettings:
    values: dict[str, Any] = {
        "resource_name": "clinic",
        "namespace": "health",
        "image": "registry.example/dbkeeper:0.1.0",
        "database_host": "clinic-pg.health.svc",
        "database_port": 5432,
        "database_name": "clinic",
        "credentials_secret": "clinic-owner",
        "owner_reference": OWNER,
        "set_name": "clinic",
        "source": WITH_ENV,
    }
    values.update(changes)
    return MigratorJobSettings(**values)


def _job(source: ConfigMapSet | ImageSet = WITH_ENV, **changes: Any) -> dict[str, Any]:
    return build_migration_job(
        _settings(source=source, **changes), JOB_NAME, "migrate", ["migrate", "--target", "head"]
    )


def _pod(job: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = job["spec"]["template"]["spec"]
    return pod


def _main(job: dict[str, Any]) -> dict[str, Any]:
    (container,) = _pod(job)["containers"]
    assert isinstance(container, dict)
    return container


def _volumes(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {volume["name"]: volume for volume in _pod(job)["volumes"]}


SOURCES = [
    pytest.param(WITH_ENV, "1.30", id="configmap-with-env"),
    pytest.param(WITHOUT_ENV, "1.30", id="configmap-without-env"),
    pytest.param(IMAGE_VOLUME, "1.35", id="image-volume"),
    pytest.param(IMAGE_COPY, "1.30", id="image-copy"),
]


# --- every layout ---------------------------------------------------------------------------


@pytest.mark.parametrize(("source", "version"), SOURCES)
def test_the_job_is_valid_kubernetes(source: ConfigMapSet | ImageSet, version: str) -> None:
    kubernetes_validate.validate(_job(source), version, strict=True)


@pytest.mark.parametrize(("source", "version"), SOURCES)
def test_the_builder_adds_where_the_set_is_and_the_result_file_after_the_callers_args(
    source: ConfigMapSet | ImageSet, version: str
) -> None:
    settings = _settings(source=source)
    migrations_dir, set_folder = set_location(settings)

    container = _main(build_migration_job(settings, JOB_NAME, "describe", ["describe"]))

    assert container["command"] == ["dbkeeper"]
    assert container["args"] == [
        "describe",
        "--migrations-dir",
        migrations_dir,
        "--set",
        set_folder,
        *RESULT_ARGS,
    ]
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"


@pytest.mark.parametrize(("source", "version"), SOURCES)
def test_credentials_come_from_the_secret_never_as_values(
    source: ConfigMapSet | ImageSet, version: str
) -> None:
    job = _job(source)
    env = {e["name"]: e for e in _main(job)["env"]}

    assert env["PGUSER"] == {
        "name": "PGUSER",
        "valueFrom": {"secretKeyRef": {"name": "clinic-owner", "key": "username"}},
    }
    assert env["PGPASSWORD"] == {
        "name": "PGPASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "clinic-owner", "key": "password"}},
    }
    assert "password" not in env["DBKEEPER_DSN"]["value"]
    assert "password" not in json.dumps(_pod(job).get("initContainers", [])).lower()


@pytest.mark.parametrize(("source", "version"), SOURCES)
def test_pods_meet_pod_security_restricted(source: ConfigMapSet | ImageSet, version: str) -> None:
    pod = _pod(_job(source))

    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 65532,
        "runAsGroup": 65532,
        "fsGroup": 65532,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    for container in [*pod.get("initContainers", []), *pod["containers"]]:
        assert container["securityContext"] == {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
    assert pod["automountServiceAccountToken"] is False
    assert pod["restartPolicy"] == "Never"


@pytest.mark.parametrize(("source", "version"), SOURCES)
def test_the_migrating_container_writes_only_to_tmp(
    source: ConfigMapSet | ImageSet, version: str
) -> None:
    job = _job(source)
    writable = [m for m in _main(job)["volumeMounts"] if not m.get("readOnly")]

    assert writable == [{"name": "tmp", "mountPath": "/tmp"}]
    assert _volumes(job)["tmp"] == {"name": "tmp", "emptyDir": {}}


# --- ConfigMap sets --------------------------------------------------------------------------


def test_a_configmap_with_env_py_is_mounted_as_the_set_folder() -> None:
    job = _job(WITH_ENV)

    assert _volumes(job)["set"]["configMap"] == {
        "name": "clinic-migrations",
        "items": [
            {"key": "env.py", "path": "env.py"},
            {"key": "0001_create_patients.py", "path": "versions/0001_create_patients.py"},
            {"key": "0002_add_visits.py", "path": "versions/0002_add_visits.py"},
        ],
    }
    assert {"name": "set", "mountPath": "/dbkeeper/sets/clinic", "readOnly": True} in _main(job)[
        "volumeMounts"
    ]
    assert "initContainers" not in _pod(job)
    assert set_location(_settings(source=WITH_ENV)) == ("/dbkeeper/sets", "clinic")


def test_notes_in_the_configmap_are_left_out_of_the_set() -> None:
    items = _volumes(_job(WITH_ENV))["set"]["configMap"]["items"]

    assert "README.md" not in {item["key"] for item in items}


def test_a_configmap_without_env_py_is_assembled_with_the_default_env_by_an_init_container() -> (
    None
):
    job = _job(WITHOUT_ENV)
    volumes = _volumes(job)
    (init,) = _pod(job)["initContainers"]

    assert volumes["set-files"]["configMap"] == {
        "name": "clinic-migrations",
        "items": [
            {"key": "0001_create_patients.py", "path": "versions/0001_create_patients.py"},
            {"key": "0002_add_visits.py", "path": "versions/0002_add_visits.py"},
        ],
    }
    assert volumes["set"] == {"name": "set", "emptyDir": {}}
    assert init["name"] == "assemble-set"
    assert init["image"] == "registry.example/dbkeeper:0.1.0"
    assert init["command"] == [
        "python",
        "-m",
        "dbkeeper.migrate.default_env",
        "/dbkeeper/configmap",
        "/dbkeeper/sets/clinic",
    ]
    assert init["volumeMounts"] == [
        {"name": "set-files", "mountPath": "/dbkeeper/configmap", "readOnly": True},
        {"name": "set", "mountPath": "/dbkeeper/sets"},
    ]
    assert {"name": "set", "mountPath": "/dbkeeper/sets", "readOnly": True} in _main(job)[
        "volumeMounts"
    ]
    assert set_location(_settings(source=WITHOUT_ENV)) == ("/dbkeeper/sets", "clinic")


# --- image sets ------------------------------------------------------------------------------


def test_an_image_volume_is_mounted_read_only_and_the_set_is_the_path_inside_it() -> None:
    job = _job(IMAGE_VOLUME)

    assert _volumes(job)["set"] == {
        "name": "set",
        "image": {"reference": "registry.example/clinic-app:2.3", "pullPolicy": "Always"},
    }
    assert {"name": "set", "mountPath": "/dbkeeper/bundle", "readOnly": True} in _main(job)[
        "volumeMounts"
    ]
    assert "initContainers" not in _pod(job)
    assert job["metadata"]["annotations"][IMAGE_VOLUME_ANNOTATION] == "set"
    assert set_location(_settings(source=IMAGE_VOLUME)) == ("/dbkeeper/bundle/migrations", "clinic")


def test_a_set_at_the_image_root_is_found_in_the_bundle_folder() -> None:
    source = ImageSet("registry.example/clinic-app:2.3", "/clinic")

    assert set_location(_settings(source=source)) == ("/dbkeeper/bundle", "clinic")


def test_a_copied_image_set_is_fetched_by_an_init_container_of_the_teams_image() -> None:
    job = _job(IMAGE_COPY)
    (init,) = _pod(job)["initContainers"]

    assert _volumes(job)["set"] == {"name": "set", "emptyDir": {}}
    assert init["name"] == "fetch-set"
    assert init["image"] == "registry.example/clinic-app:2.3"
    assert init["imagePullPolicy"] == "Always"
    assert init["command"] == ["cp", "-R", "/migrations/clinic", "/dbkeeper/copied/clinic"]
    assert init["volumeMounts"] == [{"name": "set", "mountPath": "/dbkeeper/copied"}]
    assert init["resources"]["limits"]["memory"]
    assert {"name": "set", "mountPath": "/dbkeeper/copied", "readOnly": True} in _main(job)[
        "volumeMounts"
    ]
    assert IMAGE_VOLUME_ANNOTATION not in job["metadata"]["annotations"]
    assert set_location(_settings(source=IMAGE_COPY)) == ("/dbkeeper/copied", "clinic")


# --- the Job ---------------------------------------------------------------------------------


def test_the_job_never_retries_and_is_bounded_in_time() -> None:
    spec = _job(active_deadline_seconds=900, ttl_seconds_after_finished=600)["spec"]

    assert spec["backoffLimit"] == 0
    assert spec["activeDeadlineSeconds"] == 900
    assert spec["ttlSecondsAfterFinished"] == 600


def test_the_job_is_labelled_owned_and_placed_in_the_resources_namespace() -> None:
    job = build_migration_job(_settings(), JOB_NAME, "describe", ["describe"])
    labels = {
        "app.kubernetes.io/name": "dbkeeper",
        "app.kubernetes.io/instance": "clinic",
        "app.kubernetes.io/component": MIGRATOR_COMPONENT,
        "app.kubernetes.io/managed-by": "dbkeeper",
        PURPOSE_LABEL: "describe",
    }

    assert job["metadata"]["name"] == JOB_NAME
    assert job["metadata"]["namespace"] == "health"
    assert job["metadata"]["labels"] == labels
    assert job["spec"]["template"]["metadata"]["labels"] == labels
    assert job["metadata"]["ownerReferences"] == [OWNER]
    assert MIGRATOR_COMPONENT == "migrator"


def test_the_hash_annotation_follows_the_inputs() -> None:
    first = _job()["metadata"]["annotations"][HASH_ANNOTATION]

    assert _job()["metadata"]["annotations"][HASH_ANNOTATION] == first
    assert _job(database_port=6432)["metadata"]["annotations"][HASH_ANNOTATION] != first


def test_the_dsn_names_the_database_without_a_password() -> None:
    env = {e["name"]: e for e in _main(_job(sslmode="verify-full"))["env"]}

    assert env["DBKEEPER_DSN"]["value"] == (
        "host=clinic-pg.health.svc port=5432 dbname=clinic user=$(PGUSER) sslmode=verify-full"
    )
    names = [e["name"] for e in _main(_job())["env"]]
    assert names.index("PGUSER") < names.index("DBKEEPER_DSN")
    assert env["PYTHONDONTWRITEBYTECODE"]["value"] == "1"
    assert env["HOME"]["value"] == "/tmp"


def test_the_service_account_is_set_only_when_given() -> None:
    assert "serviceAccountName" not in _pod(_job())
    assert _pod(_job(service_account_name="clinic-migrator"))["serviceAccountName"] == (
        "clinic-migrator"
    )


def test_resources_are_passed_through_only_when_given() -> None:
    resources = {"requests": {"cpu": "50m"}, "limits": {"memory": "256Mi"}}

    assert "resources" not in _main(_job())
    assert _main(_job(resources=resources))["resources"] == resources


def test_the_builder_refuses_a_name_longer_than_63_characters() -> None:
    with pytest.raises(ValueError, match="longer than 63"):
        build_migration_job(_settings(), "x" * 64, "migrate", ["migrate"])


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"source": ConfigMapSet("cm", ("env.py",))}, id="no-revisions"),
        pytest.param({"source": ImageSet("app:1", "migrations/clinic")}, id="relative-path"),
        pytest.param({"set_name": "../clinic"}, id="set-name"),
    ],
)
def test_the_builder_refuses_what_the_checks_refuse(changes: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        build_migration_job(_settings(**changes), JOB_NAME, "migrate", ["migrate"])


# --- names -----------------------------------------------------------------------------------


def test_a_job_name_is_resource_purpose_and_ten_hex_of_the_fingerprint() -> None:
    name = migration_job_name("clinic", "migrate", "spec-v1")

    assert name.startswith("clinic-migrate-")
    assert len(name.removeprefix("clinic-migrate-")) == 10
    assert name == migration_job_name("clinic", "migrate", "spec-v1")
    assert name != migration_job_name("clinic", "migrate", "spec-v2")


def test_a_long_resource_name_is_cut_and_the_hash_kept() -> None:
    short = migration_job_name("clinic", "describe", "spec-v1")
    name = migration_job_name("a" * 62 + "-b", "describe", "spec-v1")

    assert len(name) == 63
    assert name.endswith(short.removeprefix("clinic"))
    assert name.startswith("aaaa")
    kubernetes_validate.validate(_job_named(name), "1.30", strict=True)


def test_a_cut_name_does_not_end_the_resource_part_with_a_dash() -> None:
    suffix = len("-migrate-") + 10
    name = migration_job_name("a" * (62 - suffix) + "-" + "b" * 10, "migrate", "f")

    assert "--" not in name


def _job_named(name: str) -> dict[str, Any]:
    return build_migration_job(_settings(), name, "migrate", ["migrate"])


# --- image volumes on the server -------------------------------------------------------------


def test_a_returned_job_with_its_image_volume_kept_is_kept() -> None:
    assert image_volume_kept(_job(IMAGE_VOLUME)) is True


@pytest.mark.parametrize(
    "stripped",
    [
        pytest.param({"name": "set"}, id="no-source"),
        pytest.param({"name": "set", "emptyDir": {}}, id="defaulted-to-emptydir"),
    ],
)
def test_a_returned_job_whose_image_volume_lost_its_image_is_not_kept(
    stripped: dict[str, Any],
) -> None:
    returned = copy.deepcopy(_job(IMAGE_VOLUME))
    volumes = _pod(returned)["volumes"]
    volumes[:] = [stripped if v["name"] == "set" else v for v in volumes]

    assert image_volume_kept(returned) is False


def test_a_returned_job_without_an_image_volume_is_kept() -> None:
    assert image_volume_kept(_job(IMAGE_COPY)) is True
    assert image_volume_kept(_job(WITH_ENV)) is True


@pytest.mark.parametrize(
    ("major", "minor", "supported"),
    [(1, 30, False), (1, 34, False), (1, 35, True), (1, 36, True), (2, 0, True)],
)
def test_image_volumes_are_used_from_kubernetes_1_35(
    major: int, minor: int, supported: bool
) -> None:
    assert image_volumes_supported(major, minor) is supported


# --- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param(REVISIONS, id="revisions"),
        pytest.param(("env.py", *REVISIONS), id="with-env"),
        pytest.param((*REVISIONS, "README.md", "readme.txt", "script.py.mako"), id="notes"),
    ],
)
def test_configmap_keys_of_a_set_are_accepted(keys: tuple[str, ...]) -> None:
    assert revision_keys_problem(keys) is None


@pytest.mark.parametrize(
    ("keys", "says"),
    [
        pytest.param((), "no revision files", id="empty"),
        pytest.param(("env.py", "README.md"), "no revision files", id="only-env"),
        pytest.param((*REVISIONS, "settings.yaml"), "'settings.yaml' is not a revision", id="yaml"),
        pytest.param((*REVISIONS, "..0003.py"), "'..0003.py' is not a file name", id="dotdot"),
        pytest.param((*REVISIONS, "../0003.py"), "'../0003.py' is not a file name", id="slash"),
        pytest.param((*REVISIONS, ".0003.py"), "hidden", id="hidden"),
        pytest.param((*REVISIONS, "-0003.py"), "'-0003.py' is not a usable", id="dash"),
    ],
)
def test_configmap_keys_that_are_not_a_set_are_refused_saying_which(
    keys: tuple[str, ...], says: str
) -> None:
    problem = revision_keys_problem(keys)

    assert problem is not None
    assert says in problem


@pytest.mark.parametrize("path", ["/migrations/clinic", "/clinic", "/opt/app/sets/clinic_v2"])
def test_absolute_normalised_image_paths_are_accepted(path: str) -> None:
    assert image_path_problem(path) is None


@pytest.mark.parametrize(
    ("path", "says"),
    [
        pytest.param("migrations/clinic", "not an absolute path", id="relative"),
        pytest.param("/migrations/../clinic", "'..'", id="parent"),
        pytest.param("/migrations//clinic", "not a normalised path", id="double-slash"),
        pytest.param("//migrations/clinic", "not a normalised path", id="leading-double"),
        pytest.param("/migrations/./clinic", "not a normalised path", id="dot"),
        pytest.param("/migrations/clinic/", "not a normalised path", id="trailing-slash"),
        pytest.param("/", "is not a migration set name", id="root"),
        pytest.param("/migrations/Clinic", "'Clinic', is not a migration set name", id="upper"),
        pytest.param("/migrations/my set", "is not a migration set name", id="space"),
    ],
)
def test_image_paths_that_are_not_a_set_folder_are_refused(path: str, says: str) -> None:
    problem = image_path_problem(path)

    assert problem is not None
    assert says in problem
