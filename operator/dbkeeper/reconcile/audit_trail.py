"""The audit aspect of a pass: keep a sealed audit trail sealed, verified and checkpointed.

A migration set declares a sealed audit trail by creating ``audit.seal()`` (the
healthcare set does from revision 0007). For such a database the pass:

1. hands it to the operator's sealer (:data:`dbkeeper.audit.sealer.SEALER`), which seals
   it every ``DBKEEPER_AUDIT_SEAL_INTERVAL`` between passes, and seals once itself;
2. every ``DBKEEPER_AUDIT_CHECKPOINT_INTERVAL`` verifies the whole chain and that it
   extends the checkpoint in status; with a signing key (``DBKEEPER_AUDIT_KEY_FILE``, a
   Secret mounted into the operator only) it signs a new checkpoint of the head;
3. reports ``status.audit`` (sealed batch and rows, unsealed rows, the checkpoint), the
   condition ``AuditTrailIntact`` and the audit metrics.

A chain that does not verify turns ``AuditTrailIntact`` False (``AuditTrailBroken``,
with a Warning Event) and the resource Degraded; no checkpoint is signed over it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from dbkeeper import metrics
from dbkeeper.api import AuditCheckpointStatus, AuditStatus, ConditionType, Reason
from dbkeeper.audit import chain
from dbkeeper.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    extension_problem,
    load_signing_key,
    parse,
    sign,
)
from dbkeeper.audit.sealer import SEALER
from dbkeeper.conninfo import ConnInfo, redact
from dbkeeper.reconcile.runtime import ResourceView
from dbkeeper.reconcile.status_report import StatusReport
from dbkeeper.settings import Settings

log = logging.getLogger(__name__)

# When each resource's chain was last verified by this operator process.
_verified_at: dict[str, datetime] = {}


def forget_audit(view: ResourceView) -> None:
    SEALER.forget(view.key)
    _verified_at.pop(view.key, None)
    metrics.set_audit_state(view.namespace, view.name, None, None, None)


def _previous(report: StatusReport) -> Checkpoint | None:
    audit = report.status.audit
    if audit is None or audit.checkpoint is None:
        return None
    try:
        return parse(
            {"format": "dbkeeper-audit-checkpoint-v1", **audit.checkpoint.model_dump(by_alias=True)}
        )
    except CheckpointError:
        return None


def _checkpoint_status(checkpoint: Checkpoint) -> AuditCheckpointStatus:
    return AuditCheckpointStatus(
        batch=checkpoint.batch,
        rows=checkpoint.rows,
        head=checkpoint.head,
        time=checkpoint.time,
        key_id=checkpoint.key_id,
        signature=checkpoint.signature,
    )


def _verify(
    conn: psycopg.Connection[tuple[object, ...]],
    report: StatusReport,
    settings: Settings,
    previous: Checkpoint | None,
) -> Checkpoint | None:
    """Verify the chain (and the extension of ``previous``); the new checkpoint, if signed."""
    verdict = chain.verify_chain(conn)
    problem = None
    if not verdict.ok:
        where = verdict.where()
        problem = f"the audit chain is broken at {where}: {verdict.reason}"
    elif previous is not None:
        gap = extension_problem(previous, verdict)
        if gap is not None:
            problem = f"the audit log no longer extends the checkpoint of {previous.time}: {gap}"
    if problem is not None:
        report.condition(
            ConditionType.AUDIT_TRAIL_INTACT,
            "False",
            Reason.AUDIT_TRAIL_BROKEN,
            f"{problem}; no checkpoint is signed until this is investigated",
            event="Warning",
        )
        return None
    head = verdict.head
    summary = f"{verdict.rows_checked} rows in {verdict.batches_checked} batches verified"
    if settings.audit_key_file is None or head is None:
        report.condition(
            ConditionType.AUDIT_TRAIL_INTACT,
            "True",
            Reason.AUDIT_TRAIL_INTACT,
            f"{summary}; no signing key (DBKEEPER_AUDIT_KEY_FILE), so no checkpoint",
        )
        return None
    try:
        key = load_signing_key(Path(settings.audit_key_file))
    except CheckpointError as exc:
        report.condition(
            ConditionType.AUDIT_TRAIL_INTACT,
            "Unknown",
            Reason.AUDIT_NOT_CHECKPOINTED,
            f"{summary}, but no checkpoint was signed: {exc}",
            event="Warning",
        )
        return None
    checkpoint = sign(head, key, datetime.now(UTC))
    report.condition(
        ConditionType.AUDIT_TRAIL_INTACT,
        "True",
        Reason.AUDIT_TRAIL_INTACT,
        f"{summary}; checkpoint of batch {checkpoint.batch} signed with key {checkpoint.key_id}",
    )
    return checkpoint


def audit_aspect(
    view: ResourceView, report: StatusReport, owner: ConnInfo, settings: Settings
) -> None:
    """One pass over the audit trail (see the module docstring)."""
    try:
        with psycopg.connect(owner.dsn(), autocommit=True, connect_timeout=10) as conn:
            if not chain.has_sealed_chain(conn):
                forget_audit(view)
                report.drop_condition(ConditionType.AUDIT_TRAIL_INTACT)
                report.update(audit=None)
                return
            SEALER.track(view.key, owner)
            chain.seal(conn)
            previous = _previous(report)
            checkpoint = previous
            last = _verified_at.get(view.key)
            if last is None or report.now - last >= settings.audit_checkpoint_interval:
                signed = _verify(conn, report, settings, previous)
                _verified_at[view.key] = report.now
                checkpoint = signed or previous
            head = chain.chain_head(conn)
            backlog = chain.backlog(conn)
    except psycopg.Error as exc:
        # Reachability is the schema aspect's to report; the trail is looked at next time.
        log.warning("the audit trail of %s was not looked at: %s", view.key, redact(str(exc)))
        return
    oldest = max(0.0, (report.now - backlog.oldest).total_seconds()) if backlog.oldest else 0.0
    report.update(
        audit=AuditStatus(
            sealed_batch=head.batch if head else None,
            sealed_rows=head.total_rows if head else None,
            unsealed_rows=backlog.rows,
            last_sealed_at=head.sealed_at if head else None,
            checkpoint=_checkpoint_status(checkpoint) if checkpoint else None,
        )
    )
    metrics.set_audit_state(
        view.namespace, view.name, head.total_rows if head else 0, backlog.rows, oldest
    )
