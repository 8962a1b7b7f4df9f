"""Ledger speed: balance check once per transaction, leaner keys (placeholder: filled in by the change that owns it; an empty step migrates nothing).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 03:45:00
"""

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
