"""Patients, identified by a medical record number unique within their organization.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
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
        "patients",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.Column("mrn", sa.Text(), nullable=False),
        sa.Column("given_name", sa.Text(), nullable=False),
        sa.Column("family_name", sa.Text(), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("sex", sa.Text(), nullable=False),
        sa.Column("deceased_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_patients"),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_patients_organization_id_organizations",
            ondelete="RESTRICT",
        ),
        sa.UniqueConstraint("organization_id", "mrn", name="uq_patients_organization_id_mrn"),
        sa.CheckConstraint("mrn ~ '^[A-Z0-9-]{4,20}$'", name=op.f("ck_patients_mrn_format")),
        sa.CheckConstraint(
            "birth_date <= CURRENT_DATE", name=op.f("ck_patients_birth_date_not_future")
        ),
        sa.CheckConstraint(
            "birth_date >= DATE '1900-01-01'", name=op.f("ck_patients_birth_date_plausible")
        ),
        sa.CheckConstraint(
            "sex IN ('female', 'male', 'other', 'unknown')", name=op.f("ck_patients_sex_known")
        ),
        sa.CheckConstraint("deceased_at <= now()", name=op.f("ck_patients_deceased_at_not_future")),
        sa.CheckConstraint(
            "deceased_at::date >= birth_date", name=op.f("ck_patients_deceased_after_birth")
        ),
        sa.CheckConstraint(
            "length(btrim(family_name)) > 0", name=op.f("ck_patients_family_name_not_blank")
        ),
    )
    op.create_index("ix_patients_family_name_birth_date", "patients", ["family_name", "birth_date"])
    _attach_audit("patients")


def downgrade() -> None:
    _detach_audit("patients")
    op.drop_index("ix_patients_family_name_birth_date", table_name="patients")
    op.drop_table("patients")
