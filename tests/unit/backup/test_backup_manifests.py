"""The backup CronJobs and the on-demand Job, checked against Kubernetes 1.30 schemas."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import kubernetes_validate
import pytest

from dbkeeper.api import parse_spec
from dbkeeper.api.spec import S3Destination
from dbkeeper.audit.checkpoint import parse
from dbkeeper.backup.errors import CLIENT_TOO_OLD_EXIT_CODE, DRILL_NOT_RUN_EXIT_CODE
from dbkeeper.manifests.backup import (
    SPEC_HASH_ANNOTATION,
    BackupJobSettings,
    build_backup_cronjob,
    build_backup_job,
    build_verify_cronjob,
)
from dbkeeper.reconcile.backup_input import job_settings
from dbkeeper.reconcile.runtime import ResourceView
from dbkeeper.settings import Settings

OWNER = {
    "apiVersion": "dbkeeper.dev/v1alpha1",
    "kind": "DatabaseSchema",
    "name": "clinic",
    "uid": "6f0c6bde-1d5e-4b0a-9c55-0f6a8c1e2b3d",
    "controller": True,
    "blockOwnerDeletion": True,
}


def _settings(**changes: Any) -> BackupJobSettings:
    values: dict[str, Any] = {
        "resource_name": "clinic",
        "namespace": "health",
        "image": "registry.example/dbkeeper:0.1.0",
        "database_host": "clinic-pg.health.svc",
        "database_port": 5432,
        "database_name": "clinic",
        "credentials_secret": "clinic-owner",
        "claim_name": "clinic-backups",
        "owner_reference": OWNER,
        "keep_last": 7,
        "max_age": "30d",
    }
    values.update(changes)
    return BackupJobSettings(**values)


def _pod(obj: dict[str, Any]) -> dict[str, Any]:
    job_spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
    pod: dict[str, Any] = job_spec["template"]["spec"]
    return pod


ALL_OBJECTS = [
    pytest.param(lambda: build_backup_cronjob(_settings(), "0 2 * * *"), id="backup-cronjob"),
    pytest.param(lambda: build_verify_cronjob(_settings(), "0 4 * * 0"), id="verify-cronjob"),
    pytest.param(lambda: build_backup_job(_settings(), "clinic-backup-manual-1"), id="job"),
]


@pytest.mark.parametrize("build", ALL_OBJECTS)
def test_objects_are_valid_kubernetes_1_30(build: Any) -> None:
    kubernetes_validate.validate(build(), "1.30", strict=True)


@pytest.mark.parametrize("build", ALL_OBJECTS)
def test_credentials_come_from_the_secret_never_as_values(build: Any) -> None:
    env = {e["name"]: e for e in _pod(build())["containers"][0]["env"]}

    assert env["PGPASSWORD"] == {
        "name": "PGPASSWORD",
        "valueFrom": {"secretKeyRef": {"name": "clinic-owner", "key": "password"}},
    }
    assert env["PGUSER"]["valueFrom"]["secretKeyRef"] == {"name": "clinic-owner", "key": "username"}
    assert "password" not in env["DBKEEPER_DSN"]["value"]
    assert "user=$(PGUSER)" in env["DBKEEPER_DSN"]["value"]


@pytest.mark.parametrize("build", ALL_OBJECTS)
def test_pods_run_restricted(build: Any) -> None:
    pod = _pod(build())
    container = pod["containers"][0]

    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/tmp"]]["emptyDir"] == {}
    assert volumes[mounts["/backups"]]["persistentVolumeClaim"] == {"claimName": "clinic-backups"}


@pytest.mark.parametrize("build", ALL_OBJECTS)
def test_objects_are_owned_by_the_resource(build: Any) -> None:
    obj = build()

    assert obj["metadata"]["ownerReferences"] == [OWNER]
    assert obj["metadata"]["namespace"] == "health"


def test_the_backup_cronjob_runs_create_with_retention_and_never_overlaps() -> None:
    cronjob = build_backup_cronjob(_settings(), "0 2 * * *")

    assert cronjob["spec"]["schedule"] == "0 2 * * *"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert cronjob["spec"]["successfulJobsHistoryLimit"] == 3
    assert cronjob["spec"]["failedJobsHistoryLimit"] == 3
    container = _pod(cronjob)["containers"][0]
    assert container["image"] == "registry.example/dbkeeper:0.1.0"
    assert container["command"] == ["dbkeeper"]
    assert container["args"] == [
        "backup",
        "create",
        "--jobs",
        "2",
        "--keep-last",
        "7",
        "--max-age",
        "30d",
    ]


def test_the_verify_cronjob_runs_a_drill() -> None:
    cronjob = build_verify_cronjob(_settings(), "0 4 * * 0")

    assert cronjob["metadata"]["name"] == "clinic-backup-verify"
    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert _pod(cronjob)["containers"][0]["args"] == ["backup", "verify"]


@pytest.mark.parametrize("schedule", ["every night", "61 * * * *", "* * *"])
def test_an_invalid_schedule_is_rejected(schedule: str) -> None:
    with pytest.raises(ValueError, match="not a valid cron expression"):
        build_backup_cronjob(_settings(), schedule)


def test_long_resource_names_give_valid_cronjob_names() -> None:
    cronjob = build_verify_cronjob(_settings(resource_name="x" * 60), "0 4 * * *")

    assert len(cronjob["metadata"]["name"]) <= 52
    kubernetes_validate.validate(cronjob, "1.30", strict=True)


def test_the_spec_hash_changes_with_the_inputs() -> None:
    first = build_backup_cronjob(_settings(), "0 2 * * *")
    same = build_backup_cronjob(_settings(), "0 2 * * *")
    other = build_backup_cronjob(_settings(image="registry.example/dbkeeper:0.2.0"), "0 2 * * *")

    annotation = first["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
    assert annotation == same["metadata"]["annotations"][SPEC_HASH_ANNOTATION]
    assert annotation != other["metadata"]["annotations"][SPEC_HASH_ANNOTATION]


def test_a_drill_that_could_not_run_fails_the_verify_job_at_once_with_its_reason() -> None:
    job_spec = build_verify_cronjob(_settings(), "0 4 * * 0")["spec"]["jobTemplate"]["spec"]

    assert job_spec["podFailurePolicy"] == {
        "rules": [
            {
                "action": "FailJob",
                "onExitCodes": {
                    "containerName": "backup-verify",
                    "operator": "In",
                    "values": [DRILL_NOT_RUN_EXIT_CODE],
                },
            }
        ]
    }
    (container,) = job_spec["template"]["spec"]["containers"]
    assert container["name"] == "backup-verify"
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_backup_jobs_retry_except_when_their_pg_dump_is_older_than_the_server() -> None:
    for job_spec in (
        build_backup_cronjob(_settings(), "0 2 * * *")["spec"]["jobTemplate"]["spec"],
        build_backup_job(_settings(), "clinic-backup-manual-1")["spec"],
    ):
        assert job_spec["podFailurePolicy"] == {
            "rules": [
                {
                    "action": "FailJob",
                    "onExitCodes": {
                        "containerName": "backup",
                        "operator": "In",
                        "values": [CLIENT_TOO_OLD_EXIT_CODE],
                    },
                }
            ]
        }
        assert job_spec["backoffLimit"] == 1


# --- object storage -------------------------------------------------------------------


def _s3_settings(**s3: Any) -> BackupJobSettings:
    fields: dict[str, Any] = {
        "bucket": "clinic-backups",
        "prefix": "health/clinic",
        "endpoint": "https://minio.storage:9000",
        "region": "eu-west-1",
        "credentialsSecret": "clinic-s3",
        **s3,
    }
    return _settings(claim_name=None, s3=S3Destination.model_validate(fields))


def _env(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["containers"][0]["env"]}


S3_OBJECTS = [
    pytest.param(lambda s: build_backup_cronjob(s, "0 2 * * *"), id="backup-cronjob"),
    pytest.param(lambda s: build_verify_cronjob(s, "0 4 * * 0"), id="verify-cronjob"),
    pytest.param(lambda s: build_backup_job(s, "clinic-backup-manual-1"), id="job"),
]


@pytest.mark.parametrize("build", S3_OBJECTS)
def test_pods_of_a_bucket_destination_reach_it_with_references_only(build: Any) -> None:
    obj = build(_s3_settings(stagingSizeLimit="20Gi"))
    kubernetes_validate.validate(obj, "1.30", strict=True)
    pod = _pod(obj)
    env = _env(pod)
    assert env["DBKEEPER_BACKUP_DESTINATION"] == "s3://clinic-backups/health/clinic"
    assert env["AWS_ENDPOINT_URL"] == "https://minio.storage:9000"
    assert env["AWS_REGION"] == "eu-west-1"
    assert env["AWS_ACCESS_KEY_ID"] == {
        "secretKeyRef": {"name": "clinic-s3", "key": "AWS_ACCESS_KEY_ID"}
    }
    assert env["AWS_SECRET_ACCESS_KEY"] == {
        "secretKeyRef": {"name": "clinic-s3", "key": "AWS_SECRET_ACCESS_KEY"}
    }
    assert env["AWS_SESSION_TOKEN"] == {
        "secretKeyRef": {"name": "clinic-s3", "key": "AWS_SESSION_TOKEN", "optional": True}
    }
    assert "DBKEEPER_BACKUP_DIR" not in env
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "backups" not in volumes  # no claim
    assert volumes["staging"] == {"name": "staging", "emptyDir": {"sizeLimit": "20Gi"}}
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert env["DBKEEPER_BACKUP_STAGING_DIR"] == mounts["staging"]
    assert pod["automountServiceAccountToken"] is False


def test_a_web_identity_is_a_projected_token_and_the_role_to_assume() -> None:
    settings = _s3_settings(
        credentialsSecret=None,
        webIdentity={"roleArn": "arn:aws:iam::123456789012:role/clinic-backups"},
    )
    settings = replace(settings, service_account_name="clinic-backups")
    obj = build_backup_cronjob(settings, "0 2 * * *")
    kubernetes_validate.validate(obj, "1.30", strict=True)
    pod = _pod(obj)
    env = _env(pod)
    assert pod["serviceAccountName"] == "clinic-backups"
    assert env["AWS_ROLE_ARN"] == "arn:aws:iam::123456789012:role/clinic-backups"
    assert "AWS_ACCESS_KEY_ID" not in env
    token = next(v for v in pod["volumes"] if v["name"] == "web-identity")
    source = token["projected"]["sources"][0]["serviceAccountToken"]
    assert source["audience"] == "sts.amazonaws.com"
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "web-identity")
    assert env["AWS_WEB_IDENTITY_TOKEN_FILE"] == f"{mount['mountPath']}/{source['path']}"


def test_server_side_encryption_is_passed_on() -> None:
    pod = _pod(
        build_backup_job(
            _s3_settings(serverSideEncryption={"type": "aws:kms", "kmsKeyId": "alias/backups"}),
            "clinic-backup-manual-2",
        )
    )
    env = _env(pod)
    assert env["DBKEEPER_S3_SSE"] == "aws:kms"
    assert env["DBKEEPER_S3_SSE_KMS_KEY_ID"] == "alias/backups"


def test_backup_pods_carry_the_last_audit_checkpoint_from_status() -> None:

    fields = {
        "batch": 4,
        "rows": 120,
        "head": "ab" * 32,
        "time": "2026-12-03T06:00:00Z",
        "keyId": "0123456789abcdef",
        "signature": "c2ln",
    }
    spec_doc = {
        "database": {"host": "clinic-pg", "name": "clinic", "credentialsSecret": "clinic-owner"},
        "migrations": {"set": "healthcare"},
        "backup": {
            "schedule": "0 2 * * *",
            "destination": {"persistentVolumeClaim": {"claimName": "clinic-backups"}},
        },
    }

    spec = parse_spec(spec_doc)
    assert spec.backup is not None
    for status, expected in (({"audit": {"checkpoint": fields}}, True), ({}, False)):
        view = ResourceView("health", "clinic", 1, spec_doc, status=status, uid="u-1")
        settings = job_settings(
            view, spec, spec.backup, "clinic-backups", "clinic-pg", 5432, Settings()
        )
        env = {
            e["name"]: e.get("value")
            for e in _pod(build_backup_job(settings, "j"))["containers"][0]["env"]
        }
        if expected:
            assert parse(json.loads(env["DBKEEPER_AUDIT_CHECKPOINT"])).batch == 4
        else:
            assert "DBKEEPER_AUDIT_CHECKPOINT" not in env
