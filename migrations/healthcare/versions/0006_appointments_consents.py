"""Scheduling and permission: appointments with practitioners, and patient consents.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
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
        "appointments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("practitioner_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_appointments"),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name="fk_appointments_patient_id_patients",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["practitioner_id"],
            ["practitioners.id"],
            name="fk_appointments_practitioner_id_practitioners",
            ondelete="RESTRICT",
        ),
        sa.CheckConstraint(
            "status IN ('proposed', 'booked', 'arrived', 'fulfilled', 'cancelled', 'noshow')",
            name=op.f("ck_appointments_status_known"),
        ),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_appointments_ends_after_starts")),
        sa.CheckConstraint(
            "status IN ('proposed', 'booked', 'cancelled') OR starts_at <= now()",
            name=op.f("ck_appointments_attended_not_future"),
        ),
    )
    op.create_index(
        "ix_appointments_patient_id_starts_at", "appointments", ["patient_id", "starts_at"]
    )
    op.create_index(
        "ix_appointments_practitioner_id_starts_at",
        "appointments",
        ["practitioner_id", "starts_at"],
    )
    _attach_audit("appointments")

    op.create_table(
        "consents",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("document_reference", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_consents"),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name="fk_consents_patient_id_patients",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_consents_organization_id_organizations",
            ondelete="RESTRICT",
        ),
        sa.CheckConstraint(
            "scope IN ('treatment', 'research', 'privacy', 'advance-directive')",
            name=op.f("ck_consents_scope_known"),
        ),
        sa.CheckConstraint(
            "status IN ('draft', 'active', 'inactive', 'rejected')",
            name=op.f("ck_consents_status_known"),
        ),
        sa.CheckConstraint("granted_at <= now()", name=op.f("ck_consents_granted_at_not_future")),
        sa.CheckConstraint(
            "expires_at > granted_at", name=op.f("ck_consents_expires_after_granted")
        ),
        sa.CheckConstraint(
            "revoked_at >= granted_at AND revoked_at <= now()",
            name=op.f("ck_consents_revoked_at_in_range"),
        ),
        sa.CheckConstraint(
            "revoked_at IS NULL OR status IN ('inactive', 'rejected')",
            name=op.f("ck_consents_revoked_not_active"),
        ),
    )
    op.create_index("ix_consents_patient_id_scope", "consents", ["patient_id", "scope"])
    op.create_index("ix_consents_organization_id", "consents", ["organization_id"])
    _attach_audit("consents")


def downgrade() -> None:
    _detach_audit("consents")
    op.drop_index("ix_consents_organization_id", table_name="consents")
    op.drop_index("ix_consents_patient_id_scope", table_name="consents")
    op.drop_table("consents")
    _detach_audit("appointments")
    op.drop_index("ix_appointments_practitioner_id_starts_at", table_name="appointments")
    op.drop_index("ix_appointments_patient_id_starts_at", table_name="appointments")
    op.drop_table("appointments")
