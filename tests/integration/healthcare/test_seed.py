"""The seed generator: rows for every table that satisfy every constraint, in the
requested amount, the same for the same seed, and recorded in an intact audit trail."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from dbkeeper.audit.chain import seal, verify_chain
from dbkeeper.cli import main as dbkeeper_main
from dbkeeper.conninfo import ConnInfo
from dbkeeper.healthcare.models import APPLICATION_TABLES, PATIENT_DATA_TABLES
from dbkeeper.healthcare.seed import SEED_ACTOR, SeedSummary, seed_database
from dbkeeper.local.postgres import LocalPostgres
from tests.cli_output import json_output
from tests.integration.healthcare.conftest import upgrade

AS_OF = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
PATIENTS = 40


def _counts(info: ConnInfo) -> dict[str, int]:
    with psycopg.connect(info.dsn()) as conn:
        return {
            table: int(
                conn.execute(
                    sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
                ).fetchone()[0]  # type: ignore[index]
            )
            for table in APPLICATION_TABLES
        }


def _fingerprints(info: ConnInfo) -> dict[str, str]:
    with psycopg.connect(info.dsn()) as conn:
        return {
            table: str(
                conn.execute(
                    sql.SQL("SELECT md5(string_agg(t::text, '|' ORDER BY t.id)) FROM {} t").format(
                        sql.Identifier(table)
                    )
                ).fetchone()[0]  # type: ignore[index]
            )
            for table in APPLICATION_TABLES
        }


@pytest.fixture
def seeded(healthcare_db: ConnInfo) -> tuple[ConnInfo, SeedSummary]:
    return healthcare_db, seed_database(healthcare_db, PATIENTS, seed=7, as_of=AS_OF)


@pytest.fixture
def second_healthcare_db(pg_cluster: LocalPostgres) -> Iterator[ConnInfo]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    info = pg_cluster.create_database(name)
    try:
        upgrade(info)
        yield info
    finally:
        pg_cluster.drop_database(name)


def test_every_table_gets_rows_and_the_summary_matches_the_database(
    seeded: tuple[ConnInfo, SeedSummary],
) -> None:
    info, summary = seeded
    counts = _counts(info)
    assert counts == summary.rows
    assert counts["patients"] == PATIENTS
    assert all(count > 0 for count in counts.values()), counts


def test_related_rows_come_in_realistic_proportions(seeded: tuple[ConnInfo, SeedSummary]) -> None:
    _, summary = seeded
    per_patient = summary.rows["encounters"] / PATIENTS
    per_encounter = summary.rows["observations"] / summary.rows["encounters"]
    assert 7 <= per_patient <= 13
    assert 2 <= per_encounter <= 4
    for table in ("conditions", "medication_requests", "appointments", "consents"):
        assert 1 <= summary.rows[table] / PATIENTS <= 4, table


def test_same_seed_gives_the_same_rows(
    seeded: tuple[ConnInfo, SeedSummary], second_healthcare_db: ConnInfo
) -> None:
    info, _ = seeded
    seed_database(second_healthcare_db, PATIENTS, seed=7, as_of=AS_OF)
    assert _fingerprints(second_healthcare_db) == _fingerprints(info)


def test_another_seed_gives_other_rows(
    seeded: tuple[ConnInfo, SeedSummary], second_healthcare_db: ConnInfo
) -> None:
    info, _ = seeded
    seed_database(second_healthcare_db, PATIENTS, seed=8, as_of=AS_OF)
    assert (
        _fingerprints(second_healthcare_db)["observations"] != _fingerprints(info)["observations"]
    )


def test_every_seeded_patient_row_is_audited_by_the_generator(
    seeded: tuple[ConnInfo, SeedSummary],
) -> None:
    info, summary = seeded
    with psycopg.connect(info.dsn(), autocommit=True) as conn:
        actors = conn.execute("SELECT actor, count(*) FROM audit.log GROUP BY actor").fetchall()
        sealed = seal(conn)
        verdict = verify_chain(conn)
    total = sum(summary.rows[t] for t in PATIENT_DATA_TABLES)
    assert actors == [(SEED_ACTOR, total)]
    assert sealed is not None
    assert sealed.total_rows == total
    assert verdict.ok


def test_seeding_again_adds_rows_and_leaves_the_identity_sequences_usable(
    seeded: tuple[ConnInfo, SeedSummary],
) -> None:
    info, first = seeded
    second = seed_database(info, 5, seed=7, as_of=AS_OF)
    with psycopg.connect(info.dsn()) as conn:
        row = conn.execute(
            "INSERT INTO organizations (identifier, name, kind) "
            "VALUES ('ORG-NEW', 'New', 'clinic') RETURNING id"
        ).fetchone()
    assert _counts(info)["patients"] == PATIENTS + 5
    assert row is not None
    assert row[0] > first.rows["organizations"] + second.rows["organizations"]


def test_as_of_in_the_future_is_refused_before_anything_is_written(
    healthcare_db: ConnInfo,
) -> None:
    with pytest.raises(ValueError, match="future"):
        seed_database(healthcare_db, 3, as_of=datetime.now(UTC) + timedelta(days=1))
    assert _counts(healthcare_db)["organizations"] == 0


def test_cli_seeds_and_reports_rows_per_table(
    healthcare_db: ConnInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    code = dbkeeper_main(
        ["seed", "--patients", "3", "--seed", "5", "--dsn", healthcare_db.dsn(), "-o", "json"]
    )
    report: dict[str, Any] = json_output(["seed"], capsys.readouterr().out)
    assert (code, report["rows"]["patients"]) == (0, 3)
    assert report["rows"] == _counts(healthcare_db)


def test_cli_explains_a_database_without_the_schema(
    database: ConnInfo, capsys: pytest.CaptureFixture[str]
) -> None:
    code = dbkeeper_main(["seed", "--patients", "3", "--dsn", database.dsn()])
    err = capsys.readouterr().err
    assert code == 1
    assert "migrate the healthcare set to head first" in err
