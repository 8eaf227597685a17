"""Organizations and the practitioners who work for them.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organizations",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("identifier", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_organizations"),
        sa.UniqueConstraint("identifier", name="uq_organizations_identifier"),
        sa.CheckConstraint(
            "kind IN ('hospital', 'clinic', 'practice', 'laboratory', 'pharmacy')",
            name=op.f("ck_organizations_kind_known"),
        ),
        sa.CheckConstraint("length(btrim(name)) > 0", name=op.f("ck_organizations_name_not_blank")),
    )
    op.create_table(
        "practitioners",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("organization_id", sa.BigInteger(), nullable=False),
        sa.Column("npi", sa.Text(), nullable=False),
        sa.Column("given_name", sa.Text(), nullable=False),
        sa.Column("family_name", sa.Text(), nullable=False),
        sa.Column("specialty", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_practitioners"),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name="fk_practitioners_organization_id_organizations",
            ondelete="RESTRICT",
        ),
        sa.UniqueConstraint("npi", name="uq_practitioners_npi"),
        sa.CheckConstraint("npi ~ '^[0-9]{10}$'", name=op.f("ck_practitioners_npi_ten_digits")),
        sa.CheckConstraint(
            "length(btrim(family_name)) > 0", name=op.f("ck_practitioners_family_name_not_blank")
        ),
    )
    op.create_index("ix_practitioners_organization_id", "practitioners", ["organization_id"])


def downgrade() -> None:
    op.drop_index("ix_practitioners_organization_id", table_name="practitioners")
    op.drop_table("practitioners")
    op.drop_table("organizations")
