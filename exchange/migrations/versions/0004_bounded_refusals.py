"""Bounded refusals and bound consent: the per-peer, per-day tally of requests refused before
their signature was proven (the audit log keeps only bounded records of them), and what each
authorization's consent code is bound to (most points, order).

Columns are added in place (ALTER TABLE … ADD COLUMN), never by rebuilding `authorizations`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 03:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refusal_tally",
        sa.Column("peer", sa.String(length=64), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("logged", sa.BigInteger(), nullable=False),
        sa.Column("counted_only", sa.BigInteger(), nullable=False),
        sa.Column("rate_limited", sa.BigInteger(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("peer", "day", name=op.f("pk_refusal_tally")),
    )
    op.add_column("authorizations", sa.Column("consent_max_points", sa.BigInteger()))
    op.add_column("authorizations", sa.Column("consent_order_id", sa.String(length=64)))


def downgrade() -> None:
    with op.batch_alter_table("authorizations") as batch_op:
        batch_op.drop_column("consent_order_id")
        batch_op.drop_column("consent_max_points")
    op.drop_table("refusal_tally")
