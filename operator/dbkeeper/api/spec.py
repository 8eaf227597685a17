"""The typed ``spec`` of a DatabaseSchema: what a user declares about one database.

These models are the one source of truth for the resource's shape: the CRD's OpenAPI
schema is generated from them (``dbkeeper crds write``), and the operator parses every
spec it sees through them (:func:`dbkeeper.api.validation.parse_spec`). Each field's
description is what ``kubectl explain databaseschema.spec...`` shows.

Checks that involve more than one field live in ``model_validator`` methods and name
the field the user most likely has to change (see :func:`_blame`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from dbkeeper.api.scalars import (
    MIGRATION_SET_REGEX,
    AbsolutePath,
    ConfigMapKey,
    Cron,
    DatabaseName,
    Duration,
    Host,
    HostAndPort,
    ImageReference,
    KubeName,
    MigrationSetName,
    Quantity,
    RoleName,
    TargetRevision,
    invalid,
    split_host_and_port,
)
from dbkeeper.backup.s3.location import SseMode, check_bucket, check_endpoint, check_prefix
from dbkeeper.echo import echo
from dbkeeper.vocabulary import ROLE_KINDS, LintMode

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
VERIFYING_SSL_MODES = frozenset({"verify-ca", "verify-full"})


def _lint_mode_hint(value: object) -> object:
    # YAML 1.1 (kubectl, PyYAML) reads a bare `off` as the boolean false.
    if value is False:
        raise invalid("got false: write 'off' in quotes, YAML reads a bare off as false")
    return value


LintModeField = Annotated[LintMode, BeforeValidator(_lint_mode_hint)]
SetSourceKind = Literal["bundled", "configMap", "image"]
DEFAULT_SET = "healthcare"
PoolMode = Literal["session", "transaction", "statement"]
DeletionPolicy = Literal["Retain", "Drop"]


class SpecModel(BaseModel):
    """Shared configuration: camelCase on the wire, strict types, unknown fields refused."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    def _blame(self, left: str, right: str) -> str:
        """Which of two conflicting fields to name in an error, as its camelCase alias.

        The one the user wrote, when only one of them was written (the other holds its
        default); otherwise the left one.
        """
        left_set = left in self.model_fields_set
        right_set = right in self.model_fields_set
        chosen = right if right_set and not left_set else left
        return to_camel(chosen)


def _default_object() -> Any:
    # Kubernetes fills nested defaults only inside an object that exists; an empty
    # default object lets the API server show every effective setting.
    return {"default": {}}


# --- spec.database -------------------------------------------------------------------------


class Endpoint(BaseModel):
    """One PostgreSQL server to connect to."""

    model_config = ConfigDict(frozen=True)

    host: str
    port: int


