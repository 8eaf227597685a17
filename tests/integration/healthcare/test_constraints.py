"""Every CHECK, foreign-key and unique constraint of the schema refuses a bad row while
the same row, made good, is accepted; and ON DELETE behaves as designed."""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql
from psycopg.types.json import Jsonb

from dbkeeper.conninfo import ConnInfo

Conn = psycopg.Connection[tuple[Any, ...]]
NOW = datetime.now(UTC).replace(microsecond=0)
TODAY = NOW.date()
ZEROS = "0" * 64
_unique = itertools.count(1)


@dataclass(frozen=True)
class Parents:
    organization_id: int
    practitioner_id: int
    patient_id: int
    encounter_id: int


def _insert(conn: Conn, table: str, row: dict[str, Any]) -> int:
    schema, _, name = table.rpartition(".")
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING {}").format(
        sql.Identifier(schema or "public", name),
        sql.SQL(", ").join(map(sql.Identifier, row)),
        sql.SQL(", ").join(sql.Placeholder() * len(row)),
        sql.Identifier("batch" if name == "seal_batch" else "id"),
    )
    fetched = conn.execute(statement, list(row.values())).fetchone()
    assert fetched is not None
    return int(fetched[0])


def _n() -> int:
    return next(_unique)


def good_row(table: str, p: Parents) -> dict[str, Any]:
    """A row of ``table`` that satisfies every constraint (fresh unique values each call)."""
    n = _n()
    rows: dict[str, Callable[[], dict[str, Any]]] = {
        "organizations": lambda: {
            "identifier": f"ORG-T{n}-{uuid.uuid4().hex[:6]}", "name": "Test Clinic",
            "kind": "clinic",
        },
        "practitioners": lambda: {
            "organization_id": p.organization_id, "npi": f"9{n:09d}", "given_name": "Ann",
            "family_name": "Lee", "specialty": "Family Medicine",
        },
        "patients": lambda: {
            "organization_id": p.organization_id, "mrn": f"T{n:08d}", "given_name": "Bo",
            "family_name": "Ray", "birth_date": date(1980, 5, 17), "sex": "female",
            "deceased_at": None,
        },
        "encounters": lambda: {
            "patient_id": p.patient_id, "practitioner_id": p.practitioner_id,
            "organization_id": p.organization_id, "encounter_class": "ambulatory",
            "status": "finished", "started_at": NOW - timedelta(days=1),
            "ended_at": NOW - timedelta(days=1) + timedelta(minutes=30),
        },
        "observations": lambda: {
            "patient_id": p.patient_id, "encounter_id": p.encounter_id, "loinc_code": "8867-4",
            "display": "Heart rate", "status": "final", "value_numeric": 72, "value_text": None,
            "unit": "/min", "effective_at": NOW - timedelta(days=1),
        },
        "conditions": lambda: {
            "patient_id": p.patient_id, "encounter_id": p.encounter_id, "icd10_code": "E11.9",
            "description": "Type 2 diabetes", "clinical_status": "active",
            "onset_date": TODAY - timedelta(days=10), "abatement_date": None,
            "recorded_at": NOW - timedelta(days=1),
        },
        "medication_requests": lambda: {
            "patient_id": p.patient_id, "encounter_id": p.encounter_id,
            "requester_id": p.practitioner_id, "rxnorm_code": "860975",
            "medication": "Metformin 500 MG", "dosage_instruction": "twice daily",
            "status": "active", "intent": "order", "authored_at": NOW - timedelta(days=1),
            "valid_from": TODAY - timedelta(days=1), "valid_until": TODAY + timedelta(days=30),
            "refills": 2,
        },
        "allergies": lambda: {
            "patient_id": p.patient_id, "substance": f"Substance {n}", "category": "food",
            "criticality": "low", "clinical_status": "active",
            "recorded_at": NOW - timedelta(days=1),
        },
        "appointments": lambda: {
            "patient_id": p.patient_id, "practitioner_id": p.practitioner_id,
            "status": "fulfilled", "starts_at": NOW - timedelta(days=2),
            "ends_at": NOW - timedelta(days=2) + timedelta(minutes=30),
        },
        "consents": lambda: {
            "patient_id": p.patient_id, "organization_id": p.organization_id,
            "scope": "treatment", "status": "active", "granted_at": NOW - timedelta(days=10),
            "expires_at": NOW + timedelta(days=300), "revoked_at": None,
        },
        "audit.log": lambda: {
            "table_name": "patients", "row_key": "1", "action": "INSERT", "old_values": None,
            "new_values": Jsonb({"id": 1}), "actor": "tester", "txid": 1, "occurred_at": NOW,
            "prev_hash": ZEROS, "row_hash": ZEROS,
        },
        "audit.seal_batch": lambda: {
            "batch": 1_000_000 + n, "snapshot": "1:1:", "row_count": 0, "total_rows": 0,
            "rows_digest": ZEROS, "prev_hash": ZEROS, "batch_hash": ZEROS, "sealed_at": NOW,
        },
    }  # fmt: skip
    return rows[table]()


