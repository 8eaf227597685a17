"""The backup before a move, when backups go to a bucket: the operator takes it itself,
with the keys of the bucket's credentials Secret, and refuses the move (before anything
runs) when that Secret cannot give them."""

from __future__ import annotations

from typing import Any

import pytest

from dbkeeper.api import DatabaseSchemaSpec
from dbkeeper.backup.s3.location import S3Location
from dbkeeper.conninfo import ConnInfo
from dbkeeper.reconcile.backup_input import bucket_credentials
from dbkeeper.reconcile.kube_runtime import KubeRuntime
from dbkeeper.reconcile.runtime import ResourceView
from dbkeeper.settings import Settings

OWNER = ConnInfo("clinic-pg.health.svc", 5432, "clinic", "clinic_owner", "owner-password")
KEYS = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEY000000", "AWS_SECRET_ACCESS_KEY": "s3-secret-value"}


class _Secrets:
    """The part of the API client the backup-before-move decision reads."""

    def __init__(self, secrets: dict[str, dict[str, str]]) -> None:
        self.secrets = secrets

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        assert namespace == "health"
        return self.secrets.get(name)


def _spec(**s3: Any) -> DatabaseSchemaSpec:
    return DatabaseSchemaSpec.model_validate(
        {
            "database": {
                "host": "clinic-pg.health.svc",
                "name": "clinic",
                "credentialsSecret": "clinic-owner",
            },
            "pooler": {"enabled": False},
            "backup": {
                "destination": {
                    "s3": {
                        "bucket": "clinic-backups",
                        "prefix": "health/clinic",
                        "endpoint": "https://minio.storage:9000",
                        "serverSideEncryption": {"type": "AES256"},
                        **s3,
                    }
                }
            },
        }
    )


def _hooks(spec: DatabaseSchemaSpec, secrets: dict[str, dict[str, str]]) -> Any:
    runtime = KubeRuntime(_Secrets(secrets), Settings(image="dbkeeper:test"))  # type: ignore[arg-type]
    view = ResourceView("health", "clinic", 1, {}, status={}, uid="uid-clinic")
    return runtime.migration_hooks(view, spec, OWNER)


def test_the_operator_backs_up_into_the_bucket_with_the_secrets_keys() -> None:
    hooks = _hooks(_spec(credentialsSecret="clinic-s3"), {"clinic-s3": KEYS})
    assert hooks.backup_unavailable is None
    assert hooks.backup_destination == S3Location(
        bucket="clinic-backups",
        prefix="health/clinic",
        endpoint="https://minio.storage:9000",
        sse="AES256",
    )
    assert dict(hooks.backup_credentials) == KEYS
    assert "s3-secret-value" not in repr(hooks)


def test_without_a_secret_the_operator_uses_its_own_identity() -> None:
    hooks = _hooks(_spec(), {})
    assert hooks.backup_unavailable is None
    assert hooks.backup_credentials == ()


@pytest.mark.parametrize(
    ("secrets", "said"),
    [
        ({}, "Secret 'clinic-s3' does not exist"),
        (
            {"clinic-s3": {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEY000000"}},
            "Secret 'clinic-s3' lacks AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY",
        ),
    ],
)
def test_a_secret_that_cannot_give_the_keys_refuses_the_move(
    secrets: dict[str, dict[str, str]], said: str
) -> None:
    hooks = _hooks(_spec(credentialsSecret="clinic-s3"), secrets)
    assert hooks.backup_unavailable is not None
    assert said in hooks.backup_unavailable
    assert "migrations.backupBeforeMigrate: false" in hooks.backup_unavailable


def test_only_the_aws_keys_of_the_secret_are_taken() -> None:
    secret = {**KEYS, "AWS_SESSION_TOKEN": "token", "unrelated": "x"}
    assert dict(bucket_credentials(secret) or ()) == {**KEYS, "AWS_SESSION_TOKEN": "token"}
    assert bucket_credentials(None) is None
