"""Bound consent: failed attempts per member, lock-outs (placeholder: filled in by the change that owns it; an empty step migrates nothing).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 03:45:00
"""

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