class DatabaseSpec(SpecModel):
    """Where the database is and how the operator connects to it."""

    host: Host | None = Field(
        default=None,
        description="Host name or IP address of the PostgreSQL server. Give either host or hosts.",
    )
    hosts: list[HostAndPort] | None = Field(
        default=None,
        min_length=1,
        max_length=10,
        description="Servers of a replicated cluster as 'host' or 'host:port'; the "
        "operator uses whichever of them is the primary (not in recovery) and repoints "
        "the pooler when that changes. Give either host or hosts.",
    )
    port: int = Field(
        default=5432,
        ge=1,
        le=65535,
        description="Port of the server; also the port of every hosts entry that has none.",
    )
    name: DatabaseName = Field(description="Name of the database inside the server.")
    credentials_secret: KubeName = Field(
        description="Secret in the resource's namespace with keys 'username' and "
        "'password': the role that owns the schema and runs the migrations.",
    )
    ssl_mode: SslMode = Field(
        default="prefer",
        description="libpq sslmode of the operator's connections: disable, allow, prefer, "
        "require, verify-ca or verify-full. The verify modes need caSecret.",
    )
    ca_secret: KubeName | None = Field(
        default=None,
        description="Secret with key 'ca.crt': the certificate authority that signed the "
        "server's certificate. Required with sslMode verify-ca or verify-full.",
    )
    connect_timeout: Duration = Field(
        default=timedelta(seconds=10),
        json_schema_extra={"default": "10s"},
        description="How long one connection attempt may take, e.g. 10s.",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.host is not None and self.hosts is not None:
            raise invalid("give either host or hosts, not both", field="hosts")
        if self.host is None and self.hosts is None:
            raise invalid(
                "is required: give host (one server) or hosts (a replicated cluster)",
                field="host",
            )
        if self.hosts is not None:
            seen: set[Endpoint] = set()
            for entry in self.endpoints():
                if entry in seen:
                    raise invalid(f"lists {entry.host}:{entry.port} twice", field="hosts")
                seen.add(entry)
        if self.ssl_mode in VERIFYING_SSL_MODES and self.ca_secret is None:
            raise invalid(
                f"sslMode {self.ssl_mode} checks the server's certificate and needs "
                "caSecret (a Secret with key ca.crt)",
                field="caSecret",
            )
        return self

    def endpoints(self) -> tuple[Endpoint, ...]:
        """Every server this spec names, with the default port filled in."""
        if self.hosts is None:
            return (Endpoint(host=self.host or "", port=self.port),)
        return tuple(
            Endpoint(host=host, port=port)
            for host, port in (split_host_and_port(entry, self.port) for entry in self.hosts)
        )


# --- spec.migrations -----------------------------------------------------------------------


class ConfigMapSetSource(SpecModel):
    """A migration set whose files are the keys of a ConfigMap."""

    name: KubeName = Field(
        description="ConfigMap in the resource's namespace. Each key is one file of the "
        "set: the revision files (NAME.py, put in versions/) and optionally env.py (else "
        "dbkeeper's standard one). Label it dbkeeper.dev/migration-set so that edits are "
        "picked up at once rather than at the next re-check.",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not re.fullmatch(MIGRATION_SET_REGEX, self.name):
            raise invalid(
                f"{echo(self.name)} is also the set's name in the history table: use "
                "lower-case letters, digits, '_' or '-' (at most 63 characters, no '.')",
                field="name",
            )
        return self


class ImageSetSource(SpecModel):
    """A migration set shipped as a folder inside an OCI image."""

    reference: ImageReference = Field(
        description="The image, e.g. registry.example.com/clinic/migrations:1.4 (a digest "
        "reference such as ...@sha256:... pins the exact bundle).",
    )
    path: AbsolutePath = Field(
        description="Folder of the set inside the image (env.py and versions/); its last "
        "part is the set's name in the history table, e.g. /migrations/clinic.",
    )
    pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", description="When the node pulls the image."
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        name = self.path.rstrip("/").rsplit("/", 1)[-1]
        if not re.fullmatch(MIGRATION_SET_REGEX, name):
            raise invalid(
                f"the last part of the path, {echo(name)}, is the set's name and must be "
                "lower-case letters, digits, '_' or '-' (at most 63 characters)",
                field="path",
            )
        return self

    @property
    def set_name(self) -> str:
        return self.path.rstrip("/").rsplit("/", 1)[-1]


class MigrationJobSpec(SpecModel):
    """The Job that runs a set from a ConfigMap or an image."""

    service_account_name: KubeName | None = Field(
        default=None,
        description="ServiceAccount of the Job's pod, e.g. for its imagePullSecrets. No API "
        "token is ever mounted: the migration's code cannot call the Kubernetes API.",
    )
    resources: ResourceRequirements | None = Field(
        default=None, description="CPU and memory of the migration container."
    )
    active_deadline: Duration = Field(
        default=timedelta(hours=1),
        json_schema_extra={"default": "1h"},
        description="Longest a migration Job may run before Kubernetes stops it (the "
        "revision in progress is rolled back).",
    )


class MigrationsSpec(SpecModel):
    """Which schema the database should have and how carefully to move it there."""

    set_name: MigrationSetName | None = Field(
        default=None,
        alias="set",
        description="Migration set bundled with the operator (a folder of Alembic "
        "revisions), e.g. healthcare; the default when neither configMap nor image is "
        "given.",
    )
    config_map: ConfigMapSetSource | None = Field(
        default=None,
        description="Take the set from a ConfigMap in the resource's namespace; it runs "
        "as a Job, never inside the operator.",
    )
    image: ImageSetSource | None = Field(
        default=None,
        description="Take the set from a folder inside an OCI image; it runs as a Job, "
        "never inside the operator.",
    )
    job: MigrationJobSpec = Field(
        default_factory=MigrationJobSpec,
        json_schema_extra=_default_object(),
        description="The Job that runs a set from configMap or image.",
    )
    target_revision: TargetRevision = Field(
        default="head",
        description="Revision the database should be at: 'head' (the newest), a revision "
        'id (quote ids that look like numbers: "0005"), or a step relative to the '
        "current revision such as -1 or +2. A target below the current revision is a "
        "rollback and needs allowDowngrade.",
    )
    allow_downgrade: bool = Field(
        default=False,
        description="Consent to move the schema backwards (run downgrades, which may drop "
        "columns and their data). Without it a lower target is refused.",
    )
    lock_timeout: Duration = Field(
        default=timedelta(seconds=5),
        json_schema_extra={"default": "5s"},
        description="Longest wait for a table lock in a migration before giving up and "
        "retrying, so a migration never queues application traffic behind it for long.",
    )
    statement_timeout: Duration = Field(
        default=timedelta(minutes=15),
        json_schema_extra={"default": "15m"},
        description="Longest time one migration statement may run. Must be longer than "
        "lockTimeout.",
    )
    lock_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description="How many times a revision that hit lockTimeout is retried, with "
        "backoff, before the migration fails.",
    )
    backup_before_migrate: bool = Field(
        default=True,
        description="Take a backup before any schema change and do not migrate if it "
        "fails. Takes effect when spec.backup gives a destination.",
    )
    lint: LintModeField = Field(
        default="warn",
        description="Safety lint of each revision's SQL: off, warn (report findings), or "
        "block (a flagged revision waits until its id is listed in the annotation "
        "dbkeeper.dev/approved-revisions).",
    )
    pause_risky_revisions: bool = Field(
        default=True,
        description="PAUSE the pooler around revisions the lint marks as lock-heavy and "
        "RESUME afterwards (also when the revision fails).",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        given = [
            name
            for name, value in (
                ("set", self.set_name),
                ("configMap", self.config_map),
                ("image", self.image),
            )
            if value is not None
        ]
        if len(given) > 1:
            raise invalid(
                f"give one source of the migration set, not {' and '.join(given)}",
                field=given[-1],
            )
        if self.lock_timeout >= self.statement_timeout:
            raise invalid(
                "must be shorter than statementTimeout "
                f"({self.lock_timeout} is not less than {self.statement_timeout})",
                field=self._blame("lock_timeout", "statement_timeout"),
            )
        return self

    @property
    def source_kind(self) -> SetSourceKind:
        if self.config_map is not None:
            return "configMap"
        if self.image is not None:
            return "image"
        return "bundled"

    @property
    def set_label(self) -> str:
        """The set's name in the history table and in status."""
        if self.config_map is not None:
            return self.config_map.name
        if self.image is not None:
            return self.image.set_name
        return self.set_name or DEFAULT_SET


# --- spec.pooler ---------------------------------------------------------------------------


class PoolerServerTls(SpecModel):
    """TLS between the pooler and PostgreSQL."""

    ssl_mode: SslMode = Field(
        default="prefer",
        description="sslmode of the pooler's server connections: disable, allow, prefer, "
        "require, verify-ca or verify-full. The verify modes need caSecret.",
    )
    ca_secret: KubeName | None = Field(
        default=None,
        description="Secret with key 'ca.crt' that signed the server's certificate.",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.ssl_mode in VERIFYING_SSL_MODES and self.ca_secret is None:
            raise invalid(
                f"sslMode {self.ssl_mode} needs caSecret (a Secret with key ca.crt)",
                field="caSecret",
            )
        return self


class PoolerClientTls(SpecModel):
    """TLS between applications and the pooler."""

    ssl_mode: SslMode = Field(
        default="disable",
        description="sslmode the pooler offers its clients: disable, allow, prefer, "
        "require, verify-ca or verify-full (the verify modes check client certificates "
        "against caSecret). Anything but disable needs certificateSecret.",
    )
    certificate_secret: KubeName | None = Field(
        default=None,
        description="Secret of type kubernetes.io/tls (keys tls.crt, tls.key) the pooler "
        "presents to clients.",
    )
    ca_secret: KubeName | None = Field(
        default=None,
        description="Secret with key 'ca.crt' to verify client certificates against.",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.ssl_mode != "disable" and self.certificate_secret is None:
            raise invalid(
                f"sslMode {self.ssl_mode} needs certificateSecret (a kubernetes.io/tls Secret)",
                field="certificateSecret",
            )
        if self.ssl_mode in VERIFYING_SSL_MODES and self.ca_secret is None:
            raise invalid(
                f"sslMode {self.ssl_mode} verifies clients and needs caSecret",
                field="caSecret",
            )
        return self


class ResourceList(SpecModel):
    """CPU and memory amounts."""

    cpu: Quantity | None = Field(default=None, description="CPU, e.g. 100m or 1.")
    memory: Quantity | None = Field(default=None, description="Memory, e.g. 64Mi.")


class ResourceRequirements(SpecModel):
    """Compute resources of one pooler container."""

    requests: ResourceList | None = Field(
        default=None, description="What the scheduler reserves for the container."
    )
    limits: ResourceList | None = Field(default=None, description="The most the container may use.")


class PoolerSpec(SpecModel):
    """A PgBouncer pool in front of the database, managed by the operator."""

    enabled: bool = Field(default=False, description="Run a PgBouncer pooler for this database.")
    pool_mode: PoolMode = Field(
        default="transaction",
        description="When a server connection returns to the pool: session, transaction "
        "(clients must not rely on session state such as SET or advisory locks; "
        "prepared statements work, see maxPreparedStatements) or statement.",
    )
    default_pool_size: int = Field(
        default=20,
        ge=1,
        le=10000,
        description="Server connections per user and database pair. At least "
        "reservePoolSize and minPoolSize, at most maxDatabaseConnections.",
    )
    min_pool_size: int = Field(
        default=0,
        ge=0,
        le=10000,
        description="Server connections kept open even when idle. At most defaultPoolSize.",
    )
    reserve_pool_size: int = Field(
        default=5,
        ge=0,
        le=10000,
        description="Extra server connections allowed when clients wait too long. At most "
        "defaultPoolSize.",
    )
    max_client_connections: int = Field(
        default=500,
        ge=1,
        le=100000,
        description="Client connections one pooler replica accepts; further clients are "
        "refused. At least maxDatabaseConnections.",
    )
    max_database_connections: int = Field(
        default=50,
        ge=1,
        le=100000,
        description="Server connections one pooler replica opens to the database. The "
        "server must allow replicas times this many connections.",
    )
    replicas: int = Field(default=2, ge=1, le=20, description="Pooler pods.")
    port: int = Field(
        default=6432,
        ge=1024,
        le=65535,
        description="Port the pooler listens on (unprivileged: 1024-65535).",
    )
    query_wait_timeout: Duration = Field(
        default=timedelta(minutes=2),
        json_schema_extra={"default": "2m"},
        description="Longest a client waits for a server connection before it is "
        "disconnected with an error.",
    )
    server_idle_timeout: Duration = Field(
        default=timedelta(minutes=10),
        json_schema_extra={"default": "10m"},
        description="Idle server connections older than this are closed.",
    )
    max_prepared_statements: int = Field(
        default=200,
        ge=0,
        le=100000,
        description="Protocol-level prepared statements the pooler keeps per server "
        "connection in transaction and statement mode, so applications may keep prepared "
        "statements on (PgBouncer 1.21 or later; older ones are not given the setting). "
        "0 turns this off: clients must then not use prepared statements.",
    )
    server_tls: PoolerServerTls = Field(
        default_factory=PoolerServerTls,
        json_schema_extra=_default_object(),
        description="TLS from the pooler to PostgreSQL.",
    )
    client_tls: PoolerClientTls = Field(
        default_factory=PoolerClientTls,
        json_schema_extra=_default_object(),
        description="TLS from applications to the pooler.",
    )
    resources: ResourceRequirements | None = Field(
        default=None, description="CPU and memory requests and limits of each pooler pod."
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        # The chain reserve <= default <= max database <= max client, and min <= default.
        # A pool bigger than the connections it may open, or a reserve bigger than the
        # pool, is a configuration PgBouncer accepts but never honours.
        chain = (
            ("reserve_pool_size", "default_pool_size"),
            ("min_pool_size", "default_pool_size"),
            ("default_pool_size", "max_database_connections"),
            ("max_database_connections", "max_client_connections"),
        )
        for smaller, larger in chain:
            low, high = getattr(self, smaller), getattr(self, larger)
            if low > high:
                blamed = self._blame(smaller, larger)
                if blamed == to_camel(smaller):
                    message = f"must be at most {to_camel(larger)} ({high}), got {low}"
                else:
                    message = f"must be at least {to_camel(smaller)} ({low}), got {high}"
                raise invalid(message, field=blamed)
        return self


# --- spec.roles ----------------------------------------------------------------------------


class RoleSpec(SpecModel):
    """One database role whose password the operator keeps in step with a Secret."""

    secret: KubeName = Field(
        description="Secret with key 'password' (and 'username' when username is not given here)."
    )
    username: RoleName | None = Field(
        default=None,
        description="Role name in PostgreSQL; defaults to the Secret's 'username' key.",
    )


class RolesSpec(SpecModel):
    """Least-privilege roles the operator creates and keeps in shape."""

    owner: RoleSpec | None = Field(
        default=None, description="Owns the schema; used for migrations only."
    )
    app: RoleSpec | None = Field(
        default=None,
        description="The application: reads and writes application tables, no DDL, may "
        "not change or delete audit rows.",
    )
    readonly: RoleSpec | None = Field(
        default=None, description="Reads application tables, nothing else."
    )
    auditor: RoleSpec | None = Field(default=None, description="Reads the audit trail only.")

    @model_validator(mode="after")
    def _check(self) -> Self:
        secrets: dict[str, str] = {}
        usernames: dict[str, str] = {}
        for kind in ROLE_KINDS:
            role: RoleSpec | None = getattr(self, kind)
            if role is None:
                continue
            if role.secret in secrets:
                raise invalid(
                    f"uses Secret {role.secret!r}, already used by {secrets[role.secret]}; "
                    "each role needs its own Secret",
                    field=f"{kind}.secret",
                )
            secrets[role.secret] = kind
            if role.username is not None:
                if role.username in usernames:
                    raise invalid(
                        f"{role.username!r} is already the username of "
                        f"{usernames[role.username]}; each role needs its own name",
                        field=f"{kind}.username",
                    )
                usernames[role.username] = kind
        return self


# --- spec.backup ---------------------------------------------------------------------------


class PersistentVolumeClaimRef(SpecModel):
    """A PersistentVolumeClaim in the resource's namespace."""

    claim_name: KubeName = Field(description="Name of the PersistentVolumeClaim.")


def _checked_by(check: Callable[[str], str]) -> AfterValidator:
    """Run one of the object-storage rules of ``backup.s3.location`` on a field."""

    def run(value: str) -> str:
        try:
            return check(value)
        except ValueError as exc:
            raise invalid(str(exc)) from None

    return AfterValidator(run)


BucketName = Annotated[str, Field(min_length=3, max_length=63), _checked_by(check_bucket)]
ObjectPrefix = Annotated[str, Field(max_length=512), _checked_by(check_prefix)]
EndpointUrl = Annotated[str, Field(max_length=512), _checked_by(check_endpoint)]


class ServerSideEncryption(SpecModel):
    """How the object store encrypts every object dbkeeper writes."""

    type: SseMode = Field(
        description="AES256 (keys managed by the store, SSE-S3) or aws:kms (SSE-KMS, with "
        "kmsKeyId; needs an https endpoint)."
    )
    kms_key_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="The KMS key (id, ARN or alias) for type aws:kms.",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.type == "aws:kms" and self.kms_key_id is None:
            raise invalid("type aws:kms needs kmsKeyId: the KMS key's id", field="kmsKeyId")
        if self.type == "AES256" and self.kms_key_id is not None:
            raise invalid("kmsKeyId is only for type aws:kms", field="kmsKeyId")
        return self


class WebIdentity(SpecModel):
    """A role the backup pods assume with their ServiceAccount's token (IRSA-style)."""

    role_arn: str = Field(
        pattern=r"^arn:[a-z0-9-]+:iam::[0-9]{12}:role/.+$",
        max_length=2048,
        description="The IAM role to assume, e.g. arn:aws:iam::123456789012:role/backups.",
    )
    audience: str = Field(
        default="sts.amazonaws.com",
        min_length=1,
        max_length=253,
        description="Audience of the projected ServiceAccount token.",
    )


class S3Destination(SpecModel):
    """A bucket of Amazon S3 or of an S3-compatible store (MinIO, Ceph, ...)."""

    bucket: BucketName = Field(description="The bucket; it must exist.")
    prefix: ObjectPrefix = Field(
        default="",
        description="Key prefix of this database's backups, e.g. health/clinic (one prefix "
        "per DatabaseSchema: retention applies to everything under it).",
    )
    region: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9-]{1,64}$",
        description="The bucket's region (AWS_REGION); asked of the store when absent.",
    )
    endpoint: EndpointUrl | None = Field(
        default=None,
        description="http(s)://HOST[:PORT] of an S3-compatible store; Amazon S3 when absent.",
    )
    credentials_secret: KubeName | None = Field(
        default=None,
        description="Secret with the keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and "
        "optionally AWS_SESSION_TOKEN). Without it (and without webIdentity) the pods use "
        "their ServiceAccount's workload identity (backup.serviceAccountName).",
    )
    web_identity: WebIdentity | None = Field(
        default=None,
        description="Assume this role with a projected ServiceAccount token, for clusters "
        "whose token issuer the cloud trusts but that inject nothing themselves.",
    )
    server_side_encryption: ServerSideEncryption | None = Field(
        default=None, description="Server-side encryption of every object written."
    )
    staging_size_limit: Quantity | None = Field(
        default=None,
        description="Size limit of the pods' staging volume, where one dump is written "
        "before its upload and read after its download, e.g. 20Gi. Leave room for one dump.",
    )

    @property
    def url(self) -> str:
        """``s3://BUCKET/PREFIX``, as the backup commands take it."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.credentials_secret is not None and self.web_identity is not None:
            raise invalid("give credentialsSecret or webIdentity, not both", field="webIdentity")
        return self


class BackupDestination(SpecModel):
    """Where backups are written: exactly one of persistentVolumeClaim, s3 or directory."""

    persistent_volume_claim: PersistentVolumeClaimRef | None = Field(
        default=None,
        description="Write backups to this claim (mounted into the backup jobs).",
    )
    s3: S3Destination | None = Field(
        default=None,
        description="Write backups to object storage (off-site: they outlive the cluster).",
    )
    directory: AbsolutePath | None = Field(
        default=None,
        description="Write backups to this absolute directory; for runs outside a "
        "cluster (local demo, CI).",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        given = [
            name
            for name, value in (
                ("persistentVolumeClaim", self.persistent_volume_claim),
                ("s3", self.s3),
                ("directory", self.directory),
            )
            if value is not None
        ]
        if len(given) > 1:
            raise invalid(
                f"give one of persistentVolumeClaim, s3 or directory, not {' and '.join(given)}",
                field=given[-1],
            )
        if not given:
            raise invalid(
                "is required: give persistentVolumeClaim or s3 (in a cluster) or directory "
                "(outside one)",
                field="persistentVolumeClaim",
            )
        return self


class RetentionSpec(SpecModel):
    """Which backups to keep. The newest verified backup is never removed."""

    keep_last: int = Field(
        default=7, ge=1, le=1000, description="Keep at least this many newest backups."
    )
    max_age: Duration | None = Field(
        default=None,
        description="Remove backups older than this (e.g. 30d), beyond the keepLast newest.",
    )


class BackupSpec(SpecModel):
    """Scheduled and on-demand backups, proven by restore drills."""

    schedule: Cron | None = Field(
        default=None,
        description="Cron schedule of backups, five fields, e.g. '0 2 * * *'. Without it "
        "backups are taken before migrations and on request (annotation "
        "dbkeeper.dev/backup-now) only.",
    )
    verify_schedule: Cron | None = Field(
        default=None,
        description="Cron schedule of restore drills: the newest backup is restored into "
        "a scratch database and checked.",
    )
    retention: RetentionSpec = Field(
        default_factory=RetentionSpec,
        json_schema_extra=_default_object(),
        description="How many and how old backups to keep.",
    )
    destination: BackupDestination = Field(description="Where backups are written.")
    jobs: int = Field(default=2, ge=1, le=16, description="Parallel pg_dump/pg_restore jobs.")
    suspend: bool = Field(
        default=False, description="Pause scheduled backups and drills (on request still work)."
    )
    service_account_name: KubeName | None = Field(
        default=None,
        description="ServiceAccount of the backup and drill pods, e.g. one a workload "
        "identity (IRSA) maps to a role that may write the bucket. No Kubernetes API token "
        "is mounted.",
    )


# --- spec.types ----------------------------------------------------------------------------

DEFAULT_TYPES_KEY = "schema.ts"


class TypesSpec(SpecModel):
    """The database's TypeScript module (Drizzle ORM), published into a ConfigMap.

    Whenever the schema is at its target revision and the ConfigMap does not already
    hold that revision's module, the operator reads the database's catalog (read-only,
    as the owner) and writes ``data[key]``; application pipelines fetch it from there.
    """

    config_map: KubeName = Field(
        description="ConfigMap in the resource's namespace to write the module into. The "
        "operator creates it and owns it (it is deleted with this resource, or when types "
        "is removed); a ConfigMap of that name it does not own is never changed "
        "(condition TypesPublished False, reason ConfigMapNotOwned).",
    )
    key: ConfigMapKey = Field(
        default=DEFAULT_TYPES_KEY,
        description="Key of the module in the ConfigMap's data, e.g. schema.ts (also its "
        "file name when the ConfigMap is mounted).",
    )


# --- spec ----------------------------------------------------------------------------------


class DatabaseSchemaSpec(SpecModel):
    """The desired state of one PostgreSQL database: schema, pooler, roles, backups, types."""

    database: DatabaseSpec = Field(description="The database and how to reach it.")
    migrations: MigrationsSpec = Field(
        default_factory=MigrationsSpec,
        json_schema_extra=_default_object(),
        description="The schema revision to keep the database at.",
    )
    pooler: PoolerSpec = Field(
        default_factory=PoolerSpec,
        json_schema_extra=_default_object(),
        description="A PgBouncer pooler in front of the database.",
    )
    roles: RolesSpec | None = Field(
        default=None, description="Application roles managed by the operator."
    )
    deletion_policy: DeletionPolicy = Field(
        default="Retain",
        description="What happens to the database when the resource is deleted: Retain "
        "(left as it is) or Drop (the schema is migrated down to base, which removes the "
        "migration set's objects and their data; the database itself and its backups are "
        "kept).",
    )
    backup: BackupSpec | None = Field(
        default=None, description="Backups and restore drills; none when absent."
    )
    types: TypesSpec | None = Field(
        default=None,
        description="Publish the database's TypeScript module (Drizzle ORM) into a "
        "ConfigMap after each move; nothing is published when absent.",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        source = self.migrations.config_map
        if self.types is not None and source is not None and source.name == self.types.config_map:
            raise invalid(
                f"{echo(self.types.config_map)} is the ConfigMap of the migration set "
                "(migrations.configMap.name); publish the types into a ConfigMap of their own",
                field="types.configMap",
            )
        return self