@dataclass(frozen=True)
class Case:
    constraint: str
    table: str
    bad: dict[str, Any] = field(default_factory=dict)
    # insert: the good row is accepted, the good row with ``bad`` applied is refused;
    # duplicate: a second copy of an accepted row is refused, a fresh good row is not.
    kind: Literal["insert", "duplicate"] = "insert"

    @property
    def id(self) -> str:
        return self.constraint


FUTURE = NOW + timedelta(days=2)
FUTURE_DAY = TODAY + timedelta(days=2)
CASES = [
    Case("ck_organizations_kind_known", "organizations", {"kind": "spa"}),
    Case("ck_organizations_name_not_blank", "organizations", {"name": "  "}),
    Case("uq_organizations_identifier", "organizations", kind="duplicate"),
    Case("fk_practitioners_organization_id_organizations", "practitioners",
         {"organization_id": -1}),
    Case("uq_practitioners_npi", "practitioners", kind="duplicate"),
    Case("ck_practitioners_npi_ten_digits", "practitioners", {"npi": "12345"}),
    Case("ck_practitioners_family_name_not_blank", "practitioners", {"family_name": ""}),
    Case("fk_patients_organization_id_organizations", "patients", {"organization_id": -1}),
    Case("uq_patients_organization_id_mrn", "patients", kind="duplicate"),
    Case("ck_patients_mrn_format", "patients", {"mrn": "mrn 1"}),
    Case("ck_patients_birth_date_not_future", "patients", {"birth_date": FUTURE_DAY}),
    Case("ck_patients_birth_date_plausible", "patients", {"birth_date": date(1850, 1, 1)}),
    Case("ck_patients_sex_known", "patients", {"sex": "F"}),
    Case("ck_patients_deceased_at_not_future", "patients", {"deceased_at": FUTURE}),
    Case("ck_patients_deceased_after_birth", "patients",
         {"deceased_at": datetime(1979, 1, 1, tzinfo=UTC)}),
    Case("ck_patients_family_name_not_blank", "patients", {"family_name": " "}),
    Case("fk_encounters_patient_id_patients", "encounters", {"patient_id": -1}),
    Case("fk_encounters_practitioner_id_practitioners", "encounters", {"practitioner_id": -1}),
    Case("fk_encounters_organization_id_organizations", "encounters", {"organization_id": -1}),
    Case("ck_encounters_class_known", "encounters", {"encounter_class": "walk-in"}),
    Case("ck_encounters_status_known", "encounters", {"status": "done"}),
    Case("ck_encounters_started_at_not_future", "encounters",
         {"started_at": FUTURE, "ended_at": FUTURE + timedelta(hours=1)}),
    Case("ck_encounters_ended_after_started", "encounters",
         {"ended_at": NOW - timedelta(days=3)}),
    Case("ck_encounters_finished_has_end", "encounters", {"ended_at": None}),
    Case("fk_observations_patient_id_patients", "observations", {"patient_id": -1}),
    Case("fk_observations_encounter_id_encounters", "observations", {"encounter_id": -1}),
    Case("ck_observations_loinc_code_format", "observations", {"loinc_code": "HR"}),
    Case("ck_observations_status_known", "observations", {"status": "ok"}),
    Case("ck_observations_one_value", "observations", {"value_text": "72 bpm"}),
    Case("ck_observations_number_has_unit", "observations", {"unit": None}),
    Case("ck_observations_effective_at_not_future", "observations", {"effective_at": FUTURE}),
    Case("fk_conditions_patient_id_patients", "conditions", {"patient_id": -1}),
    Case("fk_conditions_encounter_id_encounters", "conditions", {"encounter_id": -1}),
    Case("ck_conditions_icd10_code_format", "conditions", {"icd10_code": "diabetes"}),
    Case("ck_conditions_status_known", "conditions", {"clinical_status": "cured"}),
    Case("ck_conditions_onset_not_future", "conditions", {"onset_date": FUTURE_DAY}),
    Case("ck_conditions_abatement_after_onset", "conditions",
         {"abatement_date": TODAY - timedelta(days=20)}),
    Case("ck_conditions_recorded_at_not_future", "conditions", {"recorded_at": FUTURE}),
    Case("fk_medication_requests_patient_id_patients", "medication_requests", {"patient_id": -1}),
    Case("fk_medication_requests_encounter_id_encounters", "medication_requests",
         {"encounter_id": -1}),
    Case("fk_medication_requests_requester_id_practitioners", "medication_requests",
         {"requester_id": -1}),
    Case("ck_medication_requests_rxnorm_code_format", "medication_requests",
         {"rxnorm_code": "MET500"}),
    Case("ck_medication_requests_status_known", "medication_requests", {"status": "taking"}),
    Case("ck_medication_requests_intent_known", "medication_requests", {"intent": "wish"}),
    Case("ck_medication_requests_authored_at_not_future", "medication_requests",
         {"authored_at": FUTURE}),
    Case("ck_medication_requests_valid_until_after_from", "medication_requests",
         {"valid_until": TODAY - timedelta(days=5)}),
    Case("ck_medication_requests_refills_range", "medication_requests", {"refills": 13}),
    Case("fk_allergies_patient_id_patients", "allergies", {"patient_id": -1}),
    Case("uq_allergies_patient_id_substance", "allergies", kind="duplicate"),
    Case("ck_allergies_category_known", "allergies", {"category": "pets"}),
    Case("ck_allergies_criticality_known", "allergies", {"criticality": "medium"}),
    Case("ck_allergies_status_known", "allergies", {"clinical_status": "gone"}),
    Case("ck_allergies_recorded_at_not_future", "allergies", {"recorded_at": FUTURE}),
    Case("ck_allergies_substance_not_blank", "allergies", {"substance": " "}),
    Case("fk_appointments_patient_id_patients", "appointments", {"patient_id": -1}),
    Case("fk_appointments_practitioner_id_practitioners", "appointments",
         {"practitioner_id": -1}),
    Case("ck_appointments_status_known", "appointments", {"status": "done"}),
    Case("ck_appointments_ends_after_starts", "appointments",
         {"ends_at": NOW - timedelta(days=3)}),
    Case("ck_appointments_attended_not_future", "appointments",
         {"starts_at": FUTURE, "ends_at": FUTURE + timedelta(minutes=30)}),
    Case("fk_consents_patient_id_patients", "consents", {"patient_id": -1}),
    Case("fk_consents_organization_id_organizations", "consents", {"organization_id": -1}),
    Case("ck_consents_scope_known", "consents", {"scope": "marketing"}),
    Case("ck_consents_status_known", "consents", {"status": "maybe"}),
    Case("ck_consents_granted_at_not_future", "consents",
         {"granted_at": FUTURE, "expires_at": FUTURE + timedelta(days=1)}),
    Case("ck_consents_expires_after_granted", "consents",
         {"expires_at": NOW - timedelta(days=20)}),
    Case("ck_consents_revoked_at_in_range", "consents",
         {"status": "inactive", "revoked_at": NOW - timedelta(days=20)}),
    Case("ck_consents_revoked_not_active", "consents", {"revoked_at": NOW - timedelta(days=1)}),
    Case("ck_log_action_known", "audit.log", {"action": "SELECT"}),
    Case("ck_log_prev_hash_format", "audit.log", {"prev_hash": "ABC"}),
    Case("ck_log_row_hash_format", "audit.log", {"row_hash": "g" * 64}),
    Case("ck_log_one_hash_form", "audit.log", {"content_hash": ZEROS}),
    Case("ck_log_content_hash_format", "audit.log",
         {"content_hash": "x", "prev_hash": None, "row_hash": None}),
    Case("ck_seal_batch_batch_not_negative", "audit.seal_batch", {"batch": -1}),
    Case("ck_seal_batch_batch_hash_format", "audit.seal_batch", {"batch_hash": "x"}),
]  # fmt: skip


