"""Bound consent: wrong consent codes counted per member (lock-out) and per acquirer (rate).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 03:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "consent_guards",
        sa.Column("member_pk", _ID, nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("failures >= 0", name=op.f("ck_consent_guards_failures_non_negative")),
        sa.ForeignKeyConstraint(
            ["member_pk"], ["members.id"], name=op.f("fk_consent_guards_member_pk_members")
        ),
        sa.PrimaryKeyConstraint("member_pk", name=op.f("pk_consent_guards")),
    )
    op.create_table(
        "consent_acquirer_failures",
        sa.Column("acquirer_id", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "failures >= 0", name=op.f("ck_consent_acquirer_failures_failures_non_negative")
        ),
        sa.PrimaryKeyConstraint("acquirer_id", name=op.f("pk_consent_acquirer_failures")),
    )


def downgrade() -> None:
    op.drop_table("consent_acquirer_failures")
    op.drop_table("consent_guards")
