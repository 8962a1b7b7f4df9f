"""Posted holds carry the settlement period the exchange stamped on their capture.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 21:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("settlement_period", sa.String(length=10), nullable=True))
        batch_op.create_index(
            "ix_holds_settlement_period", ["settlement_period", "hold_ref"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("holds", schema=None) as batch_op:
        batch_op.drop_index("ix_holds_settlement_period")
        batch_op.drop_column("settlement_period")