@pytest.fixture(scope="module")
def parents(shared_healthcare_db: ConnInfo) -> Parents:
    with psycopg.connect(shared_healthcare_db.dsn()) as conn:
        empty = Parents(0, 0, 0, 0)
        org = _insert(conn, "organizations", good_row("organizations", empty))
        with_org = Parents(org, 0, 0, 0)
        prac = _insert(conn, "practitioners", good_row("practitioners", with_org))
        pat = _insert(conn, "patients", good_row("patients", Parents(org, prac, 0, 0)))
        enc = _insert(conn, "encounters", good_row("encounters", Parents(org, prac, pat, 0)))
        return Parents(org, prac, pat, enc)


def _refused(conn: Conn, table: str, row: dict[str, Any]) -> str | None:
    """The name of the constraint that refused ``row``, or None when it was accepted."""
    try:
        with conn.transaction():
            _insert(conn, table, row)
    except psycopg.errors.IntegrityError as exc:
        return exc.diag.constraint_name
    return None


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_constraint_refuses_bad_row_and_accepts_good_one(
    case: Case, rollback_conn: Conn, parents: Parents
) -> None:
    good = good_row(case.table, parents)
    assert _refused(rollback_conn, case.table, good) is None
    if case.kind == "duplicate":
        assert _refused(rollback_conn, case.table, good_row(case.table, parents)) is None
        assert _refused(rollback_conn, case.table, good) == case.constraint
    else:
        bad = {**good_row(case.table, parents), **case.bad}
        assert _refused(rollback_conn, case.table, bad) == case.constraint


