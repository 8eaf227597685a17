"""The reconcilers' runtime inside a cluster: Secrets, status and Events via the API."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dbkeeper.api import API_VERSION, KIND, DatabaseSchemaSpec
from dbkeeper.conninfo import ConnInfo
from dbkeeper.kube import KubeClient, ObjectRef
from dbkeeper.manifests import HASH_ANNOTATION
from dbkeeper.reconcile.hooks import MoveSafeguards, PoolerPause
from dbkeeper.reconcile.runtime import EventType, ResourceView
from dbkeeper.reconcile.status_patch import merge_patch
from dbkeeper.reconcile.telemetry import publish_status
from dbkeeper.settings import Settings

BACKUP_MOUNT_ROOT_VARIABLE = "DBKEEPER_BACKUP_DIR"


class KubeRuntime:
    def __init__(self, kube: KubeClient, settings: Settings) -> None:
        self.kube = kube
        self.settings = settings

    def read_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        return self.kube.read_secret(namespace, name)

    def write_status(self, view: ResourceView, patch: Mapping[str, Any]) -> None:
        self.kube.patch_status(KIND, view.namespace, view.name, dict(patch))
        publish_status(view, merge_patch(view.status, patch))

    def refresh(self, view: ResourceView) -> ResourceView | None:
        """``view`` as the API has it now, or None when the resource is gone.

        kopf hands every handler of one cycle the same body; a handler that runs after
        another one wrote status must re-read it, or it would write over that status.
        """
        found = self.kube.get(KIND, view.namespace, view.name)
        if found is None:
            return None
        metadata = found.get("metadata") or {}
        return ResourceView(
            namespace=view.namespace,
            name=view.name,
            generation=int(metadata.get("generation") or 0),
            spec=dict(found.get("spec") or {}),
            status=dict(found.get("status") or {}),
            annotations=dict(metadata.get("annotations") or {}),
            uid=metadata.get("uid"),
        )

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

    def _pooler_pauses(
        self, view: ResourceView, spec: DatabaseSchemaSpec, conninfo: ConnInfo
    ) -> tuple[PoolerPause, ...]:
        # Imported here: the pooler's reconciler builds on this module.
        from dbkeeper.reconcile.pooler_pauses import pooler_pauses

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
