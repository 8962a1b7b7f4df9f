"""Breakage allocation: each merchant's breakage policy (the operator's share in basis points),
each batch's breakage per issuer with the node's signed receipt, and the breakage column of
settlement positions.

Columns are added in place (ALTER TABLE … ADD COLUMN, a CHECK included), never by rebuilding a
table: on SQLite a rebuild of `merchants` would fail once merchant_keys and merchant_rates
reference its rows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "merchants",
        sa.Column(
            "breakage_operator_bps",
            sa.Integer(),
            sa.CheckConstraint(
                "breakage_operator_bps >= 0 AND breakage_operator_bps <= 10000",
                name=op.f("ck_merchants_breakage_share_in_range"),
            ),
            server_default="0",
            nullable=False,
        ),
    )
    op.add_column(
        "settlement_positions",
        sa.Column("breakage_fen", sa.BigInteger(), server_default="0", nullable=False),
    )
    op.create_table(
        "settlement_breakage",
        sa.Column("batch_id", sa.String(length=40), nullable=False),
        sa.Column("issuer_id", sa.String(length=64), nullable=False),
        sa.Column("points", sa.BigInteger(), nullable=False),
        sa.Column("value_fen", sa.BigInteger(), nullable=False),
        sa.Column("operator_bps", sa.Integer(), nullable=False),
        sa.Column("operator_fen", sa.BigInteger(), nullable=False),
        sa.Column("issuer_envelope", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint(
            "points >= 0 AND value_fen >= 0",
            name=op.f("ck_settlement_breakage_amounts_not_negative"),
        ),
        sa.CheckConstraint(
            "operator_bps >= 0 AND operator_bps <= 10000",
            name=op.f("ck_settlement_breakage_share_in_range"),
        ),
        sa.CheckConstraint(
            "operator_fen >= 0 AND operator_fen <= value_fen",
            name=op.f("ck_settlement_breakage_operator_fen_in_range"),
        ),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["settlement_batches.batch_id"],
            name=op.f("fk_settlement_breakage_batch_id_settlement_batches"),
        ),
        sa.PrimaryKeyConstraint("batch_id", "issuer_id", name=op.f("pk_settlement_breakage")),
    )


def downgrade() -> None:
    op.drop_table("settlement_breakage")
    # In place, as added (SQLite ≥ 3.35 drops a column with its own CHECK; PostgreSQL drops the
    # column's constraints with it).
    op.execute("ALTER TABLE settlement_positions DROP COLUMN breakage_fen")
    op.execute("ALTER TABLE merchants DROP COLUMN breakage_operator_bps")
