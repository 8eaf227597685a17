"""The v2 audit chain from Python: seal it, and verify it independently of the database.

The database's ``audit.verify_entries()`` and this module's :func:`entry_verdicts` judge
every row the same way (a test compares them row by row), but share no code: here the
hashes, the snapshot visibility rule and the batch digests are recomputed from the raw
rows. The rules (revision 0007 of the healthcare set):

- a v1 row (no ``content_hash``) must sit on the v1 chain, which must end where batch 0
  anchored it and hold as many rows as batch 0 counted;
- a v2 row's ``content_hash`` must match its fields; a sealed row's transaction must be
  visible in its batch's snapshot and not in the one before; the batch's row count and
  digest must match its rows; an unsealed row's transaction must not be visible in the
  latest batch's snapshot (else the row was added after its transaction was sealed);
- each batch's hash must match its fields and link to the batch before it.

All of it is read in one REPEATABLE READ snapshot, so appends and seals that happen
meanwhile do not disturb a verification.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from dbkeeper.audit.canonical import digest, epoch_microseconds, text_or_none
from dbkeeper.healthcare.audit import GENESIS_HASH, AuditEntry, entry_hash
from dbkeeper.work_progress import WorkProgress

Conn = psycopg.Connection[Any]

ROW_TAG = "dbkeeper-audit-row-v2"
BATCH_TAG = "dbkeeper-audit-batch-v2"
SEAL_FUNCTION = "seal()"


@dataclass(frozen=True)
class Snapshot:
    """A PostgreSQL snapshot (``pg_snapshot`` text form ``xmin:xmax:xip,…``)."""

    xmin: int
    xmax: int
    xip: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> Snapshot:
        xmin, xmax, xip = text.split(":")
        return cls(int(xmin), int(xmax), frozenset(int(x) for x in xip.split(",") if x))

    def sees_finished(self, txid: int) -> bool:
        """True when the transaction had ended (committed or aborted) at this snapshot."""
        if txid < self.xmin:
            return True
        return txid < self.xmax and txid not in self.xip


@dataclass(frozen=True)
class Batch:
    batch: int
    snapshot: str
    row_count: int
    total_rows: int
    rows_digest: str
    prev_hash: str
    batch_hash: str
    sealed_at: datetime
    v1_last_id: int | None
    v1_last_hash: str | None


@dataclass(frozen=True)
class RowVerdict:
    id: int
    batch: int | None
    ok: bool
    reason: str | None


@dataclass(frozen=True)
class ChainHead:
    """Where the sealed chain ends: what a checkpoint signs."""

    batch: int
    total_rows: int
    batch_hash: str
    sealed_at: datetime


@dataclass(frozen=True)
class ChainVerdict:
    ok: bool
    rows_checked: int
    batches_checked: int
    unsealed_rows: int
    head: ChainHead | None
    first_broken_id: int | None = None
    broken_batch: int | None = None
    reason: str | None = None
    recomputed: tuple[tuple[int, str], ...] = ()
    """(batch, hash) for each batch as its rows say it must be (for checkpoints)."""

    def where(self) -> str:
        """Where the chain first breaks, for messages: a row, else a batch."""
        if self.first_broken_id is not None:
            return f"row {self.first_broken_id}"
        return f"batch {self.broken_batch}" if self.broken_batch is not None else "its head"


@dataclass(frozen=True)
class SealResult:
    batch: int
    row_count: int
    total_rows: int
    batch_hash: str
    sealed_at: datetime


def row_content_hash(row: tuple[Any, ...]) -> str:
    """The hash of a v2 row: (id, table_name, row_key, patient_id, action, old_values,
    new_values, actor, txid, occurred_at), jsonb in its text form."""
    id_, table_name, row_key, patient_id, action, old, new, actor, txid, occurred_at = row
    return digest(
        (
            ROW_TAG,
            str(id_),
            table_name,
            row_key,
            text_or_none(patient_id),
            action,
            old,
            new,
            actor,
            str(txid),
            str(epoch_microseconds(occurred_at)),
        )
    )


def batch_hash(batch: Batch) -> str:
    return digest(
        (
            BATCH_TAG,
            str(batch.batch),
            batch.prev_hash,
            batch.snapshot,
            str(batch.row_count),
            str(batch.total_rows),
            batch.rows_digest,
            str(epoch_microseconds(batch.sealed_at)),
        )
    )


_BATCHES = """
SELECT batch, snapshot, row_count, total_rows, rows_digest, prev_hash, batch_hash, sealed_at,
       v1_last_id, v1_last_hash
  FROM audit.seal_batch ORDER BY batch"""
_V1_ROWS = """
SELECT id, table_name, row_key, action, old_values::text, new_values::text, actor, txid,
       occurred_at, prev_hash, row_hash
  FROM audit.log WHERE content_hash IS NULL ORDER BY id"""
_V2_ROWS = """
SELECT l.id, l.table_name, l.row_key, l.patient_id, l.action, l.old_values::text,
       l.new_values::text, l.actor, l.txid, l.occurred_at, l.content_hash, s.batch
  FROM audit.log l LEFT JOIN audit.sealed_xact s ON s.txid = l.txid
 WHERE l.content_hash IS NOT NULL
 ORDER BY s.batch NULLS LAST, l.id"""
_SEALED_XACTS = "SELECT txid, batch FROM audit.sealed_xact ORDER BY batch, txid"
_ROW_COUNT = "SELECT count(*) FROM audit.log"


_ITERSIZE = 5000


def _stream(
    conn: Conn, query: str, name: str, shown: WorkProgress | None = None
) -> Iterator[tuple[Any, ...]]:
    with conn.cursor(name=name) as cur:
        cur.itersize = _ITERSIZE
        cur.execute(query)
        read = 0
        for row in cur:
            yield row
            read += 1
            if shown is not None and read == _ITERSIZE:
                shown.advance(read)
                read = 0
        if shown is not None and read:
            shown.advance(read)


def _batch_problem(batch: Batch, before: Batch | None, count: int, rows_digest: str) -> str | None:
    number = batch.batch
    if number > 0 and (before is None or before.batch != number - 1):
        follows = "none" if before is None else str(before.batch)
        return f"batch {number} follows batch {follows}: a batch was removed"
    if number > 0 and before is not None and batch.prev_hash != before.batch_hash:
        return f"batch {number} does not link to the hash of the batch before it"
    if batch.batch_hash != batch_hash(batch):
        return f"the hash of batch {number} does not match its contents"
    expected_total = None if before is None else before.total_rows + batch.row_count
    if number > 0 and batch.total_rows != expected_total:
        return f"batch {number} miscounts the rows sealed before it"
    if number > 0 and (batch.row_count != count or batch.rows_digest != rows_digest):
        return (
            f"the rows of batch {number} are not the rows it sealed: "
            "a row was changed, removed or added"
        )
    return None


@dataclass
class _Digest:
    count: int = 0
    hasher: Any = None

    def add(self, content_hash: str) -> None:
        if self.hasher is None:
            self.hasher = hashlib.sha256()
        self.hasher.update(bytes.fromhex(content_hash))
        self.count += 1

    def hexdigest(self) -> str:
        return (self.hasher or hashlib.sha256()).hexdigest()


class _Walk:
    """One pass over batches and rows, collecting every row's own problem and every
    batch's problem; a row's verdict is its own problem, else its batch's."""

    def __init__(self, conn: Conn, shown: WorkProgress | None = None) -> None:
        self.shown = shown
        if shown is not None:
            counted = conn.execute(_ROW_COUNT).fetchone()
            shown.expect(int(counted[0]) if counted else 0)
        self.batches = [Batch(*row) for row in conn.execute(_BATCHES).fetchall()]
        self.by_number = {b.batch: b for b in self.batches}
        self.snapshots = {b.batch: Snapshot.parse(b.snapshot) for b in self.batches}
        self.before = {
            later.batch: earlier.batch
            for earlier, later in zip(self.batches, self.batches[1:], strict=False)
        }
        self.rows: list[tuple[int, int | None, str | None]] = []
        self.digests: dict[int, _Digest] = {}
        self.misplaced: set[int] = set()
        for txid, batch in conn.execute(_SEALED_XACTS).fetchall():
            if not self._placed_right(int(txid), int(batch)):
                self.misplaced.add(int(txid))
        self._v1(conn)
        self._v2(conn)
        self.batch_problems = self._judge_batches()

    def _placed_right(self, txid: int, batch: int) -> bool:
        snapshot = self.snapshots.get(batch)
        if snapshot is None or not snapshot.sees_finished(txid):
            return False
        before = self.before.get(batch)
        return before is None or not self.snapshots[before].sees_finished(txid)

    def _v1(self, conn: Conn) -> None:
        anchor = self.by_number.get(0)
        rows: list[tuple[int, bool]] = []
        expected_prev = GENESIS_HASH
        last: tuple[int, str] | None = None
        for row in _stream(conn, _V1_ROWS, "dbkeeper_audit_v1_rows", self.shown):
            entry = AuditEntry(*row)
            linked = entry.prev_hash == expected_prev and entry.row_hash == entry_hash(entry)
            rows.append((entry.id, linked))
            expected_prev = entry.row_hash
            last = (entry.id, entry.row_hash)
        for id_, linked in rows:
            reason: str | None = None
            if not linked:
                reason = "v1 row does not match its hash or does not link to the row before it"
            elif anchor is None or last != (anchor.v1_last_id, anchor.v1_last_hash):
                reason = "the v1 chain no longer ends where batch 0 anchored it"
            elif len(rows) != anchor.row_count:
                reason = "the v1 chain has not the row count batch 0 anchored"
            self.rows.append((id_, 0, reason))
        self.v1_count = len(rows)

    def _v2(self, conn: Conn) -> None:
        latest = self.snapshots[self.batches[-1].batch] if self.batches else None
        self.unsealed = 0
        for row in _stream(conn, _V2_ROWS, "dbkeeper_audit_v2_rows", self.shown):
            id_, content_hash, batch = int(row[0]), row[10], row[11]
            txid = int(row[8])
            reason: str | None = None
            if content_hash != row_content_hash(row[:10]):
                reason = "content_hash does not match the row's contents: the row was altered"
            elif batch is None and (latest is None or latest.sees_finished(txid)):
                reason = (
                    "the row is not in the batch that sealed its transaction: it was added later"
                )
            elif batch is not None and txid in self.misplaced:
                reason = (
                    f"batch {batch} did not see the row's transaction finish: "
                    "the seal records were changed"
                )
            if batch is None:
                self.unsealed += 1
            else:
                self.digests.setdefault(int(batch), _Digest()).add(content_hash)
            self.rows.append((id_, None if batch is None else int(batch), reason))

    def _judge_batches(self) -> dict[int, str]:
        problems: dict[int, str] = {}
        before: Batch | None = None
        for batch in self.batches:
            found = self.digests.get(batch.batch, _Digest())
            problem = _batch_problem(batch, before, found.count, found.hexdigest())
            if problem is not None:
                problems[batch.batch] = problem
            before = batch
        return problems

    def verdicts(self) -> list[RowVerdict]:
        out = []
        for id_, batch, reason in self.rows:
            if reason is None and batch is not None and batch > 0:
                reason = self.batch_problems.get(batch)
            out.append(RowVerdict(id_, batch, reason is None, reason))
        return sorted(out, key=lambda v: v.id)

    def recomputed_hashes(self) -> tuple[tuple[int, str], ...]:
        """Each batch's hash as its rows say it must be: the digest recomputed from the
        rows, chained from batch 0 (checkpoints are compared with these)."""
        hashes: list[tuple[int, str]] = []
        prev = GENESIS_HASH
        total = 0
        for batch in self.batches:
            if batch.batch == 0:
                rows_digest, count = batch.rows_digest, self.v1_count
            else:
                found = self.digests.get(batch.batch, _Digest())
                rows_digest, count = found.hexdigest(), found.count
            total += count
            rebuilt = Batch(
                batch.batch,
                batch.snapshot,
                count,
                total,
                rows_digest,
                prev,
                "",
                batch.sealed_at,
                batch.v1_last_id,
                batch.v1_last_hash,
            )
            prev = batch_hash(rebuilt)
            hashes.append((batch.batch, prev))
        return tuple(hashes)