def test_every_check_foreign_key_and_unique_constraint_has_a_case(rollback_conn: Conn) -> None:
    rows = rollback_conn.execute(
        "SELECT c.conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
        "WHERE n.nspname IN ('public', 'audit') AND c.contype IN ('c', 'f', 'u')"
    ).fetchall()
    declared = {row[0] for row in rows}
    assert declared == {case.constraint for case in CASES}


def test_every_constraint_follows_the_naming_convention(rollback_conn: Conn) -> None:
    prefixes = {"c": "ck_", "f": "fk_", "u": "uq_", "p": "pk_"}
    rows = rollback_conn.execute(
        "SELECT c.conname, c.contype, t.relname FROM pg_constraint c "
        "JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE n.nspname IN ('public', 'audit') AND t.relname <> 'alembic_version' "
        # From PostgreSQL 18 on, NOT NULL is a constraint too ('n'), named by the server.
        "AND c.contype IN ('c', 'f', 'u', 'p')"
    ).fetchall()
    assert rows
    for name, kind, table in rows:
        assert name.startswith(f"{prefixes[kind]}{table}"), name


LOINC = re.compile(r"[0-9]{1,7}-[0-9]")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(code=st.text(alphabet="0123456789-A ", min_size=0, max_size=10))
def test_loinc_codes_are_accepted_exactly_when_well_formed(
    code: str, rollback_conn: Conn, parents: Parents
) -> None:
    row = {**good_row("observations", parents), "loinc_code": code}
    refused = _refused(rollback_conn, "observations", row)
    assert (refused is None) == bool(LOINC.fullmatch(code))


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(birth=st.dates(min_value=date(1800, 1, 1), max_value=TODAY + timedelta(days=3650)))
def test_birth_dates_are_accepted_exactly_between_1900_and_today(
    birth: date, rollback_conn: Conn, parents: Parents
) -> None:
    row = {**good_row("patients", parents), "birth_date": birth}
    refused = _refused(rollback_conn, "patients", row)
    assert (refused is None) == (date(1900, 1, 1) <= birth <= TODAY)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start_offset=st.integers(min_value=-10_000, max_value=10_000),
    length=st.integers(min_value=-120, max_value=120),
)
def test_encounters_end_no_earlier_than_they_start(
    start_offset: int, length: int, rollback_conn: Conn, parents: Parents
) -> None:
    started = NOW - timedelta(days=30) + timedelta(minutes=start_offset)
    row = {
        **good_row("encounters", parents),
        "started_at": started,
        "ended_at": started + timedelta(minutes=length),
    }
    assert (_refused(rollback_conn, "encounters", row) is None) == (length >= 0)


