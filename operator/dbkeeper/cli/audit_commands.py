"""``dbkeeper audit``: seal, checkpoint and verify the healthcare schema's audit trail.

- ``seal`` links the rows whose transactions are final into the chain (one batch);
- ``checkpoint`` seals, verifies the whole chain and prints a checkpoint of its head
  signed with ``--key-file`` (or ``DBKEEPER_AUDIT_KEY_FILE``); ``-o json`` prints it as
  one JSON line, to append to a file kept outside the database;
- ``verify`` checks the chain (v2, or the v1 chain of a database before revision 0007)
  and, with ``--checkpoints FILE``, that the log is a consistent extension of each;
- ``keygen`` writes a new Ed25519 key pair.

Exit code 0 when everything verifies, 1 when something does not (the first problem is
shown), 2 for usage errors; a database that cannot be reached is an error too.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from dbkeeper.audit import chain
from dbkeeper.audit.checkpoint import (
    KEY_FILE_ENV,
    CheckpointError,
    generate_key,
    key_id,
    load_signing_key,
    load_verifying_key,
    make_checkpoint,
    mismatch,
    parse_lines,
)
from dbkeeper.cli.common import (
    CommandError,
    connection_from_args,
    emit,
)
from dbkeeper.cli.progress import progress
from dbkeeper.conninfo import ConnInfo
from dbkeeper.healthcare.audit import AuditVerdict, verify_audit_chain
from dbkeeper.json_shapes.audit import (
    AuditVerifyV1Json,
    AuditVerifyV2Json,
    BrokenRow,
    CheckedCheckpointJson,
    SealJson,
)

_BROKEN_ROW = """
SELECT id, table_name, row_key, action, actor, txid, occurred_at
  FROM audit.log WHERE id = %s
