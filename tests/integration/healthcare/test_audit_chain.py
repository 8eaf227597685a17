"""The v2 audit trail on real PostgreSQL: writers never wait for each other, rows are
sealed once their transactions are final, the database's and Python's verifiers agree
row by row, and signed checkpoints expose any rewrite of what they covered."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest

from dbkeeper.audit import chain
from dbkeeper.cli import main as dbkeeper_main
from dbkeeper.conninfo import ConnInfo
from dbkeeper.local.postgres import LocalPostgres
from tests.cli_output import json_output
from tests.integration.healthcare.conftest import downgrade, upgrade

Conn = psycopg.Connection[tuple[Any, ...]]
DEADLINE = 120.0


def _org(conn: Conn) -> int:
    row = conn.execute("SELECT id FROM organizations ORDER BY id LIMIT 1").fetchone()
    if row is None:
        row = conn.execute(
            "INSERT INTO organizations (identifier, name, kind) "
            "VALUES ('ORG-1', 'General', 'hospital') RETURNING id"
        ).fetchone()
    assert row is not None
    return int(row[0])


def _add_patient(conn: Conn, org: int, mrn: str | None = None) -> int:
    row = conn.execute(
        "INSERT INTO patients (organization_id, mrn, given_name, family_name, birth_date, sex) "
        "VALUES (%s, %s, 'Ann', 'Lee', %s, 'female') RETURNING id",
        (org, mrn or f"M{uuid.uuid4().hex[:10].upper()}", date(1975, 3, 4)),
    ).fetchone()
    assert row is not None
    return int(row[0])


def _add_encounter(conn: Conn, org: int, patient: int) -> None:
    row = conn.execute("SELECT id FROM practitioners ORDER BY id LIMIT 1").fetchone()
    if row is None:
        row = conn.execute(
            "INSERT INTO practitioners (organization_id, npi, given_name, family_name, "
            "specialty) VALUES (%s, '1234567890', 'Sam', 'Ito', 'family medicine') RETURNING id",
            (org,),
        ).fetchone()
    assert row is not None
    conn.execute(
        "INSERT INTO encounters (patient_id, practitioner_id, organization_id, "
        "encounter_class, status, started_at) "
        "VALUES (%s, %s, %s, 'ambulatory', 'planned', now())",
        (patient, row[0], org),
    )


def _seed(conn: Conn, patients: int, tag: str = "A") -> None:
    """The same small history for the same tag: patients, an update and a delete."""
    org = _org(conn)
    ids = [_add_patient(conn, org, f"MRN{tag}{n:05d}") for n in range(patients)]
    conn.execute("UPDATE patients SET phone = '555-0100' WHERE id = %s", (ids[0],))
    conn.execute("DELETE FROM patients WHERE id = %s", (ids[-1],))


@pytest.fixture
def admin(healthcare_db: ConnInfo) -> Iterator[Conn]:
    with psycopg.connect(healthcare_db.dsn(), autocommit=True) as conn:
        yield conn


def _agree(conn: Conn) -> list[chain.RowVerdict]:
    """Both verifiers' verdict for every row; the test fails unless they are the same."""
    python = chain.entry_verdicts(conn)
    database = [
        chain.RowVerdict(int(r[0]), None if r[1] is None else int(r[1]), bool(r[2]), r[3])
        for r in conn.execute("SELECT * FROM audit.verify_entries() ORDER BY id").fetchall()
    ]
    assert python == database
    return python


def _tamper(conn: Conn, statement: str, *params: Any) -> None:
    """What a superuser (or the owner) can do: lift the guard, change, put it back."""
    with conn.transaction():
        conn.execute("ALTER TABLE audit.log DISABLE TRIGGER log_append_only")
        conn.execute(statement, params)
        conn.execute("ALTER TABLE audit.log ENABLE TRIGGER log_append_only")


def _sealed_batches(conn: Conn) -> dict[int, int | None]:
    return {v.id: v.batch for v in chain.entry_verdicts(conn)}


