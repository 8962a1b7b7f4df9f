"""Console: incremental aggregates and alerts (placeholder: filled in by the change that owns it; an empty step migrates nothing).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 03:45:00
"""

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
