"""The table of bad specs shared by the model tests and the CRD agreement tests.

Each case changes a valid spec in one place and names the exact field the error must
point at. ``crd_rejects`` says whether the CRD's schema alone can see the problem (single
field checks); cross-field rules live in the model only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Final


class _Drop:
    def __repr__(self) -> str:
        return "DROP"


DROP: Final = _Drop()


@dataclass(frozen=True)
class BadSpec:
    id: str
    changes: dict[str, Any]
    paths: list[str]
    crd_rejects: bool
    message: str = field(default="")

    def apply(self, spec: dict[str, Any]) -> dict[str, Any]:
        changed = copy.deepcopy(spec)
        for dotted, value in self.changes.items():
            *parents, leaf = dotted.split(".")
            node = changed
            for part in parents:
                node = node.setdefault(part, {})
            if value is DROP:
                node.pop(leaf, None)
            else:
                node[leaf] = value
        return changed


def _case(
    id: str, changes: dict[str, Any], paths: str | list[str], crd: bool, message: str = ""
) -> BadSpec:
    return BadSpec(id, changes, [paths] if isinstance(paths, str) else paths, crd, message)


BAD_SPECS: Final = [
    # --- structure
    _case("unknown top-level field", {"replicas": 3}, "spec.replicas", True, "allowed here"),
    _case("unknown nested field", {"database.user": "x"}, "spec.database.user", True),
    _case(
        "snake_case field name",
        {"database.credentials_secret": "s", "database.credentialsSecret": DROP},
        ["spec.database.credentialsSecret", "spec.database.credentials_secret"],
        True,
    ),
    _case("database missing", {"database": DROP}, "spec.database", True, "is required"),
    _case("pooler is a list", {"pooler": [1]}, "spec.pooler", True, "object"),
    # --- database
    _case("database name missing", {"database.name": DROP}, "spec.database.name", True),
    _case(
        "both host and hosts",
        {"database.hosts": ["db-0", "db-1"]},
        "spec.database.hosts",
        False,
        "not both",
    ),
    _case("neither host nor hosts", {"database.host": DROP}, "spec.database.host", False),
    _case(
        "hosts empty", {"database.host": DROP, "database.hosts": []}, "spec.database.hosts", True
    ),
    _case(
        "hosts entry with port out of range",
        {"database.host": DROP, "database.hosts": ["db-0:5432", "db-1:70000"]},
        "spec.database.hosts[1]",
        False,
        "1-65535",
    ),
    _case(
        "hosts listed twice",
        {"database.host": DROP, "database.hosts": ["db-0", "db-0:5432"]},
        "spec.database.hosts",
        False,
        "twice",
    ),
    _case("port zero", {"database.port": 0}, "spec.database.port", True, "at least 1"),
    _case("port as a string", {"database.port": "5432"}, "spec.database.port", True),
    _case(
        "host with an injection attempt",
        {"database.host": "db;host=evil"},
        "spec.database.host",
        True,
    ),
    _case("database name with newline", {"database.name": "clinic\nx"}, "spec.database.name", True),
    _case(
        "upper-case Secret name",
        {"database.credentialsSecret": "Clinic"},
        "spec.database.credentialsSecret",
        True,
    ),
    _case(
        "bad sslMode", {"database.sslMode": "strict"}, "spec.database.sslMode", True, "verify-full"
    ),
    _case(
        "verify-full without a CA",
        {"database.sslMode": "verify-full"},
        "spec.database.caSecret",
        False,
    ),
    _case(
        "connectTimeout without unit",
        {"database.connectTimeout": "10"},
        "spec.database.connectTimeout",
        True,
    ),
    # --- migrations
    _case("bad migration set name", {"migrations.set": "Health care"}, "spec.migrations.set", True),
    _case(
        "relative target +0",
        {"migrations.targetRevision": "+0"},
        "spec.migrations.targetRevision",
        True,
        "at least one step",
    ),
    _case(
        "revision id with bad characters",
        {"migrations.targetRevision": "rev-1"},
        "spec.migrations.targetRevision",
        True,
    ),
    _case(
        "revision id as a YAML number",
        {"migrations.targetRevision": 5},
        "spec.migrations.targetRevision",
        True,
        "quoted",
    ),
    _case(
        "revision id too long",
        {"migrations.targetRevision": "a" * 65},
        "spec.migrations.targetRevision",
        True,
    ),
    _case("bad lockTimeout", {"migrations.lockTimeout": "5x"}, "spec.migrations.lockTimeout", True),
    _case(
        "zero lockTimeout", {"migrations.lockTimeout": "0s"}, "spec.migrations.lockTimeout", False
    ),
    _case(
        "lockTimeout not shorter than statementTimeout",
        {"migrations.lockTimeout": "1h", "migrations.statementTimeout": "15m"},
        "spec.migrations.lockTimeout",
        False,
        "shorter than statementTimeout",
    ),
    _case(
        "statementTimeout below the default lockTimeout",
        {"migrations.statementTimeout": "1s"},
        "spec.migrations.statementTimeout",
        False,
    ),
    _case(
        "lockRetries too many", {"migrations.lockRetries": 11}, "spec.migrations.lockRetries", True
    ),
    _case("unknown lint mode", {"migrations.lint": "strict"}, "spec.migrations.lint", True),
    _case(
        "lint off unquoted in YAML",
        {"migrations.lint": False},
        "spec.migrations.lint",
        True,
        "in quotes",
    ),
    _case(
        "allowDowngrade as a word",
        {"migrations.allowDowngrade": "yes"},
        "spec.migrations.allowDowngrade",
        True,
        "true or false",
    ),
    # --- pooler
    _case(
        "negative pool size",
        {"pooler.defaultPoolSize": -1},
        "spec.pooler.defaultPoolSize",
        True,
        "at least 1",
    ),
    _case(
        "reserve larger than default pool",
        {"pooler.reservePoolSize": 30},
        "spec.pooler.reservePoolSize",
        False,
        "at most defaultPoolSize (20)",
    ),
    _case(
        "min pool larger than default pool",
        {"pooler.minPoolSize": 25},
        "spec.pooler.minPoolSize",
        False,
    ),
    _case(
        "default pool larger than maxDatabaseConnections",
        {"pooler.defaultPoolSize": 100},
        "spec.pooler.defaultPoolSize",
        False,
        "maxDatabaseConnections (50)",
    ),
    _case(
        "maxDatabaseConnections below the default pool",
        {"pooler.maxDatabaseConnections": 10},
        "spec.pooler.maxDatabaseConnections",
        False,
        "at least defaultPoolSize (20)",
    ),
    _case(
        "maxDatabaseConnections above maxClientConnections",
        {"pooler.maxDatabaseConnections": 1000, "pooler.maxClientConnections": 100},
        "spec.pooler.maxDatabaseConnections",
        False,
    ),
    _case(
        "maxClientConnections too large",
        {"pooler.maxClientConnections": 100001},
        "spec.pooler.maxClientConnections",
        True,
    ),
    _case("unknown pool mode", {"pooler.poolMode": "txn"}, "spec.pooler.poolMode", True),
    _case("zero replicas", {"pooler.replicas": 0}, "spec.pooler.replicas", True),
    _case("privileged pooler port", {"pooler.port": 80}, "spec.pooler.port", True),
    _case(
        "client TLS without a certificate",
        {"pooler.clientTls": {"sslMode": "require"}},
        "spec.pooler.clientTls.certificateSecret",
        False,
    ),
    _case(
        "server TLS verify-ca without a CA",
        {"pooler.serverTls": {"sslMode": "verify-ca"}},
        "spec.pooler.serverTls.caSecret",
        False,
    ),
    _case(
        "CPU that is not a quantity",
        {"pooler.resources": {"limits": {"cpu": "lots"}}},
        "spec.pooler.resources.limits.cpu",
        True,
    ),
    # --- roles
    _case(
        "role name reserved by PostgreSQL",
        {"roles.app": {"secret": "clinic-app", "username": "pg_app"}},
        "spec.roles.app.username",
        False,
        "pg_",
    ),
    _case(
        "two roles sharing a Secret",
        {"roles.readonly": {"secret": "clinic-app"}},
        "spec.roles.readonly.secret",
        False,
    ),
    _case(
        "two roles with one username",
        {"roles.auditor": {"secret": "clinic-audit", "username": "clinic_app"}},
        "spec.roles.auditor.username",
        False,
    ),
    _case("unknown role", {"roles.admin": {"secret": "x"}}, "spec.roles.admin", True),
    # --- deletion
    _case(
        "bad deletionPolicy", {"deletionPolicy": "Delete"}, "spec.deletionPolicy", True, "Retain"
    ),
    # --- backup
    _case("schedule in words", {"backup.schedule": "every day"}, "spec.backup.schedule", True),
    _case(
        "schedule with an impossible minute",
        {"backup.schedule": "61 2 * * *"},
        "spec.backup.schedule",
        False,
        "cron",
    ),
    _case(
        "schedule with six fields", {"backup.schedule": "0 0 2 * * *"}, "spec.backup.schedule", True
    ),
    _case(
        "bad verifySchedule",
        {"backup.verifySchedule": "0 4 * * funday"},
        "spec.backup.verifySchedule",
        False,
    ),
    _case(
        "destination with both claim and directory",
        {"backup.destination.directory": "/var/backups"},
        "spec.backup.destination.directory",
        False,
        "not persistentVolumeClaim and directory",
    ),
    _case(
        "destination with both claim and bucket",
        {"backup.destination.s3": {"bucket": "clinic-backups"}},
        "spec.backup.destination.s3",
        False,
        "not persistentVolumeClaim and s3",
    ),
    _case(
        "bucket name with capitals",
        {"backup.destination": {"s3": {"bucket": "Clinic_Backups"}}},
        "spec.backup.destination.s3.bucket",
        False,
        "is not a bucket name",
    ),
    _case(
        "prefix climbing with ..",
        {"backup.destination": {"s3": {"bucket": "clinic-backups", "prefix": "a/../b"}}},
        "spec.backup.destination.s3.prefix",
        False,
        "is not usable",
    ),
    _case(
        "endpoint without scheme",
        {"backup.destination": {"s3": {"bucket": "clinic-backups", "endpoint": "minio:9000"}}},
        "spec.backup.destination.s3.endpoint",
        False,
        "write http(s)://HOST[:PORT]",
    ),
    _case(
        "keys and web identity both",
        {
            "backup.destination": {
                "s3": {
                    "bucket": "clinic-backups",
                    "credentialsSecret": "clinic-s3",
                    "webIdentity": {"roleArn": "arn:aws:iam::123456789012:role/b"},
                }
            }
        },
        "spec.backup.destination.s3.webIdentity",
        False,
        "not both",
    ),
    _case(
        "role that is not an ARN",
        {
            "backup.destination": {
                "s3": {"bucket": "clinic-backups", "webIdentity": {"roleArn": "backups"}}
            }
        },
        "spec.backup.destination.s3.webIdentity.roleArn",
        True,
    ),
    _case(
        "KMS encryption without a key",
        {
            "backup.destination": {
                "s3": {"bucket": "clinic-backups", "serverSideEncryption": {"type": "aws:kms"}}
            }
        },
        "spec.backup.destination.s3.serverSideEncryption.kmsKeyId",
        False,
        "needs kmsKeyId",
    ),
    _case(
        "unknown encryption",
        {
            "backup.destination": {
                "s3": {"bucket": "clinic-backups", "serverSideEncryption": {"type": "rot13"}}
            }
        },
        "spec.backup.destination.s3.serverSideEncryption.type",
        True,
    ),
    _case(
        "destination with neither",
        {"backup.destination": {}},
        "spec.backup.destination.persistentVolumeClaim",
        False,
    ),
    _case(
        "relative directory",
        {"backup.destination": {"directory": "backups"}},
        "spec.backup.destination.directory",
        True,
        "absolute",
    ),
    _case(
        "directory escaping with ..",
        {"backup.destination": {"directory": "/var/backups/../etc"}},
        "spec.backup.destination.directory",
        False,
    ),
    _case("destination missing", {"backup.destination": DROP}, "spec.backup.destination", True),
    _case(
        "keepLast zero", {"backup.retention.keepLast": 0}, "spec.backup.retention.keepLast", True
    ),
    _case(
        "maxAge in words",
        {"backup.retention.maxAge": "30 days"},
        "spec.backup.retention.maxAge",
        True,
    ),
    _case("too many dump jobs", {"backup.jobs": 17}, "spec.backup.jobs", True, "at most 16"),
    # --- types
    _case("types without a ConfigMap", {"types": {}}, "spec.types.configMap", True, "is required"),
    _case(
        "types ConfigMap not a DNS name",
        {"types": {"configMap": "Clinic_Types"}},
        "spec.types.configMap",
        True,
        "Kubernetes object name",
    ),
    _case(
        "types key with a path",
        {"types": {"configMap": "clinic-types", "key": "src/schema.ts"}},
        "spec.types.key",
        True,
        "ConfigMap key",
    ),
    _case(
        "types key starting with two dots",
        {"types": {"configMap": "clinic-types", "key": "..schema.ts"}},
        "spec.types.key",
        True,
        "ConfigMap key",
    ),
    _case(
        "types key is a dot",
        {"types": {"configMap": "clinic-types", "key": "."}},
        "spec.types.key",
        True,
    ),
    _case(
        "types key too long",
        {"types": {"configMap": "clinic-types", "key": "k" * 254}},
        "spec.types.key",
        True,
        "at most 253",
    ),
    _case(
        "types into the migration set's ConfigMap",
        {
            "migrations.set": DROP,
            "migrations.configMap": {"name": "clinic-set"},
            "types": {"configMap": "clinic-set"},
        },
        "spec.types.configMap",
        False,
        "ConfigMap of the migration set",
    ),
]