def _count(conn: Conn, query: str, *params: Any) -> int:
    row = conn.execute(query, params).fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture
def family(rollback_conn: Conn, parents: Parents) -> Parents:
    """A new patient with an encounter, an observation and a condition recorded in it."""
    pat = _insert(rollback_conn, "patients", good_row("patients", parents))
    mine = Parents(parents.organization_id, parents.practitioner_id, pat, 0)
    enc = _insert(rollback_conn, "encounters", good_row("encounters", mine))
    mine = Parents(parents.organization_id, parents.practitioner_id, pat, enc)
    _insert(rollback_conn, "observations", good_row("observations", mine))
    _insert(rollback_conn, "conditions", good_row("conditions", mine))
    return mine


def test_removing_a_patient_removes_their_records(rollback_conn: Conn, family: Parents) -> None:
    rollback_conn.execute("DELETE FROM patients WHERE id = %s", (family.patient_id,))
    for table in ("encounters", "observations", "conditions"):
        left = _count(
            rollback_conn, f"SELECT count(*) FROM {table} WHERE patient_id = %s", family.patient_id
        )
        assert left == 0, table


def test_removing_an_encounter_keeps_conditions_but_removes_observations(
    rollback_conn: Conn, family: Parents
) -> None:
    rollback_conn.execute("DELETE FROM encounters WHERE id = %s", (family.encounter_id,))
    conditions = _count(
        rollback_conn,
        "SELECT count(*) FROM conditions WHERE patient_id = %s AND encounter_id IS NULL",
        family.patient_id,
    )
    observations = _count(
        rollback_conn, "SELECT count(*) FROM observations WHERE patient_id = %s", family.patient_id
    )
    assert (conditions, observations) == (1, 0)


def test_a_practitioner_with_records_cannot_be_removed(
    rollback_conn: Conn, family: Parents
) -> None:
    # ON DELETE RESTRICT: PostgreSQL 18 reports it as restrict_violation (23001).
    refusals = (psycopg.errors.ForeignKeyViolation, psycopg.errors.RestrictViolation)
    with pytest.raises(refusals) as refused:
        rollback_conn.execute("DELETE FROM practitioners WHERE id = %s", (family.practitioner_id,))
    assert refused.value.diag.constraint_name is not None
