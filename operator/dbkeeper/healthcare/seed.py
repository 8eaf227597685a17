"""Realistic, deterministic test data for the healthcare schema, at any scale.

``seed_database`` adds organizations, practitioners and ``patients`` patients with their
clinical history (about ten encounters each, three observations per encounter, and
conditions, medication requests, allergies, appointments and consents). The same seed
and ``as_of`` give the same rows. Rows are streamed with COPY in batches of patients, all
in one transaction, with ``dbkeeper.actor`` set so the audit trail names the generator.
Every timestamp lies before ``as_of`` except booked future appointments.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from dbkeeper.conninfo import ConnInfo
from dbkeeper.healthcare import MAX_PATIENTS
from dbkeeper.healthcare.models import APPLICATION_TABLES

SEED_ACTOR = "dbkeeper-seed"
PATIENTS_PER_BATCH = 2500

_GIVEN = [
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Amelia",
    "Oliver",
    "Sophia",
    "Elijah",
    "Isabella",
    "James",
    "Ava",
    "William",
    "Mia",
    "Benjamin",
    "Evelyn",
    "Lucas",
    "Harper",
    "Henry",
    "Luna",
    "Theodore",
    "Camila",
    "Jack",
    "Gianna",
    "Levi",
    "Elizabeth",
    "Alexander",
    "Eleanor",
    "Jackson",
    "Ella",
    "Mateo",
    "Abigail",
    "Daniel",
    "Sofia",
    "Michael",
    "Avery",
    "Mason",
    "Scarlett",
    "Sebastian",
    "Emily",
    "Ethan",
    "Aria",
    "Logan",
    "Penelope",
    "Owen",
    "Chloe",
    "Samuel",
    "Layla",
    "Jacob",
    "Mila",
    "Asher",
    "Nora",
]
_FAMILY = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
]
_CITIES = [
    "Riverside",
    "Lakeview",
    "Fairmont",
    "Brookfield",
    "Cedar",
    "Hills",
    "Oakridge",
    "Maplewood",
    "Springfield",
    "Greenville",
    "Ashford",
    "Westbrook",
    "Northgate",
    "Kingsport",
    "Milford",
    "Clearwater",
    "Bayside",
]
_ORG_KINDS = (
    ("hospital", "General Hospital"),
    ("clinic", "Clinic"),
    ("practice", "Family Practice"),
)
_SPECIALTIES = (
    "Family Medicine",
    "Internal Medicine",
    "Pediatrics",
    "Cardiology",
    "Endocrinology",
    "Emergency Medicine",
    "Pulmonology",
    "Psychiatry",
    "Dermatology",
    "Orthopedics",
)
# (class, weight, shortest and longest duration in minutes)
_ENCOUNTER_CLASSES = (
    ("ambulatory", 70, 15, 60),
    ("virtual", 12, 10, 30),
    ("emergency", 8, 60, 480),
    ("home", 5, 30, 90),
    ("inpatient", 5, 1440, 10080),
)
_ENCOUNTER_REASONS = (
    "Annual check-up",
    "Follow-up visit",
    "Chest pain",
    "Shortness of breath",
    "Fever",
    "Medication review",
    "Back pain",
    "Headache",
    "Abdominal pain",
    "Vaccination",
    None,
)
# (LOINC code, display, unit, low, high, decimals)
_NUMERIC_OBSERVATIONS = (
    ("8867-4", "Heart rate", "/min", 50.0, 110.0, 0),
    ("8480-6", "Systolic blood pressure", "mm[Hg]", 95.0, 170.0, 0),
    ("8462-4", "Diastolic blood pressure", "mm[Hg]", 55.0, 105.0, 0),
    ("8310-5", "Body temperature", "Cel", 36.0, 38.6, 1),
    ("29463-7", "Body weight", "kg", 45.0, 120.0, 1),
    ("8302-2", "Body height", "cm", 150.0, 195.0, 1),
    ("39156-5", "Body mass index", "kg/m2", 18.0, 38.0, 1),
    ("2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 70.0, 200.0, 0),
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.5, 10.0, 1),
    ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "%", 90.0, 100.0, 0),
    ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 140.0, 280.0, 0),
)
_TEXT_OBSERVATIONS = (
    ("72166-2", "Tobacco smoking status", ("Never smoker", "Former smoker", "Every day smoker")),
    ("11331-6", "History of Alcohol use", ("None", "Occasional", "Moderate", "Heavy")),
)
_CONDITIONS = (
    ("E11.9", "Type 2 diabetes mellitus without complications"),
    ("I10", "Essential (primary) hypertension"),
    ("J45.909", "Unspecified asthma, uncomplicated"),
    ("E78.5", "Hyperlipidemia, unspecified"),
    ("F41.1", "Generalized anxiety disorder"),
    ("M54.50", "Low back pain, unspecified"),
    ("K21.9", "Gastro-esophageal reflux disease without esophagitis"),
    ("J06.9", "Acute upper respiratory infection, unspecified"),
    ("N39.0", "Urinary tract infection, site not specified"),
    ("E66.9", "Obesity, unspecified"),
    ("F32.9", "Major depressive disorder, single episode, unspecified"),
    ("G43.909", "Migraine, unspecified, not intractable"),
)
_CHRONIC_STATUSES = ("active", "active", "active", "remission", "recurrence", "inactive")
_MEDICATIONS = (
    ("860975", "Metformin 500 MG Oral Tablet", "500 mg by mouth twice daily with meals"),
    ("314076", "Lisinopril 10 MG Oral Tablet", "10 mg by mouth once daily"),
    ("617310", "Atorvastatin 20 MG Oral Tablet", "20 mg by mouth at bedtime"),
    ("197361", "Amlodipine 5 MG Oral Tablet", "5 mg by mouth once daily"),
    ("745679", "Albuterol 90 MCG/ACTUAT Inhaler", "2 puffs every 4 to 6 hours as needed"),
    ("310965", "Ibuprofen 200 MG Oral Tablet", "400 mg by mouth every 6 hours as needed"),
    ("313782", "Acetaminophen 325 MG Oral Tablet", "650 mg by mouth every 6 hours as needed"),
    ("308182", "Amoxicillin 250 MG Oral Capsule", "500 mg by mouth three times daily for 10 days"),
    ("312940", "Sertraline 50 MG Oral Tablet", "50 mg by mouth once daily"),
    ("966222", "Levothyroxine 0.05 MG Oral Tablet", "50 mcg by mouth every morning"),
)
_MEDICATION_STATUSES = ("active", "active", "completed", "completed", "stopped", "on-hold")
_ALLERGENS = (
    ("Penicillin", "medication"),
    ("Sulfonamide", "medication"),
    ("Aspirin", "medication"),
    ("Peanut", "food"),
    ("Shellfish", "food"),
    ("Egg", "food"),
    ("Latex", "environment"),
    ("Grass pollen", "environment"),
    ("House dust mite", "environment"),
    ("Bovine insulin", "biologic"),
)
_REACTIONS = ("Hives", "Rash", "Anaphylaxis", "Wheezing", "Nausea", "Swelling", None)
_APPOINTMENT_REASONS = ("Follow-up", "Routine check-up", "Lab results", "Vaccination", None)
_CONSENT_SCOPES = ("treatment", "privacy", "research", "advance-directive")


@dataclass(frozen=True)
class SeedSummary:
    """What ``seed_database`` added: rows per table, in load order."""

    patients: int
    seed: int
    as_of: datetime
    rows: dict[str, int]
    seconds: float

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


@dataclass
class _Batch:
    """COPY text lines per table for one batch of patients."""

    lines: dict[str, list[str]] = field(default_factory=lambda: {t: [] for t in APPLICATION_TABLES})

    def add(self, table: str, *values: object) -> None:
        self.lines[table].append("\t".join(_copy_text(v) for v in values) + "\n")


def _copy_text(value: object) -> str:
    # Generated values never contain tabs, newlines or backslashes, so the COPY text
    # format needs no escaping beyond NULL.
    if value is None:
        return "\\N"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bool):
        return "t" if value else "f"
    return str(value)


_COLUMNS: dict[str, tuple[str, ...]] = {
    "organizations": ("id", "identifier", "name", "kind", "created_at"),
    "practitioners": (
        "id", "organization_id", "npi", "given_name", "family_name", "specialty", "active",
        "created_at",
    ),
    "patients": (
        "id", "organization_id", "mrn", "given_name", "family_name", "birth_date", "sex",
        "deceased_at", "phone", "created_at",
    ),
    "encounters": (
        "id", "patient_id", "practitioner_id", "organization_id", "encounter_class", "status",
        "started_at", "ended_at", "reason",
    ),
    "observations": (
        "id", "patient_id", "encounter_id", "loinc_code", "display", "status", "value_numeric",
        "value_text", "unit", "effective_at",
    ),
    "conditions": (
        "id", "patient_id", "encounter_id", "icd10_code", "description", "clinical_status",
        "onset_date", "abatement_date", "recorded_at",
    ),
    "medication_requests": (
        "id", "patient_id", "encounter_id", "requester_id", "rxnorm_code", "medication",
        "dosage_instruction", "status", "intent", "authored_at", "valid_from", "valid_until",
        "refills",
    ),
    "allergies": (
        "id", "patient_id", "substance", "category", "criticality", "clinical_status",
        "reaction", "recorded_at",
    ),
    "appointments": (
        "id", "patient_id", "practitioner_id", "status", "starts_at", "ends_at", "reason",
        "created_at",
    ),
    "consents": (
        "id", "patient_id", "organization_id", "scope", "status", "granted_at", "expires_at",
        "revoked_at", "document_reference",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class _Practitioner:
    id: int
    organization_id: int


class _Generator:
    """Draws every value from one ``random.Random``, so a seed fixes the whole data set."""

    def __init__(self, rng: random.Random, as_of: datetime, next_ids: dict[str, int]) -> None:
        self.rng = rng
        self.as_of = as_of
        self.today = as_of.date()
        self.next_ids = next_ids
        self.organizations: list[int] = []
        self.practitioners_by_org: dict[int, list[_Practitioner]] = {}

    def _id(self, table: str) -> int:
        value = self.next_ids[table]
        self.next_ids[table] = value + 1
        return value

    def _past(self, earliest: datetime, latest: datetime) -> datetime:
        span = max(int((latest - earliest).total_seconds()), 0)
        moment = earliest + timedelta(seconds=self.rng.randint(0, span))
        return moment.replace(microsecond=0)

    def staff(self, patients: int) -> _Batch:
        batch = _Batch()
        rng = self.rng
        for _ in range(max(2, -(-patients // 2500))):
            org_id = self._id("organizations")
            kind, suffix = rng.choice(_ORG_KINDS)
            created = self.as_of - timedelta(days=rng.randint(3650, 9000))
            batch.add(
                "organizations",
                org_id, f"ORG-{org_id:06d}", f"{rng.choice(_CITIES)} {suffix}", kind, created,
            )  # fmt: skip
            self.organizations.append(org_id)
            self.practitioners_by_org[org_id] = []
        for _ in range(max(5, patients // 50)):
            prac_id = self._id("practitioners")
            org_id = rng.choice(self.organizations)
            batch.add(
                "practitioners",
                prac_id, org_id, f"1{prac_id:09d}", rng.choice(_GIVEN), rng.choice(_FAMILY),
                rng.choice(_SPECIALTIES), rng.random() > 0.05,
                self.as_of - timedelta(days=rng.randint(30, 3650)),
            )  # fmt: skip
            self.practitioners_by_org[org_id].append(_Practitioner(prac_id, org_id))
        # An organization that drew no practitioner still needs someone to see patients.
        for staff in self.practitioners_by_org.values():
            if not staff:
                staff.extend(p for ps in self.practitioners_by_org.values() for p in ps[:1])
        return batch

    def patients(self, count: int) -> _Batch:
        batch = _Batch()
        for _ in range(count):
            self._patient(batch)
        return batch

    def _patient(self, batch: _Batch) -> None:
        rng = self.rng
        patient_id = self._id("patients")
        org_id = rng.choice(self.organizations)
        staff = self.practitioners_by_org[org_id]
        birth = self.today - timedelta(days=rng.randint(365, 95 * 365))
        born_at = datetime(birth.year, birth.month, birth.day, tzinfo=UTC)
        deceased_at = (
            self.as_of - timedelta(days=rng.randint(1, 7), minutes=rng.randint(0, 1440))
            if rng.random() < 0.01
            else None
        )
        history_start = max(born_at, self.as_of - timedelta(days=5 * 365))
        registered = self._past(history_start, self.as_of - timedelta(days=30))
        batch.add(
            "patients",
            patient_id, org_id, f"M{patient_id:09d}", rng.choice(_GIVEN), rng.choice(_FAMILY),
            birth, rng.choice(("female", "female", "male", "male", "other", "unknown")),
            deceased_at, f"555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}", registered,
        )  # fmt: skip

        encounters = self._encounters(batch, patient_id, org_id, staff, registered)
        self._conditions(batch, patient_id, born_at, encounters)
        self._medications(batch, patient_id, encounters)
        self._allergies(batch, patient_id, registered)
        self._appointments(batch, patient_id, staff, registered, deceased_at)
        self._consents(batch, patient_id, org_id, registered)

    def _encounters(
        self,
        batch: _Batch,
        patient_id: int,
        org_id: int,
        staff: Sequence[_Practitioner],
        registered: datetime,
    ) -> list[tuple[int, int, datetime]]:
        rng = self.rng
        made: list[tuple[int, int, datetime]] = []
        latest_start = self.as_of - timedelta(days=8)
        for _ in range(rng.randint(6, 14)):
            enc_id = self._id("encounters")
            practitioner = rng.choice(staff)
            klass, _weight, shortest, longest = rng.choices(
                _ENCOUNTER_CLASSES, weights=[c[1] for c in _ENCOUNTER_CLASSES]
            )[0]
            started = self._past(registered, latest_start)
            ended = started + timedelta(minutes=rng.randint(shortest, longest))
            status = "cancelled" if rng.random() < 0.03 else "finished"
            batch.add(
                "encounters",
                enc_id, patient_id, practitioner.id, org_id, klass, status, started, ended,
                rng.choice(_ENCOUNTER_REASONS),
            )  # fmt: skip
            made.append((enc_id, practitioner.id, started))
            for _ in range(rng.randint(1, 5)):
                self._observation(batch, patient_id, enc_id, started)
        return made

    def _observation(self, batch: _Batch, patient_id: int, enc_id: int, started: datetime) -> None:
        rng = self.rng
        obs_id = self._id("observations")
        effective = started + timedelta(minutes=rng.randint(0, 10))
        status = "final" if rng.random() < 0.95 else rng.choice(("preliminary", "amended"))
        if rng.random() < 0.9:
            code, display, unit, low, high, decimals = rng.choice(_NUMERIC_OBSERVATIONS)
            value = f"{rng.uniform(low, high):.{decimals}f}"
            batch.add(
                "observations",
                obs_id, patient_id, enc_id, code, display, status, value, None, unit, effective,
            )  # fmt: skip
        else:
            code, display, answers = rng.choice(_TEXT_OBSERVATIONS)
            batch.add(
                "observations",
                obs_id, patient_id, enc_id, code, display, status, None, rng.choice(answers),
                None, effective,
            )  # fmt: skip

    def _conditions(
        self,
        batch: _Batch,
        patient_id: int,
        born_at: datetime,
        encounters: Sequence[tuple[int, int, datetime]],
    ) -> None:
        rng = self.rng
        for code, description in rng.sample(_CONDITIONS, rng.randint(0, 6)):
            cond_id = self._id("conditions")
            encounter = rng.choice(encounters) if rng.random() < 0.7 else None
            if encounter is not None:
                recorded = encounter[2] + timedelta(minutes=rng.randint(5, 60))
                onset = (recorded - timedelta(days=rng.randint(0, 60))).date()
            else:
                recorded = self._past(born_at + timedelta(days=1), self.as_of - timedelta(days=1))
                onset = recorded.date()
            onset = max(onset, born_at.date())
            if rng.random() < 0.25:
                status, abatement = (
                    "resolved",
                    min(onset + timedelta(days=rng.randint(7, 120)), self.today),
                )
            else:
                status, abatement = rng.choice(_CHRONIC_STATUSES), None
            batch.add(
                "conditions",
                cond_id, patient_id, encounter[0] if encounter else None, code, description,
                status, onset, abatement, recorded,
            )  # fmt: skip

    def _medications(
        self, batch: _Batch, patient_id: int, encounters: Sequence[tuple[int, int, datetime]]
    ) -> None:
        rng = self.rng
        for _ in range(rng.randint(0, 6)):
            med_id = self._id("medication_requests")
            enc_id, requester_id, started = rng.choice(encounters)
            code, name, dosage = rng.choice(_MEDICATIONS)
            authored = started + timedelta(minutes=rng.randint(5, 45))
            valid_from = authored.date()
            batch.add(
                "medication_requests",
                med_id, patient_id, enc_id, requester_id, code, name, dosage,
                rng.choice(_MEDICATION_STATUSES), "order", authored, valid_from,
                valid_from + timedelta(days=rng.choice((10, 30, 90, 180, 365))),
                rng.randint(0, 5),
            )  # fmt: skip

    def _allergies(self, batch: _Batch, patient_id: int, registered: datetime) -> None:
        rng = self.rng
        count = rng.choices((0, 1, 2, 3), weights=(45, 30, 18, 7))[0]
        for substance, category in rng.sample(_ALLERGENS, count):
            batch.add(
                "allergies",
                self._id("allergies"), patient_id, substance, category,
                rng.choice(("low", "low", "high", "unable-to-assess")),
                rng.choice(("active", "active", "active", "inactive", "resolved")),
                rng.choice(_REACTIONS), self._past(registered, self.as_of - timedelta(days=1)),
            )  # fmt: skip

    def _appointments(
        self,
        batch: _Batch,
        patient_id: int,
        staff: Sequence[_Practitioner],
        registered: datetime,
        deceased_at: datetime | None,
    ) -> None:
        rng = self.rng
        for _ in range(rng.randint(1, 5)):
            future = rng.random() < 0.3
            day = (
                self.today + timedelta(days=rng.randint(1, 60))
                if future
                else self._past(registered, self.as_of - timedelta(days=2)).date()
            )
            starts = datetime(
                day.year, day.month, day.day, rng.randint(8, 16), rng.choice((0, 15, 30, 45)),
                tzinfo=UTC,
            )  # fmt: skip
            if future:
                status = "cancelled" if deceased_at or rng.random() < 0.1 else "booked"
            else:
                status = rng.choices(("fulfilled", "noshow", "cancelled"), weights=(85, 7, 8))[0]
            batch.add(
                "appointments",
                self._id("appointments"), patient_id, rng.choice(staff).id, status, starts,
                starts + timedelta(minutes=rng.choice((15, 20, 30, 45, 60))),
                rng.choice(_APPOINTMENT_REASONS),
                min(starts - timedelta(days=rng.randint(1, 30)), self.as_of),
            )  # fmt: skip

    def _consents(self, batch: _Batch, patient_id: int, org_id: int, registered: datetime) -> None:
        rng = self.rng
        for scope in rng.sample(_CONSENT_SCOPES, rng.randint(1, 3)):
            consent_id = self._id("consents")
            granted = registered + timedelta(minutes=rng.randint(0, 120))
            revoked = (
                self._past(granted + timedelta(days=1), self.as_of)
                if rng.random() < 0.08 and granted + timedelta(days=1) < self.as_of
                else None
            )
            batch.add(
                "consents",
                consent_id, patient_id, org_id, scope, "inactive" if revoked else "active",
                granted, granted + timedelta(days=365 * rng.randint(1, 5)), revoked,
                f"consents/{patient_id}/{consent_id}.pdf",
            )  # fmt: skip


def _next_ids(cur: psycopg.Cursor[Any]) -> dict[str, int]:
    ids: dict[str, int] = {}
    for table in APPLICATION_TABLES:
        cur.execute(
            sql.SQL("SELECT coalesce(max(id), 0) + 1 FROM {}").format(
                sql.Identifier("public", table)
            )
        )
        row = cur.fetchone()
        assert row is not None
        ids[table] = int(row[0])
    return ids


def _load(cur: psycopg.Cursor[Any], batch: _Batch, rows: dict[str, int]) -> None:
    for table in APPLICATION_TABLES:
        lines = batch.lines[table]
        if not lines:
            continue
        statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier("public", table),
            sql.SQL(", ").join(sql.Identifier(c) for c in _COLUMNS[table]),
        )
        with cur.copy(statement) as copy:
            for chunk in _chunks(lines, 2000):
                copy.write("".join(chunk))
        rows[table] += len(lines)


def _chunks(lines: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(lines), size):
        yield lines[start : start + size]


def _advance_sequences(cur: psycopg.Cursor[Any], next_ids: dict[str, int]) -> None:
    # COPY writes the ids itself, so the identity sequences must be moved past them.
    for table in APPLICATION_TABLES:
        if next_ids[table] > 1:
            cur.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)",
                (f"public.{table}", next_ids[table] - 1),
            )


def _default_as_of() -> datetime:
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def seed_database(
    target: psycopg.Connection[Any] | ConnInfo | str,
    patients: int,
    seed: int = 42,
    *,
    as_of: datetime | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> SeedSummary:
    """Add ``patients`` patients with related rows to a database at the head revision.

    ``target`` is an open connection (the rows are committed in a transaction on it), a
    ``ConnInfo`` or a libpq connection string. ``as_of`` (default: today 00:00 UTC) is the
    moment the history ends; it must not be in the future. ``on_progress(patients)`` is
    called as each batch of patients is loaded (they are committed together at the end).
    """
    if not 1 <= patients <= MAX_PATIENTS:
        raise ValueError(f"patients must be between 1 and {MAX_PATIENTS}, got {patients}")
    moment = as_of or _default_as_of()
    if moment.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    if moment > datetime.now(UTC):
        raise ValueError("as_of must not be in the future: check constraints refuse such rows")
    loaded = on_progress or (lambda _: None)
    if isinstance(target, psycopg.Connection):
        return _seed(target, patients, seed, moment, loaded)
    dsn = target.dsn() if isinstance(target, ConnInfo) else target
    with psycopg.connect(dsn) as conn:
        return _seed(conn, patients, seed, moment, loaded)


def _seed(
    conn: psycopg.Connection[Any],
    patients: int,
    seed: int,
    as_of: datetime,
    loaded: Callable[[int], None],
) -> SeedSummary:
    started = time.monotonic()
    rows = dict.fromkeys(APPLICATION_TABLES, 0)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("SELECT set_config('dbkeeper.actor', %s, true)", (SEED_ACTOR,))
        next_ids = _next_ids(cur)
        generator = _Generator(random.Random(seed), as_of, next_ids)  # noqa: S311 - test data, not secrets
        _load(cur, generator.staff(patients), rows)
        sizes = [
            min(PATIENTS_PER_BATCH, patients - done)
            for done in range(0, patients, PATIENTS_PER_BATCH)
        ]
        # The next batch is generated in a thread while the server loads (and audits) the
        # current one: the client's work then hides behind the server's.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dbkeeper-seed") as pool:
            pending = pool.submit(generator.patients, sizes[0])
            for done, size in itertools.pairwise(sizes):
                batch = pending.result()
                pending = pool.submit(generator.patients, size)
                _load(cur, batch, rows)
                loaded(done)
            _load(cur, pending.result(), rows)
            loaded(sizes[-1])
        _advance_sequences(cur, next_ids)
    return SeedSummary(
        patients=patients,
        seed=seed,
        as_of=as_of,
        rows=rows,
        seconds=round(time.monotonic() - started, 3),
    )
