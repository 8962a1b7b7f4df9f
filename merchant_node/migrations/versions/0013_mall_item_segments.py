"""Mall: items reserved for marketing segments and tags, and coupons' minimum spend
(merchant_node/mall/schema.py).

Columns added in place: existing items reserve for no segment or tag ("[]") and existing coupons
need no minimum (0), so everything behaves as before.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 05:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "mall_items", sa.Column("segments", sa.Text(), nullable=False, server_default="[]")
    )
    op.add_column("mall_items", sa.Column("tags", sa.Text(), nullable=False, server_default="[]"))
    for table, column in (
        ("mall_items", "coupon_min_spend_fen"),
        ("mall_coupons", "min_spend_fen"),
    ):
        op.add_column(table, sa.Column(column, sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("mall_coupons") as batch:
        batch.drop_column("min_spend_fen")
    with op.batch_alter_table("mall_items") as batch:
        batch.drop_column("coupon_min_spend_fen")
        batch.drop_column("tags")
        batch.drop_column("segments")
