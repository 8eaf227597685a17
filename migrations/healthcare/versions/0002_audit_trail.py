"""The tamper-evident audit trail: schema ``audit``, its append-only log and verifier.

Patient-data tables are attached by the revisions that create them (three statement
triggers each, see ``audit.record_changes``). Canonical hash form, also implemented in
``dbkeeper.healthcare.audit``: each field is written as ``<length>:<text>;`` (length in
characters) or ``-;`` when NULL, in the order prev_hash, id, table_name, row_key,
action, old_values, new_values, actor, txid, occurred_at; jsonb values in PostgreSQL's
jsonb text form, occurred_at as integer microseconds since the Unix epoch; row_hash is
the lowercase hex SHA-256 of the UTF-8 bytes of that text. The first row's prev_hash is
64 zeros; ``audit.chain_head`` names the last row so a cut-off tail is detected too.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS_HASH = "0" * 64

ENTRY_HASH = """
CREATE FUNCTION audit.entry_hash(
    prev_hash text, id bigint, table_name text, row_key text, action text,
    old_values jsonb, new_values jsonb, actor text, txid bigint, occurred_at timestamptz
) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
RETURN encode(sha256(convert_to(
    audit.hash_field(prev_hash)
    || audit.hash_field(id::text)
    || audit.hash_field(table_name)
    || audit.hash_field(row_key)
    || audit.hash_field(action)
    || audit.hash_field(old_values::text)
    || audit.hash_field(new_values::text)
    || audit.hash_field(actor)
    || audit.hash_field(txid::text)
    || audit.hash_field(((extract(epoch FROM occurred_at) * 1000000)::bigint)::text),
    'UTF8')), 'hex')
"""

HASH_FIELD = """
CREATE FUNCTION audit.hash_field(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE WHEN value IS NULL THEN '-;' ELSE length(value)::text || ':' || value || ';' END
"""

# One call per statement: the changed rows come from the transition tables, are hashed
# in id order onto the chain, and appended in batches. The chain head row is locked
# first, so concurrent writers append one after the other and never fork the chain
# (under REPEATABLE READ a concurrent append makes the later writer fail and retry
# instead of chaining onto a stale head).
RECORD_CHANGES = """
CREATE FUNCTION audit.record_changes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    batch_size constant integer := 5000;
    v_actor text := coalesce(nullif(current_setting('dbkeeper.actor', true), ''), session_user);
    v_txid bigint := txid_current();
    v_at timestamptz := clock_timestamp();
    v_seq text := pg_get_serial_sequence('audit.log', 'id');
    v_count bigint;
    v_done bigint := 0;
    v_prev text;
    v_id bigint;
    v_hash text;
    changes refcursor;
    r record;
    ids bigint[] := '{}';
    keys text[] := '{}';
    olds jsonb[] := '{}';
    news jsonb[] := '{}';
    prevs text[] := '{}';
    hashes text[] := '{}';
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT count(*) INTO v_count FROM old_rows;
    ELSE
        SELECT count(*) INTO v_count FROM new_rows;
    END IF;
    IF v_count = 0 THEN
        RETURN NULL;
    END IF;

    SELECT last_hash INTO STRICT v_prev FROM audit.chain_head WHERE singleton FOR UPDATE;
    -- Only this function, holding the head lock, draws audit ids: the reserved range
    -- is contiguous and in chain order.
    v_id := nextval(v_seq) - 1;
    IF v_count > 1 THEN
        PERFORM setval(v_seq, v_id + v_count);
    END IF;

    IF TG_OP = 'INSERT' THEN
        OPEN changes FOR
            SELECT n.id::text AS row_key, NULL::jsonb AS old_values, to_jsonb(n) AS new_values
              FROM new_rows n ORDER BY n.id;
    ELSIF TG_OP = 'UPDATE' THEN
        -- Identity keys cannot be changed, so old and new versions pair up by id; only
        -- the columns whose value changed are kept on either side.
        OPEN changes FOR
            SELECT coalesce(n.id, o.id)::text AS row_key,
                   (SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb)
                      FROM jsonb_each(to_jsonb(o)) e
                     WHERE e.value IS DISTINCT FROM to_jsonb(n) -> e.key) AS old_values,
                   (SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb)
                      FROM jsonb_each(to_jsonb(n)) e
                     WHERE e.value IS DISTINCT FROM to_jsonb(o) -> e.key) AS new_values
              FROM old_rows o FULL JOIN new_rows n ON n.id = o.id
             ORDER BY coalesce(n.id, o.id);
    ELSE
        OPEN changes FOR
            SELECT o.id::text AS row_key, to_jsonb(o) AS old_values, NULL::jsonb AS new_values
              FROM old_rows o ORDER BY o.id;
    END IF;

    LOOP
        FETCH changes INTO r;
        EXIT WHEN NOT FOUND;
        v_id := v_id + 1;
        v_done := v_done + 1;
        v_hash := audit.entry_hash(v_prev, v_id, TG_TABLE_NAME, r.row_key, TG_OP,
                                   r.old_values, r.new_values, v_actor, v_txid, v_at);
        ids := ids || v_id;
        keys := keys || r.row_key;
        olds := olds || r.old_values;
        news := news || r.new_values;
        prevs := prevs || v_prev;
        hashes := hashes || v_hash;
        v_prev := v_hash;
        IF cardinality(ids) >= batch_size OR v_done = v_count THEN
            INSERT INTO audit.log (id, table_name, row_key, action, old_values, new_values,
                                   actor, txid, occurred_at, prev_hash, row_hash)
            OVERRIDING SYSTEM VALUE
            SELECT u.id, TG_TABLE_NAME, u.k, TG_OP, u.o, u.n, v_actor, v_txid, v_at, u.p, u.h
              FROM unnest(ids, keys, olds, news, prevs, hashes) AS u(id, k, o, n, p, h);
            ids := '{}'; keys := '{}'; olds := '{}'; news := '{}'; prevs := '{}'; hashes := '{}';
        END IF;
    END LOOP;
    CLOSE changes;

    UPDATE audit.chain_head SET last_id = v_id, last_hash = v_prev WHERE singleton;
    RETURN NULL;
