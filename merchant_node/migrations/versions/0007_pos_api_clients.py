"""POS API clients (hashed keys, scopes, limits) and wallet secrets encrypted at rest (placeholder: filled in by the change that owns it; an empty step migrates nothing).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 03:45:00
"""

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
