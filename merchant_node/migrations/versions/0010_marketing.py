"""Member intelligence: facts, segments, tags, churn, triggers (placeholder: filled in by the change that owns it; an empty step migrates nothing).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 03:45:00
"""

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
