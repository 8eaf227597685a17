"""The problem list: conditions (ICD-10), medication requests (RxNorm) and allergies.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _attach_audit(table: str) -> None:
    """Every insert, update and delete on ``table`` appends to the audit trail; TRUNCATE
    is refused because it would remove rows without recording them."""
    op.execute(
        f"CREATE TRIGGER audit_insert AFTER INSERT ON public.{table} "
        "REFERENCING NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit.record_changes()"
    )
    op.execute(
        f"CREATE TRIGGER audit_update AFTER UPDATE ON public.{table} "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit.record_changes()"
    )
    op.execute(
        f"CREATE TRIGGER audit_delete AFTER DELETE ON public.{table} "
        "REFERENCING OLD TABLE AS old_rows "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit.record_changes()"
    )
    op.execute(
        f"CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON public.{table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()"
    )


def _detach_audit(table: str) -> None:
    for trigger in ("audit_no_truncate", "audit_delete", "audit_update", "audit_insert"):
        op.execute(f"DROP TRIGGER {trigger} ON public.{table}")


def upgrade() -> None:
    op.create_table(
        "conditions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("encounter_id", sa.BigInteger(), nullable=True),
        sa.Column("icd10_code", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("clinical_status", sa.Text(), nullable=False),
        sa.Column("onset_date", sa.Date(), nullable=True),
        sa.Column("abatement_date", sa.Date(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_conditions"),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name="fk_conditions_patient_id_patients",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["encounters.id"],
            name="fk_conditions_encounter_id_encounters",
            ondelete="SET NULL",
        ),
        sa.CheckConstraint(
            "icd10_code ~ '^[A-TV-Z][0-9][0-9AB](\\.[0-9A-TV-Z]{1,4})?$'",
            name=op.f("ck_conditions_icd10_code_format"),
        ),
        sa.CheckConstraint(
            "clinical_status IN ('active', 'recurrence', 'relapse', 'inactive', 'remission', 'resolved')",
            name=op.f("ck_conditions_status_known"),
        ),
        sa.CheckConstraint(
            "onset_date <= CURRENT_DATE", name=op.f("ck_conditions_onset_not_future")
        ),
        sa.CheckConstraint(
            "abatement_date >= onset_date", name=op.f("ck_conditions_abatement_after_onset")
        ),
        sa.CheckConstraint(
            "recorded_at <= now()", name=op.f("ck_conditions_recorded_at_not_future")
        ),
    )
    op.create_index(
        "ix_conditions_patient_id_onset_date", "conditions", ["patient_id", "onset_date"]
    )
    op.create_index("ix_conditions_encounter_id", "conditions", ["encounter_id"])
    op.create_index("ix_conditions_icd10_code", "conditions", ["icd10_code"])
    _attach_audit("conditions")

    op.create_table(
        "medication_requests",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("encounter_id", sa.BigInteger(), nullable=True),
        sa.Column("requester_id", sa.BigInteger(), nullable=False),
        sa.Column("rxnorm_code", sa.Text(), nullable=False),
        sa.Column("medication", sa.Text(), nullable=False),
        sa.Column("dosage_instruction", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("intent", sa.Text(), nullable=False),
        sa.Column("authored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("refills", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_medication_requests"),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name="fk_medication_requests_patient_id_patients",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["encounters.id"],
            name="fk_medication_requests_encounter_id_encounters",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["requester_id"],
            ["practitioners.id"],
            name="fk_medication_requests_requester_id_practitioners",
            ondelete="RESTRICT",
        ),
        sa.CheckConstraint(
            "rxnorm_code ~ '^[0-9]{2,8}$'", name=op.f("ck_medication_requests_rxnorm_code_format")
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'active', 'on-hold', 'completed', 'stopped', 'cancelled')",
            name=op.f("ck_medication_requests_status_known"),
        ),
        sa.CheckConstraint(
            "intent IN ('proposal', 'plan', 'order')",
            name=op.f("ck_medication_requests_intent_known"),
        ),
        sa.CheckConstraint(
            "authored_at <= now()", name=op.f("ck_medication_requests_authored_at_not_future")
        ),
        sa.CheckConstraint(
            "valid_until >= valid_from", name=op.f("ck_medication_requests_valid_until_after_from")
        ),
        sa.CheckConstraint(
            "refills BETWEEN 0 AND 12", name=op.f("ck_medication_requests_refills_range")
        ),
    )
    op.create_index(
        "ix_medication_requests_patient_id_authored_at",
        "medication_requests",
        ["patient_id", "authored_at"],
    )
    op.create_index("ix_medication_requests_encounter_id", "medication_requests", ["encounter_id"])
    op.create_index("ix_medication_requests_requester_id", "medication_requests", ["requester_id"])
    _attach_audit("medication_requests")

    op.create_table(
        "allergies",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("substance", sa.Text(), nullable=False),
        sa.Column("category", sa.Text(), nullable=False),
        sa.Column("criticality", sa.Text(), nullable=False),
        sa.Column("clinical_status", sa.Text(), nullable=False),
        sa.Column("reaction", sa.Text(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_allergies"),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name="fk_allergies_patient_id_patients",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("patient_id", "substance", name="uq_allergies_patient_id_substance"),
        sa.CheckConstraint(
            "category IN ('food', 'medication', 'environment', 'biologic')",
            name=op.f("ck_allergies_category_known"),
        ),
        sa.CheckConstraint(
            "criticality IN ('low', 'high', 'unable-to-assess')",
            name=op.f("ck_allergies_criticality_known"),
        ),
        sa.CheckConstraint(
            "clinical_status IN ('active', 'inactive', 'resolved')",
            name=op.f("ck_allergies_status_known"),
        ),
        sa.CheckConstraint(
            "recorded_at <= now()", name=op.f("ck_allergies_recorded_at_not_future")
        ),
        sa.CheckConstraint(
            "length(btrim(substance)) > 0", name=op.f("ck_allergies_substance_not_blank")
        ),
    )
    _attach_audit("allergies")


def downgrade() -> None:
    _detach_audit("allergies")
    op.drop_table("allergies")
    _detach_audit("medication_requests")
    op.drop_index("ix_medication_requests_requester_id", table_name="medication_requests")
    op.drop_index("ix_medication_requests_encounter_id", table_name="medication_requests")
    op.drop_index("ix_medication_requests_patient_id_authored_at", table_name="medication_requests")
    op.drop_table("medication_requests")
    _detach_audit("conditions")
    op.drop_index("ix_conditions_icd10_code", table_name="conditions")
    op.drop_index("ix_conditions_encounter_id", table_name="conditions")
    op.drop_index("ix_conditions_patient_id_onset_date", table_name="conditions")
    op.drop_table("conditions")
