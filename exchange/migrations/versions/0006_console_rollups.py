"""Console: the district's aggregates and alerts (placeholder: filled in by the change that owns it; an empty step migrates nothing).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 03:45:00
"""

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
