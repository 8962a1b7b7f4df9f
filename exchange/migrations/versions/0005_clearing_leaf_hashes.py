"""Clearing leaf hashes computed at write time for settlement (placeholder: filled in by the change that owns it; an empty step migrates nothing).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 03:45:00
"""

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
