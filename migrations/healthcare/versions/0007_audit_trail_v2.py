"""Audit trail v2: writers append without waiting for each other; a sealer links final
rows into a hash chain of batches, in the order they are sealed.

**Appends.** ``audit.record_changes(patient_key)`` writes one row per changed row with
its own ``content_hash`` and the ``patient_id`` it belongs to (the trigger argument names
the patient column; ``id`` for ``patients``). It takes no lock another writer waits for:
ids come from the identity sequence, nothing is read or updated in a shared row.

**Sealing.** ``audit.seal()`` (the owner's, run by the operator every few seconds and by
``dbkeeper audit seal``) takes a snapshot and seals every audit row whose transaction is
visible in it and was not visible in the previous batch's snapshot: committed, and no
longer able to add rows. Rows of aborted transactions are never visible, so never
sealed. A batch is one row of ``audit.seal_batch`` holding its snapshot; the
transactions it sealed are in ``audit.sealed_xact``. Its hash covers the previous
batch's hash, the snapshot, the counts and ``rows_digest`` (SHA-256 over the binary
content hashes of its rows in id order). Batch 0 anchors the v1 chain this revision
converts: its digest is the v1 chain's last hash, so every older row stays proven by
the v1 links (``prev_hash``/``row_hash``) that end there.

Canonical forms (also implemented in ``dbkeeper.healthcare.audit_v2``), each field as
``<length in characters>:<text>;`` or ``-;`` for NULL, SHA-256 in lowercase hex:

- row: ``dbkeeper-audit-row-v2``, id, table_name, row_key, patient_id, action,
  old_values, new_values (jsonb text form), actor, txid, occurred_at (integer
  microseconds since the Unix epoch);
- batch: ``dbkeeper-audit-batch-v2``, batch, prev_hash, snapshot (``xmin:xmax:xip,…``),
  row_count, total_rows, rows_digest, sealed_at (microseconds).

``audit.verify_chain()`` recomputes all of it and names the first problem;
``audit.verify_entries()`` gives the verdict for every row.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64
# Sealers take this transaction-level advisory lock ("dbkaudit"): one seal at a time.
SEAL_LOCK_KEY = 7233462017835952500

# Each audited table and the column naming the patient its rows belong to.
PATIENT_KEYS: dict[str, str] = {
    "patients": "id",
    "encounters": "patient_id",
    "observations": "patient_id",
    "conditions": "patient_id",
    "medication_requests": "patient_id",
    "allergies": "patient_id",
    "appointments": "patient_id",
    "consents": "patient_id",
}


def _v1() -> ModuleType:
    """Revision 0002, whose v1 functions the downgrade puts back as they were."""
    path = Path(__file__).with_name("0002_audit_trail.py")
    spec = importlib.util.spec_from_file_location("healthcare_revision_0002", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CONTENT_HASH = """
CREATE FUNCTION audit.content_hash(
    id bigint, table_name text, row_key text, patient_id bigint, action text,
    old_values jsonb, new_values jsonb, actor text, txid bigint, occurred_at timestamptz
) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN encode(sha256(convert_to(
    audit.hash_field('dbkeeper-audit-row-v2')
    || audit.hash_field(id::text)
    || audit.hash_field(table_name)
    || audit.hash_field(row_key)
    || audit.hash_field(patient_id::text)
    || audit.hash_field(action)
    || audit.hash_field(old_values::text)
    || audit.hash_field(new_values::text)
    || audit.hash_field(actor)
    || audit.hash_field(txid::text)
    || audit.hash_field(((extract(epoch FROM occurred_at) * 1000000)::bigint)::text),
    'UTF8')), 'hex')