def _in_snapshot(conn: Conn) -> None:
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


def entry_verdicts(conn: Conn) -> list[RowVerdict]:
    """The verdict for every row, by id (the same as ``audit.verify_entries()``)."""
    with conn.transaction():
        _in_snapshot(conn)
        return _Walk(conn).verdicts()


def batches(count: int) -> str:
    """``count`` sealed batches, in words ("1 batch", "3 batches")."""
    return "1 batch" if count == 1 else f"{count} batches"


def verify_chain(conn: Conn, shown: WorkProgress | None = None) -> ChainVerdict:
    """Check every row and batch; report the first problem (rows by id, then batches).
    ``shown`` is told how many rows the log holds, then of the rows as they are read."""
    with conn.transaction():
        _in_snapshot(conn)
        walk = _Walk(conn, shown)
    verdicts = walk.verdicts()
    head_batch = walk.batches[-1] if walk.batches else None
    head = (
        ChainHead(
            head_batch.batch, head_batch.total_rows, head_batch.batch_hash, head_batch.sealed_at
        )
        if head_batch
        else None
    )

    def finish(
        reason: str | None = None, broken_id: int | None = None, batch: int | None = None
    ) -> ChainVerdict:
        return ChainVerdict(
            ok=reason is None,
            rows_checked=len(verdicts),
            batches_checked=len(walk.batches),
            unsealed_rows=walk.unsealed,
            head=head,
            first_broken_id=broken_id,
            broken_batch=batch,
            reason=reason,
            recomputed=walk.recomputed_hashes(),
        )

    broken = next((v for v in verdicts if not v.ok), None)
    if broken is not None:
        return finish(broken.reason, broken.id, broken.batch)
    anchor = walk.by_number.get(0)
    if anchor is None:
        return finish("audit.seal_batch has no batch 0")
    if walk.v1_count != anchor.row_count:
        return finish(
            f"batch 0 anchors {anchor.row_count} v1 rows but the log holds "
            f"{walk.v1_count}: v1 rows were removed or added",
            batch=0,
        )
    for batch in walk.batches:
        if batch.batch > 0 and batch.batch not in walk.digests:
            return finish(
                f"batch {batch.batch} seals no row that is still in the log: its rows were removed",
                batch=batch.batch,
            )
        problem = walk.batch_problems.get(batch.batch)
        if problem is not None:
            return finish(problem, batch=batch.batch)
    return finish()