END
$fn$
"""

REFUSE_CHANGE = """
CREATE FUNCTION audit.refuse_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $fn$
BEGIN
    RAISE EXCEPTION '% on %.% is refused: the audit trail is append-only and audited tables change only row by row',
        TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$fn$
"""

# Set-based: each row's hash is recomputed from its stored fields and its prev_hash is
# compared with the stored hash of the row before it; the chain head must name the
# last row. Only the first problem (lowest id) is reported.
VERIFY_CHAIN = """
CREATE FUNCTION audit.verify_chain() RETURNS TABLE(broken_id bigint, reason text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
    WITH entries AS (
        SELECT l.id, l.prev_hash, l.row_hash,
               coalesce(lag(l.row_hash) OVER (ORDER BY l.id), repeat('0', 64)) AS expected_prev,
               audit.entry_hash(l.prev_hash, l.id, l.table_name, l.row_key, l.action,
                                l.old_values, l.new_values, l.actor, l.txid,
                                l.occurred_at) AS recomputed
          FROM audit.log l
    ), tail AS (
        SELECT l.id, l.row_hash FROM audit.log l ORDER BY l.id DESC LIMIT 1
    ), problems AS (
        SELECT e.id,
               CASE WHEN e.prev_hash <> e.expected_prev
                    THEN 'prev_hash does not match the row_hash of the row before it: '
                         || 'a row before it was removed or altered'
                    ELSE 'row_hash does not match the row''s contents: the row was altered'
               END AS reason
          FROM entries e
         WHERE e.prev_hash <> e.expected_prev OR e.row_hash <> e.recomputed
        UNION ALL
        SELECT h.last_id,
               'the chain head names row ' || h.last_id || ' as the last one, but the log ends at '
               || coalesce((SELECT t.id::text FROM tail t), 'no row')
               || ': rows at its end were removed or altered'
          FROM audit.chain_head h
         WHERE h.last_id IS DISTINCT FROM coalesce((SELECT t.id FROM tail t), 0)
            OR h.last_hash IS DISTINCT FROM coalesce((SELECT t.row_hash FROM tail t), repeat('0', 64))
        UNION ALL
        SELECT NULL::bigint, 'the chain head row is missing'
         WHERE NOT EXISTS (SELECT 1 FROM audit.chain_head)
    )
    SELECT p.id, p.reason FROM problems p ORDER BY p.id NULLS FIRST LIMIT 1
$fn$
"""


def upgrade() -> None:
    op.execute("CREATE SCHEMA audit")
    op.execute("REVOKE ALL ON SCHEMA audit FROM PUBLIC")
    op.create_table(
        "log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("table_name", sa.Text(), nullable=False),
        sa.Column("row_key", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("old_values", postgresql.JSONB(), nullable=True),
        sa.Column("new_values", postgresql.JSONB(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("txid", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prev_hash", sa.Text(), nullable=False),
        sa.Column("row_hash", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_log"),
        sa.CheckConstraint(
            "action IN ('INSERT', 'UPDATE', 'DELETE')", name=op.f("ck_log_action_known")
        ),
        sa.CheckConstraint(
            "length(prev_hash) = 64 AND prev_hash ~ '^[0-9a-f]+$'",
            name=op.f("ck_log_prev_hash_format"),
        ),
        sa.CheckConstraint(
            "length(row_hash) = 64 AND row_hash ~ '^[0-9a-f]+$'",
            name=op.f("ck_log_row_hash_format"),
        ),
        schema="audit",
    )
    op.create_index("ix_log_table_name_row_key", "log", ["table_name", "row_key"], schema="audit")
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
        f"INSERT INTO audit.chain_head (singleton, last_id, last_hash) VALUES (true, 0, '{GENESIS_HASH}')"
    )
    op.execute("REVOKE ALL ON audit.log, audit.chain_head FROM PUBLIC")
    op.execute(HASH_FIELD)
    op.execute(ENTRY_HASH)
    op.execute(RECORD_CHANGES)
    op.execute(REFUSE_CHANGE)
    op.execute(VERIFY_CHAIN)
    op.execute("REVOKE ALL ON FUNCTION audit.record_changes() FROM PUBLIC")
    op.execute("REVOKE ALL ON FUNCTION audit.refuse_change() FROM PUBLIC")
    op.execute(
        "CREATE TRIGGER log_append_only BEFORE UPDATE OR DELETE ON audit.log "
        "FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER log_no_truncate BEFORE TRUNCATE ON audit.log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER chain_head_kept BEFORE DELETE ON audit.chain_head "
        "FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()"
    )
    op.execute(
        "CREATE TRIGGER chain_head_no_truncate BEFORE TRUNCATE ON audit.chain_head "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER chain_head_no_truncate ON audit.chain_head")
    op.execute("DROP TRIGGER chain_head_kept ON audit.chain_head")
    op.execute("DROP TRIGGER log_no_truncate ON audit.log")
    op.execute("DROP TRIGGER log_append_only ON audit.log")
    op.execute("DROP FUNCTION audit.verify_chain()")
    op.execute("DROP FUNCTION audit.refuse_change()")
    op.execute("DROP FUNCTION audit.record_changes()")
    op.drop_table("chain_head", schema="audit")
    op.drop_index("ix_log_table_name_row_key", table_name="log", schema="audit")
    op.drop_table("log", schema="audit")
    op.execute(
        "DROP FUNCTION audit.entry_hash(text, bigint, text, text, text, jsonb, jsonb, text, bigint, timestamptz)"
    )
    op.execute("DROP FUNCTION audit.hash_field(text)")
    op.execute("DROP SCHEMA audit")