"""


def _key_path(args: argparse.Namespace) -> Path | None:
    if args.key_file is not None:
        return Path(args.key_file)
    from_env = os.environ.get(KEY_FILE_ENV)
    return Path(from_env) if from_env else None


@contextmanager
def _connected(info: ConnInfo, doing: str) -> Iterator[psycopg.Connection[Any]]:
    try:
        with psycopg.connect(info.dsn(), autocommit=True) as conn:
            yield conn
    except psycopg.errors.UndefinedTable:
        raise CommandError(
            f"{info.describe()} has no audit trail (audit.log): migrate the healthcare "
            "set to revision 0002 or later first"
        ) from None
    except psycopg.Error as exc:
        raise CommandError(f"cannot {doing} the audit trail of {info.describe()}: {exc}") from None


def _require_v2(conn: psycopg.Connection[Any], info: ConnInfo, action: str) -> None:
    if not chain.has_sealed_chain(conn):
        raise CommandError(
            f"{info.describe()} has a v1 audit trail, which is not sealed: migrate the "
            f"healthcare set to revision 0007 or later to {action}"
        )


def _broken_row(conn: psycopg.Connection[Any], row_id: int | None) -> BrokenRow:
    if row_id is None:
        return None
    row = conn.execute(_BROKEN_ROW, (row_id,)).fetchone()
    if row is None:
        return {"id": row_id, "present": False}
    id_, table_name, row_key, action, actor, txid, occurred_at = row
    return {
        "id": id_,
        "table_name": table_name,
        "row_key": row_key,
        "action": action,
        "actor": actor,
        "txid": txid,
        "occurred_at": str(occurred_at),
        "present": True,
    }


def _broken_lines(broken: BrokenRow) -> list[str]:
    if broken is None:
        return []
    if broken["present"] is False:
        return [f"row {broken['id']} is no longer in the log"]
    return [
        f"broken row: {broken['table_name']} key {broken['row_key']} {broken['action']} by "
        f"{broken['actor']} (txid {broken['txid']}) at {broken['occurred_at']}"
    ]


def _v1_result(conn: psycopg.Connection[Any]) -> tuple[AuditVerifyV1Json, list[str]]:
    verdict: AuditVerdict = verify_audit_chain(conn)
    broken = None if verdict.ok else _broken_row(conn, verdict.first_broken_id)
    data: AuditVerifyV1Json = {
        "format": "v1",
        "ok": verdict.ok,
        "rows_checked": verdict.rows_checked,
        "first_broken_id": verdict.first_broken_id,
        "reason": verdict.reason,
        "broken_row": broken,
    }
    if verdict.ok:
        return data, [f"audit chain intact: {verdict.rows_checked} rows checked (v1)"]
    lines = [
        f"audit chain BROKEN at row {verdict.first_broken_id}: {verdict.reason}",
        f"rows checked before the break: {verdict.rows_checked}",
        *_broken_lines(broken),
    ]
    return data, lines


def _v2_result(
    conn: psycopg.Connection[Any], verdict: chain.ChainVerdict
) -> tuple[AuditVerifyV2Json, list[str]]:
    broken = None if verdict.ok else _broken_row(conn, verdict.first_broken_id)
    head = verdict.head
    data: AuditVerifyV2Json = {
        "format": "v2",
        "ok": verdict.ok,
        "rows_checked": verdict.rows_checked,
        "batches_checked": verdict.batches_checked,
        "unsealed_rows": verdict.unsealed_rows,
        "head": None
        if head is None
        else {"batch": head.batch, "rows": head.total_rows, "hash": head.batch_hash},
        "first_broken_id": verdict.first_broken_id,
        "broken_batch": verdict.broken_batch,
        "reason": verdict.reason,
        "broken_row": broken,
    }
    if verdict.ok:
        sealed = f", head batch {head.batch} ({head.batch_hash[:16]})" if head else ""
        return data, [
            f"audit chain intact: {verdict.rows_checked} rows in "
            f"{chain.batches(verdict.batches_checked)} checked, {verdict.unsealed_rows} not "
            f"sealed yet{sealed}"
        ]
    return data, [
        f"audit chain BROKEN at {verdict.where()}: {verdict.reason}",
        *_broken_lines(broken),
    ]


def _check_checkpoints(
    args: argparse.Namespace, verdict: chain.ChainVerdict
) -> tuple[list[CheckedCheckpointJson], list[str]]:
    key_path = _key_path(args)
    if key_path is None:
        raise CommandError(
            f"--checkpoints needs --key-file (or {KEY_FILE_ENV}): the private or public key "
            "that signed them, to check their signatures"
        )
    path = Path(args.checkpoints)
    try:
        public = load_verifying_key(key_path)
        text = path.read_text(encoding="utf-8")
        checkpoints = parse_lines(text.splitlines(), str(path))
    except OSError as exc:
        raise CommandError(f"cannot read the checkpoints file {path}: {exc.strerror}") from None
    except CheckpointError as exc:
        raise CommandError(str(exc)) from None
    results: list[CheckedCheckpointJson] = []
    lines: list[str] = []
    for number, checkpoint in checkpoints:
        problem = mismatch(checkpoint, verdict, public)
        results.append(
            {"line": number, **checkpoint.to_dict(), "ok": problem is None, "reason": problem}
        )
        if problem is not None and not any(not r["ok"] for r in results[:-1]):
            lines.append(
                f"checkpoint on line {number} (batch {checkpoint.batch}, {checkpoint.time}) "
                f"does not match: {problem}"
            )
    good = sum(1 for r in results if r["ok"])
    if good == len(results):
        newest = checkpoints[-1][1]
        lines.append(
            f"the log extends all {good} checkpoints (key {key_id(public)}; newest: batch "
            f"{newest.batch} at {newest.time})"
        )
    else:
        lines.append(f"{good} of {len(results)} checkpoints match")
    return results, lines


def run_verify(args: argparse.Namespace) -> int:
    info = connection_from_args(args)
    data: AuditVerifyV1Json | AuditVerifyV2Json
    with _connected(info, "verify") as conn, progress(args, "audit verify", None, "rows") as shown:
        if chain.has_sealed_chain(conn):
            verdict = chain.verify_chain(conn, shown)
            data_v2, lines = _v2_result(conn, verdict)
            ok = verdict.ok
            if args.checkpoints is not None:
                results, checkpoint_lines = _check_checkpoints(args, verdict)
                data_v2["checkpoints"] = results
                lines.extend(checkpoint_lines)
                ok = ok and all(r["ok"] for r in results)
            data = data_v2
        else:
            if args.checkpoints is not None:
                raise CommandError(
                    f"{info.describe()} has a v1 audit trail, which has no checkpoints: "
                    "migrate the healthcare set to revision 0007 or later"
                )
            data, lines = _v1_result(conn)
            ok = data["ok"]
    data["ok"] = ok
    emit(args, data, "\n".join(lines))
    return 0 if ok else 1


def _seal_text(result: chain.SealResult | None, head: chain.ChainHead | None) -> str:
    if result is not None:
        return (
            f"sealed batch {result.batch}: {result.row_count} rows ({result.total_rows} in all),"
            f" head {result.batch_hash}"
        )
    where = f"batch {head.batch}, {head.total_rows} rows" if head else "no batch"
    return f"nothing new to seal: the chain ends at {where}"


def run_seal(args: argparse.Namespace) -> int:
    info = connection_from_args(args)
    with _connected(info, "seal") as conn:
        _require_v2(conn, info, "seal it")
        result = chain.seal(conn)
        head = chain.chain_head(conn)
    data: SealJson = {
        "sealed": result is not None,
        "batch": head.batch if head else None,
        "rows": result.row_count if result else 0,
        "total_rows": head.total_rows if head else 0,
        "head": head.batch_hash if head else None,
    }
    emit(args, data, _seal_text(result, head))
    return 0


def run_checkpoint(args: argparse.Namespace) -> int:
    key_path = _key_path(args)
    if key_path is None:
        raise CommandError(
            f"a checkpoint is signed with a key: pass --key-file FILE or set {KEY_FILE_ENV} "
            "(create one with 'dbkeeper audit keygen --out FILE')"
        )
    try:
        key = load_signing_key(key_path)
    except CheckpointError as exc:
        raise CommandError(str(exc)) from None
    info = connection_from_args(args)
    with _connected(info, "checkpoint") as conn:
        _require_v2(conn, info, "checkpoint it")
        try:
            checkpoint = make_checkpoint(conn, key, datetime.now(UTC))
        except CheckpointError as exc:
            raise CommandError(str(exc)) from None
    if getattr(args, "output", "text") == "json":
        print(checkpoint.to_line())
    else:
        print(
            f"checkpoint: batch {checkpoint.batch}, {checkpoint.rows} rows, head "
            f"{checkpoint.head}, at {checkpoint.time}, key {checkpoint.key_id}"
        )
    return 0


def run_keygen(args: argparse.Namespace) -> int:
    try:
        public = generate_key(Path(args.out))
    except CheckpointError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"cannot write {args.out}: {exc.strerror}") from None
    print(
        f"wrote {args.out} (private, mode 0600: keep it away from the database) and "
        f"{args.out}.pub; key id {key_id(public)}"
    )
    return 0