def has_sealed_chain(conn: Conn, schema: str = "audit") -> bool:
    """True when the database's audit trail is v2 (it has ``<schema>.seal()``)."""
    row = conn.execute("SELECT to_regprocedure(%s)", (f"{schema}.{SEAL_FUNCTION}",)).fetchone()
    return row is not None and row[0] is not None


def seal(conn: Conn, schema: str = "audit") -> SealResult | None:
    """Seal what is final now, in its own transaction; None when nothing was new."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
        row = conn.execute(
            f"SELECT batch, row_count, total_rows, batch_hash, sealed_at FROM {schema}.seal()"
        ).fetchone()
    if row is None:
        return None
    return SealResult(int(row[0]), int(row[1]), int(row[2]), str(row[3]), row[4])


_HEAD = """
SELECT batch, total_rows, batch_hash, sealed_at FROM audit.seal_batch ORDER BY batch DESC LIMIT 1"""


def chain_head(conn: Conn) -> ChainHead | None:
    row = conn.execute(_HEAD).fetchone()
    return None if row is None else ChainHead(int(row[0]), int(row[1]), str(row[2]), row[3])


_BACKLOG = """
SELECT count(*), min(occurred_at)
  FROM audit.log l
 WHERE l.content_hash IS NOT NULL
   AND NOT EXISTS (SELECT 1 FROM audit.sealed_xact s WHERE s.txid = l.txid)
   AND l.txid >= (SELECT pg_snapshot_xmin(b.snapshot::pg_snapshot)::text::bigint
                    FROM audit.seal_batch b ORDER BY b.batch DESC LIMIT 1)"""


@dataclass(frozen=True)
class Backlog:
    """Committed rows not sealed yet, and when the oldest of them was written."""

    rows: int
    oldest: datetime | None


def backlog(conn: Conn) -> Backlog:
    row = conn.execute(_BACKLOG).fetchone()
    if row is None:
        return Backlog(0, None)
    return Backlog(int(row[0]), row[1])
