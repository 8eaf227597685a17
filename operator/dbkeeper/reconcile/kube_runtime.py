"""The reconcilers' runtime inside a cluster: Secrets, status and Events via the API.

One :class:`KubeRuntime` serves the whole operator; :meth:`KubeRuntime.for_pass` gives
each reconcile pass its own view of it: Secrets read at most once per pass (the pass
observes the world once), and every write refused once the pass is abandoned.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dbkeeper.api import API_VERSION, KIND, DatabaseSchemaSpec
from dbkeeper.api.spec import S3Destination
from dbkeeper.conninfo import ConnInfo
from dbkeeper.kube import KubeClient, KubeError, ObjectRef
from dbkeeper.manifests import HASH_ANNOTATION
from dbkeeper.reconcile.backup_input import bucket_credentials, s3_location
from dbkeeper.reconcile.hooks import MoveSafeguards, PoolerPause
from dbkeeper.reconcile.pooler_pauses import pooler_pauses
from dbkeeper.reconcile.runtime import EventType, ResourceView, StatusConflict
from dbkeeper.reconcile.status_patch import merge_patch
from dbkeeper.reconcile.telemetry import publish_status
from dbkeeper.settings import Settings

_log = logging.getLogger(__name__)

BACKUP_MOUNT_ROOT_VARIABLE = "DBKEEPER_BACKUP_DIR"


_CONFLICT = 409


class KubeRuntime:
    def __init__(
        self,
        kube: KubeClient,
        settings: Settings,
        abandoned: threading.Event | None = None,
    ) -> None:
        self.kube = kube
        self.settings = settings
        self._abandoned = abandoned
        self._secrets: dict[tuple[str, str], dict[str, str] | None] | None = None

    def for_pass(self, abandoned: threading.Event) -> KubeRuntime:
        """A runtime for one pass: Secrets cached for its length, writes guarded."""
        runtime = KubeRuntime(self.kube.guarded(abandoned), self.settings, abandoned)
        runtime._secrets = {}
        return runtime

    def abandoned(self) -> threading.Event | None:
        return self._abandoned

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        if self._secrets is None:
            return self.kube.read_secret(namespace, name)
        key = (namespace, name)
        if key not in self._secrets:
            self._secrets[key] = self.kube.read_secret(namespace, name)
        found = self._secrets[key]
        return None if found is None else dict(found)

    def read(self, namespace: str, name: str) -> ResourceView | None:
        """The resource as the API has it now, or None when it does not exist."""
        found = self.kube.get(KIND, namespace, name)
        return None if found is None else ResourceView.from_body(found)

    def refresh(self, view: ResourceView) -> ResourceView | None:
        return self.read(view.namespace, view.name)

    def write_status(self, view: ResourceView, patch: Mapping[str, Any]) -> str | None:
        try:
            version = self.kube.patch_status(
                KIND, view.namespace, view.name, dict(patch), view.resource_version
            )
        except KubeError as exc:
            if exc.status == _CONFLICT:
                raise StatusConflict(str(exc)) from None
            raise
        publish_status(view, merge_patch(view.status, patch))
        return version

    def delete_owned(self, view: ResourceView, kind: str, name: str) -> bool:
        """Delete ``kind``/``name`` if ``view``'s resource controls it; True if deleted.

        An object of the same name that someone else owns is left alone.
        """
        found = self.kube.get(kind, view.namespace, name)
        if found is None or view.uid is None:
            return False
        owners = (found.get("metadata") or {}).get("ownerReferences") or []
        if not any(o.get("uid") == view.uid and o.get("controller") for o in owners):
            return False
        self.kube.delete(kind, view.namespace, name)
        return True

    def event(self, view: ResourceView, event_type: EventType, reason: str, message: str) -> None:
        ref = ObjectRef(API_VERSION, KIND, view.namespace, view.name, view.uid)
        # The operator's log is its Events, one line each: what on-call reads first.
        level = logging.WARNING if event_type == "Warning" else logging.INFO
        _log.log(level, "%s/%s %s: %s", view.namespace, view.name, reason, message)
        self.kube.post_event(ref, event_type, reason, message)

    def apply(self, view: ResourceView, obj: Mapping[str, Any]) -> str:
        return self.kube.apply(dict(obj), HASH_ANNOTATION)

    def now(self) -> datetime:
        return datetime.now(UTC)

    def migration_hooks(
        self, view: ResourceView, spec: DatabaseSchemaSpec, conninfo: ConnInfo
    ) -> MoveSafeguards | None:
        poolers = self._pooler_pauses(view, spec, conninfo)
        backup = spec.backup
        if backup is None or not spec.migrations.backup_before_migrate:
            return MoveSafeguards(database=conninfo, poolers=poolers) if poolers else None
        s3 = backup.destination.s3
        if s3 is not None:
            return self._s3_safeguards(view, conninfo, s3, backup.jobs, poolers)
        destination = backup_destination(spec)
        if destination is None or not destination.is_dir():
            claim = backup.destination.persistent_volume_claim
            where = f"claim {claim.claim_name}" if claim else "the backup destination"
            return MoveSafeguards(
                database=conninfo,
                poolers=poolers,
                backup_unavailable=(
                    f"backupBeforeMigrate is set but the operator cannot write to {where}: "
                    f"mount it at ${BACKUP_MOUNT_ROOT_VARIABLE}/<claimName> (chart value "
                    "backupClaims) or set migrations.backupBeforeMigrate: false"
                ),
            )
        return MoveSafeguards(
            database=conninfo,
            backup_destination=destination,
            backup_jobs=backup.jobs,
            poolers=poolers,
        )

    def _s3_safeguards(
        self,
        view: ResourceView,
        conninfo: ConnInfo,
        s3: S3Destination,
        jobs: int,
        poolers: tuple[PoolerPause, ...],
    ) -> MoveSafeguards:
        """The operator takes the backup before a move itself, into the bucket: with
        the keys of the credentials Secret, else with its own identity."""
        credentials: tuple[tuple[str, str], ...] = ()
        if s3.credentials_secret is not None:
            found = self.read_secret(view.namespace, s3.credentials_secret)
            keys = bucket_credentials(found)
            if keys is None:
                return MoveSafeguards(
                    database=conninfo,
                    poolers=poolers,
                    backup_unavailable=(
                        f"backupBeforeMigrate is set but Secret {s3.credentials_secret!r} "
                        + (
                            "does not exist"
                            if found is None
                            else "lacks AWS_ACCESS_KEY_ID or AWS_SECRET_ACCESS_KEY"
                        )
                        + ": create it with those keys, or set "
                        "migrations.backupBeforeMigrate: false"
                    ),
                )
            credentials = keys
        return MoveSafeguards(
            database=conninfo,
            backup_destination=s3_location(s3),
            backup_jobs=jobs,
            backup_credentials=credentials,
            poolers=poolers,
        )

    def _pooler_pauses(
        self, view: ResourceView, spec: DatabaseSchemaSpec, conninfo: ConnInfo
    ) -> tuple[PoolerPause, ...]:
        def warn(reason: str, message: str) -> None:
            self.event(view, "Warning", reason, message)

        return pooler_pauses(view.namespace, view.name, spec, self.kube, conninfo, warn)


def backup_destination(spec: DatabaseSchemaSpec) -> Path | None:
    """Where the operator itself writes the backup taken before a move, if anywhere.

    A ``directory`` destination is used as it is. A PersistentVolumeClaim is used when
    the operator has it mounted at ``$DBKEEPER_BACKUP_DIR/<claimName>``.
    """
    backup = spec.backup
    if backup is None or not spec.migrations.backup_before_migrate:
        return None
    if backup.destination.directory is not None:
        return Path(backup.destination.directory)
    claim = backup.destination.persistent_volume_claim
    root = os.environ.get(BACKUP_MOUNT_ROOT_VARIABLE)
    if claim is not None and root:
        return Path(root) / claim.claim_name
    return None
