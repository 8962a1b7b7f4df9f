"""Cross-merchant redemption: members' wallet secrets, consent uses, receivables.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 19:19:48.856954
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cross_redemptions",
        sa.Column("authorization_id", sa.String(length=64), nullable=False),
        sa.Column("issuer_id", sa.String(length=64), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("order_id", sa.String(length=64), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("value_fen", sa.BigInteger(), nullable=False),
        sa.Column("fee_fen", sa.BigInteger(), nullable=False),
        sa.Column("rate_version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("authorized_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hold_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("captured_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("clearing_id", sa.String(length=64), nullable=True),
        sa.Column("settlement_period", sa.String(length=10), nullable=True),
        sa.Column("exchange_receipt", sa.LargeBinary(), nullable=True),
        sa.CheckConstraint(
            "status IN ('authorized', 'captured', 'voided')",
            name=op.f("ck_cross_redemptions_status_known"),
        ),
        sa.CheckConstraint("points > 0", name=op.f("ck_cross_redemptions_points_positive")),
        sa.CheckConstraint(
            "value_fen >= 0 AND fee_fen >= 0 AND fee_fen <= value_fen",
            name=op.f("ck_cross_redemptions_value_in_range"),
        ),
        sa.PrimaryKeyConstraint("authorization_id", name=op.f("pk_cross_redemptions")),
        sa.UniqueConstraint("clearing_id", name=op.f("uq_cross_redemptions_clearing_id")),
    )
    with op.batch_alter_table("cross_redemptions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cross_redemptions_period", ["settlement_period", "issuer_id"], unique=False
        )

    op.create_table(
        "consent_uses",
        sa.Column(
            "member_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("time_step", sa.BigInteger(), nullable=False),
        sa.Column("hold_ref", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["member_pk"], ["members.id"], name=op.f("fk_consent_uses_member_pk_members")
        ),
        sa.PrimaryKeyConstraint("member_pk", "time_step", name=op.f("pk_consent_uses")),
    )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("wallet_secret", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_column("wallet_secret")

    op.drop_table("consent_uses")
    with op.batch_alter_table("cross_redemptions", schema=None) as batch_op:
        batch_op.drop_index("ix_cross_redemptions_period")

    op.drop_table("cross_redemptions")
