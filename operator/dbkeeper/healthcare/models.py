"""Typed SQLAlchemy models of every table and column of the healthcare reference schema.

These models are the schema's description for code (queries, autogenerate comparisons);
the migration set in ``migrations/healthcare`` is what creates it, one revision at a
time, and a test checks that both agree. Constraint names follow ``NAMING_CONVENTION``
so every constraint has a predictable name that errors and tests can refer to.

Deliberate ``ON DELETE`` behaviour: removing a patient removes their clinical records
(``CASCADE``, each removed row still lands in the audit trail); organizations and
practitioners cannot be removed while records point at them (``RESTRICT``), because the
record of who treated a patient must survive; an encounter's removal detaches the
conditions and medication requests recorded during it (``SET NULL``) but removes its
observations (``CASCADE``), which make no sense without it.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Numeric,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

AUDIT_SCHEMA = "audit"

# Tables whose rows describe a patient: each has the audit triggers (insert, update,
# delete) and is what the roles and pgaudit configuration treat as protected data.
PATIENT_DATA_TABLES: tuple[str, ...] = (
    "patients",
    "encounters",
    "observations",
    "conditions",
    "medication_requests",
    "allergies",
    "appointments",
    "consents",
)

# Every table of the application, parents before children (the order to load data in).
APPLICATION_TABLES: tuple[str, ...] = ("organizations", "practitioners", *PATIENT_DATA_TABLES)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        str: Text(),
        int: BigInteger(),
        bool: Boolean(),
        date: Date(),
        datetime: DateTime(timezone=True),
        Decimal: Numeric(),
    }


metadata = Base.metadata


def _identity() -> Identity:
    return Identity(always=True)


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


ORGANIZATION_KINDS = ("hospital", "clinic", "practice", "laboratory", "pharmacy")
SEXES = ("female", "male", "other", "unknown")
ENCOUNTER_CLASSES = ("ambulatory", "emergency", "inpatient", "virtual", "home")
ENCOUNTER_STATUSES = ("planned", "in-progress", "finished", "cancelled")
OBSERVATION_STATUSES = ("registered", "preliminary", "final", "amended", "cancelled")
CONDITION_STATUSES = ("active", "recurrence", "relapse", "inactive", "remission", "resolved")
MEDICATION_STATUSES = ("draft", "active", "on-hold", "completed", "stopped", "cancelled")
MEDICATION_INTENTS = ("proposal", "plan", "order")
ALLERGY_CATEGORIES = ("food", "medication", "environment", "biologic")
ALLERGY_CRITICALITIES = ("low", "high", "unable-to-assess")
ALLERGY_STATUSES = ("active", "inactive", "resolved")
APPOINTMENT_STATUSES = ("proposed", "booked", "arrived", "fulfilled", "cancelled", "noshow")
CONSENT_SCOPES = ("treatment", "research", "privacy", "advance-directive")
CONSENT_STATUSES = ("draft", "active", "inactive", "rejected")
AUDIT_ACTIONS = ("INSERT", "UPDATE", "DELETE")


class Organization(Base):
    __tablename__ = "organizations"
    __table_args__ = (
        UniqueConstraint("identifier"),
        CheckConstraint(_in("kind", ORGANIZATION_KINDS), name="kind_known"),
        CheckConstraint("length(btrim(name)) > 0", name="name_not_blank"),
    )

    id: Mapped[int] = mapped_column(_identity(), primary_key=True)
    identifier: Mapped[str]
    name: Mapped[str]
    kind: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Practitioner(Base):
    __tablename__ = "practitioners"
    __table_args__ = (
        UniqueConstraint("npi"),
        CheckConstraint("npi ~ '^[0-9]{10}$'", name="npi_ten_digits"),
        CheckConstraint("length(btrim(family_name)) > 0", name="family_name_not_blank"),
    )

    id: Mapped[int] = mapped_column(_identity(), primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    npi: Mapped[str]
    given_name: Mapped[str]
    family_name: Mapped[str]
    specialty: Mapped[str]
    active: Mapped[bool] = mapped_column(server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Patient(Base):
    __tablename__ = "patients"
    __table_args__ = (
        UniqueConstraint("organization_id", "mrn"),
        Index(None, "family_name", "birth_date"),
        CheckConstraint("mrn ~ '^[A-Z0-9-]{4,20}$'", name="mrn_format"),
        CheckConstraint("birth_date <= CURRENT_DATE", name="birth_date_not_future"),
        CheckConstraint("birth_date >= DATE '1900-01-01'", name="birth_date_plausible"),
        CheckConstraint(_in("sex", SEXES), name="sex_known"),
        CheckConstraint("deceased_at <= now()", name="deceased_at_not_future"),
        CheckConstraint("deceased_at::date >= birth_date", name="deceased_after_birth"),
        CheckConstraint("length(btrim(family_name)) > 0", name="family_name_not_blank"),
    )

    id: Mapped[int] = mapped_column(_identity(), primary_key=True)
    # Leading column of the (organization_id, mrn) unique index, which serves its FK.
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT")
    )
    mrn: Mapped[str]
    given_name: Mapped[str]
    family_name: Mapped[str]
    birth_date: Mapped[date]
    sex: Mapped[str]
    deceased_at: Mapped[datetime | None]
    phone: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Encounter(Base):
    __tablename__ = "encounters"
    __table_args__ = (
        Index(None, "patient_id", "started_at"),
        Index(None, "practitioner_id", "started_at"),
        CheckConstraint(_in("encounter_class", ENCOUNTER_CLASSES), name="class_known"),
        CheckConstraint(_in("status", ENCOUNTER_STATUSES), name="status_known"),
        CheckConstraint("status = 'planned' OR started_at <= now()", name="started_at_not_future"),
        CheckConstraint("ended_at >= started_at", name="ended_after_started"),
        CheckConstraint("status <> 'finished' OR ended_at IS NOT NULL", name="finished_has_end"),
    )

    id: Mapped[int] = mapped_column(_identity(), primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    practitioner_id: Mapped[int] = mapped_column(
        ForeignKey("practitioners.id", ondelete="RESTRICT")
    )
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    encounter_class: Mapped[str]
    status: Mapped[str]
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    reason: Mapped[str | None]


class Observation(Base):
    __tablename__ = "observations"
    __table_args__ = (
        Index(None, "patient_id", "effective_at"),
        CheckConstraint("loinc_code ~ '^[0-9]{1,7}-[0-9]$'", name="loinc_code_format"),
        CheckConstraint(_in("status", OBSERVATION_STATUSES), name="status_known"),
        CheckConstraint("num_nonnulls(value_numeric, value_text) = 1", name="one_value"),
        CheckConstraint("value_numeric IS NULL OR unit IS NOT NULL", name="number_has_unit"),
        CheckConstraint("effective_at <= now()", name="effective_at_not_future"),
    )

    id: Mapped[int] = mapped_column(_identity(), primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    encounter_id: Mapped[int | None] = mapped_column(
        ForeignKey("encounters.id", ondelete="CASCADE"), index=True
    )
    loinc_code: Mapped[str]
    display: Mapped[str]
    status: Mapped[str]
    value_numeric: Mapped[Decimal | None]
    value_text: Mapped[str | None]
    unit: Mapped[str | None]
    effective_at: Mapped[datetime]


class Condition(Base):
    __tablename__ = "conditions"
    __table_args__ = (
        Index(None, "patient_id", "onset_date"),
        Index(None, "icd10_code"),
        CheckConstraint(
            "icd10_code ~ '^[A-TV-Z][0-9][0-9AB](\\.[0-9A-TV-Z]{1,4})?$'",
            name="icd10_code_format",
        ),
        CheckConstraint(_in("clinical_status", CONDITION_STATUSES), name="status_known"),
        CheckConstraint("onset_date <= CURRENT_DATE", name="onset_not_future"),
        CheckConstraint("abatement_date >= onset_date", name="abatement_after_onset"),
        CheckConstraint("recorded_at <= now()", name="recorded_at_not_future"),
    )

    id: Mapped[int] = mapped_column(_identity(), primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    encounter_id: Mapped[int | None] = mapped_column(
        ForeignKey("encounters.id", ondelete="SET NULL"), index=True
    )
    icd10_code: Mapped[str]
    description: Mapped[str]
    clinical_status: Mapped[str]
    onset_date: Mapped[date | None]
    abatement_date: Mapped[date | None]
    recorded_at: Mapped[datetime]


class MedicationRequest(Base):
    __tablename__ = "medication_requests"
    __table_args__ = (
        Index(None, "patient_id", "authored_at"),
        CheckConstraint("rxnorm_code ~ '^[0-9]{2,8}$'", name="rxnorm_code_format"),
        CheckConstraint(_in("status", MEDICATION_STATUSES), name="status_known"),
        CheckConstraint(_in("intent", MEDICATION_INTENTS), name="intent_known"),
        CheckConstraint("authored_at <= now()", name="authored_at_not_future"),
        CheckConstraint("valid_until >= valid_from", name="valid_until_after_from"),
        CheckConstraint("refills BETWEEN 0 AND 12", name="refills_range"),
    )

    id: Mapped[int] = mapped_column(_identity(), primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    encounter_id: Mapped[int | None] = mapped_column(
        ForeignKey("encounters.id", ondelete="SET NULL"), index=True
    )
    requester_id: Mapped[int] = mapped_column(
        ForeignKey("practitioners.id", ondelete="RESTRICT"), index=True
    )
    rxnorm_code: Mapped[str]
    medication: Mapped[str]
    dosage_instruction: Mapped[str]
    status: Mapped[str]
    intent: Mapped[str]
    authored_at: Mapped[datetime]
    valid_from: Mapped[date | None]
    valid_until: Mapped[date | None]
    refills: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class Allergy(Base):
    __tablename__ = "allergies"
    __table_args__ = (
        UniqueConstraint("patient_id", "substance"),
        CheckConstraint(_in("category", ALLERGY_CATEGORIES), name="category_known"),
        CheckConstraint(_in("criticality", ALLERGY_CRITICALITIES), name="criticality_known"),
        CheckConstraint(_in("clinical_status", ALLERGY_STATUSES), name="status_known"),
        CheckConstraint("recorded_at <= now()", name="recorded_at_not_future"),
        CheckConstraint("length(btrim(substance)) > 0", name="substance_not_blank"),
    )

    id: Mapped[int] = mapped_column(_identity(), primary_key=True)
    # Leading column of the (patient_id, substance) unique index, which serves its FK.
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    substance: Mapped[str]
    category: Mapped[str]
    criticality: Mapped[str]
    clinical_status: Mapped[str]
    reaction: Mapped[str | None]
    recorded_at: Mapped[datetime]


class Appointment(Base):
    __tablename__ = "appointments"
    __table_args__ = (
        Index(None, "patient_id", "starts_at"),
        Index(None, "practitioner_id", "starts_at"),
        CheckConstraint(_in("status", APPOINTMENT_STATUSES), name="status_known"),
        CheckConstraint("ends_at > starts_at", name="ends_after_starts"),
        CheckConstraint(
            "status IN ('proposed', 'booked', 'cancelled') OR starts_at <= now()",
            name="attended_not_future",
        ),
    )

    id: Mapped[int] = mapped_column(_identity(), primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    practitioner_id: Mapped[int] = mapped_column(
        ForeignKey("practitioners.id", ondelete="RESTRICT")
    )
    status: Mapped[str]
    starts_at: Mapped[datetime]
    ends_at: Mapped[datetime]
    reason: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class Consent(Base):
    __tablename__ = "consents"
    __table_args__ = (
        Index(None, "patient_id", "scope"),
        CheckConstraint(_in("scope", CONSENT_SCOPES), name="scope_known"),
        CheckConstraint(_in("status", CONSENT_STATUSES), name="status_known"),
        CheckConstraint("granted_at <= now()", name="granted_at_not_future"),
        CheckConstraint("expires_at > granted_at", name="expires_after_granted"),
        CheckConstraint(
            "revoked_at >= granted_at AND revoked_at <= now()", name="revoked_at_in_range"
        ),
        CheckConstraint(
            "revoked_at IS NULL OR status IN ('inactive', 'rejected')",
            name="revoked_not_active",
        ),
    )

    id: Mapped[int] = mapped_column(_identity(), primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="RESTRICT"), index=True
    )
    scope: Mapped[str]
    status: Mapped[str]
    granted_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    document_reference: Mapped[str | None]


class AuditLog(Base):
    """One audited change of one row: append-only, with its own content hash, sealed
    into a batch once its transaction is final (see ``audit`` and revision 0007).

    Rows written before revision 0007 carry the v1 chain links (``prev_hash``,
    ``row_hash``) instead of a ``content_hash``; batch 0 anchors that chain."""

    __tablename__ = "log"
    __table_args__ = (
        Index(None, "patient_id", "id"),
        Index(None, "txid", postgresql_using="brin"),
        CheckConstraint(_in("action", AUDIT_ACTIONS), name="action_known"),
        CheckConstraint(
            "length(prev_hash) = 64 AND prev_hash ~ '^[0-9a-f]+$'", name="prev_hash_format"
        ),
        CheckConstraint(
            "length(row_hash) = 64 AND row_hash ~ '^[0-9a-f]+$'", name="row_hash_format"
        ),
        CheckConstraint(
            "length(content_hash) = 64 AND content_hash ~ '^[0-9a-f]+$'",
            name="content_hash_format",
        ),
        CheckConstraint(
            "(content_hash IS NULL AND prev_hash IS NOT NULL AND row_hash IS NOT NULL) OR "
            "(content_hash IS NOT NULL AND prev_hash IS NULL AND row_hash IS NULL)",
            name="one_hash_form",
        ),
        {"schema": AUDIT_SCHEMA},
    )

    id: Mapped[int] = mapped_column(_identity(), primary_key=True)
    table_name: Mapped[str]
    row_key: Mapped[str]
    action: Mapped[str]
    old_values: Mapped[dict[str, object] | None] = mapped_column(JSONB)
    new_values: Mapped[dict[str, object] | None] = mapped_column(JSONB)
    actor: Mapped[str]
    txid: Mapped[int]
    occurred_at: Mapped[datetime]
    prev_hash: Mapped[str | None]
    row_hash: Mapped[str | None]
    patient_id: Mapped[int | None]
    content_hash: Mapped[str | None]


class AuditSealBatch(Base):
    """One seal: the snapshot it took, the rows it linked and its place in the chain."""

    __tablename__ = "seal_batch"
    __table_args__ = (
        CheckConstraint("batch >= 0", name="batch_not_negative"),
        CheckConstraint(
            "length(batch_hash) = 64 AND batch_hash ~ '^[0-9a-f]+$'", name="batch_hash_format"
        ),
        {"schema": AUDIT_SCHEMA},
    )

    batch: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    snapshot: Mapped[str]
    row_count: Mapped[int]
    total_rows: Mapped[int]
    rows_digest: Mapped[str]
    prev_hash: Mapped[str]
    batch_hash: Mapped[str]
    sealed_at: Mapped[datetime]
    v1_last_id: Mapped[int | None]
    v1_last_hash: Mapped[str | None]


class AuditSealedXact(Base):
    """Which batch sealed the rows of one transaction (written just before the batch
    row itself, so there is no foreign key; the verifiers check that the batch exists)."""

    __tablename__ = "sealed_xact"
    __table_args__ = ({"schema": AUDIT_SCHEMA},)

    txid: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    batch: Mapped[int] = mapped_column(index=True)
