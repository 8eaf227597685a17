"""Encounters and the observations (LOINC-coded measurements) made during them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
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
        "encounters",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("practitioner_id", sa.BigInteger(), nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.Column("encounter_class", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_encounters"),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name="fk_encounters_patient_id_patients",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"],
            ["practitioners.id"],
            name="fk_encounters_practitioner_id_practitioners",
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_encounters_organization_id_organizations",
            ondelete="RESTRICT",
        ),
        sa.CheckConstraint(
            "encounter_class IN ('ambulatory', 'emergency', 'inpatient', 'virtual', 'home')",
            name=op.f("ck_encounters_class_known"),
        ),
        sa.CheckConstraint(
            "status IN ('planned', 'in-progress', 'finished', 'cancelled')",
            name=op.f("ck_encounters_status_known"),
        ),
        sa.CheckConstraint(
            "status = 'planned' OR started_at <= now()",
            name=op.f("ck_encounters_started_at_not_future"),
        ),
        sa.CheckConstraint(
            "ended_at >= started_at", name=op.f("ck_encounters_ended_after_started")
        ),
        sa.CheckConstraint(
            "status <> 'finished' OR ended_at IS NOT NULL",
            name=op.f("ck_encounters_finished_has_end"),
        ),
    )
    op.create_index(
        "ix_encounters_patient_id_started_at", "encounters", ["patient_id", "started_at"]
    )
    op.create_index(
        "ix_encounters_practitioner_id_started_at", "encounters", ["practitioner_id", "started_at"]
    )
    op.create_index("ix_encounters_organization_id", "encounters", ["organization_id"])
    _attach_audit("encounters")

    op.create_table(
        "observations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("encounter_id", sa.BigInteger(), nullable=True),
        sa.Column("loinc_code", sa.Text(), nullable=False),
        sa.Column("display", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("value_numeric", sa.Numeric(), nullable=True),
        sa.Column("value_text", sa.Text(), nullable=True),
        sa.Column("unit", sa.Text(), nullable=True),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_observations"),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name="fk_observations_patient_id_patients",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["encounters.id"],
            name="fk_observations_encounter_id_encounters",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "loinc_code ~ '^[0-9]{1,7}-[0-9]$'", name=op.f("ck_observations_loinc_code_format")
        ),
        sa.CheckConstraint(
            "status IN ('registered', 'preliminary', 'final', 'amended', 'cancelled')",
            name=op.f("ck_observations_status_known"),
        ),
        sa.CheckConstraint(
            "num_nonnulls(value_numeric, value_text) = 1", name=op.f("ck_observations_one_value")
        ),
        sa.CheckConstraint(
            "value_numeric IS NULL OR unit IS NOT NULL",
            name=op.f("ck_observations_number_has_unit"),
        ),
        sa.CheckConstraint(
            "effective_at <= now()", name=op.f("ck_observations_effective_at_not_future")
        ),
    )
    op.create_index(
        "ix_observations_patient_id_effective_at", "observations", ["patient_id", "effective_at"]
    )
    op.create_index("ix_observations_encounter_id", "observations", ["encounter_id"])
    _attach_audit("observations")


def downgrade() -> None:
    _detach_audit("observations")
    op.drop_index("ix_observations_encounter_id", table_name="observations")
    op.drop_index("ix_observations_patient_id_effective_at", table_name="observations")
    op.drop_table("observations")
    _detach_audit("encounters")
    op.drop_index("ix_encounters_organization_id", table_name="encounters")
    op.drop_index("ix_encounters_practitioner_id_started_at", table_name="encounters")
    op.drop_index("ix_encounters_patient_id_started_at", table_name="encounters")
    op.drop_table("encounters")
