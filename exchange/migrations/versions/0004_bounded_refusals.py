"""Bounded refusals: refused requests kept as digests, per-peer growth (placeholder: filled in by the change that owns it; an empty step migrates nothing).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 03:45:00
"""

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
