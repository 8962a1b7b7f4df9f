"""Mall: items reserved for marketing segments and tags (merchant_node/mall/schema.py).

Two JSON-list columns on mall_items, added in place; existing items reserve for no segment or
tag ("[]"), so they stay on sale to the same members as before.

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


def downgrade() -> None:
    with op.batch_alter_table("mall_items") as batch:
        batch.drop_column("tags")
        batch.drop_column("segments")