"""

BATCH_HASH = """
CREATE FUNCTION audit.batch_hash(
    batch bigint, prev_hash text, snapshot text, row_count bigint, total_rows bigint,
    rows_digest text, sealed_at timestamptz
) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN encode(sha256(convert_to(
    audit.hash_field('dbkeeper-audit-batch-v2')
    || audit.hash_field(batch::text)
    || audit.hash_field(prev_hash)
    || audit.hash_field(snapshot)
    || audit.hash_field(row_count::text)
    || audit.hash_field(total_rows::text)
    || audit.hash_field(rows_digest)
    || audit.hash_field(((extract(epoch FROM sealed_at) * 1000000)::bigint)::text),
    'UTF8')), 'hex')
"""

# One INSERT per statement, straight from the transition table: no shared row is read
# or locked, so concurrent writers never wait for each other here.
_APPEND = """
        INSERT INTO audit.log (id, table_name, row_key, patient_id, action, old_values,
                               new_values, actor, txid, occurred_at, content_hash)
        OVERRIDING SYSTEM VALUE
        SELECT e.id, TG_TABLE_NAME, e.row_key, e.patient_id, TG_OP, e.old_values,
               e.new_values, v_actor, v_txid, v_at,
               audit.content_hash(e.id, TG_TABLE_NAME, e.row_key, e.patient_id, TG_OP,
                                  e.old_values, e.new_values, v_actor, v_txid, v_at)
          FROM (SELECT nextval(v_seq) AS id, c.row_key,
                       (coalesce(c.whole, c.new_values, c.old_values) ->> v_patient)::bigint
                       AS patient_id, c.old_values, c.new_values
                  FROM ({source}) c) e;"""

_INSERTED = (
    "SELECT n.id::text AS row_key, NULL::jsonb AS whole, NULL::jsonb AS old_values,"
    " to_jsonb(n) AS new_values FROM new_rows n ORDER BY n.id"
)
# Identity keys cannot be changed, so old and new versions pair up by id; only the
# columns whose value changed are kept on either side.
_UPDATED = """SELECT coalesce(n.id, o.id)::text AS row_key,
                       coalesce(to_jsonb(n), to_jsonb(o)) AS whole,
                       (SELECT coalesce(jsonb_object_agg(x.key, x.value), '{}'::jsonb)
                          FROM jsonb_each(to_jsonb(o)) x
                         WHERE x.value IS DISTINCT FROM to_jsonb(n) -> x.key) AS old_values,
                       (SELECT coalesce(jsonb_object_agg(x.key, x.value), '{}'::jsonb)
                          FROM jsonb_each(to_jsonb(n)) x
                         WHERE x.value IS DISTINCT FROM to_jsonb(o) -> x.key) AS new_values
                  FROM old_rows o FULL JOIN new_rows n ON n.id = o.id
                 ORDER BY coalesce(n.id, o.id)"""
_DELETED = (
    "SELECT o.id::text AS row_key, NULL::jsonb AS whole, to_jsonb(o) AS old_values,"
    " NULL::jsonb AS new_values FROM old_rows o ORDER BY o.id"
)

RECORD_CHANGES = f"""
CREATE OR REPLACE FUNCTION audit.record_changes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_actor text := coalesce(nullif(current_setting('dbkeeper.actor', true), ''), session_user);
    v_txid bigint := pg_current_xact_id()::text::bigint;
    v_at timestamptz := clock_timestamp();
    v_seq regclass := 'audit.log_id_seq'::regclass;
    v_patient text := CASE WHEN TG_NARGS > 0 THEN TG_ARGV[0] END;
BEGIN
    IF TG_OP = 'INSERT' THEN{_APPEND.format(source=_INSERTED)}
    ELSIF TG_OP = 'UPDATE' THEN{_APPEND.format(source=_UPDATED)}
    ELSE{_APPEND.format(source=_DELETED)}
    END IF;
    RETURN NULL;
