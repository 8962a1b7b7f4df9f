"""The points mall: catalog, orders, coupons, lottery (placeholder: filled in by the change that owns it; an empty step migrates nothing).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 03:45:00
"""

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
