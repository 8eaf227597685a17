"""Verify the hash chain of the healthcare audit trail (``audit.log``) from Python.

This is an independent re-implementation of the database's ``audit.verify_chain()``:
it streams the log in id order, recomputes each row's hash from its stored fields and
checks that each row's ``prev_hash`` is the ``row_hash`` of the row before it, and that
``audit.chain_head`` names the last row. Canonical form of a row for hashing: each
field as ``<length in characters>:<text>;`` or ``-;`` when NULL, in the order prev_hash,
id, table_name, row_key, action, old_values, new_values, actor, txid, occurred_at;
jsonb values in PostgreSQL's jsonb text form, occurred_at as integer microseconds since
the Unix epoch; the hash is the lowercase hex SHA-256 of the UTF-8 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from dbkeeper.audit.canonical import digest, epoch_microseconds

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class AuditVerdict:
    """The result of checking the chain: intact, or where it first breaks and why."""

    ok: bool
    rows_checked: int
    first_broken_id: int | None = None
    reason: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    """One row of ``audit.log`` with its jsonb values in their stored text form."""

    id: int
    table_name: str
    row_key: str
    action: str
    old_values: str | None
    new_values: str | None
    actor: str
    txid: int
    occurred_at: datetime
    prev_hash: str
    row_hash: str


def entry_hash(entry: AuditEntry) -> str:
    """The hash a row must carry, from its stored fields and its own prev_hash."""
    return digest(
        (
            entry.prev_hash,
            str(entry.id),
            entry.table_name,
            entry.row_key,
            entry.action,
            entry.old_values,
            entry.new_values,
            entry.actor,
            str(entry.txid),
            str(epoch_microseconds(entry.occurred_at)),
        )
    )


# The chain head comes with every row (an init plan, evaluated once) so that it and the
# rows are read in the same snapshot even while others keep appending.
_ENTRIES = """
SELECT id, table_name, row_key, action, old_values::text, new_values::text, actor, txid,
       occurred_at, prev_hash, row_hash,
       (SELECT last_id FROM audit.chain_head), (SELECT last_hash FROM audit.chain_head)
  FROM audit.log ORDER BY id
"""
_HEAD = "SELECT last_id, last_hash FROM audit.chain_head"


def verify_audit_chain(conn: psycopg.Connection[Any]) -> AuditVerdict:
    """Check the whole chain; report the first broken link (lowest id) if any."""
    checked = 0
    expected_prev = GENESIS_HASH
    last_id = 0
    head: tuple[Any, ...] | None = None
    # A server-side cursor streams millions of rows without holding them in memory.
    with conn.transaction(), conn.cursor(name="dbkeeper_audit_verify") as cur:
        cur.itersize = 5000
        cur.execute(_ENTRIES)
        for row in cur:
            entry = AuditEntry(*row[:11])
            head = row[11:]
            checked += 1
            if entry.prev_hash != expected_prev:
                return AuditVerdict(
                    False,
                    checked,
                    entry.id,
                    "prev_hash does not match the row_hash of the row before it: "
                    "a row before it was removed or altered",
                )
            if entry.row_hash != entry_hash(entry):
                return AuditVerdict(
                    False,
                    checked,
                    entry.id,
                    "row_hash does not match the row's contents: the row was altered",
                )
            expected_prev = entry.row_hash
            last_id = entry.id
    if checked == 0:
        head = conn.execute(_HEAD).fetchone()
    if head is None or head[0] is None:
        return AuditVerdict(False, checked, None, "the chain head row is missing")
    if head[0] != last_id or head[1] != expected_prev:
        return AuditVerdict(
            False,
            checked,
            int(head[0]),
            f"the chain head names row {head[0]} as the last one, but the log ends at "
            f"{last_id or 'no row'}: rows at its end were removed or altered",
        )
    return AuditVerdict(True, checked)


def verify_chain_in_database(conn: psycopg.Connection[Any]) -> AuditVerdict:
    """The database's own verdict, from ``audit.verify_chain()`` (no row count)."""
    row = conn.execute("SELECT broken_id, reason FROM audit.verify_chain()").fetchone()
    if row is None:
        return AuditVerdict(True, -1)
    return AuditVerdict(False, -1, row[0], row[1])
