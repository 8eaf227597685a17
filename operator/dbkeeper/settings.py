"""Operator settings: one typed object read from ``DBKEEPER_*`` environment variables.

Read once at start-up; a bad value stops the operator with a message naming the
variable and what it accepts, rather than failing later in a handler.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from dbkeeper.api.durations import DurationError, parse_fine_duration
from dbkeeper.echo import echo


class SettingsError(ValueError):
    """A ``DBKEEPER_*`` variable has a value the operator cannot use."""


def parse_env_duration(name: str, value: str) -> timedelta:
    try:
        return parse_fine_duration(value.strip())
    except DurationError as exc:
        raise SettingsError(f"{name}: {exc}; milliseconds are written 500ms") from None


def _bool(name: str, value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise SettingsError(f"{name}={echo(value)} is not a boolean: use true or false")


def _port(name: str, value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise SettingsError(f"{name}={echo(value)} is not a port number") from None
    if not 0 <= port <= 65535:
        raise SettingsError(f"{name}={echo(value)} is out of range: use 1-65535, or 0 to disable")
    return port


def _positive_int(name: str, value: str, upper: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise SettingsError(f"{name}={echo(value)} is not a whole number") from None
    if not 1 <= number <= upper:
        raise SettingsError(f"{name}={echo(value)} is out of range: use 1-{upper}")
    return number


@dataclass(frozen=True)
class Settings:
    """Everything about how the operator runs (not what it manages: that is the spec)."""

    namespaces: tuple[str, ...] = ()
    """Namespaces to watch; empty means the whole cluster."""
    recheck_interval: timedelta = timedelta(seconds=60)
    """How often each resource's database, revision and drift are re-read."""
    retry_delay: timedelta = timedelta(seconds=15)
    """First wait before retrying a temporary failure (missing Secret, unreachable DB)."""
    workers: int = 16
    """Resources reconciled at the same time (each migration holds one worker)."""
    peering: str | None = None
    """kopf peering name for several replicas (one active); None runs standalone."""
    metrics_port: int = 8080
    health_port: int = 8081
    log_format: str = "text"
    log_level: str = "INFO"
    image: str = "dbkeeper:0.1.0"
    """Image of the pooler and backup pods: the operator's own image."""
    manage_workloads: bool = True
    """Create pooler Deployments and backup CronJobs; off when only migrating."""
    advisory_lock_wait: timedelta = timedelta(seconds=30)
    image_set_mount: str = "auto"
    """How a migration Job gets a set out of an image: ``volume`` (an image volume),
    ``copy`` (an init container of that image copies it), or ``auto``: volume when the
    API server is Kubernetes 1.35 or newer, copy before."""
    shutdown_timeout: timedelta = timedelta(seconds=25)
    """How long a stopping operator waits for running passes (a move in progress gets
    this long to finish before it is abandoned and rolled back); keep it below the pod's
    terminationGracePeriodSeconds."""
    pooler_ready_grace: timedelta = timedelta(minutes=5)
    """How long a pooler may have no ready replica before the resource turns Degraded
    (a rollout or a rescheduled pod is not an outage; a pooler that never comes up is)."""
    audit_seal_interval: timedelta = timedelta(seconds=5)
    """How often the audit trail of each database that has one is sealed: with the
    longest transaction still running, this bounds how long a committed audit row
    waits for its seal."""
    audit_checkpoint_interval: timedelta = timedelta(minutes=10)
    """How often a signed checkpoint of each audit chain is made (with a key)."""
    audit_key_file: str | None = None
    """The Ed25519 private key checkpoints are signed with; None: no checkpoints."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        known = {
            "DBKEEPER_NAMESPACES",
            "DBKEEPER_RECHECK_INTERVAL",
            "DBKEEPER_RETRY_DELAY",
            "DBKEEPER_WORKERS",
            "DBKEEPER_PEERING",
            "DBKEEPER_METRICS_PORT",
            "DBKEEPER_HEALTH_PORT",
            "DBKEEPER_LOG_FORMAT",
            "DBKEEPER_LOG_LEVEL",
            "DBKEEPER_IMAGE",
            "DBKEEPER_MANAGE_WORKLOADS",
            "DBKEEPER_ADVISORY_LOCK_WAIT",
            "DBKEEPER_SHUTDOWN_TIMEOUT",
            "DBKEEPER_IMAGE_SET_MOUNT",
            "DBKEEPER_POOLER_READY_GRACE",
            "DBKEEPER_AUDIT_SEAL_INTERVAL",
            "DBKEEPER_AUDIT_CHECKPOINT_INTERVAL",
            "DBKEEPER_AUDIT_KEY_FILE",
        }
        # Variables read elsewhere (paths, local tools); not operator settings.
        passthrough = {
            "DBKEEPER_MIGRATIONS_DIR",
            "DBKEEPER_DSN",
            "DBKEEPER_PG_BINDIR",
            "DBKEEPER_PG_CLIENT_BINDIR",
            "DBKEEPER_SERVICE_USER",
            "DBKEEPER_BACKUP_DIR",
            "DBKEEPER_BACKUP_DESTINATION",
            "DBKEEPER_BACKUP_STAGING_DIR",
            "DBKEEPER_S3_SSE",
            "DBKEEPER_S3_SSE_KMS_KEY_ID",
            "DBKEEPER_S3_WRITER_STALE",
            "DBKEEPER_MOTO_SERVER",
            "DBKEEPER_E2E_KUBECONFIG",
            "DBKEEPER_DEMO_DIR",
            "DBKEEPER_PGBOUNCER",
            "DBKEEPER_REQUIRE_TOOLS",
            "DBKEEPER_AUDIT_CHECKPOINT",
        }
        unknown = sorted(
            k for k in env if k.startswith("DBKEEPER_") and k not in known | passthrough
        )
        if unknown:
            raise SettingsError(
                f"unknown setting {unknown[0]}: known settings are " + ", ".join(sorted(known))
            )
        values = cls()
        get = env.get
        namespaces = tuple(
            n.strip() for n in get("DBKEEPER_NAMESPACES", "").split(",") if n.strip()
        )
        for namespace in namespaces:
            if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", namespace):
                raise SettingsError(
                    f"DBKEEPER_NAMESPACES has {namespace!r}, which is not a namespace name"
                )
        log_format = get("DBKEEPER_LOG_FORMAT", values.log_format)
        if log_format not in {"text", "json"}:
            raise SettingsError(f"DBKEEPER_LOG_FORMAT={log_format!r}: use text or json")
        log_level = get("DBKEEPER_LOG_LEVEL", values.log_level).upper()
        if log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise SettingsError(
                f"DBKEEPER_LOG_LEVEL={log_level!r}: use DEBUG, INFO, WARNING or ERROR"
            )

        def duration(name: str, default: timedelta) -> timedelta:
            raw = get(name)
            return default if raw is None else parse_env_duration(name, raw)

        shutdown = duration("DBKEEPER_SHUTDOWN_TIMEOUT", values.shutdown_timeout)
        if shutdown > timedelta(seconds=60):
            raise SettingsError(
                "DBKEEPER_SHUTDOWN_TIMEOUT must be at most 60s (and below the pod's "
                "terminationGracePeriodSeconds)"
            )
        recheck = duration("DBKEEPER_RECHECK_INTERVAL", values.recheck_interval)
        if recheck < timedelta(seconds=1):
            raise SettingsError("DBKEEPER_RECHECK_INTERVAL must be at least 1s")
        seal_interval = duration("DBKEEPER_AUDIT_SEAL_INTERVAL", values.audit_seal_interval)
        if not timedelta(milliseconds=100) <= seal_interval <= timedelta(minutes=5):
            raise SettingsError("DBKEEPER_AUDIT_SEAL_INTERVAL must be between 100ms and 5m")
        return cls(
            audit_seal_interval=seal_interval,
            audit_checkpoint_interval=duration(
                "DBKEEPER_AUDIT_CHECKPOINT_INTERVAL", values.audit_checkpoint_interval
            ),
            audit_key_file=get("DBKEEPER_AUDIT_KEY_FILE") or None,
            namespaces=namespaces,
            recheck_interval=recheck,
            retry_delay=duration("DBKEEPER_RETRY_DELAY", values.retry_delay),
            workers=_positive_int("DBKEEPER_WORKERS", get("DBKEEPER_WORKERS", "16"), 256),
            peering=get("DBKEEPER_PEERING") or None,
            metrics_port=_port("DBKEEPER_METRICS_PORT", get("DBKEEPER_METRICS_PORT", "8080")),
            health_port=_port("DBKEEPER_HEALTH_PORT", get("DBKEEPER_HEALTH_PORT", "8081")),
            log_format=log_format,
            log_level=log_level,
            image=get("DBKEEPER_IMAGE", values.image),
            manage_workloads=_bool(
                "DBKEEPER_MANAGE_WORKLOADS", get("DBKEEPER_MANAGE_WORKLOADS", "true")
            ),
            advisory_lock_wait=duration("DBKEEPER_ADVISORY_LOCK_WAIT", values.advisory_lock_wait),
            shutdown_timeout=shutdown,
            pooler_ready_grace=duration("DBKEEPER_POOLER_READY_GRACE", values.pooler_ready_grace),
            image_set_mount=_choice(
                "DBKEEPER_IMAGE_SET_MOUNT",
                get("DBKEEPER_IMAGE_SET_MOUNT", values.image_set_mount),
                ("auto", "volume", "copy"),
            ),
        )


def _choice(name: str, raw: str, allowed: tuple[str, ...]) -> str:
    value = raw.strip().lower()
    if value not in allowed:
        raise SettingsError(f"{name}={echo(raw)}: use {', '.join(allowed)}")
    return value
