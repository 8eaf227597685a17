"""The audit chain and backups: the checkpoint a backup records, and what a restore
drill checks of the restored log.

Before pg_dump starts, the backup records the newest checkpoint it can vouch for: a
fresh one when a signing key is configured (``DBKEEPER_AUDIT_KEY_FILE``: seal, verify,
sign), else the one handed in by the operator (``DBKEEPER_AUDIT_CHECKPOINT``, one JSON
line). The dump's snapshot comes later, so the dumped log always extends it. A backup is
never refused because of its audit trail: a chain that does not verify is reported by
the drill (and the log), not by a missing backup.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from dbkeeper.audit import chain
from dbkeeper.audit.checkpoint import (
    CHECKPOINT_ENV,
    KEY_FILE_ENV,
    CheckpointError,
    extension_problem,
    load_signing_key,
    load_verifying_key,
    make_checkpoint,
    parse,
    signature_problem,
)
from dbkeeper.conninfo import ConnInfo, redact

log = logging.getLogger(__name__)


def _given_checkpoint() -> dict[str, Any] | None:
    raw = os.environ.get(CHECKPOINT_ENV, "").strip()
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return dict(parse(data).to_dict()) if isinstance(data, dict) else None
    except (json.JSONDecodeError, CheckpointError) as exc:
        log.warning("%s is not a checkpoint (%s): the backup records none", CHECKPOINT_ENV, exc)
        return None


def checkpoint_for_backup(conninfo: ConnInfo) -> dict[str, Any] | None:
    """The checkpoint a backup of ``conninfo`` records (taken before the dump)."""
    key_path = os.environ.get(KEY_FILE_ENV)
    try:
        with psycopg.connect(conninfo.dsn(), autocommit=True) as conn:
            if not chain.has_sealed_chain(conn):
                return None
            if key_path:
                key = load_signing_key(Path(key_path))
                return dict(make_checkpoint(conn, key, datetime.now(UTC)).to_dict())
    except CheckpointError as exc:
        log.warning("no fresh audit checkpoint for the backup of %s: %s", conninfo.describe(), exc)
    except psycopg.Error as exc:
        # The dump itself reports a database it cannot reach.
        log.debug("no audit checkpoint read: %s", redact(str(exc).strip()))
    return _given_checkpoint()


def restored_chain(
    conn: psycopg.Connection[Any], recorded: dict[str, Any] | None
) -> tuple[bool | None, str]:
    """The drill's audit check of a restored v2 log: intact, and extending the
    checkpoint the backup recorded (its signature too when a key is at hand)."""
    verdict = chain.verify_chain(conn)
    if not verdict.ok:
        where = verdict.where()
        return False, f"broken at {where}: {verdict.reason}"
    intact = f"intact ({verdict.rows_checked} rows, {chain.batches(verdict.batches_checked)})"
    if recorded is None:
        return True, f"{intact}; the backup recorded no checkpoint"
    try:
        checkpoint = parse(recorded)
    except CheckpointError as exc:
        return False, f"the backup's checkpoint cannot be read: {exc}"
    problem = extension_problem(checkpoint, verdict)
    if problem is not None:
        return False, (
            f"does not extend the backup's checkpoint (batch {checkpoint.batch}): {problem}"
        )
    signed = "signature not checked: no key here"
    key_path = os.environ.get(KEY_FILE_ENV)
    if key_path:
        try:
            bad = signature_problem(checkpoint, load_verifying_key(Path(key_path)))
        except CheckpointError as exc:
            return False, f"cannot check the checkpoint's signature: {exc}"
        if bad is not None:
            return False, f"the backup's checkpoint (batch {checkpoint.batch}): {bad}"
        signed = f"signature of key {checkpoint.key_id} verified"
    return True, (
        f"{intact}; extends the backup's checkpoint (batch {checkpoint.batch}, "
        f"{checkpoint.time}; {signed})"
    )