def test_rows_carry_their_patient_and_own_hash_and_wait_for_the_seal(admin: Conn) -> None:
    org = _org(admin)
    patient = _add_patient(admin, org)
    _add_encounter(admin, org, patient)
    rows = admin.execute(
        "SELECT table_name, patient_id, content_hash IS NOT NULL, row_hash FROM audit.log "
        "ORDER BY id"
    ).fetchall()
    assert rows == [("patients", patient, True, None), ("encounters", patient, True, None)]
    assert set(_sealed_batches(admin).values()) == {None}

    sealed = chain.seal(admin)
    assert sealed is not None
    assert (sealed.batch, sealed.row_count) == (1, 2)
    assert set(_sealed_batches(admin).values()) == {1}
    assert chain.seal(admin) is None
    assert all(v.ok for v in _agree(admin))
    assert chain.verify_chain(admin).ok


def test_a_long_transaction_holds_no_writer_and_is_sealed_after_it_commits(
    healthcare_db: ConnInfo, admin: Conn
) -> None:
    org = _org(admin)
    with psycopg.connect(healthcare_db.dsn()) as long_running:
        long_patient = _add_patient(long_running, org)  # open, uncommitted, from here on
        errors: list[BaseException] = []
        done: list[int] = []

        def write() -> None:
            try:
                with psycopg.connect(healthcare_db.dsn(), autocommit=True) as conn:
                    # A writer that had to wait would hit this instead of finishing.
                    conn.execute("SET lock_timeout = '60s'")
                    for _ in range(10):
                        with conn.transaction():
                            _add_patient(conn, org)
                    done.append(1)
            except BaseException as exc:  # reported below
                errors.append(exc)

        writers = [threading.Thread(target=write) for _ in range(6)]
        for writer in writers:
            writer.start()
        for writer in writers:
            writer.join(timeout=DEADLINE)
        # Every writer finished while the long transaction still holds its audit row.
        assert (errors, len(done)) == ([], 6)
        waiting = admin.execute(
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()
        assert waiting == (0,)

        sealed = chain.seal(admin)
        assert sealed is not None
        assert sealed.row_count == 60
        long_running.commit()
    long_row = admin.execute(
        "SELECT id FROM audit.log WHERE table_name = 'patients' AND row_key = %s",
        (str(long_patient),),
    ).fetchone()
    assert long_row is not None
    assert _sealed_batches(admin)[int(long_row[0])] is None
    after = chain.seal(admin)
    assert after is not None
    assert (after.batch, after.row_count) == (2, 1)
    assert all(v.ok for v in _agree(admin))


def _add_twice(conn: Conn, org: int) -> None:
    _add_patient(conn, org, "MDUPLICATE1")
    _add_patient(conn, org, "MDUPLICATE1")


def test_rolled_back_work_leaves_no_audit_rows(healthcare_db: ConnInfo, admin: Conn) -> None:
    org = _org(admin)
    with psycopg.connect(healthcare_db.dsn()) as conn:
        _add_patient(conn, org)
        conn.rollback()
        kept = _add_patient(conn, org)
        # A savepoint whose audited insert is undone by the error after it.
        with pytest.raises(psycopg.errors.UniqueViolation), conn.transaction():
            _add_twice(conn, org)
        conn.commit()
    chain.seal(admin)
    rows = admin.execute("SELECT row_key FROM audit.log ORDER BY id").fetchall()
    assert rows == [(str(kept),)]
    assert chain.verify_chain(admin).ok


def test_seal_refuses_to_share_a_transaction_that_wrote(healthcare_db: ConnInfo) -> None:
    with psycopg.connect(healthcare_db.dsn()) as conn:
        _add_patient(conn, _org(conn))
        with pytest.raises(psycopg.errors.InvalidTransactionState, match="on its own"):
            conn.execute("SELECT * FROM audit.seal()")
        conn.rollback()
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        with pytest.raises(psycopg.errors.InvalidTransactionState, match="READ COMMITTED"):
            conn.execute("SELECT * FROM audit.seal()")


Tamper = Callable[[Conn, list[int]], None]


def _change_a_sealed_row(conn: Conn, ids: list[int]) -> None:
    _tamper(conn, "UPDATE audit.log SET actor = 'someone-else' WHERE id = %s", ids[2])


def _change_and_rehash_a_sealed_row(conn: Conn, ids: list[int]) -> None:
    _tamper(
        conn,
        "UPDATE audit.log SET actor = 'x', content_hash = audit.content_hash(id, table_name, "
        "row_key, patient_id, action, old_values, new_values, 'x', txid, occurred_at) "
        "WHERE id = %s",
        ids[2],
    )


def _delete_a_sealed_row(conn: Conn, ids: list[int]) -> None:
    _tamper(conn, "DELETE FROM audit.log WHERE id = %s", ids[2])


def _insert_a_row_into_a_sealed_transaction(conn: Conn, ids: list[int]) -> None:
    _tamper(
        conn,
        "INSERT INTO audit.log (table_name, row_key, patient_id, action, new_values, actor, "
        "txid, occurred_at, content_hash) "
        "SELECT 'patients', '424242', 424242, 'INSERT', '{}'::jsonb, actor, txid, occurred_at, "
        "audit.content_hash(0, 'patients', '424242', 424242, 'INSERT', NULL, '{}'::jsonb, "
        "actor, txid, occurred_at) FROM audit.log WHERE id = %s",
        ids[2],
    )


@pytest.mark.parametrize(
    "tamper",
    [
        _change_a_sealed_row,
        _change_and_rehash_a_sealed_row,
        _delete_a_sealed_row,
        _insert_a_row_into_a_sealed_transaction,
    ],
    ids=["changed", "changed-and-rehashed", "deleted", "inserted"],
)
def test_a_sealed_row_changed_deleted_or_inserted_is_found(admin: Conn, tamper: Tamper) -> None:
    org = _org(admin)
    for _ in range(5):
        _add_patient(admin, org)
        _add_patient(admin, org)
        chain.seal(admin)
    ids = [int(r[0]) for r in admin.execute("SELECT id FROM audit.log ORDER BY id").fetchall()]
    assert all(v.ok for v in _agree(admin))

    tamper(admin, ids)

    verdicts = _agree(admin)
    assert not all(v.ok for v in verdicts)
    verdict = chain.verify_chain(admin)
    assert not verdict.ok
    database = admin.execute("SELECT * FROM audit.verify_chain()").fetchone()
    assert database is not None
    assert database[2] == verdict.reason


def test_a_row_added_into_the_window_is_not_told_apart_from_a_write(admin: Conn) -> None:
    """What the seal window means: an unsealed row is not proven by anything yet."""
    org = _org(admin)
    _add_patient(admin, org)
    row = admin.execute("SELECT id FROM audit.log").fetchone()
    assert row is not None
    _tamper(admin, "UPDATE audit.log SET actor = 'changed-before-sealing'")
    # The changed row no longer matches its own hash, so even unsealed it is found...
    assert not chain.verify_chain(admin).ok
    # ...but a writer who also recomputes that hash before the seal is indistinguishable.
    _tamper(
        admin,
        "UPDATE audit.log SET content_hash = audit.content_hash(id, table_name, row_key, "
        "patient_id, action, old_values, new_values, actor, txid, occurred_at)",
    )
    chain.seal(admin)
    assert chain.verify_chain(admin).ok


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = dbkeeper_main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def key_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    path = tmp_path / "audit-key.pem"
    code, out, _ = _cli(capsys, "audit", "keygen", "--out", str(path))
    assert code == 0
    assert "key id" in out
    assert path.stat().st_mode & 0o777 == 0o600
    return path


def _checkpoint(
    capsys: pytest.CaptureFixture[str], info: ConnInfo, key: Path, into: Path
) -> dict[str, Any]:
    code, out, err = _cli(
        capsys, "audit", "checkpoint", "--dsn", info.dsn(), "--key-file", str(key), "-o", "json"
    )
    assert (code, err) == (0, "")
    [line] = out.splitlines()
    with into.open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    data: dict[str, Any] = json_output(["audit", "checkpoint"], line)
    return data


def _verify(
    capsys: pytest.CaptureFixture[str], info: ConnInfo, key: Path, checkpoints: Path
) -> tuple[int, dict[str, Any]]:
    code, out, _ = _cli(
        capsys,
        "audit",
        "verify",
        "--dsn",
        info.dsn(),
        "--checkpoints",
        str(checkpoints),
        "--key-file",
        str(key),
        "-o",
        "json",
    )
    report: dict[str, Any] = json_output(["audit", "verify"], out)
    return code, report


def test_a_grown_untouched_log_extends_every_checkpoint(
    admin: Conn,
    healthcare_db: ConnInfo,
    key_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    checkpoints = tmp_path / "checkpoints.jsonl"
    _seed(admin, 4, "A")
    first = _checkpoint(capsys, healthcare_db, key_file, checkpoints)
    _seed(admin, 3, "B")
    second = _checkpoint(capsys, healthcare_db, key_file, checkpoints)
    _seed(admin, 2, "C")  # not sealed: the log goes on beyond the last checkpoint
    assert second["batch"] > first["batch"]
    assert second["rows"] > first["rows"]

    code, report = _verify(capsys, healthcare_db, key_file, checkpoints)
    assert (code, report["ok"]) == (0, True)
    assert [c["ok"] for c in report["checkpoints"]] == [True, True]
    assert report["unsealed_rows"] == 4


def test_a_whole_history_replaced_fails_against_an_earlier_checkpoint(
    pg_cluster: LocalPostgres, key_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"hc_{uuid.uuid4().hex[:12]}"
    checkpoints = tmp_path / "checkpoints.jsonl"
    info = pg_cluster.create_database(name)
    try:
        upgrade(info)
        with psycopg.connect(info.dsn(), autocommit=True) as conn:
            _seed(conn, 5)
        _checkpoint(capsys, info, key_file, checkpoints)

        # Recreated, re-migrated and re-seeded with the same data: self-consistent.
        pg_cluster.drop_database(name)
        info = pg_cluster.create_database(name)
        upgrade(info)
        with psycopg.connect(info.dsn(), autocommit=True) as conn:
            _seed(conn, 5)
            chain.seal(conn)
            assert chain.verify_chain(conn).ok

        code, report = _verify(capsys, info, key_file, checkpoints)
    finally:
        pg_cluster.drop_database(name)
    assert (code, report["ok"]) == (1, False)
    [result] = report["checkpoints"]
    assert result["line"] == 1
    assert "no longer has the hash this checkpoint signed" in result["reason"]


def test_a_tail_cut_after_a_checkpoint_is_found(
    admin: Conn,
    healthcare_db: ConnInfo,
    key_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    checkpoints = tmp_path / "checkpoints.jsonl"
    _seed(admin, 3, "A")
    chain.seal(admin)
    _seed(admin, 3, "B")
    checkpoint = _checkpoint(capsys, healthcare_db, key_file, checkpoints)
    last = checkpoint["batch"]
    with admin.transaction():
        for table in ("log", "seal_batch", "sealed_xact"):
            admin.execute(f"ALTER TABLE audit.{table} DISABLE TRIGGER USER")
        admin.execute(
            "DELETE FROM audit.log WHERE txid IN "
            "(SELECT txid FROM audit.sealed_xact WHERE batch = %s)",
            (last,),
        )
        admin.execute("DELETE FROM audit.sealed_xact WHERE batch = %s", (last,))
        admin.execute("DELETE FROM audit.seal_batch WHERE batch = %s", (last,))
        for table in ("log", "seal_batch", "sealed_xact"):
            admin.execute(f"ALTER TABLE audit.{table} ENABLE TRIGGER USER")
    # The shortened log is consistent in itself: only the checkpoint tells.
    assert chain.verify_chain(admin).ok
    code, report = _verify(capsys, healthcare_db, key_file, checkpoints)
    assert code == 1
    assert f"before the checkpoint's batch {last}" in report["checkpoints"][0]["reason"]


def test_a_checkpoint_signed_by_another_key_does_not_count(
    admin: Conn,
    healthcare_db: ConnInfo,
    key_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    checkpoints = tmp_path / "checkpoints.jsonl"
    _seed(admin, 2)
    _checkpoint(capsys, healthcare_db, key_file, checkpoints)
    other = tmp_path / "other.pem"
    assert _cli(capsys, "audit", "keygen", "--out", str(other))[0] == 0
    code, report = _verify(capsys, healthcare_db, other, checkpoints)
    assert code == 1
    assert "signature does not verify" in report["checkpoints"][0]["reason"]
    # The public key alone is enough to check.
    code, report = _verify(capsys, healthcare_db, Path(f"{key_file}.pub"), checkpoints)
    assert (code, report["ok"]) == (0, True)


def test_no_checkpoint_vouches_for_a_broken_chain(
    admin: Conn, healthcare_db: ConnInfo, key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(admin, 3)
    chain.seal(admin)
    _tamper(admin, "UPDATE audit.log SET actor = 'x' WHERE id = (SELECT min(id) FROM audit.log)")
    code, out, err = _cli(
        capsys, "audit", "checkpoint", "--dsn", healthcare_db.dsn(), "--key-file", str(key_file)
    )
    assert (code, out) == (1, "")
    assert "no checkpoint was signed" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["audit", "checkpoint"], "pass --key-file FILE"),
        (["audit", "checkpoint", "--key-file", "/nonexistent/key.pem"], "does not exist"),
        (["audit", "verify", "--checkpoints", "/dev/null"], "--checkpoints needs --key-file"),
    ],
)
def test_missing_keys_are_one_line_errors(
    healthcare_db: ConnInfo,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.delenv("DBKEEPER_AUDIT_KEY_FILE", raising=False)
    code, out, err = _cli(capsys, *args, "--dsn", healthcare_db.dsn())
    assert (code, out) == (1, "")
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_a_v1_chain_is_converted_proven_and_restored_by_the_downgrade(
    database: ConnInfo,
) -> None:
    upgrade(database, "0006")
    with psycopg.connect(database.dsn(), autocommit=True) as conn:
        _seed(conn, 4)
        first = conn.execute("SELECT min(id) FROM patients").fetchone()
        assert first is not None
        encounter_patient = int(first[0])
        _add_encounter(conn, _org(conn), encounter_patient)
        v1_rows = conn.execute("SELECT count(*) FROM audit.log").fetchone()
    assert v1_rows is not None
    upgrade(database, "0007")
    with psycopg.connect(database.dsn(), autocommit=True) as conn:
        anchors = conn.execute("SELECT batch, row_count FROM audit.seal_batch").fetchall()
        assert anchors == [(0, v1_rows[0])]
        # Old rows now belong to their patient too.
        trail = conn.execute(
            "SELECT table_name FROM audit.log WHERE patient_id = %s ORDER BY id",
            (encounter_patient,),
        ).fetchall()
        assert trail == [("patients",), ("patients",), ("encounters",)]
        _seed(conn, 2, "B")
        chain.seal(conn)
        verdicts = _agree(conn)
        assert all(v.ok for v in verdicts)
        assert {v.batch for v in verdicts} == {0, 1}
        # A v1 row changed after the conversion is still found.
        original = conn.execute("SELECT actor FROM audit.log WHERE id = 2").fetchone()
        assert original is not None
        _tamper(conn, "UPDATE audit.log SET actor = 'x' WHERE id = 2")
        assert next(v.id for v in _agree(conn) if not v.ok) == 2
        _tamper(conn, "UPDATE audit.log SET actor = %s WHERE id = 2", original[0])
        assert chain.verify_chain(conn).ok
        total = conn.execute("SELECT count(*) FROM audit.log").fetchone()

    downgrade(database, "0006")
    with psycopg.connect(database.dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT * FROM audit.verify_chain()").fetchall() == []
        assert conn.execute("SELECT count(*) FROM audit.log").fetchone() == total
        _seed(conn, 1, "C")
        assert conn.execute("SELECT * FROM audit.verify_chain()").fetchall() == []


def test_a_broken_v1_chain_is_not_converted(database: ConnInfo) -> None:
    upgrade(database, "0006")
    with psycopg.connect(database.dsn(), autocommit=True) as conn:
        _seed(conn, 3)
        _tamper(conn, "UPDATE audit.log SET actor = 'x' WHERE id = 1")
    with pytest.raises(Exception, match="v1 audit trail does not verify"):
        upgrade(database, "0007")
    with psycopg.connect(database.dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass('audit.seal_batch')").fetchone() == (None,)
