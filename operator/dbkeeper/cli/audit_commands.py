"""``dbkeeper audit verify``: check the healthcare audit trail's hash chain.

Exit code 0 when the chain is intact, 1 when it is broken (the first broken row is
shown), 2 for usage errors; a database that cannot be reached is an error too.
"""

from __future__ import annotations

import argparse
from typing import Any

import psycopg

from dbkeeper.cli.common import (
    CommandError,
    add_connection_args,
    add_output_arg,
    connection_from_args,
    emit,
)
from dbkeeper.healthcare.audit import AuditVerdict, verify_audit_chain

_BROKEN_ROW = """
SELECT id, table_name, row_key, action, actor, txid, occurred_at
  FROM audit.log WHERE id = %s
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = subparsers.add_parser("audit", help="the healthcare schema's audit trail")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = audit_sub.add_parser(
        "verify",
        help="recompute the audit log's hash chain and report the first broken row",
    )
    add_connection_args(verify)
    add_output_arg(verify)
    verify.set_defaults(handler=run_verify)


def _broken_row(conn: psycopg.Connection[Any], row_id: int | None) -> dict[str, Any] | None:
    if row_id is None:
        return None
    row = conn.execute(_BROKEN_ROW, (row_id,)).fetchone()
    if row is None:
        return {"id": row_id, "present": False}
    keys = ("id", "table_name", "row_key", "action", "actor", "txid", "occurred_at")
    return {**dict(zip(keys, row, strict=True)), "present": True}


def _text(verdict: AuditVerdict, broken: dict[str, Any] | None) -> str:
    if verdict.ok:
        return f"audit chain intact: {verdict.rows_checked} rows checked"
    lines = [
        f"audit chain BROKEN at row {verdict.first_broken_id}: {verdict.reason}",
        f"rows checked before the break: {verdict.rows_checked}",
    ]
    if broken and broken["present"]:
        lines.append(
            "broken row: {table_name} key {row_key} {action} by {actor} "
            "(txid {txid}) at {occurred_at}".format(**broken)
        )
    elif broken:
        lines.append(f"row {broken['id']} is no longer in the log")
    return "\n".join(lines)


def run_verify(args: argparse.Namespace) -> int:
    info = connection_from_args(args)
    try:
        with psycopg.connect(info.dsn()) as conn:
            verdict = verify_audit_chain(conn)
            broken = None if verdict.ok else _broken_row(conn, verdict.first_broken_id)
    except psycopg.errors.UndefinedTable:
        raise CommandError(
            f"{info.describe()} has no audit trail (audit.log): migrate the healthcare "
            "set to revision 0002 or later first"
        ) from None
    except psycopg.Error as exc:
        raise CommandError(f"cannot verify the audit trail of {info.describe()}: {exc}") from None
    data = {
        "ok": verdict.ok,
        "rows_checked": verdict.rows_checked,
        "first_broken_id": verdict.first_broken_id,
        "reason": verdict.reason,
        "broken_row": broken,
    }
    emit(args, data, _text(verdict, broken))
    return 0 if verdict.ok else 1