END
$fn$
"""

SEAL = f"""
CREATE FUNCTION audit.seal()
RETURNS TABLE(batch bigint, row_count bigint, total_rows bigint, batch_hash text,
              sealed_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    v_prev audit.seal_batch;
    v_snap pg_snapshot;
    v_xmax bigint;
    v_xip bigint[];
    v_txids bigint[];
    v_count bigint;
    v_digest text;
    v_at timestamptz;
    v_hash text;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'audit.seal() runs only at READ COMMITTED, not %',
            upper(current_setting('transaction_isolation'))
            USING ERRCODE = 'invalid_transaction_state';
    END IF;
    -- Its snapshot must not count its own transaction as finished.
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'audit.seal() must run in a transaction that has not written anything: call it on its own'
            USING ERRCODE = 'invalid_transaction_state';
    END IF;
    PERFORM pg_advisory_xact_lock({SEAL_LOCK_KEY});
    -- Taken after the lock, so it sees the previous seal committed: snapshots only grow.
    SELECT pg_current_snapshot() INTO v_snap;
    SELECT * INTO v_prev FROM audit.seal_batch b ORDER BY b.batch DESC LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'audit.seal_batch has no batch 0: the audit trail was not set up by revision 0007'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    v_xmax := pg_snapshot_xmax(v_prev.snapshot::pg_snapshot)::text::bigint;
    SELECT coalesce(array_agg(x::text::bigint), '{{}}') INTO v_xip
      FROM pg_snapshot_xip(v_prev.snapshot::pg_snapshot) x;
    -- Rows of transactions not visible in the previous snapshot and visible (finished)
    -- in this one; the digest is over their 32-byte content hashes in id order.
    SELECT count(*),
           encode(sha256(coalesce(string_agg(decode(l.content_hash, 'hex'), ''::bytea
                                              ORDER BY l.id), ''::bytea)), 'hex'),
           array_agg(DISTINCT l.txid)
      INTO v_count, v_digest, v_txids
      FROM audit.log l
     WHERE l.content_hash IS NOT NULL
       AND (l.txid >= v_xmax OR l.txid = ANY (v_xip))
       AND pg_visible_in_snapshot(l.txid::text::xid8, v_snap);
    IF v_count = 0 THEN
        RETURN;
    END IF;
    INSERT INTO audit.sealed_xact (txid, batch) SELECT t, v_prev.batch + 1 FROM unnest(v_txids) t;
    v_at := clock_timestamp();
    v_hash := audit.batch_hash(v_prev.batch + 1, v_prev.batch_hash, v_snap::text, v_count,
                               v_prev.total_rows + v_count, v_digest, v_at);
    INSERT INTO audit.seal_batch (batch, snapshot, row_count, total_rows, rows_digest,
                                  prev_hash, batch_hash, sealed_at)
    VALUES (v_prev.batch + 1, v_snap::text, v_count, v_prev.total_rows + v_count, v_digest,
            v_prev.batch_hash, v_hash, v_at);
    RETURN QUERY SELECT v_prev.batch + 1, v_count, v_prev.total_rows + v_count, v_hash, v_at;
END
$fn$
"""

# The verdict for every row: its batch (NULL while unsealed) and whether it is intact.
# A v1 row must sit on the v1 chain that batch 0 anchors; a v2 row's content hash must
# match, its batch's digest and hash must match, and a row that is not sealed must
# belong to a transaction the latest snapshot did not see finished.
VERIFY_ENTRIES = """
CREATE FUNCTION audit.verify_entries()
RETURNS TABLE(id bigint, batch bigint, ok boolean, reason text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    WITH anchor AS (
        SELECT b.v1_last_id, b.v1_last_hash FROM audit.seal_batch b WHERE b.batch = 0
    ), latest AS (
        SELECT b.snapshot FROM audit.seal_batch b ORDER BY b.batch DESC LIMIT 1
    ), batches AS (
        SELECT b.batch, b.batch_hash, b.row_count, b.total_rows, b.rows_digest, b.prev_hash,
               b.snapshot, b.sealed_at,
               lag(b.batch_hash) OVER (ORDER BY b.batch) AS expected_prev,
               lag(b.total_rows) OVER (ORDER BY b.batch) AS total_before,
               lag(b.snapshot) OVER (ORDER BY b.batch) AS snapshot_before,
               lag(b.batch) OVER (ORDER BY b.batch) AS batch_before
          FROM audit.seal_batch b
    ), digests AS (
        SELECT s.batch, count(*) AS row_count,
               encode(sha256(string_agg(decode(l.content_hash, 'hex'), ''::bytea ORDER BY l.id)),
                      'hex') AS digest
          FROM audit.sealed_xact s JOIN audit.log l ON l.txid = s.txid
         WHERE l.content_hash IS NOT NULL
         GROUP BY s.batch
    ), batch_verdicts AS (
        SELECT b.batch,
               CASE
                 WHEN b.batch > 0 AND b.batch_before IS DISTINCT FROM b.batch - 1
                   THEN 'batch ' || b.batch || ' follows batch ' || coalesce(b.batch_before::text, 'none') || ': a batch was removed'
                 WHEN b.batch > 0 AND b.prev_hash IS DISTINCT FROM b.expected_prev
                   THEN 'batch ' || b.batch || ' does not link to the hash of the batch before it'
                 WHEN b.batch_hash IS DISTINCT FROM audit.batch_hash(b.batch, b.prev_hash,
                        b.snapshot, b.row_count, b.total_rows, b.rows_digest, b.sealed_at)
                   THEN 'the hash of batch ' || b.batch || ' does not match its contents'
                 WHEN b.batch > 0 AND b.total_rows IS DISTINCT FROM b.total_before + b.row_count
                   THEN 'batch ' || b.batch || ' miscounts the rows sealed before it'
                 WHEN b.batch > 0 AND (b.row_count IS DISTINCT FROM coalesce(d.row_count, 0)
                                       OR b.rows_digest IS DISTINCT FROM d.digest)
                   THEN 'the rows of batch ' || b.batch || ' are not the rows it sealed: a row was changed, removed or added'
               END AS problem
          FROM batches b LEFT JOIN digests d ON d.batch = b.batch
    ), xact_verdicts AS (
        SELECT s.txid, s.batch,
               b.batch IS NULL
               OR NOT pg_visible_in_snapshot(s.txid::text::xid8, b.snapshot::pg_snapshot)
               OR (b.snapshot_before IS NOT NULL
                   AND pg_visible_in_snapshot(s.txid::text::xid8, b.snapshot_before::pg_snapshot)) AS misplaced
          FROM audit.sealed_xact s LEFT JOIN batches b ON b.batch = s.batch
    ), v1_rows AS (
        SELECT l.id, l.row_hash,
               l.prev_hash = coalesce(lag(l.row_hash) OVER (ORDER BY l.id), repeat('0', 64))
               AND l.row_hash = audit.entry_hash(l.prev_hash, l.id, l.table_name, l.row_key,
                                                 l.action, l.old_values, l.new_values, l.actor,
                                                 l.txid, l.occurred_at) AS linked,
               count(*) OVER () AS v1_count,
               last_value(l.id) OVER w AS last_id,
               last_value(l.row_hash) OVER w AS last_hash
          FROM audit.log l
         WHERE l.content_hash IS NULL
        WINDOW w AS (ORDER BY l.id ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    )
    SELECT v.id, 0::bigint,
           coalesce(v.linked AND v.last_id = a.v1_last_id AND v.last_hash = a.v1_last_hash
           AND v.v1_count = (SELECT b.row_count FROM audit.seal_batch b WHERE b.batch = 0), false),
           CASE
             WHEN NOT v.linked THEN 'v1 row does not match its hash or does not link to the row before it'
             WHEN v.last_id IS DISTINCT FROM a.v1_last_id OR v.last_hash IS DISTINCT FROM a.v1_last_hash
               THEN 'the v1 chain no longer ends where batch 0 anchored it'
             WHEN v.v1_count IS DISTINCT FROM (SELECT b.row_count FROM audit.seal_batch b WHERE b.batch = 0)
               THEN 'the v1 chain has not the row count batch 0 anchored'
           END
      FROM v1_rows v LEFT JOIN anchor a ON true
    UNION ALL
    SELECT l.id, s.batch,
           coalesce(s.batch IS NOT NULL
           AND l.content_hash = audit.content_hash(l.id, l.table_name, l.row_key, l.patient_id,
                                                   l.action, l.old_values, l.new_values,
                                                   l.actor, l.txid, l.occurred_at)
           AND NOT coalesce(x.misplaced, false)
           AND (SELECT bv.problem FROM batch_verdicts bv WHERE bv.batch = s.batch) IS NULL
           OR s.batch IS NULL
           AND l.content_hash = audit.content_hash(l.id, l.table_name, l.row_key, l.patient_id,
                                                   l.action, l.old_values, l.new_values,
                                                   l.actor, l.txid, l.occurred_at)
           AND NOT pg_visible_in_snapshot(l.txid::text::xid8, (SELECT t.snapshot::pg_snapshot FROM latest t)), false),
           CASE
             WHEN l.content_hash IS DISTINCT FROM audit.content_hash(l.id, l.table_name, l.row_key,
                    l.patient_id, l.action, l.old_values, l.new_values, l.actor, l.txid,
                    l.occurred_at)
               THEN 'content_hash does not match the row''s contents: the row was altered'
             WHEN s.batch IS NULL AND pg_visible_in_snapshot(l.txid::text::xid8, (SELECT t.snapshot::pg_snapshot FROM latest t))
               THEN 'the row is not in the batch that sealed its transaction: it was added later'
             WHEN x.misplaced
               THEN 'batch ' || s.batch || ' did not see the row''s transaction finish: the seal records were changed'
             ELSE (SELECT bv.problem FROM batch_verdicts bv WHERE bv.batch = s.batch)
           END
      FROM audit.log l
      LEFT JOIN audit.sealed_xact s ON s.txid = l.txid
      LEFT JOIN xact_verdicts x ON x.txid = l.txid
     WHERE l.content_hash IS NOT NULL
$fn$
"""

# The first problem, rows (lowest id) before batches: NULL batch and id when intact.
VERIFY_CHAIN = """
CREATE FUNCTION audit.verify_chain() RETURNS TABLE(batch bigint, broken_id bigint, reason text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    WITH problems AS (
        SELECT e.batch, e.id, e.reason, 0 AS rank FROM audit.verify_entries() e WHERE NOT e.ok
        UNION ALL
        SELECT NULL::bigint, NULL::bigint, 'audit.seal_batch has no batch 0', 1
         WHERE NOT EXISTS (SELECT 1 FROM audit.seal_batch b WHERE b.batch = 0)
        UNION ALL
        SELECT 0::bigint, NULL::bigint,
               'batch 0 anchors ' || b.row_count || ' v1 rows but the log holds ' || v.n || ': v1 rows were removed or added', 1
          FROM audit.seal_batch b,
               (SELECT count(*) AS n FROM audit.log l WHERE l.content_hash IS NULL) v
         WHERE b.batch = 0 AND b.row_count <> v.n
        UNION ALL
        SELECT b.batch, NULL::bigint,
               'batch ' || b.batch || ' seals no row that is still in the log: its rows were removed', 2
          FROM audit.seal_batch b
         WHERE b.batch > 0
           AND NOT EXISTS (SELECT 1 FROM audit.sealed_xact s JOIN audit.log l ON l.txid = s.txid
                            WHERE s.batch = b.batch AND l.content_hash IS NOT NULL)
        UNION ALL
        SELECT b.batch, NULL::bigint,
               'batch ' || b.batch || ' does not link to the batch before it', 3
          FROM (SELECT b.batch, b.prev_hash, lag(b.batch_hash) OVER (ORDER BY b.batch) AS expected,
                       lag(b.batch) OVER (ORDER BY b.batch) AS before
                  FROM audit.seal_batch b) b
         WHERE b.batch > 0 AND (b.before IS DISTINCT FROM b.batch - 1 OR b.prev_hash IS DISTINCT FROM b.expected)
    )
    SELECT p.batch, p.id, p.reason FROM problems p ORDER BY p.rank, p.id NULLS LAST, p.batch LIMIT 1
$fn$
"""

REFUSE_CHANGE_TRIGGERS = {
    "seal_batch": ("seal_batch_append_only", "seal_batch_no_truncate"),
    "sealed_xact": ("sealed_xact_append_only", "sealed_xact_no_truncate"),
}


def _guard(table: str) -> None:
    row_trigger, truncate_trigger = REFUSE_CHANGE_TRIGGERS[table]
    op.execute(
        f"CREATE TRIGGER {row_trigger} BEFORE UPDATE OR DELETE ON audit.{table} "
        "FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()"
    )
    op.execute(
        f"CREATE TRIGGER {truncate_trigger} BEFORE TRUNCATE ON audit.{table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()"
    )


def _attach(table: str, patient_key: str | None) -> None:
    argument = f"'{patient_key}'" if patient_key else ""
    for trigger, event, transition in (
        ("audit_insert", "INSERT", "NEW TABLE AS new_rows"),
        ("audit_update", "UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
        ("audit_delete", "DELETE", "OLD TABLE AS old_rows"),
    ):
        op.execute(f"DROP TRIGGER {trigger} ON public.{table}")
        op.execute(
            f"CREATE TRIGGER {trigger} AFTER {event} ON public.{table} "
            f"REFERENCING {transition} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION audit.record_changes({argument})"
        )


def _refuse_if_broken(check: str, version: str) -> None:
    op.execute(
        f"""
DO $check$
DECLARE
    problem record;
BEGIN
    SELECT * INTO problem FROM {check} LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'the % audit trail does not verify (%): it is left as it is; run dbkeeper audit verify and investigate before migrating',
            '{version}', problem.reason
            USING ERRCODE = 'data_corrupted';
    END IF;
END
$check$
"""
    )


def upgrade() -> None:
    # Every v1 writer holds ROW EXCLUSIVE on the log until it commits: once this lock is
    # granted, the whole v1 chain is committed and no v1 append can follow.
    op.execute("LOCK TABLE audit.log IN EXCLUSIVE MODE")
    _refuse_if_broken("audit.verify_chain()", "v1")

    op.add_column("log", sa.Column("patient_id", sa.BigInteger(), nullable=True), schema="audit")
    op.add_column("log", sa.Column("content_hash", sa.Text(), nullable=True), schema="audit")
    op.alter_column("log", "prev_hash", nullable=True, schema="audit")
    op.alter_column("log", "row_hash", nullable=True, schema="audit")
    op.create_check_constraint(
        op.f("ck_log_one_hash_form"),
        "log",
        "(content_hash IS NULL AND prev_hash IS NOT NULL AND row_hash IS NOT NULL) OR "
        "(content_hash IS NOT NULL AND prev_hash IS NULL AND row_hash IS NULL)",
        schema="audit",
    )
    op.create_check_constraint(
        op.f("ck_log_content_hash_format"),
        "log",
        "length(content_hash) = 64 AND content_hash ~ '^[0-9a-f]+$'",
        schema="audit",
    )
    # v1 rows get the patient they belong to (not part of their v1 hash), so a patient's
    # trail is one index range for old and new rows alike.
    op.execute("ALTER TABLE audit.log DISABLE TRIGGER log_append_only")
    op.execute("UPDATE audit.log SET patient_id = row_key::bigint WHERE table_name = 'patients'")
    op.execute(
        """
UPDATE audit.log l SET patient_id = k.patient_id
  FROM (SELECT table_name, row_key,
               max((coalesce(new_values, old_values) ->> 'patient_id')::bigint) AS patient_id
          FROM audit.log WHERE table_name <> 'patients' GROUP BY table_name, row_key) k
 WHERE l.table_name = k.table_name AND l.row_key = k.row_key
"""
    )
    op.execute("ALTER TABLE audit.log ENABLE TRIGGER log_append_only")
    # A patient's trail (and a row's history, within it) is one range of this index; the
    # old (table_name, row_key) index is not kept up by every write any more. Sealing
    # reads recent transaction ids, which grow with the table: a BRIN index is enough.
    op.create_index("ix_log_patient_id_id", "log", ["patient_id", "id"], schema="audit")
    op.drop_index("ix_log_table_name_row_key", table_name="log", schema="audit")
    op.create_index("ix_log_txid", "log", ["txid"], schema="audit", postgresql_using="brin")

    op.create_table(
        "seal_batch",
        sa.Column("batch", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("row_count", sa.BigInteger(), nullable=False),
        sa.Column("total_rows", sa.BigInteger(), nullable=False),
        sa.Column("rows_digest", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.Text(), nullable=False),
        sa.Column("batch_hash", sa.Text(), nullable=False),
        sa.Column("sealed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("v1_last_id", sa.BigInteger(), nullable=True),
        sa.Column("v1_last_hash", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("batch", name="pk_seal_batch"),
        sa.CheckConstraint("batch >= 0", name=op.f("ck_seal_batch_batch_not_negative")),
        sa.CheckConstraint(
            "length(batch_hash) = 64 AND batch_hash ~ '^[0-9a-f]+$'",
            name=op.f("ck_seal_batch_batch_hash_format"),
        ),
        schema="audit",
    )
    op.create_table(
        "sealed_xact",
        sa.Column("txid", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("batch", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("txid", name="pk_sealed_xact"),
        schema="audit",
    )
    op.create_index("ix_sealed_xact_batch", "sealed_xact", ["batch"], schema="audit")
    op.execute("REVOKE ALL ON audit.seal_batch, audit.sealed_xact FROM PUBLIC")

    op.execute(CONTENT_HASH)
    op.execute(BATCH_HASH)
    # Batch 0 anchors the v1 chain as it ends now.
    op.execute(
        f"""
INSERT INTO audit.seal_batch (batch, snapshot, row_count, total_rows, rows_digest, prev_hash,
                              batch_hash, sealed_at, v1_last_id, v1_last_hash)
SELECT 0, s.snapshot::text, h.n_rows, h.n_rows, h.last_hash, '{GENESIS_HASH}',
       audit.batch_hash(0, '{GENESIS_HASH}', s.snapshot::text, h.n_rows, h.n_rows, h.last_hash, s.at),
       s.at, h.last_id, h.last_hash
  FROM (SELECT pg_current_snapshot() AS snapshot, clock_timestamp() AS at) s,
       (SELECT c.last_id, c.last_hash, (SELECT count(*) FROM audit.log) AS n_rows
          FROM audit.chain_head c) h
"""
    )
    op.execute("DROP TRIGGER chain_head_no_truncate ON audit.chain_head")
    op.execute("DROP TRIGGER chain_head_kept ON audit.chain_head")
    op.drop_table("chain_head", schema="audit")
    op.execute("DROP FUNCTION audit.verify_chain()")
    op.execute(RECORD_CHANGES)
    op.execute(SEAL)
    op.execute(VERIFY_ENTRIES)
    op.execute(VERIFY_CHAIN)
    op.execute("REVOKE ALL ON FUNCTION audit.seal() FROM PUBLIC")
    for table in REFUSE_CHANGE_TRIGGERS:
        _guard(table)
    for table, key in PATIENT_KEYS.items():
        _attach(table, key)


def downgrade() -> None:
    v1 = _v1()
    op.execute("LOCK TABLE audit.log IN EXCLUSIVE MODE")
    _refuse_if_broken("audit.verify_chain()", "v2")
    for table in PATIENT_KEYS:
        _attach(table, None)
    for table, triggers in REFUSE_CHANGE_TRIGGERS.items():
        for trigger in triggers:
            op.execute(f"DROP TRIGGER {trigger} ON audit.{table}")
    op.execute("DROP FUNCTION audit.verify_chain()")
    op.execute("DROP FUNCTION audit.verify_entries()")
    op.execute("DROP FUNCTION audit.seal()")
    op.execute(v1.RECORD_CHANGES.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1))

    # The v2 rows join the v1 chain in id order, continuing from its last row.
    op.execute("ALTER TABLE audit.log DISABLE TRIGGER log_append_only")
    op.execute(
        """
DO $chain$
DECLARE
    v_prev text;
    r record;
BEGIN
    SELECT coalesce(b.v1_last_hash, repeat('0', 64)) INTO STRICT v_prev
      FROM audit.seal_batch b WHERE b.batch = 0;
    FOR r IN SELECT * FROM audit.log WHERE content_hash IS NOT NULL ORDER BY id LOOP
        UPDATE audit.log
           SET prev_hash = v_prev,
               row_hash = audit.entry_hash(v_prev, r.id, r.table_name, r.row_key, r.action,
                                           r.old_values, r.new_values, r.actor, r.txid,
                                           r.occurred_at),
               content_hash = NULL
         WHERE id = r.id
        RETURNING row_hash INTO v_prev;
    END LOOP;
END
$chain$
"""
    )
    op.execute("ALTER TABLE audit.log ENABLE TRIGGER log_append_only")
    op.create_table(
        "chain_head",
        sa.Column("singleton", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("singleton", name="pk_chain_head"),
        sa.CheckConstraint("singleton", name=op.f("ck_chain_head_singleton")),
        sa.CheckConstraint(
            "length(last_hash) = 64 AND last_hash ~ '^[0-9a-f]+$'",
            name=op.f("ck_chain_head_last_hash_format"),
        ),
        schema="audit",
    )
    op.execute(
        f"""
INSERT INTO audit.chain_head (singleton, last_id, last_hash)
SELECT true, coalesce(max(id), 0),
       coalesce((SELECT row_hash FROM audit.log ORDER BY id DESC LIMIT 1), '{GENESIS_HASH}')
  FROM audit.log
"""
    )
    op.execute("REVOKE ALL ON audit.chain_head FROM PUBLIC")
    op.execute(v1.VERIFY_CHAIN)
    op.execute(
        "CREATE TRIGGER chain_head_kept BEFORE DELETE ON audit.chain_head "
        "FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER chain_head_no_truncate BEFORE TRUNCATE ON audit.chain_head "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()"
    )
    op.drop_index("ix_sealed_xact_batch", table_name="sealed_xact", schema="audit")
    op.drop_table("sealed_xact", schema="audit")
    op.drop_table("seal_batch", schema="audit")
    op.execute(
        "DROP FUNCTION audit.batch_hash(bigint, text, text, bigint, bigint, text, timestamptz)"
    )
    op.execute(
        "DROP FUNCTION audit.content_hash(bigint, text, text, bigint, text, jsonb, jsonb, "
        "text, bigint, timestamptz)"
    )
    op.drop_index("ix_log_txid", table_name="log", schema="audit")
    op.create_index("ix_log_table_name_row_key", "log", ["table_name", "row_key"], schema="audit")
    op.drop_index("ix_log_patient_id_id", table_name="log", schema="audit")
    op.drop_constraint(op.f("ck_log_content_hash_format"), "log", schema="audit")
    op.drop_constraint(op.f("ck_log_one_hash_form"), "log", schema="audit")
    op.alter_column("log", "row_hash", nullable=False, schema="audit")
    op.alter_column("log", "prev_hash", nullable=False, schema="audit")
    op.drop_column("log", "content_hash", schema="audit")
    op.drop_column("log", "patient_id", schema="audit")
