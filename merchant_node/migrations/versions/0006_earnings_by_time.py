"""Earnings by time: the campaign report reads a window (and its baseline) of all members'
earnings; without this index it scans them all.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 23:00:00
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("earnings", schema=None) as batch_op:
        batch_op.create_index("ix_earnings_time", ["occurred_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("earnings", schema=None) as batch_op:
        batch_op.drop_index("ix_earnings_time")
